"""
More fuzzing (issue 7, point 1): hypothesis properties for the decoders that
L{sudp_test.test_udp_fuzz} (UDP packets, records, engines) and
L{sudp_test.test_sframe_adversarial} (sframe frames, the sframe protocol)
leave out. Each property feeds arbitrary or mutated input and asserts that
the result is either valid or the documented typed error, never any other
exception, and round-trips what has an encoder.

  A. Key files (L{sudp.keys}): private key files through L{loadIdentity}
     (only L{KeyFileError}), public key text (only L{PublicKeyFormatError}),
     C{.pub} files and authorized keys files (only L{KeyFileError}); round
     trips of the text form and of saved identities.
  B. Endpoint strings: C{serverFromString}/C{clientFromString} with C{sudp:}
     and C{sframe:} and arbitrary options give an endpoint or a
     L{ConfigurationError} (or L{KeyFileError} for a key file, as
     docs/keys.md says), and never listen or connect.
  C. The sframe key exchange (L{sudp.stream.handshake}) and the handshake
     functions of L{sudp.udp.handshake} (C{checkAnswer}, C{checkClientProof}).
  D. Authenticated CONTROL packets holding arbitrary records (the session's
     record handling, which only unauthenticated fuzzing reached before).
  E. C{stress/mutate.py --quick} as a subprocess.

Tests named C{test_bug_*} pin down library bugs these properties found;
they fail until the bug is fixed (see each docstring).
"""

import base64
import json
import os
import stat
import struct
import subprocess
import sys

from cryptography.hazmat.primitives import serialization as S
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.endpoints import _parse as twistedParse
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.internet.interfaces import IStreamClientEndpoint, IStreamServerEndpoint
from twisted.internet.testing import MemoryReactorClock
from twisted.trial import unittest

from sudp.errors import (
    BadServerSignature,
    ClientNotAuthorized,
    ConfigurationError,
    HandshakeFailed,
    KeyFileError,
    MalformedPacket,
    PublicKeyFormatError,
)
from sudp.udp.handshake import checkClientProof, clientProof
from sudp.keys import (
    Identity,
    PublicKey,
    loadAuthorizedKeys,
    loadIdentity,
    loadOrCreateIdentity,
    loadPublicKey,
    parseAuthorizedKeys,
    saveIdentity,
)
from sudp.stream.frames import FrameReader, FrameWriter
from sudp.stream.handshake import (
    AEAD_FRAMES,
    GCM_FRAMES,
    SEED003,
    ClientKeyExchange,
    ServerKeyExchange,
    StreamConfig,
)
from sudp.stream.endpoints import SFrameClientEndpoint, SFrameServerEndpoint
from sudp.udp import packets as P
from sudp.udp import records as R
from sudp.udp.config import Config
from sudp.udp.endpoints import SUDPClientEndpoint, SUDPServerEndpoint
from sudp.udp.events import MessageReceived, SessionEnded
from sudp.udp.keyschedule import (
    CLIENT_SIGNATURE_LABEL,
    SFRAME_LABELS,
    Ephemeral,
    deriveKeys,
    handshakeTranscript,
)
from sudp.udp.session import CLOSED, OPEN
from sudp_test.enginehelpers import CLIENT_ADDR, connectedPair, serverSessionOf
from sudp_test.keyfiles import B64URL, TempDirMixin, assertKeyListModel, assertKeyListTotal, nearKeyTexts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MODERATE = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)
FEWER = settings(MODERATE, max_examples=200)

# printable ASCII: no line separators for str.splitlines or bytes.splitlines
LINE_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
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


# ---------------------------------------------------------------------------
# A. key files
# ---------------------------------------------------------------------------

_SEEDS = {}


def seedFiles():
    """
    @return: C{{name: bytes}}: private key files of every kind sudp may be
        handed (made once per test run).
    """
    if _SEEDS:
        return _SEEDS
    ne = S.NoEncryption()
    pem, der = S.Encoding.PEM, S.Encoding.DER
    pkcs8, trad, openssh = S.PrivateFormat.PKCS8, S.PrivateFormat.TraditionalOpenSSL, S.PrivateFormat.OpenSSH
    ed = ed25519.Ed25519PrivateKey.generate()
    rsaKey = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    ecKey = ec.generate_private_key(ec.SECP256R1())
    _SEEDS.update({
        "ed25519": Identity.generate().toPEM(),
        "ed25519-openssh": ed.private_bytes(pem, openssh, ne),
        "ed25519-encrypted": ed.private_bytes(pem, pkcs8, S.BestAvailableEncryption(b"secret")),
        "ed25519-public": ed.public_key().public_bytes(pem, S.PublicFormat.SubjectPublicKeyInfo),
        "ed25519-der": ed.private_bytes(der, pkcs8, ne),
        "ed25519-pub-line": Identity.generate().publicKey.toText().encode() + b" a comment\n",
        "rsa-pkcs8": rsaKey.private_bytes(pem, pkcs8, ne),
        "rsa-traditional": rsaKey.private_bytes(pem, trad, ne),
        "rsa-encrypted": rsaKey.private_bytes(pem, trad, S.BestAvailableEncryption(b"secret")),
        "ec-pkcs8": ecKey.private_bytes(pem, pkcs8, ne),
        "ec-traditional": ecKey.private_bytes(pem, trad, ne),
        "ed448": ed448.Ed448PrivateKey.generate().private_bytes(pem, pkcs8, ne),
        "x25519": x25519.X25519PrivateKey.generate().private_bytes(pem, pkcs8, ne),
        "x448": x448.X448PrivateKey.generate().private_bytes(pem, pkcs8, ne),
        "dsa": dsa.generate_private_key(key_size=1024).private_bytes(pem, pkcs8, ne),
    })
    return _SEEDS


def pemParts(data):
    """
    @return: C{(label, der)} of the first PEM block in C{data}, or None.
    """
    lines = data.split(b"\n")
    begins = [i for i, line in enumerate(lines) if line.startswith(b"-----BEGIN ")]
    ends = [i for i, line in enumerate(lines) if line.startswith(b"-----END ")]
    if not begins or not ends or ends[0] < begins[0]:
        return None
    label = lines[begins[0]][len(b"-----BEGIN "):].rstrip(b"-")
    try:
        der = base64.b64decode(b"".join(lines[begins[0] + 1: ends[0]]))
    except ValueError:
        return None
    return label, der


def armor(label, der):
    return (b"-----BEGIN " + label + b"-----\n" + base64.encodebytes(der)
            + b"-----END " + label + b"-----\n")


PEM_LABELS = [b"PRIVATE KEY", b"ENCRYPTED PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY",
              b"OPENSSH PRIVATE KEY", b"PUBLIC KEY", b"CERTIFICATE", b"X"]

