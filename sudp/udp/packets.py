# -*- test-case-name: sudp_test.udp.test_packets -*-
"""
Encoding and decoding of sudp/1 datagrams (docs/protocol.md, "Packets").

Every datagram starts with one byte: the protocol version in the high nibble
(1) and the packet type in the low nibble. All integers are big-endian.
Decoders check every length before reading and raise only
L{sudp.errors.MalformedPacket}.
"""

import struct

from sudp.errors import MalformedPacket

VERSION = 1

HELLO = 0x11
COOKIE = 0x12
HANDSHAKE_INIT = 0x13
HANDSHAKE_RESP = 0x14
PLUGIN_INIT = 0x15  # assigned to a handshake plug-in's INIT and RESP (protocol.md section 4)
PLUGIN_RESP = 0x16
HANDSHAKE_REFUSED = 0x17  # the server has no suite the client offered (signed)
DATA = 0x18  # | key phase bit; plaintext is one application message
CONTROL = 0x1A  # | key phase bit; plaintext is a sequence of records
STATELESS_RESET = 0x1C  # sudp.udp.reset

HELLO_SIZE = 64
HELLO_NONCE_SIZE = 8
ASK_KEY = 0x01  # the first byte after a HELLO's nonce: send me your public key (protocol.md 5.7)
COOKIE_SIZE = 16
KEY_SIZE = 32
SIGNATURE_SIZE = 64
CONFIRM_SIZE = 16
MAX_OFFERED_SUITES = 16
DATA_HEADER_SIZE = 13  # type, receiver index, sequence number

_COOKIE = struct.Struct(">B8sI16s")
_INIT_FIXED = struct.Struct(">BII16s32sB")
_RESP = struct.Struct(">BIIB32s16s64s")
RESP_PREFIX_SIZE = 1 + 4 + 4 + 1 + 32  # the part the transcript covers
DATA_HEADER = struct.Struct(">BIQ")

COOKIE_PACKET_SIZE = _COOKIE.size
HANDSHAKE_RESP_SIZE = _RESP.size  # 122: a UDP client pads its INIT to at least this
RESP_SIZE = HANDSHAKE_RESP_SIZE

PACKET_NAMES = {
    HELLO: "HELLO",
    COOKIE: "COOKIE",
    HANDSHAKE_INIT: "HANDSHAKE_INIT",
    HANDSHAKE_RESP: "HANDSHAKE_RESP",
    PLUGIN_INIT: "PLUGIN_INIT",
    PLUGIN_RESP: "PLUGIN_RESP",
    DATA: "DATA",
    DATA | 1: "DATA",
    CONTROL: "CONTROL",
    CONTROL | 1: "CONTROL",
    HANDSHAKE_REFUSED: "HANDSHAKE_REFUSED",
    STATELESS_RESET: "STATELESS_RESET",
}


def packetType(data):
    """
    Check the first byte of a datagram.

    @return: the type byte (one of the constants above, with the key phase bit
        for DATA and CONTROL).
    @raise MalformedPacket: C{"empty"}, C{"wrong-version"} or C{"unknown-type"}.
    """
    if not data:
        raise MalformedPacket("empty")
    t = data[0]
    if t >> 4 != VERSION:
        raise MalformedPacket("wrong-version", f"version {t >> 4}, expected {VERSION}")
    if t not in PACKET_NAMES:
        raise MalformedPacket("unknown-type", f"type 0x{t:02x}")
    return t


def expectType(data, typeByte):
    """
    Check a handshake message's type byte. The engines dispatch on the
    type byte first; a key exchange on a stream decodes handshake messages
    straight from the stream, so the decoders check it too.

    @raise MalformedPacket: C{empty}, or C{unexpected-type} naming both types.
    """
    if not data:
        raise MalformedPacket("empty")
    if data[0] != typeByte:
        raise MalformedPacket("unexpected-type", f"type 0x{data[0]:02x}, expected 0x{typeByte:02x}")


def _exact(data, size, name):
    if len(data) != size:
        raise MalformedPacket(
            "truncated" if len(data) < size else "oversized",
            f"{name} is {size} bytes, got {len(data)}",
        )


