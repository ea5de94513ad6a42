# -*- test-case-name: sudp_test.udp.test_pending -*-
"""
The server's pending handshakes (a RESP sent, the CONFIRM awaited, or an
answer waiting for off-thread work, L{AwaitingWork}), counted by source
prefix, with fair eviction.

Each pending handshake holds a slot for up to C{handshakeTimeout} seconds.
When every slot is held, a new cookie-proven handshake takes the slot of
the oldest handshake of the prefix that holds the most, provided that
prefix holds at least two more than the newcomer's own: so addresses that hold many
slots give way to one that holds few, and no number of attacker addresses
that never confirm can keep a new client out (docs/protocol.md, "Pending
handshakes"). Sources are counted by prefix (L{sudp.addresses.addressPrefix}:
an IPv6 /64 is one source by default).
"""

import enum
from collections import defaultdict

from sudp.udp.timers import NEVER


class PendingState(enum.Enum):
    """
    The state of a pending handshake that is not a session yet.
    """

    WORKING = "working"  # its answer waits for off-thread work (sudp.work)


class AwaitingWork:
    """
    A handshake the server admitted whose answer waits for off-thread work
    (L{sudp.work.WorkNeeded}): it holds its pending slot and its client's
    ephemeral key until the work is done, the time is up or a newcomer
    evicts it (L{sudp.udp.server.ServerEngine.awaitWork}); the handshake
    that asked keeps what it needs in C{context}.

    @ivar job: the L{sudp.work.IWork} being run.
    @ivar context: what the handshake needs to finish its answer.
    @ivar done: True once the work is done, failed, expired or evicted.
    """

    state = PendingState.WORKING
    respBytes = None  # no answer to resend yet

    def __init__(self, engine, job, remoteIndex, clientEphemeral, addr, expires, context):
        self.engine = engine
        self.job = job
        self.remoteIndex = remoteIndex
        self.clientEphemeral = bytes(clientEphemeral)
        self.addr = addr
        self.expires = expires
        self.context = context
        self.deadline = NEVER
        self.done = False

    def hold(self):
        """
        Take a pending slot, the client's ephemeral key and a timer in the engine.
        """
        engine = self.engine
        engine.working[self.job] = self
        engine.byEphemeral[self.clientEphemeral] = self
        engine.holdSlot(self, self.addr)
        engine.timers.arm(self, self.expires)

    def end(self, reason=None):
        """
        Give all that back; with a C{reason} (counted as a drop), the work
        is cancelled too.

        @return: False if it had ended already.
        """
        if self.done:
            return False
        self.done = True
        self.deadline = NEVER
        engine = self.engine
        del engine.working[self.job]
        if engine.byEphemeral.get(self.clientEphemeral) is self:
            del engine.byEphemeral[self.clientEphemeral]
        engine.releaseSlot(self)
        if reason is not None:
            self.job.cancel()
            engine.drops[reason] += 1
        return True

    def onTimer(self, now):
        """
        The handshake's time is up: give the slot back, cancel the work.
        """
        if now >= self.expires:
            self.end("handshake-expired")

    def evict(self, now):
        """
        Give this handshake's slot to a newcomer: the work is cancelled.
        """
        self.end("pending-evicted")


class PendingSlots:
    """
    @ivar capacity: how many handshakes may be pending at once.
    """

    def __init__(self, capacity):
        self.capacity = capacity
        self._byPrefix = {}  # prefix -> {entry: None}, oldest first
        self._prefixOf = {}  # entry -> prefix
        self._withCount = defaultdict(set)  # n -> the prefixes holding n slots
        self._most = 0  # the most slots one prefix holds

    def __len__(self):
        return len(self._prefixOf)

    def __contains__(self, entry):
        return entry in self._prefixOf

    def held(self, prefix):
        """
        @return: how many slots C{prefix} holds.
        """
        entries = self._byPrefix.get(prefix)
        return 0 if entries is None else len(entries)

    def _move(self, prefix, old, new):
        if old:
            bucket = self._withCount[old]
            bucket.discard(prefix)
            if not bucket:
                del self._withCount[old]
                if self._most == old and new < old:
                    self._most = new
        if new:
            self._withCount[new].add(prefix)
            if new > self._most:
                self._most = new

    def add(self, entry, prefix):
        """
        Let C{entry} hold a slot for C{prefix} (even past the capacity: the
        caller decides, see L{victimFor}).
        """
        entries = self._byPrefix.setdefault(prefix, {})
        entries[entry] = None
        self._prefixOf[entry] = prefix
        self._move(prefix, len(entries) - 1, len(entries))

    def remove(self, entry):
        """
        Give C{entry}'s slot back; nothing happens if it holds none.
        """
        prefix = self._prefixOf.pop(entry, None)
        if prefix is None:
            return
        entries = self._byPrefix[prefix]
        del entries[entry]
        if not entries:
            del self._byPrefix[prefix]
        self._move(prefix, len(entries) + 1, len(entries))

    def full(self):
        """
        @return: True if every slot is held.
        """
        return len(self._prefixOf) >= self.capacity

    def victimFor(self, prefix):
        """
        @return: the entry whose slot a newcomer from C{prefix} may take: the
            oldest of a prefix holding the most slots, if that is at least
            two more than C{prefix} holds (so that sources holding nearly as
            many never churn each other's slots); None if the newcomer must
            be refused.
        """
        if self._most < self.held(prefix) + 2:
            return None
        richest = next(iter(self._withCount[self._most]))
        return next(iter(self._byPrefix[richest]))
