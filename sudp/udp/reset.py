# -*- test-case-name: sudp_test.udp.test_reset -*-
"""
Stateless reset (docs/protocol.md section 10.9), as QUIC's (RFC 9000
section 10.3): a server that restarted, or ended a session whose CLOSE was
lost, tells the client at once instead of leaving it on a dead session
until the idle timeout.

The server derives a 16-byte token per session from a key that only it
holds and that survives restarts (it comes from its long-term key through
HKDF), the session's index and the client's address; it sends the token to
the client inside the session (a RESET_TOKEN record). A server that gets a
DATA or CONTROL packet for an index it does not know answers with a
STATELESS_RESET packet ending in the token it would have given; the client
ends its session when that matches the token it holds. Nobody but the
server can make the token, so nobody else can end a session this way; the
reset is always smaller than the packet that caused it and the server
sends at most C{resetsPerSecond} in all, so the server is never an
amplifier; it keeps no state per source for this (a flood of spoofed
packets cannot grow anything).
"""

import hmac
import struct

from sudp.addresses import packedAddress
from sudp.udp.packets import STATELESS_RESET
from sudp.udp.ratelimit import HandshakeRateLimiter

TOKEN_SIZE = 16
MIN_RANDOM = 4
MIN_RESET_SIZE = 1 + MIN_RANDOM + TOKEN_SIZE  # 21
MAX_RESET_SIZE = 41
RESET_KEY_LABEL = b"sudp/1 stateless reset key"
TOKEN_LABEL = b"sudp/1 stateless reset token\x00"
FILLER_LABEL = b"sudp/1 stateless reset filler\x00"
_INDEX = struct.Struct(">I")
_PORT = struct.Struct(">H")


def addressBytes(addr):
    """
    @return: C{addr}'s address in binary (4 bytes for IPv4, an IPv4-mapped
        IPv6 address included; 16 for IPv6) followed by the u16 port.
    """
    return packedAddress(addr[0]) + _PORT.pack(addr[1])


def resetToken(resetKey, index, addr):
    """
    @param resetKey: the server's 32-byte reset key (L{ResetTokens}).
    @param index: the server's index of the session.
    @param addr: the client's address when the session opened.
    @return: the session's 16-byte token: the first 16 bytes of
        HMAC-SHA-256(resetKey, label || u32 index || address || port).
    """
    message = TOKEN_LABEL + _INDEX.pack(index) + addressBytes(addr)
    return hmac.digest(resetKey, message, "sha256")[:TOKEN_SIZE]


def resetSize(triggerSize):
    """
    @return: the size of the reset answering a packet of C{triggerSize}
        bytes (one byte smaller, at most L{MAX_RESET_SIZE}), or None if the
        packet is too small to answer without amplifying.
    """
    size = min(triggerSize - 1, MAX_RESET_SIZE)
    return size if size >= MIN_RESET_SIZE else None


def encodeReset(token, size, filler):
    """
    @param filler: C{n -> n} unpredictable bytes.
    @return: a STATELESS_RESET packet of C{size} bytes: type, the filler,
        then the token.
    """
    return bytes([STATELESS_RESET]) + filler(size - 1 - TOKEN_SIZE) + token


def resetFiller(resetKey, trigger):
    """
    @return: C{n -> n} bytes that nobody without C{resetKey} can predict:
        HMAC-SHA-256(resetKey, label || the packet that caused the reset)
        (a server draws no randomness and keeps no state to answer).
    """
    digest = hmac.digest(resetKey, FILLER_LABEL + bytes(trigger), "sha256")
    return lambda n: digest[:n]


def isReset(data, token):
    """
    @return: True if C{data} is a STATELESS_RESET carrying C{token}
        (compared in constant time).
    """
    return (token is not None and MIN_RESET_SIZE <= len(data) <= MAX_RESET_SIZE
            and data[0] == STATELESS_RESET and hmac.compare_digest(bytes(data[-TOKEN_SIZE:]), token))


class ResetTokens:
    """
    A server's stateless reset: its tokens, and the resets it sends.

    @ivar resetKey: the key tokens come from (derived from the server's
        long-term key, so that a restarted server knows it).
    """

    def __init__(self, resetKey, rate, burst):
        """
        @param rate: resets a second the server sends in all, on average,
            C{burst} at once; a rate of 0 sends none.
        """
        self.resetKey = resetKey
        self._limiter = HandshakeRateLimiter(rate, burst, maxSources=1) if rate > 0 else None

    def token(self, index, addr):
        """
        @return: the token of the session C{index} opened from C{addr}.
        """
        return resetToken(self.resetKey, index, addr)

    def answer(self, data, index, addr, now):
        """
        A DATA or CONTROL packet came for C{index}, which has no session.

        @return: the STATELESS_RESET to send to C{addr}, or None (the
            packet is too small to answer, or the server is over its rate).
        """
        size = resetSize(len(data))
        if size is None or self._limiter is None or not self._limiter.allow(None, now):
            return None
        return encodeReset(self.token(index, addr), size, resetFiller(self.resetKey, data))
