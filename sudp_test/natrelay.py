# -*- test-case-name: sudp_test.udp.test_path_integration -*-
"""
An in-process UDP relay that behaves like a NAT whose mapping changes (a NAT
rebinding), for integration tests.

The client sends to the relay's downstream port (L{NATRelay.address}); the
relay forwards to the server from its upstream socket, whose address is
what the server sees as the client's, and forwards the server's replies
back to the client. L{NATRelay.rebind} moves the upstream side to a new
source port and closes the old one, as a NAT does when its mapping expires:
from then on the server sees the client at a new address, and what the
server still sends to the old one is lost in the network, not in the relay.
The relay itself loses nothing: every datagram it receives is forwarded at
once (counted in L{NATRelay.counters}).

    relay = NATRelay(reactor, ("127.0.0.1", serverPort))
    relay.listen()
    self.addCleanup(relay.stop)
    ... connect the client to relay.address ...
    yield relay.rebind()
"""

from collections import Counter

from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol

CLIENT_TO_SERVER = "c2s"
"""Datagrams from the client to the server."""

SERVER_TO_CLIENT = "s2c"
"""Datagrams from the server to the client."""


class _Side(DatagramProtocol):
    noisy = False

    def __init__(self, receive):
        self._receive = receive

    def datagramReceived(self, data, addr):
        self._receive(self, data, (addr[0], addr[1]))


class NATRelay:
    """
    A UDP relay between one client and one server with a rebindable
    upstream (server-facing) source port.

    @ivar serverAddr: C{(host, port)} of the server.
    @ivar clientAddr: the client's address, learned from the first datagram
        on the downstream port; None until then.
    @ivar counters: C{{direction: Counter}} of C{received}, C{forwarded}
        and C{sendErrors}; plus C{strangers} (datagrams from a third address)
        under the key C{"other"}.
    @ivar rebinds: how many times the upstream port changed.
    """

    def __init__(self, reactor, serverAddr, interface="127.0.0.1"):
        self.reactor = reactor
        self.serverAddr = (serverAddr[0], serverAddr[1])
        self.interface = interface
        self.clientAddr = None
        self.counters = {CLIENT_TO_SERVER: Counter(), SERVER_TO_CLIENT: Counter(), "other": Counter()}
        self.rebinds = 0
        self._down = self._up = None

    def listen(self):
        """
        Open the downstream (client-facing) and upstream (server-facing)
        ports on ephemeral ports of the interface.
        """
        self._down = self.reactor.listenUDP(0, _Side(self._received), interface=self.interface)
        self._up = self._bindUpstream()

    def _bindUpstream(self):
        return self.reactor.listenUDP(0, _Side(self._received), interface=self.interface)

    @property
    def address(self):
        """
        C{(host, port)} the client sends to.
        """
        host = self._down.getHost()
        return host.host, host.port

    @property
    def upstreamAddress(self):
        """
        C{(host, port)} the server sees as the client's, now.
        """
        host = self._up.getHost()
        return host.host, host.port

    def rebind(self):
        """
        Move the upstream side to a new source port and close the old one.

        @return: a L{Deferred} that fires once the old port is closed.
        """
        old, self._up = self._up, self._bindUpstream()
        self.rebinds += 1
        return defer.maybeDeferred(old.stopListening)

    def _received(self, side, data, addr):
        if side.transport is self._down:
            if self.clientAddr is None:
                self.clientAddr = addr
            if addr != self.clientAddr:
                self.counters["other"]["strangers"] += 1
                return
            self._forward(CLIENT_TO_SERVER, self._up, data, self.serverAddr)
        elif side.transport is self._up and addr == self.serverAddr and self.clientAddr is not None:
            self._forward(SERVER_TO_CLIENT, self._down, data, self.clientAddr)
        else:
            self.counters["other"]["strangers"] += 1

    def _forward(self, direction, port, data, dest):
        counts = self.counters[direction]
        counts["received"] += 1
        try:
            port.write(data, dest)
        except OSError:
            counts["sendErrors"] += 1
            return
        counts["forwarded"] += 1

    def stop(self):
        """
        Close both ports; safe to call more than once.

        @return: a L{Deferred} that fires once they are closed.
        """
        ports = [p for p in (self._down, self._up) if p is not None]
        self._down = self._up = None
        return defer.gatherResults([defer.maybeDeferred(p.stopListening) for p in ports])
