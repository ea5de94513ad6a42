# -*- test-case-name: sudp_test.udp.test_sudp1 -*-
"""
Tests for L{sudp.udp.sudp1}.
"""

import hashlib
import itertools
import struct
from collections import Counter

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from twisted.internet.task import Clock
from twisted.trial import unittest

from sudp.errors import BadServerSignature, ClientNotAuthorized, HandshakeFailed, HandshakeTimeout
from sudp.keys import Identity
from sudp.suites import getSuite
from sudp.udp import packets as P
from sudp.udp.client import ClientEngine, ESTABLISHED, FAILED
from sudp.udp.config import Config
from sudp.udp.events import ClientRefused, HandshakeFailure, SessionOpened
from sudp.udp.reset import resetSize
from sudp.udp.server import ServerEngine

from sudp_test.enginehelpers import (
    CLIENT_ADDR,
    isResetFor,
    Network,
    SERVER_ADDR,
    serverSessionOf,
    START,
)
from sudp_test.udp.helpers import (
    CLIENT_IDENTITY,
    COOKIE_MASTER,
    COUNTS,
    Link,
    PASSES,
    REPLY_COOKIE,
    RecordingSuite,
    SERVER_IDENTITY,
    SUITE_NAMES,
    _forEverySuite,
    added,
    connectLink,
    cookieVerdict,
    expectedFate,
    flip,
    serverSession,
    stateOf,
)

INJECT_AT = START + 0.25  # tampered handshake packets arrive before any retransmission

def deterministicRandom(label):
    """
    @return: a C{random(n)} for an engine: a SHA-256 counter stream of
        C{label}, so that engines given the same label draw the same bytes.
    """
    counter = itertools.count()
    buffer = bytearray()

    def draw(n):
        while len(buffer) < n:
            buffer.extend(hashlib.sha256(label + next(counter).to_bytes(8, "big")).digest())
        out = bytes(buffer[:n])
        del buffer[:n]
        return out

    return draw

def isLowOrder(public):
    """
    Section 3: an X25519 key whose exchange gives all zeros.
    """
    try:
        secret = X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(bytes(public)))
    except ValueError:
        return True
    return not any(secret)

def retransmissions(config, sentAt, expiresAt):
    """
    Section 14.1: when a handshake packet first sent at C{sentAt} is resent
    before the handshake expires at C{expiresAt}.
    """
    times = []
    interval = config.retransmitInitial
    when = sentAt + interval
    while when < expiresAt:
        times.append(when)
        interval = min(interval * 2, config.retransmitMax)
        when += interval
    return times

HANDSHAKE_FIELDS = {
    # message: (sent by the client?, first byte, [(field, start, end)])
    "hello": (True, P.HELLO, [("type", 0, 1), ("nonce", 1, 9), ("padding", 9, 64)]),
    "cookie": (False, P.COOKIE, [("type", 0, 1), ("nonce", 1, 9), ("timestamp", 9, 13), ("cookie", 13, 29)]),
    "init": (True, P.HANDSHAKE_INIT, [
        ("type", 0, 1), ("sender index", 1, 5), ("timestamp", 5, 9), ("cookie", 9, 25),
        ("ephemeral", 25, 57), ("count", 57, 58), ("suites", 58, 59), ("padding", 59, 122)]),
    "resp": (False, P.HANDSHAKE_RESP, [
        ("type", 0, 1), ("receiver index", 1, 5), ("sender index", 5, 9), ("suite", 9, 10),
        ("ephemeral", 10, 42), ("confirmation", 42, 58), ("signature", 58, 122)]),
    "confirm": (True, 0x1A, [("type", 0, 1), ("receiver index", 1, 5), ("sequence", 5, 13), ("sealed", 13, 131)]),
    "keepalive": (False, 0x1A, [("type", 0, 1), ("receiver index", 1, 5), ("sequence", 5, 13), ("sealed", 13, 51)]),
}

GENUINE = "genuine"

def sessionParameters(session, client):
    """
    What both sides of one session must agree on, from the client's view.
    """
    ep = session.epochs[0]
    indexes = (session.localIndex, session.remoteIndex) if client else (session.remoteIndex, session.localIndex)
    return (session.suite.suiteId,) + indexes + (
        session.handshakeTranscript, bytes(ep.keys.c2s), bytes(ep.keys.s2c), session.state)