def encodeHello(nonce, askKey=False):
    """
    HELLO: type, 8-byte client nonce, zero padding to 64 bytes. The padding
    makes the request larger than the COOKIE reply (no amplification).

    @param askKey: ask the server for its public key (protocol.md 5.7: the
        first byte after the nonce is then L{ASK_KEY}, the rest zero).
    """
    if len(nonce) != HELLO_NONCE_SIZE:
        raise ValueError("the hello nonce is 8 bytes")
    flags = bytes([ASK_KEY if askKey else 0])
    return bytes([HELLO]) + nonce + flags + bytes(HELLO_SIZE - 2 - HELLO_NONCE_SIZE)


def decodeHello(data):
    """
    @return: the 8-byte client nonce.
    """
    if len(data) < HELLO_SIZE:
        raise MalformedPacket("truncated", f"HELLO is at least {HELLO_SIZE} bytes")
    return bytes(data[1 : 1 + HELLO_NONCE_SIZE])


def helloAsksKey(data):
    """
    @return: True if a HELLO (already decoded) asks for the server's public
        key (protocol.md 5.7).
    """
    return bool(data[1 + HELLO_NONCE_SIZE] & ASK_KEY)


def encodeCookie(nonce, timestamp, cookie, serverKey=b""):
    """
    COOKIE: type, the HELLO's nonce echoed, u32 timestamp, 16-byte cookie,
    and, answering a HELLO that asked for it, the server's 32-byte public
    key (protocol.md 5.7).
    """
    return _COOKIE.pack(COOKIE, nonce, timestamp, cookie) + serverKey


def decodeCookie(data):
    """
    @return: C{(nonce, timestamp, cookie)} of a COOKIE, with or without the
        server's key (L{cookieServerKey}).
    """
    if len(data) != _COOKIE.size + KEY_SIZE:
        _exact(data, _COOKIE.size, "COOKIE")
    return _COOKIE.unpack_from(data)[1:]


def cookieServerKey(data):
    """
    @return: the server's raw public key a COOKIE carries, or None.
    """
    return bytes(data[_COOKIE.size:]) if len(data) == _COOKIE.size + KEY_SIZE else None


class HandshakeInit:
    """
    HANDSHAKE_INIT: type, u32 sender index, u32 cookie timestamp, 16-byte
    cookie, 32-byte client ephemeral X25519 key, u8 count, count suite ids,
    then any number of zero bytes of padding.

    @ivar size: the whole length of a decoded INIT, padding included (None
        for one built to be encoded): a server resends its RESP only to an
        INIT at least C{HANDSHAKE_RESP_SIZE} long.
    """

    __slots__ = ("senderIndex", "timestamp", "cookie", "ephemeral", "suites", "size")

    def __init__(self, senderIndex, timestamp, cookie, ephemeral, suites, size=None):
        self.senderIndex = senderIndex
        self.timestamp = timestamp
        self.cookie = cookie
        self.ephemeral = ephemeral
        self.suites = tuple(suites)
        self.size = size

    def encode(self, padTo=0):
        """
        @param padTo: the least length of the result: zero bytes are added
            after the suites to reach it (a UDP client pads to
            C{HANDSHAKE_RESP_SIZE}, so that no RESP is larger than its INIT).
        """
        if not 1 <= len(self.suites) <= MAX_OFFERED_SUITES:
            raise ValueError(f"offer 1 to {MAX_OFFERED_SUITES} suites")
        body = _INIT_FIXED.pack(
            HANDSHAKE_INIT,
            self.senderIndex,
            self.timestamp,
            self.cookie,
            self.ephemeral,
            len(self.suites),
        ) + bytes(self.suites)
        return body + bytes(max(0, padTo - len(body)))

    @classmethod
    def decode(cls, data):
        expectType(data, HANDSHAKE_INIT)
        if len(data) < _INIT_FIXED.size + 1:
            raise MalformedPacket("truncated", "HANDSHAKE_INIT too short")
        _, sender, ts, cookie, eph, count = _INIT_FIXED.unpack_from(data)
        if not 1 <= count <= MAX_OFFERED_SUITES:
            raise MalformedPacket("bad-field", f"{count} suites offered")
        end = _INIT_FIXED.size + count
        if len(data) < end:
            raise MalformedPacket("truncated", "HANDSHAKE_INIT too short")
        if any(data[end:]):
            raise MalformedPacket("bad-padding", "HANDSHAKE_INIT padding is not all zero")
        if sender == 0:
            raise MalformedPacket("bad-field", "sender index 0")
        return cls(sender, ts, cookie, eph, data[_INIT_FIXED.size : end], len(data))


