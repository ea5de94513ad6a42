# -*- test-case-name: sudp_test.udp.test_path -*-
"""
Tests for L{sudp.udp.path}.

Tests for L{sudp.udp.path} and path validation in the server's sessions:
a session moves to a new address only when that address answers a fresh
challenge, and an unvalidated address never gets more than three times the
bytes it sent.

Issue 14, point 1, over real sockets: a client holding its keys that sends
its session's packets with a victim's source address gets at most 3x its
bytes reflected there and nothing after, and the application keeps seeing
the real address; a genuine NAT rebinding (over a real relay) moves the
session within about a round trip and loses no message.
"""

from collections import Counter

from twisted.internet import defer, protocol, reactor
from twisted.trial import unittest

from sudp.udp import packets as P, records as R
from sudp.udp.client import ClientEngine
from sudp.udp.config import Config
from sudp.udp.endpoints import SUDPClientEndpoint
from sudp.udp.events import MessageReceived, SessionOpened
from sudp.udp.path import AMPLIFICATION_FACTOR, MAX_CHALLENGES, PathProbe

from sudp_test.attackers import CountingSocket, HandClient, listenServer
from sudp_test.enginehelpers import (
    CLIENT_ADDR,
    connectedPair,
    Network,
    newServer,
    SERVER_ADDR,
    serverSessionOf,
    takeOutbox,
)
from sudp_test.natrelay import NATRelay
from sudp_test.waiting import sleep, waitUntil

VICTIM = ("127.0.0.99", 4444)

NEW_ADDR = ("127.0.0.1", 50123)

def bytesTo(net, addr, since=0):
    """
    @return: the bytes the server sent to C{addr} in C{net.sent[since:]}.
    """
    return sum(len(d) for src, dst, d in net.sent[since:] if src == SERVER_ADDR and dst == addr)

class PathProbeTests(unittest.TestCase):
    def test_budget(self):
        """
        A probe allows three times the bytes received, counting what was
        sent.
        """
        probe = PathProbe(VICTIM, 100, 0.0, 3.0)
        self.assertTrue(probe.allows(AMPLIFICATION_FACTOR * 100))
        self.assertFalse(probe.allows(AMPLIFICATION_FACTOR * 100 + 1))
        probe.charge(250)
        self.assertTrue(probe.allows(50))
        self.assertFalse(probe.allows(51))
        probe.received += 10
        self.assertTrue(probe.allows(80))

    def test_answers(self):
        """
        Only a challenge sent, and one of the last few, is answered.
        """
        probe = PathProbe(VICTIM, 100, 0.0, 3.0)
        self.assertFalse(probe.answers(b"\0" * 16))
        sent = [bytes([i]) * 16 for i in range(MAX_CHALLENGES + 1)]
        for c in sent:
            probe.addChallenge(c)
        self.assertFalse(probe.answers(sent[0]))
        for c in sent[1:]:
            self.assertTrue(probe.answers(c))
        self.assertFalse(probe.answers(b"\x01" * 15 + b"\x02"))

