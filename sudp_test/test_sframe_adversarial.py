"""
Adversarial tests of sframe (seed 003 frames over a stream).

A. The codec (L{FrameWriter}/L{FrameReader}) with each stream cipher (seed
   003's AES-256-CTR with the chained MAC, ChaCha20-Poly1305 and AES-256-GCM
   per frame), no reactor: every single bit flipped, truncation, headers
   refused before their payload, sequence wrap, replay and reordering,
   arbitrary read boundaries and write splitting (hypothesis).

B. L{SFrameProtocol} under Twisted, in memory (L{MemoryReactorClock},
   L{twisted.test.iosim}, L{StringTransport}) and, for flow control, over
   real TCP on 127.0.0.1: bytes tampered in flight, a peer stopping or
   trickling mid-frame, handshake timeouts, wrong keys, refused clients,
   garbage instead of a handshake, peers holding the keys but breaking the
   CONFIRM/ACCEPT/CLOSE rules, producers and pausing.
"""

import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import defer, reactor
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    TCP4ServerEndpoint,
    clientFromString,
    serverFromString,
)
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.test.iosim import ConnectionCompleter, connectedServerAndClient
from twisted.trial import unittest
from zope.interface import implementer

from sudp.errors import BadServerSignature, ClientNotAuthorized, HandshakeFailed, HandshakeTimeout
from sudp.keys import Identity, saveIdentity
from sudp.stream.endpoints import SFrameClientEndpoint, SFrameServerEndpoint
from sudp.stream.frames import (
    CODE_ACCEPT,
    CODE_CLOSE,
    CODE_CONFIRM,
    CODE_REKEY,
    HEADER_SIZE,
    MAX_SEQUENCE,
    AEADFrameCipher,
    CTRChainCipher,
    FrameError,
    FrameReader,
    FrameWriter,
)
from sudp.stream.handshake import (
    AEAD_FRAMES,
    GCM_FRAMES,
    SEED003,
    ClientKeyExchange,
    ServerKeyExchange,
    StreamConfig,
)
from sudp.stream.events import StreamState
from sudp.stream.protocol import SFrameDone, SFrameFactory, SFrameLost
from sudp.udp import packets as P

BOUNDED = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

KEY = bytes(range(32))
IV = bytes(range(100, 116))
MAC_KEY = bytes(range(200, 232))
HEADER = struct.Struct(">IIII")


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def chunked(data, cuts):
    """
    @return: C{data} split at the positions in C{cuts} (taken modulo its
        length + 1), empty pieces included.
    """
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points + [len(data)]:
        pieces.append(data[last:p])
        last = p
    return pieces


# ---------------------------------------------------------------------------
# A. codec level
# ---------------------------------------------------------------------------


