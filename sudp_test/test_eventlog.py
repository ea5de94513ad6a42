# -*- test-case-name: sudp_test.test_eventlog -*-
"""
Tests for L{sudp.eventlog}: connection events, and the limit that keeps a
flood out of the log.
"""

from twisted.internet.task import Clock
from twisted.logger import LogLevel
from twisted.trial import unittest

from sudp.eventlog import ConnectionLog, ENDED, OPENED, REFUSED

class _Recorder:
    def __init__(self):
        self.events = []

    def emit(self, level, format, **fields):
        self.events.append((level, format, fields))

class ConnectionLogTests(unittest.TestCase):
    def setUp(self):
        self.clock = Clock()
        self.recorder = _Recorder()
        self.log = ConnectionLog(self.clock, rate=2, burst=3, log=self.recorder, transport="udp")

    def test_fields(self):
        """
        Each kind of event carries the address, key fingerprint, suite and
        reason as structured fields.
        """
        self.log.refused(("10.0.0.1", 5), "server-full", fingerprint="SHA256:x", suite="chacha20-poly1305")
        self.log.opened(("::1", 7), fingerprint="SHA256:y", suite="aes-256-gcm")
        self.log.ended(("10.0.0.1", 5), "idle-timeout")
        kinds = [f["sudp_event"] for _, _, f in self.recorder.events]
        self.assertEqual(kinds, [REFUSED, OPENED, ENDED])
        level, format, fields = self.recorder.events[0]
        self.assertEqual(level, LogLevel.info)
        self.assertEqual(fields["address"], "10.0.0.1:5")
        self.assertEqual(fields["reason"], "server-full")
        self.assertEqual(fields["fingerprint"], "SHA256:x")
        self.assertEqual(fields["suite"], "chacha20-poly1305")
        self.assertEqual(fields["transport"], "udp")
        self.assertEqual(self.recorder.events[1][2]["address"], "[::1]:7")
        self.assertIn("{reason}", self.recorder.events[2][1])

    def test_floodIsLimited(self):
        """
        A flood of events logs at most the burst at once and the rate over
        time; the next event logged says how many were held back.
        """
        logged = sum(self.log.refused(("10.0.0.1", p), "rate-limited") for p in range(1000))
        self.assertEqual(logged, 3)
        self.assertEqual(self.log.suppressed, 997)
        self.clock.advance(1.0)  # two more tokens
        self.assertTrue(self.log.refused(("10.0.0.2", 1), "rate-limited"))
        fields = self.recorder.events[-1][2]
        self.assertEqual(fields["suppressed"], 997)
        self.assertIn("{suppressed}", self.recorder.events[-1][1])
        self.assertEqual(self.log.suppressed, 0)
        self.assertTrue(self.log.refused(("10.0.0.2", 1), "rate-limited"))
        self.assertNotIn("suppressed", self.recorder.events[-1][2])
        self.assertFalse(self.log.refused(("10.0.0.2", 1), "rate-limited"))
        self.assertEqual(self.log.totalSuppressed, 998)

    def test_tokensCapped(self):
        """
        A long quiet spell refills only up to the burst.
        """
        self.clock.advance(3600)
        logged = sum(self.log.opened(("10.0.0.1", p)) for p in range(10))
        self.assertEqual(logged, 3)

    def test_badLimits(self):
        self.assertRaises(ValueError, ConnectionLog, self.clock, rate=0)
        self.assertRaises(ValueError, ConnectionLog, self.clock, burst=0)

    def test_unknownAddress(self):
        """
        An event without an address says C{?}.
        """
        self.log.refused(None, "bad")
        self.assertEqual(self.recorder.events[-1][2]["address"], "?")