pemOps = st.lists(
    st.one_of(
        st.tuples(st.just("flip"), st.integers(0, 4000), st.integers(0, 7)),
        st.tuples(st.just("set"), st.integers(0, 4000), st.integers(0, 255)),
        st.tuples(st.just("cut"), st.integers(0, 4000)),
        st.tuples(st.just("insert"), st.integers(0, 4000), st.binary(min_size=1, max_size=8)),
        st.tuples(st.just("delete"), st.integers(0, 4000), st.integers(1, 40)),
        st.tuples(st.just("der-set"), st.integers(0, 2000), st.integers(0, 255)),
        st.tuples(st.just("der-cut"), st.integers(0, 2000)),
        st.tuples(st.just("der-extend"), st.binary(min_size=1, max_size=16)),
        st.tuples(st.just("relabel"), st.sampled_from(PEM_LABELS)),
    ),
    min_size=1, max_size=4,
)


def mutatePEM(data, ops):
    """
    Apply C{ops} to a key file: byte-level edits of the text, or edits of
    the DER inside the PEM armour (re-armoured, so they reach the parser).
    """
    out = bytearray(data)
    for op in ops:
        kind = op[0]
        if kind in ("flip", "set") and out:
            i = op[1] % len(out)
            out[i] = out[i] ^ (1 << op[2]) if kind == "flip" else op[2]
        elif kind == "cut":
            del out[op[1] % (len(out) + 1):]
        elif kind == "insert":
            i = op[1] % (len(out) + 1)
            out[i:i] = op[2]
        elif kind == "delete" and out:
            i = op[1] % len(out)
            del out[i: i + op[2]]
        else:
            parts = pemParts(bytes(out))
            if parts is None:
                continue
            label, der = parts
            der = bytearray(der)
            if kind == "der-set" and der:
                der[op[1] % len(der)] = op[2]
            elif kind == "der-cut":
                del der[op[1] % (len(der) + 1):]
            elif kind == "der-extend":
                der += op[1]
            elif kind == "relabel":
                label = op[1]
            out = bytearray(armor(label, bytes(der)))
    return bytes(out)


def pkcs8(oid, keyBytes, version=0, wrap=True):
    """
    @return: a PKCS#8 PEM file by hand: any one-byte arc under 1.3.101 (112
        is Ed25519), any private key length.
    """
    key = (b"\x04" + bytes([len(keyBytes)]) + keyBytes) if wrap else keyBytes
    inner = b"\x04" + bytes([len(key)]) + key
    alg = b"\x30\x05\x06\x03\x2b\x65" + bytes([oid])
    body = b"\x02\x01" + bytes([version]) + alg + inner
    return armor(b"PRIVATE KEY", b"\x30" + bytes([len(body)]) + body)


class PrivateKeyFileTests(TempDirMixin, unittest.TestCase):
    """
    L{loadIdentity} on mutated, truncated, random and wrong-type key files:
    an L{Identity} or a L{KeyFileError} naming the file, nothing else.
    """

    def assertIdentityOrKeyFileError(self, data, mode=0o600):
        """
        Load C{data} from a fresh file: any exception but L{KeyFileError}
        fails the test. A loaded identity must be usable: it signs, and its
        own PEM loads back to the same key.

        @return: the identity, or None.
        """
        path = self.writeFile(data, mode)
        try:
            identity = loadIdentity(path)
        except KeyFileError as e:
            self.assertIn(path, str(e))
            return None
        self.assertIsInstance(identity, Identity)
        self.assertTrue(identity.publicKey.verify(identity.sign(b"m"), b"m"))
        self.assertEqual(Identity.fromPEM(identity.toPEM()).publicKey, identity.publicKey)
        return identity

    @MODERATE
    @given(st.sampled_from(sorted(seedFiles())), pemOps)
    def test_mutatedKeyFiles(self, name, ops):
        """
        Key files of every kind (Ed25519 PKCS#8, OpenSSH, encrypted, DER, a
        public key, a .pub line, RSA, EC, Ed448, X25519, X448, DSA), edited
        as text or inside their DER: an identity or KeyFileError.
        """
        self.assertIdentityOrKeyFileError(mutatePEM(seedFiles()[name], ops))

    @MODERATE
    @given(st.sampled_from([0x6E, 0x6F, 0x70, 0x71, 0x00, 0xFF]),
           st.binary(max_size=70), st.sampled_from([0, 1, 2]), st.booleans())
    def test_handBuiltPKCS8(self, oid, keyBytes, version, wrap):
        """
        Well-formed PKCS#8 structures with the Ed25519, Ed448, X25519, X448
        or an unknown algorithm and a private key of any length: an
        identity (only for a 32-byte Ed25519 key) or KeyFileError.
        """
        identity = self.assertIdentityOrKeyFileError(pkcs8(oid, keyBytes, version, wrap))
        if identity is not None:
            self.assertEqual((oid, len(keyBytes), wrap), (0x70, 32, True))

    @MODERATE
    @given(st.one_of(
        st.binary(max_size=3000),
        st.binary(max_size=300).map(lambda b: armor(b"PRIVATE KEY", b)),
        st.text(max_size=300).map(lambda t: t.encode("utf-8")),
    ))
    def test_randomFiles(self, data):
        """
        Random bytes, random text and random DER in a private key armour:
        KeyFileError (or, should the bytes be a key, an identity).
        """
        self.assertIdentityOrKeyFileError(data)

    def test_everyTruncation(self):
        """
        Every prefix of a genuine key file: KeyFileError, except the whole
        file and the file without its last newline, which load the key.
        """
        identity = Identity.generate()
        pem = identity.toPEM()
        for n in range(len(pem) + 1):
            loaded = self.assertIdentityOrKeyFileError(pem[:n])
            if n >= len(pem) - 1:
                self.assertEqual(loaded.publicKey, identity.publicKey, n)
            else:
                self.assertIsNone(loaded, n)

    def test_regression_ed25519KeyOfWrongLength(self):
        """
        Regression (found by test_handBuiltPKCS8): a PKCS#8
        file naming Ed25519 (or Ed448, X25519, X448) with a private key of
        the wrong length (one byte lost or added: a corrupt file) makes
        C{cryptography} raise C{cryptography.exceptions.InternalError}
        ("key setup failed"), which L{Identity.fromPEM} does not catch:
        loadIdentity, and so serverFromString("sudp:...:key=FILE"), raise
        it instead of KeyFileError. Fixed: catch InternalError with ValueError
        and UnsupportedAlgorithm in Identity.fromPEM.
        """
        for oid, size in [(0x70, 31), (0x70, 33), (0x70, 0), (0x71, 56), (0x6E, 31)]:
            path = self.writeFile(pkcs8(oid, bytes(range(size))))
            e = self.assertRaises(KeyFileError, loadIdentity, path)
            self.assertIn(path, str(e))

    def test_regression_unreadablePaths(self):
        """
        Regression (found by the endpoint string properties): loadIdentity catches
        only FileNotFoundError, IsADirectoryError and PermissionError, so a
        path through a regular file (NotADirectoryError), a name too long
        (OSError ENAMETOOLONG), a symlink loop (ELOOP) or a NUL byte
        (ValueError) escape as themselves, not as KeyFileError; the same
        NUL byte escapes loadAuthorizedKeys and loadPublicKey as ValueError.
        Fixed: catch OSError and ValueError in all three and raise KeyFileError
        naming the file.
        """
        regular = self.writeFile(b"x")
        loop = os.path.join(self.dir, "loop")
        os.symlink(loop, loop)
        for path in (os.path.join(regular, "key"), "k" * 5000, loop, "a\0b"):
            self.assertRaises(KeyFileError, loadIdentity, path)
        self.assertRaises(KeyFileError, loadAuthorizedKeys, "a\0b")
        self.assertRaises(KeyFileError, loadPublicKey, "a\0b")