class Handshake:
    """
    One deterministic handshake between fresh engines (fixed identities,
    cookie key and randomness, started at L{START}), optionally with the
    first packet of one kind replaced by a tampered copy, then run with
    every timer until C{handshakeTimeout} + 1 s.
    """

    def __init__(self, clientConfig, serverConfig, seals):
        self.seals = seals
        self.seals.clear()
        self.server = ServerEngine(SERVER_IDENTITY, serverConfig, authorizedKeys=[CLIENT_IDENTITY.publicKey],
                                   cookieSecret=COOKIE_MASTER, random=deterministicRandom(b"server"))
        self.net = Network(self.server, START)
        self.client = self.net.add(ClientEngine(SERVER_IDENTITY.publicKey, SERVER_ADDR, clientConfig,
                                                identity=CLIENT_IDENTITY, random=deterministicRandom(b"client")))
        self.captured = []

    def start(self, message=None):
        """
        Start the handshake; if C{message} is given, the first packet of
        that kind is taken off the wire (into L{captured}) and the exchange
        stalls there.
        """
        if message is not None:
            fromClient, first, _ = HANDSHAKE_FIELDS[message]
            src = CLIENT_ADDR if fromClient else SERVER_ADDR

            def take(data, s, dst):
                if not self.captured and s == src and data[0] == first:
                    self.captured.append((data, dst))
                    return True
                return False

            self.net.drop = take
        self.client.start(self.net.now)
        self.net.pump()
        self.net.drop = lambda data, src, dst: False

    def finish(self):
        self.net.advance(self.client.config.handshakeTimeout + 1)
        return self

