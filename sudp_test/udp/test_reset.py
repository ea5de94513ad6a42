# -*- test-case-name: sudp_test.udp.test_reset -*-
"""
Tests for L{sudp.udp.reset}: the stateless reset. A server that restarted
ends its old clients' sessions within one round trip (the landed code left
a client on its dead session for the whole idle timeout, 61.9 s, while its
writes vanished); nobody without the server's key can do the same; the
server never amplifies.
"""

import hashlib
import hmac
import ipaddress
import os

from twisted.trial import unittest

from sudp.addresses import unmappedHost
from sudp.keys import Identity
from sudp.udp import packets as P, records as R
from sudp.udp.config import Config
from sudp.udp.events import SessionEnded
from sudp.udp.reset import (
    encodeReset,
    isReset,
    MAX_RESET_SIZE,
    MIN_RESET_SIZE,
    RESET_KEY_LABEL,
    resetSize,
    resetToken,
    TOKEN_SIZE,
)
from sudp.udp.server import ServerEngine

from sudp_test.enginehelpers import (
    CLIENT_ADDR,
    connect,
    connectedPair,
    SERVER_ADDR,
    serverSessionOf,
    takeOutbox,
)

def restart(net, identity=None, config=None):
    """
    The server process dies and a new one starts on the same address, with
    the same key (or C{identity}): no session survives.
    """
    old = net.server
    net.server = ServerEngine(identity or old.identity, config or old.config)
    return net.server

def ends(net, who=CLIENT_ADDR):
    return [e.reason.reason for e in net.take(who, SessionEnded)]

