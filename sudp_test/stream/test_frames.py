# -*- test-case-name: sudp_test.stream.test_frames -*-
"""
Tests for L{sudp.stream.frames}.

Tests for L{sudp.stream.frames} and L{sudp.stream.rekey}: key rotation of
sframe frames (docs/sframe.md section 7.4) by count and by time for every
stream suite, the usage limits of section 10.5, and a long connection over
the real L{sudp.stream.protocol.SFrameProtocol} crossing many rekeys in both
directions.
"""

import os
import struct

from cryptography.hazmat.primitives.ciphers import algorithms, Cipher, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from hypothesis import given, HealthCheck, settings, strategies as st
from twisted.trial import unittest

from sudp.stream import frames as F, rekey as R
from sudp.stream.frames import (
    AEADFrameCipher,
    CODE_REKEY,
    CTRChainCipher,
    FrameError,
    FrameReader,
    FrameWriter,
    HEADER_SIZE,
    MAX_SEQUENCE,
)
from sudp.stream.handshake import AEAD_FRAMES, frameKeys, GCM_FRAMES, SEED003, StreamSuite

from sudp_test.stream.helpers import ALL_SUITES, BOUNDED, SECRET, TRANSCRIPT, pattern

def chains(suite, transcript=TRANSCRIPT, secret=SECRET):
    """
    @return: C{(writer cipher, writer chain, reader cipher, reader chain)}
        of the c2s direction of a connection with C{suite}: the client's
        writing side and the server's reading side.
    """
    clientHalf, _ = frameKeys(transcript, secret)
    writeKeys, _ = R.keyChains(suite, transcript, secret, isClient=True)
    _, readKeys = R.keyChains(suite, transcript, secret, isClient=False)
    return suite.cipher(clientHalf, True), writeKeys, suite.cipher(clientHalf, False), readKeys

def pair(suite, **options):
    """
    @return: a c2s L{F.FrameWriter} (built with C{options}) and the
        L{F.FrameReader} that reads it, both with their key chains.
    """
    wc, wk, rc, rk = chains(suite)
    return F.FrameWriter(wc, keys=wk, **options), F.FrameReader(rc, keys=rk)

def wireFrames(data, trailer):
    """
    Split a suite-2/3 stream (headers in the clear) into its frames.

    @return: C{(code, seq, wire)} of each.
    """
    out, pos = [], 0
    while pos < len(data):
        length, code, seq, _ = F.HEADER.unpack_from(data, pos)
        end = pos + F.HEADER_SIZE + length + trailer
        out.append((code, seq, data[pos:end]))
        pos = end
    return out

class SuiteMixin:
    """
    Run once per stream suite: C{suite} is set by the subclasses below.
    """

    suite = None

    def readAll(self, reader, data):
        got, error = reader.feed(data)
        self.assertIsNone(error)
        return got

