"""
Issue 14, point 1, over real sockets: a client holding its keys that sends
its session's packets with a victim's source address gets at most 3x its
bytes reflected there and nothing after, and the application keeps seeing
the real address; a genuine NAT rebinding (over a real relay) moves the
session within about a round trip and loses no message.
"""

from collections import Counter

from twisted.internet import defer, protocol, reactor
from twisted.trial import unittest

from sudp.udp.config import Config
from sudp.udp.endpoints import SUDPClientEndpoint
from sudp.udp.events import MessageReceived, SessionOpened

from sudp_test.attackers import CountingSocket, HandClient, listenServer
from sudp_test.natrelay import NATRelay
from sudp_test.waiting import sleep, waitUntil

AMPLIFICATION_FACTOR = 3  # the most an unvalidated address may get per byte it sent (protocol.md)
VICTIM = "127.0.3.1"
INJECTED = 10  # sealed DATA packets sent from the victim's address
AFTER = 20  # messages exchanged from the real address after the injection
STREAM = 200  # numbered messages of the rebinding test
SETTLE = 3  # messages after the first from the new address by which the server must have moved


def hostPort(address):
    """
    @return: C{(host, port)} of a Twisted address.
    """
    return address.host, address.port


class RecordingEcho(protocol.Protocol):
    """
    Echoes every message and records it with the peer address the
    transport gave at that moment.

    @ivar seen: C{(message, (host, port))} per message received.
    """

    def connectionMade(self):
        """
        Nothing seen yet.
        """
        self.seen = []

    def dataReceived(self, data):
        """
        Record C{data} with the current peer address, and echo it.
        """
        self.seen.append((data, hostPort(self.transport.getPeer())))
        self.transport.write(data)


class RecordingFactory(protocol.Factory):
    """
    Builds L{RecordingEcho}s and records the address each was built for.

    @ivar built: C{(protocol, (host, port))} per session.
    """

    protocol = RecordingEcho

    def __init__(self):
        self.built = []

    def buildProtocol(self, addr):
        """
        Build a L{RecordingEcho} and record C{addr}.
        """
        p = protocol.Factory.buildProtocol(self, addr)
        self.built.append((p, hostPort(addr)))
        return p


class SpoofedSourceTests(unittest.TestCase):
    """
    A client holding its own keys sends sealed packets from a victim's
    address (the test owns both sockets).
    """

    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        self.factory = RecordingFactory()
        port, identity = yield listenServer(reactor, self.factory, Config())
        self.addCleanup(port.stopListening)
        self.client = HandClient(reactor, identity.publicKey, ("127.0.0.1", port.getHost().port))
        self.client.bind("127.0.0.1")
        self.addCleanup(self.client.stopListening)
        self.victim = CountingSocket(reactor)
        self.victim.bind(VICTIM)
        self.addCleanup(self.victim.port.stopListening)
        self.client.start()
        yield waitUntil(lambda: self.client.eventsOf(SessionOpened) and self.factory.built,
                        "the session to open")
        self.client.send(b"before")
        yield waitUntil(lambda: b"before" in self.echoes(), "the first echo")
        [(self.server, self.builtFor)] = self.factory.built

    def echoes(self):
        """
        @return: the messages the client received.
        """
        return [e.message for e in self.client.eventsOf(MessageReceived)]

    @defer.inlineCallbacks
    def inject(self, sizes):
        """
        Send one sealed message of each size in C{sizes} from the victim's
        address.
        """
        self.client.divert = self.victim
        for n, size in enumerate(sizes):
            self.client.send((b"spoofed %d " % n).ljust(size, b"x"))
            yield sleep(0.01)
        self.client.divert = None

    def assertAtMostThreeTimes(self):
        """
        The victim received at most 3x the bytes sent from its address.
        """
        victim = self.victim
        self.assertLessEqual(
            victim.bytesReceived, AMPLIFICATION_FACTOR * victim.bytesSent,
            f"{victim.bytesSent} bytes sent from the victim's address drew {victim.bytesReceived} "
            f"there ({victim.bytesReceived / victim.bytesSent:.1f}x, {len(victim.received)} datagrams)")

    def assertOnlyRealAddress(self):
        """
        The application saw only the client's real address.
        """
        realAddr = self.client.address
        self.assertEqual(self.builtFor, realAddr)
        self.assertEqual(hostPort(self.server.transport.getPeer()), realAddr)
        self.assertEqual({peer for _, peer in self.server.seen}, {realAddr})

    @defer.inlineCallbacks
    def test_serverPushesStayWithRealAddress(self):
        """
        After small packets from the victim's address, what the server's
        application sends (state updates, larger than the packets) goes to
        the real address; the victim gets at most 3x the bytes sent from
        its address. (Before the fix: every push went to the victim.)
        """
        yield self.inject([8] * INJECTED)
        yield waitUntil(lambda: len(self.server.seen) == 1 + INJECTED, "the injected messages")
        for n in range(AFTER):
            self.server.transport.write((b"push %d " % n).ljust(300, b"p"))
            yield sleep(0.01)
        victim = self.victim
        yield waitUntil(
            lambda: (sum(m.startswith(b"push") for m in self.echoes()) == AFTER
                     or victim.bytesReceived > AMPLIFICATION_FACTOR * victim.bytesSent),
            "every push at the real address, or more than 3x at the victim's")
        self.assertAtMostThreeTimes()
        self.assertEqual(sum(m.startswith(b"push") for m in self.echoes()), AFTER)
        self.assertOnlyRealAddress()

    @defer.inlineCallbacks
    def test_nothingReachesVictimAfterInjection(self):
        """
        Once the injection stops and the client's next message from its
        real address has been echoed there, the victim receives nothing
        more while the session keeps exchanging echo traffic with the real
        address; the application only ever sees the real address, though
        the injected packets authenticate and are delivered. (Before the
        fix: the session moved to the victim.)
        """
        yield self.inject([120] * INJECTED)
        # the next message from the real address, echoed, marks the end of
        # what the injection may draw
        self.client.send(b"after 0")
        yield waitUntil(lambda: b"after 0" in self.echoes(), "the first echo after the injection")
        mark = reactor.seconds()
        for n in range(1, AFTER):
            self.client.send(b"after %d" % n)
            yield sleep(0.05)
        yield waitUntil(lambda: b"after %d" % (AFTER - 1) in self.echoes(), "the last echo")
        victim = self.victim
        late = victim.receivedSince(mark)
        self.assertAtMostThreeTimes()
        lateOnes = [(round(t - mark, 3), d[0], len(d)) for t, d, _ in victim.received if t >= mark]
        self.assertEqual(late, 0, f"{late} bytes reached the victim after the injection "
                         f"(seconds after, type, size): {lateOnes}")
        self.assertOnlyRealAddress()
        self.assertEqual(len(self.server.seen), 1 + INJECTED + AFTER)


