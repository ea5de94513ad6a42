# -*- test-case-name: sudp_test.vpn041.test_nonces -*-
"""
The vpn041 nonces and each session's record of them (docs/vpn041.md,
"Replays"), sans-IO.

A nonce is 16 bytes, as the spec's header has it, made of the time on the
sender's session clock and random bytes::

  nonce = milliseconds since the session opened (6 bytes, big-endian) | random (10 bytes)

A session records every nonce it has sent or accepted, for at most
C{lifetime} seconds and at most C{maxNonces} of them. A datagram is
refused before any decryption if its nonce is in the record (C{replay}),
if its time is older than the record reaches back (C{stale}: more than
C{lifetime} seconds ago, or at or before the newest nonce the record had
to forget to stay within C{maxNonces}), or if it is more than C{lifetime}
seconds ahead (C{future}). So every nonce the session could still accept
is in the record, and a datagram is never accepted twice, however old.
"""

import heapq
import os

from sudp.errors import SUDPError

NONCE_SIZE = 16
TIME_SIZE = 6
RANDOM_SIZE = NONCE_SIZE - TIME_SIZE
MAX_MILLISECONDS = (1 << (8 * TIME_SIZE)) - 1
DEFAULT_MAX_NONCES = 1024
DEFAULT_NONCE_LIFETIME = 30.0


class NonceRefused(SUDPError):
    """
    A datagram refused by the record of nonces before any decryption.

    @ivar reason: C{"replay"}, C{"stale"} or C{"future"}.
    """

    def __init__(self, reason):
        SUDPError.__init__(self, f"nonce refused: {reason}")
        self.reason = reason


def makeNonce(elapsed, random=os.urandom):
    """
    @param elapsed: seconds since the session opened, on the sender's clock.
    @return: a fresh 16-byte nonce carrying C{elapsed} in milliseconds.
    """
    milliseconds = min(MAX_MILLISECONDS, max(0, int(elapsed * 1000)))
    return milliseconds.to_bytes(TIME_SIZE, "big") + random(RANDOM_SIZE)


def nonceTime(nonce):
    """
    @return: the session time a nonce carries, in seconds.
    """
    return int.from_bytes(nonce[:TIME_SIZE], "big") / 1000


class NonceRecord:
    """
    The nonces one session has sent or accepted.

    @ivar maxNonces: the most nonces held.
    @ivar lifetime: seconds a nonce is held, and how far a datagram's time
        may lie behind or ahead of the receiver's session clock.
    @ivar floor: the newest time the record had to forget early (to stay
        within C{maxNonces}); nonces at or before it are refused.
    """

    def __init__(self, maxNonces=DEFAULT_MAX_NONCES, lifetime=DEFAULT_NONCE_LIFETIME):
        if maxNonces < 1 or not lifetime > 0:
            raise ValueError("a nonce record holds at least one nonce for a positive time")
        self.maxNonces = maxNonces
        self.lifetime = lifetime
        self.floor = float("-inf")
        self._seen = set()
        self._byTime = []  # a heap of (time, nonce)

    def __len__(self):
        return len(self._seen)

    def check(self, nonce, now):
        """
        @param now: seconds since the session opened, on this side's clock.
        @raise NonceRefused: if a datagram with C{nonce} must not be
            decrypted; else nothing is changed.
        """
        if nonce in self._seen:
            raise NonceRefused("replay")
        when = nonceTime(nonce)
        if when <= self.floor or when < now - self.lifetime:
            raise NonceRefused("stale")
        if when > now + self.lifetime:
            raise NonceRefused("future")

    def add(self, nonce, now):
        """
        Record C{nonce} (one this side sent, or of a datagram that was
        accepted), forgetting expired nonces, and the oldest if more than
        C{maxNonces} are held.
        """
        heap = self._byTime
        horizon = now - self.lifetime
        while heap and heap[0][0] < horizon:
            self._seen.discard(heapq.heappop(heap)[1])
        heapq.heappush(heap, (nonceTime(nonce), nonce))
        self._seen.add(nonce)
        while len(heap) > self.maxNonces:
            when, oldest = heapq.heappop(heap)
            self._seen.discard(oldest)
            self.floor = max(self.floor, when)
