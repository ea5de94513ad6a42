# -*- test-case-name: sudp_test.stream.test_protocol -*-
"""
Tests for L{sudp.stream.protocol}.
"""

import os
import struct

from hypothesis import given, strategies as st
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.test.iosim import connectedServerAndClient, ConnectionCompleter
from twisted.trial import unittest

from sudp.errors import BadServerSignature, ClientNotAuthorized, HandshakeFailed, HandshakeTimeout
from sudp.keys import Identity
from sudp.stream import frames as F
from sudp.stream.endpoints import SFrameClientEndpoint, SFrameServerEndpoint
from sudp.stream.events import StreamState
from sudp.stream.frames import CODE_ACCEPT, CODE_CLOSE, CODE_CONFIRM, FrameWriter, HEADER_SIZE
from sudp.stream.handshake import (
    AEAD_FRAMES,
    ClientKeyExchange,
    GCM_FRAMES,
    SEED003,
    ServerKeyExchange,
    StreamConfig,
)
from sudp.stream.protocol import SFrameDone, SFrameFactory, SFrameLost
from sudp.udp import packets as P

from sudp_test.stream.helpers import (
    ALL_SUITES,
    BOUNDED,
    MemoryRecorder,
    MemoryRecorderFactory,
    PushProducer,
    pattern,
)

class Collector(Protocol):
    """
    An application that records what arrives and sends what it is told.
    """

    def connectionMade(self):
        self.received = []
        self.made = True

    def dataReceived(self, data):
        self.received.append(data)

    def connectionLost(self, reason):
        self.lost = reason

class Counting:
    """
    Counts, by patching, the rotations made by every FrameWriter and
    followed by every FrameReader.
    """

    def __init__(self, test):
        self.written = self.read = 0
        rotate, follow = F.FrameWriter._rotate, F.FrameReader._follow

        def counted(writer):
            self.written += 1
            return rotate(writer)

        def followed(reader, payload):
            self.read += 1
            return follow(reader, payload)

        test.patch(F.FrameWriter, "_rotate", counted)
        test.patch(F.FrameReader, "_follow", followed)

class LongConnectionTests(unittest.TestCase):
    """
    A long connection over the real L{SFrameProtocol}, with every byte
    checked, crossing many rekeys in both directions.
    """

    SIZE = 96 * 1024

    @defer.inlineCallbacks
    def test_loopbackTCP(self):
        """
        Over loopback TCP, for each suite, client and server each write 96
        KiB in 128-byte frames while rotating every 5 frames: about 150
        rekeys in each direction, and each side receives exactly what the
        other wrote.
        """
        counts = Counting(self)
        for suite in ALL_SUITES:
            before = counts.written
            config = StreamConfig(suites=(suite,), maxFramePayload=128, rekeyAfterFrames=5)
            identity = Identity.generate()
            serverApps = []

            def build():
                serverApps.append(Collector())
                return serverApps[-1]

            port = yield SFrameServerEndpoint(
                reactor, TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"), identity, config,
            ).listen(Factory.forProtocol(build))
            self.addCleanup(port.stopListening)
            client = yield SFrameClientEndpoint(
                reactor, TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port),
                identity.publicKey, config,
            ).connect(Factory.forProtocol(Collector))
            [server] = serverApps
            up, down = pattern(b"up " + suite.name.encode(), self.SIZE), pattern(b"down", self.SIZE)
            for i in range(0, self.SIZE, 1000):
                client.transport.write(up[i : i + 1000])
                server.transport.write(down[i : i + 1000])
            yield self.until(lambda: (sum(map(len, server.received)) >= self.SIZE
                                      and sum(map(len, client.received)) >= self.SIZE))
            self.assertEqual(b"".join(server.received), up)
            self.assertEqual(b"".join(client.received), down)
            self.assertEqual(client.transport.suite, suite.name)
            # 768 frames a direction, each key carrying 5 before its REKEY
            self.assertGreaterEqual(counts.written - before, 2 * 150)
            self.assertEqual(counts.read, counts.written)
            client.transport.loseConnection()
            yield self.until(lambda: hasattr(client, "lost") and hasattr(server, "lost"))

    @defer.inlineCallbacks
    def until(self, condition, timeout=20.0):
        """
        Wait (on the real reactor) until C{condition()}, failing after
        C{timeout} seconds.
        """
        deadline = reactor.seconds() + timeout
        while not condition():
            self.assertLess(reactor.seconds(), deadline, "timed out")
            yield deferLater(reactor, 0.01, lambda: None)

    def test_rotationByTime(self):
        """
        In memory with a clock: both sides rotate every rekeyAfterTime
        seconds on their own (and by count), while data flows both ways;
        every byte arrives, and each side's reader follows the other's
        writer through every epoch.
        """
        counts = Counting(self)
        clock = MemoryReactorClock()
        config = StreamConfig(suites=(GCM_FRAMES,), rekeyAfterTime=7.0, rekeyAfterFrames=50,
                              keepaliveInterval=60.0, idleTimeout=300.0)
        identity = Identity.generate()
        serverApps = []

        def build():
            serverApps.append(Collector())
            return serverApps[-1]

        SFrameServerEndpoint(clock, TCP4ServerEndpoint(clock, 4999), identity, config).listen(
            Factory.forProtocol(build))
        connecting = SFrameClientEndpoint(
            clock, TCP4ClientEndpoint(clock, "127.0.0.1", 4999), identity.publicKey, config,
        ).connect(Factory.forProtocol(Collector))
        pump = ConnectionCompleter(clock).succeedOnce(greet=False)
        pump.flush()
        client = self.successResultOf(connecting)
        [server] = serverApps
        up, down = pattern(b"time up", 40 * 1000), pattern(b"time down", 40 * 1000)
        for step in range(40):
            client.transport.write(up[step * 1000 : (step + 1) * 1000])
            server.transport.write(down[step * 1000 : (step + 1) * 1000])
            clock.advance(0)
            pump.flush()
            clock.advance(2.0)  # 80 s: due at 7, done at 8, then 16, ... 80
            pump.flush()
        self.assertEqual(b"".join(server.received), up)
        self.assertEqual(b"".join(client.received), down)
        self.assertGreaterEqual(counts.written, 2 * 10)
        self.assertEqual(counts.read, counts.written)
        self.assertFalse(hasattr(client, "lost"))
        self.assertFalse(hasattr(server, "lost"))

