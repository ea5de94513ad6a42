# -*- test-case-name: sudp_test.stream.test_listener -*-
"""
The limits of an sframe listener (docs/sframe.md, "Listener limits"): how
many connections it holds, how many one source may hold or start, and who
gives way when it is full, so that no number of idle or half-open
connections keeps a new client out.

Sources are counted by prefix (L{sudp.addresses.addressPrefix}: an IPv4
address, an IPv6 /64). A connection over the rate or the per-source cap is
closed as soon as it is accepted, before any handshake work. When every
slot is held, a new connection takes the slot of the oldest connection of
the source holding the most, if that source holds at least two more than
the newcomer's (the fair eviction of L{sudp.udp.pending.PendingSlots}); so
descriptors stay free for new clients.
"""

import resource

from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

from sudp.addresses import addressPrefix
from sudp.eventlog import ConnectionLog
from sudp.udp.pending import PendingSlots
from sudp.udp.ratelimit import HandshakeRateLimiter

DESCRIPTOR_HEADROOM = 64  # descriptors kept for the process's other needs
MAX_DEFAULT_CONNECTIONS = 10000


def defaultMaxConnections():
    """
    @return: the process's soft descriptor limit less
        L{DESCRIPTOR_HEADROOM}, between 16 and L{MAX_DEFAULT_CONNECTIONS}.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_DEFAULT_CONNECTIONS
    return max(16, min(MAX_DEFAULT_CONNECTIONS, soft - DESCRIPTOR_HEADROOM))


class _Connection(ProtocolWrapper):
    """
    One accepted connection, counted by its listener until it closes.
    """


class LimitedListenerFactory(WrappingFactory):
    """
    Wraps a listener's factory (an L{sudp.stream.protocol.SFrameFactory})
    with the limits of its L{sudp.stream.handshake.StreamConfig}.

    @ivar slots: the open connections by source prefix.
    @ivar counters: connections refused and evicted, by reason.
    """

    protocol = _Connection
    noisy = False
    log = Logger()

    def __init__(self, wrappedFactory, config, reactor, connectionLog=None):
        WrappingFactory.__init__(self, wrappedFactory)
        self.config = config
        self.reactor = reactor
        self.maxConnections = config.maxConnections or defaultMaxConnections()
        self.slots = PendingSlots(self.maxConnections)
        self.limiter = HandshakeRateLimiter(config.handshakesPerSecond, config.handshakeBurst)
        self.connectionLog = connectionLog or ConnectionLog(reactor, transport="sframe")
        self.counters = {"refused": {}, "evicted": 0}

    def _prefix(self, addr):
        host = getattr(addr, "host", None)
        try:
            return addressPrefix(host, self.config.handshakePrefixV4, self.config.handshakePrefixV6)
        except (ValueError, AttributeError, TypeError):  # a UNIX socket or a name: one source
            return host

    def _refuse(self, addr, reason):
        refused = self.counters["refused"]
        refused[reason] = refused.get(reason, 0) + 1
        self.connectionLog.refused((getattr(addr, "host", "?"), getattr(addr, "port", 0)), reason)
        return None

    def buildProtocol(self, addr):
        """
        Apply the rate, the per-source cap and the listener's size (fair
        eviction) before the sframe protocol is built.

        @return: the wrapped protocol, or None to close the connection.
        """
        prefix = self._prefix(addr)
        if not self.limiter.allow(prefix, self.reactor.seconds()):
            return self._refuse(addr, "rate-limited")
        if self.slots.held(prefix) >= self.config.maxConnectionsPerSource:
            return self._refuse(addr, "too-many-from-source")
        if self.slots.full():
            victim = self.slots.victimFor(prefix)
            if victim is None:
                return self._refuse(addr, "listener-full")
            self.counters["evicted"] += 1
            self.slots.remove(victim)
            peer = victim.transport.getPeer() if victim.transport is not None else None
            self.connectionLog.refused((getattr(peer, "host", "?"), getattr(peer, "port", 0)),
                                       "evicted for a new connection (listener full)")
            victim.transport.abortConnection()
        inner = self.wrappedFactory.buildProtocol(addr)
        if inner is None:  # the application refused
            return None
        wrapper = self.protocol(self, inner)
        self.slots.add(wrapper, prefix)
        return wrapper

    def unregisterProtocol(self, p):
        """
        A connection closed: its slot is free.
        """
        WrappingFactory.unregisterProtocol(self, p)
        self.slots.remove(p)

    def __len__(self):
        return len(self.slots)