class RotationByCountMixin(SuiteMixin):
    """
    The writer rotates its keys after C{rekeyAfterFrames} frames under one
    key, in band: the REKEY frame is the last one under the old keys, and the
    reader follows without returning it.
    """

    def test_everyNFrames(self):
        """
        With rekeyAfterFrames=3, each key protects 3 frames and the REKEY
        after them; SEQ goes on across rotations; the reader returns only the
        20 application frames and ends at the writer's epoch.
        """
        writer, reader = pair(self.suite, rekeyAfterFrames=3)
        sent = [(7, b"frame %d" % i) for i in range(20)]
        wire = b"".join(writer.frame(code, payload) for code, payload in sent)
        self.assertEqual(writer.epoch, 6)  # rotations before frames 4, 7, 10, 13, 16, 19
        self.assertEqual(writer.sequence, 27)  # 20 frames and 6 REKEYs from SEQ 1
        got = []
        for i in range(0, len(wire), 5):
            got.extend(self.readAll(reader, wire[i : i + 5]))
        self.assertEqual(got, sent)
        self.assertEqual(reader.epoch, 6)
        self.assertFalse(reader.midFrame)

    def test_rekeyBeforeCrossingFrame(self):
        """
        frames() splits a write; the REKEY frame comes in the returned bytes
        just before the frame that would cross the limit.
        """
        writer, reader = pair(self.suite, maxPayload=128, rekeyAfterFrames=2)
        data = bytes(range(256)) * 3  # 6 frames of 128 bytes
        wire = writer.frames(0, data)
        got = self.readAll(reader, wire)
        self.assertEqual(b"".join(p for _, p in got), data)
        self.assertEqual([c for c, _ in got], [0] * 6)
        self.assertEqual(writer.epoch, 2)
        if self.suite is not SEED003:  # headers in the clear: the codes are visible
            trailer = writer.cipher.trailerSize
            codes = [code for code, _, _ in wireFrames(wire, trailer)]
            rekey = F.CODE_REKEY
            self.assertEqual(codes, [0, 0, rekey, 0, 0, rekey, 0, 0])

    def test_noChainNoSoftRotation(self):
        """
        A writer built as before (a cipher only) never rotates: its frames
        are byte for byte those of the first key's cipher.
        """
        wc, _, _, _ = chains(self.suite)
        plain = F.FrameWriter(wc, rekeyAfterFrames=1)
        reference = F.FrameWriter(chains(self.suite)[0])
        for i in range(5):
            self.assertEqual(plain.frame(0, b"x" * i), reference.frame(0, b"x" * i))
        self.assertEqual(plain.epoch, 0)
        self.assertIsNone(plain.rekeyAt)

def reference(suite, payload):
    """
    @return: the first frame a writer with C{suite}'s first c2s keys writes.
    """
    return F.FrameWriter(chains(suite)[0]).frame(0, payload)

class RotationByTimeMixin(SuiteMixin):
    """
    C{rekeyAt} says when the next time-based rotation is due; C{rekey(now)}
    returns the REKEY frame and switches.
    """

    def test_rekeyAt(self):
        """
        A writer built at C{now} with rekeyAfterTime T is due at now + T;
        after rekey(t) it is due at t + T; the reader follows each rotation.
        """
        writer, reader = pair(self.suite, rekeyAfterTime=10.0, now=100.0)
        self.assertEqual(writer.rekeyAt, 110.0)
        wire = writer.frame(0, b"before")
        wire += writer.rekey(110.0)
        self.assertEqual(writer.rekeyAt, 120.0)
        self.assertEqual(writer.epoch, 1)
        wire += writer.frame(0, b"after")
        wire += writer.rekey(125.5)
        self.assertEqual(writer.rekeyAt, 135.5)
        wire += writer.frame(0, b"again")
        self.assertEqual(self.readAll(reader, wire), [(0, b"before"), (0, b"after"), (0, b"again")])
        self.assertEqual(reader.epoch, 2)

    def test_countRotationKeepsSchedule(self):
        """
        A rotation by count does not move rekeyAt (it cannot know the time):
        no key is ever older than rekeyAfterTime, the schedule only comes
        early.
        """
        writer, reader = pair(self.suite, rekeyAfterTime=10.0, rekeyAfterFrames=1, now=0.0)
        wire = writer.frame(0, b"a") + writer.frame(0, b"b")
        self.assertEqual(writer.epoch, 1)
        self.assertEqual(writer.rekeyAt, 10.0)
        self.assertEqual(self.readAll(reader, wire), [(0, b"a"), (0, b"b")])

    def test_noTime(self):
        """
        Without now or rekeyAfterTime, or without a key chain, nothing is
        due by time; rekey() without a chain cannot rotate: key-exhausted.
        """
        self.assertIsNone(pair(self.suite)[0].rekeyAt)
        self.assertIsNone(pair(self.suite, rekeyAfterTime=5.0)[0].rekeyAt)
        writer = F.FrameWriter(chains(self.suite)[0], rekeyAfterTime=5.0, now=0.0)
        self.assertIsNone(writer.rekeyAt)
        error = self.assertRaises(F.FrameError, writer.rekey, 6.0)
        self.assertEqual(error.reason, "key-exhausted")
        self.assertEqual(writer.frame(0, b"still writes"), reference(self.suite, b"still writes"))

