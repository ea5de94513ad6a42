# -*- test-case-name: sudp_test.stream.test_listener -*-
"""
Tests for L{sudp.stream.listener} and the limits of sframe listeners: the
rate and the cap per source, fair eviction when full, the idle timeout with
keepalives, a peer that does not read, and a listener at its descriptor
limit that still lets a new client in (real sockets on 127.x).
"""

import os
import textwrap
import time

from twisted.internet import defer, protocol, reactor
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.endpoints import clientFromString, TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.task import Clock
from twisted.trial import unittest

from sudp.keys import Identity, saveIdentity
from sudp.stream.endpoints import SFrameClientEndpoint, SFrameServerEndpoint
from sudp.stream.handshake import StreamConfig
from sudp.stream.listener import defaultMaxConnections, DESCRIPTOR_HEADROOM, LimitedListenerFactory
from sudp.tap import Echo

from sudp_test.attackers import established, serverProcess, silentConnections
from sudp_test.paths import ROOT
from sudp_test.waiting import sleep, waitUntil

class _Transport:
    def __init__(self, addr):
        self.addr = addr
        self.aborted = False

    def getPeer(self):
        return self.addr

    def abortConnection(self):
        self.aborted = True

class _Inner(protocol.Protocol):
    pass

class _InnerFactory(protocol.Factory):
    protocol = _Inner

def _addr(host, port=1000):
    return (IPv6Address if ":" in host else IPv4Address)("TCP", host, port)

class LimitedListenerFactoryTests(unittest.TestCase):
    def factory(self, **changes):
        self.clock = Clock()
        self.clock.advance(1000)
        return LimitedListenerFactory(_InnerFactory(), StreamConfig(**changes), self.clock)

    def accept(self, factory, host, port=1000):
        addr = _addr(host, port)
        p = factory.buildProtocol(addr)
        if p is not None:
            p.makeConnection(_Transport(addr))
        return p

    def test_perSourceCap(self):
        """
        One source holds at most maxConnectionsPerSource; others are not
        affected; a closed connection frees its place.
        """
        f = self.factory(maxConnectionsPerSource=3, maxConnections=100)
        held = [self.accept(f, "10.0.0.1", i) for i in range(3)]
        self.assertIsNone(self.accept(f, "10.0.0.1", 99))
        self.assertIsNotNone(self.accept(f, "10.0.0.2"))
        self.assertEqual(f.counters["refused"], {"too-many-from-source": 1})
        held[0].connectionLost(None)
        self.assertIsNotNone(self.accept(f, "10.0.0.1", 98))

    def test_ratePerSource(self):
        """
        More than handshakeBurst connections at once from one source (an
        IPv6 /64 counts as one) are closed before any protocol is built.
        """
        f = self.factory(handshakeBurst=5, handshakesPerSecond=1, maxConnections=100)
        got = [self.accept(f, f"2001:db8::{i + 1:x}") for i in range(8)]
        self.assertEqual(sum(p is not None for p in got), 5)
        self.assertEqual(f.counters["refused"], {"rate-limited": 3})
        self.assertIsNotNone(self.accept(f, "2001:db8:0:1::1"))
        self.clock.advance(1)
        self.assertIsNotNone(self.accept(f, "2001:db8::99"))

    def test_fairEviction(self):
        """
        When full, a newcomer takes the oldest connection of the source
        holding the most (at least two more than the newcomer's); a source
        holding as many as any is refused.
        """
        f = self.factory(maxConnections=6, maxConnectionsPerSource=10)
        first = [self.accept(f, "10.0.0.1", i) for i in range(4)]
        others = [self.accept(f, "10.0.0.2", i) for i in range(2)]
        newcomer = self.accept(f, "10.0.0.3")
        self.assertIsNotNone(newcomer)
        self.assertTrue(first[0].transport.aborted)
        self.assertEqual(f.counters["evicted"], 1)
        self.assertEqual(len(f), 6)
        self.assertIsNone(self.accept(f, "10.0.0.1", 50))  # it holds the most: no one gives way
        self.assertEqual(f.counters["refused"], {"listener-full": 1})
        self.assertFalse(any(p.transport.aborted for p in others))

    def test_defaultFromDescriptorLimit(self):
        """
        maxConnections=0 takes the descriptor limit less the headroom.
        """
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.assertEqual(defaultMaxConnections(), max(16, min(10000, soft - DESCRIPTOR_HEADROOM)))
        self.assertEqual(self.factory().maxConnections, defaultMaxConnections())
        self.assertEqual(self.factory(maxConnections=7).maxConnections, 7)

class _RealListenerMixin:
    timeout = 60

    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.keyFile = os.path.join(self.dir, "server.key")
        self.identity = Identity.generate()
        saveIdentity(self.identity, self.keyFile)

    @defer.inlineCallbacks
    def listen(self, config, factory=None):
        endpoint = SFrameServerEndpoint(reactor, TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"),
                                        self.identity, config)
        port = yield endpoint.listen(factory or protocol.Factory.forProtocol(Echo))
        self.addCleanup(port.stopListening)
        self.port = port
        return port

    def client(self, options=""):
        return clientFromString(
            reactor, f"sframe:serverKey={self.identity.publicKey.toText()}:endpoint=tcp\\:127.0.0.1\\:"
                     f"{self.port.getHost().port}{options}")

class _Collect(protocol.Protocol):
    def __init__(self):
        self.received = b""
        self.lost = defer.Deferred()

    def dataReceived(self, data):
        self.received += data

    def connectionLost(self, reason):
        self.lost.callback(reason.value)

