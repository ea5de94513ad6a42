# -*- test-case-name: sudp_test.udp.test_datapath -*-
"""
The C data path (L{sudp.udp.datapath} over L{sudp._speedups.DataPath})
against the pure-Python engine, datagram for datagram.

Two identical worlds are built from the same seeds (identities, engine
randomness, clock); where the native cipher is built, the fast world seals
and opens with it (OpenSSL's EVP from C) and its twin with the
C{cryptography} package, so the comparison covers the cipher too. The same datagrams, real ones from the peer's engine,
then replayed, reordered, bit-flipped, truncated, from other addresses,
across rekeys, are fed to one engine in batches through
C{receiveDatagrams} (the C loop with the Python path behind it) and to its
twin one at a time through C{receiveDatagram} alone. Everything observable
must be the same: events in order, drops by reason, engine and session
state, and what each engine sends.
"""

import itertools
import random

from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from sudp.speedups import native, nativeCipher
from sudp.suites import _CryptographyPacketCipher, getSuite
from sudp.udp.client import ClientEngine
from sudp.udp.config import Config
from sudp.udp.events import DeliveryFailed, MessageReceived, SessionEnded, SessionOpened
from sudp.udp.server import ServerEngine

from sudp_test.enginehelpers import (
    CLIENT_ADDR, clientState, pythonConfig, SERVER_ADDR, seededPair, serverState, START,
)

OTHER_ADDR = ("127.0.0.1", 40001)

def _take(engine):
    out, engine.outbox = engine.outbox, []
    return out

def describe(events):
    """
    Events as comparable values.
    """
    out = []
    for e in events:
        if isinstance(e, MessageReceived):
            out.append(("message", e.session.localIndex, e.message))
        elif isinstance(e, DeliveryFailed):
            out.append(("sink-failed", e.session.localIndex, e.message, repr(e.error)))
        elif isinstance(e, SessionEnded):
            out.append(("ended", e.session.localIndex, str(e.reason)))
        elif isinstance(e, SessionOpened):
            out.append(("opened", e.session.localIndex))
        else:
            out.append((type(e).__name__,))
    return out

# one step of a trace: what the sender does next, or what happens to a
# datagram it sent before
steps = st.one_of(
    st.tuples(st.just("send"), st.integers(0, 300)),
    st.tuples(st.just("burst"), st.integers(0, 300), st.integers(0, 40)),
    st.tuples(st.just("replay"), st.integers(0, 10**6)),
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 8 * 400)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.integers(0, 400)),
    st.tuples(st.just("swap"), st.integers(0, 10**6)),
    st.tuples(st.just("move"), st.booleans()),
    st.tuples(st.just("rekey")),
    st.tuples(st.just("keepalive")),
    st.tuples(st.just("wait"), st.floats(0, 40)),
    st.tuples(st.just("deliver")),
)

