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
import socket

from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from sudp import speedups
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
WIRE_CHUNK = 24  # datagrams sent before the receiving socket is read: well within its buffer


class Wire:
    """
    Real loopback sockets for the fast world: a receiving socket read with
    the speedups' C{Receiver} (C{engine.receiveRead}, the C loop over the
    read buffer itself), and two sending sockets whose addresses stand for
    the peer's own and another one.
    """

    def __init__(self, testCase):
        self.rx = self._socket(testCase)
        self.rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.rx.setblocking(False)
        self.senders = [self._socket(testCase) for _ in range(2)]
        self.home, self.other = [s.getsockname() for s in self.senders]
        self.receiver = native.Receiver(self.rx.fileno(), 8, 2048)
        self.reads = 0

    @staticmethod
    def _socket(testCase):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        testCase.addCleanup(s.close)
        s.bind(("127.0.0.1", 0))
        return s

    def deliver(self, engine, pending, now):
        """
        Send C{pending} C{(data, addr)} from the socket of each C{addr}, a
        chunk at a time, and have C{engine} read them all.
        """
        byAddr = dict(zip((self.home, self.other), self.senders))
        target = self.rx.getsockname()
        for i in range(0, len(pending), WIRE_CHUNK):
            chunk = pending[i:i + WIRE_CHUNK]
            for data, addr in chunk:
                byAddr[addr].sendto(data, target)
            count = 0
            while count < len(chunk):
                got, _ = engine.receiveRead(self.receiver, now)
                if not got:
                    raise AssertionError(f"{len(chunk) - count} datagrams lost on loopback")
                count += got
                self.reads += 1

    def close(self):
        for s in [self.rx] + self.senders:
            s.close()

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

