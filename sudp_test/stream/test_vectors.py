# -*- test-case-name: sudp_test.stream.test_vectors -*-
"""
The test vectors of docs/sframe.md, parsed out of the document itself.

Two kinds of checks:

  - the code reproduces every documented byte: the key exchange of
    L{sudp.stream.handshake} fed the documented identities and random
    bytes, L{sudp.stream.handshake.frameKeys}, the frames written by
    L{sudp.stream.frames.FrameWriter} with each suite's cipher, the frames
    L{sudp.stream.frames.FrameReader} recovers from the documented wire
    bytes (fed in odd-sized pieces), and the byte streams of two
    L{sudp.stream.protocol.SFrameProtocol}s talking to each other;
  - the documented bytes follow from the documented formulas, recomputed
    here with hashlib, hmac, struct and C{cryptography} primitives only, so
    the specification is tested and not just the code.
"""

import hashlib
import hmac
import itertools
import os
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import algorithms, Cipher, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from twisted.internet import defer
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial import unittest
from zope.interface import implementer

from sudp.errors import ClientNotAuthorized
from sudp.keys import Identity
from sudp.stream import frames as F, handshake as HS, rekey as R
from sudp.stream.protocol import IFrameReceiver, SFrameDone, SFrameFactory
from sudp.udp.keyschedule import SFRAME_LABELS

from sudp_test import vectorfile

SFRAME_MD = os.path.join(os.path.dirname(os.path.dirname(__file__)), "..", "docs", "sframe.md")

def parseVectors(text):
    """
    @return: C{(vectors, params)} of the C{sframe-vectors} and
        C{sframe-params} blocks in C{text} (see L{sudp_test.vectorfile}).
    """
    return vectorfile.parseVectors(text, "sframe")

documented = vectorfile.documentVectors(SFRAME_MD, "sframe")

def sessions():
    """
    @return: the names of the documented sessions (C{ctr}, C{aead}, C{gcm}).
    """
    _, p = documented()
    return [n[: -len("_client_suites")] for n in p if n.endswith("_client_suites")]

def frameList(v, prefix):
    """
    @return: the documented frames C{prefix_1}, C{prefix_2}, ... as dicts
        of their fields (C{header}, C{payload}, C{wire}, ...).
    """
    out = []
    for n in itertools.count(1):
        if f"{prefix}_{n}_wire" not in v:
            return out
        start = f"{prefix}_{n}_"
        out.append({k[len(start):]: b for k, b in v.items() if k.startswith(start)})

def decodeHeader(header):
    return struct.unpack(">IIII", header)

def codeOf(frame):
    return decodeHeader(frame["header"])[1]

def received(frames):
    """
    @return: the C{(code, payload)} pairs a reader should return for C{frames}.
    """
    return [(codeOf(f), f["payload"]) for f in frames]

def pieces(data):
    """
    Cut C{data} into odd-sized pieces: 1, 2, 3, 5, 7, 11, 13, 17 bytes, again.
    """
    sizes = itertools.cycle([1, 2, 3, 5, 7, 11, 13, 17])
    i = 0
    while i < len(data):
        n = next(sizes)
        yield data[i : i + n]
        i += n

class Scripted:
    """
    Hands out the documented random strings: a request for C{n} bytes gets
    the first string of that size not yet handed out.
    """

    def __init__(self, test, strings):
        self.test = test
        self.strings = list(strings)

    def __call__(self, n):
        for i, value in enumerate(self.strings):
            if len(value) == n:
                return self.strings.pop(i)
        self.test.fail(f"asked for {n} random bytes, which the vectors do not list")

def hkdfExtract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()

def hkdfExpand(prk, info, length):
    return HKDFExpand(algorithm=hashes.SHA256(), length=length, info=info).derive(prk)

def x25519Public(private):
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()

def x25519(private, public):
    peer = X25519PublicKey.from_public_bytes(public)
    return X25519PrivateKey.from_private_bytes(private).exchange(peer)

def aesCtr(key, iv, data):
    return Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor().update(data)

def aesBlock(key, block):
    return Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(block)

def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))

_AEADS = {2: ChaCha20Poly1305, 3: AESGCM}

_NAMES = {1: "aes-256-ctr-sha256", 2: "chacha20-poly1305", 3: "aes-256-gcm"}

def suiteIds(text):
    return [int(n) for n in text.split()]

DIRECTIONS = (("c2s", "client"), ("s2c", "server"))

def epochs(frames):
    """
    @return: C{frames} grouped by the keys they are under: a REKEY frame is
        the last of its group.
    """
    groups = [[]]
    for f in frames:
        groups[-1].append(f)
        if codeOf(f) == 0xFFFFFF04:
            groups.append([])
    return groups

