# -*- test-case-name: sudp_test.udp.test_packets -*-
"""
Tests for L{sudp.udp.packets}.

Property tests (hypothesis) of the sudp/1 wire format and engines: decoders
raise only L{MalformedPacket}, encodings round-trip, the engines never raise
on arbitrary or mutated datagrams and an open session survives them, and the
replay window agrees with a reference model.
"""

from hypothesis import given, strategies as st
from twisted.trial import unittest

from sudp.errors import MalformedPacket
from sudp.udp import packets as P, records as R

from sudp_test.udp.helpers import FAST, anyBytes, u64, u8

u32 = st.integers(0, 0xFFFFFFFF)

index = st.integers(1, 0xFFFFFFFF)  # session indexes are never 0

def onlyMalformed(testCase, decoder, data):
    """
    Call C{decoder(data)}; anything raised other than MalformedPacket fails.
    """
    try:
        decoder(data)
    except MalformedPacket as e:
        testCase.assertIsInstance(e.reason, str)
        testCase.assertTrue(e.reason)

class DecoderTests(unittest.TestCase):
    """
    Every decoder, on arbitrary bytes, returns or raises MalformedPacket.
    """

    @FAST
    @given(anyBytes)
    def test_packetType(self, data):
        """
        packetType returns a known type byte or raises MalformedPacket.
        """
        try:
            t = P.packetType(data)
        except MalformedPacket as e:
            self.assertIn(e.reason, ("empty", "wrong-version", "unknown-type"))
        else:
            self.assertIn(t, P.PACKET_NAMES)

    @FAST
    @given(anyBytes)
    def test_decodeHello(self, data):
        """
        decodeHello raises only MalformedPacket.
        """
        onlyMalformed(self, P.decodeHello, data)

    @FAST
    @given(anyBytes)
    def test_decodeCookie(self, data):
        """
        decodeCookie raises only MalformedPacket.
        """
        onlyMalformed(self, P.decodeCookie, data)

    @FAST
    @given(st.one_of(anyBytes, st.builds(
        lambda head, count, rest: bytes([0x13]) + head + bytes([count]) + rest,
        st.binary(min_size=56, max_size=56), st.integers(0, 20), st.binary(max_size=24),
    )))
    def test_decodeInit(self, data):
        """
        HandshakeInit.decode raises only MalformedPacket.
        """
        onlyMalformed(self, P.HandshakeInit.decode, data)

    @FAST
    @given(st.one_of(anyBytes, st.binary(min_size=P.HANDSHAKE_RESP_SIZE,
                                         max_size=P.HANDSHAKE_RESP_SIZE)))
    def test_decodeResp(self, data):
        """
        HandshakeResp.decode raises only MalformedPacket.
        """
        onlyMalformed(self, P.HandshakeResp.decode, data)

    @FAST
    @given(anyBytes, st.sampled_from([0, 16, 32]))
    def test_decodeDataHeader(self, data, tagSize):
        """
        decodeDataHeader raises only MalformedPacket.
        """
        onlyMalformed(self, lambda d: P.decodeDataHeader(d, tagSize), data)

    @FAST
    @given(st.one_of(
        st.binary(max_size=300),
        st.lists(st.tuples(u8, st.binary(max_size=120)), max_size=6).map(
            lambda recs: b"".join(R.encodeRecord(t, v) for t, v in recs)
        ),
        st.tuples(
            st.lists(
                st.tuples(st.sampled_from(sorted(R.KNOWN)), st.binary(max_size=110)), max_size=4
            ),
            st.integers(0, 5),
        ).map(lambda x: b"".join(R.encodeRecord(t, v) for t, v in x[0])[: -x[1] or None]),
    ))
    def test_decodeRecords(self, data):
        """
        decodeRecords raises only MalformedPacket, on arbitrary bytes and on
        sequences of (possibly wrong-sized, possibly cut off) records.
        """
        onlyMalformed(self, R.decodeRecords, data)

    @FAST
    @given(st.binary(max_size=600))
    def test_decodeClose(self, data):
        """
        decodeClose raises only MalformedPacket (on an empty value: no
        reason code).
        """
        onlyMalformed(self, R.decodeClose, data)

    def test_decodeCloseEmptyValueFromRecords(self):
        """
        The engines' path is safe: decodeRecords refuses a CLOSE record with
        an empty value before decodeClose could see it.
        """
        e = self.assertRaises(MalformedPacket, R.decodeRecords, R.encodeRecord(R.CLOSE, b""))
        self.assertEqual(e.reason, "bad-record")

