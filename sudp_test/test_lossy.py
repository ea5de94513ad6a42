"""
Integration tests of sudp/1 over a lossy link: real UDP sockets on 127.0.0.1,
with a L{sudp_test.lossyrelay.LossyRelay} between the client and the server
that drops, duplicates, reorders and delays datagrams with a fixed seed.

sudp does not retransmit application data, so messages may be lost; what
must hold is the contract of the transport: the handshake completes (by
retransmission), no message is ever delivered twice or altered, every
delivered message is one that was sent, rekeys complete, and the session
stays up until the test closes it.

The figures of each test (retransmissions, messages lost and delivered,
rekeys, relay counters, drops by reason) go to the test log
(C{_trial_temp/test.log}).
"""

import hashlib
import random
import struct
from collections import Counter

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import clientFromString
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from twisted.trial import unittest

from sudp_test.lossyrelay import (
    CLEAN,
    CLIENT_TO_SERVER,
    DIRECTIONS,
    HOLD,
    LATER,
    NOW,
    SERVER_TO_CLIENT,
    Impairment,
    LossyRelay,
)
from sudp_test.test_udp_integration import SUDPIntegrationMixin
from sudp_test.waiting import sleep, waiter

log = Logger()

SEED = 20240607

IMPAIRED = Impairment(drop=0.10, reorder=0.10, duplicate=0.05, delay=0.05)
"""The link of these tests, both directions: 10 % loss, 10 % reordering, 5 %
duplication, and 5 % random delays (1 to 30 ms) on top."""

TIMERS = ":retransmitInitial=0.1:retransmitMax=0.4:rekeyRetransmit=0.2:keepaliveInterval=0.5:idleTimeout=10"
"""Short protocol timers, so that every test is over in seconds."""

HELLO, INIT, CONTROL = 0x11, 0x13, 0x1A  # first bytes of sudp/1 packets (protocol.md section 4)

# -- messages that can be checked ------------------------------------------------

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


waitUntil = waiter(timeout=15.0, interval=0.02)


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


class HandshakeTests(LossyTestMixin, unittest.TestCase):
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


class MessageTests(LossyTestMixin, unittest.TestCase):
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


class RekeyTests(LossyTestMixin, unittest.TestCase):
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
        yield waitUntil(lambda: min(rekeys()) >= minimum, f"{minimum} rekeys on both sides")
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


