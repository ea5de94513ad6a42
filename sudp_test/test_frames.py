"""
Tests for L{sudp.stream.frames} and L{sudp.stream.rekey}: key rotation of
sframe frames (docs/sframe.md section 7.4) by count and by time for every
stream suite, the usage limits of section 10.5, and a long connection over
the real L{sudp.stream.protocol.SFrameProtocol} crossing many rekeys in both
directions.
"""

import hashlib
import math
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.test.iosim import ConnectionCompleter
from twisted.trial import unittest

from sudp.errors import ConfigurationError
from sudp.keys import Identity
from sudp.stream import frames as F
from sudp.stream import rekey as R
from sudp.stream.endpoints import SFrameClientEndpoint, SFrameServerEndpoint
from sudp.stream.handshake import (
    AEAD_FRAMES, GCM_FRAMES, SEED003, STREAM_SUITES, StreamConfig, StreamSuite, frameKeys,
)

ALL_SUITES = (SEED003, AEAD_FRAMES, GCM_FRAMES)
TRANSCRIPT = hashlib.sha256(b"test_frames transcript").digest()
SECRET = hashlib.sha256(b"test_frames secret").digest()


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


class LimitValueTests(unittest.TestCase):
    """
    The limits of docs/sframe.md section 10.5 and where each comes from.
    """

    def test_values(self):
        """
        aes-256-ctr-sha256: 2^32 - 1 frames (no SEQ twice under a key), 2^35
        AES blocks; chacha20-poly1305: 2^64 frames (the nonce's count), no
        block limit; aes-256-gcm: 2^64 frames, 2^35 blocks.
        """
        byName = {name: s.cipher(bytes(80), True).limits for name, s in STREAM_SUITES.items()}
        self.assertEqual(byName["aes-256-ctr-sha256"], R.CTR_LIMITS)
        self.assertEqual(byName["chacha20-poly1305"], R.CHACHA20_LIMITS)
        self.assertEqual(byName["aes-256-gcm"], R.GCM_LIMITS)
        self.assertEqual((R.CTR_LIMITS.frames, R.CTR_LIMITS.blocks), (2**32 - 1, 2**35))
        self.assertEqual((R.CHACHA20_LIMITS.frames, R.CHACHA20_LIMITS.blocks), (2**64, None))
        self.assertEqual((R.GCM_LIMITS.frames, R.GCM_LIMITS.blocks), (2**64, 2**35))

    def test_blockCost(self):
        """
        A suite-1 frame costs the keystream blocks its 24 + LENGTH bytes can
        touch; a suite-3 frame its payload's blocks and the tag's.
        """
        for length in (0, 1, 8, 9, 100, 65536, 2**24):
            self.assertEqual(R.CTR_LIMITS.cost(length), math.ceil((24 + length) / 16) + 1)
            self.assertEqual(R.GCM_LIMITS.cost(length), math.ceil(length / 16) + 1)

    def test_margin(self):
        """
        The AES block limits keep the distinguishing advantage sigma^2 /
        2^129 (sigma blocks under one key) at 2^-59, inside the 2^-57 of
        RFC 8446 and RFC 9001; the default rekeyAfterFrames is far inside
        every frame limit, and at the default frame size inside the block
        limits.
        """
        for limits in (R.CTR_LIMITS, R.GCM_LIMITS):
            self.assertLessEqual(limits.blocks**2 / 2**129, 2**-57)
        config = StreamConfig()
        frames = config.rekeyAfterFrames
        for limits in (R.CTR_LIMITS, R.CHACHA20_LIMITS, R.GCM_LIMITS):
            self.assertLess(frames * 1024, limits.frames)
            if limits.blocks is not None:
                self.assertLess(frames * limits.cost(config.maxFramePayload) * 4, limits.blocks)


class KeyChainTests(unittest.TestCase):
    """
    L{R.KeyChain}: the derivation and what it keeps.
    """

    def test_labels(self):
        """
        Each label names sframe, the rekey, the direction and the purpose,
        and no two are alike (nor like the other sframe labels).
        """
        labels = [R.LABELS[d][p] for d in ("c2s", "s2c") for p in ("secret", "keys", "next")]
        self.assertEqual(labels[0], b"sframe/1 rekey c2s secret")
        self.assertEqual(labels[4], b"sframe/1 rekey s2c keys")
        self.assertEqual(len(set(labels)), 6)
        for label in labels:
            self.assertTrue(label.startswith(b"sframe/1 rekey "))

    def test_wipes(self):
        """
        Moving to the next epoch overwrites the secret it came from; the
        chain's repr shows no secret.
        """
        chain = R.keyChains(SEED003, TRANSCRIPT, SECRET, True)[0]
        held = chain._secret
        self.assertNotEqual(bytes(held), bytes(32))
        chain.next()
        self.assertEqual(bytes(held), bytes(32))
        self.assertNotIn(bytes(chain._secret).hex(), repr(chain))
        self.assertIn("c2s", repr(chain))


class ConfigTests(unittest.TestCase):
    """
    The rotation options of L{StreamConfig}.
    """

    def test_defaults(self):
        """
        Keys rotate every 300 s and every 2^20 frames by default.
        """
        config = StreamConfig()
        self.assertEqual((config.rekeyAfterTime, config.rekeyAfterFrames), (300.0, 2**20))

    def test_invalid(self):
        """
        rekeyAfterTime must be positive; rekeyAfterFrames from 1 to
        2^32 - 2 (the REKEY frame makes one more under the key, and suite 1
        carries 2^32 - 1).
        """
        for bad in (0, -1.0, float("nan")):
            self.assertRaises(ConfigurationError, StreamConfig, rekeyAfterTime=bad)
        for bad in (0, -1, 2**32 - 1):
            self.assertRaises(ConfigurationError, StreamConfig, rekeyAfterFrames=bad)
        StreamConfig(rekeyAfterFrames=1, rekeyAfterTime=0.001)
        StreamConfig(rekeyAfterFrames=2**32 - 2)


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


# -- a long connection over SFrameProtocol --------------------------------------


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


def pattern(seed, size):
    """
    @return: C{size} bytes that differ from those of any other seed.
    """
    out, counter = [], 0
    while sum(map(len, out)) < size:
        out.append(hashlib.sha256(b"%s %d" % (seed, counter)).digest())
        counter += 1
    return b"".join(out)[:size]


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