class HandshakeTamperMixin:
    """
    Each single-bit flip of each handshake message, in a fresh handshake,
    is dropped (and the retransmission completes the genuine session), or
    fails the handshake, or leaves it unable to complete, exactly as
    docs/protocol.md says; a session that opens is always the genuine one,
    identical on both sides.
    """

    def setUp(self):
        self.seals = []
        suite = RecordingSuite(getSuite(self.suiteName), self.seals)
        self.clientConfig = Config(suites=(suite,))
        # the server accepts every registered suite: a flipped suite id
        # that names another one is a downgrade attempt
        self.serverConfig = Config(suites=tuple(
            suite if name == self.suiteName else RecordingSuite(getSuite(name), self.seals)
            for name in SUITE_NAMES))
        ref = Handshake(self.clientConfig, self.serverConfig, self.seals)
        ref.start()
        ref.finish()
        self.assertEqual([type(e) for w, e in ref.net.events], [SessionOpened, SessionOpened])
        self.assertNoNonceReuse(self.seals)
        self.packets = {}
        for src, dst, data in ref.net.sent:
            for message, (fromClient, first, _) in HANDSHAKE_FIELDS.items():
                if (src == CLIENT_ADDR) == fromClient and data[0] == first:
                    self.packets.setdefault(message, data)
        self.assertEqual({m: len(d) for m, d in self.packets.items()},
                         {"hello": 64, "cookie": 29, "init": 122, "resp": 122, "confirm": 131, "keepalive": 51})
        self.genuine = sessionParameters(ref.client.session, True)
        self.assertEqual(sessionParameters(serverSessionOf(ref.server, ref.client), False), self.genuine)
        self.clientIndex, self.serverIndex = self.genuine[1:3]

    def expectation(self, message, tampered, run):
        """
        Work out from docs/protocol.md what the tampered copy of C{message}
        leads to.

        @return: C{(fate, immediate, outcome, server drops, client drops)}:
            the L{expectedFate} of the tampered packet, the drops its
            receiver counts on taking it, the outcome (L{GENUINE} or the
            error class the client reports) and the drops each engine has
            counted at the end.
        """
        config = self.clientConfig
        genuine = self.packets[message]
        expires = START + config.handshakeTimeout
        resent = retransmissions(config, START, expires)  # every genuine packet is first sent at START
        receiver = run.server if HANDSHAKE_FIELDS[message][0] else run.client
        fate = expectedFate(receiver, tampered, CLIENT_ADDR if receiver is run.server else SERVER_ADDR, INJECT_AT)
        atReceiver = Counter() if fate in (PASSES, REPLY_COOKIE) else Counter({fate: 1})
        dropsAt = (lambda s, c: (s, c)) if receiver is run.server else (lambda s, c: (c, s))
        if fate not in (PASSES, REPLY_COOKIE):
            # dropped (section 15.1); the retransmission (section 14.1),
            # within the same second so with the same cookie, completes it
            other = Counter()
            if fate == "unknown-session" and receiver is run.server and resetSize(len(tampered)):
                # the server answers with a stateless reset (10.9), which the
                # client, holding no token that could match, drops
                other = Counter({"bad-reset": 1})
            return (fate, atReceiver, GENUINE) + dropsAt(atReceiver, other)
        if message == "hello":
            if tampered[1:9] != genuine[1:9]:
                # the COOKIE echoes the wrong nonce: the client drops it (6.2)
                return fate, Counter(), GENUINE, Counter(), Counter({"unexpected-cookie": 1})
            return fate, Counter(), GENUINE, Counter(), Counter()  # the padding is ignored (5.1)
        if message == "cookie":
            # the client copies timestamp and cookie into its INIT without
            # looking at them (6.2) and resends that INIT (14.1); the server
            # refuses each copy (6.3) until the client gives up
            timestamp, = struct.unpack_from(">I", tampered, 9)
            verdicts = [cookieVerdict(CLIENT_ADDR, timestamp, tampered[13:29], now, config.cookieRotation)
                        for now in [INJECT_AT] + retransmissions(config, INJECT_AT, expires)]
            self.assertNotIn(None, verdicts)
            return fate, Counter(), HandshakeTimeout, Counter(verdicts), Counter()
        if message == "init" and fate == REPLY_COOKIE:
            # a type flip made the padded INIT a HELLO (5.1: 64 bytes or more):
            # its COOKIE is not awaited (6.2); the resent INIT completes it
            return fate, Counter(), GENUINE, Counter(), Counter({"unexpected-cookie": 1})
        if message == "init":
            init = P.HandshakeInit.decode(tampered)
            for problem in ("no-common-suite", "bad-ephemeral"):
                if (problem == "no-common-suite"  # 7.2 step 7
                        and not any(s.suiteId in init.suites for s in self.serverConfig.suites)
                        or problem == "bad-ephemeral" and isLowOrder(init.ephemeral)):  # 7.2 step 8
                    # dropped, after the cookie check; the resent INIT completes it.
                    # No common suite is answered with a signed refusal (7.5) if no
                    # longer than the INIT; it signs the tampered INIT, so the
                    # client, checking it against its own, drops it
                    refused = (problem == "no-common-suite"
                               and 6 + len(self.serverConfig.suites) + 64 <= len(tampered))
                    return (fate, Counter({problem: 1}), GENUINE, Counter({problem: 1}),
                            Counter({"bad-refusal": 1} if refused else {}))
            if init.senderIndex != self.clientIndex:
                # the RESP names an index the client does not have (7.3
                # step 2); the client's INIT, resent, reuses the ephemeral
                # key of the pending session under another index (7.2 step
                # 3): no reply, until both sides time out (14.1)
                return (fate, Counter(), HandshakeTimeout,
                        Counter({"duplicate-ephemeral": len(resent), "handshake-expired": 1}),
                        Counter({"unexpected-resp": 1}))
            # the server signs a transcript over the INIT it received, which
            # is not the one the client sent (7.3 step 3)
            return fate, Counter(), BadServerSignature, Counter({"handshake-expired": 1}), Counter()
        if message == "resp":
            if tampered[:42] != genuine[:42] or tampered[58:] != genuine[58:]:
                # the transcript covers the first 42 bytes (8.1), which the
                # signature then signs (8.4, 7.3 step 3)
                return fate, Counter(), BadServerSignature, Counter({"handshake-expired": 1}), Counter()
            # only the key confirmation differs (8.3, 7.3 step 6)
            return fate, Counter(), HandshakeFailed, Counter({"handshake-expired": 1}), Counter()
        raise AssertionError(f"a tampered {message} cannot pass: {fate}")

    def assertTamperedHandshake(self, message, bit):
        """
        Run a handshake with bit C{bit} of the first C{message} flipped and
        check that it ends exactly as L{expectation} says.

        @return: a short label of the outcome, for the tallies.
        """
        run = Handshake(self.clientConfig, self.serverConfig, self.seals)
        run.start(message)
        [(data, dst)] = run.captured
        self.assertEqual(data, self.packets[message])
        tampered = flip(data, bit)
        run.net.now = INJECT_AT  # later than anything received: lastRecv would show
        fate, immediate, outcome, serverDrops, clientDrops = self.expectation(message, tampered, run)
        what = f"{self.suiteName}: {message} bit {bit}: expected {fate}, {getattr(outcome, '__name__', outcome)}"
        receiver = run.server if dst == SERVER_ADDR else run.client
        src = CLIENT_ADDR if dst == SERVER_ADDR else SERVER_ADDR
        before = stateOf(receiver)
        drops = Counter(receiver.drops)
        receiver.receiveDatagram(tampered, src, run.net.now)
        self.assertEqual(added(receiver, drops), immediate, what)
        if immediate:
            # a dropped packet changes nothing and is not answered; a refused
            # (cookie-proven) client is only reported, for the server's log
            reported = [e for e in receiver.events if not isinstance(e, ClientRefused)]
            # (the one exception, section 10.9: a smaller stateless reset for a session it does not know)
            outbox = [(d, a) for d, a in receiver.outbox
                      if not ("unknown-session" in immediate and isResetFor(d, tampered) and a == src)
                      and not ("no-common-suite" in immediate and d[0] == P.HANDSHAKE_REFUSED
                               and len(d) <= len(tampered) and a == src)]
            self.assertEqual((outbox, reported), ([], []), what)
            self.assertEqual([e.reason for e in receiver.events if isinstance(e, ClientRefused)],
                             [r for r in immediate if r in ("rate-limited", "too-many-pending", "server-full",
                                                            "no-common-suite")], what)
            receiver.events = []
            self.assertEqual(stateOf(receiver), before, what)
        run.net.pump()
        run.finish()
        server, client = run.server, run.client
        serverEvents = [e for w, e in run.net.events if w == "server"]
        clientEvents = [e for w, e in run.net.events if w == CLIENT_ADDR]
        self.assertEqual((Counter(server.drops), Counter(client.drops)), (serverDrops, clientDrops), what)
        if outcome == GENUINE:
            self.assertEqual([type(e) for e in serverEvents + clientEvents], [SessionOpened, SessionOpened], what)
            self.assertEqual(client.state, ESTABLISHED, what)
            self.assertEqual(sessionParameters(client.session, True), self.genuine, what)
            [session] = server.sessions.values()
            self.assertEqual(sessionParameters(session, False), self.genuine, what)
            self.assertEqual(session.peerKey, CLIENT_IDENTITY.publicKey, what)
            # named by what the tampered packet caused, not by the genuine side's
            # drop of the server's answer to it (a reset or a refusal)
            caused = list(immediate) or [r for r in serverDrops + clientDrops if r not in ("bad-reset", "bad-refusal")]
            label = "untouched" if not caused else "recovered:" + min(caused)
        else:
            self.assertEqual(serverEvents, [], what)
            [failure] = clientEvents
            self.assertIsInstance(failure, HandshakeFailure, what)
            self.assertIs(type(failure.error), outcome, what)
            self.assertEqual(client.state, FAILED, what)
            self.assertIsNone(client.session, what)
            self.assertEqual((server.sessions, server.byEphemeral, server.pendingCount, server.openCount),
                             ({}, {}, 0, 0), what)
            label = outcome.__name__
        self.assertNoNonceReuse(self.seals)
        return label

    def assertEveryBit(self, message, expected):
        """
        Flip every bit of C{message} in turn; C{expected} maps each field
        to the set of outcome labels its bits must produce (every label
        at least once).
        """
        _, _, fields = HANDSHAKE_FIELDS[message]
        self.assertEqual(fields[-1][2], len(self.packets[message]))
        tallies = {}
        for field, start, end in fields:
            tallies[field] = {self.assertTamperedHandshake(message, bit) for bit in range(start * 8, end * 8)}
        self.maxDiff = None
        self.assertEqual(tallies, expected)
        COUNTS["part 2: handshakes with one bit flipped", self.suiteName, message] += len(self.packets[message]) * 8

    def test_hello(self):
        """
        HELLO (64 bytes, 512 bits): a flip in the first byte is dropped by
        the server (C{unknown-type}; C{unexpected-type} as gossip6's G6_INIT
        on a sudp/1 server; C{bad-field} as an INIT with count 0;
        C{unknown-session} as a phase-1 DATA packet; C{wrong-version}); a
        flip in the nonce comes back in the COOKIE, which the client drops
        (C{unexpected-cookie}); both recover on the client's retransmission
        to the genuine session. A flip in the padding is ignored: the
        genuine session opens with no drop at all.
        """
        self.assertEveryBit("hello", {
            "type": {"recovered:unknown-type", "recovered:unexpected-type", "recovered:bad-field",
                     "recovered:unknown-session", "recovered:wrong-version"},
            "nonce": {"recovered:unexpected-cookie"},
            "padding": {"untouched"},
        })

    def test_cookie(self):
        """
        COOKIE (29 bytes, 232 bits): a flip in the first byte or the nonce
        is dropped by the client and its HELLO, resent, gets the genuine
        session. A flip in the timestamp or the cookie, which the client
        copies without checking, makes every INIT it sends be refused
        (C{expired-cookie} for a timestamp in the future or too old,
        C{bad-cookie} otherwise, as section 6.3 computes it) until the
        handshake times out: the tampered value never completes a handshake.
        """
        self.assertEveryBit("cookie", {
            "type": {"recovered:unexpected-type", "recovered:unknown-type", "recovered:no-session",
                     "recovered:wrong-version"},
            "nonce": {"recovered:unexpected-cookie"},
            "timestamp": {"HandshakeTimeout"},
            "cookie": {"HandshakeTimeout"},
        })

    def test_init(self):
        """
        HANDSHAKE_INIT (122 bytes with its zero padding, 976 bits): flips
        in the type, timestamp, cookie, padding and count are dropped by the
        server (C{unexpected-type}, one flip making it a HANDSHAKE_REFUSED,
        which only servers send; C{unknown-session}, C{wrong-version};
        C{expired-cookie}/C{bad-cookie}; C{bad-padding};
        C{bad-field}), or, as a HELLO, answered with a COOKIE the client
        drops (C{unexpected-cookie}), and the client's retransmission opens
        the genuine session; a count that still fits the padding is a
        transcript the client does not have (C{BadServerSignature}). A flip in the ephemeral key passes the cookie (which does
        not cover it) but the server's signature is over a transcript the
        client does not have: C{BadServerSignature}. A flipped offered
        suite id is C{no-common-suite}, or, if it names another suite the
        server accepts, a downgrade caught by the signature. A flipped
        sender index sends the RESP to an index the client does not have;
        the client's resent INIT then reuses the pending session's
        ephemeral key and is dropped (C{duplicate-ephemeral}) until the
        handshake times out.
        """
        downgrade = {"BadServerSignature" if id ^ (1 << b) in [s.suiteId for s in self.serverConfig.suites]
                     else "recovered:no-common-suite"
                     for id in [getSuite(self.suiteName).suiteId] for b in range(8)}
        self.assertEveryBit("init", {
            "type": {"recovered:unexpected-type", "recovered:unexpected-cookie",
                     "recovered:unknown-session", "recovered:wrong-version"},
            "sender index": {"HandshakeTimeout"},
            "timestamp": {"recovered:expired-cookie", "recovered:bad-cookie"},
            "cookie": {"recovered:bad-cookie"},
            "ephemeral": {"BadServerSignature"},
            "count": {"recovered:bad-field", "BadServerSignature"},
            "suites": downgrade,
            "padding": {"recovered:bad-padding"},
        })

    def test_resp(self):
        """
        HANDSHAKE_RESP (122 bytes, 976 bits): a flip in the type (one turns
        it into gossip6's G6_RESP: C{unexpected-type}; one into a
        STATELESS_RESET, too long to carry the token: C{bad-reset}) or the
        receiver index is dropped by the client, whose resent INIT gets the
        same RESP again and the genuine session. A flip in the sender
        index, suite, ephemeral key (all in the transcript) or signature
        fails the handshake with C{BadServerSignature}; a flip in the key
        confirmation, which the signature does not cover, fails it with
        C{HandshakeFailed} (confirmation mismatch). The server's pending
        session then expires.
        """
        self.assertEveryBit("resp", {
            "type": {"recovered:unknown-type", "recovered:unexpected-type", "recovered:wrong-version",
                     "recovered:bad-reset"},
            "receiver index": {"recovered:unexpected-resp"},
            "sender index": {"BadServerSignature"},
            "suite": {"BadServerSignature"},
            "ephemeral": {"BadServerSignature"},
            "confirmation": {"HandshakeFailed"},
            "signature": {"BadServerSignature"},
        })

    def test_confirm(self):
        """
        The client's CONFIRM (a 131-byte CONTROL packet holding CLIENT_AUTH
        and CONFIRM, 1048 bits): every flip is dropped by the pending
        server session (C{no-key}, C{bad-tag}, C{unknown-type},
        C{unexpected-type}, C{wrong-version}, C{unknown-session}) without
        opening it, and the client's retransmission (resealed under the next
        sequence number) opens the genuine session.
        """
        self.assertEveryBit("confirm", {
            "type": {"recovered:no-key", "recovered:bad-tag", "recovered:unknown-type",
                     "recovered:unexpected-type", "recovered:wrong-version"},
            "receiver index": {"recovered:unknown-session"},
            "sequence": {"recovered:bad-tag"},
            "sealed": {"recovered:bad-tag"},
        })

    def test_keepalive(self):
        """
        The server's KEEPALIVE answer to the CONFIRM, with its RESET_TOKEN (51 bytes, 408 bits),
        which opens the client's session: every flip is dropped by the
        confirming client (C{no-key}, C{bad-tag}, C{unknown-type},
        C{oversized} as a COOKIE, C{wrong-version}, C{unknown-session})
        without opening it; the client resends its CONFIRM, the server
        answers again and the genuine session opens.
        """
        self.assertEveryBit("keepalive", {
            "type": {"recovered:no-key", "recovered:bad-tag", "recovered:unknown-type",
                     "recovered:oversized", "recovered:wrong-version"},
            "receiver index": {"recovered:unknown-session"},
            "sequence": {"recovered:bad-tag"},
            "sealed": {"recovered:bad-tag"},
        })

