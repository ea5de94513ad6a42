"""
L{sudp.udp.session}: a session uses its engine through
L{sudp.engine.ISessionHost} and nothing else.
"""

from twisted.trial import unittest
from zope.interface.verify import verifyObject

from sudp.engine import ISessionHost
from sudp.keys import Identity
from sudp.udp.events import MessageReceived, ServerKeyAnnounced, SessionEnded
from sudp_test.enginehelpers import CLIENT_ADDR, connectedPair, serverSessionOf


class OnlyTheInterface:
    """
    A host that passes on to an engine what L{ISessionHost} names, and
    refuses anything else.
    """

    def __init__(self, engine):
        self._engine = engine
        self.asked = set()

    def __getattr__(self, name):
        if name not in ISessionHost.names():
            raise AttributeError(f"a Session asked its host for {name!r}, outside ISessionHost")
        self.asked.add(name)
        return getattr(self._engine, name)


class SessionHostTests(unittest.TestCase):
    def test_enginesProvide(self):
        """
        Both datagram engines provide L{ISessionHost}.
        """
        _, server, client = connectedPair()
        self.assertTrue(verifyObject(ISessionHost, server))
        self.assertTrue(verifyObject(ISessionHost, client))

    def test_nothingElse(self):
        """
        With hosts that give nothing beyond the interface, sessions still
        exchange messages, answer a CONFIRM (reset token, next key), rekey
        both ways, validate a new address and close.
        """
        net, server, client = connectedPair()
        server.nextIdentity = Identity.generate()
        session = serverSessionOf(server, client)
        session.host = serverHost = OnlyTheInterface(server)
        client.session.host = clientHost = OnlyTheInterface(client)
        client.sendMessage(client.session, b"hello", net.now)
        session.sendMessage(b"back", net.now)
        client.session._sendControl(client._confirm, net.now)  # a CONFIRM again: answered again
        net.pump()
        self.assertEqual([e.message for e in net.take("server", MessageReceived)], [b"hello"])
        self.assertEqual([e.message for e in net.take(CLIENT_ADDR, MessageReceived)], [b"back"])
        self.assertEqual(len(net.take(CLIENT_ADDR, ServerKeyAnnounced)), 1)
        self.assertIsNotNone(client.session.resetToken)
        client.session._startRekey(net.now)
        net.pump()
        session._startRekey(net.now)
        net.pump()
        self.assertEqual((client.session.sendEpoch.number, session.sendEpoch.number), (2, 2))
        newAddr = ("127.0.0.1", 40404)
        net.move(client, newAddr)
        client.sendMessage(client.session, b"moved", net.now)
        net.pump()
        self.assertEqual(session.peerAddr, newAddr)
        client.session.close(net.now)
        net.pump()
        self.assertEqual(len(net.take("server", SessionEnded)), 1)
        self.assertEqual(server.sessions, {})
        self.assertTrue({"queueDatagram", "reportEvent", "armTimer", "armCiphers", "count", "random", "identity",
                         "resetToken", "nextIdentity", "sessionClosed"} <= serverHost.asked, serverHost.asked)
        self.assertTrue({"queueDatagram", "reportEvent", "nextServerKey", "sessionClosed"} <= clientHost.asked)
