"""
Functional tests of the sudp/1 engines, driven without a reactor: time comes
from a L{twisted.internet.task.Clock}, datagrams move through an in-memory
link.
"""

from twisted.internet.task import Clock
from twisted.trial import unittest

from sudp.errors import BadServerSignature, ClientNotAuthorized, HandshakeTimeout, SessionClosed
from sudp.keys import Identity
from sudp.udp.client import ClientEngine
from sudp.udp.config import Config
from sudp.udp.events import HandshakeFailure, MessageReceived, SessionEnded, SessionOpened
from sudp.udp.server import ServerEngine
from sudp_test.enginehelpers import CLIENT_ADDR, SERVER_ADDR, Network



def Link(server, clock):
    """
    The in-memory network of L{sudp_test.enginehelpers}, driven by C{clock}.
    """
    return Network(server, clock=clock)


def connect(testCase, config=None, serverConfig=None, clientIdentity=None, authorizedKeys=None,
            serverKey=None):
    clock = Clock()
    clock.advance(1_000_000)
    identity = Identity.generate()
    server = ServerEngine(identity, serverConfig or config or Config(), authorizedKeys=authorizedKeys)
    link = Link(server, clock)
    client = link.add(ClientEngine(serverKey or identity.publicKey, SERVER_ADDR, config or Config(),
                                   identity=clientIdentity))
    client.start(link.now)
    link.pump()
    link.identity = identity
    return link, server, client


def serverSession(server):
    [session] = server.sessions.values()
    return session


class HandshakeTests(unittest.TestCase):
    def test_opensBothSides(self):
        """
        A handshake opens the session on both sides in three round trips;
        both sides agree on the suite and the client holds the server's key.
        """
        link, server, client = connect(self)
        self.assertEqual(len(link.take("server", SessionOpened)), 1)
        self.assertEqual(len(link.take(CLIENT_ADDR, SessionOpened)), 1)
        self.assertEqual(client.session.peerKey, link.identity.publicKey)
        self.assertEqual(serverSession(server).peerKey, None)
        self.assertEqual(server.stats()["sessions"], 1)
        self.assertEqual(server.stats()["pending"], 0)
        types = [d[0] for src, dst, d in link.sent]
        self.assertEqual(types[:4], [0x11, 0x12, 0x13, 0x14])

    def test_retransmitWithBackoff(self):
        """
        Lost handshake packets are retransmitted with exponential backoff
        and the handshake still completes.
        """
        link, server, client = Link(ServerEngine(Identity.generate()), Clock()), None, None
        server = link.server
        client = link.add(ClientEngine(server.identity.publicKey, SERVER_ADDR))
        lost = {"hello": 2, "init": 1, "confirm": 1}

        def drop(data, src, dst):
            for name, t in (("hello", 0x11), ("init", 0x13), ("confirm", 0x1A)):
                if data[0] == t and src == CLIENT_ADDR and lost[name]:
                    lost[name] -= 1
                    return True
            return False

        link.drop = drop
        client.start(link.now)
        link.pump()
        sendTimes = []
        original = link.pump

        def pump():
            sendTimes.extend(link.now for _ in client.outbox if _[0][0] == 0x11)
            original()

        link.pump = pump
        link.advance(5)
        self.assertEqual(len(link.take(CLIENT_ADDR, SessionOpened)), 1)
        self.assertEqual(len(link.take("server", SessionOpened)), 1)
        self.assertEqual(lost, {"hello": 0, "init": 0, "confirm": 0})
        # HELLO retransmitted at 0.5 s, then 1 s after that: backoff doubles
        self.assertEqual(sendTimes[:2], [0.5, 1.5])

    def test_timeout(self):
        """
        With no server answering, the client fails with HandshakeTimeout
        after handshakeTimeout seconds, having retransmitted with a capped backoff.
        """
        clock = Clock()
        client = ClientEngine(Identity.generate().publicKey, SERVER_ADDR, Config(handshakeTimeout=10))
        client.start(clock.seconds())
        sends = 1
        client.outbox = []
        while client.nextDeadline() is not None:
            clock.advance(client.nextDeadline() - clock.seconds())
            client.onTimer(clock.seconds())
            sends += len(client.outbox)
            client.outbox = []
        [failure] = client.events
        self.assertIsInstance(failure, HandshakeFailure)
        self.assertIsInstance(failure.error, HandshakeTimeout)
        self.assertEqual(clock.seconds(), 10)
        self.assertIn("within 10 s", str(failure.error))
        # 0, 0.5, 1.5, 3.5, 7.5 (then the 4 s cap would be 11.5 > 10)
        self.assertEqual(sends, 5)

    def test_wrongServerKey(self):
        """
        A client expecting another server key fails with BadServerSignature
        naming the key it expected, and no session opens on either side.
        """
        other = Identity.generate().publicKey
        link, server, client = connect(self, serverKey=other)
        [failure] = link.take(CLIENT_ADDR, HandshakeFailure)
        self.assertIsInstance(failure.error, BadServerSignature)
        self.assertIn(other.toText(), str(failure.error))
        self.assertEqual(link.take("server", SessionOpened), [])
        self.assertEqual(link.take(CLIENT_ADDR, SessionOpened), [])

    def test_pendingExpires(self):
        """
        A server whose RESP is never confirmed drops the pending handshake
        after handshakeTimeout and counts it.
        """
        clock = Clock()
        server = ServerEngine(Identity.generate())
        link = Link(server, clock)
        client = link.add(ClientEngine(server.identity.publicKey, SERVER_ADDR))
        link.drop = lambda data, src, dst: data[0] == 0x1A and src == CLIENT_ADDR
        client.start(link.now)
        link.pump()
        self.assertEqual(server.stats()["pending"], 1)
        link.advance(11)
        self.assertEqual(server.stats()["pending"], 0)
        self.assertEqual(server.sessions, {})
        self.assertEqual(server.drops["handshake-expired"], 1)
        [failure] = link.take(CLIENT_ADDR, HandshakeFailure)
        self.assertIsInstance(failure.error, HandshakeTimeout)


