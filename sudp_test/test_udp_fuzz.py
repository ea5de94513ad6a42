"""
Property tests (hypothesis) of the sudp/1 wire format and engines: decoders
raise only L{MalformedPacket}, encodings round-trip, the engines never raise
on arbitrary or mutated datagrams and an open session survives them, and the
replay window agrees with a reference model.
"""


from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from sudp.errors import MalformedPacket
from sudp.udp import packets as P
from sudp.udp import records as R
from sudp.udp.config import Config
from sudp.udp.events import MessageReceived
from sudp.speedups import native
from sudp.udp.replay import ReplayWindow

from sudp_test.enginehelpers import (
    CLIENT_ADDR,
    SERVER_ADDR,
    connectedPair,
    serverSessionOf,
    takeOutbox,
)

FAST = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

u8 = st.integers(0, 0xFF)
u32 = st.integers(0, 0xFFFFFFFF)
index = st.integers(1, 0xFFFFFFFF)  # session indexes are never 0
u64 = st.integers(0, 2**64 - 1)

# arbitrary bytes, and bytes that start with a version-1 type byte so that
# the decoders get past the first check more often
anyBytes = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda t, rest: bytes([t]) + rest, st.integers(0x10, 0x1F), st.binary(max_size=300)),
)


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


# -- engines ------------------------------------------------------------------


def mutate(data, ops):
    """
    Apply C{ops}, a list of C{(kind, position, value)}, to C{data}.
    """
    out = bytearray(data)
    for kind, pos, value in ops:
        if kind == "flip" and out:
            out[pos % len(out)] ^= 1 << (value % 8)
        elif kind == "set" and out:
            out[pos % len(out)] = value
        elif kind == "cut":
            del out[pos % (len(out) + 1):]
        elif kind == "insert":
            out[pos % (len(out) + 1):pos % (len(out) + 1)] = bytes([value])
        elif kind == "extend":
            out += bytes([value]) * (pos % 64)
    return bytes(out)


mutations = st.lists(
    st.tuples(
        st.sampled_from(["flip", "set", "cut", "insert", "extend"]), st.integers(0, 2000), u8
    ),
    min_size=1, max_size=4,
)
datagramLists = st.lists(
    st.one_of(anyBytes, st.binary(min_size=29, max_size=1600)), min_size=1, max_size=5
)
addresses = st.sampled_from([CLIENT_ADDR, ("127.0.0.1", 40001), ("10.0.0.9", 53), ("::1", 40000)])


