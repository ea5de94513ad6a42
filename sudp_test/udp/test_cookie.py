# -*- test-case-name: sudp_test.udp.test_cookie -*-
"""
Tests for L{sudp.udp.cookie}.
"""

import os

from sudp.udp import packets as P
from sudp.udp.cookie import CookieFactory

from sudp_test.enginehelpers import (
    CLIENT_ADDR,
    connectedPair,
    dropsDuring,
    getCookie,
    makeInit,
    newServer,
    serverState,
    START,
    takeOutbox,
)
from sudp_test.udp.helpers import EngineTestCase, LOW_ORDER_KEYS, OTHER_ADDR

class CookieTests(EngineTestCase):
    """
    HANDSHAKE_INIT with cookies that must not be accepted, and one that must.
    """

    def setUp(self):
        self.server = newServer(cookieSecret=b"k" * 32)

    def assertAccepted(self, init, addr, now):
        drops = dropsDuring(self.server, lambda: self.server.receiveDatagram(init, addr, now))
        self.assertEqual(drops, {})
        [(resp, dst)] = takeOutbox(self.server)
        self.assertEqual((resp[0], len(resp), dst), (P.HANDSHAKE_RESP, P.HANDSHAKE_RESP_SIZE, addr))
        self.assertEqual(self.server.pendingCount, 1)
        self.assertEqual(len(self.server.sessions), 1)

    def test_validCookieAccepted(self):
        """
        The control case: the cookie just given to an address opens a
        pending handshake for it.
        """
        ts, cookie = getCookie(self.server, CLIENT_ADDR, START)
        self.assertAccepted(makeInit(ts, cookie), CLIENT_ADDR, START)

    def test_forgedCookie(self):
        """
        Random bytes as the cookie, with a current timestamp, are dropped as
        C{bad-cookie}.
        """
        for _ in range(50):
            init = makeInit(int(START), os.urandom(16))
            self.assertServerDrops(self.server, init, CLIENT_ADDR, "bad-cookie")

    def test_cookieForAnotherIP(self):
        """
        A cookie made for one IP address is C{bad-cookie} from another,
        including the IPv4-mapped IPv6 form of the same address.
        """
        ts, cookie = getCookie(self.server, ("192.0.2.1", 5000), START)
        init = makeInit(ts, cookie)
        for addr in (("192.0.2.2", 5000), ("10.0.0.1", 5000), ("::ffff:192.0.2.1", 5000)):
            self.assertServerDrops(self.server, init, addr, "bad-cookie")
        ts, cookie = getCookie(self.server, ("2001:db8::1", 5000), START)
        init = makeInit(ts, cookie)
        self.assertServerDrops(self.server, init, ("2001:db8::2", 5000), "bad-cookie")

    def test_cookieForAnotherPort(self):
        """
        A cookie made for one port is C{bad-cookie} from another port of the
        same host.
        """
        ts, cookie = getCookie(self.server, ("192.0.2.1", 5000), START)
        init = makeInit(ts, cookie)
        for port in (4999, 5001, 0, 65535):
            self.assertServerDrops(self.server, init, ("192.0.2.1", port), "bad-cookie")

    def test_cookieWithAlteredTimestamp(self):
        """
        A real cookie sent with another timestamp than it was made for is
        C{bad-cookie}: the timestamp is inside the MAC.
        """
        ts, cookie = getCookie(self.server, CLIENT_ADDR, START)
        for other in (ts - 1, ts + 0, ts - 60):
            if other == ts:
                continue
            self.assertServerDrops(self.server, makeInit(other, cookie), CLIENT_ADDR, "bad-cookie")

    def test_expiredCookie(self):
        """
        A cookie presented more than two rotations after it was made is
        C{expired-cookie}.
        """
        ts, cookie = getCookie(self.server, CLIENT_ADDR, START)
        init = makeInit(ts, cookie)
        for later in (241, 300, 10_000):
            self.assertServerDrops(
                self.server, init, CLIENT_ADDR, "expired-cookie", now=START + later
            )

    def test_cookieTwoRotationsBackExpired(self):
        """
        A cookie made in rotation n is refused in rotation n + 2 even if it is
        less than 240 s old.
        """
        rotation = self.server.cookies.rotation
        made = (int(START) // rotation) * rotation + rotation - 1
        ts, cookie = getCookie(self.server, CLIENT_ADDR, made)
        now = made + rotation + 2  # 122 s later, two rotations on
        init = makeInit(ts, cookie)
        self.assertServerDrops(self.server, init, CLIENT_ADDR, "expired-cookie", now=now)

    def test_cookieFromTheFuture(self):
        """
        A correctly made cookie whose timestamp is later than the server's
        clock is C{expired-cookie}.
        """
        factory = CookieFactory(b"k" * 32)
        ts, cookie = factory.make(CLIENT_ADDR[0], CLIENT_ADDR[1], START + 30)
        self.assertServerDrops(self.server, makeInit(ts, cookie), CLIENT_ADDR, "expired-cookie")

    def test_previousRotationAccepted(self):
        """
        A cookie made in the previous rotation, almost two rotations old, is
        still accepted.
        """
        rotation = self.server.cookies.rotation
        made = (int(START) // rotation) * rotation  # first second of rotation n
        ts, cookie = getCookie(self.server, CLIENT_ADDR, made)
        self.assertAccepted(makeInit(ts, cookie), CLIENT_ADDR, made + 2 * rotation - 1)

    def test_cookieFromAnotherServerSecret(self):
        """
        A cookie made by a server with another master secret is
        C{bad-cookie}; one made with the same secret (another worker) is
        accepted.
        """
        ts, cookie = CookieFactory(b"j" * 32).make(CLIENT_ADDR[0], CLIENT_ADDR[1], START)
        self.assertServerDrops(self.server, makeInit(ts, cookie), CLIENT_ADDR, "bad-cookie")
        ts, cookie = CookieFactory(b"k" * 32).make(CLIENT_ADDR[0], CLIENT_ADDR[1], START)
        self.assertAccepted(makeInit(ts, cookie), CLIENT_ADDR, START)

    def test_repeatedInitWhilePending(self):
        """
        A repeated INIT (same ephemeral, same sender index, valid cookie)
        while the handshake is pending gets the same RESP again and makes
        no new session, if it is at least as long as the RESP (an unpadded
        one gets nothing: C{init-too-short-for-resend}); the same ephemeral
        under another sender index is C{duplicate-ephemeral}.
        """
        ts, cookie = getCookie(self.server, CLIENT_ADDR, START)
        eph = os.urandom(32)
        # padded, as clients do
        init = makeInit(ts, cookie, ephemeral=eph) + bytes(P.HANDSHAKE_RESP_SIZE - 59)
        self.assertAccepted(init, CLIENT_ADDR, START)
        [resp] = [s.respBytes for s in self.server.sessions.values()]
        before = serverState(self.server)
        self.server.receiveDatagram(init, CLIENT_ADDR, START + 1)
        self.assertEqual(takeOutbox(self.server), [(resp, CLIENT_ADDR)])
        self.assertEqual(self.server.counters["resp-retransmitted"], 1)
        after = serverState(self.server)
        self.assertEqual(after[:6], before[:6])
        other = makeInit(ts, cookie, ephemeral=eph, senderIndex=0x0A0B0C0D)
        self.assertServerDrops(self.server, other, CLIENT_ADDR, "duplicate-ephemeral")
        # the same INIT without its padding is shorter than the RESP: no resend
        self.assertServerDrops(self.server, init[:59], CLIENT_ADDR, "init-too-short-for-resend")

    def test_replayedInitOfOpenSession(self):
        """
        The INIT of a session that has opened, replayed with its still-valid
        cookie from the same address, is C{duplicate-ephemeral}: no new
        session, no public-key work, no reply.
        """
        net, server, client = connectedPair()
        [init] = [d for s, dst, d in net.sent if d[0] == P.HANDSHAKE_INIT]
        for later in (0, 5, 100):
            self.assertServerDrops(
                server, init, CLIENT_ADDR, "duplicate-ephemeral", now=net.now + later
            )
        self.assertEqual(server.counters["handshakes"], 1)
        # from another address its cookie is no good
        self.assertServerDrops(server, init, OTHER_ADDR, "bad-cookie", now=net.now)

    def test_lowOrderEphemeral(self):
        """
        A HANDSHAKE_INIT with a valid cookie but a low-order or otherwise
        invalid X25519 key is dropped as C{bad-ephemeral}: no session, no
        reply.
        """
        ts, cookie = getCookie(self.server, CLIENT_ADDR, START)
        for key in LOW_ORDER_KEYS:
            self.assertServerDrops(
                self.server, makeInit(ts, cookie, ephemeral=key), CLIENT_ADDR, "bad-ephemeral"
            )
        self.assertEqual(self.server.sessions, {})