class DocumentTests(unittest.TestCase):
    """
    The vectors are all there, well formed, and their inputs are what the
    document says they are.
    """

    def test_parse(self):
        """
        docs/sframe.md holds the three sessions, the refusal and the wrap
        vectors, each with its handshake, keys and both directions' frames.
        """
        v, p = documented()
        self.assertEqual(sessions(), ["ctr", "aead", "gcm"])
        for s in sessions():
            for name in ("init", "init_message", "resp", "resp_message", "transcript",
                         "dh_shared", "prk", "frame_key_block", "client_half", "server_half",
                         "c2s_stream", "s2c_stream"):
                self.assertIn(f"{s}_{name}", v)
            self.assertGreaterEqual(len(frameList(v, f"{s}_c2s")), 4)
            self.assertGreaterEqual(len(frameList(v, f"{s}_s2c")), 4)
        self.assertEqual(len(frameList(v, "ctr_refusal_s2c")), 1)
        self.assertEqual(len(frameList(v, "wrap_ctr")), 2)
        self.assertEqual(len(frameList(v, "wrap_aead")), 2)
        self.assertEqual(int(p["wrap_first_sequence"]), 0xFFFFFFFF)

    def test_parseRejects(self):
        """
        The parser refuses a malformed line, a repeated name and bad hex
        rather than skipping them.
        """
        self.assertRaises(ValueError, parseVectors, "```sframe-vectors\nnot a line\n```\n")
        self.assertRaises(ValueError, parseVectors, "```sframe-vectors\na = 00\na = 01\n```\n")
        self.assertRaises(ValueError, parseVectors, "```sframe-vectors\na = 0g\n```\n")

    def test_labels(self):
        """
        The labels are the documented ASCII strings, and the code uses them.
        """
        v, _ = documented()
        self.assertEqual(v["label_sframe"], b"sudp/1 sframe")
        self.assertEqual(v["label_sframe"], HS.STREAM_LABEL)
        self.assertEqual(v["label_handshake"], b"sframe/1 handshake\0")
        self.assertEqual(v["label_keys"], b"sudp/1 keys")
        self.assertEqual(v["label_server_signature"], b"sframe/1 server signature\0")
        self.assertEqual(v["label_client_signature"], b"sframe/1 client signature\0")
        labels = (v["label_handshake"], v["label_server_signature"], v["label_client_signature"])
        self.assertEqual(labels, (SFRAME_LABELS.transcript, SFRAME_LABELS.server, SFRAME_LABELS.client))

    def test_rekeyDocumented(self):
        """
        Section 11.7 holds, for each session and direction, the chain up to
        secret_3, the keys of epochs 1 and 2 and five frames (DATA, REKEY,
        DATA, REKEY, DATA); its labels are those of the code.
        """
        v, _ = documented()
        for d in ("c2s", "s2c"):
            for purpose in ("secret", "keys", "next"):
                label = v[f"label_rekey_{d}_{purpose}"]
                self.assertEqual(label, f"sframe/1 rekey {d} {purpose}".encode())
                self.assertEqual(label, R.LABELS[d][purpose])
        for s in sessions():
            for d in ("c2s", "s2c"):
                for n in (1, 2, 3):
                    self.assertEqual(len(v[f"rekey_{s}_{d}_secret_{n}"]), 32)
                for n in (1, 2):
                    self.assertEqual(len(v[f"rekey_{s}_{d}_keys_{n}"]), 80)
                frames = frameList(v, f"rekey_{s}_{d}")
                self.assertEqual([codeOf(f) for f in frames], [0, F.CODE_REKEY, 0, F.CODE_REKEY, 0])

    def test_inputs(self):
        """
        Every random string is SHA-256("sframe test vector: " || its name with
        spaces) truncated, and the public keys belong to the seeds.
        """
        v, _ = documented()
        derived = [n for n in v if "_random_" in n or n in ("wrap_transcript", "wrap_secret")]
        self.assertEqual(len(derived), 4 * len(sessions()) + 2)
        for name in derived:
            description = name.replace("_", " ").encode()
            full = hashlib.sha256(b"sframe test vector: " + description).digest()
            self.assertEqual(v[name], full[: len(v[name])], name)
        for who in ("server", "client"):
            key = Ed25519PrivateKey.from_private_bytes(v[f"{who}_identity_seed"]).public_key()
            self.assertEqual(key.public_bytes_raw(), v[f"{who}_public_key"])

