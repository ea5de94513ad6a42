# -*- test-case-name: sudp_test.vpn041.test_client -*-
"""
Tests for L{sudp.vpn041.client}.
"""

from twisted.internet import defer
from twisted.logger import LogLevel
from twisted.trial import unittest

from sudp.vpn041.auth import Vpn041Fatal
from sudp.vpn041.dataplane import HEADER_SIZE

from sudp_test.vpn041.helpers import (
    GATEWAY_NS,
    LogCapture,
    SIXTEEN,
    Vpn041Mixin,
    flip,
    flipPadding,
    truncate,
)

CLIENT_NS = "sudp.vpn041.client"

class ClientFailureRuleTests(Vpn041Mixin, unittest.TestCase):
    """
    Seed 001 section 8, client: a datagram that does not decrypt logs one
    critical error and the client stops hard.
    """

    @defer.inlineCallbacks
    def clientFailure(self, useEncryption, authenticated, tamper):
        gateway, _, client, p, g = yield self.session(useEncryption, authenticated)
        sent = self.captureOutput(gateway)
        g.transport.write(SIXTEEN)
        yield p.waitFor(1)
        logs = LogCapture(self)
        bad = tamper(g.transport.seal(SIXTEEN))  # a fresh push, changed in flight
        pushAddress = g.transport.pushAddress
        gateway.sendDatagram(bad, pushAddress)  # from the gateway's own socket
        gateway.sendDatagram(bad, pushAddress)

        error = yield client.fatal
        self.assertIsInstance(error, Vpn041Fatal)
        self.assertIs(client.fatalError, error)
        critical = logs.select(CLIENT_NS, LogLevel.critical)
        self.assertEqual(len(critical), 1, critical)
        self.assertIn("does not decrypt", critical[0])
        self.assertIs(p.reason.value, error)  # connectionLost got the Vpn041Fatal
        self.assertEqual(p.messages, [SIXTEEN])
        self.assertRaises(Vpn041Fatal, p.transport.write, b"after the crash")
        self.assertIsNone(client.udpPort)  # stopped: nothing more arrives
        # once: another bad datagram reaching the client logs nothing more
        client.datagramReceived(bad, pushAddress)
        self.assertEqual(len(logs.select(CLIENT_NS, LogLevel.critical)), 1)
        self.assertGreaterEqual(client.drops["no-session"], 1)
        self.assertRaises(Vpn041Fatal, p.transport.write, b"still")
        # the gateway sees the session end when the client's auth connection closes
        reason = yield g.lost
        self.assertEqual(reason.reason, "auth-connection-closed")
        self.assertEqual(gateway.sessions, {})
        self.assertEqual(logs.select(GATEWAY_NS, LogLevel.error), [])

    def test_cbcPaddingFlip(self):
        """
        useEncryption true: a gateway datagram with broken padding makes the
        client log one critical error, fire client.fatal, give its protocol
        connectionLost(Vpn041Fatal), raise Vpn041Fatal on every later write,
        and close its auth connection (the gateway's session ends).
        """
        return self.clientFailure(True, False, flipPadding)

    def test_cbcTruncated(self):
        """
        The same for a truncated datagram from the gateway.
        """
        return self.clientFailure(True, False, truncate)

    @defer.inlineCallbacks
    def test_plaintextFlipDelivered(self):
        """
        useEncryption false: the client cannot tell a push altered in flight;
        it is delivered altered and the client goes on (no integrity, by design).
        """
        gateway, _, client, p, g = yield self.session(useEncryption=False)
        logs = LogCapture(self)
        bad = flip(g.transport.seal(b"pay alice 10 EUR"), HEADER_SIZE + 10, ord("1") ^ ord("9"))
        gateway.sendDatagram(bad, g.transport.pushAddress)
        yield p.waitFor(1)
        self.assertEqual(p.messages, [b"pay alice 90 EUR"])
        self.assertFalse(client.fatal.called)
        self.assertEqual(logs.atLeast(LogLevel.warn), [])
        p.transport.write(b"still here")
        yield g.waitFor(1)
