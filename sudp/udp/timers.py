# -*- test-case-name: sudp_test.udp.test_pending, sudp_test.udp.test_server -*-
"""
A deadline queue for engines with many sessions.

Each owner (a session or handshake) has one deadline in force,
C{owner.deadline}. L{TimerQueue.arm} only ever brings a deadline earlier;
entries whose deadline is no longer the owner's are skipped when they come up,
so moving a deadline later costs nothing (the owner re-arms itself when its
old deadline fires and finds nothing due).
"""

import heapq
import itertools

NEVER = float("inf")


class TimerQueue:
    def __init__(self):
        self._heap = []
        self._counter = itertools.count()

    def arm(self, owner, when):
        """
        Make sure C{owner.onTimer(now)} is called at C{when} or earlier.
        """
        if when < owner.deadline:
            owner.deadline = when
            heapq.heappush(self._heap, (when, next(self._counter), owner))

    def nextDeadline(self):
        """
        @return: the earliest deadline in force, or None.
        """
        heap = self._heap
        while heap:
            when, _, owner = heap[0]
            if owner.deadline == when:
                return when
            heapq.heappop(heap)
        return None

    def due(self, now):
        """
        Pop and return every owner whose deadline is C{<= now}, each with its
        deadline reset to L{NEVER} (the owner re-arms what it still needs).
        """
        heap = self._heap
        owners = []
        while heap and heap[0][0] <= now:
            when, _, owner = heapq.heappop(heap)
            if owner.deadline == when:
                owner.deadline = NEVER
                owners.append(owner)
        return owners

    def __len__(self):
        return len(self._heap)