class EngineFuzzTests(unittest.TestCase):
    """
    The engines on arbitrary and mutated datagrams: nothing raises, and the
    open session still carries messages both ways afterwards.
    """

    def setUp(self):
        self.net, self.server, self.client = connectedPair(Config(rekeyAfterMessages=6))
        self.session = serverSessionOf(self.server, self.client)
        self.count = 0
        # real packets of every kind, all already delivered
        for i in range(8):
            self.client.sendMessage(self.client.session, b"c%d" % i, self.net.now)
            self.server.sendMessage(self.session, b"s%d" % i, self.net.now)
            self.net.pump()
        self.fromClient = [d for s, dst, d in self.net.sent if dst == SERVER_ADDR]
        self.fromServer = [d for s, dst, d in self.net.sent if s == SERVER_ADDR]
        self.assertEqual({d[0] for d in self.fromClient} >= {0x11, 0x13, 0x18, 0x1A}, True)
        self.assertEqual({d[0] for d in self.fromServer} >= {0x12, 0x14, 0x1A}, True)
        self.net.events = []

    def assertStillWorks(self):
        """
        Nothing was delivered from the junk; then a message goes each way.
        """
        self.assertEqual([e for w, e in self.net.events if isinstance(e, MessageReceived)], [])
        self.assertEqual(self.session.state, "open")
        self.assertEqual(self.client.session.state, "open")
        self.count += 1
        tag = b"%d" % self.count
        self.client.sendMessage(self.client.session, b"ping" + tag, self.net.now)
        self.server.sendMessage(self.session, b"pong" + tag, self.net.now)
        events = self.net.pump()
        got = sorted(e.message for w, e in events if isinstance(e, MessageReceived))
        self.assertEqual(got, [b"ping" + tag, b"pong" + tag])
        self.net.events = []

    def toServer(self, data, addr):
        self.server.receiveDatagram(data, addr, self.net.now)
        # a mutated INIT can carry a still-valid cookie and open a pending
        # handshake; its RESP goes nowhere
        for reply, dst in takeOutbox(self.server):
            self.assertLessEqual(len(reply), max(len(data), P.HANDSHAKE_RESP_SIZE))
            if len(reply) > len(data):  # only to an address its cookie proved
                self.assertEqual((reply[0], dst), (P.HANDSHAKE_RESP, CLIENT_ADDR))

    def toClient(self, data):
        self.client.receiveDatagram(data, SERVER_ADDR, self.net.now)
        self.assertEqual(takeOutbox(self.client), [])
        self.assertEqual(self.client.events, [])

    @FAST
    @given(datagramLists,
           addresses)
    def test_serverArbitraryBytes(self, datagrams, addr):
        """
        ServerEngine.receiveDatagram on arbitrary bytes never raises and the
        session survives.
        """
        for data in datagrams:
            self.toServer(data, addr)
        self.assertEqual(self.server.events, [])
        self.assertStillWorks()

    @FAST
    @given(st.data(), addresses)
    def test_serverAimedBytes(self, data, addr):
        """
        Random DATA/CONTROL packets aimed at the open session (its index,
        any type byte, any sequence number) never raise and change nothing.
        """
        t = data.draw(st.integers(0x10, 0x1F))
        seq = data.draw(st.one_of(u64, st.integers(0, 40)))
        body = data.draw(st.binary(max_size=200))
        packet = P.encodeDataHeader(t, self.session.localIndex, seq) + body
        highest = [ep and ep.window.highest for ep in self.session.epochs]
        self.toServer(packet, addr)
        self.assertEqual([ep and ep.window.highest for ep in self.session.epochs], highest)
        self.assertEqual(self.session.peerAddr, CLIENT_ADDR)
        self.assertEqual(self.server.events, [])
        self.assertStillWorks()

    @FAST
    @given(st.data(), mutations, addresses)
    def test_serverMutatedPackets(self, data, ops, addr):
        """
        Mutations of real client packets (HELLO, INIT, CONFIRM, DATA,
        rekey CONTROL) never raise, deliver nothing and leave the session
        working.
        """
        original = data.draw(st.sampled_from(self.fromClient))
        self.toServer(mutate(original, ops), addr)
        self.assertEqual(self.session.peerAddr, CLIENT_ADDR)
        self.assertLessEqual(self.server.pendingCount, 1 + self.count)
        self.assertStillWorks()

    @FAST
    @given(datagramLists)
    def test_clientArbitraryBytes(self, datagrams):
        """
        ClientEngine.receiveDatagram on arbitrary bytes never raises, sends
        nothing and the session survives.
        """
        for data in datagrams:
            self.toClient(data)
        self.assertStillWorks()

    @FAST
    @given(st.data())
    def test_clientAimedBytes(self, data):
        """
        Random packets carrying the client's own index never raise.
        """
        t = data.draw(st.integers(0x10, 0x1F))
        seq = data.draw(st.one_of(u64, st.integers(0, 40)))
        body = data.draw(st.binary(max_size=200))
        self.toClient(P.encodeDataHeader(t, self.client.session.localIndex, seq) + body)
        self.assertStillWorks()

    @FAST
    @given(st.data(), mutations)
    def test_clientMutatedPackets(self, data, ops):
        """
        Mutations of real server packets (COOKIE, RESP, keepalives, DATA,
        rekey responses) never raise and leave the session working.
        """
        original = data.draw(st.sampled_from(self.fromServer))
        self.toClient(mutate(original, ops))
        self.assertStillWorks()

    @settings(max_examples=60, deadline=None)
    @given(st.data())
    def test_reorderedDuplicatedDelivery(self, data):
        """
        Real packets delivered in any order, any number of times, each reach
        the application at most once; with ordering=strict, in increasing
        order.
        """
        strict = data.draw(st.booleans())
        net, server, client = connectedPair(Config(ordering="strict" if strict else "window"))
        packets = []
        for i in range(12):
            client.sendMessage(client.session, b"%d" % i, net.now)
            packets.extend(d for d, _ in takeOutbox(client))
        order = data.draw(st.lists(st.integers(0, len(packets) - 1), max_size=40))
        for i in order:
            server.receiveDatagram(packets[i], CLIENT_ADDR, net.now)
        got = [int(e.message) for e in server.events]
        self.assertEqual(len(got), len(set(got)))
        if not strict:
            self.assertEqual(set(got), set(order))
        else:
            self.assertEqual(got, sorted(got))
            expected = []
            for i in order:
                if not expected or i > expected[-1]:
                    expected.append(i)
            self.assertEqual(got, expected)


