# -*- test-case-name: sudp_test.udp.test_ratelimit -*-
"""
Tests for L{sudp.udp.ratelimit}.
"""

from twisted.trial import unittest

from sudp.keys import Identity
from sudp.udp.client import ClientEngine
from sudp.udp.config import Config
from sudp.udp.server import ServerEngine

from sudp_test.enginehelpers import SERVER_ADDR

class HandshakeRateLimitTests(unittest.TestCase):
    def flood(self, server, addr, count, now):
        """
        Complete the cookie exchange from C{addr}, then send C{count} INITs
        with fresh ephemerals, as one proven address filling the server would.
        """
        for _ in range(count):
            client = ClientEngine(server.identity.publicKey, SERVER_ADDR)
            client.start(now)
            [(hello, _)] = client.outbox
            client.outbox = []
            server.receiveDatagram(hello, addr, now)
            [(cookie, _)] = server.outbox
            server.outbox = []
            client.receiveDatagram(cookie, SERVER_ADDR, now)
            [(init, _)] = client.outbox
            server.receiveDatagram(init, addr, now)
            server.outbox = []

    def test_oneAddressCannotTakeEverySlot(self):
        """
        One cookie-proven address may start handshakeBurst handshakes at once
        and handshakesPerSecond after that; the rest are dropped as
        rate-limited, and another address still gets a pending slot.
        """
        config = Config(maxPendingHandshakes=50, handshakesPerSecond=10, handshakeBurst=20)
        server = ServerEngine(Identity.generate(), config)
        self.flood(server, ("10.0.0.1", 5000), 60, 1000.0)
        self.assertEqual(server.stats()["pending"], 20)
        self.assertEqual(server.drops["rate-limited"], 40)
        self.flood(server, ("10.0.0.2", 5000), 1, 1000.0)
        self.assertEqual(server.stats()["pending"], 21)
        self.flood(server, ("10.0.0.1", 5000), 10, 1001.0)  # one second refills 10 tokens
        self.assertEqual(server.stats()["pending"], 31)
        self.assertEqual(server.drops["rate-limited"], 40)

    def test_noStateBeforeTheCookie(self):
        """
        The limiter only sees addresses that proved themselves with a
        cookie: HELLOs and bad INITs from 3,000 addresses leave it empty.
        """
        server = ServerEngine(Identity.generate())
        for i in range(3000):
            addr = ("10.1.%d.%d" % (i // 250, i % 250), 4000)
            server.receiveDatagram(bytes([0x11]) + bytes(63), addr, 0.0)
            server.receiveDatagram(bytes([0x13]) + bytes(62), addr, 0.0)
        self.assertEqual(len(server.limiter), 0)

    def test_boundedMemory(self):
        """
        The limiter tracks at most maxSources addresses, forgetting the least
        recently seen.
        """
        from sudp.udp.ratelimit import HandshakeRateLimiter

        limiter = HandshakeRateLimiter(1, 1, maxSources=100)
        for i in range(1000):
            self.assertTrue(limiter.allow(f"10.0.{i // 256}.{i % 256}", 0.0))
        self.assertEqual(len(limiter), 100)
        self.assertFalse(limiter.allow("10.0.3.231", 0.0))  # the last one seen, bucket empty