class KeyUseMixin(SuiteMixin):
    """
    No key is used twice: each epoch has its own keys, different in the two
    directions, and (AEAD suites) no (key, nonce) pair is sealed twice.
    """

    def recordingSuite(self, halves):
        """
        @return: a suite like C{self.suite} whose ciphers record the 80-byte
            half they are built from in C{halves}, and (AEAD suites) every
            C{(key, nonce)} pair they seal or open in C{self.sealed} and
            C{self.opened}.
        """
        self.sealed, self.opened = [], []
        aead = {AEAD_FRAMES: ChaCha20Poly1305, GCM_FRAMES: AESGCM}.get(self.suite)
        limits = {AEAD_FRAMES: R.CHACHA20_LIMITS, GCM_FRAMES: R.GCM_LIMITS}.get(self.suite)
        test = self

        class Recording:
            def __init__(self, key, encrypt):
                self.key, self.aead = bytes(key), aead(key)
                self.log = test.sealed if encrypt else test.opened

            def encrypt(self, nonce, data, aad):
                self.log.append((self.key, nonce))
                return self.aead.encrypt(nonce, data, aad)

            def decrypt(self, nonce, data, aad):
                self.log.append((self.key, nonce))
                return self.aead.decrypt(nonce, data, aad)

        def make(half, encrypt):
            halves.append((bytes(half), encrypt))
            if aead is None:
                return SEED003.cipher(half, encrypt)
            record = lambda key: Recording(key, encrypt)  # noqa: E731
            return F.AEADFrameCipher(half[:32], encrypt, record, limits)

        return StreamSuite(self.suite.name, self.suite.suiteId, make)

    def test_keysNeverRepeat(self):
        """
        Over a connection of both directions rotating every few frames (by
        count and by time), every epoch's key material (AES key, CTR IV and
        MAC key; or AEAD key) is new, and for the AEAD suites every sealed
        (key, nonce) pair is unique and each was opened exactly once, by the
        reader, in the same order.
        """
        halves = []
        suite = self.recordingSuite(halves)
        clientHalf, serverHalf = frameKeys(TRANSCRIPT, SECRET)
        cw, cr = R.keyChains(suite, TRANSCRIPT, SECRET, isClient=True)
        sw, sr = R.keyChains(suite, TRANSCRIPT, SECRET, isClient=False)
        c2s = (F.FrameWriter(suite.cipher(clientHalf, True), keys=cw, rekeyAfterFrames=5,
                             rekeyAfterTime=1.0, now=0.0),
               F.FrameReader(suite.cipher(clientHalf, False), keys=sr))
        s2c = (F.FrameWriter(suite.cipher(serverHalf, True), keys=sw, rekeyAfterFrames=3),
               F.FrameReader(suite.cipher(serverHalf, False), keys=cr))
        for i in range(60):
            for writer, reader in (c2s, s2c):
                wire = writer.frame(i, b"%d" % i)
                if writer.rekeyAt is not None and i / 10 >= writer.rekeyAt:
                    wire += writer.rekey(i / 10)
                self.assertEqual(self.readAll(reader, wire), [(i, b"%d" % i)])
        self.assertGreater(c2s[0].epoch, 10)
        self.assertGreater(s2c[0].epoch, 15)
        self.assertEqual((c2s[1].epoch, s2c[1].epoch), (c2s[0].epoch, s2c[0].epoch))
        written = [h for h, encrypt in halves if encrypt]
        self.assertEqual(len(written), 2 + c2s[0].epoch + s2c[0].epoch)
        for start, end in ((0, 32), (32, 48), (48, 80)):  # key (AEAD or AES), CTR IV, MAC key
            pieces = [h[start:end] for h in written]
            self.assertEqual(len(set(pieces)), len(pieces), (start, end))
        if self.suite is not SEED003:
            self.assertEqual(len(self.sealed), 120 + c2s[0].epoch + s2c[0].epoch)
            self.assertEqual(len(set(self.sealed)), len(self.sealed))
            self.assertEqual(sorted(self.opened), sorted(self.sealed))

    # one method, run by the three suites' classes (each with its own suite)
    @settings(max_examples=40, deadline=None,
              suppress_health_check=[HealthCheck.differing_executors])
    @given(st.lists(st.one_of(st.integers(0, 300), st.none()), max_size=40),
           st.integers(1, 6), st.integers(1, 64))
    def test_anySchedule(self, steps, every, piece):
        """
        Whatever the writes (split at 128 bytes), the rotations by count
        (every few frames) and by time (C{None} steps), and however the
        stream is cut on arrival: the reader returns exactly what was
        written, follows every rotation, and no key material or (AEAD)
        (key, nonce) pair is used twice.
        """
        halves = []
        suite = self.recordingSuite(halves)
        clientHalf, _ = frameKeys(TRANSCRIPT, SECRET)
        keys = R.keyChains(suite, TRANSCRIPT, SECRET, isClient=True)[0]
        writer = F.FrameWriter(suite.cipher(clientHalf, True), maxPayload=128, keys=keys,
                               rekeyAfterFrames=every, rekeyAfterTime=1.0, now=0.0)
        reader = F.FrameReader(suite.cipher(clientHalf, False), maxPayload=128,
                               keys=R.keyChains(suite, TRANSCRIPT, SECRET, isClient=False)[1])
        wire, sent = writer.frame(0, b"first"), b"first"
        for i, step in enumerate(steps):
            if step is None:
                wire += writer.rekey(float(i))
            else:
                data = pattern(b"%d" % i, step)
                wire += writer.frames(0, data)
                sent += data
        got = []
        for i in range(0, len(wire), piece):
            got.extend(self.readAll(reader, wire[i : i + piece]))
        self.assertEqual(b"".join(p for _, p in got), sent)
        self.assertEqual(reader.epoch, writer.epoch)
        written = [h for h, encrypt in halves if encrypt]
        self.assertEqual(len(written), 1 + writer.epoch)
        self.assertEqual(len({h[:32] for h in written}), len(written))
        self.assertEqual(len(set(self.sealed)), len(self.sealed))

    def test_chainsMirror(self):
        """
        The client's writing chain and the server's reading chain give the
        same keys, and so do the server's writing and the client's reading
        chains; the two directions' keys differ.
        """
        halves = []
        suite = self.recordingSuite(halves)
        cw, cr = R.keyChains(suite, TRANSCRIPT, SECRET, isClient=True)
        sw, sr = R.keyChains(suite, TRANSCRIPT, SECRET, isClient=False)
        for _ in range(3):
            for chain in (cw, sr, sw, cr):
                chain.next()
        c2s = [h for i, (h, _) in enumerate(halves) if i % 4 in (0, 1)]
        s2c = [h for i, (h, _) in enumerate(halves) if i % 4 in (2, 3)]
        self.assertEqual(c2s[0::2], c2s[1::2])
        self.assertEqual(s2c[0::2], s2c[1::2])
        self.assertFalse(set(c2s) & set(s2c))
        self.assertEqual((cw.epoch, sr.epoch), (3, 3))

