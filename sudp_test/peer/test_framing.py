# -*- test-case-name: sudp_test.peer.test_framing -*-
"""
Tests for L{sudp.peer.framing}.
"""


import zstandard
from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from sudp.errors import MalformedPacket, MessageTooLarge
from sudp.peer.framing import (
    COMPRESSED,
    Framing,
    HEADER_SIZE,
    overhead,
    PADDED,
    PEER_VERSION,
    UnknownVersion,
)

def _mangledFrame(padded, message, where, value):
    """
    @return: a compressed peer message whose zstd frame has one byte changed
        (or is cut), padded or not.
    """
    frame = bytearray(zstandard.ZstdCompressor().compress(message))
    where %= len(frame) + 1
    if where == len(frame):
        frame = frame[: value % len(frame)]
    else:
        frame[where] = value
    if padded:
        return bytes([PEER_VERSION, COMPRESSED | PADDED]) + len(frame).to_bytes(2, "big") + bytes(frame) + bytes(7)
    return bytes([PEER_VERSION, COMPRESSED]) + bytes(frame)

class FramingTests(unittest.SynchronousTestCase):
    MODES = [Framing(1400, compress=c, pad=p) for c in (False, True) for p in (False, True)]

    def test_withoutZstandard(self):
        """
        Without zstandard, compress=True says which install it needs, and a
        compressed message from a peer is a counted drop, not an ImportError.
        """
        from sudp.errors import ConfigurationError, MalformedPacket
        from sudp.peer import framing

        message = Framing(1400, compress=True).encode(b"z" * 500)
        self.patch(framing, "_zstandard", lambda: None)
        e = self.assertRaises(ConfigurationError, Framing, 1400, compress=True)
        self.assertIn("pip install 'txsudp[peer]'", str(e))
        e = self.assertRaises(MalformedPacket, Framing(1400).decode, message)
        self.assertEqual(e.reason, "compression-unsupported")

    def test_overheadAndSizes(self):
        """
        Every layer's overhead is accounted for: a Framing's maxMessage is
        the MTU less overhead(); a padded message is always padTo bytes, so
        its datagram fills the MTU exactly; an MTU too small is refused.
        """
        for mtu in (576, 1280, 1400, 1500, 9000):
            for family in (4, 6):
                for pad in (False, True):
                    f = Framing(mtu, family, pad=pad)
                    self.assertEqual(f.maxMessage, mtu - overhead(family, pad))
                    self.assertEqual(f.datagramSize, mtu - (28 if family == 4 else 48))
                    top = f.encode(bytes(f.maxMessage))
                    self.assertEqual(len(top) + 13 + 16, f.datagramSize)
                    if pad:
                        self.assertEqual(len(f.encode(b"")), f.padTo)
        self.assertRaises(ValueError, Framing, 59)
        self.assertEqual(Framing(60).maxMessage, 1)

    @settings(max_examples=400, deadline=None)
    @given(st.one_of(
        st.binary(max_size=1500),
        st.tuples(st.integers(0, 3), st.binary(max_size=300)).map(lambda t: bytes([PEER_VERSION, t[0]]) + t[1]),
        st.tuples(st.booleans(), st.binary(max_size=300), st.integers(0, 2**16), st.integers(0, 255)).map(
            lambda t: _mangledFrame(*t))))
    def test_decodeArbitraryBytes(self, data):
        """
        Decoding arbitrary bytes, bytes with a valid version and flags, and
        compressed messages with a corrupted or cut zstd frame returns bytes
        or raises MalformedPacket, in every mode: nothing else.
        """
        for f in self.MODES:
            try:
                result = f.decode(data)
            except MalformedPacket:
                continue
            self.assertIsInstance(result, bytes)

    @settings(max_examples=200, deadline=None)
    @given(st.one_of(st.binary(max_size=1400),
                     st.tuples(st.binary(min_size=1, max_size=20), st.integers(1, 400)).map(lambda t: t[0] * t[1])))
    def test_roundTrip(self, message):
        """
        For any message, in every mode: encode either raises MessageTooLarge
        (only past maxMessage, after compression) or gives a peer message
        that every mode decodes back to it; padded ones all have one size.
        """
        for f in self.MODES:
            try:
                encoded = f.encode(message)
            except MessageTooLarge as e:
                self.assertGreater(len(message), f.maxMessage)
                self.assertEqual(e.limit, f.maxMessage)
                self.assertGreater(e.size, f.maxMessage)
                continue
            self.assertEqual(encoded[0], PEER_VERSION)
            if f.pad:
                self.assertEqual(len(encoded), f.padTo)
            for g in self.MODES:
                self.assertEqual(g.decode(encoded), message)

    def test_zstdBomb(self):
        """
        A compressed message that would expand past maxDecompressed (64 KiB),
        or does not declare its size, or lies about it, is refused as
        MalformedPacket (bad-compression) without expanding it; one at the
        limit is accepted.
        """
        f = Framing(1400, compress=True)
        head = bytes([PEER_VERSION, COMPRESSED])
        bomb = zstandard.ZstdCompressor().compress(bytes(10**7))
        self.assertLess(len(bomb), 1400)
        e = self.assertRaises(MalformedPacket, f.decode, head + bomb)
        self.assertEqual(e.reason, "bad-compression")
        justOver = zstandard.ZstdCompressor().compress(bytes(65537))
        self.assertEqual(self.assertRaises(MalformedPacket, f.decode, head + justOver).reason, "bad-compression")
        atLimit = zstandard.ZstdCompressor().compress(bytes(65536))
        self.assertEqual(f.decode(head + atLimit), bytes(65536))
        unsized = zstandard.ZstdCompressor(write_content_size=False).compress(bytes(1000))
        self.assertEqual(self.assertRaises(MalformedPacket, f.decode, head + unsized).reason, "bad-compression")
        honest = zstandard.ZstdCompressor().compress(bytes(range(256)) * 4)
        # a 2-byte content size field holds size - 256: make the frame claim 256 bytes, not 1024
        liar = honest.replace((1024 - 256).to_bytes(2, "little"), bytes(2), 1)
        self.assertEqual(zstandard.frame_content_size(liar), 256)
        self.assertEqual(self.assertRaises(MalformedPacket, f.decode, head + liar).reason, "bad-compression")
        padded = Framing(1400, compress=True, pad=True)
        e = self.assertRaises(MalformedPacket, padded.decode, bytes([PEER_VERSION, COMPRESSED | PADDED])
                              + len(bomb).to_bytes(2, "big") + bomb)
        self.assertEqual(e.reason, "bad-compression")

    def test_versionAndFlags(self):
        """
        Another version raises UnknownVersion (a MalformedPacket, reason
        unknown-version, naming both versions); unknown flag bits bad-flags;
        a short message or a padded length past the end truncated.
        """
        f = Framing(1400)
        for version in (0, 2, 255):
            e = self.assertRaises(UnknownVersion, f.decode, bytes([version, 0]) + b"x")
            self.assertIsInstance(e, MalformedPacket)
            self.assertEqual((e.reason, e.version), ("unknown-version", version))
            self.assertIn(f"version {version}", str(e))
            self.assertIn(f"speaks {PEER_VERSION}", str(e))
        for flags in (4, 0x80, 0xFF):
            self.assertEqual(self.assertRaises(MalformedPacket, f.decode, bytes([1, flags])).reason, "bad-flags")
        for data in (b"", b"\x01", bytes([1, PADDED]), bytes([1, PADDED, 0, 5, 1, 2])):
            self.assertEqual(self.assertRaises(MalformedPacket, f.decode, data).reason, "truncated")
        self.assertEqual(len(f.encode(b"")), HEADER_SIZE)  # an empty message is the bare header
        self.assertEqual(f.decode(bytes([PEER_VERSION, 0])), b"")
