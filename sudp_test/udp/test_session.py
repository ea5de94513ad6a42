# -*- test-case-name: sudp_test.udp.test_session -*-
"""
Tests for L{sudp.udp.session}.

L{sudp.udp.session}: a session uses its engine through
L{sudp.engine.ISessionHost} and nothing else.
"""

import os
import random
from collections import Counter

from twisted.trial import unittest
from zope.interface.verify import verifyObject

from sudp.engine import ISessionHost
from sudp.errors import SessionClosed
from sudp.keys import Identity
from sudp.suites import getSuite
from sudp.udp import packets as P, records as R
from sudp.udp.config import Config
from sudp.udp.events import (
    HandshakeFailure,
    MessageReceived,
    ServerKeyAnnounced,
    SessionEnded,
    SessionOpened,
)
from sudp.udp.server import ServerEngine

from sudp_test.enginehelpers import (
    CLIENT_ADDR,
    connect,
    connectedPair,
    isResetFor,
    Network,
    newServer,
    SERVER_ADDR,
    serverSessionOf,
    START,
    takeOutbox,
)
from sudp_test.udp.helpers import (
    CLIENT_IDENTITY,
    COOKIE_MASTER,
    COUNTS,
    EngineTestCase,
    OTHER_ADDR,
    PASSES,
    REPLY_COOKIE,
    RecordingSuite,
    SERVER_IDENTITY,
    _forEverySuite,
    added,
    connectLink,
    exchange,
    expectedFate,
    flip,
    header,
    serverSession,
    stateOf,
    windowPasses,
)

class OnlyTheInterface:
    """
    A host that passes on to an engine what L{ISessionHost} names, and
    refuses anything else.
    """

    def __init__(self, engine):
        self._engine = engine
        self.asked = set()

    def __getattr__(self, name):
        if name not in ISessionHost.names():
            raise AttributeError(f"a Session asked its host for {name!r}, outside ISessionHost")
        self.asked.add(name)
        return getattr(self._engine, name)

class SessionHostTests(unittest.TestCase):
    def test_enginesProvide(self):
        """
        Both datagram engines provide L{ISessionHost}.
        """
        _, server, client = connectedPair()
        self.assertTrue(verifyObject(ISessionHost, server))
        self.assertTrue(verifyObject(ISessionHost, client))

    def test_nothingElse(self):
        """
        With hosts that give nothing beyond the interface, sessions still
        exchange messages, answer a CONFIRM (reset token, next key), rekey
        both ways, validate a new address and close.
        """
        net, server, client = connectedPair()
        server.nextIdentity = Identity.generate()
        session = serverSessionOf(server, client)
        session.host = serverHost = OnlyTheInterface(server)
        client.session.host = clientHost = OnlyTheInterface(client)
        client.sendMessage(client.session, b"hello", net.now)
        session.sendMessage(b"back", net.now)
        client.session._sendControl(client._confirm, net.now)  # a CONFIRM again: answered again
        net.pump()
        self.assertEqual([e.message for e in net.take("server", MessageReceived)], [b"hello"])
        self.assertEqual([e.message for e in net.take(CLIENT_ADDR, MessageReceived)], [b"back"])
        self.assertEqual(len(net.take(CLIENT_ADDR, ServerKeyAnnounced)), 1)
        self.assertIsNotNone(client.session.resetToken)
        client.session._startRekey(net.now)
        net.pump()
        session._startRekey(net.now)
        net.pump()
        self.assertEqual((client.session.sendEpoch.number, session.sendEpoch.number), (2, 2))
        newAddr = ("127.0.0.1", 40404)
        net.move(client, newAddr)
        client.sendMessage(client.session, b"moved", net.now)
        net.pump()
        self.assertEqual(session.peerAddr, newAddr)
        client.session.close(net.now)
        net.pump()
        self.assertEqual(len(net.take("server", SessionEnded)), 1)
        self.assertEqual(server.sessions, {})
        self.assertTrue({"queueDatagram", "reportEvent", "armTimer", "armCiphers", "count", "random", "identity",
                         "resetToken", "nextIdentity", "sessionClosed"} <= serverHost.asked, serverHost.asked)
        self.assertTrue({"queueDatagram", "reportEvent", "nextServerKey", "sessionClosed"} <= clientHost.asked)

def messagesOf(events):
    return [e.message for e in events if isinstance(e, MessageReceived)]

def sessionsOf(engine):
    if isinstance(engine, ServerEngine):
        return dict(engine.sessions)
    return {} if engine.session is None else {engine.session.localIndex: engine.session}

def failureCounts(engine):
    """
    @return: C{{(index, slot): failures}}: the forgery counters, the one
        thing a datagram that does not authenticate may change.
    """
    return {
        (index, slot): ep.failures
        for index, session in sessionsOf(engine).items()
        for slot, ep in enumerate(session.epochs)
        if ep is not None
    }

def openPair(config):
    """
    A server (fixed identity and cookie key, requiring the fixed client
    identity) and a client with an open session.

    @return: C{(network, server, client)}.
    """
    server = newServer(config, SERVER_IDENTITY, cookieSecret=COOKIE_MASTER,
                       authorizedKeys=[CLIENT_IDENTITY.publicKey])
    net = Network(server, START)
    client = connect(net, CLIENT_ADDR, config, CLIENT_IDENTITY)
    assert [type(e) for w, e in net.events] == [SessionOpened, SessionOpened], net.events
    net.events = []
    return net, server, client

