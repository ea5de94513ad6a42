# -*- test-case-name: sudp_test.stream.test_connection -*-
"""
Tests for L{sudp.stream.connection} (sframe's sans-IO engine), with
L{sudp.stream.events} and L{sudp.stream.outbox}: each transition on its
own, then hypothesis driving pairs of engines directly, without a reactor,
through every state with random chunking, timers, closes, pauses, keys and
damage, holding the invariants.
"""

import struct

from hypothesis import given, HealthCheck, settings, strategies as st
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from sudp.engine import IStreamEngine
from sudp.errors import ClientNotAuthorized, HandshakeFailed, HandshakeTimeout
from sudp.interfaces import IStreamKeyExchange
from sudp.keys import Identity
from sudp.stream.confirm import checkConfirm, refusal
from sudp.stream.connection import StreamConnection
from sudp.stream.events import (
    CloseStream,
    DataReceived,
    Ended,
    FrameReceived,
    Opened,
    SFrameClosed,
    StreamState,
)
from sudp.stream.frames import (
    CODE_ACCEPT,
    CODE_CLOSE,
    CODE_CONFIRM,
    CODE_KEEPALIVE,
    FrameError,
    HEADER_SIZE,
)
from sudp.stream.handshake import (
    AEAD_FRAMES,
    ClientKeyExchange,
    GCM_FRAMES,
    KeyExchangeStep,
    SEED003,
    ServerKeyExchange,
    StreamConfig,
)
from sudp.work import WorkNeeded

SERVER = Identity.generate()

CLIENT = Identity.generate()

OTHER = Identity.generate()

SUITES = (SEED003, AEAD_FRAMES, GCM_FRAMES)

REASONS = {"closed", "closed-by-peer", "bad-mac", "bad-checksum", "bad-sequence", "frame-too-large",
           "bad-rekey", "key-exhausted", "slow-peer", "idle-timeout", "protocol-error", "not-authorized", "application-error",
           "connection-lost"}