_forEverySuite(globals(), HandshakeTamperMixin)

class HandshakeTests(unittest.TestCase):
    def test_opensBothSides(self):
        """
        A handshake opens the session on both sides in three round trips;
        both sides agree on the suite and the client holds the server's key.
        """
        link, server, client = connectLink(self)
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
        link, server, client = connectLink(self, serverKey=other)
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
        link, server, client = connectLink(self, clientIdentity=me, authorizedKeys=[me.publicKey])
        self.assertEqual(len(link.take(CLIENT_ADDR, SessionOpened)), 1)
        self.assertEqual(serverSession(server).peerKey, me.publicKey)

    def test_notAuthorized(self):
        """
        A client key the server does not list fails the client with
        ClientNotAuthorized and opens nothing on the server.
        """
        me = Identity.generate()
        link, server, client = connectLink(self, clientIdentity=me, authorizedKeys=[Identity.generate().publicKey])
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
        link, server, client = connectLink(self, authorizedKeys=[Identity.generate().publicKey])
        [failure] = link.take(CLIENT_ADDR, HandshakeFailure)
        self.assertIsInstance(failure.error, ClientNotAuthorized)
        self.assertIn("required", str(failure.error))

    def test_optionalIdentity(self):
        """
        A server without authorized keys still verifies and exposes a client
        identity that is offered.
        """
        me = Identity.generate()
        link, server, client = connectLink(self, clientIdentity=me)
        self.assertEqual(serverSession(server).peerKey, me.publicKey)