class SurvivalTests(LossyTestMixin, unittest.TestCase):
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
        yield waitUntil(
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


# -- the relay itself ------------------------------------------------------------


class _Sink(DatagramProtocol):
    """
    The far end of a relay test: records each datagram and answers it with
    C{b"R" + datagram}.
    """

    noisy = False

    def __init__(self, reply=True):
        self.got = []
        self.reply = reply

    def datagramReceived(self, data, addr):
        """
        Record the datagram; answer it if C{reply} is set.
        """
        self.got.append(data)
        if self.reply:
            self.transport.write(b"R" + data, addr)


class RelayTests(unittest.TestCase):
    """
    The relay does what it is configured to do, reproducibly, and leaves
    nothing behind.
    """

    def assertNear(self, value, expected, tolerance):
        """
        C{value} is within C{tolerance} of C{expected}.
        """
        if abs(value - expected) > tolerance:
            self.fail(f"{value} is not within {tolerance} of {expected}")

    def test_decisionRates(self):
        """
        Over 20000 datagrams the seeded decisions match the configured rates
        (drop; duplicate, reorder of those kept; delay of those kept and not
        held), their parameters stay in range, the same seed gives the same
        decisions and another seed other ones.
        """
        imp = Impairment(drop=0.1, duplicate=0.05, reorder=0.1, delay=0.1, reorderDepth=3,
                         reorderDelay=0.05, delayMin=0.001, delayMax=0.03, duplicateDelay=0.02)
        n = 20000
        rng = random.Random(7)
        decisions = [imp.decide(rng) for _ in range(n)]
        again = random.Random(7)
        self.assertEqual(decisions, [imp.decide(again) for _ in range(n)])
        other = random.Random(8)
        self.assertNotEqual(decisions, [imp.decide(other) for _ in range(n)])

        kept = [d for d in decisions if not d.dropped]
        notHeld = [d for d in kept if not d.reordered]
        self.assertNear((n - len(kept)) / n, 0.10, 0.01)
        self.assertNear(sum(d.duplicated for d in kept) / len(kept), 0.05, 0.008)
        self.assertNear(sum(d.reordered for d in kept) / len(kept), 0.10, 0.01)
        self.assertNear(sum(d.delayed for d in notHeld) / len(notHeld), 0.10, 0.01)
        for d in kept:
            original = d.plans[0]
            self.assertIn(original.kind, (NOW, HOLD, LATER))
            if original.kind == HOLD:
                self.assertTrue(1 <= original.depth <= 3)
                self.assertTrue(0.005 <= original.delay <= 0.05)
            elif original.kind == LATER:
                self.assertTrue(0.001 <= original.delay <= 0.03)
            if d.duplicated:
                self.assertEqual(d.plans[1].kind, LATER)
                self.assertTrue(0 <= d.plans[1].delay <= 0.02)
        self.assertEqual(Impairment().decide(random.Random(1)).plans[0].kind, NOW)
        self.assertRaises(ValueError, Impairment, drop=1.5)

    @defer.inlineCallbacks
    def runRelay(self, seed, count=1000):
        """
        Send C{count} numbered datagrams through a relay with C{seed}
        (client to server: 10 % drop, 5 % duplicate, 10 % reorder, 10 %
        delay; server to client: 20 % drop only), answered one for one by the
        far end, and wait until all is through.

        @return: C{(relay, datagrams the server got, datagrams the client got)}.
        """
        server = _Sink()
        serverPort = reactor.listenUDP(0, server, interface="127.0.0.1")
        self.addCleanup(serverPort.stopListening)
        relay = LossyRelay(
            reactor, ("127.0.0.1", serverPort.getHost().port), seed,
            clientToServer=Impairment(drop=0.1, duplicate=0.05, reorder=0.1, delay=0.1),
            serverToClient=Impairment(drop=0.2), record=True,
        )
        relay.listen()
        self.addCleanup(relay.stop)
        client = _Sink(reply=False)
        clientPort = reactor.listenUDP(0, client, interface="127.0.0.1")
        self.addCleanup(clientPort.stopListening)
        for i in range(0, count, 20):
            for j in range(i, min(i + 20, count)):
                clientPort.write(struct.pack("!I", j), relay.address)
            yield sleep(0.003)

        def done():
            c = relay.counters
            return (not relay.pending()
                    and c[CLIENT_TO_SERVER]["received"] == count
                    and len(server.got) == c[CLIENT_TO_SERVER]["forwarded"]
                    and c[SERVER_TO_CLIENT]["received"] == len(server.got)
                    and len(client.got) == c[SERVER_TO_CLIENT]["forwarded"])

        yield waitUntil(done, f"all datagrams through the relay: {relay.summary()}")
        yield relay.stop()
        self.assertEqual(relay.pending(), 0)
        return relay, server.got, client.got

    @defer.inlineCallbacks
    def test_relayOverSockets(self):
        """
        Through real sockets the relay drops, duplicates, reorders and delays
        client-to-server datagrams at about the configured rates, and only
        drops server-to-client ones (each direction has its own settings);
        the counters agree with what the ends received (a duplicate arrives
        twice, a drop never, nothing is altered). A second relay with the
        same seed takes exactly the same decisions and counts the same.
        """
        count = 1000
        relay, atServer, atClient = yield self.runRelay(SEED)
        c2s, s2c = relay.counters[CLIENT_TO_SERVER], relay.counters[SERVER_TO_CLIENT]
        self.assertNear(c2s["dropped"] / count, 0.10, 0.04)
        kept = count - c2s["dropped"]
        self.assertNear(c2s["duplicated"] / kept, 0.05, 0.03)
        self.assertNear(c2s["reordered"] / kept, 0.10, 0.04)
        self.assertNear(c2s["delayed"] / (kept - c2s["reordered"]), 0.10, 0.04)
        self.assertEqual(c2s["forwarded"], kept + c2s["duplicated"])
        self.assertNear(s2c["dropped"] / s2c["received"], 0.20, 0.05)
        for what in ("duplicated", "reordered", "delayed", "discarded", "sendErrors"):
            self.assertEqual(s2c[what], 0, what)

        ids = [struct.unpack("!I", d)[0] for d in atServer]
        seen = Counter(ids)
        self.assertLessEqual(set(seen), set(range(count)))
        self.assertEqual(len(seen), kept)
        self.assertEqual(sum(n - 1 for n in seen.values()), c2s["duplicated"])
        self.assertNotEqual(ids, sorted(ids), "nothing arrived out of order")
        self.assertLessEqual(set(atClient), {b"R" + d for d in atServer})
        self.assertEqual(relay.strangers, 0)

        twin, _, _ = yield self.runRelay(SEED)
        for d in DIRECTIONS:
            self.assertEqual(twin.decisions[d], relay.decisions[d], d)
            self.assertEqual(twin.counters[d], relay.counters[d], d)
        log.info("relay self-test: {summary}", summary=relay.summary())

    @defer.inlineCallbacks
    def test_stopDiscardsPending(self):
        """
        stop() cancels the timers of held and delayed datagrams (counted as
        discarded) and closes the port: nothing is left in the reactor, and
        a second stop() is harmless.
        """
        sink = _Sink(reply=False)
        sinkPort = reactor.listenUDP(0, sink, interface="127.0.0.1")
        self.addCleanup(sinkPort.stopListening)
        relay = LossyRelay(reactor, ("127.0.0.1", sinkPort.getHost().port), 1,
                           Impairment(delay=1.0, delayMin=5, delayMax=10))
        relay.listen()
        sender = _Sink(reply=False)
        senderPort = reactor.listenUDP(0, sender, interface="127.0.0.1")
        self.addCleanup(senderPort.stopListening)
        for i in range(10):
            senderPort.write(b"%d" % i, relay.address)
        yield waitUntil(lambda: relay.counters[CLIENT_TO_SERVER]["received"] == 10, "10 datagrams at the relay")
        self.assertEqual(relay.pending(), 10)
        yield relay.stop()
        yield relay.stop()
        self.assertEqual(relay.pending(), 0)
        self.assertEqual(relay.counters[CLIENT_TO_SERVER]["discarded"], 10)
        self.assertEqual(relay.counters[CLIENT_TO_SERVER]["forwarded"], 0)
        self.assertFalse(relay.port.connected)
        self.assertEqual(sink.got, [])
