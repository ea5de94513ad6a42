# -*- test-case-name: sudp_test.stream.test_handshake -*-
"""
Tests for L{sudp.stream.handshake}.

Hypothesis properties of the sframe key exchange and of the handshake
functions of L{sudp.udp.handshake} (C{checkAnswer}, C{checkClientProof}):
only the typed error, never another exception.
"""

import struct

from cryptography.hazmat.primitives.asymmetric import x25519
from hypothesis import example, given, strategies as st
from twisted.trial import unittest

from sudp.errors import (
    BadServerSignature,
    ClientNotAuthorized,
    ConfigurationError,
    HandshakeFailed,
    MalformedPacket,
)
from sudp.keys import Identity
from sudp.stream.frames import FrameReader, FrameWriter
from sudp.stream.handshake import (
    AEAD_FRAMES,
    ClientKeyExchange,
    GCM_FRAMES,
    SEED003,
    ServerKeyExchange,
    StreamConfig,
)
from sudp.udp import packets as P
from sudp.udp.handshake import checkClientProof, clientProof
from sudp.udp.keyschedule import (
    CLIENT_SIGNATURE_LABEL,
    deriveKeys,
    Ephemeral,
    handshakeTranscript,
    SFRAME_LABELS,
)

from sudp_test.helpers import MODERATE

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

# X25519 points of small order (an all-zero shared secret)
LOW_ORDER = [
    bytes(32),
    bytes([1]) + bytes(31),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
]

def chunked(data, cuts):
    """
    @return: C{data} split at the positions in C{cuts} (modulo its length
        + 1), empty pieces included.
    """
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points + [len(data)]:
        pieces.append(data[last:p])
        last = p
    return pieces

SERVER_IDENTITY = Identity(bytes(range(32)))

CLIENT_IDENTITY = Identity(bytes(range(1, 33)))

STREAM_SUITES = [SEED003, AEAD_FRAMES, GCM_FRAMES]

suiteLists = st.lists(st.sampled_from(STREAM_SUITES), min_size=1, max_size=3, unique=True).map(tuple)

def expectedSuite(policy, offered):
    """
    @param offered: the suite ids a client offered, in its order.
    @return: the suite of C{policy} the server must choose (docs/sframe.md):
        ChaCha20-Poly1305 if the client put it first and the server accepts
        it (a client without AES instructions), else the server's first the
        client offers; or None.
    """
    for suite in policy:
        if suite.name == "chacha20-poly1305" and offered and offered[0] == suite.suiteId:
            return suite
    return next((suite for suite in policy if suite.suiteId in offered), None)

def lowOrder(point):
    """
    @return: True if the X25519 public key C{point} is of small order (its
        shared secret with any private key is all zero; OpenSSL refuses it).
    """
    try:
        x25519.X25519PrivateKey.from_private_bytes(bytes(range(32))).exchange(
            x25519.X25519PublicKey.from_public_bytes(point))
    except ValueError:
        return True
    return False

def initBytes(sender, timestamp, cookie, ephemeral, suites, typeByte=P.HANDSHAKE_INIT):
    """
    @return: the bytes of an INIT with any field values (no checks).
    """
    return (struct.pack(">BII", typeByte, sender, timestamp) + cookie + ephemeral
            + bytes([len(suites) & 0xFF]) + bytes(suites))

def framePair(a, b, data):
    """
    Frames from the writer of C{a} come out of the reader of C{b}.
    """
    wire = FrameWriter(a.writer).frames(0, data)
    return FrameReader(b.reader).feed(wire)

