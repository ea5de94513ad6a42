# -*- test-case-name: sudp_test.udp.test_server -*-
"""
Tests for L{sudp.udp.server}.
"""

import os
import struct

from hypothesis import given, settings, strategies as st
from twisted.internet.task import Clock
from twisted.trial import unittest

from sudp.errors import MessageTooLarge
from sudp.keys import Identity
from sudp.udp import packets as P
from sudp.udp.client import ClientEngine, ClientState
from sudp.udp.config import Config
from sudp.udp.cookie import CookieFactory
from sudp.udp.events import MessageReceived, SessionEnded, SessionOpened
from sudp.udp.server import ServerEngine

from sudp_test.enginehelpers import (
    CLIENT_ADDR,
    connect,
    connectedPair,
    containerSizes,
    dropsDuring,
    getCookie,
    isResetFor,
    makeInit,
    Network,
    newServer,
    SERVER_ADDR,
    serverSessionOf,
    START,
    takeOutbox,
)
from sudp_test.udp.helpers import (
    EngineTestCase,
    FAST,
    Link,
    OTHER_ADDR,
    anyBytes,
    connectLink,
    header,
    serverSession,
    u64,
    u8,
)

MAX = Config().maxDatagramSize  # 1452

class ServerMalformedTests(EngineTestCase):
    """
    Datagrams that do not parse, handed to a server with one open session.
    """

    def setUp(self):
        self.net, self.server, self.client = connectedPair()

    def test_emptyDatagram(self):
        """
        An empty datagram is dropped as C{empty}.
        """
        self.assertServerDrops(self.server, b"", OTHER_ADDR, "empty")
        self.assertServerDrops(self.server, b"", CLIENT_ADDR, "empty")

    def test_helloTruncated(self):
        """
        A HELLO of 1 to 63 bytes is dropped as C{truncated} and not answered.
        """
        hello = P.encodeHello(b"12345678")
        for n in range(1, P.HELLO_SIZE):
            self.assertServerDrops(self.server, hello[:n], OTHER_ADDR, "truncated")

    def test_helloOversized(self):
        """
        A HELLO over maxDatagramSize is dropped as C{oversized}; one of
        exactly maxDatagramSize is answered.
        """
        hello = P.encodeHello(b"12345678")
        tooLong = hello + bytes(MAX + 1 - len(hello))
        self.assertServerDrops(self.server, tooLong, OTHER_ADDR, "oversized")
        self.server.receiveDatagram(hello + bytes(MAX - len(hello)), OTHER_ADDR, START)
        [(reply, dst)] = takeOutbox(self.server)
        self.assertEqual((len(reply), dst), (P.COOKIE_PACKET_SIZE, OTHER_ADDR))

    def test_cookieToServer(self):
        """
        A COOKIE, of the right size, shorter or longer, is not something a
        server accepts: C{unexpected-type}.
        """
        cookie = P.encodeCookie(b"12345678", int(START), bytes(16))
        for data in (cookie, cookie[:1], cookie[:-1], cookie + b"\0", cookie + bytes(500)):
            self.assertServerDrops(self.server, data, OTHER_ADDR, "unexpected-type")

    def test_respToServer(self):
        """
        A HANDSHAKE_RESP of any size is dropped as C{unexpected-type}.
        """
        resp = P.HandshakeResp(1, 2, 1, bytes(32), bytes(16), bytes(64)).encode()
        for data in (resp, resp[:1], resp[:-1], resp + b"\0"):
            self.assertServerDrops(self.server, data, OTHER_ADDR, "unexpected-type")

    def test_initTruncated(self):
        """
        Every proper prefix of a HANDSHAKE_INIT (with a valid cookie) is
        dropped as C{truncated}, as is one whose suite count promises more
        suites than it carries.
        """
        ts, cookie = getCookie(self.server, OTHER_ADDR, START)
        init = makeInit(ts, cookie, suites=(1, 2, 3))
        for n in range(1, len(init)):
            self.assertServerDrops(self.server, init[:n], OTHER_ADDR, "truncated")
        lying = bytearray(makeInit(ts, cookie, suites=(1,)))
        lying[57] = 2
        self.assertServerDrops(self.server, bytes(lying), OTHER_ADDR, "truncated")

    def test_initBadPadding(self):
        """
        A HANDSHAKE_INIT with bytes after its suite list that are not all
        zero is dropped as C{bad-padding}, wherever the nonzero byte is; one
        longer than maxDatagramSize as C{oversized}. (Zero padding of any
        length is accepted: test_initPadded.)
        """
        ts, cookie = getCookie(self.server, OTHER_ADDR, START)
        init = makeInit(ts, cookie)
        for extra in (1, 2, 100, MAX - len(init)):
            for at in {0, extra // 2, extra - 1}:
                padding = bytearray(extra)
                padding[at] = 1
                self.assertServerDrops(self.server, init + bytes(padding), OTHER_ADDR, "bad-padding")
        tooLong = init + bytes(MAX + 1 - len(init))
        self.assertServerDrops(self.server, tooLong, OTHER_ADDR, "oversized")

    def test_initPadded(self):
        """
        A HANDSHAKE_INIT padded with zero bytes, up to maxDatagramSize, is
        answered.
        """
        for extra in (1, 63, MAX - 59):
            ts, cookie = getCookie(self.server, OTHER_ADDR, START)
            init = makeInit(ts, cookie) + bytes(extra)
            self.server.receiveDatagram(init, OTHER_ADDR, START)
            [(resp, dst)] = takeOutbox(self.server)
            self.assertEqual((resp[0], dst), (P.HANDSHAKE_RESP, OTHER_ADDR))

    def test_initPaddedSize(self):
        """
        L{P.HandshakeInit.decode} gives the INIT's whole length, padding
        included (the server resends a RESP only to an INIT at least
        L{P.HANDSHAKE_RESP_SIZE} long), and the padding is part of the
        INIT's bytes: encoding pads to C{padTo} with zeros.
        """
        self.assertEqual(P.HANDSHAKE_RESP_SIZE, 122)
        ts, cookie = getCookie(self.server, OTHER_ADDR, START)
        bare = makeInit(ts, cookie)
        for extra in (0, 1, P.HANDSHAKE_RESP_SIZE - len(bare), MAX - len(bare)):
            init = P.HandshakeInit.decode(bare + bytes(extra))
            self.assertEqual(init.size, len(bare) + extra)
        padded = P.HandshakeInit.decode(bare).encode(padTo=P.HANDSHAKE_RESP_SIZE)
        self.assertEqual(padded, bare + bytes(P.HANDSHAKE_RESP_SIZE - len(bare)))
        self.assertEqual(P.HandshakeInit.decode(padded).size, P.HANDSHAKE_RESP_SIZE)

    def test_initBadSuiteCount(self):
        """
        A HANDSHAKE_INIT offering 0 or more than 16 suites is dropped as
        C{bad-field}.
        """
        ts, cookie = getCookie(self.server, OTHER_ADDR, START)
        base = bytearray(makeInit(ts, cookie))
        for count in (0, 17, 255):
            data = bytes(base[:57]) + bytes([count]) + bytes(range(1, max(count, 1) + 1))
            self.assertServerDrops(self.server, data, OTHER_ADDR, "bad-field")

    def test_initZeroSenderIndex(self):
        """
        A HANDSHAKE_INIT with sender index 0 (never a session index) is
        dropped as C{bad-field}, cookie or no cookie.
        """
        ts, cookie = getCookie(self.server, OTHER_ADDR, START)
        init = makeInit(ts, cookie, senderIndex=0)
        self.assertServerDrops(self.server, init, OTHER_ADDR, "bad-field")

    def test_initNoCommonSuite(self):
        """
        A HANDSHAKE_INIT with a valid cookie that offers only unknown suites
        is dropped as C{no-common-suite}.
        """
        ts, cookie = getCookie(self.server, OTHER_ADDR, START)
        self.assertServerDrops(
            self.server, makeInit(ts, cookie, suites=(0, 99, 200)), OTHER_ADDR, "no-common-suite"
        )
        # padded as a UDP client pads it: also answered with a signed refusal, no longer than the INIT
        ts, cookie = getCookie(self.server, ("192.0.2.77", 5), START)
        padded = makeInit(ts, cookie, suites=(0, 99, 200))
        padded += bytes(P.HANDSHAKE_RESP_SIZE - len(padded))
        self.server.receiveDatagram(padded, ("192.0.2.77", 5), START)
        [(refusal, dst)] = takeOutbox(self.server)
        self.assertEqual(P.HandshakeRefused.decode(refusal).receiverIndex, 0x01020304)
        self.assertLessEqual(len(refusal), len(padded))

    def test_dataTruncated(self):
        """
        A DATA or CONTROL packet shorter than header plus tag (29 bytes) is
        dropped as C{truncated}, even with the session's real index.
        """
        packet, _ = self.capturedData(self.net, self.client)
        for n in range(1, P.DATA_HEADER_SIZE + 16):
            for t in (0x18, 0x19, 0x1A, 0x1B):
                data = bytes([t]) + packet[1:n]
                self.assertServerDrops(self.server, data, CLIENT_ADDR, "truncated")

    def test_dataTruncatedUnknownIndex(self):
        """
        protocol.md 10.5: the tag size belongs to the session's suite, so the
        receiver index is looked up (C{unknown-session}) before the length is
        checked against header and tag: a 13- to 28-byte DATA packet for an
        index that names no session is C{unknown-session}, and the same for a
        live session's index is C{truncated}.
        """
        for n in range(P.DATA_HEADER_SIZE, P.DATA_HEADER_SIZE + 16):
            data = P.encodeDataHeader(0x18, 0x0BADBAD0, 1) + bytes(n - P.DATA_HEADER_SIZE)
            self.assertServerDrops(self.server, data, OTHER_ADDR, "unknown-session")

    def test_dataOversized(self):
        """
        A DATA packet over maxDatagramSize is dropped as C{oversized} before
        any decryption, from the session's own address too.
        """
        packet, _ = self.capturedData(self.net, self.client)
        tooLong = packet + bytes(MAX + 1 - len(packet))
        self.assertServerDrops(self.server, tooLong, CLIENT_ADDR, "oversized")
        self.assertServerDrops(self.server, packet + bytes(60000), CLIENT_ADDR, "oversized")

    def test_dataPaddedToMaximum(self):
        """
        A captured DATA packet lengthened (still within maxDatagramSize)
        fails its tag: C{bad-tag}.
        """
        packet, _ = self.capturedData(self.net, self.client)
        for extra in (1, 16, MAX - len(packet)):
            self.assertServerDrops(self.server, packet + bytes(extra), CLIENT_ADDR, "bad-tag")
        for cut in (1, 15, 16):
            self.assertServerDrops(self.server, packet[:-cut], CLIENT_ADDR, "bad-tag")

    def test_unknownTypeNibble(self):
        """
        Version 1 with a type nibble that is not assigned (0x10) is
        dropped as C{unknown-type}, at any length; gossip6's INIT and RESP
        (0x15, 0x16) and HANDSHAKE_REFUSED (0x17, server to client) are
        assigned, and a sudp/1 server drops them as C{unexpected-type}.
        """
        for t, reason in ((0x10, "unknown-type"), (0x17, "unexpected-type"),
                          (0x15, "unexpected-type"), (0x16, "unexpected-type")):
            for body in (b"", bytes(63), bytes(200)):
                self.assertServerDrops(self.server, bytes([t]) + body, OTHER_ADDR, reason)

    def test_unknownTypeNibbleInDataRange(self):
        """
        Type nibbles 0xD to 0xF are not assigned (DATA is 0x8/0x9, CONTROL
        0xA/0xB, STATELESS_RESET 0xC, server to client) and must be dropped
        as C{unknown-type}, 0xC as C{unexpected-type}; the server's DATA fast
        path must not take them for DATA or CONTROL.
        """
        index = self.client.session.remoteIndex
        for t in (0x1C, 0x1D, 0x1E, 0x1F):
            for body in (b"", bytes(63), struct.pack(">IQ", index, 99) + bytes(40)):
                self.assertServerDrops(self.server, bytes([t]) + body, CLIENT_ADDR,
                                       "unexpected-type" if t == P.STATELESS_RESET else "unknown-type")

    def test_wrongVersionNibble(self):
        """
        Every version nibble but 1, with every type nibble, is dropped as
        C{wrong-version}, including a real DATA packet relabelled.
        """
        packet, _ = self.capturedData(self.net, self.client)
        for version in range(16):
            if version == 1:
                continue
            for typeNibble in range(16):
                first = bytes([version << 4 | typeNibble])
                for body in (b"", bytes(63), packet[1:]):
                    self.assertServerDrops(self.server, first + body, CLIENT_ADDR, "wrong-version")

class StatelessnessTests(EngineTestCase):
    """
    Before a valid cookie the server keeps nothing per client.
    """

    def test_noStateBeforeCookie(self):
        """
        Thousands of HELLOs, INITs with forged, misaddressed and expired
        cookies, and DATA for unknown sessions, from thousands of addresses,
        leave no session, no pending handshake and no growth in any of the
        engine's containers.
        """
        secret = b"s" * 32
        server = newServer(cookieSecret=secret)
        other = CookieFactory(secret)
        now = START

        def addr(i):
            return (f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 1024 + i % 60000)

        # everything the flood will send, made up front
        oldCookies = [other.make(*addr(i), now - 1000) for i in range(600)]
        other = None

        def flood(start, count):
            for i in range(start, start + count):
                a = addr(i)
                server.receiveDatagram(P.encodeHello(i.to_bytes(8, "big")), a, now)
                server.receiveDatagram(P.encodeHello(b"x" * 8)[:40], a, now)
                ts, cookie = oldCookies[i % len(oldCookies)]
                server.receiveDatagram(makeInit(int(now), os.urandom(16)), a, now)
                server.receiveDatagram(makeInit(ts, cookie), a, now)
                takeOutbox(server)
            for i in range(start, start + count):
                a = addr(i)
                ts, cookie = getCookie(server, addr(i + 1), now)  # for the neighbour
                server.receiveDatagram(makeInit(ts, cookie), a, now)
                server.receiveDatagram(P.encodeDataHeader(0x18, i + 1, i) + bytes(32), a, now)
                takeOutbox(server)

        flood(0, 5)  # every drop reason and the counters exist from here on
        self.assertEqual(
            set(server.drops), {"truncated", "bad-cookie", "expired-cookie", "unknown-session"}
        )
        sizes = containerSizes(server, server.cookies, server.timers)
        drops = dict(server.drops)
        flood(5, 3000)
        self.assertEqual(server.sessions, {})
        self.assertEqual(server.byEphemeral, {})
        self.assertEqual(server.pendingCount, 0)
        self.assertEqual(server.openCount, 0)
        self.assertIsNone(server.nextDeadline())
        self.assertEqual(containerSizes(server, server.cookies, server.timers), sizes)
        self.assertEqual(
            dict(server.drops),
            {
                "truncated": drops["truncated"] + 3000,
                "bad-cookie": drops["bad-cookie"] + 6000,
                "expired-cookie": drops["expired-cookie"] + 3000,
                "unknown-session": drops["unknown-session"] + 3000,
            },
        )
        self.assertEqual(server.counters["cookies-sent"], 2 * 3005)
        # each DATA for an unknown session drew a stateless reset, within the server's rate
        self.assertEqual(server.counters["resets-sent"], Config().resetBurst)
        self.assertEqual(set(server.counters), {"cookies-sent", "resets-sent"})

    def test_cookieSecretsBoundedOverTime(self):
        """
        As time passes over many cookie rotations, with HELLOs and INITs
        carrying old, current and future timestamps, the server keeps at
        most a few derived secrets.
        """
        server = newServer()
        rotation = server.cookies.rotation
        for step in range(200):
            now = START + step * rotation / 3
            for ts in (0, int(now) - 5 * rotation, int(now), int(now) + 3 * rotation, 2**32 - 1):
                server.receiveDatagram(makeInit(ts, bytes(16)), CLIENT_ADDR, now)
            getCookie(server, CLIENT_ADDR, now)
            self.assertLessEqual(len(server.cookies._cache), 4)
        self.assertEqual(server.sessions, {})
        self.assertEqual(set(server.drops), {"bad-cookie", "expired-cookie"})

class AmplificationTests(EngineTestCase):
    """
    The server never sends more to an unproven address than it received.
    """

    def test_replyNotLongerThanRequest(self):
        """
        For every kind of datagram from an address that has shown no cookie,
        each reply goes back to that address and is no longer than the
        request; only a HELLO of 64 bytes or more gets a 29-byte COOKIE, and
        a DATA or CONTROL packet for no session a smaller stateless reset.
        """
        net, server, client = connectedPair()
        client.sendMessage(client.session, b"x" * 100, net.now)
        net.pump()
        captured = [d for s, dst, d in net.sent]
        ts, cookie = getCookie(server, ("198.51.100.1", 7), net.now)
        requests = [b"", P.encodeHello(b"12345678")]
        requests += [P.encodeHello(b"12345678") + bytes(n) for n in (1, 36, 500, MAX - 64)]
        requests += [P.encodeHello(b"12345678")[:n] for n in (1, 2, 9, 30, 63)]
        requests += [
            makeInit(ts, cookie),
            makeInit(ts, os.urandom(16)),
            makeInit(ts, cookie, suites=range(1, 17)),
        ]
        requests += [bytes([t]) + os.urandom(n) for t in range(256) for n in (0, 28, 63, 120)]
        requests += captured  # the real handshake and data packets, replayed
        replies = expected = 0
        for i, request in enumerate(requests):
            src = ("203.0.113.%d" % (i % 250 + 1), 10000 + i)
            server.receiveDatagram(request, src, net.now)
            out = takeOutbox(server)
            isHello = len(request) >= 64 and request[0] == P.HELLO
            if isHello and len(request) <= MAX:
                expected += 1
                self.assertEqual([(len(d), dst) for d, dst in out], [(P.COOKIE_PACKET_SIZE, src)])
                replies += 1
            elif out and request[0] & 0xFC == P.DATA:
                [(reset, _)] = out  # an unknown session's packet: a smaller stateless reset
                self.assertTrue(isResetFor(reset, request), reset.hex())
            else:
                self.assertEqual(out, [], f"reply to {request[:16].hex()} of {len(request)} bytes")
            for data, dst in out:
                self.assertEqual(dst, src)
                self.assertLessEqual(len(data), len(request))
        self.assertEqual(replies, expected)
        self.assertGreaterEqual(replies, 5)
        self.assertEqual(server.openCount + server.pendingCount, 1)

    def test_shortHelloNoReply(self):
        """
        A HELLO shorter than 64 bytes is not answered at all, and a 64-byte
        one gets 29 bytes.
        """
        server = newServer()
        hello = P.encodeHello(b"abcdefgh")
        self.assertEqual(len(hello), 64)
        for n in range(1, 64):
            server.receiveDatagram(hello[:n], CLIENT_ADDR, START)
            self.assertEqual(takeOutbox(server), [])
        server.receiveDatagram(hello, CLIENT_ADDR, START)
        [(reply, dst)] = takeOutbox(server)
        self.assertEqual((len(reply), dst), (29, CLIENT_ADDR))
        self.assertEqual(P.decodeCookie(reply)[0], b"abcdefgh")

class LimitTests(EngineTestCase):
    """
    maxPendingHandshakes, maxSessions and maxMessageSize.
    """

    def test_maxPendingHandshakes(self):
        """
        With maxPendingHandshakes=2 and two handshakes waiting, a third INIT
        with a valid cookie is dropped as C{too-many-pending}; the open
        session keeps working.
        """
        server = newServer(Config(maxPendingHandshakes=2))
        net = Network(server)
        first = connect(net, CLIENT_ADDR)
        self.assertEqual(server.openCount, 1)
        noResp = lambda data, src, dst: data[0] == P.HANDSHAKE_RESP  # noqa: E731
        for port in (41000, 41001):
            pending = ClientEngine(server.identity.publicKey, SERVER_ADDR)
            net.add(pending, ("127.0.0.1", port)).start(net.now)
            net.pump(drop=noResp)
        self.assertEqual(server.pendingCount, 2)
        third = net.add(ClientEngine(server.identity.publicKey, SERVER_ADDR), ("127.0.0.1", 41002))
        third.start(net.now)
        self.assertEqual(dropsDuring(server, net.pump), {"too-many-pending": 1})
        lastToThird = [d for s, dst, d in net.sent if dst == ("127.0.0.1", 41002)][-1]
        self.assertEqual(lastToThird[0], P.COOKIE)
        self.assertEqual(server.pendingCount, 2)
        self.assertEqual(third.state, ClientState.INIT_SENT)
        self.assertWorks(net, first)

    def test_maxSessions(self):
        """
        With maxSessions=2 and two open sessions, a third INIT is dropped as
        C{server-full} while both sessions keep working; once one closes,
        the third client's retransmitted INIT gets in.
        """
        server = newServer(Config(maxSessions=2))
        net = Network(server)
        a = connect(net, ("127.0.0.1", 41000))
        b = connect(net, ("127.0.0.1", 41001))
        self.assertEqual(server.openCount, 2)
        c = net.add(ClientEngine(server.identity.publicKey, SERVER_ADDR), ("127.0.0.1", 41002))
        c.start(net.now)
        self.assertEqual(dropsDuring(server, net.pump), {"server-full": 1})
        self.assertEqual(c.state, ClientState.INIT_SENT)
        self.assertWorks(net, a)
        self.assertWorks(net, b)
        a.closeSession(a.session, net.now)
        net.pump()
        self.assertEqual(server.openCount, 1)
        net.advance(0.6)  # c retransmits its INIT
        self.assertEqual(c.state, ClientState.ESTABLISHED)
        self.assertEqual(server.openCount, 2)
        self.assertWorks(net, b)
        self.assertWorks(net, c)

    def test_keyExhaustionClosesWithoutRaising(self):
        """
        A server whose send key reached rejectAfterMessages (its rekey asks
        lost) that then gets the client's REKEY_REQUEST cannot answer: the
        session closes as C{key-exhausted}, reported as SessionEnded, and
        nothing is raised out of receiveDatagram or sealed past the limit.
        """
        config = Config(rekeyAfterMessages=2, rejectAfterMessages=3)
        net, server, client = connectedPair(config)
        session = serverSessionOf(server, client)
        server.sendMessage(session, b"a", net.now)  # seq 1; then the ask, seq 2
        self.assertEqual(session.sendEpoch.sendSeq, 3)
        takeOutbox(server)  # all lost
        client.sendMessage(client.session, b"x", net.now)  # seq 1, then the client's REKEY_REQUEST
        for data, _ in takeOutbox(client):
            server.receiveDatagram(data, CLIENT_ADDR, net.now)
        self.assertEqual(session.state, "closed")
        self.assertEqual(session.closeReason, "key-exhausted")
        seqs = [header(d)[2] for d, dst in takeOutbox(server)]
        self.assertTrue(all(q < 3 for q in seqs), seqs)
        [ended] = [e for e in server.events if isinstance(e, SessionEnded)]
        self.assertEqual(ended.reason.reason, "key-exhausted")
        self.assertEqual(server.sessions, {})

    def test_rekeyAfterOneMessageSettles(self):
        """
        rekeyAfterMessages=1 is a valid setting; an idle session with it
        must still go quiet after its rekeys rather than rekey forever.
        """
        config = Config(rekeyAfterMessages=1, rejectAfterMessages=4)
        server = newServer(config)
        net = Network(server)
        count = [0]

        def drop(data, src, dst):
            count[0] += 1
            return count[0] > 300  # a fuse, so that the test ends

        net.drop = drop
        client = connect(net, CLIENT_ADDR, config)
        self.assertEqual(client.state, ClientState.ESTABLISHED)
        self.assertLess(len(net.sent), 100, f"{len(net.sent)} datagrams, "
                        f"{client.session.stats['rekeys']} rekeys, no application data")

    def test_messageTooLarge(self):
        """
        A message one byte over maxMessageSize raises L{MessageTooLarge}
        with C{size} and C{limit}, on either side, and sends nothing; one of
        exactly maxMessageSize fills a maxDatagramSize datagram.
        """
        net, server, client = connectedPair()
        session = serverSessionOf(server, client)
        limit = Config().maxMessageSize
        self.assertEqual(limit, MAX - 29)
        for send, engine, sess in ((lambda m: client.sendMessage(client.session, m, net.now), client, client.session),
                                   (lambda m: server.sendMessage(session, m, net.now), server, session)):
            seq = sess.sendEpoch.sendSeq
            e = self.assertRaises(MessageTooLarge, send, b"x" * (limit + 1))
            self.assertEqual((e.size, e.limit), (limit + 1, limit))
            e = self.assertRaises(MessageTooLarge, send, b"x" * 65536)
            self.assertEqual((e.size, e.limit), (65536, limit))
            self.assertEqual(engine.outbox, [])
            self.assertEqual(sess.sendEpoch.sendSeq, seq)
            send(b"x" * limit)
            [(data, _)] = takeOutbox(engine)
            self.assertEqual(len(data), MAX)

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
        link, server, client = connectLink(self, config)
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
        link, server, client = connectLink(self)
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
        link, server, client = connectLink(self)
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
        link, server, client = connectLink(self, config)
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

def mutate(data, ops):
    """
    Apply C{ops}, a list of C{(kind, position, value)}, to C{data}.
    """
    out = bytearray(data)
    for kind, pos, value in ops:
        if kind == "flip" and out:
            out[pos % len(out)] ^= 1 << (value % 8)
        elif kind == "set" and out:
            out[pos % len(out)] = value
        elif kind == "cut":
            del out[pos % (len(out) + 1):]
        elif kind == "insert":
            out[pos % (len(out) + 1):pos % (len(out) + 1)] = bytes([value])
        elif kind == "extend":
            out += bytes([value]) * (pos % 64)
    return bytes(out)

mutations = st.lists(
    st.tuples(
        st.sampled_from(["flip", "set", "cut", "insert", "extend"]), st.integers(0, 2000), u8
    ),
    min_size=1, max_size=4,
)

datagramLists = st.lists(
    st.one_of(anyBytes, st.binary(min_size=29, max_size=1600)), min_size=1, max_size=5
)

addresses = st.sampled_from([CLIENT_ADDR, ("127.0.0.1", 40001), ("10.0.0.9", 53), ("::1", 40000)])

class EngineFuzzTests(unittest.TestCase):
    """
    The engines on arbitrary and mutated datagrams: nothing raises, and the
    open session still carries messages both ways afterwards.
    """

    def setUp(self):
        self.net, self.server, self.client = connectedPair(Config(rekeyAfterMessages=6))
        self.session = serverSessionOf(self.server, self.client)
        self.count = 0
        # real packets of every kind, all already delivered
        for i in range(8):
            self.client.sendMessage(self.client.session, b"c%d" % i, self.net.now)
            self.server.sendMessage(self.session, b"s%d" % i, self.net.now)
            self.net.pump()
        self.fromClient = [d for s, dst, d in self.net.sent if dst == SERVER_ADDR]
        self.fromServer = [d for s, dst, d in self.net.sent if s == SERVER_ADDR]
        self.assertEqual({d[0] for d in self.fromClient} >= {0x11, 0x13, 0x18, 0x1A}, True)
        self.assertEqual({d[0] for d in self.fromServer} >= {0x12, 0x14, 0x1A}, True)
        self.net.events = []

    def assertStillWorks(self):
        """
        Nothing was delivered from the junk; then a message goes each way.
        """
        self.assertEqual([e for w, e in self.net.events if isinstance(e, MessageReceived)], [])
        self.assertEqual(self.session.state, "open")
        self.assertEqual(self.client.session.state, "open")
        self.count += 1
        tag = b"%d" % self.count
        self.client.sendMessage(self.client.session, b"ping" + tag, self.net.now)
        self.server.sendMessage(self.session, b"pong" + tag, self.net.now)
        events = self.net.pump()
        got = sorted(e.message for w, e in events if isinstance(e, MessageReceived))
        self.assertEqual(got, [b"ping" + tag, b"pong" + tag])
        self.net.events = []

    def toServer(self, data, addr):
        self.server.receiveDatagram(data, addr, self.net.now)
        # a mutated INIT can carry a still-valid cookie and open a pending
        # handshake; its RESP goes nowhere
        for reply, dst in takeOutbox(self.server):
            self.assertLessEqual(len(reply), max(len(data), P.HANDSHAKE_RESP_SIZE))
            if len(reply) > len(data):  # only to an address its cookie proved
                self.assertEqual((reply[0], dst), (P.HANDSHAKE_RESP, CLIENT_ADDR))

    def toClient(self, data):
        self.client.receiveDatagram(data, SERVER_ADDR, self.net.now)
        self.assertEqual(takeOutbox(self.client), [])
        self.assertEqual(self.client.events, [])

    @FAST
    @given(datagramLists,
           addresses)
    def test_serverArbitraryBytes(self, datagrams, addr):
        """
        ServerEngine.receiveDatagram on arbitrary bytes never raises and the
        session survives.
        """
        for data in datagrams:
            self.toServer(data, addr)
        self.assertEqual(self.server.events, [])
        self.assertStillWorks()

    @FAST
    @given(st.data(), addresses)
    def test_serverAimedBytes(self, data, addr):
        """
        Random DATA/CONTROL packets aimed at the open session (its index,
        any type byte, any sequence number) never raise and change nothing.
        """
        t = data.draw(st.integers(0x10, 0x1F))
        seq = data.draw(st.one_of(u64, st.integers(0, 40)))
        body = data.draw(st.binary(max_size=200))
        packet = P.encodeDataHeader(t, self.session.localIndex, seq) + body
        highest = [ep and ep.window.highest for ep in self.session.epochs]
        self.toServer(packet, addr)
        self.assertEqual([ep and ep.window.highest for ep in self.session.epochs], highest)
        self.assertEqual(self.session.peerAddr, CLIENT_ADDR)
        self.assertEqual(self.server.events, [])
        self.assertStillWorks()

    @FAST
    @given(st.data(), mutations, addresses)
    def test_serverMutatedPackets(self, data, ops, addr):
        """
        Mutations of real client packets (HELLO, INIT, CONFIRM, DATA,
        rekey CONTROL) never raise, deliver nothing and leave the session
        working.
        """
        original = data.draw(st.sampled_from(self.fromClient))
        self.toServer(mutate(original, ops), addr)
        self.assertEqual(self.session.peerAddr, CLIENT_ADDR)
        self.assertLessEqual(self.server.pendingCount, 1 + self.count)
        self.assertStillWorks()

    @FAST
    @given(datagramLists)
    def test_clientArbitraryBytes(self, datagrams):
        """
        ClientEngine.receiveDatagram on arbitrary bytes never raises, sends
        nothing and the session survives.
        """
        for data in datagrams:
            self.toClient(data)
        self.assertStillWorks()

    @FAST
    @given(st.data())
    def test_clientAimedBytes(self, data):
        """
        Random packets carrying the client's own index never raise.
        """
        t = data.draw(st.integers(0x10, 0x1F))
        seq = data.draw(st.one_of(u64, st.integers(0, 40)))
        body = data.draw(st.binary(max_size=200))
        self.toClient(P.encodeDataHeader(t, self.client.session.localIndex, seq) + body)
        self.assertStillWorks()

    @FAST
    @given(st.data(), mutations)
    def test_clientMutatedPackets(self, data, ops):
        """
        Mutations of real server packets (COOKIE, RESP, keepalives, DATA,
        rekey responses) never raise and leave the session working.
        """
        original = data.draw(st.sampled_from(self.fromServer))
        self.toClient(mutate(original, ops))
        self.assertStillWorks()

    @settings(max_examples=60, deadline=None)
    @given(st.data())
    def test_reorderedDuplicatedDelivery(self, data):
        """
        Real packets delivered in any order, any number of times, each reach
        the application at most once; with ordering=strict, in increasing
        order.
        """
        strict = data.draw(st.booleans())
        net, server, client = connectedPair(Config(ordering="strict" if strict else "window"))
        packets = []
        for i in range(12):
            client.sendMessage(client.session, b"%d" % i, net.now)
            packets.extend(d for d, _ in takeOutbox(client))
        order = data.draw(st.lists(st.integers(0, len(packets) - 1), max_size=40))
        for i in order:
            server.receiveDatagram(packets[i], CLIENT_ADDR, net.now)
        got = [int(e.message) for e in server.events]
        self.assertEqual(len(got), len(set(got)))
        if not strict:
            self.assertEqual(set(got), set(order))
        else:
            self.assertEqual(got, sorted(got))
            expected = []
            for i in order:
                if not expected or i > expected[-1]:
                    expected.append(i)
            self.assertEqual(got, expected)