class SaveLoadTests(TempDirMixin, unittest.TestCase):
    """
    Saving and loading identities: the round trips of docs/keys.md.
    """

    @FEWER
    @given(st.binary(min_size=32, max_size=32), LINE_TEXT)
    def test_saveLoadRoundTrip(self, seed, comment):
        """
        saveIdentity writes the key 0600 and a .pub line; both load back to
        the same key (loadIdentity, loadPublicKey, loadOrCreateIdentity, an
        authorized keys file made of the .pub line, Identity.fromPEM);
        saving over it is refused without force and replaces it with force.
        """
        identity = Identity(seed)
        path = self.freshPath(".key")
        saveIdentity(identity, path, comment=comment)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        key = identity.publicKey
        self.assertEqual(loadIdentity(path).publicKey, key)
        self.assertEqual(loadPublicKey(path + ".pub"), key)
        self.assertEqual(loadPublicKey(path), key)
        self.assertEqual(loadOrCreateIdentity(path)[0].publicKey, key)
        self.assertFalse(loadOrCreateIdentity(path)[1])
        with open(path + ".pub") as f:
            line = f.read()
        self.assertEqual(line, key.toText() + (f" {comment}" if comment else "") + "\n")
        self.assertEqual(parseAuthorizedKeys(line), {key: comment.strip()})
        self.assertEqual(loadAuthorizedKeys(path + ".pub"), {key: comment.strip()})
        self.assertEqual(Identity.fromPEM(identity.toPEM()).publicKey, key)
        e = self.assertRaises(KeyFileError, saveIdentity, Identity.generate(), path)
        self.assertIn(path, str(e))
        self.assertEqual(loadIdentity(path).publicKey, key)
        other = Identity.generate()
        saveIdentity(other, path, force=True)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(loadIdentity(path).publicKey, other.publicKey)

    def test_regression_nonASCIIComment(self):
        """
        Regression: saveIdentity writes the .pub file as ASCII, so a comment such
        as "Zoë's laptop" (sudp keygen --comment) raises UnicodeEncodeError
        after the private key has been written: the .pub file is left
        empty, and the next keygen refuses to overwrite. Fixed: write the
        .pub as UTF-8 (loadPublicKey parses only its first word and
        loadAuthorizedKeys reads UTF-8), or refuse the comment with
        KeyFileError before writing anything.
        """
        path = self.freshPath(".key")
        identity = Identity.generate()
        try:
            saveIdentity(identity, path, comment="Zo\u00eb's laptop")
        except KeyFileError:
            self.assertFalse(os.path.exists(path))  # refused before writing anything
            return
        self.assertEqual(loadPublicKey(path + ".pub"), identity.publicKey)


class PublicKeyTextTests(TempDirMixin, unittest.TestCase):
    """
    The public key text form, C{.pub} files and authorized keys files.
    """

    keys = [Identity(bytes([i]) * 32).publicKey for i in range(4)]

    @staticmethod
    def nearKeys():
        """
        Texts close to a valid key: valid keys with one character changed,
        removed or added, wrapped in whitespace, or in another case.
        """
        valid = st.binary(min_size=32, max_size=32).map(lambda b: PublicKey(b).toText())
        return nearKeyTexts(valid, st.integers(8, 50), st.integers(0, 50), st.integers(0, 51),
                            st.text(alphabet=B64URL, min_size=40, max_size=46).map(lambda t: "ed25519-" + t))

    @MODERATE
    @given(st.one_of(st.text(max_size=80), st.binary(max_size=80), nearKeys.__func__(),
                     nearKeys.__func__().map(lambda t: t.encode("utf-8"))))
    def test_fromTextArbitrary(self, text):
        """
        PublicKey.fromText on any str or bytes: a key whose text form is the
        input without surrounding whitespace (there is one text form), or
        PublicKeyFormatError.
        """
        try:
            key = PublicKey.fromText(text)
        except PublicKeyFormatError:
            return
        plain = text.decode("ascii") if isinstance(text, bytes) else text
        self.assertEqual(key.toText(), plain.strip())

    @MODERATE
    @given(st.binary(min_size=32, max_size=32))
    def test_textRoundTrip(self, raw):
        """
        toText/fromText round trip for any 32 bytes: 'ed25519-' and 43
        base64url characters (no ':' or '=', so it fits endpoint strings),
        as str, bytes or with surrounding whitespace; the fingerprint is
        'SHA256:' and 43 base64 characters.
        """
        key = PublicKey(raw)
        text = key.toText()
        self.assertEqual(len(text), 51)
        self.assertTrue(text.startswith("ed25519-"))
        self.assertFalse(set(text) & set(":=+/ "))
        for form in (text, text.encode(), f"  {text}\n", f"{text}\r\n".encode()):
            self.assertEqual(PublicKey.fromText(form), key)
        self.assertEqual(PublicKey.fromText(text).raw, raw)
        fingerprint = key.fingerprint()
        self.assertTrue(fingerprint.startswith("SHA256:"))
        self.assertEqual(len(fingerprint), 7 + 43)

    @MODERATE
    @given(st.one_of(st.binary(max_size=600),
                     st.lists(st.one_of(LINE_TEXT, st.sampled_from([
                         "# comment", "", "  ", "-----BEGIN PRIVATE KEY-----", keys[0].toText()])),
                         max_size=6).map(lambda lines: "\n".join(lines).encode())),
           st.sampled_from([0o600, 0o644]))
    def test_pubFileArbitrary(self, data, mode):
        """
        loadPublicKey on any file content (including one mentioning a
        private key, which it reads as a private key file): a key or
        KeyFileError naming the file.
        """
        path = self.writeFile(data, mode, ".pub")
        try:
            key = loadPublicKey(path)
        except KeyFileError as e:
            self.assertIn(path, str(e))
            return
        self.assertIsInstance(key, PublicKey)

    def lineKinds(self):
        """
        Lines of an authorized keys or .pub file, tagged with what they are:
        C{("key", key, comment)}, C{("skip", text)} (blank or comment) or
        C{("bad", text)} (not a key).
        """
        key = st.tuples(st.just("key"), st.sampled_from(self.keys), LINE_TEXT,
                        st.sampled_from(["", " ", "  ", "\t"]))
        skip = st.one_of(
            st.sampled_from(["", " ", "\t", "   \t "]),
            LINE_TEXT.map(lambda t: "#" + t),
            LINE_TEXT.map(lambda t: "  #" + t),
        ).map(lambda t: ("skip", t))
        bad = st.one_of(
            LINE_TEXT.filter(lambda t: t.strip() and not t.strip().startswith(("#", "ed25519-"))),
            st.tuples(st.sampled_from(self.keys), st.integers(8, 50)).map(
                lambda t: t[0].toText()[: t[1]] + t[0].toText()[t[1] + 1:]),
            st.sampled_from(self.keys).map(lambda k: "ssh-ed25519 " + k.toText()),
        ).map(lambda t: ("bad", t))
        return st.one_of(key, skip, bad)

    @staticmethod
    def render(line):
        if line[0] == "key":
            _, key, comment, lead = line
            return lead + key.toText() + (" " + comment if comment else "")
        return line[1]

    @MODERATE
    @given(st.data(), st.sampled_from(["\n", "\r\n"]), st.booleans())
    def test_authorizedKeysModel(self, data, newline, fromFile):
        """
        Authorized keys files of keys with comments, blank lines, comment
        lines and bad lines, with LF or CRLF, parsed from text or a file:
        exactly the keys and stripped comments listed (the last comment of
        a repeated key), or KeyFileError naming the file and line of the
        first bad line.
        """
        lines = data.draw(st.lists(self.lineKinds(), max_size=8))
        assertKeyListModel(self, lines, self.render, newline, fromFile, loadAuthorizedKeys, parseAuthorizedKeys, "<authorized keys>")

    @MODERATE
    @given(st.data())
    def test_pubFileModel(self, data):
        """
        A .pub file is read by its first line that is neither blank nor a
        comment: that line's key, or KeyFileError naming the file and that
        line; KeyFileError if there is no such line.
        """
        lines = data.draw(st.lists(self.lineKinds(), max_size=5))
        path = self.writeFile("\n".join(self.render(line) for line in lines).encode(), 0o644, ".pub")
        first = next(((n, line) for n, line in enumerate(lines, 1) if line[0] != "skip"), None)
        if first is None:
            e = self.assertRaises(KeyFileError, loadPublicKey, path)
            self.assertIn("holds no public key", str(e))
        elif first[1][0] == "key":
            self.assertEqual(loadPublicKey(path), first[1][1])
        else:
            e = self.assertRaises(KeyFileError, loadPublicKey, path)
            self.assertIn(f"{path}:{first[0]}:", str(e))

    @MODERATE
    @given(st.one_of(st.text(max_size=400), st.binary(max_size=400)))
    def test_authorizedKeysArbitrary(self, content):
        """
        Arbitrary text to parseAuthorizedKeys, arbitrary bytes (invalid
        UTF-8 included) to loadAuthorizedKeys: a dict of keys to comments,
        or KeyFileError.
        """
        assertKeyListTotal(self, content, loadAuthorizedKeys, parseAuthorizedKeys, PublicKey)


