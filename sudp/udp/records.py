# -*- test-case-name: sudp_test.udp.test_records -*-
"""
The records inside CONTROL packets (docs/protocol.md, "Records").

A record is C{type u8, length u16, value}; a CONTROL plaintext is one or more
records back to back. Unknown types below 0x80 are an error; unknown types
from 0x80 up are skipped, so later versions can add optional records.

The values with fields have a codec each here (L{RekeyRequest},
L{RekeyResponse}, L{ClientAuth}, L{NextServerKey}): C{encode()} gives the
value, C{record()} the whole record, and C{decode(value)} raises only
L{MalformedPacket}, with a reason.
"""

import struct
from typing import NamedTuple, Optional

from sudp.errors import MalformedPacket

APP_DATA = 0x01
KEEPALIVE = 0x02
CLOSE = 0x03
CONFIRM = 0x04
CLIENT_AUTH = 0x05
PATH_CHALLENGE = 0x06
PATH_RESPONSE = 0x07
REKEY_REQUEST = 0x10
REKEY_RESPONSE = 0x11
PADDING = 0x80
RESET_TOKEN = 0x81  # optional (0x80 and up): older receivers skip it
NEXT_SERVER_KEY = 0x82  # optional: the server's next key, proven (key rollover)

KNOWN = {
    APP_DATA, KEEPALIVE, CLOSE, CONFIRM, CLIENT_AUTH, PATH_CHALLENGE, PATH_RESPONSE,
    REKEY_REQUEST, REKEY_RESPONSE, PADDING, RESET_TOKEN, NEXT_SERVER_KEY,
}
RECORD_HEADER_SIZE = 3
_HEADER = struct.Struct(">BH")

# CLOSE reason codes
CLOSE_NORMAL = 0
CLOSE_IDLE = 1
CLOSE_NOT_AUTHORIZED = 2
CLOSE_PROTOCOL_ERROR = 3
CLOSE_KEY_EXHAUSTED = 4
CLOSE_SHUTDOWN = 5
CLOSE_REASONS = {
    CLOSE_NORMAL: "closed-by-peer",
    CLOSE_IDLE: "idle-timeout",
    CLOSE_NOT_AUTHORIZED: "not-authorized",
    CLOSE_PROTOCOL_ERROR: "protocol-error",
    CLOSE_KEY_EXHAUSTED: "key-exhausted",
    CLOSE_SHUTDOWN: "server-shutdown",
}

_SIZES = {
    KEEPALIVE: (0, 0),
    CONFIRM: (0, 0),
    CLIENT_AUTH: (96, 96),
    PATH_CHALLENGE: (16, 16),
    PATH_RESPONSE: (16, 16),
    RESET_TOKEN: (16, 16),
    NEXT_SERVER_KEY: (96, 96),
    REKEY_REQUEST: (4, 36),
    REKEY_RESPONSE: (100, 36 + 512),  # epoch, ephemeral key, a signature of 64 to 512 bytes (see decodeRecords)
    CLOSE: (1, 1 + 512),
}


def encodeRecord(recordType, value=b""):
    """
    @return: one encoded record.
    """
    if len(value) > 0xFFFF:
        raise ValueError("a record value is at most 65535 bytes")
    return _HEADER.pack(recordType, len(value)) + value


def decodeRecords(plaintext, signatureSize=512):
    """
    @param signatureSize: the longest signature the session's handshake
        signs rekeys with (REKEY_RESPONSE), in bytes: its engine's
        C{signatureSize}; by default the longest the record holds.
    @return: a list of C{(type, value)} in order, optional unknown types left out.
    @raise MalformedPacket: on a truncated record, an unknown mandatory type or
        a record whose size is wrong for its type.
    """
    records = []
    offset = 0
    end = len(plaintext)
    if end == 0:
        raise MalformedPacket("empty-control", "a CONTROL packet holds at least one record")
    while offset < end:
        if end - offset < RECORD_HEADER_SIZE:
            raise MalformedPacket("truncated", "record header cut off")
        rtype, length = _HEADER.unpack_from(plaintext, offset)
        offset += RECORD_HEADER_SIZE
        if end - offset < length:
            raise MalformedPacket("truncated", f"record 0x{rtype:02x} cut off")
        value = bytes(plaintext[offset : offset + length])
        offset += length
        if rtype not in KNOWN:
            if rtype < 0x80:
                raise MalformedPacket("unknown-record", f"record type 0x{rtype:02x}")
            continue
        bounds = _SIZES.get(rtype)
        if rtype == REKEY_RESPONSE:
            bounds = (bounds[0], 36 + max(64, signatureSize))
        if bounds is not None and not bounds[0] <= length <= bounds[1]:
            raise MalformedPacket("bad-record", f"record 0x{rtype:02x} of {length} bytes")
        if rtype == REKEY_REQUEST and length not in (4, 36):
            raise MalformedPacket("bad-record", f"REKEY_REQUEST of {length} bytes")
        if rtype != PADDING:
            records.append((rtype, value))
    return records


def encodeClose(code, text="", room=512):
    """
    @return: a CLOSE record: u8 reason code, then UTF-8 text cut (on a
        character boundary) to fit C{room} bytes of value and at most 512.
    """
    data = text.encode("utf-8")
    limit = max(0, min(512, room - 1))
    if len(data) > limit:
        data = data[:limit].decode("utf-8", "ignore").encode("utf-8")
    return encodeRecord(CLOSE, bytes([code]) + data)


def decodeClose(value):
    """
    @return: C{(code, text)}; undecodable text is replaced, never raised.
    @raise MalformedPacket: if there is no reason code.
    """
    if not value:
        raise MalformedPacket("bad-record", "CLOSE without a reason code")
    return value[0], bytes(value[1:]).decode("utf-8", "replace")