class CodeTests(unittest.TestCase):
    """
    The code reproduces every documented byte.
    """

    def setUp(self):
        self.v, self.p = documented()
        self.server = Identity(self.v["server_identity_seed"])
        self.client = Identity(self.v["client_identity_seed"])

    def suites(self, text):
        byId = {s.suiteId: s for s in HS.STREAM_SUITES.values()}
        return tuple(byId[i] for i in suiteIds(text))

    def randoms(self, prefix):
        return Scripted(self, [b for n, b in self.v.items() if n.startswith(prefix)])

    def keyExchanges(self, s):
        """
        @return: the client and server key exchanges of session C{s}, with the
            documented configuration and random strings.
        """
        p = self.p
        identity = self.client if p[f"{s}_client_identity"] == "client" else None
        client = HS.ClientKeyExchange(
            self.server.publicKey, HS.StreamConfig(suites=self.suites(p[f"{s}_client_suites"])),
            identity=identity, random=self.randoms(f"{s}_client_random_"),
        )
        server = HS.ServerKeyExchange(
            self.server, HS.StreamConfig(suites=self.suites(p[f"{s}_server_suites"])),
            random=self.randoms(f"{s}_server_random_"),
        )
        return client, server

    def test_keyExchange(self):
        """
        The key exchanges, fed the documented random bytes, write the
        documented INIT and RESP messages, agree on the documented transcript,
        suite and frame keys, and the client's CONFIRM payload is empty or
        the documented proof.
        """
        v = self.v
        for s in sessions():
            client, server = self.keyExchanges(s)
            self.assertEqual(client.start().toSend, v[f"{s}_init_message"], s)
            step = server.receive(v[f"{s}_init_message"])
            sdone = step.established
            self.assertEqual((step.toSend, step.rest), (v[f"{s}_resp_message"], b""), s)
            step = client.receive(v[f"{s}_resp_message"])
            cdone = step.established
            self.assertEqual(step.rest, b"")
            self.assertEqual(cdone.transcript, v[f"{s}_transcript"])
            self.assertEqual(sdone.transcript, v[f"{s}_transcript"])
            self.assertEqual(cdone.suite.suiteId, v[f"{s}_resp"][9])
            self.assertIs(cdone.suite, sdone.suite)
            self.assertEqual(cdone.confirm, v.get(f"{s}_client_proof", b""))

    def test_keyExchangeInPieces(self):
        """
        The handshake messages may arrive one byte at a time; bytes after
        them are handed back as the start of the frame stream.
        """
        v = self.v
        client, server = self.keyExchanges("ctr")
        client.start()
        message = v["ctr_init_message"]
        for i in range(len(message) - 1):
            self.assertTrue(server.receive(message[i : i + 1]).waiting)
        step = server.receive(message[-1:] + b"xyz")
        self.assertIsNotNone(step.established)
        self.assertEqual((step.toSend, step.rest), (v["ctr_resp_message"], b"xyz"))

    def test_frameKeys(self):
        """
        frameKeys(transcript, secret) gives the documented halves, for every
        session and for the wrap vector.
        """
        v = self.v
        for s in sessions():
            self.assertEqual(HS.frameKeys(v[f"{s}_transcript"], v[f"{s}_dh_shared"]),
                             (v[f"{s}_client_half"], v[f"{s}_server_half"]), s)
        block = v["wrap_frame_key_block"]
        self.assertEqual(HS.frameKeys(v["wrap_transcript"], v["wrap_secret"]),
                         (block[:80], block[80:]))

    def suiteOf(self, s):
        return HS.STREAM_SUITES[_NAMES[self.v[f"{s}_resp"][9]]]

    def directions(self, s):
        """
        @return: C{(direction, writer's half)} of session C{s}.
        """
        return [("c2s", self.v[f"{s}_client_half"]), ("s2c", self.v[f"{s}_server_half"])]

    def assertWrites(self, cipher, frames, firstSequence=1):
        writer = F.FrameWriter(cipher, firstSequence=firstSequence)
        for i, f in enumerate(frames, 1):
            code = codeOf(f)
            self.assertEqual(writer.frame(code, f["payload"]).hex(), f["wire"].hex(), f"frame {i}")

    def assertReads(self, cipher, stream, frames, firstSequence=1):
        reader = F.FrameReader(cipher, firstSequence=firstSequence)
        got = []
        for piece in pieces(stream):
            more, error = reader.feed(piece)
            self.assertIsNone(error)
            got.extend(more)
        self.assertFalse(reader.midFrame)
        self.assertEqual(got, received(frames))

    def test_writer(self):
        """
        FrameWriter with each session's suite writes the documented frames,
        byte for byte, in both directions (and the refusal CLOSE).
        """
        v = self.v
        for s in sessions():
            suite = self.suiteOf(s)
            for d, half in self.directions(s):
                frames = frameList(v, f"{s}_{d}")
                self.assertWrites(suite.cipher(half, True), frames)
                self.assertEqual(b"".join(f["wire"] for f in frames), v[f"{s}_{d}_stream"])
        self.assertWrites(HS.SEED003.cipher(v["ctr_server_half"], True),
                          frameList(v, "ctr_refusal_s2c"))

    def test_writerCipherClasses(self):
        """
        The cipher classes built directly from the documented key parts write
        the same frames: CTRChainCipher(key, iv, macKey) and
        AEADFrameCipher(key) with ChaCha20-Poly1305 or AES-GCM.
        """
        v = self.v
        for d, who in (("c2s", "client"), ("s2c", "server")):
            cipher = F.CTRChainCipher(
                v[f"ctr_{who}_aes_key"], v[f"ctr_{who}_ctr_iv"], v[f"ctr_{who}_mac_key"], True)
            self.assertWrites(cipher, frameList(v, f"ctr_{d}"))
            cipher = F.AEADFrameCipher(v[f"aead_{who}_key"], True)
            self.assertWrites(cipher, frameList(v, f"aead_{d}"))
            cipher = F.AEADFrameCipher(v[f"gcm_{who}_key"], True, AESGCM)
            self.assertWrites(cipher, frameList(v, f"gcm_{d}"))

    def test_reader(self):
        """
        FrameReader recovers every documented frame (CODE and payload) from
        each direction's wire bytes fed in odd-sized pieces.
        """
        v = self.v
        for s in sessions():
            suite = self.suiteOf(s)
            for d, half in self.directions(s):
                self.assertReads(suite.cipher(half, False), v[f"{s}_{d}_stream"],
                                 frameList(v, f"{s}_{d}"))
        self.assertReads(HS.SEED003.cipher(v["ctr_server_half"], False),
                         v["ctr_refusal_s2c_1_wire"], frameList(v, "ctr_refusal_s2c"))

    def test_readerTampered(self):
        """
        A flipped bit anywhere in a frame stops the reader: the frames before
        it are returned, then a FrameError, and nothing after.
        """
        v = self.v
        for s in sessions():
            suite = self.suiteOf(s)
            for d, half in self.directions(s):
                frames = frameList(v, f"{s}_{d}")
                stream = v[f"{s}_{d}_stream"]
                start = len(frames[0]["wire"])  # frame 2
                for offset in (0, 3, 8, 15, 16, len(frames[1]["wire"]) - 1):
                    bad = bytearray(stream)
                    bad[start + offset] ^= 0x01
                    reader = F.FrameReader(suite.cipher(half, False))
                    got, error = reader.feed(bytes(bad))
                    self.assertEqual(got, received(frames[:1]))
                    expected = "bad-mac" if offset >= 16 else "bad-checksum"
                    self.assertEqual(error.reason, expected, (s, d, offset))
                    self.assertEqual(reader.feed(b"more"), ([], error))

    def test_readerLimits(self):
        """
        The header is checked before the payload arrives: a reader whose
        limit is one byte below a frame's LENGTH refuses it after its 16
        header bytes; one that expects another SEQ refuses the first frame.
        """
        v = self.v
        for s in sessions():
            suite = self.suiteOf(s)
            frames = frameList(v, f"{s}_c2s")
            big = max(range(len(frames)), key=lambda i: len(frames[i]["payload"]))
            start = sum(len(f["wire"]) for f in frames[:big])
            length = len(frames[big]["payload"])
            cipher = suite.cipher(v[f"{s}_client_half"], False)
            reader = F.FrameReader(cipher, maxPayload=length - 1)
            got, error = reader.feed(v[f"{s}_c2s_stream"][: start + 16])
            self.assertEqual(len(got), big)
            self.assertEqual(error.reason, "frame-too-large")
            reader = F.FrameReader(suite.cipher(v[f"{s}_client_half"], False), firstSequence=2)
            self.assertEqual(reader.feed(v[f"{s}_c2s_stream"][:16])[1].reason, "bad-sequence")

    def test_wrap(self):
        """
        A writer started at SEQ 0xFFFFFFFF writes the documented frames (the
        second has SEQ 1); a reader started there reads them, and a reader
        that expects SEQ 1 refuses the first.
        """
        v, p = self.v, self.p
        first = int(p["wrap_first_sequence"])
        block = v["wrap_frame_key_block"]
        cases = (("wrap_ctr", HS.SEED003, block[:80]), ("wrap_aead", HS.AEAD_FRAMES, block[80:]))
        for name, suite, half in cases:
            frames = frameList(v, name)
            self.assertWrites(suite.cipher(half, True), frames, firstSequence=first)
            self.assertReads(suite.cipher(half, False), v[f"{name}_stream"], frames,
                             firstSequence=first)
            error = F.FrameReader(suite.cipher(half, False)).feed(v[f"{name}_stream"])[1]
            self.assertEqual(error.reason, "bad-sequence")
        writer = F.FrameWriter(HS.SEED003.cipher(block[:80], True), firstSequence=first)
        writer.frame(0, b"")
        self.assertEqual(writer.sequence, 1)

    def rekeyChains(self, s, d, halves):
        """
        @return: the writing and the reading L{R.KeyChain} of direction C{d}
            of session C{s}, over a suite that records in C{halves} the key
            material each cipher is built from.
        """
        suite = self.suiteOf(s)

        def make(half, encrypt):
            halves.append(bytes(half))
            return suite.cipher(half, encrypt)

        recording = HS.StreamSuite(suite.name, suite.suiteId, make)
        th, dh = self.v[f"{s}_transcript"], self.v[f"{s}_dh_shared"]
        writer = R.keyChains(recording, th, dh, isClient=d == "c2s")[0]
        reader = R.keyChains(recording, th, dh, isClient=d == "s2c")[1]
        return writer, reader

    def test_rekeyKeys(self):
        """
        The key chains hand out the documented keys of epochs 1 and 2, the
        same to the writer and to the reader of a direction.
        """
        v = self.v
        for s in sessions():
            for d, _ in DIRECTIONS:
                halves = []
                writer, reader = self.rekeyChains(s, d, halves)
                for n in (1, 2):
                    writer.next()
                    reader.next()
                    self.assertEqual(halves[-2:], [v[f"rekey_{s}_{d}_keys_{n}"]] * 2, (s, d, n))

    def test_rekeyWriter(self):
        """
        A FrameWriter with its key chain writes the documented frames of
        section 11.7 (REKEY frames through rekey()); one that rotates after
        every frame writes the documented stream from the three DATA frames.
        """
        v = self.v
        for s in sessions():
            suite = self.suiteOf(s)
            for d, half in self.directions(s):
                frames = frameList(v, f"rekey_{s}_{d}")
                writer = F.FrameWriter(suite.cipher(half, True), keys=self.rekeyChains(s, d, [])[0])
                for f in frames:
                    if codeOf(f) == F.CODE_REKEY:
                        wire = writer.rekey(0.0)
                    else:
                        wire = writer.frame(codeOf(f), f["payload"])
                    self.assertEqual(wire.hex(), f["wire"].hex(), (s, d))
                self.assertEqual(writer.epoch, 2)
                writer = F.FrameWriter(suite.cipher(half, True), keys=self.rekeyChains(s, d, [])[0],
                                       rekeyAfterFrames=1)
                data = [f for f in frames if codeOf(f) == 0]
                stream = b"".join(writer.frame(0, f["payload"]) for f in data)
                self.assertEqual(stream, v[f"rekey_{s}_{d}_stream"])

    def test_rekeyReader(self):
        """
        A FrameReader with its key chain reads the documented stream of
        section 11.7, fed in odd-sized pieces: the three DATA frames, the
        REKEY frames followed and not returned.
        """
        v = self.v
        for s in sessions():
            suite = self.suiteOf(s)
            for d, half in self.directions(s):
                keys = self.rekeyChains(s, d, [])[1]
                reader = F.FrameReader(suite.cipher(half, False), keys=keys)
                got = []
                for piece in pieces(v[f"rekey_{s}_{d}_stream"]):
                    more, error = reader.feed(piece)
                    self.assertIsNone(error)
                    got.extend(more)
                data = [f for f in frameList(v, f"rekey_{s}_{d}") if codeOf(f) == 0]
                self.assertEqual(got, received(data))
                self.assertEqual(reader.epoch, 2)

    # -- two SFrameProtocols --------------------------------------------------------

    def protocols(self, s, authorized=None):
        """
        A client and a server L{SFrameProtocol} for session C{s}, on
        StringTransports and a Clock, with the key exchanges of
        L{keyExchanges} in place of random ones.
        """
        p = self.p
        if authorized is None:
            authorized = p[f"{s}_server_authorized_keys"]
        clock = Clock()
        apps = {}

        @implementer(IFrameReceiver)
        class App(Protocol):
            def connectionMade(self):
                self.frames, self.ended = [], None

            def frameReceived(self, code, payload):
                self.frames.append((code, payload))

            def connectionLost(self, reason):
                self.ended = reason

        def factory(side):
            def build():
                apps[side] = App()
                return apps[side]
            return Factory.forProtocol(build)

        identity = self.client if p[f"{s}_client_identity"] == "client" else None
        ready = defer.Deferred()
        authorizedKeys = [self.client.publicKey] if authorized == "client" else None
        clientKX, serverKX = self.keyExchanges(s)
        serverFactory = SFrameFactory(
            factory("server"), HS.StreamConfig(suites=self.suites(p[f"{s}_server_suites"])), clock,
            lambda: serverKX, authorizedKeys=authorizedKeys,
        )
        clientFactory = SFrameFactory(
            factory("client"), HS.StreamConfig(suites=self.suites(p[f"{s}_client_suites"])), clock,
            lambda: clientKX, ready=ready, isClient=True,
        )
        server, client = serverFactory.buildProtocol(None), clientFactory.buildProtocol(None)
        st, ct = StringTransport(), StringTransport()
        return client, ct, server, st, apps, clock, ready

    def take(self, transport):
        data = transport.value()
        transport.clear()
        return data

    def writeFrames(self, app, clock, frames):
        for f in frames:
            code = codeOf(f)
            if code == F.CODE_CLOSE:
                app.transport.loseConnection()
            elif code == F.CODE_DATA:
                app.transport.write(f["payload"])
            else:
                app.transport.writeFrame(code, f["payload"])
            clock.advance(0)

    def test_protocolSessions(self):
        """
        Two SFrameProtocols write exactly the documented streams: INIT, RESP,
        CONFIRM, ACCEPT, then the applications' frames (written with write,
        writeFrame and loseConnection) and CLOSE; each application receives
        the other's frames with their codes, and a CLOSE ends the connection
        cleanly as closed-by-peer.
        """
        v = self.v
        for s in sessions():
            client, ct, server, st, apps, clock, ready = self.protocols(s)
            server.makeConnection(st)
            client.makeConnection(ct)
            self.assertEqual(self.take(ct), v[f"{s}_init_message"])
            server.dataReceived(v[f"{s}_init_message"])
            self.assertEqual(self.take(st), v[f"{s}_resp_message"])
            c2s, s2c = frameList(v, f"{s}_c2s"), frameList(v, f"{s}_s2c")
            client.dataReceived(v[f"{s}_resp_message"])
            self.assertEqual(self.take(ct), c2s[0]["wire"])
            server.dataReceived(c2s[0]["wire"])
            self.assertEqual(self.take(st), s2c[0]["wire"])
            self.assertTrue(apps["server"].connected)
            self.assertFalse(apps["client"].connected)
            client.dataReceived(s2c[0]["wire"])
            self.assertEqual(self.successResultOf(ready), apps["client"])
            self.assertEqual(client.suite, _NAMES[v[f"{s}_resp"][9]])
            if v.get(f"{s}_client_proof"):
                self.assertEqual(server.peerPublicKey, self.client.publicKey)
            else:
                self.assertIsNone(server.peerPublicKey)

            self.writeFrames(apps["client"], clock, c2s[1:])
            self.assertEqual(self.take(ct).hex(), b"".join(f["wire"] for f in c2s[1:]).hex())
            self.writeFrames(apps["server"], clock, s2c[1:])
            self.assertEqual(self.take(st).hex(), b"".join(f["wire"] for f in s2c[1:]).hex())

            for receiver, frames, sent in ((server, c2s, "server"), (client, s2c, "client")):
                stream = b"".join(f["wire"] for f in frames[1:])
                for piece in pieces(stream):
                    receiver.dataReceived(piece)
                receiver.connectionLost(Failure(ConnectionDone()))
                app = apps[sent]
                self.assertEqual(app.frames, received(frames[1:-1]))
                self.assertIsInstance(app.ended.value, SFrameDone)
                self.assertEqual(app.ended.value.reason, "closed-by-peer")

    def test_protocolRefusal(self):
        """
        A server that requires client authentication answers the session-1
        client's empty CONFIRM with the documented CLOSE, and the client's
        connect() fails with ClientNotAuthorized carrying its reason.
        """
        v, p = self.v, self.p
        client, ct, server, st, apps, clock, ready = self.protocols(
            "ctr", authorized=p["ctr_refusal_server_authorized_keys"])
        server.makeConnection(st)
        client.makeConnection(ct)
        server.dataReceived(self.take(ct))
        client.dataReceived(self.take(st))
        server.dataReceived(self.take(ct))
        self.assertEqual(self.take(st), v["ctr_refusal_s2c_1_wire"])
        self.assertTrue(st.disconnecting)
        client.dataReceived(v["ctr_refusal_s2c_1_wire"])
        failure = self.failureResultOf(ready, ClientNotAuthorized)
        self.assertIn(v["ctr_refusal_s2c_1_payload"].decode(), str(failure.value))
        self.assertFalse(apps["client"].connected)
        self.assertFalse(apps["server"].connected)

