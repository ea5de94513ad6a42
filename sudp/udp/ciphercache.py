# -*- test-case-name: sudp_test.udp.test_ciphercache -*-
"""
A bound on the keyed cipher objects an engine holds.

A reused C{cryptography} AEAD object makes a packet cost about 1 µs, but it
holds about 2.4 KB of OpenSSL context, and each key epoch needs two (one per
direction). The cache lets at most C{capacity} epochs hold theirs at once:
an epoch gets its objects on first use, and when the cache is full the
epoch that got them longest ago gives them back (its keys stay; the next
packet makes new objects, about 1 µs). Hits cost nothing: there is no
bookkeeping per packet, only per creation.
"""

from collections import deque


class CipherCache:
    """
    @ivar created: how many times an epoch's objects were (re)made.
    @ivar released: how many times they were given back for room.
    """

    def __init__(self, capacity):
        if capacity < 1:
            raise ValueError("the cipher cache holds at least one epoch")
        self.capacity = capacity
        self._held = deque()
        self.created = 0
        self.released = 0

    def arm(self, epoch):
        """
        Give C{epoch} its cipher objects, releasing the oldest holder's if
        the cache is full.
        """
        held = self._held
        while len(held) >= self.capacity:
            victim = held.popleft()
            if victim.sealer is not None:
                victim.sealer = victim.opener = None
                self.released += 1
        epoch.makeCiphers()
        held.append(epoch)
        self.created += 1

    def __len__(self):
        return sum(1 for e in self._held if e.sealer is not None)