# ---------------------------------------------------------------------------
# B. endpoint strings
# ---------------------------------------------------------------------------


class RecordingReactor(MemoryReactorClock):
    """
    A memory reactor that also records UDP listening: parsing an endpoint
    string must leave every list empty and schedule nothing.
    """

    def __init__(self):
        MemoryReactorClock.__init__(self)
        self.udpPorts = []

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        self.udpPorts.append((port, protocol, interface, maxPacketSize))
        raise AssertionError("an endpoint string parser listened on UDP")

    def opened(self):
        return (self.tcpServers + self.tcpClients + self.sslServers + self.sslClients
                + self.unixServers + self.unixClients + self.udpPorts + self.adoptedPorts
                + self.adoptedStreamConnections)


SUDP_OPTIONS = sorted(f.name for f in Config.__dataclass_fields__.values())
SFRAME_OPTIONS = sorted(f.name for f in StreamConfig.__dataclass_fields__.values())
ENDPOINT_OPTIONS = ["key", "authorizedKeys", "serverKey", "host", "port", "interface", "bindAddress",
                    "timeout", "endpoint"]
FIELD_TYPES = {**{f.name: f.type for f in Config.__dataclass_fields__.values()},
               **{f.name: f.type for f in StreamConfig.__dataclass_fields__.values()}}
KNOWN_OPTIONS = {
    "sudp-server": SUDP_OPTIONS + ["port", "key", "interface", "authorizedKeys"],
    "sudp-client": SUDP_OPTIONS + ["host", "port", "serverKey", "key", "bindAddress", "timeout"],
    "sframe-server": SFRAME_OPTIONS + ["key", "endpoint", "authorizedKeys"],
    "sframe-client": SFRAME_OPTIONS + ["serverKey", "endpoint", "key"],
}
# valid ranges of the integer options whose range is not 1 and up
VALID_INTS = {
    "maxDatagramSize": (200, 65507), "replayWindow": (1024, 2**20), "recvBatch": (1, 1024),
    "recvBuffer": (0, 2**30), "cookieRotation": (10, 10**6), "maxFramePayload": (128, 2**24),
    "rekeyAfterMessages": (1, 2**40), "rejectAfterMessages": (2**40 + 1, 2**64),
}
# option names that are Python parameter names of the parsers
PARAMETER_NAMES = ["reactor", "self", "args", "kwargs"]
PLAIN_VALUES = [
    "", "0", "1", "-1", "9000", "65535", "65536", "0x10", "0o17", "1_000", "00012", "9" * 40, " 7 ",
    "0.5", "1e309", "-1e309", "nan", "inf", "-inf", "-0", "1e-320", "true", "false", "yes", "off", "maybe",
    "window", "strict", "chacha20-poly1305", "aes-256-gcm,chacha20-poly1305", "xsalsa20-poly1305",
    "aes-256-ctr-sha256", "aes-256-ctr-sha256,aes-256-gcm", "chacha20-poly1305,chacha20-poly1305", ",",
    "no-such-suite", "127.0.0.1", "::1", "localhost", "ed25519-" + "A" * 43, "ed25519-" + "_" * 43,
    "\u00e9", "\x00",
]
INNER_ENDPOINTS = ["tcp:0", "tcp:9001", "tcp:127.0.0.1:9001", "tcp:host=127.0.0.1:port=9001",
                   "tcp:interface=127.0.0.1:port=0", "tcp6:0", "unix:/nonexistent/sudp.sock",
                   "unix:path=/nonexistent/sudp.sock", "tcp", "tcp:x", "bogus:1", "", "tcp:0:backlog=x"]


def escape(text):
    return text.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


