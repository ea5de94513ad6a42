# -*- test-case-name: sudp_test.gossip6.test_keys -*-
"""
The gossip6 transcript and session keys (docs/gossip6.md, "Keys"). ::

  th   = SHA-256("gossip6 handshake\\0" | u32 len(INIT) | INIT | RESP)      (UDP)
  th   = SHA-256("gossip6 stream handshake\\0" | u32 len(INIT) | INIT | RESP)   (stream)
  keys = the sudp/1 key schedule (HKDF-SHA-256, protocol.md section 8) with
         th as salt and the X25519 secret of DHE_pub^Alice and DHE_pub^Bob
         as input key material

INIT and RESP are the whole handshake messages as sent (on UDP the G6_INIT
and G6_RESP packets with their indexes and cookie; on a stream the two
messages), so every byte either side sent is bound into the keys: a peer
that saw something else derives other keys and the first protected packet
fails. The Gossip-6 spec's "AES256 key = DHE(...)" is the X25519 secret put
through HKDF, never used raw (raw DH output is not a key); data is AES-256-GCM. Each
transport has its own label, so that no transcript (and no key) of one is
that of the other.
"""

import hashlib
import struct

from sudp.suites import AES256GCM
from sudp.udp.keyschedule import deriveKeys

TRANSCRIPT_LABEL = b"gossip6 handshake\0"  # on UDP
STREAM_TRANSCRIPT_LABEL = b"gossip6 stream handshake\0"
SUITE = AES256GCM  # the Gossip-6 spec: AES-256; sudp's AES-256-GCM suite
_U32 = struct.Struct(">I")


def transcript(initBytes, respBytes, label=TRANSCRIPT_LABEL):
    """
    @param label: the transport's label: L{TRANSCRIPT_LABEL} on UDP,
        L{STREAM_TRANSCRIPT_LABEL} on a stream.
    @return: the 32-byte transcript hash of a gossip6 handshake.
    """
    data = label + _U32.pack(len(initBytes)) + bytes(initBytes) + bytes(respBytes)
    return hashlib.sha256(data).digest()


def sessionKeys(initBytes, respBytes, secret):
    """
    @return: the epoch-0 L{sudp.udp.keyschedule.EpochKeys} of a gossip6 session.
    """
    return deriveKeys(0, transcript(initBytes, respBytes), secret, SUITE.keySize)