class RekeyFrameMixin(SuiteMixin):
    """
    A REKEY frame is only taken from the peer's verified stream, once, in
    its place.
    """

    def rekeyedStream(self):
        """
        @return: C{(wire, rekey)}: a DATA frame, a REKEY, a DATA frame (all of
            one writer), and the REKEY frame's bytes.
        """
        writer, _ = pair(self.suite)
        first = writer.frame(0, b"one")
        rekey = writer.rekey(0.0)
        return first + rekey + writer.frame(0, b"two"), first, rekey

    def test_forgedRekey(self):
        """
        A REKEY frame with any bit flipped in its payload or trailer fails
        like any other frame: bad-mac, nothing switched.
        """
        wire, first, rekey = self.rekeyedStream()
        for offset in range(F.HEADER_SIZE, len(rekey)):
            damaged = bytearray(wire)
            damaged[len(first) + offset] ^= 0x40
            reader = pair(self.suite)[1]
            got, error = reader.feed(bytes(damaged))
            self.assertEqual((got, error.reason), ([(0, b"one")], "bad-mac"), offset)
            self.assertEqual(reader.epoch, 0)

    def test_dataTurnedIntoRekey(self):
        """
        A DATA frame whose header an attacker rewrites into a REKEY frame
        (CODE and CHECKSUM changed together: suite 1's encrypted header is
        malleable, suites 2 and 3 send it in the clear) does not verify: the
        header is under the MAC or is the AEAD's associated data.
        """
        writer, _ = pair(self.suite)
        first = writer.frame(0, b"one")
        data = writer.frame(0, struct.pack(">Q", 1))  # the payload a REKEY would have
        delta = F.CODE_REKEY  # CODE 0 -> 0xFFFFFF04, and the same bits in CHECKSUM
        forged = bytearray(data)
        for start in (4, 12):
            for i, byte in enumerate(struct.pack(">I", delta)):
                forged[start + i] ^= byte
        reader = pair(self.suite)[1]
        got, error = reader.feed(first + bytes(forged))
        self.assertEqual((got, error.reason, reader.epoch), ([(0, b"one")], "bad-mac", 0))

    def test_replayedRekey(self):
        """
        The REKEY frame played again after itself is refused (its SEQ, and
        its keys, are spent); so is a REKEY frame from another connection.
        """
        wire, first, rekey = self.rekeyedStream()
        got, error = pair(self.suite)[1].feed(first + rekey + rekey)
        self.assertEqual(got, [(0, b"one")])
        self.assertIn(error.reason, ("bad-sequence", "bad-checksum"))
        other = F.FrameWriter(chains(self.suite, secret=b"another connection")[0])
        other.frame(0, b"one")
        foreign = other.frame(F.CODE_REKEY, struct.pack(">Q", 1))
        got, error = pair(self.suite)[1].feed(first + foreign)
        self.assertEqual(got, [(0, b"one")])
        self.assertIn(error.reason, ("bad-mac", "bad-checksum", "bad-sequence"))

    def test_wrongEpoch(self):
        """
        A verified REKEY frame that does not name the next epoch (u64), or
        has any other payload, is bad-rekey; so is one as the first frame
        of a direction, or to a reader that has no key chain.
        """
        for payload in (struct.pack(">Q", 0), struct.pack(">Q", 2), b"", b"\0" * 7 + b"\1\0"):
            writer, reader = pair(self.suite)
            wire = writer.frame(0, b"one") + writer.frame(F.CODE_REKEY, payload)
            got, error = reader.feed(wire)
            self.assertEqual((got, error.reason), ([(0, b"one")], "bad-rekey"), payload)
        writer, reader = pair(self.suite)
        first = writer.frame(F.CODE_REKEY, struct.pack(">Q", 1))
        self.assertEqual(reader.feed(first)[1].reason, "bad-rekey")
        writer, _ = pair(self.suite)
        wire = writer.frame(0, b"one") + writer.rekey(0.0)
        got, error = F.FrameReader(chains(self.suite)[2]).feed(wire)
        self.assertEqual((got, error.reason), ([(0, b"one")], "bad-rekey"))

    def test_rekeyNeverDelivered(self):
        """
        REKEY frames are handled by the reader: the application never sees
        code 0xFFFFFF04, and the bytes after it are read under the new keys.
        """
        wire, _, _ = self.rekeyedStream()
        self.assertEqual(self.readAll(pair(self.suite)[1], wire), [(0, b"one"), (0, b"two")])