class HandshakeResp:
    """
    HANDSHAKE_RESP: type, u32 receiver index (the client's), u32 sender index
    (the server's), u8 chosen suite, 32-byte server ephemeral, 16-byte key
    confirmation, 64-byte Ed25519 signature over the transcript hash.
    """

    __slots__ = ("receiverIndex", "senderIndex", "suite", "ephemeral", "confirm", "signature")

    def __init__(self, receiverIndex, senderIndex, suite, ephemeral, confirm, signature):
        self.receiverIndex = receiverIndex
        self.senderIndex = senderIndex
        self.suite = suite
        self.ephemeral = ephemeral
        self.confirm = confirm
        self.signature = signature

    def prefix(self):
        """
        @return: the first 42 bytes, which the transcript hash covers.
        """
        return self.encode()[:RESP_PREFIX_SIZE]

    def encode(self):
        return _RESP.pack(
            HANDSHAKE_RESP,
            self.receiverIndex,
            self.senderIndex,
            self.suite,
            self.ephemeral,
            self.confirm,
            self.signature,
        )

    @classmethod
    def decode(cls, data):
        expectType(data, HANDSHAKE_RESP)
        _exact(data, _RESP.size, "HANDSHAKE_RESP")
        fields = _RESP.unpack(data)[1:]
        if fields[0] == 0 or fields[1] == 0:
            raise MalformedPacket("bad-field", "session index 0")
        return cls(*fields)


def encodeDataHeader(typeByte, receiverIndex, sequence):
    """
    The 13-byte header of DATA and CONTROL packets, also their AEAD
    associated data.
    """
    return DATA_HEADER.pack(typeByte, receiverIndex, sequence)


def decodeDataHeader(data, tagSize):
    """
    @return: C{(typeByte, receiverIndex, sequence)}.
    """
    if len(data) < DATA_HEADER_SIZE + tagSize:
        raise MalformedPacket("truncated", "DATA shorter than header and tag")
    return DATA_HEADER.unpack_from(data)


class HandshakeRefused:
    """
    HANDSHAKE_REFUSED (server to client): type, u32 receiver index (the
    client's, from its INIT), u8 count n, the server's n suite ids in its
    order of preference, then a 64-byte Ed25519 signature (protocol.md
    section 7.5). Always smaller than the INIT it answers.
    """

    __slots__ = ("receiverIndex", "suites", "signature")

    _FIXED = struct.Struct(">BIB")

    def __init__(self, receiverIndex, suites, signature=b""):
        self.receiverIndex = receiverIndex
        self.suites = tuple(suites)
        self.signature = signature

    def signed(self):
        """
        @return: the bytes before the signature (what it covers, with the INIT).
        """
        return self._FIXED.pack(HANDSHAKE_REFUSED, self.receiverIndex, len(self.suites)) + bytes(self.suites)

    def encode(self):
        return self.signed() + self.signature

    @classmethod
    def decode(cls, data):
        """
        @raise MalformedPacket: C{truncated}, C{oversized} or C{bad-field}
            (a receiver index or suite count of 0, or more than 16 suites).
        """
        expectType(data, HANDSHAKE_REFUSED)
        if len(data) < cls._FIXED.size:
            raise MalformedPacket("truncated", f"HANDSHAKE_REFUSED is at least {cls._FIXED.size + 65} bytes")
        _, index, count = cls._FIXED.unpack_from(data)
        if index == 0 or not 1 <= count <= MAX_OFFERED_SUITES:
            raise MalformedPacket("bad-field", f"receiver index {index}, {count} suites")
        _exact(data, cls._FIXED.size + count + SIGNATURE_SIZE, "HANDSHAKE_REFUSED")
        end = cls._FIXED.size + count
        return cls(index, bytes(data[cls._FIXED.size:end]), bytes(data[end:]))