class DataPathEquivalenceTests(unittest.TestCase):
    """
    Batches through the C loop behave exactly as one-by-one Python.
    """

    if native is None:
        skip = "the C speedups are not built here"

    def compare(self, trace, seed, receiverIsServer, config=None, sinks=False):
        """
        Run C{trace} through twin worlds and compare them after every
        delivery. With C{sinks}, each receiving session has a sink
        (L{sudp.engine.IDatagramEngine.deliverTo}) that records its
        messages and raises on every one whose first byte is a multiple of
        7; what the sinks saw is compared too.
        """
        config = config or Config(rekeyAfterTime=60)
        fastServer, fastClient = seededPair(seed, config)
        slowServer, slowClient = seededPair(seed, pythonConfig(config))
        slowServer._fast = slowClient._fast = None  # the Python path only
        if receiverIsServer:
            fast, slow, sender, twinSender = fastServer, slowServer, fastClient, slowClient
            fromAddr = CLIENT_ADDR
        else:
            fast, slow, sender, twinSender = fastClient, slowClient, fastServer, slowServer
            fromAddr = SERVER_ADDR
        now = START
        pending = []  # (data, addr) not yet delivered
        history = []
        addr = fromAddr
        batches = 0
        sunk = {id(fast): [], id(slow): []}

        def sink(engine, session):
            def deliver(message):
                sunk[id(engine)].append((session.localIndex, message))
                if message and message[0] % 7 == 0:
                    raise ValueError(message[:4])
            return deliver

        if sinks:
            for engine in (fast, slow):
                session = engine.session if isinstance(engine, ClientEngine) else next(iter(engine.sessions.values()))
                engine.deliverTo(session, sink(engine, session))

        def senderSession(engine):
            if isinstance(engine, ClientEngine):
                return engine.session
            return next(iter(engine.sessions.values()), None)

        def answer():
            # both receivers answer identically; the answers go back to the
            # senders (rekey responses, keepalives), one copy to each twin
            fastOut, slowOut = _take(fast), _take(slow)
            self.assertEqual(fastOut, slowOut)
            back = SERVER_ADDR if receiverIsServer else CLIENT_ADDR
            for data, _ in fastOut:
                sender.receiveDatagram(data, back, now)
                twinSender.receiveDatagram(data, back, now)

        def deliver():
            nonlocal pending, batches
            # runs from one address, as a read would hand them over
            i = 0
            while i < len(pending):
                j = i
                while j < len(pending) and pending[j][1] == pending[i][1]:
                    j += 1
                datagrams = [d for d, _ in pending[i:j]]
                fast.receiveDatagrams(datagrams, pending[i][1], now)
                for d in datagrams:
                    slow.receiveDatagram(d, pending[i][1], now)
                batches += 1
                i = j
            pending = []
            answer()
            self.assertEqual(describe(fast.events), describe(slow.events))
            self.assertEqual(sunk[id(fast)], sunk[id(slow)])
            self.assertEqual(dict(fast.drops), dict(slow.drops))
            self.assertEqual(self.state(fast), self.state(slow))
            if sinks:  # a driver takes the events: the sinks get the next messages
                fast.nextEvents()
                slow.nextEvents()

        for step in trace:
            kind = step[0]
            session = senderSession(sender)
            twin = senderSession(twinSender)
            if session is None or session.state != "open":
                break
            if kind == "send":
                # the fast world's sender seals through its engine (the C
                # send half), its twin through the session alone
                payload = bytes([len(history) & 0xFF]) * step[1]
                sender.sendMessage(session, payload, now)
                twin.sendMessage(payload, now)
            elif kind == "burst":
                payloads = [bytes([(len(history) + i) & 0xFF]) * (step[1] + i) for i in range(step[2])]
                sender.sendMessages(session, payloads, now)
                for payload in payloads:
                    twin.sendMessage(payload, now)
            elif kind == "keepalive":
                session.onTimer(now + config.keepaliveInterval)
                twin.onTimer(now + config.keepaliveInterval)
            elif kind == "rekey":
                if session.rekey is None and session.rekeyAsk is None:
                    session._startRekey(now)
                    twin._startRekey(now)
            elif kind == "wait":
                now += step[1]
                for e in (sender, twinSender, fast, slow):
                    e.onTimer(now)
                answer()
            elif kind == "move":
                addr = OTHER_ADDR if step[1] else fromAddr
            elif kind == "deliver":
                deliver()
            elif history:
                k = step[1] % len(history)
                data = history[k]
                if kind == "replay":
                    pending.append((data, addr))
                elif kind == "flip":
                    bit = step[2] % (8 * len(data))
                    flipped = bytearray(data)
                    flipped[bit // 8] ^= 1 << (bit % 8)
                    pending.append((bytes(flipped), addr))
                elif kind == "truncate":
                    pending.append((data[: step[2] % len(data)], addr))
                elif kind == "swap" and len(pending) >= 2:
                    pending[-1], pending[-2] = pending[-2], pending[-1]
            out, twinOut = _take(sender), _take(twinSender)
            self.assertEqual(out, twinOut)  # the twins stay twins
            self.assertEqual(self.state(sender), self.state(twinSender))
            for data, _ in out:
                history.append(data)
                pending.append((data, addr))
        deliver()
        self.sunk = sunk[id(fast)]
        return fast, slow, batches

    def state(self, engine):
        return serverState(engine) if isinstance(engine, ServerEngine) else clientState(engine)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(steps, max_size=80), st.integers(0, 2**32))
    def test_serverReceives(self, trace, seed):
        """
        Client to server: any trace gives the same events, drops, state
        and replies through the C loop as through Python alone.
        """
        self.compare(trace, seed, receiverIsServer=True)

    @settings(max_examples=100, deadline=None)
    @given(st.lists(steps, max_size=80), st.integers(0, 2**32), st.booleans())
    def test_sinks(self, trace, seed, receiverIsServer):
        """
        With a sink on the receiving session (some of whose calls raise):
        the same messages reach the sinks, the same events (MessageReceived
        behind a pending event, DeliveryFailed for a sink that raised),
        drops, state and replies, through C as through Python.
        """
        self.compare(trace, seed, receiverIsServer, sinks=True)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(steps, max_size=80), st.integers(0, 2**32))
    def test_clientReceives(self, trace, seed):
        """
        Server to client, the same.
        """
        self.compare(trace, seed, receiverIsServer=False)

    def test_longTrace(self):
        """
        A long seeded trace both ways, under each built-in suite (the
        native cipher against cryptography's), with every kind of step: the twins
        agree throughout, most datagrams take the C loop, and the mutated
        ones were really there (replays, forgeries, truncations, a rekey).
        """
        rng = random.Random(2026)
        kinds = ["send"] * 12 + ["burst"] * 2 + ["replay", "flip", "truncate", "swap", "move", "keepalive", "wait", "deliver"] * 2
        trace = []
        for i in range(1500):
            kind = rng.choice(kinds)
            if kind == "send":
                trace.append(("send", rng.randrange(300)))
            elif kind == "burst":
                trace.append(("burst", rng.randrange(300), rng.randrange(40)))
            elif kind in ("replay", "swap"):
                trace.append((kind, rng.randrange(10**6)))
            elif kind == "flip":
                trace.append(("flip", rng.randrange(10**6), rng.randrange(8 * 400)))
            elif kind == "truncate":
                trace.append(("truncate", rng.randrange(10**6), rng.randrange(400)))
            elif kind == "move":
                trace.append(("move", rng.random() < 0.2))
            elif kind == "wait":
                trace.append(("wait", rng.random() * 5))
            else:
                trace.append((kind,))
            if i in (500, 1000):
                trace.append(("rekey",))
        cases = itertools.product((True, False), ("chacha20-poly1305", "aes-256-gcm"), (False, True))
        for receiverIsServer, suite, sinks in cases:
            config = Config(rekeyAfterTime=60, suites=(getSuite(suite),))
            fast, slow, batches = self.compare(trace, 11, receiverIsServer, config, sinks)
            self.assertEqual(self.openers(fast), {nativeCipher or _CryptographyPacketCipher})
            self.assertEqual(self.openers(slow), {_CryptographyPacketCipher})
            messages = sum(isinstance(e, MessageReceived) for e in fast.events)
            # with sinks the events were taken as they came: count what the sinks got
            self.assertGreater(len(self.sunk) if sinks else messages, 200 if sinks else 500)
            session = fast.session if isinstance(fast, ClientEngine) else next(iter(fast.sessions.values()))
            self.assertGreaterEqual(session.sendEpoch.number, 2)
            for reason in ("replay", "bad-tag"):
                self.assertGreater(fast.drops[reason], 10, dict(fast.drops))
            self.assertGreater(batches, 100)

    def openers(self, engine):
        """
        The types of the opening ciphers of C{engine}'s sessions.
        """
        sessions = [engine.session] if isinstance(engine, ClientEngine) else engine.sessions.values()
        return {type(ep.opener) for s in sessions for ep in s.epochs if ep is not None and ep.opener is not None}

    def burst(self, server, client):
        """
        Hand C{server} 50 messages of C{client} in one read.

        @return: the calls that went through C{server.receiveDatagram}.
        """
        calls = []
        original = server.receiveDatagram
        server.receiveDatagram = lambda *a: (calls.append(a), original(*a))
        for i in range(50):
            client.sendMessage(client.session, b"m%d" % i, START)
        server.receiveDatagrams([d for d, _ in _take(client)], CLIENT_ADDR, START)
        return calls

    def test_fastPathTaken(self):
        """
        The common case really goes through C: a burst of messages is
        delivered with no Python receiveDatagram call at all.
        """
        server, client = seededPair(7, Config())
        calls = self.burst(server, client)
        self.assertEqual([e.message for e in server.events], [b"m%d" % i for i in range(50)])
        self.assertEqual(calls, [])
        session = next(iter(server.sessions.values()))
        self.assertEqual(session.stats["received"], 50)

    def test_sinkTakesTheCommonCase(self):
        """
        With a sink and no event pending, a burst reaches the sink straight
        from the C loop: no event, no Python receiveDatagram call. With an
        event pending, messages queue behind it as events, in order.
        """
        server, client = seededPair(7, Config())
        session = next(iter(server.sessions.values()))
        got = []
        server.deliverTo(session, got.append)
        calls = self.burst(server, client)
        self.assertEqual(got, [b"m%d" % i for i in range(50)])
        self.assertEqual((server.events, calls), ([], []))
        self.assertEqual(session.stats["received"], 50)
        pending = object()
        server.events.append(pending)
        for i in range(3):
            client.sendMessage(client.session, b"n%d" % i, START)
        server.receiveDatagrams([d for d, _ in _take(client)], CLIENT_ADDR, START)
        self.assertEqual(len(got), 50)
        self.assertIs(server.events[0], pending)
        self.assertEqual([e.message for e in server.events[1:]], [b"n0", b"n1", b"n2"])
        server.deliverTo(session, None)
        server.events = []
        client.sendMessage(client.session, b"last", START)
        server.receiveDatagrams([d for d, _ in _take(client)], CLIENT_ADDR, START)
        self.assertEqual([e.message for e in server.events], [b"last"])

    def test_sinkClosingTheSession(self):
        """
        A sink that closes its session on the first message: the C loop
        looks again and the rest of the batch is not delivered (dropped as
        the Python path drops packets of a closed session).
        """
        server, client = seededPair(12, Config())
        session = next(iter(server.sessions.values()))
        got = []

        def closing(message):
            got.append(message)
            server.closeSession(session, START)

        server.deliverTo(session, closing)
        for i in range(5):
            client.sendMessage(client.session, b"m%d" % i, START)
        server.receiveDatagrams([d for d, _ in _take(client)], CLIENT_ADDR, START)
        self.assertEqual(got, [b"m0"])
        self.assertEqual(session.stats["received"], 1)
        self.assertEqual([type(e).__name__ for e in server.events], ["SessionEnded"])

    def test_sinkInterrupted(self):
        """
        A sink raising what is not an Exception (KeyboardInterrupt) is not
        turned into an event: it propagates, as it would from Python.
        """
        server, client = seededPair(13, Config())
        session = next(iter(server.sessions.values()))

        def interrupted(message):
            raise KeyboardInterrupt()

        server.deliverTo(session, interrupted)
        client.sendMessage(client.session, b"x", START)
        self.assertRaises(KeyboardInterrupt, server.receiveDatagrams, [d for d, _ in _take(client)], CLIENT_ADDR,
                          START)

    def test_rebindingGoesThroughPython(self):
        """
        A packet from a new address is not the common case: Python starts
        validating the new address, and the C loop takes the rest of the
        batch once the session has moved there.
        """
        server, client = seededPair(8, Config())
        for i in range(3):
            client.sendMessage(client.session, b"m%d" % i, START)
        server.receiveDatagrams([d for d, _ in _take(client)], OTHER_ADDR, START)
        session = next(iter(server.sessions.values()))
        self.assertEqual(session.peerAddr, CLIENT_ADDR)
        self.assertEqual([e.message for e in server.events], [b"m0", b"m1", b"m2"])
        for data, dst in _take(server):
            self.assertEqual(dst, OTHER_ADDR)
            client.receiveDatagram(data, SERVER_ADDR, START)
        for i in range(3, 6):
            client.sendMessage(client.session, b"m%d" % i, START)
        server.events = []
        server.receiveDatagrams([d for d, _ in _take(client)], OTHER_ADDR, START)
        self.assertEqual(session.peerAddr, OTHER_ADDR)
        self.assertEqual([e.message for e in server.events], [b"m3", b"m4", b"m5"])

    def test_openRaisingOtherErrors(self):
        """
        An opener that fails with anything but MalformedPacket is a bug:
        it propagates rather than being taken for a forgery.
        """
        server, client = seededPair(9, Config())
        client.sendMessage(client.session, b"x", START)
        session = next(iter(server.sessions.values()))
        ep = session.epochs[0]

        class Broken:
            def open(self, *args):
                raise RuntimeError("broken suite")

        ep.opener = Broken()
        self.assertRaises(RuntimeError, server.receiveDatagrams, [d for d, _ in _take(client)], CLIENT_ADDR, START)

    def test_badArguments(self):
        """
        The C loop checks what it is given.
        """
        server, _ = seededPair(10, Config())
        self.assertRaises(TypeError, server._fast.run, "not a list", 0, CLIENT_ADDR, START, [])
        self.assertRaises(TypeError, server._fast.run, [], 0, CLIENT_ADDR, START, "not a list")
        self.assertRaises(TypeError, server._fast.run, [])
        self.assertEqual(server._fast.run([b"\x18" + bytes(40)], 0, CLIENT_ADDR, START, []), 0)
        self.assertEqual(server._fast.run([bytearray(40)], 0, CLIENT_ADDR, START, []), 0)