class ConnectionLogTests(_RealListenerMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def test_openedEndedRefused(self):
        """
        A listener logs each session opened and ended (address, suite,
        reason) and each client refused, with transport "sframe".
        """
        from twisted.logger import globalLogPublisher

        events = []

        def observe(event):
            if "sudp_event" in event:
                events.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        yield self.listen(StreamConfig(maxConnectionsPerSource=1))
        client = yield self.client().connect(protocol.Factory.forProtocol(_Collect))
        local = client.transport.getHost()
        yield waitUntil(lambda: any(e["sudp_event"] == "opened" for e in events), "the opened event")
        [opened] = [e for e in events if e["sudp_event"] == "opened"]
        self.assertEqual((opened["address"], opened["transport"]), (f"127.0.0.1:{local.port}", "sframe"))
        self.assertEqual(opened["suite"], "aes-256-ctr-sha256")
        refused = self.client().connect(protocol.Factory.forProtocol(_Collect))  # a second from 127.0.0.1
        yield self.assertFailure(refused, Exception)
        yield waitUntil(lambda: any(e["sudp_event"] == "refused" for e in events), "the refused event")
        [refusal] = [e for e in events if e["sudp_event"] == "refused"]
        self.assertEqual(refusal["reason"], "too-many-from-source")
        client.transport.loseConnection()
        yield client.lost
        yield waitUntil(lambda: any(e["sudp_event"] == "ended" for e in events), "the ended event")
        [ended] = [e for e in events if e["sudp_event"] == "ended"]
        self.assertEqual(ended["reason"], "closed-by-peer")

class IdleTests(_RealListenerMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def test_silentPeerClosed(self):
        """
        A connection on which nothing arrives for idleTimeout is closed
        (idle-timeout); on the landed code it stayed open for ever.
        """
        yield self.listen(StreamConfig(idleTimeout=1.0, keepaliveInterval=0.3))
        client = yield self.client(":idleTimeout=30:keepaliveInterval=20").connect(
            protocol.Factory.forProtocol(_Collect))
        started = time.monotonic()
        reason = yield client.lost.addTimeout(10, reactor)
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(reason.reason, "connection-lost")  # the server cut it

    @defer.inlineCallbacks
    def test_keepalivesKeepQuietConnection(self):
        """
        Two sframe peers that say nothing for three idle timeouts stay
        connected: each sends KEEPALIVE frames when quiet.
        """
        yield self.listen(StreamConfig(idleTimeout=1.0, keepaliveInterval=0.3))
        client = yield self.client(":idleTimeout=1:keepaliveInterval=0.3").connect(
            protocol.Factory.forProtocol(_Collect))
        yield sleep(3.0)
        self.assertFalse(client.lost.called)
        client.transport.write(b"still here")
        yield waitUntil(lambda: client.received == b"still here", "the echo")
        client.transport.loseConnection()
        yield client.lost

class BackpressureTests(_RealListenerMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def test_peerThatDoesNotRead(self):
        """
        A client that sends 16 MiB to the echo server and reads nothing: the
        server stops reading from it once its write buffer is full, so what
        it holds for that peer stays bounded (on the landed code it grew by
        about what was sent).
        """
        yield self.listen(StreamConfig())
        client = yield self.client().connect(protocol.Factory.forProtocol(_Collect))
        client.transport.pauseProducing()  # this client never reads
        chunk = os.urandom(64 * 1024)
        for _ in range(256):
            client.transport.write(chunk)
        yield sleep(1.5)
        [wrapper] = self.port.factory.protocols
        tcp = wrapper.transport
        buffered = len(tcp.dataBuffer) + tcp._tempDataLen
        self.assertLess(buffered, 1 << 20, f"{buffered} bytes buffered for a peer that does not read")
        self.assertTrue(tcp.producerPaused or wrapper.wrappedProtocol.engine.paused)
        client.transport.abortConnection()

DESCRIPTOR_SERVER = textwrap.dedent(r"""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
    from twisted.internet import reactor, protocol
    from twisted.internet.endpoints import serverFromString
    from sudp.tap import Echo
    def listening(port):
        print(port.getHost().port, flush=True)
    # a long handshakeTimeout, so the attackers' silent connections stay
    d = serverFromString(reactor, "sframe:key=" + sys.argv[1]
                         + r":handshakeTimeout=60:endpoint=tcp\:0\:interface=127.0.0.1")
    d.listen(protocol.Factory.forProtocol(Echo)).addCallback(listening)
    reactor.callLater(60, reactor.stop)
    reactor.run()
""")

class DescriptorTests(_RealListenerMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def test_bystanderGetsIn(self):
        """
        A server limited to 1,024 descriptors is sent 1,100 idle connections
        from 110 attacker addresses (127.0.1.1-110, 10 each, none sending
        a byte): it holds 960 (its descriptor limit less 64); a bystander
        from another address still connects and is echoed, taking the slot
        of an attacker's oldest connection (on the landed code the server
        held 1,014 and every new client was locked out).
        """
        server, port = serverProcess(self, DESCRIPTOR_SERVER, self.keyFile, cwd=ROOT)
        silentConnections(self, port, 1100)
        # until the server has taken every connection it can (the kernel
        # retries the SYNs its backlog dropped)
        fds = f"/proc/{server.pid}/fd"
        yield waitUntil(lambda: established(port) >= 960, "the server to be saturated", timeout=20)
        inner = TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=5, bindAddress=("127.0.2.1", 0))
        client = yield SFrameClientEndpoint(reactor, inner, self.identity.publicKey).connect(
            protocol.Factory.forProtocol(_Collect))
        client.transport.write(b"bystander")
        yield waitUntil(lambda: client.received == b"bystander", "the bystander's echo", timeout=5)
        self.assertLessEqual(len(os.listdir(fds)), 1024)
        client.transport.loseConnection()
        yield client.lost