class ProtectedTamperMixin:
    """
    Every single-bit flip of real DATA and CONTROL packets is rejected
    through both receive entry points, with the reason docs/protocol.md
    gives, changing nothing but the forgery counter; the genuine packet is
    then accepted exactly once.
    """

    ordering = "window"
    message = b"x" * 40  # a 69-byte DATA packet: over 64 bytes, see test_epochOneInGrace

    def setUp(self):
        self.seals = []
        self.config = Config(suites=(RecordingSuite(getSuite(self.suiteName), self.seals),),
                             ordering=self.ordering)
        self.net, self.server, self.client = openPair(self.config)
        self.serverSession = serverSessionOf(self.server, self.client)
        self.fates = Counter()

    def tearDown(self):
        self.assertNoNonceReuse(self.seals)

    def directions(self):
        """
        @return: C{(sender engine, send(message), sending session, receiver
            engine, source address)} for client to server and server to client.
        """
        client, server, session = self.client, self.server, self.serverSession
        return [
            (client, lambda m: client.sendMessage(client.session, m, self.net.now), client.session, server, CLIENT_ADDR),
            (server, lambda m: server.sendMessage(session, m, self.net.now), session, client, SERVER_ADDR),
        ]

    def capture(self, sender, send, session, receiver, src):
        """
        Send six messages, deliver all but the third (so the receiver's
        window has a hole), then seal a DATA and a KEEPALIVE CONTROL packet
        and return them undelivered.
        """
        sent = []
        for i in range(6):
            send(b"m%d" % i)
            [(packet, _)] = takeOutbox(sender)
            sent.append(packet)
        for packet in sent[:2] + sent[3:]:
            receiver.receiveDatagram(packet, src, self.net.now)
        self.assertEqual(messagesOf(receiver.events), [b"m0", b"m1", b"m3", b"m4", b"m5"])
        receiver.events = []
        send(self.message)
        [(data, _)] = takeOutbox(sender)
        session._sendControl(R.encodeRecord(R.KEEPALIVE), self.net.now)  # what the keepalive timer sends
        [(control, _)] = takeOutbox(sender)
        self.assertEqual((data[0] & 0xFE, control[0] & 0xFE, len(data), len(control)), (0x18, 0x1A, 69, 32))
        return data, control

    def assertRejected(self, engine, data, src, fate, entry, what):
        """
        Hand C{data} to C{engine} through C{entry} and check that it had
        exactly the fate C{fate}, reported no event and changed no state
        but, for a C{bad-tag}, the forgery counter of the epoch it chose.
        """
        now = self.net.now
        before = stateOf(engine)
        failures = failureCounts(engine)
        drops = Counter(engine.drops)
        if entry == "receiveDatagram":
            engine.receiveDatagram(data, src, now)
        else:
            engine.receiveDatagrams([data], src, now)
        if fate == REPLY_COOKIE:
            self.assertEqual(added(engine, drops), Counter(), what)
            [(reply, dst)] = takeOutbox(engine)
            self.assertEqual((dst, len(reply), reply[:9]), (src, 29, bytes([P.COOKIE]) + data[1:9]), what)
        else:
            self.assertEqual(added(engine, drops), Counter({fate: 1}), what)
            out = takeOutbox(engine)
            if fate == "unknown-session" and isinstance(engine, ServerEngine) and out:
                # section 10.9: the one answer, a smaller stateless reset
                [(reset, dst)] = out
                self.assertTrue(isResetFor(reset, data) and dst == src, what)
            else:
                self.assertEqual(out, [], what)
        self.assertEqual(engine.events, [], what)
        self.assertEqual(stateOf(engine), before, what)
        if fate == "bad-tag":
            _, index, _ = P.DATA_HEADER.unpack_from(data)
            failures[index, data[0] & 1] += 1
        self.assertEqual(failureCounts(engine), failures, what)

    def assertEveryFlipRejected(self, engine, packet, src, message):
        """
        Flip every bit of C{packet} (for C{engine}, from C{src}) and check
        each is rejected as L{expectedFate} says, one at a time through
        C{receiveDatagram}, then through C{receiveDatagrams} (the C data
        path), then through C{receiveDatagram} from another address (which
        must not become the peer's), then all in one C{receiveDatagrams}
        batch ending with the genuine packet, which is accepted (delivering
        C{message}, if a DATA packet); a second copy of it is then a replay.
        """
        self.net.now += 0.25  # later than anything accepted: lastRecv would show
        now = self.net.now
        bits = range(len(packet) * 8)
        fates = [expectedFate(engine, flip(packet, bit), src, now) for bit in bits]
        self.assertNotIn(PASSES, fates)
        for entry, addr in (("receiveDatagram", src), ("receiveDatagrams", src), ("receiveDatagram", OTHER_ADDR)):
            for bit, fate in zip(bits, fates):
                what = f"{self.suiteName}: bit {bit} of {packet.hex()} via {entry} from {addr}: expected {fate}"
                self.assertRejected(engine, flip(packet, bit), addr, fate, entry, what)
        self.fates.update(fates)
        COUNTS["part 1: bits flipped", self.suiteName] += 4 * len(fates)

        # all at once, the genuine packet last
        drops = Counter(engine.drops)
        failures = sum(failureCounts(engine).values())
        engine.receiveDatagrams([flip(packet, bit) for bit in bits] + [packet], src, now)
        self.assertEqual(added(engine, drops), Counter(f for f in fates if f != REPLY_COOKIE))
        self.assertEqual(sum(failureCounts(engine).values()) - failures, fates.count("bad-tag"))
        replies = takeOutbox(engine)
        resets = [r for r, dst in replies if r[0] == P.STATELESS_RESET]
        cookies = [r for r, dst in replies if r[0] == P.COOKIE]
        self.assertEqual(len(cookies), fates.count(REPLY_COOKIE))
        expectedResets = fates.count("unknown-session") if isinstance(engine, ServerEngine) else 0
        self.assertEqual(len(resets), expectedResets)
        self.assertTrue(all(isResetFor(r, packet) for r in resets))
        self.assertEqual(len(replies), len(cookies) + len(resets))
        self.assertEqual(messagesOf(engine.events), [] if message is None else [message])
        self.assertNotIn(SessionEnded, [type(e) for e in engine.events])
        engine.events = []
        typeByte, index, seq = P.DATA_HEADER.unpack_from(packet)
        session = sessionsOf(engine)[index]
        self.assertFalse(windowPasses(session.epochs[typeByte & 1], seq, self.config))
        self.assertEqual(session.lastRecv, now)
        self.assertRejected(engine, packet, src, "replay", "receiveDatagram", "the genuine packet again")

    def test_epochZero(self):
        """
        Under epoch 0 (no rekey yet), each bit of a 69-byte DATA and a
        32-byte CONTROL packet, each way, flipped, is rejected: a flip in
        the version nibble as C{wrong-version}, one making an unassigned
        type as C{unknown-type}, DATA turned STATELESS_RESET as
        C{unexpected-type} (server) or C{bad-reset} (client: no token),
        CONTROL turned COOKIE as C{unexpected-type}
        (server) or C{oversized} (client, a COOKIE is 29 bytes), the key
        phase bit as C{no-key} (phase 1 has no key), the receiver index as
        C{unknown-session}, a sequence number turned into one already
        accepted as C{replay} (with C{ordering=strict} also one below the
        highest that was lost), anything else as C{bad-tag}.
        """
        for sender, send, session, receiver, src in self.directions():
            data, control = self.capture(sender, send, session, receiver, src)
            self.assertEveryFlipRejected(receiver, data, src, self.message)
            self.assertEveryFlipRejected(receiver, control, src, None)
        self.assertEqual(set(self.fates), {
            "wrong-version", "unknown-type", "unexpected-type", "oversized", "no-key",
            "unknown-session", "replay", "bad-tag", "bad-reset",
        })

    def test_epochOneInGrace(self):
        """
        After a rekey, while epoch 0 is still held in its grace period, each
        bit of epoch-1 DATA and CONTROL packets (key phase 1), flipped, is
        rejected: the key phase flip now selects epoch 0, whose window has
        seen those sequence numbers (C{replay}), and a phase-1 DATA packet
        of 64 bytes or more with bit 3 flipped becomes a valid HELLO, which
        the server answers with a COOKIE as it must (section 5.1) without
        keeping state or counting a drop; a phase-1 CONTROL turned into an
        INIT is C{truncated}. No flip is C{no-key} now: both key phases
        have keys.
        """
        for sender, send, session, receiver, src in self.directions():
            data, control = self.capture(sender, send, session, receiver, src)
            receiver.receiveDatagrams([data, control], src, self.net.now)
            self.assertEqual(messagesOf(receiver.events), [self.message])
            receiver.events = []
        self.client.session._startRekey(self.net.now)
        self.net.pump()
        self.assertEqual([e for w, e in self.net.events], [])
        for s in (self.client.session, self.serverSession):
            self.assertEqual(s.sendEpoch.number, 1)
            self.assertEqual([ep.number for ep in s.epochs], [0, 1])
        for sender, send, session, receiver, src in self.directions():
            data, control = self.capture(sender, send, session, receiver, src)
            self.assertEqual((data[0], control[0]), (0x19, 0x1B))
            self.assertEveryFlipRejected(receiver, data, src, self.message)
            self.assertEveryFlipRejected(receiver, control, src, None)
        for s in (self.client.session, self.serverSession):
            self.assertEqual([ep.number for ep in s.epochs], [0, 1])
            self.assertLess(s.epochs[0].retireAt, float("inf"))  # in its grace period
        self.assertEqual(set(self.fates), {
            "wrong-version", "unknown-type", "unexpected-type", "truncated", REPLY_COOKIE,
            "unknown-session", "replay", "bad-tag",
        })

