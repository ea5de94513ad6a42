# -*- test-case-name: sudp_test.gossip6.test_wire -*-
"""
The gossip6 byte layout (docs/gossip6.md, "Messages"). All integers are
big-endian; decoders check every length first and raise only
L{sudp.errors.MalformedPacket}. ::

  m    = DHE_pub (32) | u16 L | RSA_pub (L bytes, DER SubjectPublicKeyInfo)
         | T (u64 Unix seconds) | family (u8: 4 or 6) | peer IP (4 or 16)
         | peer port (u16) | nonce (16)
  m|s  = u16 len(m) | m | u16 len(s) | s

On UDP the signed message rides in G6_INIT (0x15: type, u32 sender index,
u32 cookie timestamp, 16-byte cookie, m|s) and G6_RESP (0x16: type, u32
receiver index, u32 sender index, m|s); on a stream, each is its type
byte and m|s, framed as sframe frames its handshake messages.
"""

import ipaddress
import struct

from sudp.addresses import unmappedHost
from sudp.errors import MalformedPacket
from sudp.udp.packets import expectType

# the type bytes sudp/1 reserves for a handshake plug-in (sudp.udp.packets:
# PLUGIN_INIT, PLUGIN_RESP), gossip6's in protocol.md section 4
G6_INIT = 0x15
G6_RESP = 0x16

DHE_SIZE = 32
NONCE_SIZE = 16
MAX_KEY_SIZE = 1024  # DER of an RSA-4096 key is 550 bytes
MIN_SIGNATURE_SIZE, MAX_SIGNATURE_SIZE = 256, 512  # RSA-2048 to RSA-4096
_U16 = struct.Struct(">H")
_TAIL_V4 = struct.Struct(">QB4sH16s")
_TAIL_V6 = struct.Struct(">QB16sH16s")
_INIT_HEAD = struct.Struct(">BII16s")
_RESP_HEAD = struct.Struct(">BII")


def encodeAddress(addr):
    """
    @param addr: C{(host, port)} with a numeric IPv4 or IPv6 host.
    @return: C{(family, packed IP, port)}.
    """
    ip = ipaddress.ip_address(addr[0].split("%", 1)[0])
    return ip.version, ip.packed, addr[1]


def sameAddress(a, b):
    """
    @return: True if C{(host, port)} pairs C{a} and C{b} name the same
        socket address (hosts compared as addresses, not as text; an
        IPv4-mapped IPv6 address, as a dual-stack socket sees an IPv4
        peer, is its IPv4 address).
    """
    def host(addr):
        return ipaddress.ip_address(unmappedHost(addr[0].split("%", 1)[0]))

    try:
        return a[1] == b[1] and host(a) == host(b)
    except ValueError:
        return False


class Message:
    """
    The Gossip-6 spec's handshake message m.

    @ivar dhe: the sender's ephemeral X25519 public key (32 bytes).
    @ivar rsaKey: the sender's RSA public key, DER SubjectPublicKeyInfo.
    @ivar timestamp: T, Unix seconds when m was made.
    @ivar peer: C{(host, port)}: the receiver, as the sender addresses it.
    @ivar nonce: the proof-of-work nonce (16 bytes).
    """

    __slots__ = ("dhe", "rsaKey", "timestamp", "peer", "nonce")

    def __init__(self, dhe, rsaKey, timestamp, peer, nonce=bytes(NONCE_SIZE)):
        self.dhe = bytes(dhe)
        self.rsaKey = bytes(rsaKey)
        self.timestamp = timestamp
        self.peer = peer
        self.nonce = bytes(nonce)

    def prefix(self):
        """
        @return: m without its nonce: what a prover extends nonce by nonce.
        """
        family, packed, port = encodeAddress(self.peer)
        tail = (_TAIL_V4 if family == 4 else _TAIL_V6).pack(self.timestamp, family, packed, port, bytes(NONCE_SIZE))
        return self.dhe + _U16.pack(len(self.rsaKey)) + self.rsaKey + tail[:-NONCE_SIZE]

    def encode(self):
        return self.prefix() + self.nonce

    @classmethod
    def decode(cls, data):
        data = bytes(data)
        if len(data) < DHE_SIZE + 2:
            raise MalformedPacket("truncated", "gossip6 m shorter than its key length field")
        (keySize,) = _U16.unpack_from(data, DHE_SIZE)
        if not 1 <= keySize <= MAX_KEY_SIZE:
            raise MalformedPacket("bad-field", f"gossip6 RSA key of {keySize} bytes")
        at = DHE_SIZE + 2 + keySize
        if len(data) < at + 9:
            raise MalformedPacket("truncated", "gossip6 m shorter than its fields")
        family = data[at + 8]
        if family not in (4, 6):
            raise MalformedPacket("bad-field", f"gossip6 address family {family}")
        tail = _TAIL_V4 if family == 4 else _TAIL_V6
        if len(data) != at + tail.size:
            raise MalformedPacket("truncated" if len(data) < at + tail.size else "oversized",
                                  f"gossip6 m is {at + tail.size} bytes, got {len(data)}")
        timestamp, _, packed, port, nonce = tail.unpack_from(data, at)
        host = str(ipaddress.ip_address(packed))
        return cls(data[:DHE_SIZE], data[DHE_SIZE + 2 : at], timestamp, (host, port), nonce)