BOUNDED = settings(max_examples=300, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

def engines(config=None, identity=None, authorizedKeys=None, clientKX=None):
    """
    @return: a client and a server L{StreamConnection}, started at time 0.
    """
    config = config or StreamConfig()
    client = StreamConnection(clientKX or ClientKeyExchange(SERVER.publicKey, config, identity=identity),
                              config, True)
    server = StreamConnection(ServerKeyExchange(SERVER, config), config, False, authorizedKeys)
    client.start(0.0, ("10.0.0.1", 5000), ("10.0.0.2", 9001))
    server.start(0.0, ("10.0.0.2", 9001), ("10.0.0.1", 5000))
    return client, server

def shuttle(a, b, now=0.0):
    """
    Move bytes both ways until neither has anything to send.
    """
    for _ in range(20):
        ab, ba = a.dataToSend(), b.dataToSend()
        if not ab and not ba:
            return
        if ab:
            b.receiveData(ab, now)
        if ba:
            a.receiveData(ba, now)
    raise AssertionError("still talking")

def opened():
    client, server = engines()
    shuttle(client, server)
    client.nextEvents(), server.nextEvents()
    return client, server

class TransitionTests(unittest.TestCase):
    """
    Each state change of L{StreamConnection}, one at a time.
    """

    def test_interfaces(self):
        """
        The engine provides L{IStreamEngine}; both sudp/1 key exchanges
        provide L{IStreamKeyExchange}.
        """
        client, server = engines()
        verifyObject(IStreamEngine, client)
        verifyObject(IStreamKeyExchange, ClientKeyExchange(SERVER.publicKey, StreamConfig()))
        verifyObject(IStreamKeyExchange, ServerKeyExchange(SERVER, StreamConfig()))

    def test_start(self):
        """
        A started client has its INIT to send; a server waits; both are in
        HANDSHAKE with the handshake clock running.
        """
        client, server = engines()
        init = client.dataToSend()
        self.assertEqual(struct.unpack(">H", init[:2])[0], len(init) - 2)
        self.assertEqual(server.dataToSend(), b"")
        for engine in (client, server):
            self.assertIs(engine.state, StreamState.HANDSHAKE)
            self.assertEqual(engine.timers(), {"handshake": 10.0})
            self.assertEqual(engine.nextDeadline(), 10.0)
            self.assertEqual(engine.nextEvents(), [])

    def test_handshakeConfirmingOpen(self):
        """
        INIT puts the server in CONFIRMING (RESP sent); RESP puts the client
        in CONFIRMING (CONFIRM sent); CONFIRM opens the server (ACCEPT
        sent); ACCEPT opens the client. Each reports Opened once, with the
        peer's key and the suite.
        """
        client, server = engines()
        server.receiveData(client.dataToSend(), 1.0)
        self.assertIs(server.state, StreamState.CONFIRMING)
        client.receiveData(server.dataToSend(), 1.0)
        self.assertIs(client.state, StreamState.CONFIRMING)
        self.assertEqual(client.nextEvents(), [])
        server.receiveData(client.dataToSend(), 1.0)
        self.assertIs(server.state, StreamState.OPEN)
        [event] = server.nextEvents()
        self.assertEqual((type(event), event.peerKey, event.suite), (Opened, None, SEED003.name))
        client.receiveData(server.dataToSend(), 1.0)
        self.assertIs(client.state, StreamState.OPEN)
        [event] = client.nextEvents()
        self.assertEqual((type(event), event.peerKey, event.suite), (Opened, SERVER.publicKey, SEED003.name))
        self.assertEqual(client.timers(), {"idle": 301.0, "keepalive": 60.0, "rekey": 1.0 + StreamConfig().rekeyAfterTime})

    def test_handshakeTimeout(self):
        """
        Not open by handshakeTimeout: Ended (protocol-error, the
        HandshakeTimeout for connect, refused) then an abort; nothing is
        due after.
        """
        client, _ = engines()
        client.handleTimer(9.9)
        self.assertEqual(client.nextEvents(), [])
        client.handleTimer(10.0)
        ended, close = client.nextEvents()
        self.assertEqual((ended.reason.reason, ended.refused, close.abort), ("protocol-error", True, True))
        self.assertIsInstance(ended.handshakeError, HandshakeTimeout)
        self.assertIs(client.state, StreamState.CLOSED)
        self.assertIsNone(client.nextDeadline())

    def test_badHandshakeMessage(self):
        """
        A handshake message over the length limit ends the server at once.
        """
        _, server = engines()
        server.receiveData(b"\xff\xff", 0.5)
        ended, close = server.nextEvents()
        self.assertEqual((ended.reason.reason, ended.refused, close.abort), ("protocol-error", True, True))
        self.assertIsInstance(ended.handshakeError, HandshakeFailed)

    def test_authorizedClient(self):
        """
        A client proving an authorized key opens, with that key as the
        server's peerKey.
        """
        client, server = engines(identity=CLIENT, authorizedKeys=frozenset([CLIENT.publicKey]))
        shuttle(client, server)
        self.assertEqual((client.state, server.state), (StreamState.OPEN, StreamState.OPEN))
        self.assertEqual(server.peerKey, CLIENT.publicKey)

    def test_refusedClient(self):
        """
        A client without an authorized key gets a CLOSE with the reason
        instead of ACCEPT: the server ends (not-authorized, refused, the
        CLOSE flushed first), the client's connect fails with
        ClientNotAuthorized.
        """
        for identity in (None, OTHER):
            client, server = engines(identity=identity, authorizedKeys=frozenset([CLIENT.publicKey]))
            shuttle(client, server)
            ended, close = server.nextEvents()
            self.assertEqual((ended.reason.reason, ended.refused, close.abort), ("not-authorized", True, False))
            ended, close = client.nextEvents()
            self.assertEqual(ended.reason.reason, "not-authorized")
            self.assertIsInstance(ended.handshakeError, ClientNotAuthorized)
            self.assertEqual((client.state, server.state), (StreamState.CLOSED, StreamState.CLOSED))

    def test_dataBeforeConfirm(self):
        """
        A server in CONFIRMING given anything but CONFIRM ends with
        protocol-error.
        """
        client, server = engines()
        server.receiveData(client.dataToSend(), 0.0)
        control = client._outbox.control
        client._outbox.control = lambda code, payload=b"": control(0, b"sneaky")  # DATA for its CONFIRM
        client.receiveData(server.dataToSend(), 0.0)
        server.receiveData(client.dataToSend(), 0.0)
        ended, _ = server.nextEvents()
        self.assertEqual(ended.reason.reason, "protocol-error")

    def test_dataAndFrames(self):
        """
        Open: DATA arrives as DataReceived, other codes as FrameReceived;
        KEEPALIVE is silent; a reserved code ends the connection.
        """
        client, server = opened()
        client.sendData(b"hello", 1.0)
        client.writeFrame(7, b"seven", 1.0)
        client._outbox.control(CODE_KEEPALIVE)
        server.receiveData(client.dataToSend(), 1.0)
        data, frame = server.nextEvents()
        self.assertEqual((type(data), data.data), (DataReceived, b"hello"))
        self.assertEqual((type(frame), frame.code, frame.payload), (FrameReceived, 7, b"seven"))
        self.assertRaises(ValueError, client.writeFrame, CODE_CONFIRM, b"", 1.0)
        self.assertRaises(ValueError, client.writeFrame, 2**32, b"", 1.0)
        client._outbox.control(CODE_CONFIRM)
        server.receiveData(client.dataToSend(), 1.0)
        [close] = server.nextEvents()
        self.assertEqual((server.ending.reason, close.abort), ("protocol-error", True))

    def test_coalescing(self):
        """
        Writes wait for the timer due at the time of the first (one reactor
        turn), then go out in one frame; a full frame's worth goes at once.
        """
        client, server = opened()
        client.sendData(b"a", 2.0)
        client.sendData(bytearray(b"b"), 2.0)
        self.assertEqual(client.dataToSend(), b"")
        self.assertEqual(client.timers()["flush"], 2.0)
        client.handleTimer(2.0)
        wire = client.dataToSend()
        self.assertEqual(len(wire), HEADER_SIZE + 2 + 8)
        server.receiveData(wire, 2.0)
        self.assertEqual([e.data for e in server.nextEvents()], [b"ab"])
        client.sendData(b"x" * 65536, 3.0)
        self.assertGreater(len(client.dataToSend()), 65536)
        self.assertNotIn("flush", client.timers())

    def test_closeFromEitherSide(self):
        """
        close() flushes queued bytes, sends CLOSE and asks for the stream to
        close; the peer reports the data, then closes its stream without
        sending more; when the streams go, the closer ends "closed", the
        peer "closed-by-peer", both clean.
        """
        for closer in (0, 1):
            pair = opened()
            a, b = pair[closer], pair[1 - closer]
            a.sendData(b"last", 4.0)
            a.close(4.0)
            self.assertEqual([type(e) for e in a.nextEvents()], [CloseStream])
            self.assertTrue(a.closing)
            b.receiveData(a.dataToSend(), 4.0)
            data, close = b.nextEvents()
            self.assertEqual((data.data, close.abort), (b"last", False))
            b.sendData(b"ignored", 4.0)
            self.assertEqual(b.dataToSend(), b"")
            a.connectionLost(4.1, clean=True)
            b.connectionLost(4.1, clean=True)
            [ended] = a.nextEvents()
            self.assertEqual((ended.reason.reason, ended.reason.clean, ended.handshakeError), ("closed", True, None))
            [ended] = b.nextEvents()
            self.assertEqual((ended.reason.reason, ended.reason.clean), ("closed-by-peer", True))

    def test_connectionLost(self):
        """
        A stream that goes away unasked ends connection-lost; during the
        key exchange with the HandshakeFailed for connect, not refused.
        """
        client, server = engines()
        client.connectionLost(1.0, clean=True, detail="gone")
        [ended] = client.nextEvents()
        self.assertEqual((ended.reason.reason, ended.reason.detail, ended.refused),
                         ("connection-lost", "gone", False))
        self.assertIn("ended during the sframe key exchange", str(ended.handshakeError))
        client, server = opened()
        server.connectionLost(1.0)
        [ended] = server.nextEvents()
        self.assertEqual((ended.reason.reason, ended.handshakeError), ("connection-lost", None))
        server.connectionLost(1.0)
        self.assertEqual(server.nextEvents(), [])

    def test_slowPeerAndPause(self):
        """
        A frame started but not finished within frameTimeout ends the
        connection (slow-peer); no clock runs while reading is paused, and
        resuming gives the frame a fresh one.
        """
        client, server = opened()
        client.sendData(b"x" * 100, 0.0)
        client.handleTimer(0.0)
        wire = client.dataToSend()
        server.receiveData(wire[:20], 1.0)
        self.assertEqual(server.timers()["slow-peer"], 31.0)
        server.pauseReading(2.0)
        self.assertNotIn("slow-peer", server.timers())
        self.assertTrue(server.paused)
        server.resumeReading(50.0)
        self.assertEqual(server.timers()["slow-peer"], 80.0)
        server.handleTimer(80.0)
        [close] = server.nextEvents()
        self.assertEqual((server.ending.reason, close.abort), ("slow-peer", True))
        server.receiveData(wire[20:], 80.0)
        self.assertEqual(server.nextEvents(), [])  # nothing is delivered after the end

    def test_idleAndKeepalive(self):
        """
        A KEEPALIVE goes out after keepaliveInterval without sending; a
        connection that hears nothing for idleTimeout ends (idle-timeout).
        """
        client, server = opened()
        self.assertEqual(client.nextDeadline(), 60.0)
        client.handleTimer(60.0)
        server.receiveData(client.dataToSend(), 60.0)
        self.assertEqual(server.nextEvents(), [])
        self.assertEqual(server.timers()["idle"], 360.0)
        client.handleTimer(300.0)
        [close] = client.nextEvents()
        self.assertEqual((client.ending.reason, close.abort), ("idle-timeout", True))

    def test_applicationFailed(self):
        """
        An application that raised ends the connection: application-error.
        """
        client, _ = opened()
        client.applicationFailed(1.0)
        [close] = client.nextEvents()
        self.assertEqual((client.ending.reason, close.abort), ("application-error", True))
        client.connectionLost(1.0)
        [ended] = client.nextEvents()
        self.assertEqual(ended.reason.reason, "application-error")

    def test_abort(self):
        """
        abort() drops queued bytes and asks for the stream to go at once.
        """
        client, _ = opened()
        client.sendData(b"dropped", 1.0)
        client.abort(1.0)
        self.assertEqual(client.dataToSend(), b"")
        self.assertEqual([e.abort for e in client.nextEvents()], [True])

    def test_rekeyByTime(self):
        """
        The writer's next rotation by time is among the deadlines; when it
        is due, handleTimer sends the REKEY frame, and the peer reads on
        under the new keys.
        """
        client, server = engines(StreamConfig(rekeyAfterTime=20.0))
        shuttle(client, server)
        client.nextEvents(), server.nextEvents()
        self.assertEqual(client.nextDeadline(), 20.0)
        client.handleTimer(20.0)
        client.sendData(b"after", 20.0)
        client.handleTimer(20.0)
        server.receiveData(client.dataToSend(), 20.0)
        self.assertEqual([e.data for e in server.nextEvents()], [b"after"])
        self.assertEqual(client.timers()["rekey"], 40.0)
        self.assertEqual(client.timers()["keepalive"], 80.0)

    def test_keyExhausted(self):
        """
        A writer whose keys cannot go on (key-exhausted) ends the
        connection with that reason; nothing more is written, not even a
        CLOSE.
        """
        for act in (lambda c: c.sendData(b"x" * 70000, 1.0), lambda c: c.writeFrame(9, b"x", 1.0),
                    lambda c: (c.sendData(b"x", 1.0), c.close(1.0)), lambda c: c.handleTimer(61.0)):
            client, _ = opened()
            writer = client._outbox.writer

            def exhausted(*args):
                raise FrameError("key-exhausted", "no key chain")

            writer.frame = writer.frames = exhausted
            act(client)
            self.assertEqual(client.dataToSend(), b"")
            self.assertEqual(client.ending.reason, "key-exhausted")
            self.assertEqual([e.abort for e in client.nextEvents() if type(e) is CloseStream][-1:], [True])

    def test_work(self):
        """
        A key exchange asking for work: WorkNeeded is reported; bytes that
        arrive meanwhile wait; workDone goes on; a stale job is ignored;
        workFailed ends the connection with protocol-error.
        """
        config = StreamConfig()
        client, server = engines(clientKX=_Deferring(ClientKeyExchange(SERVER.publicKey, config)))
        [need] = client.nextEvents()
        self.assertIsInstance(need, WorkNeeded)
        self.assertEqual(client.dataToSend(), b"")
        client.workDone(object(), 0.0)
        self.assertEqual(client.dataToSend(), b"")
        client.workDone(need.job, 0.0)
        shuttle(client, server)
        self.assertIs(client.state, StreamState.OPEN)

        client, _ = engines(clientKX=_Deferring(ClientKeyExchange(SERVER.publicKey, config)))
        [need] = client.nextEvents()
        client.receiveData(b"held", 0.0)
        client.workFailed(need.job, 0.0)
        ended, close = client.nextEvents()
        self.assertEqual((ended.reason.reason, close.abort), ("protocol-error", True))

    def test_workCancelledWhenLost(self):
        """
        The stream going away cancels the work asked for.
        """
        client, _ = engines(clientKX=_Deferring(ClientKeyExchange(SERVER.publicKey, StreamConfig())))
        [need] = client.nextEvents()
        client.connectionLost(1.0)
        self.assertTrue(need.job.cancelled)

    def test_keyExchangeStep(self):
        """
        An empty step is waiting; one with anything to do is not.
        """
        self.assertTrue(KeyExchangeStep().waiting)
        self.assertFalse(KeyExchangeStep(b"x").waiting)
        self.assertFalse(KeyExchangeStep(work=WorkNeeded(None)).waiting)
        self.assertIn("toSend=1", repr(KeyExchangeStep(b"x")))

    def test_closedReasons(self):
        """
        Only closes by either side are clean; describe() gives reason and
        detail.
        """
        self.assertEqual([SFrameClosed(r).clean for r in ("closed", "closed-by-peer", "bad-mac")],
                         [True, True, False])
        self.assertEqual(SFrameClosed("bad-mac", "x").describe(), "bad-mac: x")
        self.assertIn("Opened", repr(Opened(None, "s")))

class ConfirmTests(unittest.TestCase):
    """
    L{sudp.stream.confirm}: the first frames under the new keys.
    """

    def test_checkConfirm(self):
        """
        Only a CONFIRM is accepted; a client the key exchange verified keeps
        its key and may not add a proof; an anonymous CONFIRM with no
        authorized keys is let in as anonymous.
        """
        self.assertRaises(HandshakeFailed, checkConfirm, 0, b"", None, b"t" * 32, None)
        self.assertRaises(ClientNotAuthorized, checkConfirm, CODE_CONFIRM, b"x" * 96, OTHER.publicKey,
                          b"t" * 32, None)
        self.assertIs(checkConfirm(CODE_CONFIRM, b"", OTHER.publicKey, b"t" * 32, None), OTHER.publicKey)
        self.assertIsNone(checkConfirm(CODE_CONFIRM, b"", None, b"t" * 32, None))

    def test_refusal(self):
        """
        ACCEPT opens; CLOSE refuses with its text (ClientNotAuthorized);
        anything else is a protocol error.
        """
        self.assertIsNone(refusal(CODE_ACCEPT, b""))
        closed, error = refusal(CODE_CLOSE, b"go away")
        self.assertEqual((closed.reason, closed.detail), ("not-authorized", "go away"))
        self.assertIsInstance(error, ClientNotAuthorized)
        closed, error = refusal(0, b"")
        self.assertEqual((closed.reason, error), ("protocol-error", None))

class _Job:
    cancelled = False

    def run(self):
        pass

    def cancel(self):
        self.cancelled = True

class _Deferring:
    """
    A key exchange that asks for work before it starts the one it wraps.
    """

    isClient = True

    def __init__(self, inner):
        self.inner = inner

    def connected(self, localAddr, peerAddr):
        self.inner.connected(localAddr, peerAddr)

    def start(self, now):
        return KeyExchangeStep(work=WorkNeeded(_Job()))

    def workDone(self, job, now):
        return self.inner.start(now)

    def receive(self, data, now):
        return self.inner.receive(data, now)

class Side:
    """
    One engine of a modelled stream, with what its application saw.
    """

    def __init__(self, engine):
        self.engine = engine
        self.events = []
        self.received = bytearray()  # what its application was given
        self.sent = bytearray()  # what its application sent while the engine took it
        self.inbox = bytearray()  # bytes on the way to it
        self.finAfterInbox = False  # the peer closed its stream: EOF after the inbox
        self.closingStream = False  # it asked its stream to close; that happens later
        self.gone = False  # its stream has ended (connectionLost given)
        self.silentFrom = None  # the call after which it must write nothing more
        self.stopped = False  # an end was decided: nothing more may be delivered

class Model:
    """
    Two engines joined by a modelled TCP stream: bytes in order, a close
    that lets written bytes arrive first, an abort that loses them.
    """

    def __init__(self, test, client, server, mangle=None):
        self.test = test
        self.sides = [Side(client), Side(server)]
        self.now = 0.0
        self.calls = 0
        self.mangle = mangle  # called with the bytes the client writes: damage in flight
        self.cause = None  # (side, API call) being made
        self.collect()

    def peer(self, side):
        return self.sides[1 - self.sides.index(side)]

    def collect(self):
        """
        Take both engines' output and events, applying CloseStream, until
        neither has more.
        """
        self.calls += 1
        while self.collectOnce():
            pass

    def collectOnce(self):
        more = False
        for side in self.sides:
            out = side.engine.dataToSend()
            if out:
                self.test.assertIsNone(side.silentFrom, "output after CLOSE or an end")
                if side is self.sides[0] and self.mangle is not None:
                    out = self.mangle(out)
                if not side.gone and not self.peer(side).gone:
                    self.peer(side).inbox += out
            engine = side.engine
            if side.silentFrom is None and (engine.closing or engine.ending is not None):
                side.silentFrom = self.calls
            for event in engine.nextEvents():
                more = True
                self.event(side, event)
        return more

    def event(self, side, event):
        ended = any(type(e) is Ended for e in side.events)
        if type(event) in (DataReceived, FrameReceived, Opened):
            self.test.assertFalse(ended or side.stopped, "delivered after the end")
        side.events.append(event)
        if type(event) is DataReceived:
            side.received += event.data
        elif type(event) is CloseStream:
            # the application's own close goes on reading; any other close is an end
            side.stopped = side.stopped or self.cause != (side, "close")
            if event.abort:
                self.lose(side, False)
                self.peer(side).inbox.clear()
                self.lose(self.peer(side), False)
            else:
                self.peer(side).finAfterInbox = True
                side.closingStream = True
        elif type(event) is Ended:
            self.test.assertFalse(ended, "ended twice")
            self.test.assertIn(event.reason.reason, REASONS)

    def lose(self, side, clean):
        if not side.gone:
            side.gone = True
            side.inbox.clear()
            side.engine.connectionLost(self.now, clean, "modelled")

    # -- actions --------------------------------------------------------------------

    def deliver(self, index, size):
        side = self.sides[index]
        if side.gone or side.engine.paused:
            return
        if side.closingStream and (size % 2 or not side.inbox):
            self.lose(side, True)  # its written bytes have gone: the stream closes
        elif side.inbox:
            chunk = bytes(side.inbox[:size])
            del side.inbox[:size]
            side.engine.receiveData(chunk, self.now)
        elif side.finAfterInbox:
            self.lose(side, True)
        self.collect()

    def send(self, index, data):
        engine = self.sides[index].engine
        taking = engine.state is StreamState.OPEN and not engine.closing and engine.ending is None
        engine.sendData(data, self.now)
        if taking:
            self.sides[index].sent += data
        self.collect()

    def advance(self, seconds, until=None):
        self.now = until if until is not None else self.now + seconds
        for side in self.sides:
            deadline = side.engine.nextDeadline()
            if deadline is not None and deadline <= self.now:
                side.engine.handleTimer(self.now)
        self.collect()

    def call(self, index, name):
        self.cause = (self.sides[index], name)
        getattr(self.sides[index].engine, name)(self.now)
        self.collect()
        self.cause = None

    def finish(self, closer=0):
        """
        Deliver everything, run the clocks out, close what is still open
        (from side C{closer}).
        """
        for _ in range(2000):
            if all(side.gone for side in self.sides):
                return
            for i, side in enumerate(self.sides):
                if side.engine.paused:
                    self.call(i, "resumeReading")
                self.deliver(i, 1 << 20)
            if not any(side.inbox for side in self.sides):
                engine = self.sides[closer].engine
                if engine.state is StreamState.OPEN and not engine.closing and engine.ending is None:
                    self.call(closer, "close")
                else:
                    deadlines = [d for d in (s.engine.nextDeadline() for s in self.sides) if d is not None]
                    if deadlines:
                        self.advance(0.0, until=max(self.now, min(deadlines)))
                    else:
                        for side in self.sides:  # nothing more can happen: the streams go
                            self.lose(side, False)
                        self.collect()
        raise AssertionError("the connection never ended")

    def check(self, exact=True):
        """
        The invariants: each side ended once, with a reason, last (but a
        CloseStream); each application got a prefix of what the other sent,
        all of it when it was closed by its peer.
        """
        for side in self.sides:
            ends = [i for i, e in enumerate(side.events) if type(e) is Ended]
            self.test.assertEqual(len(ends), 1, side.events)
            self.test.assertEqual({type(e) for e in side.events[ends[0] + 1:]} - {CloseStream}, set())
            reason = side.events[ends[0]].reason
            self.test.assertIsInstance(reason, SFrameClosed)
            self.test.assertIs(side.engine.state, StreamState.CLOSED)
            self.test.assertIsNone(side.engine.nextDeadline())
            sent = self.peer(side).sent
            self.test.assertEqual(bytes(side.received), bytes(sent[:len(side.received)]))
            if exact and reason.reason == "closed-by-peer":
                self.test.assertEqual(bytes(side.received), bytes(sent))

    def ended(self, index):
        [event] = [e for e in self.sides[index].events if type(e) is Ended]
        return event

deliveries = st.tuples(st.just("deliver"), st.integers(0, 1), st.integers(1, 400))

actions = st.one_of(
    deliveries, deliveries, deliveries, deliveries,
    st.tuples(st.just("send"), st.integers(0, 1), st.binary(min_size=1, max_size=300)),
    st.tuples(st.just("send"), st.integers(0, 1), st.binary(min_size=1, max_size=300)),
    st.tuples(st.just("advance"), st.sampled_from([0.0, 0.5, 5.0]), st.none()),
    st.tuples(st.just("advance"), st.sampled_from([31.0, 61.0, 301.0]), st.none()),
    st.tuples(st.just("call"), st.integers(0, 1), st.sampled_from(["pauseReading", "resumeReading", "handleTimer"])),
    st.tuples(st.just("call"), st.integers(0, 1), st.sampled_from(["close", "abort"])),
)

def run(model, steps, warm=False, size=1 << 20, closer=0):
    """
    Run C{steps} on C{model} (after the key exchange, in pieces of
    C{size}, if C{warm}), then finish it, closing from side C{closer}.
    """
    for _ in range(2000 if warm else 0):
        if all(side.engine.state is StreamState.OPEN or side.gone for side in model.sides):
            break
        model.deliver(0, size)
        model.deliver(1, size)
    for kind, a, b in steps:
        if kind == "deliver":
            model.deliver(a, b)
        elif kind == "send":
            model.send(a, b)
        elif kind == "advance":
            model.advance(a)
        else:
            model.call(a, b)
    model.finish(closer)

class PairTests(unittest.TestCase):
    """
    hypothesis drives a client and a server engine through every state.
    """

    @BOUNDED
    @given(suite=st.sampled_from(SUITES), identity=st.sampled_from([None, CLIENT, OTHER]),
           authorized=st.sampled_from([None, (CLIENT,), (OTHER, CLIENT)]),
           payload=st.integers(128, 1024), steps=st.lists(actions, max_size=60), warm=st.booleans(),
           size=st.integers(1, 200), closer=st.integers(0, 1))
    def test_anyInterleaving(self, suite, identity, authorized, payload, steps, warm, size, closer):
        """
        Any interleaving of chunked delivery, writes, timers, closes and
        aborts from either side, pauses, with authorized or refused client
        keys: the invariants hold, and a client is refused exactly when
        the server holds keys that its key is not among.
        """
        config = StreamConfig(suites=(suite,), maxFramePayload=payload)
        keys = None if authorized is None else frozenset(k.publicKey for k in authorized)
        client, server = engines(config, identity, keys)
        model = Model(self, client, server)
        run(model, steps, warm, size, closer)
        model.check()
        refused = keys is not None and (identity is None or identity.publicKey not in keys)
        opened = any(type(e) is Opened for e in model.sides[1].events)
        if opened:
            self.assertFalse(refused)
            self.assertEqual(server.peerKey, None if identity is None else identity.publicKey)
        if refused:
            self.assertFalse(opened)

    @BOUNDED
    @given(suite=st.sampled_from(SUITES), where=st.integers(0, 999), bit=st.integers(0, 7),
           damage=st.sampled_from(["flip", "truncate", "insert"]), garbage=st.binary(min_size=1, max_size=40),
           data=st.integers(0, 1500).map(lambda n: (bytes(range(256)) * 6)[:n]), steps=st.lists(actions, max_size=60), warm=st.booleans())
    def test_damageInFlight(self, suite, where, bit, damage, garbage, data, steps, warm):
        """
        The client's bytes damaged in flight (one bit flipped, the stream
        cut, garbage put in) at any position: the server's application gets
        a prefix of what was sent and nothing after the end; the server
        never ends by its peer's CLOSE past the damage.
        """
        state = {"seen": 0, "done": False}
        position = where * (90 + len(data)) // 1000  # the client's INIT and CONFIRM are some 90 bytes

        def mangle(out):
            start, state["seen"] = state["seen"], state["seen"] + len(out)
            if state["done"] and damage == "truncate":
                return b""  # the stream was cut: nothing more arrives
            if state["done"] or not start <= position < state["seen"]:
                return out
            state["done"] = True
            at = position - start
            if damage == "flip":
                return out[:at] + bytes([out[at] ^ (1 << bit)]) + out[at + 1:]
            if damage == "truncate":
                return out[:at]
            return out[:at] + garbage + out[at:]

        config = StreamConfig(suites=(suite,))
        client, server = engines(config)
        model = Model(self, client, server, mangle)
        run(model, [("send", 0, data)] * bool(data) + steps, warm)
        model.check(exact=False)
        if state["done"]:  # the client's CLOSE never arrives intact past the damage
            self.assertNotEqual(model.ended(1).reason.reason, "closed-by-peer")