_forEverySuite(globals(), ProtectedTamperMixin, ({}, {"ordering": "strict", "tag": "_strict"}))

class Sent:
    """
    One DATA packet a test sealed, with the epoch it was sealed under.
    """

    __slots__ = ("packet", "epoch", "message", "delivered")

    def __init__(self, packet, epoch, message):
        self.packet = packet
        self.epoch = epoch
        self.message = message
        self.delivered = False

class Direction:
    """
    One direction of the session: who seals, who receives, from where.
    """

    def __init__(self, name, sender, send, senderSession, receiver, receiverSession, src):
        self.name = name
        self.sender = sender
        self.send = send
        self.senderSession = senderSession
        self.receiver = receiver
        self.receiverSession = receiverSession
        self.src = src
        self.sent = []

class ReplayMixin:
    """
    Every DATA packet, both ways, replayed at every stage of a session's
    life is dropped with the reason docs/protocol.md gives and never
    delivered twice, through both receive entry points.
    """

    ordering = "window"
    window = 1024

    def setUp(self):
        self.seals = []
        self.suite = RecordingSuite(getSuite(self.suiteName), self.seals)
        self.config = Config(suites=(self.suite,), ordering=self.ordering, replayWindow=self.window,
                             rekeyAfterTime=100.0)
        self.net, self.server, self.client = openPair(self.config)
        session = serverSessionOf(self.server, self.client)
        client, server = self.client, self.server
        self.directions = [
            Direction("client to server", client, lambda m: client.sendMessage(client.session, m, self.net.now),
                      lambda: client.session, server, lambda: server.sessions.get(session.localIndex),
                      CLIENT_ADDR),
            Direction("server to client", server, lambda m: server.sendMessage(session, m, self.net.now),
                      lambda: session, client, lambda: client.session, SERVER_ADDR),
        ]
        self.rng = random.Random(f"{self.suiteName} {self.ordering}")

    def seal(self, d, n, tag):
        """
        Seal C{n} DATA packets in direction C{d}, undelivered.
        """
        out = []
        for i in range(n):
            message = b"%s %s %d" % (d.name[0].encode(), tag, i)
            epoch = d.senderSession().sendEpoch.number
            d.send(message)
            [(packet, _)] = takeOutbox(d.sender)
            self.assertEqual(packet[0], 0x18 | (epoch & 1))
            out.append(Sent(packet, epoch, message))
        d.sent.extend(out)
        return out

    def deliver(self, d, sents):
        """
        Deliver C{sents} in one C{receiveDatagrams} batch; each is accepted.
        """
        drops = Counter(d.receiver.drops)
        d.receiver.receiveDatagrams([s.packet for s in sents], d.src, self.net.now)
        self.assertEqual(added(d.receiver, drops), Counter())
        self.assertEqual(messagesOf(d.receiver.events), [s.message for s in sents])
        d.receiver.events = []
        for s in sents:
            s.delivered = True

    def assertReplayed(self, d, sents, allowed):
        """
        Replay every packet of C{sents} to its receiver, one at a time
        through C{receiveDatagram}, then all in one C{receiveDatagrams}
        batch: each is dropped with the reason L{expectedFate} gives, which
        must be in C{allowed}; nothing is delivered or sent, and nothing
        changes but the forgery counter (for a C{bad-tag}).

        @return: a Counter of the reasons.
        """
        engine, now = d.receiver, self.net.now
        cache = {}
        fates = [expectedFate(engine, s.packet, d.src, now, cache) for s in sents]
        self.assertLessEqual(set(fates), set(allowed), d.name)
        before = stateOf(engine)
        failures = sum(failureCounts(engine).values())
        for entry in ("receiveDatagram", "receiveDatagrams"):
            if entry == "receiveDatagram":
                for s, fate in zip(sents, fates):
                    drops = Counter(engine.drops)
                    engine.receiveDatagram(s.packet, d.src, now)
                    self.assertEqual(added(engine, drops), Counter({fate: 1}), f"{d.name}: {s.message}")
                    self.assertEqual(engine.events, [], f"{d.name}: {s.message} delivered again")
            else:
                drops = Counter(engine.drops)
                engine.receiveDatagrams([s.packet for s in sents], d.src, now)
                self.assertEqual(added(engine, drops), Counter(fates), d.name)
                self.assertEqual(engine.events, [], d.name)
            # the only answers: stateless resets (10.9) to packets of a session
            # the server no longer knows, each smaller than its packet, within the rate
            out = takeOutbox(engine)
            self.assertLessEqual(len(out), fates.count("unknown-session") if isinstance(engine, ServerEngine) else 0)
            self.assertTrue(all(r[:1] == bytes([P.STATELESS_RESET]) and len(r) <= 41 and a == d.src
                                for r, a in out), d.name)
            self.assertEqual(stateOf(engine), before, d.name)
        self.assertEqual(sum(failureCounts(engine).values()) - failures, 2 * fates.count("bad-tag"))
        COUNTS["part 3: replays", self.suiteName, self.ordering] += 2 * len(sents)
        return Counter(fates)

    def heldEpochs(self):
        return [[None if ep is None else ep.number for ep in s.epochs]
                for s in (self.client.session, serverSessionOf(self.server, self.client))]

    def test_replays(self):
        """
        Replays of DATA packets, both ways:

          - (a) within the window: each packet replayed right after it was
            accepted (delivery shuffled with C{ordering=window}, in order
            with C{strict}), and all of them again later: C{replay}; a
            packet held back and sent late is accepted with
            C{ordering=window} and is a C{replay} with C{strict};
          - (b) after more than C{replayWindow} (1024) later packets: every
            packet so far, including one that was never delivered and is
            now below the window: C{replay};
          - (c) after a rekey (C{_startRekey}), while epoch 0 is in its
            grace period: every epoch-0 packet is a C{replay}, so is every
            epoch-1 packet;
          - (d) once epoch 0 is retired (C{oldKeyGrace} later): epoch-0
            packets are C{no-key}, epoch-1 packets C{replay};
          - (e) after a second rekey started by the client's timer at
            C{rekeyAfterTime}: epoch 2 has taken key phase 0, so epoch-0
            packets are tried under epoch 2 and fail (C{bad-tag}, or
            C{replay} where epoch 2's window says so); epoch-1 packets (in
            grace) and epoch-2 packets are C{replay};
          - (f) once epoch 1 is retired: epoch-1 packets are C{no-key};
          - (g) after the session closed: every packet is
            C{unknown-session} at the server (the session is gone) and
            C{no-key} at the client (its session holds no keys).

        No (key, nonce) is sealed twice over the whole run.
        """
        strict = self.ordering == "strict"
        # (a)
        for d in self.directions:
            batch = self.seal(d, 40, b"a")
            late = batch.pop(7)
            if not strict:
                self.rng.shuffle(batch)
            for i, s in enumerate(batch):
                if i % 2:
                    d.receiver.receiveDatagram(s.packet, d.src, self.net.now)
                else:
                    d.receiver.receiveDatagrams([s.packet], d.src, self.net.now)
                self.assertEqual(messagesOf(d.receiver.events), [s.message])
                d.receiver.events = []
                s.delivered = True
                self.assertEqual(self.assertReplayed(d, [s], {"replay"}), Counter(replay=1))
            if strict:
                self.assertEqual(self.assertReplayed(d, [late], {"replay"}), Counter(replay=1))
            else:
                self.deliver(d, [late])
            self.assertReplayed(d, [s for s in d.sent if s.delivered], {"replay"})
        # (b)
        for d in self.directions:
            withheld = self.seal(d, 1, b"b-withheld")
            self.deliver(d, self.seal(d, self.window + 64, b"b"))
            reasons = self.assertReplayed(d, d.sent, {"replay"})
            self.assertEqual(reasons, Counter(replay=len(d.sent)))
            self.assertFalse(withheld[0].delivered)
        # (c)
        self.client.session._startRekey(self.net.now)
        self.net.pump()
        for d in self.directions:
            self.deliver(d, self.seal(d, 10, b"c"))
        self.assertEqual(self.heldEpochs(), [[0, 1], [0, 1]])
        for d in self.directions:
            self.assertLess(d.receiverSession().epochs[0].retireAt, float("inf"))
            self.assertReplayed(d, [s for s in d.sent if s.epoch == 0], {"replay"})
            self.assertReplayed(d, [s for s in d.sent if s.epoch == 1], {"replay"})
        # (d)
        self.net.advance(self.config.oldKeyGrace + 0.5)
        self.assertEqual(self.heldEpochs(), [[None, 1], [None, 1]])
        for d in self.directions:
            self.assertReplayed(d, [s for s in d.sent if s.epoch == 0], {"no-key"})
            self.assertReplayed(d, [s for s in d.sent if s.epoch == 1], {"replay"})
        # (e): run every timer, a second at a time, until the client's
        # rekey timer has fired and the rekey is done
        while self.client.session.sendEpoch.number < 2:
            self.net.advance(1.0)
        for d in self.directions:
            self.deliver(d, self.seal(d, 10, b"e"))
        self.assertEqual(self.heldEpochs(), [[2, 1], [2, 1]])
        self.assertEqual([e for w, e in self.net.events if not isinstance(e, MessageReceived)], [])
        for d in self.directions:
            reasons = self.assertReplayed(d, [s for s in d.sent if s.epoch == 0], {"bad-tag", "replay"})
            self.assertGreater(reasons["bad-tag"], 0)
            self.assertReplayed(d, [s for s in d.sent if s.epoch == 1], {"replay"})
            self.assertReplayed(d, [s for s in d.sent if s.epoch == 2], {"replay"})
        # (f)
        self.net.advance(self.config.oldKeyGrace + 0.5)
        self.assertEqual(self.heldEpochs(), [[2, None], [2, None]])
        for d in self.directions:
            self.assertReplayed(d, [s for s in d.sent if s.epoch == 1], {"no-key"})
            self.assertReplayed(d, [s for s in d.sent if s.epoch != 1], {"bad-tag", "replay"})
        # (g)
        self.client.closeSession(self.client.session, self.net.now)
        self.net.pump()
        self.assertEqual(self.server.sessions, {})
        for d, reason in zip(self.directions, ("unknown-session", "no-key")):
            self.assertEqual(self.assertReplayed(d, d.sent, {reason}), Counter({reason: len(d.sent)}))
        # every message was delivered exactly once: the replays delivered nothing
        for d in self.directions:
            self.assertEqual(sum(s.delivered for s in d.sent), len(d.sent) - (2 if strict else 1))
        self.assertNoNonceReuse(self.seals)