class Collector(protocol.Protocol):
    """
    The client side of the rebinding test: records every echo.
    """

    def connectionMade(self):
        """
        No echo yet.
        """
        self.echoes = []

    def dataReceived(self, data):
        """
        Record one echo.
        """
        self.echoes.append(data)


class NATRebindingTests(unittest.TestCase):
    """
    A genuine NAT rebinding over a real relay: the client's source port
    changes mid-stream.
    """

    timeout = 30

    @defer.inlineCallbacks
    def test_rebindingMovesTheSessionAndLosesNothing(self):
        """
        The client streams numbered messages through a relay to the echo
        server; halfway the relay moves to a new source port. The server's
        protocol sees the new address from the SETTLE-th message after the
        first one from it (one round trip for the path challenge), and every
        message is delivered and echoed exactly once.
        """
        factory = RecordingFactory()
        port, identity = yield listenServer(reactor, factory, Config())
        self.addCleanup(port.stopListening)
        relay = NATRelay(reactor, ("127.0.0.1", port.getHost().port))
        relay.listen()
        self.addCleanup(relay.stop)
        host, relayPort = relay.address
        client = yield SUDPClientEndpoint(reactor, host, relayPort, identity.publicKey).connect(
            protocol.Factory.forProtocol(Collector))
        self.addCleanup(client.transport.loseConnection)
        oldAddr = relay.upstreamAddress
        half = STREAM // 2
        for n in range(STREAM):
            if n == half:
                # nothing in flight: what the old port still gets would be
                # the network's loss, not the protocol's
                yield waitUntil(lambda: len(client.echoes) == half, "the echoes before the rebinding")
                yield relay.rebind()
            client.transport.write(b"%d" % n)
            yield sleep(0.005)
        newAddr = relay.upstreamAddress
        expected = [b"%d" % n for n in range(STREAM)]
        yield waitUntil(lambda: len(client.echoes) >= STREAM, "every echo")
        yield sleep(0.1)  # a duplicate would be in by now
        [(server, builtFor)] = factory.built
        self.assertEqual(builtFor, oldAddr)
        self.assertNotEqual(newAddr, oldAddr)
        self.assertEqual(Counter(m for m, _ in server.seen), Counter(expected), "delivered exactly once")
        self.assertEqual(Counter(client.echoes), Counter(expected), "echoed exactly once")
        peers = [peer for _, peer in server.seen]
        self.assertEqual(set(peers[:half]), {oldAddr})
        self.assertEqual(set(peers[half + SETTLE:]), {newAddr},
                         f"the server saw the new address from message {peers.index(newAddr) - half} "
                         f"after the rebinding" if newAddr in peers else "never saw the new address")
        self.assertEqual(hostPort(server.transport.getPeer()), newAddr)
        self.assertEqual(relay.counters["c2s"]["received"], relay.counters["c2s"]["forwarded"])
        self.assertEqual(relay.counters["s2c"]["received"], relay.counters["s2c"]["forwarded"])
