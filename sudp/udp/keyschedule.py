# -*- test-case-name: sudp_test.gossip6.test_handshake, sudp_test.stream.test_handshake, sudp_test.stream.test_vectors -*-
"""
The sudp/1 key schedule (docs/protocol.md, "Key schedule"). ::

  th      = SHA-256("sudp/1 handshake\\0" | server public key | HANDSHAKE_INIT
                    | first 42 bytes of HANDSHAKE_RESP)
  dh      = X25519(client ephemeral, server ephemeral)   (all-zero is refused)
  prk     = HKDF-Extract(salt=th, ikm=dh)                          (SHA-256)
  okm     = HKDF-Expand(prk, "sudp/1 keys" | u32 epoch, 2*K + 64)
  c2s | s2c | confirm key (32) | chain key (32) = okm               (K = suite key size)
  confirm = HMAC-SHA-256(confirm key, th)[:16]
  server signature = Ed25519("sudp/1 server signature\\0" | th)
  client signature = Ed25519("sudp/1 client signature\\0" | th)

sframe's handshake is the same with its own labels ("sframe/1 handshake\\0",
"sframe/1 server signature\\0", "sframe/1 client signature\\0": L{SFRAME_LABELS}),
so that no signature made for one protocol verifies in the other.

Rekey to epoch e+1 with fresh ephemerals::

  th'  = SHA-256("sudp/1 rekey\\0" | th_e | u32(e+1) | client eph | server eph)
  prk' = HKDF-Extract(salt=th', ikm=dh' | chain key_e)
  signature = Ed25519("sudp/1 rekey signature\\0" | th'), by the server

so new keys mix in the old secret, and every key comes out of HKDF.
"""

import hashlib
import hmac
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sudp.errors import HandshakeFailed

HANDSHAKE_LABEL = b"sudp/1 handshake\0"
REKEY_LABEL = b"sudp/1 rekey\0"
KEYS_LABEL = b"sudp/1 keys"
SERVER_SIGNATURE_LABEL = b"sudp/1 server signature\0"
CLIENT_SIGNATURE_LABEL = b"sudp/1 client signature\0"
REFUSAL_SIGNATURE_LABEL = b"sudp/1 handshake refused\0"
NEXT_KEY_SIGNATURE_LABEL = b"sudp/1 next server key\0"
REKEY_SIGNATURE_LABEL = b"sudp/1 rekey signature\0"


@dataclass(frozen=True)
class HandshakeLabels:
    """
    The labels that bind a handshake's transcript hash and signatures to
    one protocol and role, so that nothing signed for one protocol (sudp/1
    over UDP, sframe) verifies in another.

    @ivar transcript: prefixes the transcript hash.
    @ivar server: prefixes what the server signs.
    @ivar client: prefixes what a client signs to prove its identity.
    """

    transcript: bytes
    server: bytes
    client: bytes


UDP_LABELS = HandshakeLabels(HANDSHAKE_LABEL, SERVER_SIGNATURE_LABEL, CLIENT_SIGNATURE_LABEL)
SFRAME_LABELS = HandshakeLabels(b"sframe/1 handshake\0", b"sframe/1 server signature\0",
                                b"sframe/1 client signature\0")

_U32 = struct.Struct(">I")


class Ephemeral:
    """
    An X25519 key pair made from 32 random bytes.
    """

    __slots__ = ("_private", "public")

    def __init__(self, randomBytes):
        self._private = X25519PrivateKey.from_private_bytes(bytes(randomBytes))
        self.public = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def exchange(self, peerPublic):
        """
        @return: the shared secret.
        @raise HandshakeFailed: if the peer's key is a low-order point.
        """
        try:
            secret = self._private.exchange(X25519PublicKey.from_public_bytes(bytes(peerPublic)))
        except ValueError:
            raise HandshakeFailed("the peer's X25519 key is invalid (low order)") from None
        if not any(secret):  # pragma: no cover - OpenSSL already refuses these
            raise HandshakeFailed("the X25519 shared secret is zero")
        return secret


class EpochKeys:
    """
    The output of the key schedule for one epoch. Key buffers are bytearrays so
    that L{wipe} can overwrite them when the epoch is dropped.
    """

    __slots__ = ("epoch", "transcript", "c2s", "s2c", "confirmKey", "chainKey")

    def __init__(self, epoch, transcript, okm, keySize):
        self.epoch = epoch
        self.transcript = transcript
        self.c2s = okm[:keySize]
        self.s2c = okm[keySize : 2 * keySize]
        self.confirmKey = okm[2 * keySize : 2 * keySize + 32]
        self.chainKey = okm[2 * keySize + 32 :]

    def confirmation(self):
        """
        @return: the 16-byte key confirmation of this epoch's transcript.
        """
        return hmac.digest(bytes(self.confirmKey), self.transcript, "sha256")[:16]

    def wipe(self):
        """
        Overwrite every key buffer with zeros.
        """
        for buf in (self.c2s, self.s2c, self.confirmKey, self.chainKey):
            buf[:] = bytes(len(buf))


def handshakeTranscript(serverPublic, initBytes, respPrefix, label=HANDSHAKE_LABEL):
    """
    @param label: the protocol's transcript label (L{HandshakeLabels}).
    @return: the 32-byte transcript hash of a handshake.
    """
    return hashlib.sha256(label + serverPublic + bytes(initBytes) + respPrefix).digest()


def rekeyTranscript(previous, epoch, clientEphemeral, serverEphemeral):
    """
    @return: the 32-byte transcript hash of the rekey to C{epoch}.
    """
    return hashlib.sha256(
        REKEY_LABEL + previous + _U32.pack(epoch) + clientEphemeral + serverEphemeral
    ).digest()


def deriveKeys(epoch, transcript, ikm, keySize):
    """
    HKDF-Extract then HKDF-Expand (RFC 5869, SHA-256).

    @return: an L{EpochKeys}.
    """
    prk = hmac.digest(transcript, bytes(ikm), "sha256")
    okm = HKDFExpand(
        algorithm=hashes.SHA256(),
        length=2 * keySize + 64,
        info=KEYS_LABEL + _U32.pack(epoch),
    ).derive(prk)
    return EpochKeys(epoch, transcript, bytearray(okm), keySize)