_forEverySuite(globals(), ReplayMixin, ({}, {"ordering": "strict", "tag": "_strict"}))

ROUNDS = 2000

class NonceUniquenessMixin:
    """
    No sealing side ever uses a (key, nonce) pair twice, whatever the
    network does.
    """

    def test_longLossyRun(self):
        """
        A long run (L{ROUNDS} rounds) with traffic both ways, rekeys by message
        count (every 9 DATA packets), by time (C{rekeyAfterTime} 20 s) and
        by the server's asking, 30% of datagrams lost (rekey requests,
        their retransmissions and responses included), outboxes
        shuffled, time jumping so that rekey retransmissions, keepalives and
        key retirement run, and old datagrams replayed and bit-flipped
        copies injected at random: every (key, nonce) a sealing side uses
        (the suite's real nonce, recorded by L{RecordingSuite}) is unique,
        every packet that authenticated was sealed by the peer, no
        message is delivered twice or altered, and the session survives.
        """
        rng = random.Random(f"nonces {self.suiteName}")
        seals, opens = [], []
        suite = RecordingSuite(getSuite(self.suiteName), seals, opens)
        config = Config(suites=(suite,), rekeyAfterMessages=9, rekeyAfterTime=20.0)
        net, server, client = openPair(config)
        session = serverSessionOf(server, client)
        wire = []

        def lossy(data, src, dst):
            wire.append((data, src))
            return rng.random() < 0.3

        net.drop = lossy
        sent = {"server": {b"last"}, CLIENT_ADDR: {b"last"}}  # by receiver
        injected = 0
        for i in range(ROUNDS):
            for j in range(rng.randrange(3)):
                message = b"c%d.%d" % (i, j)
                client.sendMessage(client.session, message, net.now)
                sent["server"].add(message)
            for j in range(rng.randrange(3)):
                message = b"s%d.%d" % (i, j)
                server.sendMessage(session, message, net.now)
                sent[CLIENT_ADDR].add(message)
            for engine in (client, server):
                rng.shuffle(engine.outbox)
            net.pump()
            for _ in range(2):
                data, src = rng.choice(wire)
                if rng.random() < 0.5:
                    data = flip(data, rng.randrange(len(data) * 8))
                target = server if src != SERVER_ADDR else client
                target.receiveDatagram(data, src, net.now)
                injected += 1
            net.pump()
            net.advance(rng.choice((0.0, 0.0, 0.3, 1.1, 2.5)))
        # a loss-free end: any rekey in progress completes, and one message
        # each way brings both sides to the same epoch
        net.drop = lambda data, src, dst: False
        net.advance(2)
        client.sendMessage(client.session, b"last", net.now)
        net.pump()
        server.sendMessage(session, b"last", net.now)
        net.pump()
        self.assertEqual((client.session.state, session.state), ("open", "open"))
        self.assertEqual([e for w, e in net.events if isinstance(e, (SessionEnded, HandshakeFailure))], [])
        self.assertGreaterEqual(client.session.stats["rekeys"], 150)
        self.assertGreater(session.stats["rekeysStarted"], 0)  # the server asked, too
        self.assertEqual(client.session.sendEpoch.number, session.sendEpoch.number)
        self.assertNoNonceReuse(seals)
        self.assertLessEqual(set(opens), set(seals))
        self.assertEqual(len(opens), len(set(opens)))  # nothing authenticated twice
        # two keys an epoch, each side making each once or more; none shared
        self.assertEqual(len(suite.keys), 2 * (client.session.sendEpoch.number + 1))
        got = [(w, e.message) for w, e in net.events if isinstance(e, MessageReceived)]
        self.assertEqual(len(got), len(set(got)))
        self.assertEqual([(w, m) for w, m in got if m not in sent[w]], [])
        self.assertGreater(len(got), 2000)
        COUNTS["part 4: packets sealed", self.suiteName] += len(seals)
        COUNTS["part 4: datagrams injected", self.suiteName] += injected
        COUNTS["part 4: rekeys", self.suiteName] += client.session.stats["rekeys"]