class SFrameKeyExchangeTests(unittest.TestCase):
    """
    The sframe key exchange, sans-IO: L{ServerKeyExchange} and
    L{ClientKeyExchange} fed arbitrary, structured and mutated handshake
    messages in arbitrary pieces; errors are L{HandshakeFailed} (or its
    subclasses) only.
    """

    def feedServer(self, wire, cuts, config=None):
        """
        @return: C{("ok", result)}, C{("wait", None)} or C{("failed", error)}.
        """
        server = ServerKeyExchange(SERVER_IDENTITY, config or StreamConfig())
        fed = b""
        for piece in chunked(wire, cuts):
            fed += piece
            try:
                result = server.receive(piece)
            except HandshakeFailed as e:
                return "failed", e
            if not result.waiting:
                # the rest of the stream is handed back for the frame reader
                done, reply, rest = result.established, result.toSend, result.rest
                self.assertEqual(fed[2 + struct.unpack(">H", wire[:2])[0]:], rest)
                return "ok", (done, reply, wire[len(fed):])
        return "wait", None

    @MODERATE
    @given(st.one_of(st.binary(max_size=1200),
                     st.binary(max_size=300).map(lambda b: struct.pack(">H", len(b)) + b)),
           st.lists(st.integers(0, 2000), max_size=6))
    def test_serverArbitraryBytes(self, wire, cuts):
        """
        Any bytes, in any pieces: the server waits, fails with
        HandshakeFailed, or answers a decodable INIT with a 2-byte length
        and a 122-byte RESP that decodes.
        """
        outcome, value = self.feedServer(wire, cuts)
        if outcome == "ok":
            done, reply, _ = value
            self.assertEqual(reply[:2], b"\x00\x7a")
            P.HandshakeResp.decode(reply[2:])

    @MODERATE
    @given(
        sender=st.one_of(st.just(0), st.integers(1, 2**32 - 1)),
        timestamp=st.one_of(st.just(0), st.integers(0, 2**32 - 1)),
        cookie=st.one_of(st.just(bytes(16)), st.binary(min_size=16, max_size=16)),
        ephemeral=st.one_of(st.sampled_from(LOW_ORDER), st.binary(min_size=32, max_size=32)),
        suites=st.lists(st.one_of(st.sampled_from([1, 2, 3]), st.integers(0, 255)), max_size=20),
        lengthDelta=st.sampled_from([0, 0, 0, -1, 1, 2000]),
        trailing=st.binary(max_size=20),
        cuts=st.lists(st.integers(0, 200), max_size=4),
        policy=suiteLists,
        typeByte=st.one_of(st.just(P.HANDSHAKE_INIT), st.just(P.HANDSHAKE_INIT), st.integers(0, 255)),
    )
    # hypothesis found it in CI: a client that puts ChaCha20-Poly1305 first
    # gets it from a server preferring another suite
    @example(sender=7, timestamp=0, cookie=bytes(16), ephemeral=bytes(range(1, 33)), suites=[2, 1],
             lengthDelta=0, trailing=b"", cuts=[], policy=(SEED003, AEAD_FRAMES), typeByte=P.HANDSHAKE_INIT)
    def test_serverStructuredInit(self, sender, timestamp, cookie, ephemeral, suites, lengthDelta,
                                  trailing, cuts, policy, typeByte):
        """
        INITs with every field drawn (the type byte, a zero index, nonzero
        timestamp or cookie, low-order keys, 0 to 20 suites, unknown
        suites), a length prefix right or wrong, bytes after it: the outcome
        is exactly what docs/sframe.md section 4 says (an INIT that does not
        decode by protocol.md section 5.3, type 0x13 included, fails), a
        RESP with the server's preferred common suite or HandshakeFailed.
        (The type byte is checked: see
        test_regression_handshakeTypeByteIgnored.)
        """
        body = initBytes(sender, timestamp, cookie, ephemeral, suites, typeByte)
        length = max(0, len(body) + lengthDelta)
        wire = struct.pack(">H", min(length, 0xFFFF)) + body + trailing
        outcome, value = self.feedServer(wire, cuts, StreamConfig(suites=policy))
        message = wire[2: 2 + length]
        if length > 1024:
            expected = "failed"
        elif len(wire) - 2 < length:
            expected = "wait"
        else:
            count = message[57] if len(message) > 57 else 0
            offered = set(message[58:])
            expected = "ok"
            if (len(message) < 59 or message[0] != P.HANDSHAKE_INIT
                    or not 1 <= count <= 16 or len(message) != 58 + count
                    or message[1:5] == bytes(4) or message[5:25] != bytes(20)
                    or not offered & {s.suiteId for s in policy}
                    or lowOrder(message[25:57])):
                expected = "failed"
        self.assertEqual(outcome, expected, value)
        if outcome == "ok":
            done, reply, _ = value
            resp = P.HandshakeResp.decode(reply[2:])
            self.assertEqual(resp.receiverIndex, sender)
            chosen = expectedSuite(policy, list(message[58:]))
            self.assertEqual(resp.suite, chosen.suiteId)
            self.assertIs(done.suite, chosen)

    @MODERATE
    @given(clientSuites=suiteLists, serverSuites=suiteLists,
           cuts=st.lists(st.integers(0, 300), max_size=5), replyCuts=st.lists(st.integers(0, 300), max_size=5),
           withIdentity=st.booleans(), payload=st.binary(max_size=200))
    def test_roundTrip(self, clientSuites, serverSuites, cuts, replyCuts, withIdentity, payload):
        """
        A real client and server, any suite lists and any read boundaries:
        the server picks its first suite the client offers, or
        ChaCha20-Poly1305 if the client offered it first (or fails with
        HandshakeFailed if none), both sides agree on suite and transcript,
        frames pass both ways, and the client's proof of identity verifies.
        """
        client = ClientKeyExchange(SERVER_IDENTITY.publicKey, StreamConfig(suites=clientSuites),
                                   identity=CLIENT_IDENTITY if withIdentity else None)
        common = [s for s in serverSuites if s in clientSuites]
        outcome, value = self.feedServer(client.start().toSend, cuts, StreamConfig(suites=serverSuites))
        if not common:
            self.assertEqual(outcome, "failed")
            return
        self.assertEqual(outcome, "ok")
        serverDone, reply, _ = value
        pieces = chunked(reply, replyCuts)
        for i, piece in enumerate(pieces):
            result = client.receive(piece)
            # it waits until the last byte of the RESP, then answers at once
            self.assertEqual(result.waiting, i < len(pieces) - 1 and sum(map(len, pieces[i + 1:])) > 0)
            if not result.waiting:
                break
        clientDone, rest = result.established, result.rest
        self.assertEqual(rest, b"")
        chosen = expectedSuite(serverSuites, [suite.suiteId for suite in clientSuites])
        self.assertIs(clientDone.suite, chosen)
        self.assertIs(serverDone.suite, chosen)
        self.assertEqual(clientDone.transcript, serverDone.transcript)
        self.assertEqual(framePair(clientDone, serverDone, payload), ([(0, payload)], None))
        self.assertEqual(framePair(serverDone, clientDone, payload), ([(0, payload)], None))
        proof = checkClientProof(clientDone.confirm or None, serverDone.transcript, None, SFRAME_LABELS)
        self.assertEqual(proof, CLIENT_IDENTITY.publicKey if withIdentity else None)

    def genuineReply(self, config=None):
        """
        @return: a started client and the genuine server reply to its INIT.
        """
        config = config or StreamConfig()
        client = ClientKeyExchange(SERVER_IDENTITY.publicKey, config)
        outcome, value = self.feedServer(client.start().toSend, [], config)
        self.assertEqual(outcome, "ok")
        return client, value[1]

    @MODERATE
    @given(st.data(), st.lists(st.integers(0, 300), max_size=5))
    def test_clientArbitraryReplies(self, data, cuts):
        """
        The client fed random bytes, a random 122-byte RESP, or the genuine
        reply mutated (bit flips, byte changes, truncation, extension)
        followed by anything: only HandshakeFailed (BadServerSignature
        included); it succeeds only when the first 124 bytes are exactly
        the genuine reply, and hands back the rest.
        """
        client, genuine = self.genuineReply()
        kind = data.draw(st.sampled_from(["random", "random-resp", "mutated", "genuine"]))
        if kind == "random":
            wire = data.draw(st.binary(max_size=400))
        elif kind == "random-resp":
            wire = b"\x00\x7a\x14" + data.draw(st.binary(min_size=121, max_size=121))
        else:
            wire = bytearray(genuine)
            if kind == "mutated":
                for _ in range(data.draw(st.integers(1, 3))):
                    op = data.draw(st.sampled_from(["flip", "set", "cut"]))
                    pos = data.draw(st.integers(0, len(wire)))
                    if op == "flip" and pos < len(wire):
                        wire[pos] ^= 1 << data.draw(st.integers(0, 7))
                    elif op == "set" and pos < len(wire):
                        wire[pos] = data.draw(st.integers(0, 255))
                    elif op == "cut":
                        del wire[pos:]
            wire = bytes(wire) + data.draw(st.binary(max_size=30))
        result, fed = None, b""
        try:
            for piece in chunked(wire, cuts):
                fed += piece
                result = client.receive(piece)
                if not result.waiting:
                    break
        except HandshakeFailed:
            self.assertNotEqual(wire[:124], genuine)
            return
        if result is None or result.waiting:  # still waiting for the whole message
            self.assertTrue(len(wire) < 2 or len(wire) - 2 < struct.unpack(">H", wire[:2])[0] <= 1024)
            return
        self.assertEqual(wire[:124], genuine)
        self.assertIsNotNone(result.established)
        self.assertEqual(result.rest, fed[124:])

    def test_regression_handshakeTypeByteIgnored(self):
        """
        Regression (found by test_clientArbitraryReplies): HandshakeInit.decode and
        HandshakeResp.decode never look at the type byte (sudp/udp/packets.py
        unpacks it and drops it). The UDP engines dispatch on it first, but
        sframe's key exchange decodes the stream's messages directly, so an
        sframe client accepts a RESP whose first byte is not 0x14 (the
        transcript re-encodes the prefix with 0x14, so the signature still
        verifies: the byte is malleable in flight), and an sframe server
        signs an INIT whose first byte is not 0x13, which
        docs/sframe.md section 4.1 says must fail ("a message that does not
        decode ... by the rules of protocol.md section 5.3"). Fixed: in both
        decode methods, raise MalformedPacket("unexpected-type") when
        data[0] is not HANDSHAKE_INIT / HANDSHAKE_RESP.
        """
        client, genuine = self.genuineReply()
        forged = genuine[:2] + b"\x15" + genuine[3:]
        self.assertRaises(HandshakeFailed, client.receive, forged)
        init = ClientKeyExchange(SERVER_IDENTITY.publicKey, StreamConfig()).start().toSend
        for typeByte in (0x11, 0x14, 0x00):
            outcome, _ = self.feedServer(init[:2] + bytes([typeByte]) + init[3:], [])
            self.assertEqual(outcome, "failed", hex(typeByte))
        self.assertRaises(MalformedPacket, P.HandshakeResp.decode, b"\x15" + genuine[3:])

    @MODERATE
    @given(
        receiver=st.integers(0, 2**32 - 1), sender=st.integers(0, 2**32 - 1), suite=st.integers(0, 255),
        ephemeral=st.one_of(st.integers(0, 2**64).map(lambda n: ("real", n)),
                            st.sampled_from(LOW_ORDER).map(lambda p: ("low", p))),
        rightConfirm=st.booleans(), badSignature=st.booleans(), offered=suiteLists,
    )
    def test_clientSignedLies(self, receiver, sender, suite, ephemeral, rightConfirm, badSignature, offered):
        """
        A server that holds the real key and signs RESPs with any field
        values (a suite not offered, a low-order key, a wrong key
        confirmation, zero indexes, another receiver index): exactly the
        documented outcome (docs/sframe.md section 4.4): BadServerSignature
        for a bad signature, HandshakeFailed (not BadServerSignature) for
        the rest, success only when everything is right.
        """
        config = StreamConfig(suites=offered)
        client = ClientKeyExchange(SERVER_IDENTITY.publicKey, config)
        init = client.start().toSend[2:]
        if ephemeral[0] == "real":
            eph = Ephemeral(ephemeral[1].to_bytes(32, "big"))
            public = eph.public
        else:
            eph, public = None, ephemeral[1]
        prefix = struct.pack(">BIIB", P.HANDSHAKE_RESP, receiver, sender, suite) + public
        th = handshakeTranscript(SERVER_IDENTITY.publicKey.raw, init, prefix, SFRAME_LABELS.transcript)
        confirm = bytes(16)
        if eph is not None and rightConfirm:
            clientEphemeral = init[25:57]
            confirm = deriveKeys(0, th, eph.exchange(clientEphemeral), 32).confirmation()
        signature = bytearray(SERVER_IDENTITY.sign(SFRAME_LABELS.server + th))
        if badSignature:
            signature[0] ^= 1
        wire = struct.pack(">H", 122) + prefix + confirm + bytes(signature)
        decodable = receiver != 0 and sender != 0
        good = (decodable and not badSignature and suite in {s.suiteId for s in offered}
                and eph is not None and rightConfirm)
        try:
            step = client.receive(wire)
            done, rest = step.established, step.rest
        except BadServerSignature:
            self.assertTrue(decodable and badSignature)
            return
        except HandshakeFailed:
            self.assertFalse(good)
            self.assertFalse(decodable and badSignature)
            return
        self.assertTrue(good)
        self.assertEqual(rest, b"")
        self.assertEqual(done.suite.suiteId, suite)

    @MODERATE
    @given(st.data())
    def test_checkClientProof(self, data):
        """
        sudp.udp.handshake.checkClientProof on no proof, arbitrary bytes, a
        random 96-byte proof, a genuine proof, a genuine proof with one byte
        changed, or one for another transcript, against no, the right or
        other authorized keys: the verified key, None, or
        ClientNotAuthorized, exactly as documented.
        """
        transcript = data.draw(st.binary(min_size=32, max_size=32))
        genuine = clientProof(CLIENT_IDENTITY, transcript)
        kind = data.draw(st.sampled_from(["none", "bytes", "random96", "genuine", "changed", "other"]))
        if kind == "none":
            proof = None
        elif kind == "bytes":
            proof = data.draw(st.binary(max_size=200))
        elif kind == "random96":
            proof = data.draw(st.binary(min_size=96, max_size=96))
        elif kind == "genuine":
            proof = genuine
        elif kind == "changed":
            pos = data.draw(st.integers(0, 95))
            proof = bytearray(genuine)
            proof[pos] ^= data.draw(st.integers(1, 255))
            proof = bytes(proof)
        else:
            proof = clientProof(CLIENT_IDENTITY, bytes(32) if any(transcript) else b"\x01" * 32)
        authorized = data.draw(st.sampled_from([None, "right", "other", "empty"]))
        keys = {None: None, "right": {CLIENT_IDENTITY.publicKey, SERVER_IDENTITY.publicKey},
                "other": {SERVER_IDENTITY.publicKey}, "empty": frozenset()}[authorized]
        try:
            key = checkClientProof(proof, transcript, keys)
        except ClientNotAuthorized:
            self.assertFalse(proof is None and keys is None)
            self.assertFalse(kind == "genuine" and authorized in (None, "right"))
            return
        if proof is None:
            self.assertIsNone(keys)
            self.assertIsNone(key)
        else:
            self.assertEqual(kind, "genuine")
            self.assertEqual(key, CLIENT_IDENTITY.publicKey)
            self.assertIn(authorized, (None, "right"))
            self.assertTrue(key.verify(proof[32:], CLIENT_SIGNATURE_LABEL + transcript))