class FormulaTests(unittest.TestCase):
    """
    The documented bytes follow from the documented formulas, computed with
    primitives only (no sudp code).
    """

    def setUp(self):
        self.v, self.p = documented()

    def test_handshakeMessages(self):
        """
        INIT is 0x13, the client index, timestamp 0, a zero cookie, the
        client's X25519 public key and the offered stream suite ids; RESP is
        0x14, both indexes, the chosen suite, the server's X25519 key, the
        confirmation and the signature; each travels behind a u16 length.
        """
        v, p = self.v, self.p
        for s in sessions():
            offered = suiteIds(p[f"{s}_client_suites"])
            clientIndex = int.from_bytes(v[f"{s}_client_random_index"], "big")
            serverIndex = int.from_bytes(v[f"{s}_server_random_index"], "big")
            init = struct.pack(">BII16s32sB", 0x13, clientIndex, 0, bytes(16),
                               x25519Public(v[f"{s}_client_random_ephemeral"]), len(offered))
            init += bytes(offered)
            self.assertEqual(v[f"{s}_init"], init)
            self.assertEqual(v[f"{s}_init_message"], struct.pack(">H", len(init)) + init)
            chosen = next(i for i in suiteIds(p[f"{s}_server_suites"]) if i in offered)
            prefix = struct.pack(">BIIB32s", 0x14, clientIndex, serverIndex, chosen,
                                 x25519Public(v[f"{s}_server_random_ephemeral"]))
            resp = prefix + v[f"{s}_confirmation"] + v[f"{s}_server_signature"]
            self.assertEqual(v[f"{s}_resp"], resp)
            self.assertEqual(len(resp), 122)
            self.assertEqual(v[f"{s}_resp_message"], b"\x00\x7a" + resp)

    def test_handshakeKeys(self):
        """
        th = SHA-256(label || server key || INIT || RESP[0..42)); the X25519
        secret is the same from both sides; the confirmation is
        HMAC(confirm_key, th)[:16] with confirm_key = okm[64..96) of
        HKDF(th, dh, "sudp/1 keys" || u32(0), 128); the server signature
        verifies (and is the deterministic Ed25519 signature of
        "sframe/1 server signature\\0" || th); the client proof is the client
        key and its signature of "sframe/1 client signature\\0" || th.
        """
        v = self.v
        serverKey = Ed25519PrivateKey.from_private_bytes(v["server_identity_seed"])
        clientKey = Ed25519PrivateKey.from_private_bytes(v["client_identity_seed"])
        for s in sessions():
            th = hashlib.sha256(v["label_handshake"] + v["server_public_key"] + v[f"{s}_init"]
                                + v[f"{s}_resp"][:42]).digest()
            self.assertEqual(v[f"{s}_transcript"], th)
            dh = x25519(v[f"{s}_client_random_ephemeral"], v[f"{s}_resp"][10:42])
            self.assertEqual(dh, x25519(v[f"{s}_server_random_ephemeral"], v[f"{s}_init"][25:57]))
            self.assertEqual(v[f"{s}_dh_shared"], dh)
            okm = hkdfExpand(hkdfExtract(th, dh), v["label_keys"] + struct.pack(">I", 0), 128)
            self.assertEqual(v[f"{s}_confirm_key"], okm[64:96])
            confirmation = hmac.new(okm[64:96], th, hashlib.sha256).digest()[:16]
            self.assertEqual(v[f"{s}_confirmation"], confirmation)
            message = v["label_server_signature"] + th
            publicKey = Ed25519PublicKey.from_public_bytes(v["server_public_key"])
            publicKey.verify(v[f"{s}_server_signature"], message)
            self.assertEqual(v[f"{s}_server_signature"], serverKey.sign(message))
            if f"{s}_client_proof" in v:
                proof = v[f"{s}_client_proof"]
                self.assertEqual(proof[:32], v["client_public_key"])
                self.assertEqual(proof[32:], clientKey.sign(v["label_client_signature"] + th))

    def test_frameKeys(self):
        """
        prk = HMAC-SHA-256(th, dh); block = HKDF-Expand(prk, "sudp/1 sframe",
        160); the client half is the top 80 bytes, the server half the
        bottom; a half is AES key 32 | CTR IV 16 | MAC key 32, and the AEAD
        suites use its first 32 bytes.
        """
        v = self.v
        cases = [(s, v[f"{s}_transcript"], v[f"{s}_dh_shared"]) for s in sessions()]
        cases.append(("wrap", v["wrap_transcript"], v["wrap_secret"]))
        for s, transcript, secret in cases:
            prk = hkdfExtract(transcript, secret)
            self.assertEqual(v[f"{s}_prk"], prk)
            block = hkdfExpand(prk, v["label_sframe"], 160)
            self.assertEqual(v[f"{s}_frame_key_block"], block)
            if s == "wrap":
                continue
            self.assertEqual(v[f"{s}_client_half"], block[:80])
            self.assertEqual(v[f"{s}_server_half"], block[80:])
            for who, half in (("client", block[:80]), ("server", block[80:])):
                if s == "ctr":
                    self.assertEqual(v[f"ctr_{who}_aes_key"], half[:32])
                    self.assertEqual(v[f"ctr_{who}_ctr_iv"], half[32:48])
                    self.assertEqual(v[f"ctr_{who}_mac_key"], half[48:80])
                else:
                    self.assertEqual(v[f"{s}_{who}_key"], half[:32])

    def allFrames(self):
        """
        @return: C{(name, suite id, frames)} of every documented frame list.
        """
        v = self.v
        out = []
        for s in sessions():
            for d in ("c2s", "s2c"):
                out.append((f"{s}_{d}", v[f"{s}_resp"][9], frameList(v, f"{s}_{d}")))
        out.append(("ctr_refusal_s2c", 1, frameList(v, "ctr_refusal_s2c")))
        out.append(("wrap_ctr", 1, frameList(v, "wrap_ctr")))
        out.append(("wrap_aead", 2, frameList(v, "wrap_aead")))
        return out

    def test_headers(self):
        """
        Every header is LENGTH | CODE | SEQ | LENGTH ^ CODE ^ SEQ (u32
        big-endian) with LENGTH the payload's size; SEQ counts 1, 2, ... in
        each direction (from 0xFFFFFFFF to 1 in the wrap vectors); the first
        frames are CONFIRM (empty or the 96-byte proof) and ACCEPT (empty),
        the last CLOSE, and the others DATA or application codes.
        """
        first = int(self.p["wrap_first_sequence"])
        for name, _, frames in self.allFrames():
            seq = first if name.startswith("wrap") else 1
            for f in frames:
                length, code, got, checksum = decodeHeader(f["header"])
                self.assertEqual((length, got, checksum),
                                 (len(f["payload"]), seq, length ^ code ^ seq), name)
                seq = 1 if seq == 0xFFFFFFFF else seq + 1
            codes = [codeOf(f) for f in frames]
            if name.startswith("wrap"):
                self.assertEqual(codes, [0, 0])
                continue
            if name.endswith("c2s"):
                self.assertEqual(codes[0], 0xFFFFFF00)
                self.assertIn(len(frames[0]["payload"]), (0, 96))
            elif name == "ctr_refusal_s2c":
                self.assertEqual(codes, [0xFFFFFF02])
                continue
            else:
                self.assertEqual((codes[0], frames[0]["payload"]), (0xFFFFFF01, b""))
            self.assertEqual(codes[-1], 0xFFFFFF02)
            for code in codes[1:-1]:
                self.assertLess(code, 0xFFFFFF00)

    def test_macChain(self):
        """
        Suite 1: the MAC of frame n is the first 8 bytes of
        SHA-256(mac_key || H_1 || P_1 || ... || H_n || P_n), one running
        SHA-256 state per direction started by hashing the MAC key.
        """
        v = self.v
        for d, who in (("c2s", "client"), ("s2c", "server")):
            chain = hashlib.sha256(v[f"ctr_{who}_mac_key"])
            everything = v[f"ctr_{who}_mac_key"]
            for f in frameList(v, f"ctr_{d}"):
                chain.update(f["header"] + f["payload"])
                everything += f["header"] + f["payload"]
                self.assertEqual(f["digest"], chain.copy().digest())
                self.assertEqual(f["digest"], hashlib.sha256(everything).digest())
                self.assertEqual(f["mac"], f["digest"][:8])

    def ctrStream(self, half, frames):
        """
        @return: the wire bytes of C{frames} under suite 1 with C{half},
            from the formulas: the chained MAC, then one AES-256-CTR stream.
        """
        chain = hashlib.sha256(half[48:80])
        plain = b""
        for f in frames:
            chain.update(f["header"] + f["payload"])
            plain += f["header"] + f["payload"] + chain.copy().digest()[:8]
        return aesCtr(half[:32], half[32:48], plain)

    def test_ctrStream(self):
        """
        Suite 1: a direction's wire bytes are its frames (header, payload,
        MAC) concatenated and XORed with one AES-256-CTR keystream that
        starts at the IV; the frames after the first do not start on a
        16-byte boundary.
        """
        v = self.v
        for name, half in (("ctr_c2s", v["ctr_client_half"]), ("ctr_s2c", v["ctr_server_half"]),
                           ("ctr_refusal_s2c", v["ctr_server_half"]),
                           ("wrap_ctr", v["wrap_frame_key_block"][:80])):
            frames = frameList(v, name)
            wire = self.ctrStream(half, frames)
            self.assertEqual(wire.hex(), b"".join(f["wire"] for f in frames).hex(), name)
            offset = 0
            for i, f in enumerate(frames):
                self.assertEqual(wire[offset : offset + len(f["wire"])], f["wire"])
                if i:
                    self.assertNotEqual(offset % 16, 0, name)
                offset += len(f["wire"])

    def test_ctrCounter(self):
        """
        The CTR keystream is AES-256(key, IV + i mod 2^128) for i = 0, 1, ...:
        the whole IV is a 128-bit big-endian counter, and it carries from the
        low 64 bits into the high ones and wraps at 2^128.
        """
        v = self.v
        key, iv = v["ctr_client_aes_key"], v["ctr_client_ctr_iv"]
        wire, frames = v["ctr_c2s_stream"], frameList(v, "ctr_c2s")
        plain = b"".join(f["header"] + f["payload"] + f["mac"] for f in frames)
        keystream = xor(wire, plain)
        start = int.from_bytes(iv, "big")
        blocks = b"".join(aesBlock(key, ((start + i) % 2**128).to_bytes(16, "big"))
                          for i in range((len(keystream) + 15) // 16))
        self.assertEqual(keystream, blocks[: len(keystream)])
        for edge in (2**64 - 1, 2**128 - 1):
            counter = edge.to_bytes(16, "big")
            after = ((edge + 1) % 2**128).to_bytes(16, "big")
            expected = aesBlock(key, counter) + aesBlock(key, after)
            self.assertEqual(aesCtr(key, counter, bytes(32)), expected)

    def test_aeadFrames(self):
        """
        Suites 2 and 3: each frame is H || AEAD(key, 00000000 || u64(count),
        aad = H, payload), ciphertext then 16-byte tag, with count the
        number of frames sent before in that direction (not SEQ).
        """
        v = self.v
        cases = []
        for s in ("aead", "gcm"):
            for d, who in (("c2s", "client"), ("s2c", "server")):
                cases.append((f"{s}_{d}", v[f"{s}_resp"][9], v[f"{s}_{who}_key"]))
        cases.append(("wrap_aead", 2, v["wrap_frame_key_block"][80:112]))
        for name, suiteId, key in cases:
            aead = _AEADS[suiteId](key)
            for count, f in enumerate(frameList(v, name)):
                nonce = b"\0\0\0\0" + struct.pack(">Q", count)
                if "nonce" in f:
                    self.assertEqual(f["nonce"], nonce)
                sealed = aead.encrypt(nonce, f["payload"], f["header"])
                self.assertEqual(f["wire"].hex(), (f["header"] + sealed).hex(), (name, count))
                if "tag" in f:
                    self.assertEqual(f["tag"], sealed[-16:])
                self.assertEqual(aead.decrypt(nonce, f["wire"][16:], f["header"]), f["payload"])

    def test_sizes(self):
        """
        A frame is 16 + LENGTH + 8 bytes with suite 1 and 16 + LENGTH + 16
        with suites 2 and 3, and a direction's stream is its frames back to
        back.
        """
        v = self.v
        for name, suiteId, frames in FormulaTests.allFrames(self):
            trailer = 8 if suiteId == 1 else 16
            for f in frames:
                self.assertEqual(len(f["wire"]), 16 + len(f["payload"]) + trailer, name)
        for s in sessions():
            for d in ("c2s", "s2c"):
                wires = [f["wire"] for f in frameList(v, f"{s}_{d}")]
                self.assertEqual(v[f"{s}_{d}_stream"], b"".join(wires))

    def test_rekeyChain(self):
        """
        secret_1 = HKDF-Expand(prk, "sframe/1 rekey <d> secret", 32), keys_n =
        HKDF-Expand(secret_n, "... keys", 80), secret_n+1 = HKDF-Expand(
        secret_n, "... next", 32), with prk of section 5; every key differs
        from every other and from the section-5 halves.
        """
        v = self.v
        seen = set()
        for s in sessions():
            prk = hkdfExtract(v[f"{s}_transcript"], v[f"{s}_dh_shared"])
            seen.update((v[f"{s}_client_half"], v[f"{s}_server_half"]))
            for d, _ in DIRECTIONS:
                name = f"rekey_{s}_{d}"
                secret = hkdfExpand(prk, v[f"label_rekey_{d}_secret"], 32)
                self.assertEqual(v[f"{name}_secret_1"], secret)
                for n in (1, 2):
                    keys = hkdfExpand(secret, v[f"label_rekey_{d}_keys"], 80)
                    self.assertEqual(v[f"{name}_keys_{n}"], keys)
                    seen.add(keys)
                    secret = hkdfExpand(secret, v[f"label_rekey_{d}_next"], 32)
                    self.assertEqual(v[f"{name}_secret_{n + 1}"], secret)
        self.assertEqual(len(seen), 6 * len(sessions()))

    def test_rekeyFrames(self):
        """
        The rotation frames: headers as in section 6.1 with SEQ 1 to 5 going
        on across rotations; each REKEY carries u64 of the next epoch; the
        frames of each epoch are protected with that epoch's keys as if they
        began the direction (suite 1: one keystream from its IV and a MAC
        chain from its MAC key; suites 2 and 3: nonce counts from 0).
        """
        v = self.v
        for s in sessions():
            suiteId = v[f"{s}_resp"][9]
            for d, who in DIRECTIONS:
                name = f"rekey_{s}_{d}"
                frames = frameList(v, name)
                for seq, f in enumerate(frames, 1):
                    length, code, got, checksum = decodeHeader(f["header"])
                    expected = (len(f["payload"]), seq, length ^ code ^ seq)
                    self.assertEqual((length, got, checksum), expected)
                groups = epochs(frames)
                self.assertEqual(len(groups), 3)
                keys = [v[f"{s}_{who}_half"], v[f"{name}_keys_1"], v[f"{name}_keys_2"]]
                wire = b""
                for epoch, (group, half) in enumerate(zip(groups, keys)):
                    if epoch:
                        self.assertEqual(groups[epoch - 1][-1]["payload"], struct.pack(">Q", epoch))
                    if suiteId == 1:
                        wire += self.ctrStream(half, group)
                        continue
                    aead = _AEADS[suiteId](half[:32])
                    for count, f in enumerate(group):
                        nonce = b"\0\0\0\0" + struct.pack(">Q", count)
                        self.assertEqual(f["nonce"], nonce)
                        wire += f["header"] + aead.encrypt(nonce, f["payload"], f["header"])
                self.assertEqual(wire.hex(), b"".join(f["wire"] for f in frames).hex(), name)
                self.assertEqual(wire, v[f"{name}_stream"])