_forEverySuite(globals(), NonceUniquenessMixin)

class DataAuthenticationTests(EngineTestCase):
    """
    Tampered, forged and replayed DATA packets on an open session.
    """

    def setUp(self):
        self.net, self.server, self.client = connectedPair()
        self.session = serverSessionOf(self.server, self.client)

    def test_flipCiphertextBits(self):
        """
        A captured DATA packet with any one bit of its ciphertext flipped is
        dropped as C{bad-tag}; the original is still accepted afterwards.
        """
        packet, _ = self.capturedData(self.net, self.client)
        for bit in range(P.DATA_HEADER_SIZE * 8, (len(packet) - 16) * 8):
            self.assertServerDrops(self.server, flip(packet, bit), CLIENT_ADDR, "bad-tag")
        self.server.receiveDatagram(packet, CLIENT_ADDR, START)
        self.assertEqual([e.message for e in self.server.events], [b"m" * 16])

    def test_flipTagBits(self):
        """
        A captured DATA packet with any one bit of its 16-byte tag flipped is
        dropped as C{bad-tag}.
        """
        packet, _ = self.capturedData(self.net, self.client)
        for bit in range((len(packet) - 16) * 8, len(packet) * 8):
            self.assertServerDrops(self.server, flip(packet, bit), CLIENT_ADDR, "bad-tag")
        self.assertEqual(self.session.epochs[0].failures, 128)

    def test_flipHeaderBits(self):
        """
        Every bit of the 13 header bytes is covered: a flip in the receiver
        index finds no session, a flip in the sequence number is a replay
        (to a number already seen) or a bad tag (to a new one), and a flip in
        the type byte is the other key phase (no key), CONTROL (bad tag), an
        unassigned type, or another version.
        """
        packet, seq = self.capturedData(self.net, self.client)
        self.assertEqual(seq, 5)  # CONFIRM was 0, then four messages
        for bit in range(P.DATA_HEADER_SIZE * 8):
            self.assertFlipRejected(flip(packet, bit), seq)
        self.server.receiveDatagram(packet, CLIENT_ADDR, START)
        self.assertEqual([e.message for e in self.server.events], [b"m" * 16])

    def assertFlipRejected(self, data, capturedSeq):
        """
        Assert that the tampered packet C{data} is rejected with the reason
        its content calls for, and return that reason.
        """
        expected = self.expectedReason(data, capturedSeq)
        self.assertServerDrops(self.server, data, CLIENT_ADDR, expected)
        return expected

    def expectedReason(self, data, capturedSeq):
        t = data[0]
        if t >> 4 != 1:
            return "wrong-version"
        if t not in P.PACKET_NAMES:
            return "unknown-type"
        if t & 0xFC != P.DATA:
            return "unexpected-type"  # 0x1C: a STATELESS_RESET, which only servers send
        _, index, seq = header(data)
        if index != self.session.localIndex:
            return "unknown-session"
        if t & 1:
            return "no-key"  # no rekey yet: phase 1 has no key
        if seq < capturedSeq:
            return "replay"  # 0..capturedSeq-1 were all delivered
        return "bad-tag"

    def test_everyBitFlipRejected(self):
        """
        Exhaustively: each of the 8 * len bits of one captured DATA packet,
        flipped, gives a datagram that is rejected with the reason its
        position calls for, changes no state and is never delivered; the
        untouched packet is then accepted.
        """
        packet, seq = self.capturedData(self.net, self.client)
        seen = set()
        for bit in range(len(packet) * 8):
            seen.add(self.assertFlipRejected(flip(packet, bit), seq))
        self.assertEqual(
            seen,
            {"wrong-version", "unknown-type", "unexpected-type", "unknown-session", "no-key", "replay", "bad-tag"},
        )
        self.server.receiveDatagram(packet, CLIENT_ADDR, START)
        self.assertEqual([e.message for e in self.server.events], [b"m" * 16])

    def test_replayExactDuplicate(self):
        """
        An accepted DATA packet sent again, byte for byte, is dropped as
        C{replay} and not delivered twice.
        """
        packet, _ = self.capturedData(self.net, self.client)
        self.server.receiveDatagram(packet, CLIENT_ADDR, START)
        self.assertEqual(len(self.server.events), 1)
        self.server.events = []
        self.assertServerDrops(self.server, packet, CLIENT_ADDR, "replay")
        self.assertServerDrops(self.server, packet, OTHER_ADDR, "replay")

    def test_replayWithinWindow(self):
        """
        Inside the window, a reordered packet not seen yet is accepted once,
        and its second copy is a C{replay}.
        """
        packets = []
        for i in range(3):
            self.client.sendMessage(self.client.session, b"%d" % i, START)
            packets.extend(p for p, _ in takeOutbox(self.client))
        a, b, c = packets
        for p in (c, a):
            self.server.receiveDatagram(p, CLIENT_ADDR, START)
        self.assertEqual([e.message for e in self.server.events], [b"2", b"0"])
        self.server.events = []
        for p in (c, a):
            self.assertServerDrops(self.server, p, CLIENT_ADDR, "replay")
        self.server.receiveDatagram(b, CLIENT_ADDR, START)
        self.assertEqual([e.message for e in self.server.events], [b"1"])
        self.server.events = []
        self.assertServerDrops(self.server, b, CLIENT_ADDR, "replay")

    def test_replayBelowWindow(self):
        """
        A packet older than the window (here 1024) is dropped as C{replay}
        whether or not it was ever seen.
        """
        config = Config(replayWindow=1024)
        net, server, client = connectedPair(config)
        client.sendMessage(client.session, b"delivered", net.now)
        net.pump()
        client.sendMessage(client.session, b"never delivered", net.now)
        [(old, _)] = takeOutbox(client)
        for i in range(1100):
            client.sendMessage(client.session, b"%d" % i, net.now)
        events = net.pump()
        self.assertEqual(len(events), 1100)
        session = serverSessionOf(server, client)
        self.assertEqual(session.epochs[0].window.highest - header(old)[2], 1100)
        self.assertServerDrops(server, old, CLIENT_ADDR, "replay")
        first = [d for s, dst, d in net.sent if dst == SERVER_ADDR and d[0] == 0x18][0]
        self.assertServerDrops(server, first, CLIENT_ADDR, "replay")

    def test_strictOrderingDropsReordered(self):
        """
        With C{ordering='strict'} a packet older than the newest accepted one
        is a C{replay} even if it was never seen.
        """
        net, server, client = connectedPair(Config(ordering="strict"))
        client.sendMessage(client.session, b"first", net.now)
        client.sendMessage(client.session, b"second", net.now)
        (first, _), (second, _) = takeOutbox(client)
        server.receiveDatagram(second, CLIENT_ADDR, net.now)
        self.assertEqual([e.message for e in server.events], [b"second"])
        server.events = []
        self.assertServerDrops(server, first, CLIENT_ADDR, "replay")
        self.assertServerDrops(server, second, CLIENT_ADDR, "replay")

    def test_unknownSessionIndex(self):
        """
        A DATA or CONTROL packet for an index the server never gave out is
        dropped as C{unknown-session}.
        """
        packet, _ = self.capturedData(self.net, self.client)
        for index in (0, 1, self.session.localIndex ^ 1, 0xFFFFFFFF):
            for t in (0x18, 0x19, 0x1A, 0x1B):
                data = P.encodeDataHeader(t, index, 1) + packet[P.DATA_HEADER_SIZE:]
                self.assertServerDrops(self.server, data, OTHER_ADDR, "unknown-session")

    def test_forgedPhaseOne(self):
        """
        Before any rekey there is no key for key phase 1: C{no-key}.
        """
        index = self.session.localIndex
        for t in (0x19, 0x1B):
            data = P.encodeDataHeader(t, index, 7) + os.urandom(40)
            self.assertServerDrops(self.server, data, CLIENT_ADDR, "no-key")