PORT = 4321

class Connection:
    """
    An sframe client endpoint connected to a server in memory.

    @ivar pump: the L{twisted.test.iosim.IOPump} (C{clientIO}, C{serverIO}
        are the stream transports below sframe).
    @ivar connecting: the client endpoint's connect Deferred.
    """

    def __init__(self, reactor, pump, connecting, serverApp, clientApp, identity):
        self.reactor = reactor
        self.pump = pump
        self.connecting = connecting
        self.serverApp = serverApp
        self.clientApp = clientApp
        self.identity = identity

    @property
    def serverSFrame(self):
        return self.pump.server

class MemoryMixin:
    def connection(self, config=None, serverConfig=None, serverKey=None, clientIdentity=None,
                   authorizedKeys=None, rawServer=None, identity=None):
        """
        Start an sframe connection over MemoryReactorClock TCP (not pumped).
        """
        clock = MemoryReactorClock()
        identity = identity or Identity.generate()
        config = config or StreamConfig()
        serverApp = MemoryRecorderFactory()
        inner = TCP4ServerEndpoint(clock, PORT)
        if rawServer is not None:
            inner.listen(rawServer)
        else:
            server = SFrameServerEndpoint(clock, inner, identity, serverConfig or config, authorizedKeys)
            server.listen(serverApp)
        clientApp = MemoryRecorderFactory()
        connecting = SFrameClientEndpoint(
            clock, TCP4ClientEndpoint(clock, "127.0.0.1", PORT), serverKey or identity.publicKey,
            config, clientIdentity,
        ).connect(clientApp)
        pump = ConnectionCompleter(clock).succeedOnce(greet=False)
        return Connection(clock, pump, connecting, serverApp, clientApp, identity)

    def opened(self, suite=SEED003, **kw):
        """
        @return: C{(connection, client app protocol, server app protocol)}
            with the handshake done.
        """
        conn = self.connection(StreamConfig(suites=(suite,)), **kw)
        conn.pump.flush()
        client = self.successResultOf(conn.connecting)
        self.assertIsInstance(client, MemoryRecorder)
        [server] = conn.serverApp.built
        self.assertTrue(server.made)
        self.assertEqual(client.transport.suite, suite.name)
        return conn, client, server

    def send(self, conn, client, chunk):
        """
        The client application writes C{chunk}; the reactor turn ends, so it
        goes out as a frame of its own (writes in one turn are coalesced).
        """
        client.transport.write(chunk)
        conn.reactor.advance(0)

    def assertLostWith(self, app, reason, kind=SFrameLost):
        self.assertIsNotNone(app.lost, "connectionLost not called")
        self.assertIsInstance(app.lost.value, kind)
        self.assertEqual(app.lost.value.reason, reason)
        self.assertEqual(app.events[-1][0], "lost")
        self.assertEqual([e for e in app.events if e[0] == "lost"], [app.events[-1]])