class CodecMixin:
    """
    Codec tests, run once per stream cipher. Subclasses set L{trailer} and
    L{cipher}.
    """

    trailer = None

    def cipher(self, encrypt):
        raise NotImplementedError()

    def writer(self, **kw):
        return FrameWriter(self.cipher(True), **kw)

    def reader(self, **kw):
        return FrameReader(self.cipher(False), **kw)

    def keystream(self, n):
        """
        @return: the first C{n} bytes XORed onto the plaintext stream (all
            zeros where the cipher leaves headers in the clear).
        """
        raise NotImplementedError()

    def sealHeader(self, length, code, seq, checksum=None):
        """
        @return: the first frame's 16 header bytes as they would be on the
            wire, with any CHECKSUM.
        """
        if checksum is None:
            checksum = length ^ code ^ seq
        return xor(HEADER.pack(length, code, seq, checksum), self.keystream(HEADER_SIZE))

    def stream(self, frames, **kw):
        """
        @return: C{(wire, spans)}: the frames written in order, and each
            frame's C{(start, end of header, end)} on the wire.
        """
        writer = self.writer(**kw)
        wire, spans = b"", []
        for code, payload in frames:
            one = writer.frame(code, payload)
            self.assertEqual(len(one), HEADER_SIZE + len(payload) + self.trailer)
            spans.append((len(wire), len(wire) + HEADER_SIZE, len(wire) + len(one)))
            wire += one
        return wire, spans

    def plainHeaders(self, wire, spans):
        """
        @return: the decoded headers of the frames in C{wire}.
        """
        plain = xor(wire, self.keystream(len(wire)))
        return [HEADER.unpack(plain[s:h]) for s, h, _ in spans]

    FRAMES = [(0, b"hello"), (7, b""), (0xFFFFFEFF, bytes(range(20)))]

    # -- single bit flips ---------------------------------------------------------

    def expectedDamage(self, spans, byte):
        """
        @return: C{(index of the damaged frame, FrameError reason)}.
        """
        for k, (start, headerEnd, end) in enumerate(spans):
            if start <= byte < end:
                return k, ("bad-checksum" if byte < headerEnd else "bad-mac")
        raise AssertionError(byte)

    def test_everyBitFlipWhole(self):
        """
        Flip each bit of a 3-frame stream in turn (header, payload, trailer)
        and feed the result at once: the reader returns exactly the frames
        before the damaged one, then a FrameError (bad-checksum for a header
        bit, bad-mac for a payload or trailer bit); never a damaged frame.
        After the error it refuses everything, even the intact stream.
        """
        wire, spans = self.stream(self.FRAMES)
        for bit in range(len(wire) * 8):
            damaged = bytearray(wire)
            damaged[bit // 8] ^= 1 << (bit % 8)
            k, reason = self.expectedDamage(spans, bit // 8)
            reader = self.reader()
            frames, error = reader.feed(bytes(damaged))
            self.assertEqual(frames, self.FRAMES[:k], f"bit {bit}")
            self.assertIsInstance(error, FrameError, f"bit {bit}")
            self.assertEqual(error.reason, reason, f"bit {bit}")
            self.assertEqual(reader.feed(wire), ([], error))
            self.assertEqual(reader.feed(b""), ([], error))
            self.assertIs(reader.failed, error)
            self.assertFalse(reader.midFrame)

    def test_everyBitFlipByteByByte(self):
        """
        The same, with the damaged stream fed one byte at a time: the error
        comes with the 16th header byte for a header bit (before any of the
        payload), with the frame's last byte otherwise; the intact frames
        before it come each with its own last byte; nothing after the error.
        """
        wire, spans = self.stream(self.FRAMES)
        for bit in range(len(wire) * 8):
            damaged = bytearray(wire)
            damaged[bit // 8] ^= 1 << (bit % 8)
            k, reason = self.expectedDamage(spans, bit // 8)
            start, headerEnd, end = spans[k]
            errorAt = headerEnd - 1 if reason == "bad-checksum" else end - 1
            reader = self.reader()
            seen, failure = [], None
            for i in range(len(damaged)):
                frames, error = reader.feed(bytes(damaged[i : i + 1]))
                if failure is not None:
                    self.assertEqual((frames, error), ([], failure))
                    continue
                ends = [j for j, (_, _, e) in enumerate(spans) if e - 1 == i and j < k]
                self.assertEqual(frames, [self.FRAMES[j] for j in ends], f"bit {bit} byte {i}")
                seen += frames
                if error is not None:
                    self.assertEqual(i, errorAt, f"bit {bit}")
                    self.assertEqual(error.reason, reason)
                    failure = error
            self.assertIsNotNone(failure, f"bit {bit}")
            self.assertEqual(seen, self.FRAMES[:k])

    def test_malleableHeader(self):
        """
        Changing a header field together with CHECKSUM (XOR, which is all a
        CTR stream or a clear header allows) passes the checksum: a changed
        CODE is caught by the MAC/tag, a changed SEQ by the sequence check,
        a LENGTH over the limit from the header alone; none is delivered.
        """
        frames = [(0, b"first"), (5, b"second")]
        wire, spans = self.stream(frames)
        start, headerEnd, end = spans[1]
        for field, delta, reason, needBody in [
            (1, 0x00000100, "bad-mac", True),  # CODE
            (2, 0x00000004, "bad-sequence", False),  # SEQ
            (0, 0x40000000, "frame-too-large", False),  # LENGTH
            (0, 0x00000002, "bad-mac", True),  # LENGTH two shorter (6 -> 4)
        ]:
            deltas = [0, 0, 0, 0]
            deltas[field] = delta
            deltas[3] = delta
            damaged = wire[:start] + xor(wire[start:headerEnd], HEADER.pack(*deltas)) + wire[headerEnd:]
            reader = self.reader()
            got, error = reader.feed(damaged[:headerEnd])
            self.assertEqual(got, frames[:1])
            if needBody:
                self.assertIsNone(error)
                got, error = reader.feed(damaged[headerEnd:])
                self.assertEqual(got, [])
            self.assertIsInstance(error, FrameError)
            self.assertEqual(error.reason, reason, (field, delta))

    # -- truncation -----------------------------------------------------------------

    def test_truncatedFrame(self):
        """
        Any strict prefix of a frame yields no frame and no error, with
        midFrame true from the first byte; the rest completes it exactly.
        """
        for payload in (b"", b"x", os.urandom(100)):
            wire = self.writer().frame(5, payload)
            for n in range(len(wire)):
                reader = self.reader()
                self.assertFalse(reader.midFrame)
                self.assertEqual(reader.feed(wire[:n]), ([], None))
                self.assertEqual(reader.midFrame, n > 0, n)
                self.assertEqual(reader.feed(wire[n:]), ([(5, payload)], None))
                self.assertFalse(reader.midFrame)

    def test_truncatedStream(self):
        """
        Cut a 3-frame stream anywhere: exactly the frames wholly before the
        cut come out, midFrame says whether the cut is inside a frame, and
        the rest brings the remaining frames.
        """
        wire, spans = self.stream(self.FRAMES)
        ends = [e for _, _, e in spans]
        for n in range(len(wire) + 1):
            reader = self.reader()
            complete = sum(1 for e in ends if e <= n)
            self.assertEqual(reader.feed(wire[:n]), (self.FRAMES[:complete], None))
            self.assertEqual(reader.midFrame, n not in [0] + ends, n)
            self.assertEqual(reader.feed(wire[n:]), (self.FRAMES[complete:], None))

    # -- headers refused before the payload --------------------------------------------

    def test_badChecksumBeforePayload(self):
        """
        A header with a wrong CHECKSUM (correctly encrypted) is refused as
        soon as its 16 bytes are in, before any of the payload; the same
        header with the right CHECKSUM just waits for its payload.
        """
        good = self.sealHeader(100, 0, 1)
        reader = self.reader()
        self.assertEqual(reader.feed(good), ([], None))
        self.assertTrue(reader.midFrame)
        for wrong in (1, 0x80000000, 0xFFFFFFFF):
            bad = self.sealHeader(100, 0, 1, checksum=(100 ^ 0 ^ 1) ^ wrong)
            reader = self.reader()
            self.assertEqual(reader.feed(bad[:15]), ([], None))
            frames, error = reader.feed(bad[15:])
            self.assertEqual(frames, [])
            self.assertEqual(error.reason, "bad-checksum")
            self.assertFalse(reader.midFrame)

    def test_badSequenceBeforePayload(self):
        """
        A consistent header with the wrong SEQ (0, 2, the maximum) is refused
        from the header alone.
        """
        for seq in (0, 2, MAX_SEQUENCE):
            frames, error = self.reader().feed(self.sealHeader(10, 0, seq))
            self.assertEqual((frames, error.reason), ([], "bad-sequence"), seq)

    def test_tooLargeFromHeader(self):
        """
        A LENGTH over maxPayload (with a valid checksum and sequence) is
        refused from the 16 header bytes alone; LENGTH equal to the limit
        waits for the payload.
        """
        limit = 1000
        reader = self.reader(maxPayload=limit)
        self.assertEqual(reader.feed(self.sealHeader(limit, 0, 1)), ([], None))
        for length in (limit + 1, 2**24 + 1, 0xFFFFFFFF):
            reader = self.reader(maxPayload=limit)
            frames, error = reader.feed(self.sealHeader(length, 0, 1))
            self.assertEqual((frames, error.reason), ([], "frame-too-large"), length)
        # the same from a real writer with a larger limit
        wire = self.writer(maxPayload=2 * limit).frame(0, os.urandom(limit + 1))
        frames, error = self.reader(maxPayload=limit).feed(wire[:HEADER_SIZE])
        self.assertEqual((frames, error.reason), ([], "frame-too-large"))

    # -- sequence wrap, replay, reordering -------------------------------------------

    def test_sequenceWrap(self):
        """
        Started at 2**32-1, the writer numbers frames 2**32-1, 1, 2 (0 is
        never used) and a reader started there delivers them in order.
        """
        frames = [(0, b"last"), (1, b"wrapped"), (2, b"after")]
        wire, spans = self.stream(frames, firstSequence=MAX_SEQUENCE)
        self.assertEqual([h[2] for h in self.plainHeaders(wire, spans)], [MAX_SEQUENCE, 1, 2])
        reader = self.reader(firstSequence=MAX_SEQUENCE)
        self.assertEqual(reader.feed(wire), (frames, None))
        self.assertEqual(reader.expected, 3)

    def assertRefusedAfter(self, wire, delivered, reasons):
        reader = self.reader(firstSequence=self.first)
        frames, error = reader.feed(wire)
        self.assertEqual(frames, delivered)
        self.assertIsInstance(error, FrameError)
        self.assertIn(error.reason, reasons)

    def reorderCases(self, first):
        self.first = first
        frames = [(0, b"A" * 10), (0, b"B" * 10), (0, b"C" * 10)]
        wire, spans = self.stream(frames, firstSequence=first)
        a, b, c = (wire[s:e] for s, _, e in spans)
        return frames, a, b, c

    def test_reorderAndReplay(self):
        """
        Swapped frames, a replayed frame and a dropped frame are refused
        after the frames in order, also across the sequence wrap.
        """
        for first in (1, MAX_SEQUENCE - 1, MAX_SEQUENCE):
            frames, a, b, c = self.reorderCases(first)
            self.assertRefusedAfter(a + c + b, frames[:1], self.reorderReasons)
            self.assertRefusedAfter(b + a + c, [], self.reorderReasons)
            self.assertRefusedAfter(a + a, frames[:1], self.reorderReasons)
            self.assertRefusedAfter(a + b + a, frames[:2], self.reorderReasons)
            self.assertRefusedAfter(a + c, frames[:1], self.reorderReasons)

def withChunkingProperties(cls):
    """
    Add the hypothesis tests to a codec test class (one function per class,
    so that each has its own examples).
    """

    @BOUNDED
    @given(
        # any code but REKEY, which the reader follows itself (test_frames covers it)
        frames=st.lists(st.tuples(st.integers(0, 0xFFFFFFFF).filter(lambda c: c != CODE_REKEY),
                                  st.binary(max_size=300)), max_size=8),
        cuts=st.lists(st.integers(0, 10_000), max_size=30),
        first=st.sampled_from([1, 2, MAX_SEQUENCE - 2, MAX_SEQUENCE]),
    )
    def test_anyChunking(self, frames, cuts, first):
        """
        Frames of any codes and sizes, cut at arbitrary read boundaries,
        come out exactly, in order, and nothing more.
        """
        wire, spans = self.stream(frames, maxPayload=300, firstSequence=first)
        reader = self.reader(maxPayload=300, firstSequence=first)
        got = []
        for piece in chunked(wire, cuts):
            out, error = reader.feed(piece)
            self.assertIsNone(error)
            got += out
        self.assertEqual(got, frames)
        self.assertFalse(reader.midFrame)

    @BOUNDED
    @given(
        data=st.binary(max_size=3000),
        size=st.integers(1, 400),
        code=st.integers(0, 0xFFFFFEFF),
        cuts=st.lists(st.integers(0, 10_000), max_size=30),
    )
    def test_largeWritesSplit(self, data, size, code, cuts):
        """
        FrameWriter.frames splits a write into frames of at most maxPayload
        (all full but the last, one empty frame for empty data), which a
        reader with the same limit reassembles exactly from any chunking.
        """
        wire = self.writer(maxPayload=size).frames(code, data)
        reader = self.reader(maxPayload=size)
        got = []
        for piece in chunked(wire, cuts):
            out, error = reader.feed(piece)
            self.assertIsNone(error)
            got += out
        self.assertEqual(b"".join(p for _, p in got), data)
        self.assertEqual({c for c, _ in got}, {code})
        self.assertEqual(len(got), max(1, -(-len(data) // size)))
        self.assertTrue(all(len(p) == size for _, p in got[:-1]))

    cls.test_anyChunking = test_anyChunking
    cls.test_largeWritesSplit = test_largeWritesSplit
    return cls


@withChunkingProperties
class CTRCodecTests(CodecMixin, unittest.TestCase):
    """
    Seed 003's AES-256-CTR with the chained SHA-256 MAC.
    """

    trailer = 8
    # a frame at the wrong place decrypts under the wrong keystream
    reorderReasons = {"bad-checksum", "bad-sequence", "frame-too-large", "bad-mac"}

    def cipher(self, encrypt):
        return CTRChainCipher(KEY, IV, MAC_KEY, encrypt)

    def keystream(self, n):
        return Cipher(algorithms.AES(KEY), modes.CTR(IV)).encryptor().update(bytes(n))

    def test_reorderedEqualFramesGarbled(self):
        """
        With CTR, a frame moved to another place (even one of the same size)
        decrypts to garbage: its header fails the checksum.
        """
        frames, a, b, c = self.reorderCases(1)
        self.assertRefusedAfter(a + c + b, frames[:1], {"bad-checksum"})


@withChunkingProperties
class AEADCodecTests(CodecMixin, unittest.TestCase):
    """
    The ChaCha20-Poly1305-per-frame suite (headers in the clear).
    """

    trailer = 16
    reorderReasons = {"bad-sequence"}

    def cipher(self, encrypt):
        return AEADFrameCipher(KEY, encrypt)

    def keystream(self, n):
        return bytes(n)

    def test_resequencedFrame(self):
        """
        An attacker who moves a frame and rewrites its clear header to the
        expected SEQ (with a matching CHECKSUM) gets past the header check
        but not the tag (the header is associated data and the nonce counts
        frames).
        """
        frames, a, b, c = self.reorderCases(1)
        length, code, seq, _ = HEADER.unpack(c[:HEADER_SIZE])
        forged = HEADER.pack(length, code, 2, length ^ code ^ 2) + c[HEADER_SIZE:]
        self.assertRefusedAfter(a + forged, frames[:1], {"bad-mac"})


@withChunkingProperties
class GCMCodecTests(AEADCodecTests):
    """
    The AES-256-GCM-per-frame suite (same framing as the ChaCha20 one).
    """

    def cipher(self, encrypt):
        return AEADFrameCipher(KEY, encrypt, AESGCM)


# ---------------------------------------------------------------------------
# B. Twisted level
# ---------------------------------------------------------------------------

PORT = 4321


class Recorder(Protocol):
    """
    Records what the application sees, in order.
    """

    def __init__(self):
        self.events = []
        self.made = False
        self.lost = None

    def connectionMade(self):
        self.made = True

    def dataReceived(self, data):
        self.events.append(("data", data))

    def connectionLost(self, reason):
        self.lost = reason
        self.events.append(("lost", reason))

    def received(self):
        return b"".join(d for kind, d in self.events if kind == "data")


class RecorderFactory(Factory):
    protocol = Recorder

    def __init__(self):
        self.built = []

    def buildProtocol(self, addr):
        p = Factory.buildProtocol(self, addr)
        self.built.append(p)
        return p


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
        serverApp = RecorderFactory()
        inner = TCP4ServerEndpoint(clock, PORT)
        if rawServer is not None:
            inner.listen(rawServer)
        else:
            server = SFrameServerEndpoint(clock, inner, identity, serverConfig or config, authorizedKeys)
            server.listen(serverApp)
        clientApp = RecorderFactory()
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
        self.assertIsInstance(client, Recorder)
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
ALL_SUITES = (SEED003, AEAD_FRAMES, GCM_FRAMES)


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
            app = RecorderFactory()
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
        app = RecorderFactory()
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
            factory = SFrameFactory(RecorderFactory(), StreamConfig(), clock,
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
        app = RecorderFactory()
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


@implementer(IPushProducer)
class PushProducer:
    def __init__(self):
        self.calls = []

    def pauseProducing(self):
        self.calls.append("pause")

    def resumeProducing(self):
        self.calls.append("resume")

    def stopProducing(self):
        self.calls.append("stop")


class FlowControlTests(unittest.TestCase):
    """
    Producers through the sframe transport, over StringTransports.
    """

    def openOverStrings(self, suite=SEED003):
        self.clock = clock = Clock()
        identity = Identity.generate()
        config = StreamConfig(suites=(suite,))
        serverApp, clientApp = RecorderFactory(), RecorderFactory()
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


class RealTCPFlowTests(unittest.TestCase):
    """
    Flow control over real TCP on 127.0.0.1, through endpoint strings.
    """

    timeout = 10

    @defer.inlineCallbacks
    def setUpConnection(self, serverApp):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        keyFile = os.path.join(directory, "server.key")
        identity = Identity.generate()
        saveIdentity(identity, keyFile)
        port = yield serverFromString(
            reactor, f"sframe:key={keyFile}:endpoint=tcp\\:0\\:interface=127.0.0.1"
        ).listen(serverApp)
        self.addCleanup(port.stopListening)
        client = yield clientFromString(
            reactor,
            f"sframe:serverKey={identity.publicKey.toText()}"
            f":endpoint=tcp\\:127.0.0.1\\:{port.getHost().port}",
        ).connect(RecorderFactory())
        self.addCleanup(self.closeClient, client)
        for _ in range(200):
            if serverApp.built and serverApp.built[0].made:
                break
            yield deferLater(reactor, 0.01, lambda: None)
        return client, serverApp.built[0]

    def closeClient(self, client):
        if client.lost is None:
            client.transport.abortConnection()

    @defer.inlineCallbacks
    def waitUntil(self, condition, seconds=5):
        for _ in range(int(seconds / 0.01)):
            if condition():
                return
            yield deferLater(reactor, 0.01, lambda: None)
        self.fail("timed out")

    @defer.inlineCallbacks
    def test_pauseAndProducer(self):
        """
        A server application that pauses its sframe transport receives
        nothing until it resumes; meanwhile the client's push producer is
        paused once its large write fills the TCP buffer, and resumed after
        the server reads again; every byte arrives.
        """
        serverApp = RecorderFactory()
        client, server = yield self.setUpConnection(serverApp)
        server.transport.pauseProducing()
        producer = PushProducer()
        client.transport.registerProducer(producer, True)
        data = os.urandom(4 * 1024 * 1024)
        client.transport.write(data)
        self.assertIn("pause", producer.calls)
        yield deferLater(reactor, 0.3, lambda: None)
        self.assertEqual(server.received(), b"")
        self.assertNotIn("resume", producer.calls)
        server.transport.resumeProducing()
        yield self.waitUntil(lambda: len(server.received()) >= len(data))
        self.assertEqual(server.received(), data)
        yield self.waitUntil(lambda: "resume" in producer.calls)
        client.transport.unregisterProducer()
        client.transport.loseConnection()
        yield self.waitUntil(lambda: server.lost is not None and client.lost is not None)
        self.assertIsInstance(server.lost.value, SFrameDone)