class AddressAndWindowTests(EngineTestCase):
    """
    The replay window and the peer address move only after authentication.
    """

    def test_forgeryMovesNothing(self):
        """
        A forged DATA packet (bad tag) with a high sequence number from a
        new address leaves the peer address and the replay window alone, as
        do a phase-1 forgery and a replay from a new address; the client's
        next real packet (sequence far below the forged one) is accepted.
        """
        net, server, client = connectedPair()
        session = serverSessionOf(server, client)
        window = session.epochs[0].window
        highest = window.highest
        index = session.localIndex
        attacker = ("198.51.100.66", 6666)
        for seq in (highest + 1, 2**40, 2**64 - 1):
            data = P.encodeDataHeader(0x18, index, seq) + os.urandom(48)
            self.assertServerDrops(server, data, attacker, "bad-tag")
            self.assertServerDrops(server, P.encodeDataHeader(0x1A, index, seq) + os.urandom(20),
                                   attacker, "bad-tag")
        phaseOne = P.encodeDataHeader(0x19, index, 2**40) + bytes(40)
        self.assertServerDrops(server, phaseOne, attacker, "no-key")
        confirm = [d for s, dst, d in net.sent if s == CLIENT_ADDR and d[0] == P.CONTROL][0]
        self.assertServerDrops(server, confirm, attacker, "replay")
        self.assertEqual(session.peerAddr, CLIENT_ADDR)
        self.assertEqual(window.highest, highest)
        self.assertWorks(net, client)
        self.assertEqual(session.peerAddr, CLIENT_ADDR)
        self.assertEqual(window.highest, highest + 1)
        self.assertEqual(net.undelivered, [])

    def test_delayedPacketFromElsewhereDoesNotRedirect(self):
        """
        An authentic packet held back by an attacker and delivered late from
        another address (after newer packets) is accepted once, but does not
        move the peer address: only the newest packet may.
        """
        net, server, client = connectedPair()
        session = serverSessionOf(server, client)
        client.sendMessage(client.session, b"held back", net.now)
        [(held, _)] = takeOutbox(client)
        client.sendMessage(client.session, b"newer", net.now)
        net.pump()
        attacker = ("198.51.100.66", 6666)
        server.receiveDatagram(held, attacker, net.now)
        self.assertEqual([e.message for e in server.events], [b"held back"])
        server.events = []
        self.assertEqual(session.peerAddr, CLIENT_ADDR)
        server.sendMessage(session, b"reply", net.now)
        self.assertEqual([dst for _, dst in takeOutbox(server)], [CLIENT_ADDR])

    def test_natRebinding(self):
        """
        An authentic packet from a new source port (NAT rebinding) moves the
        server's peer address, and the server's replies go there.
        """
        net, server, client = connectedPair()
        session = serverSessionOf(server, client)
        newAddr = ("127.0.0.1", 50123)
        forged = P.encodeDataHeader(0x18, session.localIndex, 10**6) + os.urandom(40)
        self.assertServerDrops(server, forged, newAddr, "bad-tag")
        self.assertEqual(session.peerAddr, CLIENT_ADDR)
        net.move(client, newAddr)
        client.sendMessage(client.session, b"from the new port", net.now)
        events = net.pump()
        self.assertEqual([e.message for w, e in events], [b"from the new port"])
        self.assertEqual(session.peerAddr, newAddr)
        server.sendMessage(session, b"reply", net.now)
        [(reply, dst)] = list(server.outbox)
        self.assertEqual(dst, newAddr)
        events = net.pump()
        self.assertEqual([(w, e.message) for w, e in events], [(newAddr, b"reply")])
        self.assertEqual(net.undelivered, [])
        self.assertEqual(client.session.peerAddr, SERVER_ADDR)


    def test_natRebindingDuringRekey(self):
        """
        The client's address changes just after the server has answered its
        REKEY_REQUEST (the answer goes to the old address and is lost). The
        client's later packets, authentic and each the newest so far, come
        from the new address under the old epoch; the server must follow
        them, so that its retransmitted answer reaches the client, the rekey
        completes and the session survives.
        """
        net, server, client = connectedPair(Config(rekeyAfterMessages=2))
        session = serverSessionOf(server, client)
        client.sendMessage(client.session, b"starts a rekey", net.now)
        for data, _ in takeOutbox(client):  # DATA, then the REKEY_REQUEST
            server.receiveDatagram(data, CLIENT_ADDR, net.now)
        self.assertEqual([ep.number for ep in session.epochs], [0, 1])
        newAddr = ("127.0.0.1", 50123)
        net.move(client, newAddr)
        net.pump()  # the REKEY_RESPONSE goes to the old address
        self.assertEqual(len(net.undelivered), 1)
        for i in range(5):
            net.advance(1.0)  # the client retransmits its request
            client.sendMessage(client.session, b"%d" % i, net.now)
            net.pump()
        self.assertEqual(session.peerAddr, newAddr)
        # the stuck rekey completed (and, at 2 messages a key, later ones too)
        self.assertGreaterEqual(client.session.sendEpoch.number, 1)
        self.assertEqual(session.sendEpoch.number, client.session.sendEpoch.number)
        self.assertWorks(net, client)

