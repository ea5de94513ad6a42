# -*- test-case-name: sudp_test.udp.test_delivery -*-
"""
Tests for L{sudp.udp.delivery}: messages to a session's sink or as events,
on the pure-Python path (the C data path is held to the same by
L{sudp_test.udp.test_datapath}).
"""

from twisted.trial import unittest

from sudp.udp.config import Config
from sudp.udp.events import DeliveryFailed, MessageReceived

from sudp_test.enginehelpers import CLIENT_ADDR, seededPair, START, takeOutbox


class DeliveryTests(unittest.TestCase):
    def setUp(self):
        self.server, self.client = seededPair(21, Config())
        self.server._fast = None  # one datagram at a time, through Python
        self.session = next(iter(self.server.sessions.values()))

    def send(self, *messages):
        for m in messages:
            self.client.sendMessage(self.client.session, m, START)
        self.server.receiveDatagrams([d for d, _ in takeOutbox(self.client)], CLIENT_ADDR, START)

    def test_sink(self):
        """
        With a sink and no event pending, each message goes to the sink and
        no event is made; counters count them as received.
        """
        got = []
        self.server.deliverTo(self.session, got.append)
        self.send(b"a", b"b")
        self.assertEqual(got, [b"a", b"b"])
        self.assertEqual(self.server.nextEvents(), [])
        self.assertEqual(self.session.stats["received"], 2)

    def test_behindAnEvent(self):
        """
        With an event pending, messages queue behind it as events (the
        order of events and messages is kept); once the driver takes the
        events, the sink gets the next ones.
        """
        got = []
        self.server.deliverTo(self.session, got.append)
        pending = object()
        self.server.events.append(pending)
        self.send(b"a")
        events = self.server.nextEvents()
        self.assertIs(events[0], pending)
        self.assertIsInstance(events[1], MessageReceived)
        self.assertEqual(events[1].message, b"a")
        self.send(b"b")
        self.assertEqual(got, [b"b"])

    def test_sinkRaises(self):
        """
        A sink raising an Exception: the message counts as delivered, a
        DeliveryFailed event carries the exception and the message, and the
        next message (behind that event) comes as an event.
        """
        def failing(message):
            raise ValueError(message)

        self.server.deliverTo(self.session, failing)
        self.send(b"a", b"b")
        failed, after = self.server.nextEvents()
        self.assertIsInstance(failed, DeliveryFailed)
        self.assertEqual((failed.session, failed.message), (self.session, b"a"))
        self.assertIsInstance(failed.error, ValueError)
        self.assertIsNotNone(failed.error.__traceback__)
        self.assertEqual(after.message, b"b")
        self.assertEqual(self.session.stats["received"], 2)

    def test_interruptPropagates(self):
        """
        What is not an Exception (KeyboardInterrupt) is not caught.
        """
        def interrupted(message):
            raise KeyboardInterrupt()

        self.server.deliverTo(self.session, interrupted)
        self.client.sendMessage(self.client.session, b"x", START)
        [(data, _)] = takeOutbox(self.client)
        self.assertRaises(KeyboardInterrupt, self.server.receiveDatagram, data, CLIENT_ADDR, START)

    def test_backToEvents(self):
        """
        deliverTo(session, None) returns to events.
        """
        got = []
        self.server.deliverTo(self.session, got.append)
        self.server.deliverTo(self.session, None)
        self.send(b"a")
        self.assertEqual(got, [])
        self.assertEqual([e.message for e in self.server.nextEvents()], [b"a"])
