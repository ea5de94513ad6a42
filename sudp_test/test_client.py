"""
Tests for L{sudp.udp.client}: how a client's handshake fails, fast and
precisely (issue 15 point 3): a port where nothing listens, a server that
never answers, a server that restarted, suites the server refuses.
"""

from twisted.trial import unittest

from sudp.errors import HandshakeTimeout, ServerUnreachable
from sudp.keys import Identity
from sudp.udp.client import ClientEngine
from sudp.udp.config import Config
from sudp.udp.events import HandshakeFailure

from sudp_test.enginehelpers import SERVER_ADDR, START, connectedPair, takeOutbox


def newClient(config=None):
    client = ClientEngine(Identity.generate().publicKey, SERVER_ADDR, config or Config())
    client.start(START)
    takeOutbox(client)
    return client


def failures(engine):
    return [e.error for e in engine.events if isinstance(e, HandshakeFailure)]


class UnreachableTests(unittest.SynchronousTestCase):
    def test_portUnreachableFailsTheHandshake(self):
        """
        An ICMP port unreachable before any answer fails the handshake at
        once with ServerUnreachable, naming the address and what to check.
        """
        client = newClient()
        client.portUnreachable(START + 0.01)
        [error] = failures(client)
        self.assertIsInstance(error, ServerUnreachable)
        text = str(error)
        self.assertIn("127.0.0.1:9000", text)
        self.assertIn("nothing listens", text)
        self.assertIn("firewall", text)
        self.assertIsNone(client.nextDeadline())

    def test_unreachableIgnoredOnceTheServerAnswered(self):
        """
        After the server has answered (here: an open session), an ICMP
        error, which anyone on the path can forge, ends nothing; it is
        counted.
        """
        net, server, client = connectedPair()
        client.events.clear()
        client.portUnreachable(net.now)
        self.assertEqual(failures(client), [])
        self.assertEqual(client.drops["port-unreachable"], 1)
        self.assertEqual(client.session.state, "open")

    def test_timeoutSaysWhatToCheck(self):
        """
        A handshake that times out with no answer at all says so, with the
        address and what to check (the landed code said "state hello-sent").
        """
        client = newClient(Config(handshakeTimeout=2))
        client.onTimer(START + 2)
        [error] = failures(client)
        self.assertIsInstance(error, HandshakeTimeout)
        text = str(error)
        self.assertIn("127.0.0.1:9000", text)
        self.assertIn("no answer", text)
        self.assertNotIn("hello-sent", text)
