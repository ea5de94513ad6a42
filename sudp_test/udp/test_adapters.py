# -*- test-case-name: sudp_test.udp.test_adapters -*-
"""
Tests for L{sudp.udp.adapters}.

Tests for L{sudp.udp.adapters}: the server adapter logs each refused client
and each session opened and ended, rate-limited, over real sockets on
127.0.0.1.

Issue 14, point 2, reproduced as an attacker would run it, over real
sockets: pending handshake exhaustion from many cookie-proven IPv4
addresses and from one IPv6 /64, and the bytes an unvalidated address gets
back (RESP resends, COOKIEs) against the bytes it sent.
"""

import hashlib
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
from collections import Counter

from twisted.internet import defer, protocol, reactor, task, utils
from twisted.internet.endpoints import clientFromString
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from sudp import speedups
from sudp.errors import ClientNotAuthorized, HandshakeTimeout, MessageTooLarge
from sudp.keys import Identity
from sudp.tap import Echo
from sudp.udp import packets as P
from sudp.udp.config import Config
from sudp.udp.endpoints import SUDPClientEndpoint, SUDPServerEndpoint
from sudp.udp.events import ClientRefused
from sudp.udp.transport import SessionLost

from sudp_test.attackers import connectOneByOne, CountingSocket, HandClient, InitFlood, listenServer
from sudp_test.enginehelpers import makeInit
from sudp_test.integration import (
    BystanderMixin,
    EchoRecorder,
    FAST,
    RecorderFactory,
    SUDPIntegrationMixin,
)
from sudp_test.lossyrelay import CLEAN, CLIENT_TO_SERVER, DIRECTIONS, Impairment, LossyRelay
from sudp_test.serverprocess import ROOT, startTwistSudp
from sudp_test.udp.helpers import SEED, log, waitUntilLossy
from sudp_test.waiting import sleep, waitUntil

class _Quiet(protocol.Protocol):
    pass

class ConnectionLogTests(unittest.TestCase):
    timeout = 20

    def setUp(self):
        self.logged = []

        def observe(event):
            if "sudp_event" in event:
                self.logged.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        self.identity = Identity.generate()

    @defer.inlineCallbacks
    def listen(self, authorizedKeys=None):
        endpoint = SUDPServerEndpoint(reactor, 0, self.identity, Config(), interface="127.0.0.1",
                                      authorizedKeys=authorizedKeys)
        port = yield endpoint.listen(protocol.Factory.forProtocol(Echo))
        self.addCleanup(port.stopListening)
        return port

    def client(self, port, identity=None):
        return SUDPClientEndpoint(reactor, "127.0.0.1", port.getHost().port, self.identity.publicKey,
                                  Config(), identity=identity)

    def events(self, kind):
        return [e for e in self.logged if e["sudp_event"] == kind]

    @defer.inlineCallbacks
    def test_openedEndedRefused(self):
        """
        A session opened and ended is logged with the client's address, key
        fingerprint, suite and the reason it ended; a client whose key is
        not authorized is logged as refused, with why.
        """
        allowed, stranger = Identity.generate(), Identity.generate()
        port = yield self.listen(authorizedKeys=[allowed.publicKey])
        client = yield self.client(port, allowed).connect(protocol.Factory.forProtocol(_Quiet))
        local = client.transport._adapter.transport.getHost()
        yield waitUntil(lambda: self.events("opened"), "the opened event")
        [opened] = self.events("opened")
        self.assertEqual(opened["address"], f"127.0.0.1:{local.port}")
        self.assertEqual(opened["fingerprint"], allowed.publicKey.fingerprint())
        self.assertEqual(opened["suite"], Config().suites[0].name)  # the default, by the CPU
        self.assertEqual(opened["transport"], "udp")
        client.transport.loseConnection()
        yield waitUntil(lambda: self.events("ended"), "the ended event")
        [ended] = self.events("ended")
        self.assertEqual(ended["reason"], "closed-by-peer")
        self.assertEqual(ended["fingerprint"], allowed.publicKey.fingerprint())
        d = self.client(port, stranger).connect(protocol.Factory.forProtocol(_Quiet))
        yield self.assertFailure(d, ClientNotAuthorized)
        [refused] = self.events("refused")
        self.assertIn("not-authorized", refused["reason"])
        self.assertIn(stranger.publicKey.fingerprint(), refused["reason"])

    @defer.inlineCallbacks
    def test_floodDoesNotFillTheLog(self):
        """
        Thousands of refusals in a moment log at most the log's burst; the
        rest are counted.
        """
        port = yield self.listen()
        adapter = port.adapter
        # A frozen clock: under a loaded CI machine the real one refilled
        # the bucket by a token during the loop (51 != 50).
        adapter.connectionLog.clock = task.Clock()
        for i in range(5000):
            adapter.engine.events.append(ClientRefused(("10.0.0.1", i), "rate-limited"))
        adapter.flush()
        refused = self.events("refused")
        self.assertEqual(len(refused), int(adapter.connectionLog.burst))
        self.assertEqual(adapter.connectionLog.suppressed, 5000 - len(refused))

class _NoTimers:
    """
    A reactor stand-in for a client that has died: time goes on, timers are
    never run.
    """

    def seconds(self):
        return reactor.seconds()

    def callLater(self, delay, f, *args):
        return _NeverCall()

class _NeverCall:
    def active(self):
        return False

    def cancel(self):
        pass