TRAILERS = {SEED003: 8, AEAD_FRAMES: 16, GCM_FRAMES: 16}

class TamperTests(MemoryMixin, unittest.TestCase):
    """
    Bytes changed between the client and the server.
    """

    CHUNKS = [b"first verified chunk", b"second", b"third and last chunk"]

    def sendDamaged(self, suite, damage):
        """
        Open a connection, have the client write L{CHUNKS} (one frame each),
        apply C{damage(wire, spans)} to the bytes in flight, deliver.
        """
        conn, client, server = self.opened(suite)
        for chunk in self.CHUNKS:
            self.send(conn, client, chunk)
        wire = conn.pump.clientIO.getOutBuffer()
        spans, start = [], 0
        for chunk in self.CHUNKS:
            end = start + HEADER_SIZE + len(chunk) + TRAILERS[suite]
            spans.append((start, start + HEADER_SIZE, end))
            start = end
        self.assertEqual(start, len(wire))
        conn.pump.clientIO.stream = [damage(wire, spans)]
        conn.pump.flush()
        return conn, client, server

    def test_flipEveryRegion(self):
        """
        A byte changed in flight in the header, payload or trailer of any of
        the three frames: the server application first gets exactly the
        chunks before the damaged frame, then connectionLost with
        SFrameLost(bad-checksum) for a header, SFrameLost(bad-mac) otherwise.
        Both ends are closed.
        """
        for suite in ALL_SUITES:
            for k in range(3):
                for region, reason in (("header", "bad-checksum"), ("payload", "bad-mac"),
                                       ("trailer", "bad-mac")):

                    def damage(wire, spans):
                        start, headerEnd, end = spans[k]
                        at = {"header": start + 5, "payload": headerEnd + 1, "trailer": end - 1}[region]
                        return wire[:at] + bytes([wire[at] ^ 0x20]) + wire[at + 1 :]

                    conn, client, server = self.sendDamaged(suite, damage)
                    where = (suite.name, k, region)
                    self.assertEqual(server.received(), b"".join(self.CHUNKS[:k]), where)
                    self.assertEqual([d for kind, d in server.events if kind == "data"], self.CHUNKS[:k])
                    self.assertLostWith(server, reason)
                    # the server aborts and sends nothing (no CLOSE): the
                    # client sees an unclean end
                    self.assertEqual(client.received(), b"")
                    self.assertLostWith(client, "connection-lost")

    def test_reorderInFlight(self):
        """
        Two frames swapped in flight: the first is delivered, then the
        connection ends with the matching reason.
        """
        for suite, reason in ((SEED003, "bad-checksum"), (AEAD_FRAMES, "bad-sequence"),
                              (GCM_FRAMES, "bad-sequence")):

            def swap(wire, spans):
                (a, _, b), (_, _, c), (_, _, d) = spans
                return wire[:b] + wire[c:d] + wire[b:c]

            conn, client, server = self.sendDamaged(suite, swap)
            self.assertEqual(server.received(), self.CHUNKS[0])
            self.assertLostWith(server, reason)

    def test_truncatedThenClosed(self):
        """
        The stream ends in the middle of a frame: the application gets the
        complete frames, then a connection-lost end (not a clean close).
        """
        conn, client, server = self.sendDamaged(SEED003, lambda wire, spans: wire[: spans[2][1] + 3])
        self.assertEqual(server.received(), b"".join(self.CHUNKS[:2]))
        self.assertIsNone(server.lost)
        client.transport.abortConnection()
        conn.pump.flush()
        self.assertEqual(server.received(), b"".join(self.CHUNKS[:2]))
        self.assertLostWith(server, "connection-lost")