class Signed:
    """
    m|s: a message and the sender's RSA-PSS signature over SHA3-256(m).

    @ivar raw: the bytes of m, exactly as received (what is hashed, proven
        and signed).
    """

    __slots__ = ("message", "raw", "signature")

    def __init__(self, message, raw, signature):
        self.message = message
        self.raw = raw
        self.signature = signature

    def encode(self):
        return _U16.pack(len(self.raw)) + self.raw + _U16.pack(len(self.signature)) + self.signature

    @classmethod
    def decode(cls, data):
        data = bytes(data)
        if len(data) < 2:
            raise MalformedPacket("truncated", "gossip6 m|s without its length")
        (size,) = _U16.unpack_from(data)
        if len(data) < 2 + size + 2:
            raise MalformedPacket("truncated", "gossip6 m|s shorter than m")
        raw = data[2 : 2 + size]
        (sigSize,) = _U16.unpack_from(data, 2 + size)
        if not MIN_SIGNATURE_SIZE <= sigSize <= MAX_SIGNATURE_SIZE:
            raise MalformedPacket("bad-field", f"gossip6 signature of {sigSize} bytes")
        if len(data) != 4 + size + sigSize:
            raise MalformedPacket("truncated" if len(data) < 4 + size + sigSize else "oversized",
                                  "gossip6 m|s length does not match its fields")
        return cls(Message.decode(raw), raw, data[4 + size :])


class Gossip6Init:
    """
    G6_INIT, on UDP: type, sender index, cookie timestamp, cookie, m|s.
    """

    __slots__ = ("senderIndex", "timestamp", "cookie", "signed")

    def __init__(self, senderIndex, timestamp, cookie, signed):
        self.senderIndex = senderIndex
        self.timestamp = timestamp
        self.cookie = cookie
        self.signed = signed

    @property
    def ephemeral(self):
        """
        The client's ephemeral key (a server recognises a retransmitted INIT by it).
        """
        return self.signed.message.dhe

    def encode(self):
        return _INIT_HEAD.pack(G6_INIT, self.senderIndex, self.timestamp, self.cookie) + self.signed.encode()

    @classmethod
    def decode(cls, data):
        expectType(data, G6_INIT)
        if len(data) < _INIT_HEAD.size:
            raise MalformedPacket("truncated", "G6_INIT shorter than its header")
        _, sender, timestamp, cookie = _INIT_HEAD.unpack_from(data)
        if sender == 0:
            raise MalformedPacket("bad-field", "sender index 0")
        return cls(sender, timestamp, cookie, Signed.decode(data[_INIT_HEAD.size :]))


class Gossip6Resp:
    """
    G6_RESP, on UDP: type, receiver index, sender index, m|s.
    """

    __slots__ = ("receiverIndex", "senderIndex", "signed")

    def __init__(self, receiverIndex, senderIndex, signed):
        self.receiverIndex = receiverIndex
        self.senderIndex = senderIndex
        self.signed = signed

    def encode(self):
        return _RESP_HEAD.pack(G6_RESP, self.receiverIndex, self.senderIndex) + self.signed.encode()

    @classmethod
    def decode(cls, data):
        expectType(data, G6_RESP)
        if len(data) < _RESP_HEAD.size:
            raise MalformedPacket("truncated", "G6_RESP shorter than its header")
        _, receiver, sender = _RESP_HEAD.unpack_from(data)
        if receiver == 0 or sender == 0:
            raise MalformedPacket("bad-field", "session index 0")
        return cls(receiver, sender, Signed.decode(data[_RESP_HEAD.size :]))


def encodeStreamMessage(typeByte, signed):
    """
    @return: a stream handshake message: the type byte (G6_INIT or G6_RESP), then m|s.
    """
    return bytes([typeByte]) + signed.encode()


def decodeStreamMessage(typeByte, data):
    """
    @return: the L{Signed} in a stream handshake message of type C{typeByte}.
    """
    expectType(data, typeByte)
    return Signed.decode(data[1:])
