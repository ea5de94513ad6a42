"""
The records inside CONTROL packets (docs/protocol.md, "Records").

A record is C{type u8, length u16, value}; a CONTROL plaintext is one or more
records back to back. Unknown types below 0x80 are an error; unknown types
from 0x80 up are skipped, so later versions can add optional records.
"""

import struct

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