class SlowPeerTests(MemoryMixin, unittest.TestCase):
    """
    StreamConfig.frameTimeout.
    """

    def partial(self, suite, cut):
        """
        The client writes two chunks; the server gets the first frame and
        C{cut} bytes of the second.

        @return: C{(connection, client, server, the bytes not delivered)}
        """
        conn, client, server = self.opened(suite)
        self.send(conn, client, b"complete")
        self.send(conn, client, b"never finished")
        wire = conn.pump.clientIO.getOutBuffer()
        first = HEADER_SIZE + len(b"complete") + TRAILERS[suite]
        conn.pump.serverIO.bufferReceived(wire[: first + cut])
        return conn, client, server, wire[first + cut :]

    def test_stopsMidFrame(self):
        """
        A peer that stops mid-frame (mid-header, after the header, before
        the trailer): after frameTimeout the connection ends with
        SFrameLost(slow-peer), and the application got the verified frame.
        """
        timeout = StreamConfig().frameTimeout
        for suite in ALL_SUITES:
            for cut in (1, 15, HEADER_SIZE, HEADER_SIZE + 5, HEADER_SIZE + len(b"never finished") + 1):
                conn, client, server, rest = self.partial(suite, cut)
                self.assertEqual(server.received(), b"complete")
                conn.reactor.advance(timeout - 0.01)
                conn.pump.flush(advanceClock=False)
                self.assertIsNone(server.lost, (suite.name, cut))
                conn.reactor.advance(0.02)
                conn.pump.flush()
                self.assertEqual(server.received(), b"complete")
                self.assertLostWith(server, "slow-peer")
                self.assertIsNotNone(client.lost)

    def test_completedInTime(self):
        """
        A frame completed just before frameTimeout is delivered and cancels
        the timer: much later the connection is still open.
        """
        timeout = StreamConfig().frameTimeout
        conn, client, server, rest = self.partial(SEED003, 10)
        conn.reactor.advance(timeout - 0.5)
        conn.pump.serverIO.bufferReceived(rest)
        self.assertEqual(server.received(), b"completenever finished")
        conn.reactor.advance(timeout * 3)
        conn.pump.flush()
        self.assertIsNone(server.lost)
        # no slow-peer timer is left; only each side's idle/keepalive (and key rotation) timer
        self.assertEqual(sorted(c.func.__name__ for c in conn.reactor.getDelayedCalls()),
                         ["_onTimer", "_onTimer"])
        for app in (client, server):
            self.assertEqual(sorted(app.transport.engine.timers()), ["idle", "keepalive", "rekey"])

    def test_steadyStreamIsNotSlow(self):
        """
        A peer streaming frames steadily, one completed every second, whose
        reads happen never to end on a frame boundary, is not slow: no frame
        took frameTimeout (5 s), yet the connection must survive 20 s.
        """
        config = StreamConfig(suites=(SEED003,), frameTimeout=5)
        conn, client, server = self.opened(SEED003, serverConfig=config)
        chunks = [bytes([i]) * 100 for i in range(20)]
        for chunk in chunks:
            self.send(conn, client, chunk)
        wire = conn.pump.clientIO.getOutBuffer()
        size = HEADER_SIZE + 100 + 8
        cuts = [0] + [size * i + 50 for i in range(1, 20)] + [len(wire)]
        for i in range(len(cuts) - 1):
            conn.pump.serverIO.bufferReceived(wire[cuts[i] : cuts[i + 1]])
            self.assertIsNone(server.lost, f"ended after {i} s: {server.lost}")
            conn.reactor.advance(1)
        self.assertEqual(server.received(), b"".join(chunks))
        self.assertIsNone(server.lost)

    def test_tricklingFrameIsSlow(self):
        """
        The other side of the per-frame clock: a peer that trickles one frame
        a byte per second keeps making progress but never completes it; it
        is cut frameTimeout after the frame's first byte, with the frames
        before it delivered.
        """
        config = StreamConfig(suites=(SEED003,), frameTimeout=5)
        conn, client, server = self.opened(SEED003, serverConfig=config)
        self.send(conn, client, b"whole")
        self.send(conn, client, b"t" * 100)
        wire = conn.pump.clientIO.getOutBuffer()
        first = HEADER_SIZE + 5 + 8
        conn.pump.serverIO.bufferReceived(wire[:first])
        self.assertEqual(server.received(), b"whole")
        for i in range(first, len(wire)):
            conn.pump.serverIO.bufferReceived(wire[i : i + 1])
            if conn.pump.serverIO.disconnecting:
                break
            conn.reactor.advance(1)
        self.assertEqual(i - first, 5)
        conn.pump.flush()
        self.assertEqual(server.received(), b"whole")
        self.assertLostWith(server, "slow-peer")

    def test_pausedReaderIsNotSlow(self):
        """
        While the application has paused reading (pauseProducing on the
        sframe transport), the peer cannot finish a frame: the frame timer
        must not declare it slow. After resumeProducing the frame completes.
        """
        conn, client, server, rest = self.partial(SEED003, 20)
        server.transport.pauseProducing()
        conn.reactor.advance(StreamConfig().frameTimeout * 2)
        self.assertFalse(conn.pump.serverIO.disconnecting)
        server.transport.resumeProducing()
        conn.pump.serverIO.bufferReceived(rest)
        conn.pump.flush()
        self.assertIsNone(server.lost)
        self.assertEqual(server.received(), b"completenever finished")

    def test_clockRestartsOnResume(self):
        """
        After resumeProducing the clock starts afresh: a frame still not
        completed frameTimeout later is cut as slow-peer.
        """
        timeout = StreamConfig().frameTimeout
        conn, client, server, rest = self.partial(SEED003, 20)
        conn.reactor.advance(timeout - 1)
        server.transport.pauseProducing()
        conn.reactor.advance(timeout * 2)
        server.transport.resumeProducing()
        conn.reactor.advance(timeout - 0.01)
        self.assertFalse(conn.pump.serverIO.disconnecting)
        conn.reactor.advance(0.02)
        conn.pump.flush()
        self.assertLostWith(server, "slow-peer")