class SpoofedSourceTests(unittest.TestCase):
    """
    A client that holds its session's keys sends authentic packets with a
    victim's source address: the session must not move, the victim gets at
    most three times the bytes sent in its name, and nothing after.
    """

    def setUp(self):
        self.net, self.server, self.client = connectedPair()
        self.session = serverSessionOf(self.server, self.client)

    def spoof(self, message):
        """
        Seal C{message} with the client's keys and deliver it from VICTIM.

        @return: its size.
        """
        self.client.sendMessage(self.client.session, message, self.net.now)
        [(data, _)] = takeOutbox(self.client)
        self.server.receiveDatagram(data, VICTIM, self.net.now)
        return len(data)

    def test_doesNotMove(self):
        """
        The spoofed packet is delivered (it is authentic), but the session
        stays on the validated address; its replies go there.
        """
        self.spoof(b"from the victim's address")
        [event] = [e for e in self.server.events if isinstance(e, MessageReceived)]
        self.assertEqual(event.message, b"from the victim's address")
        self.server.events = []
        self.assertEqual(self.session.peerAddr, CLIENT_ADDR)
        self.server.sendMessage(self.session, b"reply", self.net.now)
        destinations = [dst for _, dst in self.server.outbox]
        self.assertIn(CLIENT_ADDR, destinations)
        self.net.pump()
        [msg] = self.net.take(CLIENT_ADDR, MessageReceived)
        self.assertEqual(msg.message, b"reply")

    def test_reflectionBounded(self):
        """
        Whatever the session sends while the victim's address is being
        validated (echoes of a stream of messages, keepalives, challenge
        retransmissions), the victim receives at most three times the bytes
        sent in its name, and nothing once the real client is heard from its
        validated address again, while the session goes on with it.
        """
        sent = 0
        start = len(self.net.sent)
        for i in range(20):
            sent += self.spoof(b"x" * 10)
            for _ in range(5):  # the application answers with more than it got
                self.server.sendMessage(self.session, b"y" * 200, self.net.now)
            self.net.pump()
            self.net.advance(0.1)
        self.assertGreater(bytesTo(self.net, VICTIM, start), 0)  # the challenges went there
        after = len(self.net.sent)
        for i in range(100):  # the real client and the server go on talking
            self.client.sendMessage(self.client.session, b"real %d" % i, self.net.now)
            self.net.pump()
            self.server.sendMessage(self.session, b"answer %d" % i, self.net.now)
            self.net.pump()
            self.net.advance(0.5)
        self.assertLessEqual(bytesTo(self.net, VICTIM, start), AMPLIFICATION_FACTOR * sent)
        # the client's next packet from its validated address ends the probe:
        # nothing more goes to the victim
        self.assertEqual(bytesTo(self.net, VICTIM, after), 0)
        self.assertEqual(self.session.peerAddr, CLIENT_ADDR)
        self.assertIsNone(self.session.probe)
        self.assertEqual(self.server.drops["path-abandoned"], 1)
        self.assertEqual(len(self.net.take(CLIENT_ADDR, MessageReceived)), 100 + 100)

    def test_victimCannotBeMadeToAnswer(self):
        """
        The victim (here, any third party replaying the challenge it got)
        cannot move the session: an answer must come from the probed address
        and echo a challenge the server sent.
        """
        self.spoof(b"spoofed")
        [(challenge, dst)] = [(d, a) for d, a in takeOutbox(self.server) if a == VICTIM]
        # the victim has no keys; the attacker, holding them, answers from its own address
        self.client.receiveDatagram(challenge, SERVER_ADDR, self.net.now)
        [(answer, _)] = takeOutbox(self.client)
        self.server.receiveDatagram(answer, CLIENT_ADDR, self.net.now)
        self.assertEqual(self.session.peerAddr, CLIENT_ADDR)
        self.assertEqual(self.server.drops["path-response-mismatch"], 1)
        # and a made-up answer from the victim's address does not validate it
        self.client.session._sendControl(R.encodeRecord(R.PATH_RESPONSE, b"\0" * 16), self.net.now)
        [(forged, _)] = takeOutbox(self.client)
        self.server.receiveDatagram(forged, VICTIM, self.net.now)
        self.assertEqual(self.session.peerAddr, CLIENT_ADDR)
        self.assertEqual(self.server.drops["path-response-mismatch"], 2)

class RebindingTests(unittest.TestCase):
    def test_oneRoundTripNoLoss(self):
        """
        A genuine NAT rebinding: the client's packets come from a new port.
        The server validates it in one round trip, and nothing is lost on
        the way: what the server sends meanwhile also reaches the new port
        (within its budget; the client's replay window drops the spare
        copies that reach it twice).
        """
        net, server, client = connectedPair()
        session = serverSessionOf(server, client)
        net.move(client, NEW_ADDR)  # the old mapping is gone: nothing reaches CLIENT_ADDR
        client.sendMessage(client.session, b"c2s after the rebinding", net.now)
        for data, _ in takeOutbox(client):
            server.receiveDatagram(data, NEW_ADDR, net.now)
        self.assertEqual(session.peerAddr, CLIENT_ADDR)
        # the server answers before the path is validated
        server.sendMessage(session, b"s2c during validation", net.now)
        net.pump()
        self.assertEqual(session.peerAddr, NEW_ADDR)
        self.assertEqual(server.counters["paths-validated"], 1)
        got = [e.message for e in net.take(NEW_ADDR, MessageReceived)]
        self.assertEqual(got, [b"s2c during validation"])
        self.assertEqual([e.message for e in net.take("server", MessageReceived)], [b"c2s after the rebinding"])
        # from now on the server sends to the new address only
        start = len(net.sent)
        server.sendMessage(session, b"after", net.now)
        net.pump()
        self.assertEqual([dst for src, dst, _ in net.sent[start:] if src == SERVER_ADDR], [NEW_ADDR])
        self.assertEqual(client.drops["replay"], 0)

    def test_challengeRetransmitted(self):
        """
        A lost challenge is sent again, fresh, while the budget allows; the
        answer to the second one validates the path.
        """
        net, server, client = connectedPair()
        session = serverSessionOf(server, client)
        net.move(client, NEW_ADDR)
        for i in range(3):
            client.sendMessage(client.session, b"%d" % i, net.now)
        net.pump(drop=lambda data, src, dst: src == SERVER_ADDR)
        self.assertEqual(session.peerAddr, CLIENT_ADDR)
        self.assertEqual(server.counters["path-challenges"], 1)
        net.advance(Config().retransmitInitial)
        self.assertEqual(server.counters["path-challenges"], 2)
        self.assertEqual(session.peerAddr, NEW_ADDR)

    def test_abandonedAfterTimeout(self):
        """
        An address that never answers is given up after
        pathValidationTimeout; the session stays where it was.
        """
        net, server, client = connectedPair(serverConfig=Config(pathValidationTimeout=1.0))
        session = serverSessionOf(server, client)
        net.move(client, NEW_ADDR)
        client.sendMessage(client.session, b"lost answers", net.now)
        net.pump(drop=lambda data, src, dst: src == NEW_ADDR and data[0] & 0xFE == P.CONTROL)
        net.drop = lambda data, src, dst: src == NEW_ADDR and data[0] & 0xFE == P.CONTROL
        net.advance(1.0)
        self.assertIsNone(session.probe)
        self.assertEqual(session.peerAddr, CLIENT_ADDR)
        self.assertEqual(server.drops["path-validation-failed"], 1)
        net.drop = lambda data, src, dst: False
        client.sendMessage(client.session, b"tries again", net.now)
        net.pump()
        self.assertEqual(session.peerAddr, NEW_ADDR)

    def test_nothingMovesBeforeOpen(self):
        """
        A CONFIRM from another address than the INIT's opens the session on
        the INIT's cookie-proven address: the application is built with that
        one.
        """
        server = newServer()
        net = Network(server)
        client = net.add(ClientEngine(server.identity.publicKey, SERVER_ADDR, Config()), CLIENT_ADDR)
        client.start(net.now)
        net.pump(drop=lambda data, src, dst: data[0] == P.CONTROL)  # up to the CONFIRM, held
        [confirm] = [d for src, dst, d in net.sent if src == CLIENT_ADDR and d[0] == P.CONTROL]
        server.receiveDatagram(confirm, VICTIM, net.now)
        [opened] = [e for e in server.events if isinstance(e, SessionOpened)]
        self.assertEqual(opened.session.peerAddr, CLIENT_ADDR)
        self.assertIsNone(opened.session.probe)

    def test_clientNeverMoves(self):
        """
        A client's session stays on the server's address, whatever address
        an authentic packet seems to come from; servers ignore challenges.
        """
        net, server, client = connectedPair()
        session = serverSessionOf(server, client)
        server.sendMessage(session, b"hello", net.now)
        [(data, _)] = takeOutbox(server)
        client.receiveDatagram(data, VICTIM, net.now)
        self.assertEqual(client.session.peerAddr, SERVER_ADDR)
        client.session._sendControl(R.encodeRecord(R.PATH_CHALLENGE, b"c" * 16), net.now)
        for data, _ in takeOutbox(client):
            server.receiveDatagram(data, CLIENT_ADDR, net.now)
        self.assertEqual(server.drops["unexpected-path-challenge"], 1)
        self.assertEqual(takeOutbox(server), [])