class RoundTripTests(unittest.TestCase):
    """
    decode(encode(x)) == x for every packet type and for records.
    """

    @FAST
    @given(st.binary(min_size=8, max_size=8))
    def test_hello(self, nonce):
        """
        HELLO: 64 bytes, nonce back.
        """
        data = P.encodeHello(nonce)
        self.assertEqual(len(data), P.HELLO_SIZE)
        self.assertEqual(P.packetType(data), P.HELLO)
        self.assertEqual(P.decodeHello(data), nonce)

    @FAST
    @given(st.binary(min_size=8, max_size=8), u32, st.binary(min_size=16, max_size=16))
    def test_cookie(self, nonce, timestamp, cookie):
        """
        COOKIE: 29 bytes, fields back.
        """
        data = P.encodeCookie(nonce, timestamp, cookie)
        self.assertEqual(len(data), P.COOKIE_PACKET_SIZE)
        self.assertEqual(P.packetType(data), P.COOKIE)
        self.assertEqual(P.decodeCookie(data), (nonce, timestamp, cookie))

    @FAST
    @given(index, u32, st.binary(min_size=16, max_size=16), st.binary(min_size=32, max_size=32),
           st.lists(u8, min_size=1, max_size=16))
    def test_init(self, sender, timestamp, cookie, ephemeral, suites):
        """
        HANDSHAKE_INIT: fields back, and re-encoding gives the same bytes.
        """
        data = P.HandshakeInit(sender, timestamp, cookie, ephemeral, suites).encode()
        self.assertEqual(P.packetType(data), P.HANDSHAKE_INIT)
        init = P.HandshakeInit.decode(data)
        self.assertEqual(
            (init.senderIndex, init.timestamp, init.cookie, init.ephemeral, init.suites),
            (sender, timestamp, cookie, ephemeral, tuple(suites)),
        )
        self.assertEqual(init.encode(), data)

    @FAST
    @given(index, index, u8, st.binary(min_size=32, max_size=32),
           st.binary(min_size=16, max_size=16), st.binary(min_size=64, max_size=64))
    def test_resp(self, receiver, sender, suite, ephemeral, confirm, signature):
        """
        HANDSHAKE_RESP: fields back; the prefix is the first 42 bytes.
        """
        resp = P.HandshakeResp(receiver, sender, suite, ephemeral, confirm, signature)
        data = resp.encode()
        self.assertEqual(len(data), P.HANDSHAKE_RESP_SIZE)
        self.assertEqual(P.packetType(data), P.HANDSHAKE_RESP)
        back = P.HandshakeResp.decode(data)
        self.assertEqual(
            (back.receiverIndex, back.senderIndex, back.suite,
             back.ephemeral, back.confirm, back.signature),
            (receiver, sender, suite, ephemeral, confirm, signature),
        )
        self.assertEqual(resp.prefix(), data[: P.RESP_PREFIX_SIZE])

    def test_zeroIndexRefused(self):
        """
        Index 0 names no session: an INIT or RESP carrying it does not
        decode (C{bad-field}).
        """
        init = P.HandshakeInit(0, 1, bytes(16), bytes(32), [1]).encode()
        e = self.assertRaises(MalformedPacket, P.HandshakeInit.decode, init)
        self.assertEqual(e.reason, "bad-field")
        for receiver, sender in ((0, 1), (1, 0)):
            resp = P.HandshakeResp(receiver, sender, 1, bytes(32), bytes(16), bytes(64)).encode()
            e = self.assertRaises(MalformedPacket, P.HandshakeResp.decode, resp)
            self.assertEqual(e.reason, "bad-field")

    @FAST
    @given(st.sampled_from([0x18, 0x19, 0x1A, 0x1B]), u32, u64, st.binary(min_size=16, max_size=64))
    def test_dataHeader(self, t, index, seq, body):
        """
        DATA/CONTROL header: fields back, whatever follows.
        """
        data = P.encodeDataHeader(t, index, seq) + body
        self.assertEqual(P.packetType(data), t)
        self.assertEqual(P.decodeDataHeader(data, 16), (t, index, seq))

    validRecord = st.one_of(
        st.tuples(st.just(R.APP_DATA), st.binary(max_size=200)),
        st.tuples(st.sampled_from([R.KEEPALIVE, R.CONFIRM]), st.just(b"")),
        st.tuples(st.just(R.CLIENT_AUTH), st.binary(min_size=96, max_size=96)),
        st.tuples(st.just(R.REKEY_REQUEST), st.sampled_from([4, 36]).flatmap(
            lambda n: st.binary(min_size=n, max_size=n))),
        st.tuples(st.just(R.REKEY_RESPONSE), st.binary(min_size=100, max_size=100)),
        st.tuples(st.just(R.CLOSE), st.binary(min_size=1, max_size=513)),
        st.tuples(st.just(R.RESET_TOKEN), st.binary(min_size=16, max_size=16)),
        st.tuples(st.just(R.NEXT_SERVER_KEY), st.binary(min_size=96, max_size=96)),
    )

    @FAST
    @given(st.lists(validRecord, min_size=1, max_size=6),
           st.lists(st.tuples(st.integers(0x80, 0xFF).filter(lambda t: t == R.PADDING or t not in R.KNOWN),
                              st.binary(max_size=40)), max_size=3))
    def test_records(self, records, optional):
        """
        A sequence of valid records decodes to itself; optional (0x80 and
        up, PADDING included) records in between are skipped, but for those
        this version knows and checks (RESET_TOKEN, NEXT_SERVER_KEY).
        """
        data = b"".join(R.encodeRecord(t, v) for t, v in records)
        self.assertEqual(R.decodeRecords(data), records)
        mixed = b"".join(R.encodeRecord(t, v) for t, v in optional) + data
        self.assertEqual(R.decodeRecords(mixed), records)

    @FAST
    @given(st.sampled_from(sorted(R.CLOSE_REASONS)), st.text(max_size=120))
    def test_close(self, code, text):
        """
        CLOSE: code and text back (text up to 512 bytes of UTF-8).
        """
        [(t, value)] = R.decodeRecords(R.encodeClose(code, text))
        self.assertEqual(t, R.CLOSE)
        self.assertEqual(R.decodeClose(value), (code, text))