class MutualAuthTests(unittest.TestCase):
    def test_authorized(self):
        """
        A client whose key is in the server's authorized keys opens a session
        and the server sees its verified key.
        """
        me = Identity.generate()
        link, server, client = connect(self, clientIdentity=me, authorizedKeys=[me.publicKey])
        self.assertEqual(len(link.take(CLIENT_ADDR, SessionOpened)), 1)
        self.assertEqual(serverSession(server).peerKey, me.publicKey)

    def test_notAuthorized(self):
        """
        A client key the server does not list fails the client with
        ClientNotAuthorized and opens nothing on the server.
        """
        me = Identity.generate()
        link, server, client = connect(self, clientIdentity=me, authorizedKeys=[Identity.generate().publicKey])
        [failure] = link.take(CLIENT_ADDR, HandshakeFailure)
        self.assertIsInstance(failure.error, ClientNotAuthorized)
        self.assertIn(me.publicKey.fingerprint(), str(failure.error))
        self.assertEqual(link.take("server", SessionOpened), [])
        self.assertEqual(server.sessions, {})

    def test_identityRequired(self):
        """
        A client with no identity, at a server that requires one, fails with
        ClientNotAuthorized.
        """
        link, server, client = connect(self, authorizedKeys=[Identity.generate().publicKey])
        [failure] = link.take(CLIENT_ADDR, HandshakeFailure)
        self.assertIsInstance(failure.error, ClientNotAuthorized)
        self.assertIn("required", str(failure.error))

    def test_optionalIdentity(self):
        """
        A server without authorized keys still verifies and exposes a client
        identity that is offered.
        """
        me = Identity.generate()
        link, server, client = connect(self, clientIdentity=me)
        self.assertEqual(serverSession(server).peerKey, me.publicKey)


def exchange(link, server, client, count):
    """
    Send C{count} messages each way (C{c0.0}, C{s0.0}, ...), pumping after each pair.
    """
    s = serverSession(server)
    for i in range(count):
        client.sendMessage(client.session, b"c%d.0" % i, link.now)
        server.sendMessage(s, b"s%d.0" % i, link.now)
        link.pump()