class EndpointStringTests(TempDirMixin, unittest.TestCase):
    """
    C{serverFromString}/C{clientFromString} on C{sudp:} and C{sframe:} with
    arbitrary option text.

    What may come out: an endpoint (providing the stream endpoint
    interface, with a valid configuration), a L{ConfigurationError}, or a
    L{KeyFileError} for a key file named by C{key=} or C{authorizedKeys=}
    (docs/keys.md: keys are loaded when the string is parsed and a bad
    file is a KeyFileError; docs/endpoints.md: a bad option name or value
    is a ConfigurationError). Nothing may listen, connect or schedule.

    One more outcome is accepted, decided from Twisted's code: the string
    goes through Twisted's own splitting (C{twisted.internet.endpoints._parse})
    before sudp sees anything, and that splitting fails on its own for two
    kinds of text: a trailing unescaped backslash (C{_tokenize} calls
    C{next()} past the end: C{RuntimeError} from a C{StopIteration} inside a
    generator) and an option name that is not ASCII (C{nativeString}:
    C{UnicodeEncodeError}, a ValueError). When C{_parse} itself raises on
    the string, the endpoint functions must raise the same type; sudp never
    ran. Everything after the split is sudp's: a C{TypeError} from an
    option named like a parser parameter, or any exception from the inner
    endpoint string of C{sframe:}, which sudp parses with Twisted itself, is
    not acceptable.
    """

    def setUp(self):
        TempDirMixin.setUp(self)
        identity = Identity.generate()
        self.keyFile = os.path.join(self.dir, "server.key")
        saveIdentity(identity, self.keyFile)
        openKey = self.writeFile(identity.toPEM(), 0o644)
        garbageKey = self.writeFile(b"not a key\n")
        auth = self.writeFile((Identity.generate().publicKey.toText() + " alice\n").encode(), 0o644)
        badAuth = self.writeFile(b"ed25519-bad\n", 0o644)
        empty = self.writeFile(b"", 0o600)
        self.pubText = identity.publicKey.toText()
        self.files = [self.keyFile, self.keyFile + ".pub", openKey, garbageKey, auth, badAuth, empty,
                      self.dir, os.path.join(self.dir, "missing")]
        # names no file can have: through a regular file, too long, with a NUL byte
        self.badPaths = [os.path.join(self.keyFile, "x"), "k" * 5000, "a\0b"]

    def values(self):
        """
        Any value: awkward plain ones, file names, random text and numbers.
        """
        return st.one_of(
            st.sampled_from(PLAIN_VALUES + [self.pubText]),
            st.sampled_from(self.files + self.badPaths),
            st.text(max_size=24),
            st.integers(-2**70, 2**70).map(str),
            st.floats().map(repr),
        )

    def typedValue(self, name, kind):
        """
        A value for option C{name} of an endpoint of C{kind}: mostly a valid
        one (so that parsing goes on to the next step and a bad value
        elsewhere is reached), often a wild one of the option's type,
        sometimes anything.
        """
        wild = None
        if name == "suites":
            known = (["chacha20-poly1305", "aes-256-gcm", "xchacha20-poly1305", "xsalsa20-poly1305"]
                     if kind.startswith("sudp") else ["aes-256-ctr-sha256", "chacha20-poly1305", "aes-256-gcm"])
            valid = st.lists(st.sampled_from(known), min_size=1, max_size=4, unique=True).map(",".join)
            wild = st.lists(st.sampled_from(known + ["bogus", " ", ""]), max_size=4).map(",".join)
        elif name in ("key", "authorizedKeys"):
            valid = st.just(self.keyFile if name == "key" else self.files[4])
            wild = st.sampled_from(self.files + self.badPaths)
        elif name == "serverKey":
            valid = st.sampled_from([self.pubText, self.keyFile + ".pub", self.keyFile])
            wild = st.sampled_from(self.files + self.badPaths)
        elif name == "endpoint":
            valid = st.sampled_from(INNER_ENDPOINTS[:7])
            wild = self.inner()
        elif name in ("host", "interface", "bindAddress"):
            valid = st.sampled_from(["127.0.0.1", "::1", "0.0.0.0", "localhost"])
            wild = st.sampled_from(["", "300.1.1.1", "a:b", "\u00e9"])
        elif name in ("port", "timeout"):
            valid = st.integers(1, 65535).map(str)
            wild = st.one_of(st.integers(-5, 70000).map(str), st.floats().map(repr))
        elif FIELD_TYPES.get(name) is bool:
            valid = st.sampled_from(["true", "false", "1", "0", "yes", "no", "on", "off", "True"])
        elif FIELD_TYPES.get(name) is int:
            low, high = VALID_INTS.get(name, (1, 100_000))
            valid = st.one_of(st.integers(low, high).map(str), st.integers(low, high).map(hex))
            wild = st.one_of(st.sampled_from([str(low - 1), str(high + 1), "0", "-1"]), st.integers(-10, 2**66).map(str))
        elif FIELD_TYPES.get(name) is float:
            valid = st.floats(0.01, 10_000).map(str)
            wild = st.one_of(st.floats().map(repr), st.sampled_from(["nan", "NaN", "inf", "-inf", "1e309", "0", "-0"]))
        else:
            valid = st.sampled_from(["window", "strict"])
        if wild is None:
            wild = valid
        return st.one_of(valid, valid, valid, wild, wild, self.values())

    def inner(self):
        """
        Inner endpoint strings for C{sframe:endpoint=...}.
        """
        return st.one_of(
            st.sampled_from(INNER_ENDPOINTS),
            st.builds(lambda p, rest: p + ":" + rest,
                      st.sampled_from(["tcp", "tcp6", "unix", "bogus", "sudp", "sframe"]), st.text(max_size=20)),
            st.text(max_size=20),
        )

    def description(self, data, kind):
        """
        Draw an endpoint string of C{kind} (C{"sudp-server"}, ...):
        C{prefix:}, the options of a plausible string (all of them, or
        some), then more options. Half the time the extra options are ones
        this kind knows, with values mostly of their type, all escaped, so
        that parsing gets past the option checks to the key files and the
        inner endpoint; the other half anything: any name (parameter names
        of the parsers included), any value, positional arguments, raw
        text, escaped or not.
        """
        prefix = kind.split("-")[0]
        known = data.draw(st.booleans(), label="known options only")
        base = {
            "sudp-server": [(None, "9000"), ("key", self.keyFile)],
            "sudp-client": [("host", "127.0.0.1"), ("port", "9000"), ("serverKey", self.pubText)],
            "sframe-server": [("key", self.keyFile), ("endpoint", "tcp:0")],
            "sframe-client": [("serverKey", self.pubText), ("endpoint", "tcp:127.0.0.1:9001")],
        }[kind]
        pieces = base if known or data.draw(st.booleans()) else [o for o in base if data.draw(st.booleans())]
        pieces = list(pieces)
        for _ in range(data.draw(st.integers(0, 4 if known else 5), label="extra options")):
            if known:
                name = data.draw(st.sampled_from(KNOWN_OPTIONS[kind]))
                pieces.append((name, data.draw(self.typedValue(name, kind))))
                continue
            what = data.draw(st.sampled_from(["option", "option", "option", "positional", "raw"]))
            if what == "option":
                name = data.draw(st.one_of(
                    st.sampled_from(SUDP_OPTIONS + SFRAME_OPTIONS + ENDPOINT_OPTIONS + PARAMETER_NAMES),
                    st.text(max_size=12)))
                pieces.append((name, data.draw(self.inner() if name == "endpoint" else self.values())))
            elif what == "positional":
                pieces.append((None, data.draw(st.text(max_size=12))))
            else:
                pieces.append(("raw", data.draw(st.text(max_size=30))))
        if not known and data.draw(st.booleans()):
            pieces = data.draw(st.permutations(pieces))
        escaped = known or data.draw(st.booleans())
        out = []
        for name, value in pieces:
            if name == "raw":
                out.append(value)
            elif name is None:
                out.append(escape(value) if escaped else value)
            else:
                out.append((escape(name) + "=" + escape(value)) if escaped else f"{name}={value}")
        return prefix + ":" + ":".join(out)

    def check(self, parse, description, interface):
        """
        Parse C{description}; see the class docstring for what may happen.
        """
        reactor = RecordingReactor()
        try:
            twistedParse(description)
        except Exception as e:  # Twisted's own splitting, before sudp
            self.assertRaises(type(e), parse, reactor, description)
            self.assertEqual(reactor.opened(), [])
            return None
        try:
            endpoint = parse(reactor, description)
        except (ConfigurationError, KeyFileError):
            endpoint = None
        self.assertEqual(reactor.opened(), [], description)
        self.assertEqual(reactor.getDelayedCalls(), [], description)
        if endpoint is None:
            return None
        self.assertTrue(interface.providedBy(endpoint), endpoint)
        config = endpoint._config
        if isinstance(config, Config):
            config.validate()
        else:
            self.assertIsInstance(config, StreamConfig)
            # the rules of StreamConfig: positive timeouts (NaN is not positive)
            self.assertTrue(config.frameTimeout > 0 and config.handshakeTimeout > 0, description)
            self.assertTrue(128 <= config.maxFramePayload <= 2**24)
        port = getattr(endpoint, "_port", None)
        if isinstance(port, int):
            self.assertTrue(0 <= port <= 65535)
        return endpoint

    @MODERATE
    @given(st.data())
    def test_sudpServer(self, data):
        """
        serverFromString(reactor, "sudp:" + options): a SUDPServerEndpoint
        with a valid Config, ConfigurationError or KeyFileError; nothing
        listens.
        """
        d = self.description(data, "sudp-server")
        endpoint = self.check(serverFromString, d, IStreamServerEndpoint)
        if endpoint is not None:
            self.assertIsInstance(endpoint, SUDPServerEndpoint)

    @MODERATE
    @given(st.data())
    def test_sudpClient(self, data):
        """
        clientFromString(reactor, "sudp:" + options): a SUDPClientEndpoint,
        ConfigurationError or KeyFileError; nothing connects.
        """
        d = self.description(data, "sudp-client")
        endpoint = self.check(clientFromString, d, IStreamClientEndpoint)
        if endpoint is not None:
            self.assertIsInstance(endpoint, SUDPClientEndpoint)

    @MODERATE
    @given(st.data())
    def test_sframeServer(self, data):
        """
        serverFromString(reactor, "sframe:" + options), with arbitrary inner
        endpoint strings: an SFrameServerEndpoint with a valid StreamConfig,
        ConfigurationError or KeyFileError; nothing listens.
        """
        d = self.description(data, "sframe-server")
        endpoint = self.check(serverFromString, d, IStreamServerEndpoint)
        if endpoint is not None:
            self.assertIsInstance(endpoint, SFrameServerEndpoint)

    @MODERATE
    @given(st.data())
    def test_sframeClient(self, data):
        """
        clientFromString(reactor, "sframe:" + options): an
        SFrameClientEndpoint, ConfigurationError or KeyFileError; nothing
        connects.
        """
        d = self.description(data, "sframe-client")
        endpoint = self.check(clientFromString, d, IStreamClientEndpoint)
        if endpoint is not None:
            self.assertIsInstance(endpoint, SFrameClientEndpoint)

    @MODERATE
    @given(st.sampled_from(["sudp", "sframe"]), st.booleans(), st.text(max_size=60))
    def test_anyText(self, prefix, server, text):
        """
        The prefix and any text at all after it: the same outcomes.
        """
        parse, interface = ((serverFromString, IStreamServerEndpoint) if server
                            else (clientFromString, IStreamClientEndpoint))
        self.check(parse, f"{prefix}:{text}", interface)

    def test_everyOptionEveryValue(self):
        """
        Every option name each kind of string knows (sudp's or sframe's
        options and the endpoint options) with each of a set of awkward
        values (numbers in every notation, NaN, infinities, booleans, suite
        lists, keys, paths, empty), on a valid base string of each of the
        four kinds: the same outcomes. Left out here, because the
        C{test_bug_*} tests below pin them down: a NUL byte in a file name,
        an inner endpoint string, and NaN sframe timeouts.
        """
        bases = [
            (serverFromString, IStreamServerEndpoint, f"sudp:9000:key={escape(self.keyFile)}", SUDP_OPTIONS),
            (clientFromString, IStreamClientEndpoint,
             f"sudp:host=127.0.0.1:port=9000:serverKey={self.pubText}", SUDP_OPTIONS),
            (serverFromString, IStreamServerEndpoint,
             f"sframe:key={escape(self.keyFile)}:endpoint=tcp\\:0", SFRAME_OPTIONS),
            (clientFromString, IStreamClientEndpoint,
             f"sframe:serverKey={self.pubText}:endpoint=tcp\\:127.0.0.1\\:9001", SFRAME_OPTIONS),
        ]
        values = ["", "0", "-1", "65536", "0x10", "1_000", "9" * 40, "1e309", "nan", "-inf", "maybe",
                  "strict", "aes-256-gcm,chacha20-poly1305", "aes-256-ctr-sha256", ",", "\u00e9", "\x00",
                  self.pubText] + self.files[:4]
        for parse, interface, base, names in bases:
            for name in names + ENDPOINT_OPTIONS:
                for value in values:
                    if name == "endpoint":
                        continue  # test_bug_sframeInnerEndpoint
                    if value == "\x00" and name in ("key", "authorizedKeys", "serverKey"):
                        continue  # test_bug_unreadablePaths
                    if value == "nan" and name in ("frameTimeout", "handshakeTimeout"):
                        continue  # test_bug_sframeNaNTimeouts
                    self.check(parse, f"{base}:{escape(name)}={escape(value)}", interface)

    def test_regression_parameterNamesAsOptions(self):
        """
        Regression: an option named C{reactor} or C{self} (e.g.
        C{sudp:9000:key=server.key:reactor=x}) raises TypeError ("got
        multiple values for argument 'reactor'") from the plugin methods in
        twisted/plugins/sudp_plugins.py (and sudp's parseServer/parseClient,
        which take C{reactor} the same way), instead of ConfigurationError
        for an unknown option. Twisted split the string fine; it is sudp's
        signature that takes the option as its own parameter. Fixed: make
        C{reactor} (and C{self}) positional-only in the four plugin methods
        and in the parsers (C{def parseStreamServer(self, reactor, /, *args,
        **kwargs)}), so the option lands in kwargs and is refused by name.
        """
        for description, parse in [
            (f"sudp:9000:key={escape(self.keyFile)}:reactor=x", serverFromString),
            (f"sudp:9000:key={escape(self.keyFile)}:self=x", serverFromString),
            (f"sudp:host=127.0.0.1:port=9:serverKey={self.pubText}:reactor=x", clientFromString),
            (f"sframe:key={escape(self.keyFile)}:endpoint=tcp\\:0:reactor=x", serverFromString),
            (f"sframe:serverKey={self.pubText}:endpoint=tcp\\:127.0.0.1\\:9:self=x", clientFromString),
        ]:
            self.assertRaises(ConfigurationError, parse, RecordingReactor(), description)

    def test_regression_sframeInnerEndpoint(self):
        """
        Regression: sframe's parsers hand C{endpoint=INNER} to Twisted's
        serverFromString/clientFromString and let whatever they raise
        through: an unknown type (ValueError "Unknown endpoint type"), a
        bad port (ValueError from int()), missing arguments (TypeError from
        the endpoint class), an ssl: server without its certificate file
        (FileNotFoundError), a trailing backslash (RuntimeError), a
        non-ASCII option name (UnicodeEncodeError). These come after sudp
        saw the string, so they are sudp's to report as ConfigurationError
        (docs/endpoints.md: a bad value is a ConfigurationError when the
        string is parsed). Fixed: wrap the inner parse in
        C{try/except Exception as e: raise ConfigurationError(f"sframe:
        endpoint={inner!r}: {e}") from e} in both parsers.
        """
        for inner in ["bogus\\:1", "tcp\\:x", "tcp\\:0\\:backlog\\=x", "ssl\\:0\\:privateKey\\=/nonexistent",
                      "tcp\\:0\\:\u00e9\\=1", "tcp\\:0\\\\"]:
            self.assertRaises(ConfigurationError, serverFromString, RecordingReactor(),
                              f"sframe:key={escape(self.keyFile)}:endpoint={inner}")
        for inner in ["tcp", "tcp\\:host\\=a\\:port\\=x", "bogus\\:1"]:
            self.assertRaises(ConfigurationError, clientFromString, RecordingReactor(),
                              f"sframe:serverKey={self.pubText}:endpoint={inner}")

    def test_regression_sframeNaNTimeouts(self):
        """
        Regression: StreamConfig checks its timeouts with C{<= 0}, which NaN
        passes, so C{sframe:...:frameTimeout=nan} (or handshakeTimeout=nan)
        parses; the first callLater(nan) then fails with AssertionError in
        connectionMade or dataReceived (sudp's Config, which checks C{> 0},
        refuses NaN). Fixed: C{if not (self.frameTimeout > 0 and
        self.handshakeTimeout > 0): raise ConfigurationError(...)}.
        """
        for option in ("frameTimeout=nan", "handshakeTimeout=nan"):
            self.assertRaises(ConfigurationError, serverFromString, RecordingReactor(),
                              f"sframe:key={escape(self.keyFile)}:endpoint=tcp\\:0:{option}")
        self.assertRaises(ConfigurationError, StreamConfig, frameTimeout=float("nan"))