def longTrace():
    """
    A long seeded trace with every kind of step, and two rekeys.
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
    return trace


class DataPathEquivalenceTests(unittest.TestCase):
    """
    Batches through the C loop behave exactly as one-by-one Python.
    """

    if native is None:
        skip = "the C speedups are not built here"

    def compare(self, trace, seed, receiverIsServer, config=None, sinks=False, wire=False):
        """
        Run C{trace} through twin worlds and compare them after every
        delivery. With C{sinks}, each receiving session has a sink
        (L{sudp.engine.IDatagramEngine.deliverTo}) that records its
        messages and raises on every one whose first byte is a multiple of
        7; what the sinks saw is compared too. With C{wire}, the fast
        world's datagrams go through loopback sockets and are read with
        C{receiveRead} (L{Wire}), its twin's one at a time as ever.
        """
        config = config or Config(rekeyAfterTime=60)
        self.wire = wire = Wire(self) if wire else None
        serverAddr, clientAddr, otherAddr = SERVER_ADDR, CLIENT_ADDR, OTHER_ADDR
        if wire is not None:  # the peer sends from the wire's sockets
            otherAddr = wire.other
            if receiverIsServer:
                clientAddr = wire.home
            else:
                serverAddr = wire.home
        fastServer, fastClient = seededPair(seed, config, serverAddr, clientAddr)
        slowServer, slowClient = seededPair(seed, pythonConfig(config), serverAddr, clientAddr)
        slowServer._fast = slowClient._fast = None  # the Python path only
        if receiverIsServer:
            fast, slow, sender, twinSender = fastServer, slowServer, fastClient, slowClient
            fromAddr = clientAddr
        else:
            fast, slow, sender, twinSender = fastClient, slowClient, fastServer, slowServer
            fromAddr = serverAddr
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
            back = serverAddr if receiverIsServer else clientAddr
            for data, _ in fastOut:
                sender.receiveDatagram(data, back, now)
                twinSender.receiveDatagram(data, back, now)

        def deliver():
            nonlocal pending, batches
            if wire is not None:
                wire.deliver(fast, pending, now)
                for d, a in pending:
                    slow.receiveDatagram(d, a, now)
                batches += len(pending) > 0
            # runs from one address, as a read would hand them over
            i = 0
            while wire is None and i < len(pending):
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
                addr = otherAddr if step[1] else fromAddr
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
        if wire is not None:
            wire.close()
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

    @settings(max_examples=60, deadline=None)
    @given(st.lists(steps, max_size=80), st.integers(0, 2**32), st.booleans(), st.booleans())
    def test_fromSockets(self, trace, seed, receiverIsServer, sinks):
        """
        Read from a real socket with C{receiveRead} (the C loop over the
        receiver's buffer, no bytes per datagram): the same events, drops,
        state, replies and sink calls as one-by-one Python.
        """
        if not speedups.batchedIO:
            raise unittest.SkipTest("the speedups' Receiver needs Linux")
        self.compare(trace, seed, receiverIsServer, sinks=sinks, wire=True)

    def test_longTraceFromSockets(self):
        """
        The long trace, both ways, under each built-in suite, read from
        real sockets: the twins agree, and the reads were batched.
        """
        if not speedups.batchedIO:
            raise unittest.SkipTest("the speedups' Receiver needs Linux")
        trace = longTrace()
        for receiverIsServer, suite in itertools.product((True, False), ("chacha20-poly1305", "aes-256-gcm")):
            config = Config(rekeyAfterTime=60, suites=(getSuite(suite),))
            fast, slow, batches = self.compare(trace, 11, receiverIsServer, config, sinks=True, wire=True)
            self.assertEqual(self.openers(fast), {nativeCipher or _CryptographyPacketCipher})
            self.assertGreater(len(self.sunk), 200)
            for reason in ("replay", "bad-tag"):
                self.assertGreater(fast.drops[reason], 10, dict(fast.drops))
            # deliveries, each read in one or more batches of up to 8
            self.assertGreater(batches, 50)
            self.assertGreater(self.wire.reads, batches)

    def test_longTrace(self):
        """
        A long seeded trace both ways, under each built-in suite (the
        native cipher against cryptography's), with every kind of step: the twins
        agree throughout, most datagrams take the C loop, and the mutated
        ones were really there (replays, forgeries, truncations, a rekey).
        """
        trace = longTrace()
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


class ReceiveReadTests(unittest.TestCase):
    """
    C{engine.receiveRead(receiver, now)}: one C{recvmmsg} through the C
    loop from the receiver's buffer (C{Receiver.readInto}).
    """

    if not speedups.batchedIO:
        skip = "the speedups' Receiver needs Linux"

    def setUp(self):
        self.wire = Wire(self)
        self.server, self.client = seededPair(21, Config(), clientAddr=self.wire.home)
        self.session = next(iter(self.server.sessions.values()))
        self.calls = []
        original = self.server.receiveDatagram
        self.server.receiveDatagram = lambda *a: (self.calls.append(a), original(*a))

    def send(self, datagrams, sock=None):
        for data in datagrams:
            (sock or self.wire.senders[0]).sendto(data, self.wire.rx.getsockname())

    def messages(self, count, prefix=b"m"):
        for i in range(count):
            self.client.sendMessage(self.client.session, prefix + b"%d" % i, START)
        return [d for d, _ in _take(self.client)]

    def test_nothingWaiting(self):
        """
        With nothing to read: C{(0, 0)}, and nothing happens.
        """
        self.assertEqual(self.server.receiveRead(self.wire.receiver, START), (0, 0))
        self.assertEqual((self.server.events, self.calls), ([], []))

    def test_commonCaseInC(self):
        """
        A read of DATA packets is opened and delivered with no Python
        C{receiveDatagram} call; the counts returned are the read's.
        """
        got = []
        self.server.deliverTo(self.session, got.append)
        datagrams = self.messages(8)
        self.send(datagrams)
        self.assertEqual(self.server.receiveRead(self.wire.receiver, START),
                         (8, sum(len(d) for d in datagrams)))
        self.assertEqual(got, [b"m%d" % i for i in range(8)])
        self.assertEqual((self.server.events, self.calls), ([], []))
        self.assertEqual(self.session.stats["received"], 8)

    def test_othersInOrder(self):
        """
        What is not the common case (junk, an empty datagram, a replay, a
        stranger's packet) goes to C{receiveDatagram} in its place in the
        read, with the address it came from; the rest stay in C until the
        stranger's packet starts validating its address, after which the
        session's packets go through Python too (it watches them).
        """
        datagrams = self.messages(3)
        stranger = self.wire.senders[1]
        self.send([datagrams[0], b"junk", b""])
        self.send([datagrams[1]], stranger)
        self.send([datagrams[0], datagrams[2]])
        got, size = self.server.receiveRead(self.wire.receiver, START)
        self.assertEqual(got, 6)
        home, other = self.wire.home, self.wire.other
        self.assertEqual([(d, a) for d, a, _ in self.calls],
                         [(b"junk", home), (b"", home), (datagrams[1], other), (datagrams[0], home),
                          (datagrams[2], home)])
        self.assertEqual([e.message for e in self.server.events], [b"m0", b"m1", b"m2"])
        self.assertEqual(self.server.drops["replay"], 1)

    def test_groRead(self):
        """
        A GRO read (one slot holding a GSO burst) is opened segment by
        segment from the buffer.
        """
        from sudp.udp import batching
        if not batching.enableGRO(self.wire.rx):
            raise unittest.SkipTest("the kernel refuses UDP_GRO")
        receiver = native.Receiver(self.wire.rx.fileno(), 4, 65535)
        datagrams = self.messages(20)
        batching.GSOSender(self.wire.senders[0]).send(datagrams, self.wire.rx.getsockname())
        count = 0
        while count < 20:
            got, _ = self.server.receiveRead(receiver, START)
            self.assertTrue(got)
            count += got
        self.assertEqual([e.message for e in self.server.events], [b"m%d" % i for i in range(20)])
        self.assertEqual(self.calls, [])

    def test_noReadWhileReading(self):
        """
        Python code that runs inside a read (here the engine's fallback)
        cannot read the same receiver again: RuntimeError; the receiver
        reads again afterwards.
        """
        receiver = self.wire.receiver
        original = self.server.receiveDatagram
        errors = []

        def reentrant(data, addr, now):
            for call in (receiver.read, lambda: receiver.readInto(self.server._fast, original, self.server, now)):
                try:
                    call()
                except RuntimeError as e:
                    errors.append(str(e))
            original(data, addr, now)

        self.server.receiveDatagram = reentrant
        self.send([b"junk"])
        self.assertEqual(self.server.receiveRead(receiver, START), (1, 4))
        self.assertEqual(errors, ["this Receiver is reading"] * 2)
        self.send(self.messages(1))
        self.assertEqual(self.server.receiveRead(receiver, START)[0], 1)
        self.assertEqual([e.message for e in self.server.events], [b"m0"])

    def test_fallbackRaising(self):
        """
        An exception from the fallback propagates (the port logs it); the
        receiver is free again.
        """
        def broken(*args):
            raise ZeroDivisionError()

        self.server.receiveDatagram = broken
        self.send([b"junk"])
        self.assertRaises(ZeroDivisionError, self.server.receiveRead, self.wire.receiver, START)
        self.send(self.messages(1))
        self.assertEqual(self.server.receiveRead(self.wire.receiver, START)[0], 1)

    def test_badArguments(self):
        """
        readInto checks what it is given; a closed socket is an OSError.
        """
        receiver = self.wire.receiver
        fast = self.server._fast
        self.assertRaises(TypeError, receiver.readInto, fast)
        self.assertRaises(TypeError, receiver.readInto, "not a data path", len, self.server, START)
        self.send([b"x"])
        self.server.events = ()
        self.assertRaises(TypeError, receiver.readInto, fast, len, self.server, START)
        self.wire.close()
        self.assertRaises(OSError, receiver.readInto, fast, len, self.server, START)

    def test_withoutTheDataPath(self):
        """
        An engine without the C data path reads with C{Receiver.read} and
        handles each datagram in Python: the same messages.
        """
        self.server._fast = None
        datagrams = self.messages(5)
        self.send(datagrams)
        self.assertEqual(self.server.receiveRead(self.wire.receiver, START), (5, sum(len(d) for d in datagrams)))
        self.assertEqual([e.message for e in self.server.events], [b"m%d" % i for i in range(5)])
        self.assertEqual(len(self.calls), 5)