class _RecordingDefaultCipher:
    def __init__(self, key, inner, log, opens):
        self.key = key
        self.inner = inner
        self.log = log
        self.opens = opens

    def seal(self, sequence, header, plaintext):
        self.log.append((self.key, sequence))
        return self.inner.seal(sequence, header, plaintext)

    def open(self, sequence, header, ciphertext):
        plaintext = self.inner.open(sequence, header, ciphertext)
        self.opens.append((self.key, sequence))
        return plaintext

class RecordingDefaultSuite:
    """
    The default suite, with every seal and successful open recorded as
    C{(key bytes, sequence number)}.
    """

    def __init__(self, inner):
        self.inner = inner
        for name in ("name", "suiteId", "keySize", "tagSize",
                     "confidentialityLimit", "integrityLimit"):
            setattr(self, name, getattr(inner, name))
        self.seals = []
        self.opens = []
        self.keys = set()

    def newCipher(self, key):
        key = bytes(key)  # the session wipes its bytearray later
        self.keys.add(key)
        return _RecordingDefaultCipher(key, self.inner.newCipher(key), self.seals, self.opens)

class NonceTests(EngineTestCase):
    def test_noNonceReuseAcrossRekeys(self):
        """
        Over a session that rekeys many times (rekeyAfterMessages=5), with
        traffic both ways, no (key, sequence number) pair is ever sealed
        twice, by either side, and every message arrives.
        """
        from sudp.suites import DEFAULT_SUITE

        suite = RecordingDefaultSuite(DEFAULT_SUITE)
        config = Config(suites=(suite,), rekeyAfterMessages=5)
        net, server, client = connectedPair(config)
        session = serverSessionOf(server, client)
        sent = []
        for i in range(150):
            client.sendMessage(client.session, b"c%d" % i, net.now)
            sent.append(("server", b"c%d" % i))
            if i % 3:
                server.sendMessage(session, b"s%d" % i, net.now)
                sent.append((CLIENT_ADDR, b"s%d" % i))
            if i % 7 == 0:
                net.pump()
            if i % 20 == 0:
                net.advance(6)  # past oldKeyGrace: old epochs retire
        net.pump()
        got = [(w, e.message) for w, e in net.events if isinstance(e, MessageReceived)]
        self.assertEqual(Counter(got), Counter(sent))
        self.assertEqual([e for w, e in net.events if isinstance(e, SessionEnded)], [])
        self.assertGreaterEqual(client.session.stats["rekeys"], 20)
        self.assertGreaterEqual(session.stats["rekeys"], 20)
        self.assertEqual(len(suite.seals), len(set(suite.seals)))
        # every key is distinct: two per epoch (c2s and s2c), each made
        # once per side
        epochs = client.session.sendEpoch.number + 1
        self.assertGreaterEqual(len(suite.keys), 2 * client.session.stats["rekeys"])
        self.assertLessEqual(len(suite.keys), 2 * (epochs + 1))
        self.assertNotIn(bytes(32), suite.keys)
        # sealed and opened pairs match up: nothing opened that was not sealed
        self.assertLessEqual(set(suite.opens), set(suite.seals))

    def test_noNonceReuseWithLoss(self):
        """
        The same with a lossy, reordering link (a fixed pseudo-random third
        of datagrams lost, rekey requests and responses included, and time
        moving so that retransmissions and key retirement run): still no
        (key, sequence number) pair is sealed twice.
        """
        import random

        from sudp.suites import DEFAULT_SUITE

        rng = random.Random(1234)
        suite = RecordingDefaultSuite(DEFAULT_SUITE)
        config = Config(suites=(suite,), rekeyAfterMessages=4)
        net, server, client = connectedPair(config)
        session = serverSessionOf(server, client)
        net.drop = lambda data, src, dst: rng.random() < 0.33
        for i in range(300):
            if session.state == "open":
                server.sendMessage(session, b"s%d" % i, net.now)
            client.sendMessage(client.session, b"c%d" % i, net.now)
            # deliver what is queued in a shuffled order
            for engine, src in ((client, CLIENT_ADDR), (server, SERVER_ADDR)):
                out = takeOutbox(engine)
                rng.shuffle(out)
                engine.outbox = out
            net.pump()
            net.advance(rng.choice((0.0, 0.3, 1.1, 2.5)))
        self.assertEqual(client.session.state, "open")
        self.assertGreaterEqual(client.session.stats["rekeys"], 10)
        self.assertEqual(len(suite.seals), len(set(suite.seals)))
        self.assertLessEqual(set(suite.opens), set(suite.seals))
        received = [e.message for w, e in net.events if isinstance(e, MessageReceived)]
        self.assertEqual(len(received), len(set(received)))  # nothing delivered twice

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
        link, server, client = connectLink(self, config)
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
        link, server, client = connectLink(self, Config(rekeyAfterMessages=3))
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
        link, server, client = connectLink(self, Config(keepaliveInterval=5, idleTimeout=20))
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
        link, server, client = connectLink(self)
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
        link, server, client = connectLink(self)
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
        link, server, client = connectLink(self, config)
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