class HandshakeTests(MemoryMixin, unittest.TestCase):
    """
    Key exchange failures, seen through the client endpoint's Deferred.
    """

    def test_serverNeverAnswers(self):
        """
        A server that accepts the TCP connection and never answers: the
        connect Deferred fails with HandshakeTimeout after handshakeTimeout,
        not before, and the connection is closed.
        """
        config = StreamConfig(handshakeTimeout=3)
        for greeting in (b"", b"\x00", b"\x00\x50" + bytes(40)):

            class Silent(Protocol):
                def connectionMade(self):
                    self.transport.write(greeting)

            conn = self.connection(config, rawServer=Factory.forProtocol(Silent))
            conn.pump.flush()
            self.assertNoResult(conn.connecting)
            conn.reactor.advance(2.99)
            self.assertNoResult(conn.connecting)
            conn.reactor.advance(0.02)
            self.failureResultOf(conn.connecting, HandshakeTimeout)
            self.assertTrue(conn.pump.clientIO.disconnecting)
            conn.pump.flush()
            self.assertEqual(conn.clientApp.built[0].made, False)

    def test_clientNeverSpeaks(self):
        """
        The server side: a client that connects and sends nothing, or part of
        an INIT, is dropped after handshakeTimeout; the application never
        sees it.
        """
        for sent in (b"", b"\x00", b"\x00\x40" + bytes(10)):
            clock = MemoryReactorClock()
            app = MemoryRecorderFactory()
            config = StreamConfig(handshakeTimeout=3)
            identity = Identity.generate()
            factory = SFrameFactory(app, config, clock, lambda: ServerKeyExchange(identity, config))

            class Mute(Protocol):
                def connectionMade(self):
                    self.transport.write(sent)

            c, s, pump = connectedServerAndClient(lambda: factory.buildProtocol(None), Mute, clock=clock)
            self.assertFalse(pump.serverIO.disconnecting)
            clock.advance(3.01)
            self.assertTrue(pump.serverIO.disconnecting)
            pump.flush()
            self.assertIs(s.engine.state, StreamState.CLOSED)
            self.assertFalse(app.built[0].made)
            self.assertIsNone(app.built[0].lost)

    def test_wrongServerKey(self):
        """
        A client expecting another server key: connect fails with
        BadServerSignature and the server application never sees it.
        """
        conn = self.connection(serverKey=Identity.generate().publicKey)
        conn.pump.flush()
        self.failureResultOf(conn.connecting, BadServerSignature)
        self.assertFalse(conn.serverApp.built[0].made)
        self.assertTrue(conn.pump.clientIO.disconnecting)

    def test_clientNotAuthorized(self):
        """
        With authorizedKeys the server admits a listed client, and refuses
        an unlisted key and a client without a key: connect fails with
        ClientNotAuthorized and the server application never sees them.
        """
        me, other = Identity.generate(), Identity.generate()
        conn, client, server = self.opened(clientIdentity=me, authorizedKeys=[me.publicKey])
        self.assertEqual(server.transport.peerPublicKey, me.publicKey)
        for identity in (other, None):
            conn = self.connection(clientIdentity=identity, authorizedKeys=[me.publicKey])
            conn.pump.flush()
            self.failureResultOf(conn.connecting, ClientNotAuthorized)
            self.assertFalse(conn.serverApp.built[0].made)
            self.assertFalse(conn.clientApp.built[0].made)

    def test_forgedClientProof(self):
        """
        A client claiming an authorized public key but signing with another
        key is refused with ClientNotAuthorized.
        """
        me, thief = Identity.generate(), Identity.generate()

        class Impostor:
            publicKey = me.publicKey
            sign = staticmethod(thief.sign)

        conn = self.connection(clientIdentity=Impostor(), authorizedKeys=[me.publicKey])
        conn.pump.flush()
        self.failureResultOf(conn.connecting, ClientNotAuthorized)
        self.assertFalse(conn.serverApp.built[0].made)

    def test_serverAnswersGarbage(self):
        """
        A server answering with garbage (an over-long length, random bytes
        of the right length, an empty message) makes connect fail with a
        HandshakeFailed; nothing else escapes.
        """
        for answer in (b"\xff\xff" + os.urandom(50), b"\x04\x01" + os.urandom(1025),
                       struct.pack(">H", P.RESP_SIZE) + os.urandom(P.RESP_SIZE),
                       b"\x00\x00", os.urandom(300)):

            class Liar(Protocol):
                def dataReceived(self, data):
                    self.transport.write(answer)

            conn = self.connection(StreamConfig(handshakeTimeout=3), rawServer=Factory.forProtocol(Liar))
            conn.pump.flush()
            conn.reactor.advance(3.01)
            conn.pump.flush()
            self.failureResultOf(conn.connecting, HandshakeFailed)
            self.assertTrue(conn.pump.clientIO.disconnected)