class DataTests(unittest.TestCase):

    def messages(self, link, who):
        return [e.message for e in link.take(who, MessageReceived)]

    def test_rekeysBothDirectionsNoLoss(self):
        """
        Driven by a Clock over 20 simulated minutes, a session rekeys many
        times: by message count when the server sends most (the server asks,
        the client runs the exchange) and by time when traffic is light (the
        client starts). Every message arrives exactly once, in order.
        """
        config = Config(rekeyAfterTime=60, rekeyAfterMessages=40)
        link, server, client = connect(self, config)
        s = serverSession(server)
        sentC, sentS = [], []
        for second in range(1200):
            heavy = second < 300
            for j in range(1 if heavy else (1 if second % 7 == 0 else 0)):
                msg = b"c%d.%d" % (second, j)
                client.sendMessage(client.session, msg, link.now)
                sentC.append(msg)
            for j in range(4 if heavy else (1 if second % 5 == 0 else 0)):
                msg = b"s%d.%d" % (second, j)
                server.sendMessage(s, msg, link.now)
                sentS.append(msg)
            link.pump()
            link.advance(1)
        self.assertEqual(self.messages(link, "server"), sentC)
        self.assertEqual(self.messages(link, CLIENT_ADDR), sentS)
        self.assertGreaterEqual(s.stats["rekeysStarted"], 10)  # server asked (count)
        self.assertGreaterEqual(client.session.stats["rekeysStarted"], 25)
        self.assertEqual(s.stats["rekeys"], client.session.stats["rekeys"])
        self.assertGreaterEqual(s.stats["rekeys"], 35)
        self.assertEqual(s.sendEpoch.number, client.session.sendEpoch.number)
        self.assertEqual(dict(server.drops), {})
        self.assertEqual(dict(client.drops), {})
        self.assertEqual(link.take("server", SessionEnded), [])

    def test_oldKeysWiped(self):
        """
        After a rekey and the grace period the old epoch's key buffers are
        overwritten with zeros and it no longer decrypts anything.
        """
        link, server, client = connect(self, Config(rekeyAfterMessages=3))
        old = client.session.sendEpoch
        buffers = [old.keys.c2s, old.keys.s2c, old.keys.chainKey, old.keys.confirmKey]
        exchange(link, server, client, 3)
        self.assertEqual(client.session.sendEpoch.number, 1)
        self.assertTrue(any(any(b) for b in buffers))
        link.advance(Config().oldKeyGrace + 1)
        for b in buffers:
            self.assertEqual(bytes(b), bytes(len(b)))
        self.assertIsNone(old.opener)
        self.assertNotIn(old, client.session.epochs)

    def test_keepaliveAndIdle(self):
        """
        Keepalives hold an idle session open; when the peer goes silent the
        session ends with reason idle-timeout on the side still listening.
        """
        link, server, client = connect(self, Config(keepaliveInterval=5, idleTimeout=20))
        link.advance(100)
        self.assertEqual(link.take("server", SessionEnded), [])
        self.assertEqual(link.take(CLIENT_ADDR, SessionEnded), [])
        link.drop = lambda data, src, dst: src == CLIENT_ADDR  # the client vanishes
        link.advance(25)
        [ended] = link.take("server", SessionEnded)
        self.assertEqual(ended.reason.reason, "idle-timeout")
        self.assertEqual(server.sessions, {})

    def test_close(self):
        """
        CLOSE from the client ends the server's session with closed-by-peer;
        sending afterwards raises SessionClosed.
        """
        link, server, client = connect(self)
        client.closeSession(client.session, link.now)
        link.pump()
        [ended] = link.take("server", SessionEnded)
        self.assertEqual(ended.reason.reason, "closed-by-peer")
        [ended] = link.take(CLIENT_ADDR, SessionEnded)
        self.assertEqual(ended.reason.reason, "closed")
        self.assertRaises(SessionClosed, client.sendMessage, client.session, b"x", link.now)

    def test_shutdown(self):
        """
        A server shutdown closes every session and tells each client why.
        """
        link, server, client = connect(self)
        server.shutdown(link.now)
        link.pump()
        [ended] = link.take(CLIENT_ADDR, SessionEnded)
        self.assertEqual(ended.reason.reason, "server-shutdown")

    def test_keyExhausted(self):
        """
        A key that reaches rejectAfterMessages without a rekey (the peer never
        answers) closes the session instead of reusing a nonce.
        """
        config = Config(rekeyAfterMessages=5, rejectAfterMessages=8)
        link, server, client = connect(self, config)
        link.drop = lambda data, src, dst: src == SERVER_ADDR  # rekey responses never arrive
        for i in range(6):  # 1 confirm + 6 = 7 packets, then the rekey request is the 8th
            client.sendMessage(client.session, b"m%d" % i, link.now)
        self.assertRaises(SessionClosed, client.sendMessage, client.session, b"one too many", link.now)
        [ended] = link.take(CLIENT_ADDR, SessionEnded) or [None]
        link.pump()
        self.assertEqual(client.session.closeReason, "key-exhausted")
        seqs = [int.from_bytes(d[5:13], "big") for src, dst, d in link.sent if src == CLIENT_ADDR and d[0] & 0xF8 == 0x18]
        self.assertEqual(len(seqs), len(set(seqs)))
        self.assertLessEqual(max(seqs), 7)