class ResetTests(unittest.TestCase):
    def test_tokenFormula(self):
        """
        A token is the first 16 bytes of HMAC-SHA-256(reset key, label ||
        u32 index || packed address || u16 port), the address as
        C{ipaddress} packs it (an IPv4-mapped address as IPv4): the same
        tokens across versions, so a restarted or upgraded server resets
        the sessions of the one before.
        """
        key = bytes(range(32))
        for host in ("127.0.0.1", "::ffff:127.0.0.1", "2001:db8::7"):
            packed = ipaddress.ip_address(unmappedHost(host)).packed
            message = b"sudp/1 stateless reset token\x00" + (0x01020304).to_bytes(4, "big") + packed + (4433).to_bytes(2, "big")
            self.assertEqual(resetToken(key, 0x01020304, (host, 4433)),
                             hmac.new(key, message, hashlib.sha256).digest()[:16], host)

    def test_tokenReachesTheClient(self):
        """
        The server's answer to the CONFIRM carries the session's token, for
        the cookie-proven address the session opened from.
        """
        net, server, client = connectedPair()
        session = serverSessionOf(server, client)
        expected = resetToken(server.identity.deriveSecret(RESET_KEY_LABEL), session.localIndex, CLIENT_ADDR)
        self.assertEqual(client.session.resetToken, expected)
        self.assertEqual(len(expected), TOKEN_SIZE)

    def test_restartedServerEndsTheSessionInOneRoundTrip(self):
        """
        After a restart, the client's next message draws a reset smaller
        than it, and the client's session ends at once ("stateless-reset",
        with a text that says what happened); nothing else is sent.
        """
        net, server, client = connectedPair()
        restart(net)
        client.sendMessage(client.session, b"x" * 100, net.now)
        [message] = takeOutbox(client)
        net.server.receiveDatagram(message[0], CLIENT_ADDR, net.now)
        [(reset, dst)] = takeOutbox(net.server)
        self.assertEqual(dst, CLIENT_ADDR)
        self.assertEqual(reset[0], P.STATELESS_RESET)
        self.assertLess(len(reset), len(message[0]))
        client.receiveDatagram(reset, SERVER_ADDR, net.now)
        self.assertEqual(client.session.state, "closed")
        self.assertEqual(client.session.closeReason, "stateless-reset")
        self.assertIn("restarted", client.session.closeText)
        self.assertEqual([e.reason.reason for e in client.events if isinstance(e, SessionEnded)],
                         ["stateless-reset"])
        self.assertEqual(takeOutbox(client), [])  # a reset is never answered
        self.assertEqual(net.server.counters["resets-sent"], 1)

    def test_idleClientLearnsAtItsKeepalive(self):
        """
        An idle client learns at its next keepalive, one round trip.
        """
        net, server, client = connectedPair()
        restart(net)
        net.advance(Config().keepaliveInterval + 1)
        self.assertEqual(ends(net), ["stateless-reset"])

    def test_otherKeyCannotReset(self):
        """
        A server with another key (or anyone) makes tokens that do not
        match: the reset is dropped and counted, the session stays.
        """
        net, server, client = connectedPair()
        restart(net, identity=Identity.generate())
        client.sendMessage(client.session, b"x" * 100, net.now)
        net.pump()
        self.assertEqual(client.session.state, "open")
        self.assertEqual(client.drops["bad-reset"], 1)
        for size in (MIN_RESET_SIZE, MAX_RESET_SIZE):
            client.receiveDatagram(encodeReset(os.urandom(TOKEN_SIZE), size, os.urandom), SERVER_ADDR, net.now)
        self.assertEqual(client.session.state, "open")
        self.assertEqual(client.drops["bad-reset"], 3)

    def test_tokenBoundToAddress(self):
        """
        The token names the client's address: a restarted server reached
        from another address (another client, or a spoofed source) makes a
        token that does not end the session.
        """
        net, server, client = connectedPair()
        restart(net)
        client.sendMessage(client.session, b"x" * 100, net.now)
        [message] = takeOutbox(client)
        net.server.receiveDatagram(message[0], ("127.0.0.1", 40001), net.now)
        [(reset, dst)] = takeOutbox(net.server)
        self.assertEqual(dst, ("127.0.0.1", 40001))
        client.receiveDatagram(reset, SERVER_ADDR, net.now)
        self.assertEqual(client.session.state, "open")

    def test_noAmplification(self):
        """
        A reset is always smaller than the packet that caused it (and at
        most 41 bytes); a packet of 21 bytes or less gets none.
        """
        self.assertIsNone(resetSize(MIN_RESET_SIZE))
        self.assertEqual(resetSize(MIN_RESET_SIZE + 1), MIN_RESET_SIZE)
        self.assertEqual(resetSize(1452), MAX_RESET_SIZE)
        server = ServerEngine(Identity.generate(), Config(resetBurst=1000, resetsPerSecond=1000))
        for size in range(P.DATA_HEADER_SIZE, 200):
            data = bytes([P.DATA]) + os.urandom(size - 1)
            server.receiveDatagram(data, ("192.0.2.1", size), 0.0)
            out = takeOutbox(server)
            if size <= MIN_RESET_SIZE:
                self.assertEqual(out, [])
            else:
                [(reset, _)] = out
                self.assertEqual(len(reset), min(size - 1, MAX_RESET_SIZE))

    def test_rateLimitedInAll(self):
        """
        resetBurst resets at once, then resetsPerSecond, whatever the
        sources (no state is kept per source); resetsPerSecond=0 sends none.
        """
        server = ServerEngine(Identity.generate(), Config(resetsPerSecond=2, resetBurst=5))
        packet = bytes([P.DATA]) + os.urandom(60)
        sent = 0
        for i in range(20):
            server.receiveDatagram(packet, (f"192.0.2.{i}", 1000 + i), 10.0)
            sent += len(takeOutbox(server))
        self.assertEqual(sent, 5)
        for i in range(3):  # 2 tokens back after a second
            server.receiveDatagram(packet, (f"198.51.100.{i}", 1000), 11.0)
        self.assertEqual(len(takeOutbox(server)), 2)
        self.assertEqual(server.counters["resets-sent"], 7)
        silent = ServerEngine(Identity.generate(), Config(resetsPerSecond=0))
        silent.receiveDatagram(packet, ("192.0.2.1", 1000), 10.0)
        self.assertEqual(takeOutbox(silent), [])
        self.assertEqual(silent.drops["unknown-session"], 1)

    def test_serverNeverAnswersAReset(self):
        """
        A STATELESS_RESET sent to a server is dropped: resets cannot loop.
        """
        server = ServerEngine(Identity.generate())
        server.receiveDatagram(encodeReset(os.urandom(16), 41, os.urandom), ("192.0.2.1", 1), 0.0)
        self.assertEqual(takeOutbox(server), [])
        self.assertEqual(server.drops["unexpected-type"], 1)

    def test_liveSessionNeverReset(self):
        """
        Packets of a session the server knows draw no reset, not even forged
        ones from elsewhere.
        """
        net, server, client = connectedPair()
        session = serverSessionOf(server, client)
        forged = P.DATA_HEADER.pack(P.DATA, session.localIndex, 5) + os.urandom(60)
        out = net.toServer(forged, ("192.0.2.9", 4))
        self.assertEqual(out, [])
        self.assertEqual(server.counters["resets-sent"], 0)

    def test_noResetDuringHandshake(self):
        """
        A client with no session (or no token yet) drops a reset.
        """
        net, server, client = connectedPair()
        fresh = connect(net, ("127.0.0.1", 40002))
        fresh.session.resetToken = None
        fresh.receiveDatagram(encodeReset(os.urandom(16), 41, os.urandom), SERVER_ADDR, net.now)
        self.assertEqual(fresh.session.state, "open")
        self.assertEqual(fresh.drops["bad-reset"], 1)

    def test_newTokenAfterPathValidation(self):
        """
        When the client's address changes and is validated, the server
        sends the token for the new address, so a restart is still told.
        """
        net, server, client = connectedPair()
        newAddr = ("127.0.0.1", 40010)
        net.move(client, newAddr)
        client.sendMessage(client.session, b"after the move", net.now)
        net.pump()
        self.assertEqual(serverSessionOf(server, client).peerAddr, newAddr)
        self.assertEqual(client.session.resetToken, server.resetToken(serverSessionOf(server, client)))
        restart(net)
        client.sendMessage(client.session, b"x" * 50, net.now)
        net.pump()
        self.assertEqual(ends(net, newAddr), ["stateless-reset"])

    def test_isReset(self):
        token = os.urandom(16)
        for size in range(MIN_RESET_SIZE, MAX_RESET_SIZE + 1):
            self.assertTrue(isReset(encodeReset(token, size, os.urandom), token))
        self.assertFalse(isReset(encodeReset(token, 30, os.urandom), None))
        self.assertFalse(isReset(bytes([P.DATA]) + encodeReset(token, 30, os.urandom)[1:], token))
        self.assertFalse(isReset(b"\x1c" + os.urandom(60) + token, token))  # too long to be one

    def test_resetKeyFromTheLongTermKey(self):
        """
        The reset key is the same after a restart (same key file) and
        differs between keys and from other purposes' secrets.
        """
        identity = Identity.generate()
        again = Identity(bytes(identity._signingKey))
        self.assertEqual(identity.deriveSecret(RESET_KEY_LABEL), again.deriveSecret(RESET_KEY_LABEL))
        self.assertNotEqual(identity.deriveSecret(RESET_KEY_LABEL), Identity.generate().deriveSecret(RESET_KEY_LABEL))
        self.assertNotEqual(identity.deriveSecret(RESET_KEY_LABEL), identity.deriveSecret(b"sudp/1 other"))

    def test_recordIsOptional(self):
        """
        RESET_TOKEN is 0x81: a receiver that does not know it skips it.
        """
        self.assertGreaterEqual(R.RESET_TOKEN, 0x80)