# ---------------------------------------------------------------------------
# C. the sframe key exchange and sudp.udp.handshake
# ---------------------------------------------------------------------------

SERVER_IDENTITY = Identity(bytes(range(32)))
CLIENT_IDENTITY = Identity(bytes(range(1, 33)))
STREAM_SUITES = [SEED003, AEAD_FRAMES, GCM_FRAMES]
suiteLists = st.lists(st.sampled_from(STREAM_SUITES), min_size=1, max_size=3, unique=True).map(tuple)


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
    def test_serverStructuredInit(self, sender, timestamp, cookie, ephemeral, suites, lengthDelta,
                                  trailing, cuts, policy, typeByte):
        """
        INITs with every field drawn (the type byte, a zero index, nonzero
        timestamp or cookie, low-order keys, 0 to 20 suites, unknown
        suites), a length prefix right or wrong, bytes after it: the outcome
        is exactly what docs/sframe.md section 4 says (an INIT that does not
        decode by protocol.md section 5.3, type 0x13 included, fails), a
        RESP with the server's preferred common suite or HandshakeFailed.
        Fails while the type byte is not checked: see
        test_bug_handshakeTypeByteIgnored.
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
            self.assertEqual(resp.suite, next(s.suiteId for s in policy if s.suiteId in offered))
            self.assertIs(done.suite, next(s for s in policy if s.suiteId in offered))

    @MODERATE
    @given(clientSuites=suiteLists, serverSuites=suiteLists,
           cuts=st.lists(st.integers(0, 300), max_size=5), replyCuts=st.lists(st.integers(0, 300), max_size=5),
           withIdentity=st.booleans(), payload=st.binary(max_size=200))
    def test_roundTrip(self, clientSuites, serverSuites, cuts, replyCuts, withIdentity, payload):
        """
        A real client and server, any suite lists and any read boundaries:
        the server picks its first suite the client offers (or fails with
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
        self.assertIs(clientDone.suite, common[0])
        self.assertIs(serverDone.suite, common[0])
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


# ---------------------------------------------------------------------------
# D. authenticated CONTROL packets with arbitrary records
# ---------------------------------------------------------------------------

recordTypes = st.one_of(st.sampled_from(sorted(R.KNOWN)), st.integers(0, 255))
recordValue = st.one_of(st.binary(max_size=120), st.sampled_from([0, 1, 4, 36, 96, 100, 513]).map(bytes))
plaintexts = st.one_of(
    st.binary(max_size=300),
    st.lists(st.tuples(recordTypes, recordValue), max_size=5).map(
        lambda recs: b"".join(R.encodeRecord(t, v) for t, v in recs)),
    st.tuples(st.lists(st.tuples(recordTypes, recordValue), min_size=1, max_size=4),
              st.integers(0, 400)).map(lambda t: b"".join(R.encodeRecord(a, b) for a, b in t[0])[: t[1]]),
)


class AuthenticatedRecordTests(unittest.TestCase):
    """
    CONTROL packets sealed with the session's real keys but holding
    arbitrary bytes or records: a peer holding the keys that breaks the
    record rules. Nothing raises; the session delivers exactly the APP_DATA
    records before any CLOSE; it closes (protocol-error) exactly when the
    records do not decode, or by the code of a CLOSE record; otherwise it
    still carries messages both ways.
    """

    def expected(self, plaintext, role):
        """
        @return: C{(messages, closed)} that docs/protocol.md sections 11,
            12 and 15 prescribe for a CONTROL plaintext arriving on a fresh
            open session (epoch 0) of C{role}.
        """
        if P.DATA_HEADER_SIZE + len(plaintext) + 16 > Config().maxDatagramSize:
            return [], None  # dropped as oversized before anything
        try:
            records = R.decodeRecords(plaintext)
        except MalformedPacket:
            return [], "protocol-error"
        messages, rekeying = [], False
        for rtype, value in records:
            if rtype == R.APP_DATA:
                messages.append(value)
            elif rtype == R.CLOSE:
                return messages, R.CLOSE_REASONS.get(value[0], "protocol-error")
            elif role == "client" and rtype == R.REKEY_REQUEST and value == bytes([0, 0, 0, 1]):
                rekeying = True  # the server asks for epoch 1: the client starts a rekey
            elif role == "client" and rtype == R.REKEY_RESPONSE and rekeying and value[:4] == bytes([0, 0, 0, 1]):
                return messages, "protocol-error"  # for the pending rekey, not signed by the server
        return messages, None

    @FEWER
    @given(plaintexts, st.booleans())
    def test_arbitraryRecords(self, plaintext, toServer):
        """
        From the client to the server, or from the server to the client.
        """
        net, server, client = connectedPair()
        serverSession = serverSessionOf(server, client)
        sender, receiver = ((client.session, serverSession) if toServer else (serverSession, client.session))
        who = "server" if toServer else CLIENT_ADDR
        net.events = []
        sender._sendControl(plaintext, net.now)
        events = net.pump()
        messages, closed = self.expected(plaintext, "server" if toServer else "client")
        got = [e.message for w, e in events if w == who and isinstance(e, MessageReceived)]
        self.assertEqual(got, messages)
        if closed is None:
            self.assertEqual(receiver.state, OPEN)
            self.assertEqual([e for w, e in events if isinstance(e, SessionEnded)], [])
            client.sendMessage(client.session, b"ping", net.now)
            server.sendMessage(serverSession, b"pong", net.now)
            events = net.pump()
            self.assertEqual(sorted(e.message for w, e in events if isinstance(e, MessageReceived)),
                             [b"ping", b"pong"])
        else:
            self.assertEqual(receiver.state, CLOSED)
            self.assertEqual(receiver.closeReason, closed)
            ended = [e for w, e in events if w == who and isinstance(e, SessionEnded)]
            self.assertEqual([e.reason.reason for e in ended], [closed])


# ---------------------------------------------------------------------------
# E. stress/mutate.py
# ---------------------------------------------------------------------------


class MutationRunTests(unittest.TestCase):
    """
    C{stress/mutate.py --quick} end to end, in a subprocess.
    """

    def runQuick(self, env=None):
        """
        Run the script with C{--quick} and return its JSON report, after
        checking the exit status and every field a report must have.
        """
        out = os.path.abspath(self.mktemp())
        result = subprocess.run(
            [sys.executable, os.path.join(ROOT, "stress", "mutate.py"), "--quick", "--seed", "7",
             "--json", out],
            cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ, **(env or {})),
        )
        self.assertEqual(result.returncode, 0, result.stdout[-3000:] + result.stderr[-3000:])
        self.assertIn("PASS", result.stdout)
        with open(out) as f:
            report = json.load(f)
        self.assertTrue(report["ok"])
        self.assertTrue(report["quick"])
        self.assertEqual(report["seed"], 7)
        self.assertEqual(report["count"], 20_000)
        self.assertGreaterEqual(report["fed"], 20_000)
        self.assertEqual(report["fed"], report["batched"] + report["single"])
        self.assertGreater(report["batched"], 0)
        self.assertGreater(report["single"], 0)
        self.assertEqual(report["exceptions"], 0)
        self.assertEqual(report["exceptionSamples"], [])
        g = report["genuine"]
        self.assertGreater(g["clientToServerSent"], 0)
        self.assertEqual(g["clientToServerDelivered"], g["clientToServerSent"])
        self.assertGreater(g["serverToClientSent"], 0)
        self.assertEqual(g["serverToClientDelivered"], g["serverToClientSent"])
        self.assertEqual(g["helperMessagesDelivered"], g["helperMessagesSent"])
        session = report["session"]
        self.assertEqual((session["serverState"], session["clientState"], session["ended"]), ("open", "open", []))
        self.assertGreaterEqual(session["serverRekeys"], 1)
        for kind in ("HELLO", "COOKIE", "INIT", "RESP", "CONFIRM", "DATA", "KEEPALIVE", "REKEY_REQUEST",
                     "REKEY_RESPONSE"):
            self.assertGreater(report["captured"].get(kind, 0), 0, kind)
        for kind in ("flip", "substitute", "truncate", "extend", "splice", "rewrite", "replay", "random"):
            self.assertGreater(report["mutations"].get(kind, 0), 0, kind)
        self.assertGreater(sum(report["drops"].values()), 0)
        self.assertGreaterEqual(report["keepalives"].get("client", 0), 1)
        self.assertGreaterEqual(report["keepalives"].get("server", 0), 1)
        for reason in ("bad-tag", "replay", "unknown-session", "truncated", "bad-cookie", "rate-limited"):
            self.assertIn(reason, report["drops"])
        for key in ("tracedStart", "tracedMid", "tracedEnd", "tracedGrowth", "rssStart", "rssEnd"):
            self.assertIn(key, report["memory"])
        for key in ("sessions", "byEphemeral", "timers", "rateLimiter", "cookieSecrets", "cipherCache"):
            for when in ("start", "end", "max"):
                self.assertIn(key, report["containers"][when])
        for key in ("seconds", "datagramsPerSecond", "engineDatagramsPerSecond"):
            self.assertIsInstance(report[key], float)
        self.assertEqual(sorted(report["checks"]), sorted([
            "no-exceptions", "genuine-delivered-exactly-once", "session-undisturbed", "no-forged-effect",
            "no-amplification", "drop-reasons-documented", "helpers-ok", "exercised", "containers-bounded",
            "memory-flat"]))
        for name, check in report["checks"].items():
            self.assertTrue(check["ok"], (name, check))
        return report

    def test_quickRun(self):
        """
        stress/mutate.py --quick (20,000 mutated datagrams fed to a
        server engine, through the C data path where it is built, while a
        real session runs) exits 0, and its JSON report says: no exception,
        every genuine message delivered exactly once, the session open at
        both ends, every check passed, drops counted by reason, memory and
        container figures present. No speed is asserted.
        """
        self.runQuick()

    def test_quickRunPurePython(self):
        """
        The same with the C speedups disabled (SUDP_NO_SPEEDUPS=1): the
        pure-Python receive path passes the same checks.
        """
        report = self.runQuick({"SUDP_NO_SPEEDUPS": "1"})
        self.assertFalse(report["speedups"])
