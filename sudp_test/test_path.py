"""
Tests for L{sudp.udp.path} and path validation in the server's sessions:
a session moves to a new address only when that address answers a fresh
challenge, and an unvalidated address never gets more than three times the
bytes it sent.
"""

from twisted.trial import unittest

from sudp.udp import packets as P
from sudp.udp import records as R
from sudp.udp.config import Config
from sudp.udp.events import MessageReceived, SessionOpened
from sudp.udp.path import AMPLIFICATION_FACTOR, MAX_CHALLENGES, PathProbe

from sudp_test.enginehelpers import (
    CLIENT_ADDR,
    SERVER_ADDR,
    Network,
    connectedPair,
    newServer,
    serverSessionOf,
    takeOutbox,
)
from sudp.udp.client import ClientEngine

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