class GarbageHandshakeTests(MemoryMixin, unittest.TestCase):
    """
    Garbage sent to an sframe server instead of a HANDSHAKE_INIT.
    """

    def feedServer(self, garbage, pieces=1):
        """
        Send C{garbage} to a fresh sframe server; let handshakeTimeout pass
        if it is still waiting. Nothing may raise; the connection must end
        and the application never see it.
        """
        clock = MemoryReactorClock()
        app = MemoryRecorderFactory()
        identity, config = Identity.generate(), StreamConfig(handshakeTimeout=3)
        factory = SFrameFactory(app, config, clock, lambda: ServerKeyExchange(identity, config))
        c, s, pump = connectedServerAndClient(lambda: factory.buildProtocol(None), Protocol, clock=clock)
        size = max(1, -(-len(garbage) // pieces))
        for i in range(0, len(garbage), size):
            pump.serverIO.bufferReceived(garbage[i : i + size])
        pump.flush()
        if not pump.serverIO.disconnecting:
            clock.advance(3.01)
        self.assertTrue(pump.serverIO.disconnecting)
        pump.flush()
        self.assertIs(s.engine.state, StreamState.CLOSED)
        self.assertFalse(app.built[0].made)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_overLongLength(self):
        """
        A length prefix over the 1024-byte limit ends the connection at once.
        """
        for prefix in (b"\x04\x01", b"\xff\xff", b"\x80\x00"):
            clock = MemoryReactorClock()
            identity = Identity.generate()
            factory = SFrameFactory(MemoryRecorderFactory(), StreamConfig(), clock,
                                    lambda: ServerKeyExchange(identity, StreamConfig()))
            c, s, pump = connectedServerAndClient(lambda: factory.buildProtocol(None), Protocol, clock=clock)
            pump.serverIO.bufferReceived(prefix)
            self.assertTrue(pump.serverIO.disconnecting, prefix)
            self.feedServer(prefix + os.urandom(100))

    def test_knownGarbage(self):
        """
        Random bytes, an empty message, a message of the right size with a
        low-order or zero X25519 key, an INIT offering no known suite, and
        the same fed one byte at a time.
        """
        zeroKey = P.HandshakeInit(1, 0, bytes(16), bytes(32), [1, 2]).encode()
        noSuite = P.HandshakeInit(1, 0, bytes(16), os.urandom(32), [77]).encode()
        lowOrder = P.HandshakeInit(1, 0, bytes(16), bytes([1]) + bytes(31), [1]).encode()
        for garbage in (os.urandom(2000), b"\x00\x00", b"\x00\x00" + os.urandom(50),
                        struct.pack(">H", len(zeroKey)) + zeroKey,
                        struct.pack(">H", len(noSuite)) + noSuite,
                        struct.pack(">H", len(lowOrder)) + lowOrder,
                        struct.pack(">H", 1024) + os.urandom(1024)):
            self.feedServer(garbage)
            self.feedServer(garbage[:300], pieces=300)

    @BOUNDED
    @given(garbage=st.binary(min_size=1, max_size=1200), pieces=st.integers(1, 5))
    def test_randomGarbage(self, garbage, pieces):
        """
        Any bytes at all, in any pieces.
        """
        self.feedServer(garbage, pieces)

class ScriptedClient(Protocol):
    """
    A client that runs the key exchange honestly, then sends whatever
    C{after(established, writer)} returns instead of a proper CONFIRM.
    """

    def __init__(self, serverKey, after):
        self.kx = ClientKeyExchange(serverKey, StreamConfig(suites=(SEED003,)))
        self.after = after

    def connectionMade(self):
        self.transport.write(self.kx.start().toSend)

    def dataReceived(self, data):
        if self.kx is not None:
            done = self.kx.receive(data).established
            if done is not None:
                self.kx = None
                self.transport.write(self.after(done, FrameWriter(done.writer)))

class ScriptedServer(Protocol):
    """
    A server with the right key that answers the INIT honestly, then sends
    C{after(writer)} instead of (or before) a proper ACCEPT.
    """

    def __init__(self, identity, after):
        self.kx = ServerKeyExchange(identity, StreamConfig(suites=(SEED003,)))
        self.after = after

    def dataReceived(self, data):
        if self.kx is not None:
            step = self.kx.receive(data)
            if step.established is not None:
                self.kx = None
                done, reply = step.established, step.toSend
                self.transport.write(reply + self.after(FrameWriter(done.writer)))

class MaliciousPeerTests(MemoryMixin, unittest.TestCase):
    """
    Peers that hold the session keys but break the CONFIRM/ACCEPT rules or
    send control frames: nothing reaches the application that should not.
    """

    def serveScripted(self, after, authorizedKeys=None):
        clock = MemoryReactorClock()
        identity = Identity.generate()
        app = MemoryRecorderFactory()
        config = StreamConfig(suites=(SEED003,))
        factory = SFrameFactory(app, config, clock, lambda: ServerKeyExchange(identity, config),
                                authorizedKeys=authorizedKeys)
        c, s, pump = connectedServerAndClient(
            lambda: factory.buildProtocol(None),
            lambda: ScriptedClient(identity.publicKey, after),
            clock=clock,
        )
        pump.flush()
        return s, app

    def test_dataBeforeConfirm(self):
        """
        A client that skips CONFIRM and sends DATA is dropped with
        protocol-error; the data never reaches the application, which is
        never connected.
        """
        s, app = self.serveScripted(lambda done, w: w.frame(0, b"sneaky") + w.frame(CODE_CONFIRM, b""))
        self.assertIs(s.engine.state, StreamState.CLOSED)
        self.assertEqual(s.engine.ending.reason, "protocol-error")
        self.assertFalse(app.built[0].made)
        self.assertEqual(app.built[0].events, [])

    def test_refusedConfirmThenData(self):
        """
        A refused CONFIRM (a forged proof, no proof) followed in the same read
        by DATA: the DATA is never delivered, the application never connected.
        """
        me = Identity.generate()
        for proof in (b"x" * 96, b"", me.publicKey.raw + bytes(64)):
            s, app = self.serveScripted(
                lambda done, w: w.frame(CODE_CONFIRM, proof) + w.frame(0, b"sneaky"),
                authorizedKeys=[me.publicKey],
            )
            self.assertEqual(s.engine.ending.reason, "not-authorized")
            self.assertFalse(app.built[0].made)
            self.assertEqual(app.built[0].events, [])

    def test_controlFrameAfterOpen(self):
        """
        A CONFIRM (or any reserved code but CLOSE) after the connection is
        open ends it with protocol-error, after the data before it; the data
        after it is not delivered.
        """
        for code in (CODE_CONFIRM, CODE_ACCEPT, 0xFFFFFFFF):
            s, app = self.serveScripted(
                lambda done, w: w.frame(CODE_CONFIRM, b"") + w.frame(0, b"before") + w.frame(code, b"")
                + w.frame(0, b"after")
            )
            server = app.built[0]
            self.assertTrue(server.made)
            self.assertEqual(server.received(), b"before")
            self.assertLostWith(server, "protocol-error")

    def test_dataAfterClose(self):
        """
        Frames after the peer's CLOSE are ignored; the end is a clean
        closed-by-peer.
        """
        s, app = self.serveScripted(
            lambda done, w: w.frame(CODE_CONFIRM, b"") + w.frame(0, b"before") + w.frame(CODE_CLOSE, b"bye")
            + w.frame(0, b"after")
        )
        server = app.built[0]
        self.assertEqual(server.received(), b"before")
        self.assertLostWith(server, "closed-by-peer", SFrameDone)

    def test_serverDataBeforeAccept(self):
        """
        A server (with the right key) that sends DATA before ACCEPT: connect
        fails with HandshakeFailed and the data is never delivered.
        """
        identity = Identity.generate()

        class Scripted(Factory):
            def buildProtocol(self, addr):
                return ScriptedServer(identity, lambda w: w.frame(0, b"early") + w.frame(CODE_ACCEPT, b""))

        conn = self.connection(StreamConfig(suites=(SEED003,)), rawServer=Scripted(), identity=identity)
        conn.pump.flush()
        self.failureResultOf(conn.connecting, HandshakeFailed)
        self.assertFalse(conn.clientApp.built[0].made)
        self.assertEqual(conn.clientApp.built[0].events, [])

    def test_serverRefusesWithClose(self):
        """
        A CLOSE instead of ACCEPT fails connect with ClientNotAuthorized
        carrying the server's text.
        """
        identity = Identity.generate()

        class Scripted(Factory):
            def buildProtocol(self, addr):
                return ScriptedServer(identity, lambda w: w.frame(CODE_CLOSE, b"go away"))

        conn = self.connection(StreamConfig(suites=(SEED003,)), rawServer=Scripted(), identity=identity)
        conn.pump.flush()
        failure = self.failureResultOf(conn.connecting, ClientNotAuthorized)
        self.assertIn("go away", str(failure.value))

class FlowControlTests(unittest.TestCase):
    """
    Producers through the sframe transport, over StringTransports.
    """

    def openOverStrings(self, suite=SEED003):
        self.clock = clock = Clock()
        identity = Identity.generate()
        config = StreamConfig(suites=(suite,))
        serverApp, clientApp = MemoryRecorderFactory(), MemoryRecorderFactory()
        ready = defer.Deferred()
        server = SFrameFactory(serverApp, config, clock,
                               lambda: ServerKeyExchange(identity, config)).buildProtocol(None)
        clientFactory = SFrameFactory(clientApp, config, clock, lambda: ClientKeyExchange(identity.publicKey, config),
                                      ready=ready, isClient=True)
        client = clientFactory.buildProtocol(None)
        self.st, self.ct = StringTransport(), StringTransport()
        server.makeConnection(self.st)
        client.makeConnection(self.ct)
        self.server, self.client = server, client
        self.shuttle()
        app = self.successResultOf(ready)
        self.assertIs(app, clientApp.built[0])
        return app, serverApp.built[0]

    def shuttle(self):
        for _ in range(100):
            c, s = self.ct.value(), self.st.value()
            if not c and not s:
                return
            self.ct.clear()
            self.st.clear()
            if c:
                self.server.dataReceived(c)
            if s:
                self.client.dataReceived(s)
        raise AssertionError("still talking")

    def test_producerPausedWhenBufferFull(self):
        """
        A push producer the application registers on the sframe transport
        is paused and resumed by the stream transport below (as it does when
        its buffer fills and drains); writes go on being framed correctly.
        """
        for suite in ALL_SUITES:
            client, server = self.openOverStrings(suite)
            producer = PushProducer()
            client.transport.registerProducer(producer, True)
            self.assertIsNotNone(self.ct.producer)
            self.assertTrue(self.ct.streaming)
            client.transport.write(b"x" * 100_000)
            self.ct.producer.pauseProducing()  # the buffer below is full
            self.assertEqual(producer.calls, ["pause"])
            self.ct.producer.resumeProducing()  # ... and drained
            self.assertEqual(producer.calls, ["pause", "resume"])
            self.shuttle()
            self.assertEqual(server.received(), b"x" * 100_000)
            client.transport.unregisterProducer()
            self.assertIsNone(self.ct.producer)

    def test_pauseReadingPassesDown(self):
        """
        pauseProducing/resumeProducing/stopProducing on the sframe transport
        (the application throttling its input) act on the stream below.
        """
        client, server = self.openOverStrings()
        for app, below in ((client, self.ct), (server, self.st)):
            self.assertEqual(below.producerState, "producing")
            app.transport.pauseProducing()
            self.assertEqual(below.producerState, "paused")
            app.transport.resumeProducing()
            self.assertEqual(below.producerState, "producing")
        server.transport.stopProducing()
        self.assertEqual(self.st.producerState, "stopped")

    def test_applicationFailureStopsDelivery(self):
        """
        An application that raises in dataReceived is disconnected and gets
        no more data, even from frames that arrived in the same read.
        """
        client, server = self.openOverStrings()
        calls = []

        def failing(data):
            calls.append(data)
            raise RuntimeError("application bug")

        server.dataReceived = failing
        for chunk in (b"one", b"two", b"three"):
            client.transport.write(chunk)
            self.clock.advance(0)  # one frame each
        self.shuttle()
        errors = self.flushLoggedErrors(RuntimeError)
        self.assertEqual(calls, [b"one"])
        self.assertEqual(len(errors), 1)
        self.assertTrue(self.st.disconnecting)
