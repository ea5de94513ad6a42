# -*- test-case-name: sudp_test.peer.test_signals -*-
"""
Tests for L{sudp.peer.signals}.
"""

import logging

from twisted.trial import unittest

from sudp.peer.signals import Signal


class SignalTests(unittest.SynchronousTestCase):
    def test_connectEmitDisconnect(self):
        signal, got = Signal("udp_recv_data"), []
        first = lambda *a, **k: got.append(("first", a, k))  # noqa: E731
        second = lambda *a, **k: got.append(("second", a, k))  # noqa: E731
        signal.connect(first)
        signal.connect(second)
        signal.connect(first)  # once only
        signal.emit("text", ("127.0.0.1", 1), extra=2)
        self.assertEqual(got, [("first", ("text", ("127.0.0.1", 1)), {"extra": 2}),
                               ("second", ("text", ("127.0.0.1", 1)), {"extra": 2})])
        signal.disconnect(first)
        signal.disconnect(first)  # not connected: ignored
        del got[:]
        signal.emit(1)
        self.assertEqual(got, [("second", (1,), {})])
        signal.disconnect()
        self.assertEqual(len(signal), 0)

    def test_slotThatRaisesIsLogged(self):
        """
        A slot that raises is logged to sudp.peer and the next still runs.
        """
        signal, got = Signal("udp_recv_data"), []
        signal.connect(lambda x: 1 / 0)
        signal.connect(got.append)
        with self.assertLogs("sudp.peer", logging.ERROR) as logs:
            signal.emit("x")
        self.assertEqual(got, ["x"])
        self.assertIn("udp_recv_data", logs.output[0])
        self.assertIn("ZeroDivisionError", logs.output[0])

    def test_connectNeedsACallable(self):
        e = self.assertRaises(TypeError, Signal("s").connect, "not callable")
        self.assertIn("callable", str(e))