class LimitMixin(SuiteMixin):
    """
    A key never protects more than its suite's limits: the writer rotates
    before, and a reader ends a stream whose writer did not.
    """

    def tiny(self, cipher, frames, blocks=None):
        cipher.limits = R.UsageLimits(frames, blocks, cipher.limits.overhead)
        return cipher

    def test_hardFrameLimit(self):
        """
        With a limit of 4 frames per key (and no rekeyAfterFrames), the
        writer sends 3 frames and a REKEY under each key; a reader holding
        the same limit accepts it all.
        """
        wc, wk, rc, rk = chains(self.suite)
        self.patch(R.KeyChain, "next", _tinyNext(R.KeyChain.next, self.tiny, 4))
        writer = F.FrameWriter(self.tiny(wc, 4), keys=wk)
        reader = F.FrameReader(self.tiny(rc, 4), keys=rk)
        sent = [(0, b"%d" % i) for i in range(10)]
        wire = b"".join(writer.frame(c, p) for c, p in sent)
        self.assertEqual(writer.epoch, 3)
        self.assertEqual(self.readAll(reader, wire), sent)

    def test_hardBlockLimit(self):
        """
        The block limit counts each frame's cipher blocks: big frames rotate
        the key sooner than small ones.
        """
        if self.suite is AEAD_FRAMES:
            self.assertIsNone(R.CHACHA20_LIMITS.blocks)
            return
        wc, wk, rc, rk = chains(self.suite)
        self.patch(R.KeyChain, "next", _tinyNext(R.KeyChain.next, self.tiny, 100, 40))
        writer = F.FrameWriter(self.tiny(wc, 100, 40), maxPayload=1024, keys=wk)
        reader = F.FrameReader(self.tiny(rc, 100, 40), maxPayload=1024, keys=rk)
        sent = [(0, bytes(300))] * 4
        wire = b"".join(writer.frame(c, p) for c, p in sent)
        self.assertEqual(writer.epoch, 3)  # about 21 blocks a frame: one frame per key
        self.assertEqual(self.readAll(reader, wire), sent)

    def test_writerExhausted(self):
        """
        A writer that cannot rotate (no key chain) refuses the frame that
        would cross the limit: FrameError key-exhausted, then nothing more.
        """
        wc = self.tiny(chains(self.suite)[0], 4)
        writer = F.FrameWriter(wc)
        for i in range(3):
            writer.frame(0, b"ok")
        error = self.assertRaises(F.FrameError, writer.frame, 0, b"too many")
        self.assertEqual(error.reason, "key-exhausted")
        self.assertRaises(F.FrameError, writer.frames, 0, b"x")
        self.assertRaises(F.FrameError, writer.frame, F.CODE_CLOSE, b"")

    def test_readerExhausted(self):
        """
        A peer that goes on past the limit under one key (it never rotates)
        is cut off: the frames within the limit, then key-exhausted.
        """
        wc, _, rc, rk = chains(self.suite)
        writer = F.FrameWriter(wc)  # the real limits: never reached here
        reader = F.FrameReader(self.tiny(rc, 5), keys=rk)
        wire = b"".join(writer.frame(0, b"%d" % i) for i in range(8))
        got, error = reader.feed(wire)
        self.assertEqual(got, [(0, b"%d" % i) for i in range(5)])
        self.assertEqual(error.reason, "key-exhausted")

    def test_frameBiggerThanKey(self):
        """
        A frame that no fresh key could carry is refused, not looped on.
        """
        wc, wk, _, _ = chains(self.suite)
        if self.suite is AEAD_FRAMES:
            return
        self.patch(R.KeyChain, "next", _tinyNext(R.KeyChain.next, self.tiny, 100, 10))
        writer = F.FrameWriter(self.tiny(wc, 100, 10), maxPayload=1024, keys=wk)
        error = self.assertRaises(F.FrameError, writer.frame, 0, bytes(1000))
        self.assertEqual(error.reason, "key-exhausted")

def _tinyNext(original, tiny, frames, blocks=None):
    """
    @return: a L{R.KeyChain.next} whose ciphers have the given limits.
    """

    def next(self):
        return tiny(original(self), frames, blocks)

    return next

def _suiteTests(mixin, doc):
    """
    @return: C{mixin}'s tests for each stream suite, as three classes.
    """
    made = {}
    for suite in ALL_SUITES:
        name = f"{mixin.__name__.replace('Mixin', '')}{suite.name.title().replace('-', '')}Tests"
        attributes = {"suite": suite, "__doc__": f"{doc} ({suite.name})"}
        made[name] = type(name, (mixin, unittest.TestCase), attributes)
    return made

for _mixin in (RotationByCountMixin, RotationByTimeMixin, KeyUseMixin, RekeyFrameMixin, LimitMixin):
    globals().update(_suiteTests(_mixin, _mixin.__doc__.strip().splitlines()[0]))

del _mixin

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