PROTOCOL_AMPLIFICATION_FACTOR = 3  # the most an unvalidated address may get per byte it sent (protocol.md)

VICTIM_HOST = "127.0.3.1"

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

class SpoofedSourceOverSocketsTests(unittest.TestCase):
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
        self.victim.bind(VICTIM_HOST)
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
            victim.bytesReceived, PROTOCOL_AMPLIFICATION_FACTOR * victim.bytesSent,
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
                     or victim.bytesReceived > PROTOCOL_AMPLIFICATION_FACTOR * victim.bytesSent),
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


class FollowPeerTests(unittest.TestCase):
    """
    With followPeer (peer mode, where either side may sit behind a NAT), a
    client validates a new server address as a server validates a client's,
    and moves only once the server answered from there.
    """

    def test_clientFollowsAValidatedServer(self):
        config = Config(followPeer=True)
        net, server, client = connectedPair(config=config)
        session = serverSessionOf(server, client)
        server.sendMessage(session, b"from the server's new address", net.now)
        for data, _ in takeOutbox(server):
            client.receiveDatagram(data, NEW_ADDR, net.now)  # the server's NAT rebound
        self.assertEqual([e.message for e in client.nextEvents() if isinstance(e, MessageReceived)],
                         [b"from the server's new address"])
        self.assertEqual(client.session.peerAddr, SERVER_ADDR)  # not before it is validated
        out = takeOutbox(client)
        self.assertIn(NEW_ADDR, [dst for _, dst in out])  # the challenge goes to the new address
        for data, dst in out:
            if dst == NEW_ADDR:
                server.receiveDatagram(data, CLIENT_ADDR, net.now)
        for data, _ in takeOutbox(server):  # the server answers the challenge
            client.receiveDatagram(data, NEW_ADDR, net.now)
        self.assertEqual(client.session.peerAddr, NEW_ADDR)
        self.assertEqual(client.counters["paths-validated"], 1)

    def test_spoofedServerAddressDoesNotMoveTheClient(self):
        """
        An authentic packet replayed from elsewhere starts a probe that no
        one answers: the client stays, and gives the address up.
        """
        config = Config(followPeer=True, pathValidationTimeout=1.0)
        net, server, client = connectedPair(config=config)
        session = serverSessionOf(server, client)
        server.sendMessage(session, b"copied by an attacker", net.now)
        [(data, _)] = takeOutbox(server)
        client.receiveDatagram(data, VICTIM, net.now)
        net.pump(drop=lambda data, src, dst: dst == VICTIM)
        net.advance(1.0)
        self.assertEqual(client.session.peerAddr, SERVER_ADDR)
        self.assertEqual(client.drops["path-validation-failed"], 1)