class ReplayWindowModel:
    """
    The reference: a set of every committed number and the highest.
    """

    def __init__(self, size, strict):
        self.size = size
        self.strict = strict
        self.seen = set()
        self.highest = -1

    def check(self, seq):
        if seq > self.highest:
            return True
        if self.strict:
            return False
        return self.highest - seq < self.size and seq not in self.seen

    def commit(self, seq):
        self.seen.add(seq)
        self.highest = max(self.highest, seq)




class ReplayWindowTests(unittest.TestCase):
    """
    L{ReplayWindow} (pure Python) against L{ReplayWindowModel}; the C
    window runs the same tests below.
    """

    window = ReplayWindow

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.differing_executors])
    @given(
        st.sampled_from([64, 65, 128, 1024]),
        st.booleans(),
        st.lists(
            st.tuples(
                st.one_of(st.integers(-1100, 1100), st.integers(-(2**64), 2**64)),
                st.booleans(),
            ),
            max_size=150,
        ),
    )
    def test_agreesWithModel(self, size, strict, ops):
        """
        Random check/commit sequences (sequence numbers near the highest,
        and far from it): check agrees with the model and changes nothing;
        commit after a passing check keeps the two in step.
        """
        window = self.window(size, strict)
        model = ReplayWindowModel(size, strict)
        for delta, commit in ops:
            seq = min(max(0, model.highest + delta), 2**64 - 1) if abs(delta) <= 1100 else abs(delta) % 2**64
            state = window.state()
            ok = window.check(seq)
            self.assertEqual(ok, model.check(seq), (seq, model.highest))
            self.assertEqual(window.state(), state)
            self.assertEqual(window.check(seq), ok)
            if ok and commit:
                window.commit(seq)
                model.commit(seq)
                self.assertFalse(window.check(seq))
            self.assertEqual(window.highest, model.highest)
            # the state is exactly the model's, seen numbers in the window
            bits = sum(1 << (model.highest - s) for s in model.seen if 0 <= model.highest - s < size)
            self.assertEqual(window.state(), (model.highest, bits))
            if self.window is ReplayWindow:
                # memory stays bounded: the bitmap is trimmed to the window
                # once it reaches twice the window's size
                self.assertLessEqual(window._bits.bit_length(), 2 * size)

    @settings(FAST, suppress_health_check=[HealthCheck.differing_executors])
    @given(st.sampled_from([64, 1024, 2048]), st.permutations(list(range(300))))
    def test_everyNumberOnce(self, size, order):
        """
        Committing every number that passes, in any order: each number is
        accepted at most once, and all are accepted when the window covers
        the whole range.
        """
        window = self.window(size)
        accepted = []
        for seq in order + order:
            if window.check(seq):
                window.commit(seq)
                accepted.append(seq)
        self.assertEqual(len(accepted), len(set(accepted)))
        if size > 300:
            self.assertEqual(sorted(accepted), list(range(300)))


class NativeReplayWindowTests(ReplayWindowTests):
    """
    The C window (L{sudp.speedups}) against the same model and tests.
    """

    window = native.Window if native is not None else None
    if native is None:
        skip = "the C speedups are not built here"

    @FAST
    @given(st.sampled_from([64, 100, 1024]), st.integers(0, 2**64 - 1), st.lists(st.integers(0, 5000), max_size=60))
    def test_farJumps(self, size, base, steps):
        """
        Jumps of any length from any base, up to the top of the 64-bit
        range: the ring forgets what left the window and nothing else.
        """
        window = self.window(size)
        model = ReplayWindowModel(size, False)
        for step in steps:
            seq = min(base + step, 2**64 - 1)
            ok = window.check(seq)
            self.assertEqual(ok, model.check(seq))
            if ok:
                window.commit(seq)
                model.commit(seq)
            bits = sum(1 << (model.highest - s) for s in model.seen if 0 <= model.highest - s < size)
            self.assertEqual(window.state(), (model.highest, bits))

    def test_limits(self):
        """
        Sizes out of range and sequence numbers that are not 64-bit
        unsigned are typed errors, never a wrong answer.
        """
        self.assertRaises(ValueError, self.window, 63)
        self.assertRaises(ValueError, self.window, 2**25)
        window = self.window(64)
        self.assertRaises(OverflowError, window.check, -1)
        self.assertRaises(OverflowError, window.check, 2**64)
        self.assertRaises(TypeError, window.commit, "1")
        self.assertEqual(window.highest, -1)