EPOCH_SIZE = 4  # u32, the epoch a REKEY_REQUEST or REKEY_RESPONSE names
KEY_SIZE = 32  # an X25519 or Ed25519 public key
SIGNATURE_SIZE = 64  # Ed25519
_EPOCH = struct.Struct(">I")


def _badSize(name, value, sizes):
    return MalformedPacket("bad-record", f"{name} of {len(value)} bytes, expected {sizes}")


def _checkEpoch(epoch):
    if not 0 <= epoch <= 0xFFFFFFFF:
        raise ValueError("an epoch is a u32")


def _checkKey(key, name):
    if len(key) != KEY_SIZE:
        raise ValueError(f"{name} is {KEY_SIZE} bytes")


class RekeyRequest(NamedTuple):
    """
    REKEY_REQUEST (protocol.md 12): u32 new epoch, then the client's new
    ephemeral X25519 public key (36 bytes); the server's request that the
    client start a rekey carries the epoch alone (4 bytes).

    @ivar epoch: the epoch asked for.
    @ivar ephemeral: the client's 32-byte ephemeral key, or None in the
        server's 4-byte request.
    """

    epoch: int
    ephemeral: Optional[bytes] = None

    def encode(self):
        """
        @return: the record's value.
        """
        _checkEpoch(self.epoch)
        if self.ephemeral is None:
            return _EPOCH.pack(self.epoch)
        _checkKey(self.ephemeral, "the ephemeral key")
        return _EPOCH.pack(self.epoch) + bytes(self.ephemeral)

    def record(self):
        """
        @return: the whole REKEY_REQUEST record.
        """
        return encodeRecord(REKEY_REQUEST, self.encode())

    @classmethod
    def decode(cls, value):
        """
        @raise MalformedPacket: C{bad-record} unless C{value} is 4 or 36 bytes.
        """
        if len(value) == EPOCH_SIZE:
            return cls(_EPOCH.unpack(value)[0])
        if len(value) == EPOCH_SIZE + KEY_SIZE:
            return cls(_EPOCH.unpack_from(value)[0], bytes(value[EPOCH_SIZE:]))
        raise _badSize("REKEY_REQUEST", value, "4 or 36")


class RekeyResponse(NamedTuple):
    """
    REKEY_RESPONSE (protocol.md 12.3): u32 new epoch, the server's new
    ephemeral X25519 public key (32), then the server's signature of the
    rekey transcript (Ed25519, 64 bytes; gossip6's RSA-PSS is longer).
    """

    epoch: int
    ephemeral: bytes
    signature: bytes

    def encode(self):
        """
        @return: the record's value.
        """
        _checkEpoch(self.epoch)
        _checkKey(self.ephemeral, "the ephemeral key")
        low, high = _SIZES[REKEY_RESPONSE]
        if not low <= EPOCH_SIZE + KEY_SIZE + len(self.signature) <= high:
            raise ValueError(f"a REKEY_RESPONSE signature of {len(self.signature)} bytes")
        return _EPOCH.pack(self.epoch) + bytes(self.ephemeral) + bytes(self.signature)

    def record(self):
        """
        @return: the whole REKEY_RESPONSE record.
        """
        return encodeRecord(REKEY_RESPONSE, self.encode())

    @classmethod
    def decode(cls, value):
        """
        @raise MalformedPacket: C{bad-record} if C{value} is outside the
            record's bounds (a signature shorter than Ed25519's, or longer
            than the longest the record holds).
        """
        low, high = _SIZES[REKEY_RESPONSE]
        if not low <= len(value) <= high:
            raise _badSize("REKEY_RESPONSE", value, f"{low} to {high}")
        keyEnd = EPOCH_SIZE + KEY_SIZE
        return cls(_EPOCH.unpack_from(value)[0], bytes(value[EPOCH_SIZE:keyEnd]), bytes(value[keyEnd:]))


class _KeyAndSignature(NamedTuple):
    publicKey: bytes
    signature: bytes

    def encode(self):
        """
        @return: the record's value: the public key, then the signature.
        """
        _checkKey(self.publicKey, "the public key")
        if len(self.signature) != SIGNATURE_SIZE:
            raise ValueError(f"the signature is {SIGNATURE_SIZE} bytes")
        return bytes(self.publicKey) + bytes(self.signature)

    def record(self):
        """
        @return: the whole record.
        """
        return encodeRecord(self.RECORD_TYPE, self.encode())

    @classmethod
    def decode(cls, value):
        """
        @raise MalformedPacket: C{bad-record} unless C{value} is 96 bytes.
        """
        if len(value) != KEY_SIZE + SIGNATURE_SIZE:
            raise _badSize(cls.RECORD_NAME, value, KEY_SIZE + SIGNATURE_SIZE)
        return cls(bytes(value[:KEY_SIZE]), bytes(value[KEY_SIZE:]))


class ClientAuth(_KeyAndSignature):
    """
    CLIENT_AUTH (protocol.md 9.1; sframe's CONFIRM carries the same value):
    the client's Ed25519 public key (32), then its signature (64) of the
    handshake transcript.
    """

    RECORD_TYPE = CLIENT_AUTH
    RECORD_NAME = "CLIENT_AUTH"


class NextServerKey(_KeyAndSignature):
    """
    NEXT_SERVER_KEY (protocol.md 9.4): the server's next Ed25519 public key
    (32), then that key's signature (64) of this session's handshake
    transcript.
    """

    RECORD_TYPE = NEXT_SERVER_KEY
    RECORD_NAME = "NEXT_SERVER_KEY"