class RegressionTests(unittest.TestCase):
    """
    Bugs found while writing the specification, each pinned by a test.
    """

    def test_exhaustedKeyOnReceivePathDoesNotRaise(self):
        """
        A reply that would need a sequence number past rejectAfterMessages
        (here the ack of a retransmitted CONFIRM) closes the session quietly
        inside receiveDatagram: nothing raises, the reason stays
        key-exhausted, and the server's counters stay consistent.
        """
        config = Config(rekeyAfterMessages=3, rejectAfterMessages=4)
        link, server, client = connect(self, config)
        s = serverSession(server)
        link.drop = lambda data, src, dst: True  # nothing arrives any more
        for i in range(2):  # the ack was 0; these are 1 and 2; the rekey ask that follows is 3
            server.sendMessage(s, b"m%d" % i, link.now)
        self.assertEqual(s.sendEpoch.sendSeq, 4)
        link.drop = lambda data, src, dst: False
        client.session._sendControl(client._confirm, link.now)  # a retransmitted CONFIRM
        link.pump()  # the server must answer it but cannot: key exhausted
        self.assertEqual(s.closeReason, "key-exhausted")
        self.assertEqual(server.stats()["sessions"], 0)
        self.assertEqual(server.stats()["pending"], 0)
        [ended] = link.take("server", SessionEnded)
        self.assertEqual(ended.reason.reason, "key-exhausted")

    def test_replayedInitAfterOpen(self):
        """
        A copy of HANDSHAKE_INIT replayed after the session opened gets no
        answer and creates no state (no second X25519 and signature).
        """
        link, server, client = connect(self)
        [init] = [d for src, dst, d in link.sent if d[0] == 0x13]
        before = server.counters["handshakes"]
        server.receiveDatagram(init, CLIENT_ADDR, link.now)
        self.assertEqual(server.outbox, [])
        self.assertEqual(server.counters["handshakes"], before)
        self.assertEqual(server.stats()["pending"], 0)
        self.assertEqual(server.drops["duplicate-ephemeral"], 1)

    def test_delayedPacketDoesNotRedirect(self):
        """
        An authentic but older packet replayed from another address (held back
        by an on-path attacker) is delivered if the window allows, but does
        not move the session's address; the newest packet starts path
        validation, and the session moves once the new address answers.
        """
        link, server, client = connect(self)
        s = serverSession(server)
        client.sendMessage(client.session, b"old", link.now)
        [(held, _)] = client.outbox
        client.outbox = []
        client.sendMessage(client.session, b"new", link.now)
        link.pump()
        server.receiveDatagram(held, ("127.0.0.1", 6666), link.now)
        self.assertEqual(s.peerAddr, CLIENT_ADDR)
        client.sendMessage(client.session, b"newest", link.now)
        [(newest, _)] = client.outbox
        client.outbox = []
        server.receiveDatagram(newest, ("127.0.0.1", 7777), link.now)
        self.assertEqual(s.peerAddr, CLIENT_ADDR)
        [(challenge, dst)] = server.outbox
        server.outbox = []
        self.assertEqual(dst, ("127.0.0.1", 7777))
        client.receiveDatagram(challenge, SERVER_ADDR, link.now)
        [(answer, _)] = client.outbox
        client.outbox = []
        server.receiveDatagram(answer, ("127.0.0.1", 7777), link.now)
        self.assertEqual(s.peerAddr, ("127.0.0.1", 7777))

    def test_closeTextFitsSmallDatagrams(self):
        """
        A CLOSE with a long reason still fits a 200-byte maxDatagramSize,
        cut on a UTF-8 character boundary, and reaches the peer.
        """
        config = Config(maxDatagramSize=200)
        link, server, client = connect(self, config)
        server.closeSession(serverSession(server), link.now, text="é" * 400)
        self.assertLessEqual(max(len(d) for d, _ in server.outbox), 200)
        link.pump()
        [ended] = link.take(CLIENT_ADDR, SessionEnded)
        self.assertEqual(ended.reason.reason, "closed-by-peer")
        self.assertTrue(set(ended.reason.detail) <= {"é"})
        self.assertGreater(len(ended.reason.detail), 50)

    def test_appDataInConfirmPacket(self):
        """
        APP_DATA carried in the same packet as CONFIRM is delivered after the
        session opens, whatever the record order.
        """
        from sudp.udp import records as R

        clock = Clock()
        identity = Identity.generate()
        server = ServerEngine(identity)
        link = Link(server, clock)
        client = link.add(ClientEngine(identity.publicKey, SERVER_ADDR))
        original = client.session.__class__._sendControl if client.session else None
        client.start(link.now)
        # stop before CONFIRM reaches the server and swap in one with APP_DATA first
        link.drop = lambda data, src, dst: data[0] & 0xFE == 0x1A and src == CLIENT_ADDR
        link.pump()
        link.drop = lambda data, src, dst: False
        client.session._sendControl(R.encodeRecord(R.APP_DATA, b"early") + R.encodeRecord(R.CONFIRM), link.now)
        link.pump()
        self.assertEqual(len(link.take("server", SessionOpened)), 1)
        self.assertEqual([e.message for e in link.take("server", MessageReceived)], [b"early"])
        self.assertIsNone(original)

    def test_cookieSecretLength(self):
        """
        A cookie master key BLAKE2b cannot take is refused at construction,
        not on the first HELLO.
        """
        from sudp.udp.cookie import CookieFactory

        self.assertRaises(ValueError, CookieFactory, bytes(65))
        self.assertRaises(ValueError, CookieFactory, bytes(15))
        self.assertRaises(ValueError, ServerEngine, Identity.generate(), cookieSecret=bytes(80))

    def test_zeroIndexRefused(self):
        """
        Session indexes are never 0: an INIT or RESP carrying 0 is malformed.
        """
        from sudp.errors import MalformedPacket
        from sudp.udp import packets as P

        init = P.HandshakeInit(0, 1, bytes(16), bytes(32), [1]).encode()
        self.assertEqual(self.assertRaises(MalformedPacket, P.HandshakeInit.decode, init).reason, "bad-field")
        resp = P.HandshakeResp(5, 0, 1, bytes(32), bytes(16), bytes(64)).encode()
        self.assertEqual(self.assertRaises(MalformedPacket, P.HandshakeResp.decode, resp).reason, "bad-field")


