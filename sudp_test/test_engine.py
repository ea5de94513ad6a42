"""
Tests for L{sudp.engine}: the engine contract the datagram engines keep,
and the drain loop their drivers share.
"""

from twisted.trial import unittest
from zope.interface.verify import verifyObject

from sudp.engine import IDatagramEngine, drain
from sudp.udp.events import MessageReceived

from sudp_test.enginehelpers import CLIENT_ADDR, SERVER_ADDR, connectedPair


class ContractTests(unittest.SynchronousTestCase):
    def test_bothEnginesProvideIt(self):
        net, server, client = connectedPair()
        self.assertTrue(verifyObject(IDatagramEngine, server))
        self.assertTrue(verifyObject(IDatagramEngine, client))

    def test_pullTakesOnce(self):
        """
        datagramsToSend and nextEvents give each datagram and event once, in
        order, and leave nothing behind.
        """
        net, server, client = connectedPair()
        client.send(b"one", net.now)
        client.send(b"two", net.now)
        out = client.datagramsToSend()
        self.assertEqual([dst for _, dst in out], [SERVER_ADDR, SERVER_ADDR])
        self.assertEqual(client.datagramsToSend(), [])
        server.receiveDatagrams([d for d, _ in out], CLIENT_ADDR, net.now)
        self.assertEqual([e.message for e in server.nextEvents()], [b"one", b"two"])
        self.assertEqual(server.nextEvents(), [])

    def test_handleTimer(self):
        """
        handleTimer at nextDeadline runs what is due (here a keepalive).
        """
        net, server, client = connectedPair()
        deadline = client.nextDeadline()
        self.assertIsNotNone(deadline)
        client.handleTimer(deadline)
        self.assertNotEqual(client.datagramsToSend(), [])

    def test_drainHandlesWhatHandlingQueues(self):
        """
        drain sends and handles until both queues are empty, also what an
        event handler queues meanwhile.
        """
        net, server, client = connectedPair()
        client.send(b"ping", net.now)
        server.receiveDatagrams([d for d, _ in client.datagramsToSend()], CLIENT_ADDR, net.now)
        sent, handled = [], []

        def handle(event):
            handled.append(event)
            if isinstance(event, MessageReceived):
                server.send(event.session, b"pong", net.now)  # queues a datagram while draining

        drain(server, sent.append, handle)
        self.assertEqual([type(e) for e in handled], [MessageReceived])
        self.assertEqual(len(sent), 1)
        self.assertEqual(server.datagramsToSend(), [])