class UDPLimitTests(BystanderMixin, SUDPIntegrationMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def test_maxSessions(self):
        """
        maxSessions=3: the fourth client's handshake is dropped as
        server-full and its connect fails with HandshakeTimeout; when a
        session ends, a new client gets in. The others are served
        throughout.
        """
        yield self.listen(options=FAST + ":maxSessions=3")
        yield self.bystander()
        others = []
        for _ in range(2):
            others.append((yield self.connect(FAST)))
        yield self.assertFailure(self.endpoint(FAST).connect(RecorderFactory()), HandshakeTimeout)
        drops = self.port.engine.stats()["drops"]
        self.assertGreaterEqual(drops.get("server-full", 0), 1)
        yield self.ping()
        others[0].transport.loseConnection()
        yield others[0].lost
        late = yield self.connect(FAST)
        late.transport.write(b"in")
        self.assertEqual((yield late.waitFor(1)), [b"in"])
        yield self.ping()
        self.assertEqual(self.port.engine.stats()["sessions"], 3)

    @defer.inlineCallbacks
    def test_maxPendingHandshakes(self):
        """
        maxPendingHandshakes=2: two handshakes left unconfirmed (INITs with
        valid cookies, never confirmed) fill the table; a real client's
        INIT is dropped as too-many-pending and its connect times out; after
        handshakeTimeout the two expire (handshake-expired) and a client
        connects. The bystander is served throughout.
        """
        yield self.listen(options=FAST + ":maxPendingHandshakes=2")
        yield self.bystander()
        engine = self.port.engine
        held = []
        for i in range(2):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            self.addCleanup(s.close)
            host, port = s.getsockname()
            timestamp, cookie = engine.cookies.make(host, port, reactor.seconds())
            s.sendto(makeInit(timestamp, cookie, senderIndex=100 + i), ("127.0.0.1", self.port.getHost().port))
            held.append(s)
        yield sleep(0.1)
        self.assertEqual(engine.stats()["pending"], 2)
        yield self.assertFailure(self.endpoint(FAST).connect(RecorderFactory()), HandshakeTimeout)
        self.assertGreaterEqual(engine.stats()["drops"].get("too-many-pending", 0), 1)
        yield self.ping()
        for _ in range(30):
            if engine.stats()["pending"] == 0:
                break
            yield sleep(0.1)
        self.assertEqual(engine.stats()["pending"], 0)
        self.assertEqual(engine.stats()["drops"]["handshake-expired"], 2)
        client = yield self.connect(FAST)
        client.transport.write(b"now")
        self.assertEqual((yield client.waitFor(1)), [b"now"])
        yield self.ping()

    @defer.inlineCallbacks
    def test_messageTooLarge(self):
        """
        A message over maxMessageSize raises MessageTooLarge (with the size
        and the limit) before anything is sent, from write and from
        writeMessages; the session goes on, and a message of exactly the
        limit is delivered.
        """
        yield self.listen(options=":maxDatagramSize=1000")
        yield self.bystander(":maxDatagramSize=1000")
        limit = self.by.transport.maxMessageSize
        self.assertEqual(limit, 1000 - 29)
        e = self.assertRaises(MessageTooLarge, self.by.transport.write, b"x" * (limit + 1))
        self.assertEqual((e.size, e.limit), (limit + 1, limit))
        self.assertRaises(MessageTooLarge, self.by.transport.writeMessages, [b"a", b"x" * (limit + 1)])
        exact = os.urandom(limit)
        self.by.transport.write(exact)
        got = yield self.by.waitFor(self.pings + 1)
        self.assertEqual(got[-1], exact)
        self.pings += 1
        yield self.ping()
        self.assertEqual(self.by.transport._session.stats["sent"], self.pings)

    @defer.inlineCallbacks
    def test_idleTimeout(self):
        """
        A client that goes silent without a CLOSE (its socket gone) has its
        server session ended after idleTimeout, with the reason
        idle-timeout; a client that keeps talking (keepalives faster than
        the timeout) is kept.
        """
        factory = RecorderFactory(EchoRecorder)
        yield self.listen(factory, options=":idleTimeout=1:keepaliveInterval=0.3")
        yield self.bystander(":idleTimeout=1:keepaliveInterval=0.3")
        dead = yield self.endpoint(":idleTimeout=30:keepaliveInterval=20").connect(RecorderFactory())
        serverSide = factory.protocols[-1]
        # the client dies: its timers stop and its socket closes, no CLOSE sent
        adapter = dead.transport._adapter
        adapter._onEnd = None
        yield adapter.transport.stopListening()
        adapter._stopTimer()
        adapter.reactor = _NoTimers()  # a dead process schedules nothing more
        reason = yield serverSide.lost
        self.assertIsInstance(reason, SessionLost)
        self.assertEqual(reason.reason, "idle-timeout")
        yield self.ping()
        yield sleep(1.2)  # past the idle timeout: the bystander's keepalives kept it
        yield self.ping()
        self.assertEqual(self.port.engine.stats()["sessions"], 1)

    @defer.inlineCallbacks
    def test_handshakeTimeout(self):
        """
        A client whose server never answers fails with HandshakeTimeout
        after handshakeTimeout, having retransmitted with backoff.
        """
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        self.addCleanup(s.close)
        key = self.identity.publicKey.toText()
        endpoint = clientFromString(
            reactor, f"sudp:host=127.0.0.1:port={s.getsockname()[1]}:serverKey={key}{FAST}")
        start = reactor.seconds()
        yield self.assertFailure(endpoint.connect(RecorderFactory()), HandshakeTimeout)
        self.assertGreaterEqual(reactor.seconds() - start, 1.0)
        s.setblocking(False)
        hellos = 0
        while True:
            try:
                s.recv(2048)
                hellos += 1
            except BlockingIOError:
                break
        self.assertGreaterEqual(hellos, 3)  # 0, 0.2, 0.6 s at least

IMPAIRED = Impairment(drop=0.10, reorder=0.10, duplicate=0.05, delay=0.05)
"""The link of these tests, both directions: 10 % loss, 10 % reordering, 5 %
duplication, and 5 % random delays (1 to 30 ms) on top."""

TIMERS = ":retransmitInitial=0.1:retransmitMax=0.4:rekeyRetransmit=0.2:keepaliveInterval=0.5:idleTimeout=10"
"""Short protocol timers, so that every test is over in seconds."""

HELLO, INIT, CONTROL = 0x11, 0x13, 0x1A  # first bytes of sudp/1 packets (protocol.md section 4)

_HEAD = struct.Struct("!cQ")

_CHECK = 16

def makeMessage(kind, ident, rng):
    """
    @return: a message of C{kind} (one byte) with the unique id C{ident}, a
        random body (0 to 300 bytes from C{rng}) and a checksum of all that.
    """
    head = _HEAD.pack(kind, ident)
    body = rng.randbytes(rng.randint(0, 300))
    return head + body + hashlib.sha256(head + body).digest()[:_CHECK]

def parseMessage(message):
    """
    @return: C{(kind, ident)} if C{message} is well formed and its checksum
        matches, else None.
    """
    if len(message) < _HEAD.size + _CHECK:
        return None
    content, check = message[:-_CHECK], message[-_CHECK:]
    if hashlib.sha256(content).digest()[:_CHECK] != check:
        return None
    return _HEAD.unpack_from(content)

class Checker(protocol.Protocol):
    """
    Records every message with its parsed id; echoes it if C{echo} is set;
    records C{connectionLost}.

    @ivar messages: every message received, in order.
    @ivar ids: a L{Counter} of C{(kind, ident)} of the well-formed messages.
    @ivar corrupt: messages whose checksum did not match.
    @ivar lostReason: the C{reason.value} of C{connectionLost}, or None.
    """

    echo = False

    def __init__(self):
        self.messages = []
        self.ids = Counter()
        self.order = []
        self.corrupt = []
        self.lostReason = None
        self.lost = defer.Deferred()

    def dataReceived(self, data):
        """
        Record (and maybe echo) one message.
        """
        self.messages.append(data)
        parsed = parseMessage(data)
        if parsed is None:
            self.corrupt.append(data)
        else:
            self.ids[parsed] += 1
            self.order.append(parsed[1])
        if self.echo:
            self.transport.write(data)

    def connectionLost(self, reason):
        """
        Record that the session ended, and why.
        """
        self.lostReason = reason.value
        self.lost.callback(reason.value)

class Echoer(Checker):
    """
    A L{Checker} that sends every message back.
    """

    echo = True

class CheckerFactory(protocol.Factory):
    """
    Builds one protocol of C{cls} per session; C{built} fires with the first.
    """

    def __init__(self, cls=Checker):
        self.cls = cls
        self.protocols = []
        self.built = defer.Deferred()

    def buildProtocol(self, addr):
        """
        @return: a new protocol of C{cls}.
        """
        p = self.cls()
        p.factory = self
        self.protocols.append(p)
        if not self.built.called:
            self.built.callback(p)
        return p

@defer.inlineCallbacks
def settle(relay, *checkers, quiet=0.3, timeout=15.0):
    """
    Wait until no checker has received a message for C{quiet} seconds more
    than the longest the relay may hold a datagram back: everything in
    flight has then arrived or is lost. (Keepalives and rekeys go on; they
    are not messages.)
    """
    quiet += relay.longestDelay
    deadline = reactor.seconds() + timeout
    seen = None
    stableSince = reactor.seconds()
    while True:
        now = reactor.seconds()
        counts = tuple(len(c.messages) for c in checkers)
        if counts != seen:
            seen, stableSince = counts, now
        elif now - stableSince >= quiet:
            return
        if now >= deadline:
            raise AssertionError(f"messages still arriving after {timeout} s")
        yield sleep(0.02)

@defer.inlineCallbacks
def sendPaced(transport, messages, batch=20, pause=0.005):
    """
    Write C{messages}, C{batch} at a time with a short pause between batches,
    so that no socket buffer on the way overflows (the relay decides the loss).
    """
    for i in range(0, len(messages), batch):
        for m in messages[i:i + batch]:
            transport.write(m)
        yield sleep(pause)

class LossyTestMixin(SUDPIntegrationMixin):
    """
    A real sudp server on 127.0.0.1 (L{listen}) and clients that reach it
    through a L{LossyRelay} each (L{relayTo}, L{connectVia}).
    """

    timeout = 60

    def relayTo(self, seed, impairment=IMPAIRED, **kwargs):
        """
        @return: a listening L{LossyRelay} to the server, stopped at cleanup.
        """
        relay = LossyRelay(reactor, ("127.0.0.1", self.port.getHost().port), seed, impairment, **kwargs)
        relay.listen()
        self.addCleanup(relay.stop)
        return relay

    def connectVia(self, relay, options=TIMERS, factory=None):
        """
        Connect a sudp client to the relay's port; it is closed at cleanup.

        @return: a L{Deferred} firing with the client's protocol.
        """
        host, port = relay.address
        endpoint = clientFromString(
            reactor,
            f"sudp:host={host}:port={port}:serverKey={self.identity.publicKey.toText()}{options}",
        )
        d = endpoint.connect(factory or CheckerFactory())
        d.addCallback(self._closeLater)
        return d

    def _closeLater(self, client):
        @defer.inlineCallbacks
        def close():
            if client.transport.connected:
                client.transport.loseConnection()
            yield client.lost
            yield sleep(0.01)  # the client's UDP port closes one reactor turn later

        self.addCleanup(close)
        return client

    @defer.inlineCallbacks
    def echoSessionVia(self, seed, options=TIMERS):
        """
        An echoing server and a client with C{options}, connected through
        an impaired relay seeded with C{seed}.

        @return: C{(client, server, relay)}, the two checker protocols and
            the relay.
        """
        sfactory = CheckerFactory(Echoer)
        yield self.listen(sfactory, options)
        relay = self.relayTo(seed)
        client = yield self.connectVia(relay, options)
        server = yield sfactory.built
        return client, server, relay

    @defer.inlineCallbacks
    def echoThrough(self, relay, client, server, seed, count):
        """
        Send C{count} checked messages (seeded by C{seed}) from the client
        through C{relay} to the server, which echoes them, and wait until
        the link settles; both sides' deliveries pass L{assertDelivered}.

        @return: C{(sent, atServer, atClient)}: the messages by number, and
            the numbers each side received.
        """
        rng = random.Random(seed)
        sent = {i: makeMessage(b"C", i, rng) for i in range(count)}
        yield sendPaced(client.transport, list(sent.values()))
        yield settle(relay, server, client)
        atServer = self.assertDelivered(server, sent, b"C")
        atClient = self.assertDelivered(client, {i: sent[i] for i in atServer}, b"C")
        return sent, atServer, atClient

    def assertDelivered(self, checker, sent, kind):
        """
        The contract of the transport for the messages C{checker} received:
        none corrupted, none delivered twice, each one of C{sent} (a dict
        ident -> message of C{kind}), byte for byte.

        @return: the set of idents delivered.
        """
        self.assertEqual(checker.corrupt, [], "corrupted messages delivered")
        twice = {k: n for k, n in checker.ids.items() if n > 1}
        self.assertEqual(twice, {}, "messages delivered more than once")
        kinds = {k for k, _ in checker.ids}
        self.assertLessEqual(kinds, {kind})
        idents = {i for _, i in checker.ids}
        self.assertLessEqual(idents, set(sent), "messages delivered that were never sent")
        for m in checker.messages:
            self.assertEqual(m, sent[parseMessage(m)[1]])
        # the engine counted exactly the deliveries the application saw
        self.assertEqual(checker.transport.stats["received"], len(checker.messages))
        return idents

    def assertAlive(self, *checkers):
        """
        No session has ended: no connectionLost on either side.
        """
        for c in checkers:
            self.assertIsNone(c.lostReason, f"a session ended during the test: {c.lostReason!r}")

    def assertImpaired(self, relay):
        """
        The relay did drop, duplicate and reorder datagrams in both
        directions: the test ran on a lossy link.
        """
        for d in DIRECTIONS:
            counts = relay.counters[d]
            for what in ("dropped", "duplicated", "reordered"):
                self.assertGreater(counts[what], 0, f"{d}: nothing {what}: {relay.summary()}")

class LossyHandshakeTests(LossyTestMixin, unittest.TestCase):
    """
    The handshake completes over a lossy link, by retransmission.
    """

    @defer.inlineCallbacks
    def connectMany(self, seeds, impairment):
        """
        Connect one client per seed, each through its own relay, at once.

        @return: a list of C{(relay, client, datagrams the client had sent,
            by first byte, as the relay counted them when the session opened)}.
        """
        factory = CheckerFactory()
        # every relay sends from 127.0.0.1, as many clients behind one NAT:
        # allow them all their first INIT at once
        yield self.listen(factory, TIMERS + ":handshakeBurst=100")
        relays = [self.relayTo(seed, impairment) for seed in seeds]

        def opened(client, relay):
            return relay, client, Counter(relay.types[CLIENT_TO_SERVER])

        attempts = [
            self.connectVia(relay, TIMERS + ":timeout=10").addCallback(opened, relay)
            for relay in relays
        ]
        results = yield defer.DeferredList(attempts, consumeErrors=True)
        failed = [(seed, r.getErrorMessage()) for seed, (ok, r) in zip(seeds, results) if not ok]
        self.assertEqual(failed, [], "handshakes failed")
        out = [r for _, r in results]
        stats = self.port.engine.stats()
        self.assertEqual(stats["sessions-opened"], len(seeds))
        self.assertEqual(stats["sessions"], len(seeds))
        self.assertEqual(len(factory.protocols), len(seeds))
        return out, stats

    def retransmissions(self, sent):
        """
        @return: how many handshake packets the client sent more than once:
            HELLOs, INITs and CONFIRMs (CONTROL packets before the session
            opened) beyond the first of each.
        """
        return sum(max(0, sent[t] - 1) for t in (HELLO, INIT, CONTROL))

    @defer.inlineCallbacks
    def test_handshakeCompletesByRetransmission(self):
        """
        Sixteen clients, each through its own relay with another seed (10 %
        loss, 10 % reordering, 5 % duplication, 5 % delays, both ways), all
        complete the handshake; the relays dropped handshake packets, so the
        clients had to retransmit, and the server resent RESPs for repeated
        INITs.
        """
        seeds = list(range(SEED, SEED + 16))
        out, stats = yield self.connectMany(seeds, IMPAIRED)
        retrans = [self.retransmissions(sent) for _, _, sent in out]
        dropped = sum(r.counters[d]["dropped"] for r, _, _ in out for d in DIRECTIONS)
        log.info(
            "lossy handshake x{n}: retransmissions per handshake {retrans} (total {total}); "
            "datagrams dropped {dropped}; server {stats}",
            n=len(seeds), retrans=retrans, total=sum(retrans), dropped=dropped, stats=stats,
        )
        self.assertGreater(dropped, 0)
        self.assertGreater(sum(retrans), 0, "no handshake needed a retransmission: the link was not lossy")
        self.assertAlive(*(client for _, client, _ in out))

    @defer.inlineCallbacks
    def test_handshakeHeavyLoss(self):
        """
        At 30 % loss each way (plus the reordering, duplication and delays),
        where a HELLO-to-CONFIRM exchange gets through clean less than one
        time in eight, eight clients with other seeds still all connect.
        """
        heavy = Impairment(drop=0.30, reorder=0.10, duplicate=0.05, delay=0.05)
        seeds = list(range(SEED + 100, SEED + 108))
        out, stats = yield self.connectMany(seeds, heavy)
        retrans = [self.retransmissions(sent) for _, _, sent in out]
        log.info("heavy-loss handshake x{n}: retransmissions {retrans}; server {stats}",
                 n=len(seeds), retrans=retrans, stats=stats)
        self.assertGreater(sum(retrans), len(seeds) // 2)

class LossyMessageTests(LossyTestMixin, unittest.TestCase):
    """
    Application messages over the lossy link: lost perhaps, never doubled,
    altered or invented.
    """

    @defer.inlineCallbacks
    def test_noDuplicateNoCorruption(self):
        """
        The client sends 2000 messages with unique ids and checksums; the
        server echoes each one it gets. In both directions no message is
        delivered twice (though the relay duplicated datagrams), none is
        corrupted, every one delivered was sent; some arrive out of order
        (accepted by the replay window) and some are lost. The session stays
        up throughout.
        """
        client, server, relay = yield self.echoSessionVia(SEED, TIMERS)
        sent, atServer, atClient = yield self.echoThrough(relay, client, server, SEED, 2000)
        self.assertAlive(client, server)
        self.assertImpaired(relay)
        # some loss (the link drops 10 %), yet most messages get through
        self.assertLess(len(atServer), len(sent))
        self.assertGreater(len(atServer), len(sent) // 2)
        self.assertGreater(len(atClient), len(atServer) // 2)
        # datagrams arrived out of order and were still accepted
        self.assertNotEqual(server.order, sorted(server.order))
        serverDrops = self.port.engine.stats()["drops"]
        clientDrops = dict(client.transport._adapter.engine.drops)
        self.assertGreater(serverDrops.get("replay", 0), 0, "the relay's duplicates never reached the server")
        log.info(
            "lossy messages: sent 2000, delivered to server {s}, echoed back to client {c}; "
            "server drops {sd}; client drops {cd}; client stats {cs}; server stats {ss}; relay {r}",
            s=len(atServer), c=len(atClient), sd=serverDrops, cd=clientDrops,
            cs=client.transport.stats, ss=server.transport.stats, r=relay.summary(),
        )

class LossyRekeyTests(LossyTestMixin, unittest.TestCase):
    """
    Rekeys complete over the lossy link, and messages keep flowing across
    them without duplicates.
    """

    @defer.inlineCallbacks
    def flowUntilRekeys(self, options, count, minimum):
        """
        Connect through an impaired relay with C{options} on both sides and
        send checked messages (echoed by the server) until both sides have
        completed C{minimum} rekeys or C{count} messages are sent; then send
        200 more and check they get through after the rekeys.

        @return: C{(client, server, relay, sent)}.
        """
        client, server, relay = yield self.echoSessionVia(SEED + 1, options)
        rng = random.Random(SEED + 1)
        sent = {}

        def rekeys():
            return client.transport.stats["rekeys"], server.transport.stats["rekeys"]

        deadline = reactor.seconds() + 20
        i = 0
        while min(rekeys()) < minimum and i < count:
            if reactor.seconds() > deadline:
                self.fail(f"only {rekeys()} rekeys (client, server) within 20 s")
            batch = {j: makeMessage(b"C", j, rng) for j in range(i, i + 20)}
            sent.update(batch)
            yield sendPaced(client.transport, list(batch.values()), pause=0.02)
            i += 20
        yield waitUntilLossy(lambda: min(rekeys()) >= minimum, f"{minimum} rekeys on both sides")
        before = rekeys()
        after = {j: makeMessage(b"C", j, rng) for j in range(10**6, 10**6 + 200)}
        sent.update(after)
        yield sendPaced(client.transport, list(after.values()))
        yield settle(relay, server, client)

        atServer = self.assertDelivered(server, sent, b"C")
        atClient = self.assertDelivered(client, {i: sent[i] for i in atServer}, b"C")
        self.assertAlive(client, server)
        self.assertImpaired(relay)
        # messages still flow, both ways, after the rekeys
        self.assertGreater(len(atServer & set(after)), len(after) // 2)
        self.assertGreater(len(atClient & set(after)), len(after) // 4)
        log.info(
            "rekey {options}: rekeys (client, server) {before} then {now}; client stats {cs}; "
            "server stats {ss}; sent {n}, at server {s}, back at client {c}; server drops {sd}; "
            "client drops {cd}; relay {r}",
            options=options, before=before, now=rekeys(), cs=client.transport.stats,
            ss=server.transport.stats, n=len(sent), s=len(atServer), c=len(atClient),
            sd=self.port.engine.stats()["drops"], cd=dict(client.transport._adapter.engine.drops),
            r=relay.summary(),
        )
        return client, server, relay, sent

    @defer.inlineCallbacks
    def test_rekeyByTime(self):
        """
        With rekeyAfterTime=1 (and old keys kept 0.5 s), the client rekeys
        every second while messages flow; at least four rekeys complete on
        both sides despite lost REKEY_REQUESTs and REKEY_RESPONSEs, no
        message is delivered twice or altered across them, and messages sent
        after them arrive.
        """
        options = TIMERS + ":rekeyAfterTime=1:oldKeyGrace=0.5"
        client, server, _, _ = yield self.flowUntilRekeys(options, count=10**6, minimum=4)
        for side in (client, server):
            self.assertGreaterEqual(side.transport.stats["rekeys"], 4)

    @defer.inlineCallbacks
    def test_rekeyByMessages(self):
        """
        With rekeyAfterMessages=64 on both sides (the server asks for a rekey
        after 64 echoes), messages flow until ten rekeys have completed on
        both sides (some 1500 messages here, as lost rekey packets wait for
        their retransmission); no duplicate or corrupt delivery across them,
        and messages keep flowing after the last.
        """
        options = TIMERS + ":rekeyAfterMessages=64"
        client, server, _, _ = yield self.flowUntilRekeys(options, count=6000, minimum=10)
        for side in (client, server):
            self.assertGreaterEqual(side.transport.stats["rekeys"], 10)

class LossySurvivalTests(LossyTestMixin, unittest.TestCase):
    """
    The session lives as long as the test wants it, over the lossy link.
    """

    @defer.inlineCallbacks
    def test_idleSessionSurvives(self):
        """
        With idleTimeout=1.5 s and keepaliveInterval=0.2 s, an idle session
        over the lossy link lives on for 4 s on keepalives alone, through
        the rekeys of rekeyAfterTime=1: no connectionLost on either side.
        Then messages still go both ways, and once the link is healed the
        client's close reaches the server as closed-by-peer: the session
        ends only when the test ends it.
        """
        options = (":retransmitInitial=0.1:retransmitMax=0.4:rekeyRetransmit=0.2"
                   ":keepaliveInterval=0.2:idleTimeout=1.5:rekeyAfterTime=1:oldKeyGrace=0.5")
        client, server, relay = yield self.echoSessionVia(SEED + 2, options)
        yield sleep(4.0)
        self.assertAlive(client, server)
        rekeys = (client.transport.stats["rekeys"], server.transport.stats["rekeys"])
        self.assertGreaterEqual(min(rekeys), 2, "rekeys did not complete on keepalive traffic")

        sent, atServer, atClient = yield self.echoThrough(relay, client, server, SEED + 2, 100)
        self.assertGreater(len(atServer), 50)
        self.assertGreater(len(atClient), 25)
        self.assertAlive(client, server)
        self.assertImpaired(relay)
        log.info("idle survival: rekeys {rekeys}; client stats {cs}; server stats {ss}; relay {r}",
                 rekeys=rekeys, cs=client.transport.stats, ss=server.transport.stats, r=relay.summary())

        relay.setImpairment(CLEAN)
        client.transport.loseConnection()
        reason = yield client.lost
        self.assertIsInstance(reason, ConnectionDone)
        reason = yield server.lost.addTimeout(10, reactor)
        self.assertIsInstance(reason, ConnectionDone)
        self.assertEqual(reason.reason, "closed-by-peer")


    @defer.inlineCallbacks
    def test_blackoutShorterThanIdleTimeout(self):
        """
        A total blackout of 1.5 s in both directions, shorter than
        idleTimeout=3, in the middle of rekeying every 0.5 s over the lossy
        link: both sides keep the session (rekey requests are retransmitted
        through it), the rekeys resume afterwards, and messages flow again
        without duplicates.
        """
        options = (":retransmitInitial=0.1:retransmitMax=0.4:rekeyRetransmit=0.2"
                   ":keepaliveInterval=0.2:idleTimeout=3:rekeyAfterTime=0.5:oldKeyGrace=0.3")
        client, server, relay = yield self.echoSessionVia(SEED + 3, options)
        yield sleep(0.6)
        relay.setImpairment(Impairment(drop=1.0))
        yield sleep(1.5)
        blackout = (client.transport.stats["rekeys"], server.transport.stats["rekeys"])
        relay.setImpairment(IMPAIRED)
        yield waitUntilLossy(
            lambda: min(client.transport.stats["rekeys"], server.transport.stats["rekeys"]) > max(blackout),
            "a rekey completed on both sides after the blackout",
        )
        self.assertAlive(client, server)

        sent, atServer, atClient = yield self.echoThrough(relay, client, server, SEED + 3, 100)
        self.assertGreater(len(atServer), 50)
        self.assertGreater(len(atClient), 25)
        self.assertAlive(client, server)
        log.info("blackout: rekeys at the end of the blackout {b}; client stats {cs}; server stats {ss}; "
                 "relay {r}", b=blackout, cs=client.transport.stats, ss=server.transport.stats,
                 r=relay.summary())

ATTACKERS = [f"127.0.1.{n}" for n in range(1, 101)]

NEWCOMERS = [f"127.0.2.{n}" for n in range(1, 11)]

CONNECT_BOUND = 3  # seconds a new client's handshake may take (its handshakeTimeout)

REPLAYS = 20

INIT_FIXED_SIZE = 58  # HANDSHAKE_INIT up to its suite count (protocol.md 5.3)

def namespaceUnavailable():
    """
    @return: why the IPv6 /64 test cannot make a network namespace with
        addresses of its own, or None if it can.
    """
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux only"
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"no {tool} command"
    probe = subprocess.run(
        ["unshare", "-rn", "ip", "-6", "addr", "add", "fd00:5ad:f::1/64", "dev", "lo", "nodad"],
        capture_output=True,
    )
    if probe.returncode:
        return f"cannot add IPv6 addresses in a new network namespace: {probe.stderr.decode().strip()}"
    return None

class HandshakeExhaustionTests(unittest.TestCase):
    """
    100 cookie-proven attacker addresses, each sending INITs with random
    ephemerals at its handshake rate and never confirming, do not keep new
    clients out.
    """

    timeout = 60

    @defer.inlineCallbacks
    def test_manyAddressesDoNotLockOutNewClients(self):
        """
        Against a C{twist sudp} server with default limits (1,000 pending
        handshakes, 20 a second per source), 100 attacker addresses fill
        every pending slot; meanwhile 10 new clients from other addresses
        connect one after another, each within its 3 s handshake bound.
        (Before the fix, measured here: 7 of 10, the first three timing out
        while the attackers held every slot.)
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        endpoint, _ = yield startTwistSudp(reactor, self, directory)
        host, port = endpoint.split(":")[1:3]
        serverAddr = (host.partition("=")[2], int(port.partition("=")[2]))
        flood = InitFlood(reactor, serverAddr, ATTACKERS, rate=Config().handshakesPerSecond)
        flood.start()
        self.addCleanup(flood.stop)
        slots = Config().maxPendingHandshakes
        yield waitUntil(lambda: flood.resps >= slots,
                        f"the attackers to hold {slots} pending handshakes", timeout=20)
        results = yield connectOneByOne(reactor, [
            f"{endpoint}:bindAddress={source}:handshakeTimeout={CONNECT_BOUND}" for source in NEWCOMERS])
        connected = [seconds for seconds, _ in results if seconds is not None]
        self.assertEqual(
            len(connected), len(NEWCOMERS),
            f"{len(connected)} of {len(NEWCOMERS)} connected under the flood "
            f"(attackers: {flood.initsSent} INITs, {flood.resps} RESPs); {results}")

    @defer.inlineCallbacks
    def test_oneIPv6PrefixCannotTakeEverySlot(self):
        """
        One host holding a /64 (100 of its addresses, each at the rate one
        source is allowed) cannot take every pending slot: it is one source,
        and clients from another /64 connect. Runs in a network namespace
        of its own (C{unshare -rn}) with ULA addresses on its loopback.
        """
        why = namespaceUnavailable()
        if why is not None:
            raise unittest.SkipTest(why)
        env = dict(os.environ)
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        out, err, code = yield utils.getProcessOutputAndValue(
            "unshare", ["-rn", sys.executable, "-m", "sudp_test.attackers", "prefix-flood"],
            env=env, path=ROOT)
        self.assertEqual(code, 0, err.decode())
        figures = json.loads(out.decode().strip().splitlines()[-1])
        self.assertEqual(figures["withCookie"], figures["sources"], figures)
        self.assertGreater(figures["initsSent"], figures["maxPendingHandshakes"], figures)
        self.assertLess(figures["pendingDuringFlood"], figures["maxPendingHandshakes"], figures)
        self.assertLess(figures["respsToPrefix"], figures["maxPendingHandshakes"], figures)
        failed = [r for r in figures["clients"] if r[0] is None]
        self.assertEqual(failed, [], figures)

class AmplificationOverSocketsTests(unittest.TestCase):
    """
    Nothing answered to an unvalidated address is larger in bytes than what
    that address sent.
    """

    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        self.port, self.identity = yield listenServer(reactor, Factory.forProtocol(Protocol), Config())
        self.addCleanup(self.port.stopListening)
        self.serverAddr = ("127.0.0.1", self.port.getHost().port)

    @defer.inlineCallbacks
    def test_replayedInitToVictim(self):
        """
        A real client's INIT, captured and replayed with the client's (the
        victim's) source address while its session is pending, as sent and
        with its padding stripped, draws no more bytes to the victim than
        the replays carried. (Before the fix: a 122-byte RESP for every
        59-byte INIT, 2.07x.)
        """
        victim = HandClient(reactor, self.identity.publicKey, self.serverAddr)
        victim.bind("127.0.0.1")
        self.addCleanup(victim.stopListening)
        victim.withhold.add(P.HANDSHAKE_RESP)  # the client never confirms: the session stays pending
        victim.start()
        yield waitUntil(lambda: any(d[0] == P.HANDSHAKE_RESP for _, d, _ in victim.received),
                        "the RESP to the INIT")
        init = next(d for d in victim.outgoing if d[0] == P.HANDSHAKE_INIT)
        # the INIT as captured, and without the zero padding after its suites
        # (an attacker may strip it: the server then knows the handshake)
        unpadded = init[:INIT_FIXED_SIZE + init[INIT_FIXED_SIZE - 1]]
        victim.detach()
        self.assertEqual(self.port.engine.stats()["pending"], 1)
        sentBefore, receivedBefore = victim.bytesSent, victim.bytesReceived
        for n in range(REPLAYS):
            victim.sendRaw(init if n % 2 else unpadded, self.serverAddr)
            yield sleep(0.01)
        yield sleep(0.2)  # any answer to the last replay is in
        self.assertEqual(self.port.engine.stats()["pending"], 1)
        sent = victim.bytesSent - sentBefore
        received = victim.bytesReceived - receivedBefore
        self.assertLessEqual(
            received / sent, 1.0,
            f"{REPLAYS} replayed INITs of {len(unpadded)} and {len(init)} bytes ({sent} bytes) drew "
            f"{received} bytes "
            f"({received / sent:.2f}x)")

    @defer.inlineCallbacks
    def test_helloToCookie(self):
        """
        A HELLO (from any address: the server keeps nothing for it) draws
        a COOKIE no larger than itself.
        """
        victim = CountingSocket(reactor)
        victim.bind("127.0.0.1")
        self.addCleanup(victim.port.stopListening)
        for _ in range(REPLAYS):
            victim.sendRaw(P.encodeHello(os.urandom(P.HELLO_NONCE_SIZE)), self.serverAddr)
        yield waitUntil(lambda: len(victim.received) >= REPLAYS, "a COOKIE for every HELLO")
        self.assertLessEqual(victim.bytesReceived / victim.bytesSent, 1.0,
                             f"{victim.bytesSent} bytes of HELLO drew {victim.bytesReceived}")

class ServerRestartTests(unittest.TestCase):
    """
    A server process killed and started again on its port, with its key: its
    old clients learn within one round trip (a stateless reset) and a
    ClientService reconnects (the landed code kept the client on its dead
    session for the idle timeout, 61.9 s, while its writes vanished).
    """

    timeout = 60

    @defer.inlineCallbacks
    def test_clientServiceReconnectsAfterRestart(self):
        from twisted.application.internet import ClientService
        from sudp_test.serverprocess import startTwistSudp

        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        endpoint, process = yield startTwistSudp(reactor, self, directory)
        factory = RecorderFactory()
        service = ClientService(clientFromString(reactor, endpoint), factory,
                                retryPolicy=lambda attempt: 0.1)
        service.startService()
        self.addCleanup(service.stopService)
        first = yield service.whenConnected(failAfterFailures=5)
        first.transport.write(b"before")
        yield first.waitFor(1)

        process.signalProcess("KILL")
        port = endpoint.split(":port=")[1].split(":")[0]
        yield startTwistSudp(reactor, self, directory, "--port", port)

        started = reactor.seconds()
        first.transport.write(b"into the void")
        yield first.lost.addTimeout(5, reactor)
        self.assertLess(reactor.seconds() - started, 1.0)
        self.assertEqual(first.reason.value.reason, "stateless-reset")
        self.assertIn("restarted", str(first.reason.value))

        yield sleep(0)  # the service hears of the loss after the protocol
        second = yield service.whenConnected(failAfterFailures=5)
        self.assertIsNot(second, first)
        second.transport.write(b"after")
        got = yield second.waitFor(1)
        self.assertEqual(got, [b"after"])

class ReplyBatchingTests(unittest.TestCase):
    """
    Replies written by the application while a read is handled leave in
    one flush after it (one sendmmsg/GSO batch), also when the C data path
    calls the protocol directly.
    """

    def openSession(self, addr):
        """
        An echo server adapter on a L{task.Clock}, and a client engine
        whose session with it is open, coming from C{addr}.

        @return: C{(adapter, client, clock, sends)}: what the adapter sends
            is appended to C{sends}, one list per send call.
        """
        from sudp.udp.adapters import ServerAdapter
        from sudp.udp.client import ClientEngine
        from sudp.udp.server import ServerEngine

        clock = task.Clock()
        clock.advance(1000)
        server = ServerEngine(Identity.generate(), Config())
        adapter = ServerAdapter(server, Factory.forProtocol(Echo), clock)
        self.addCleanup(adapter._stopTimer)
        sends = []
        adapter._sendAll = sends.append
        client = ClientEngine(server.identity.publicKey, ("127.0.0.1", 9000), Config())
        client.start(clock.seconds())
        for _ in range(4):  # the handshake, through the adapter
            for data, _ in client.datagramsToSend():
                adapter.datagramReceived(data, addr)
            for batch in sends:
                for data, _ in batch:
                    client.receiveDatagram(data, ("127.0.0.1", 9000), clock.seconds())
            del sends[:]
        self.assertEqual(client.session.state, "open")
        client.nextEvents()
        return adapter, client, clock, sends

    def checkEchoed(self, client, clock, sends, count):
        self.assertEqual([len(batch) for batch in sends], [count])
        for data, _ in sends[0]:
            client.receiveDatagram(data, ("127.0.0.1", 9000), clock.seconds())
        self.assertEqual([e.message for e in client.nextEvents()], [b"m%d" % i for i in range(count)])

    def test_echoRepliesLeaveTogether(self):
        """
        An echo server handed one read of 20 messages sends its 20 replies
        in one send call (with sinks, each write flushed on its own: 20).
        """
        addr = ("127.0.0.1", 40000)
        adapter, client, clock, sends = self.openSession(addr)
        for i in range(20):
            client.sendMessage(client.session, b"m%d" % i, clock.seconds())
        adapter.batchReceived([([d for d, _ in client.datagramsToSend()], addr)])
        self.checkEchoed(client, clock, sends, 20)

    def test_readFromRepliesLeaveTogether(self):
        """
        The same through C{readFrom}, the port's read straight into the
        engine (C{Receiver.readInto}): one send call for the 20 replies,
        each sealed at the time of the read.
        """
        if not speedups.batchedIO:
            raise unittest.SkipTest("the speedups' Receiver needs Linux")
        rx, tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for s in (rx, tx):
            self.addCleanup(s.close)
            s.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        adapter, client, clock, sends = self.openSession(tx.getsockname())
        session = next(iter(adapter.engine.sessions.values()))
        for i in range(20):
            client.sendMessage(client.session, b"m%d" % i, clock.seconds())
        for data, _ in client.datagramsToSend():
            tx.sendto(data, rx.getsockname())
        clock.advance(5)
        receiver = speedups.native.Receiver(rx.fileno(), 32, 2048)
        self.assertEqual(adapter.readFrom(receiver)[0], 20)
        self.assertEqual(adapter.readFrom(receiver), (0, 0))
        self.assertEqual(session.lastSend, clock.seconds())
        self.assertIsNone(adapter._readAt)
        self.checkEchoed(client, clock, sends, 20)