class CipherCacheTests(unittest.TestCase):
    def test_boundAndCorrect(self):
        """
        With cipherCache=2 and six sessions taking turns, at most two key
        epochs hold cipher objects at any time, the others re-make theirs on
        their next packet, and every message still arrives once, in order.
        """
        clock = Clock()
        identity = Identity.generate()
        config = Config(cipherCache=2, rekeyAfterMessages=7)
        server = ServerEngine(identity, config)
        link = Link(server, clock)
        clients = []
        for i in range(6):
            addr = ("127.0.0.1", 41000 + i)
            client = link.add(ClientEngine(identity.publicKey, SERVER_ADDR, config), addr)
            client.start(link.now)
            link.pump()
            clients.append((addr, client))
        self.assertEqual(server.stats()["sessions"], 6)
        sessions = {s.remoteIndex: s for s in server.sessions.values()}
        sent = {addr: [] for addr, _ in clients}
        for round_ in range(20):
            for addr, client in clients:
                message = b"%s:%d" % (str(addr[1]).encode(), round_)
                client.sendMessage(client.session, message, link.now)
                sent[addr].append(message)
                link.pump()
                self.assertLessEqual(len(server.ciphers), 2)
                reply = sessions[client.session.localIndex]
                server.sendMessage(reply, b"r" + message, link.now)
                link.pump()
        got = [e for w, e in link.events if w == "server" and isinstance(e, MessageReceived)]
        for addr, _ in clients:
            mine = [e.message for e in got if e.message.startswith(str(addr[1]).encode())]
            self.assertEqual(mine, sent[addr])
        for addr, client in clients:
            replies = [e.message for w, e in link.events if w == addr and isinstance(e, MessageReceived)]
            self.assertEqual(replies, [b"r" + m for m in sent[addr]])
        self.assertGreater(server.ciphers.released, 50)
        self.assertEqual(dict(server.drops), {})


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
