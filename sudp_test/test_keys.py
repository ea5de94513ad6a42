# -*- test-case-name: sudp_test.test_keys -*-
"""
Tests for L{sudp.keys}.

Hypothesis properties of the key file decoders: private key files (only
L{sudp.errors.KeyFileError}), public key text (only
L{sudp.errors.PublicKeyFormatError}), C{.pub} and authorized keys files;
round trips of the text form and of saved identities.
"""

import base64
import os
import stat

from cryptography.hazmat.primitives import serialization, serialization as S
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, ed448, rsa, x25519, x448
from hypothesis import given, strategies as st
from twisted.trial import unittest

from sudp.errors import KeyFileError, PublicKeyFormatError
from sudp.keys import (
    Identity,
    loadAuthorizedKeys,
    loadIdentity,
    loadOrCreateIdentity,
    loadPublicKey,
    parseAuthorizedKeys,
    PublicKey,
    saveIdentity,
)

from sudp_test.helpers import FEWER, MODERATE
from sudp_test.keyfiles import (
    assertKeyListModel,
    assertKeyListTotal,
    B64URL,
    nearKeyTexts,
    TempDirMixin,
)

# printable ASCII: no line separators for str.splitlines or bytes.splitlines
LINE_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)

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

class PublicKeyTextPropertyTests(TempDirMixin, unittest.TestCase):
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

class PublicKeyTextTests(unittest.TestCase):
    def test_roundTrip(self):
        """
        The text form is ed25519- and 43 base64url characters, and parses back.
        """
        key = Identity.generate().publicKey
        text = key.toText()
        self.assertTrue(text.startswith("ed25519-"))
        self.assertEqual(len(text), len("ed25519-") + 43)
        self.assertNotIn(":", text)
        self.assertNotIn("=", text)
        self.assertEqual(PublicKey.fromText(text), key)
        self.assertEqual(PublicKey.fromText(text.encode() + b"\n"), key)

    def test_fingerprint(self):
        """
        The fingerprint is SHA256: and unpadded base64 of the raw key's SHA-256.
        """
        key = PublicKey(bytes(range(32)))
        import base64
        import hashlib

        expected = "SHA256:" + base64.b64encode(hashlib.sha256(bytes(range(32))).digest()).decode().rstrip("=")
        self.assertEqual(key.fingerprint(), expected)

    def test_badText(self):
        """
        Wrong prefix, truncated, non-base64 and non-canonical forms are refused
        with PublicKeyFormatError.
        """
        good = Identity.generate().publicKey.toText()
        for bad in ["", "rsa-AAAA", good[:-1], good + "A", good[:-3] + "!!!", "ed25519-" + "_" * 43, "\xff"]:
            self.assertRaises(PublicKeyFormatError, PublicKey.fromText, bad)

    def test_signVerify(self):
        """
        An identity's signature verifies under its public key only for the same message.
        """
        ident = Identity.generate()
        sig = ident.sign(b"message")
        self.assertTrue(ident.publicKey.verify(sig, b"message"))
        self.assertFalse(ident.publicKey.verify(sig, b"massage"))
        self.assertFalse(Identity.generate().publicKey.verify(sig, b"message"))
        self.assertFalse(ident.publicKey.verify(b"short", b"message"))

class KeyFileTests(unittest.TestCase):
    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.path = os.path.join(self.dir, "server.key")

    def test_saveAndLoad(self):
        """
        A saved identity is written 0600, its .pub 0644-ish with the text form,
        and it loads back to the same key.
        """
        ident = Identity.generate()
        saveIdentity(ident, self.path, comment="test server")
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        with open(self.path + ".pub") as f:
            self.assertEqual(f.read(), ident.publicKey.toText() + " test server\n")
        with open(self.path, "rb") as f:
            self.assertTrue(f.read().startswith(b"-----BEGIN PRIVATE KEY-----"))
        self.assertEqual(loadIdentity(self.path).publicKey, ident.publicKey)
        self.assertEqual(loadPublicKey(self.path + ".pub"), ident.publicKey)

    def test_refusesOverwrite(self):
        """
        Saving over an existing file fails unless force is given.
        """
        saveIdentity(Identity.generate(), self.path)
        second = Identity.generate()
        e = self.assertRaises(KeyFileError, saveIdentity, second, self.path)
        self.assertIn(self.path, str(e))
        self.assertIn("--force", str(e))
        saveIdentity(second, self.path, force=True)
        self.assertEqual(loadIdentity(self.path).publicKey, second.publicKey)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)

    def test_refusesOpenPermissions(self):
        """
        A private key readable by group or others is refused with a message
        naming the file and the fix.
        """
        saveIdentity(Identity.generate(), self.path)
        for mode in (0o640, 0o604, 0o644, 0o660):
            os.chmod(self.path, mode)
            e = self.assertRaises(KeyFileError, loadIdentity, self.path)
            self.assertIn(self.path, str(e))
            self.assertIn("too open", str(e))
            self.assertIn("chmod 600", str(e))
        os.chmod(self.path, 0o400)
        loadIdentity(self.path)

    def _write(self, data):
        with open(self.path, "wb") as f:
            f.write(data)
        os.chmod(self.path, 0o600)

    def assertBadFile(self, data, fragment):
        self._write(data)
        e = self.assertRaises(KeyFileError, loadIdentity, self.path)
        self.assertIn(self.path, str(e))
        self.assertIn(fragment, str(e))

    def test_truncated(self):
        """
        A truncated PEM file gives a clear error naming the file.
        """
        pem = Identity.generate().toPEM()
        self.assertBadFile(pem[: len(pem) // 2], "not a valid private key")

    def test_garbage(self):
        """
        Random bytes give a clear error naming the file.
        """
        self.assertBadFile(os.urandom(200), "not a valid private key")

    def test_empty(self):
        """
        An empty file is reported as empty.
        """
        self.assertBadFile(b"", "empty")

    def test_missing(self):
        """
        A missing file is reported as missing.
        """
        e = self.assertRaises(KeyFileError, loadIdentity, self.path)
        self.assertIn("no such key file", str(e))

    def test_directory(self):
        """
        A key path that is a directory is reported as a directory (on the
        landed code: "permissions 0755 are too open"), by the loaders of
        both key types.
        """
        from sudp.rsakeyfiles import loadRSAIdentity

        os.makedirs(self.path, mode=0o755)
        for load in (loadIdentity, loadRSAIdentity, loadOrCreateIdentity):
            e = self.assertRaises(KeyFileError, load, self.path)
            self.assertIn("is a directory", str(e))
            self.assertNotIn("too open", str(e))

    def test_wrongTypeRSA(self):
        """
        An RSA private key is refused: the file holds the wrong type of key.
        """
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        self.assertBadFile(pem, "expected an Ed25519 key")

    def test_wrongTypeEC(self):
        """
        An EC private key is refused as the wrong type.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        self.assertBadFile(pem, "expected an Ed25519 key")

    def test_publicKeyGivenAsPrivate(self):
        """
        A .pub line or a PEM public key where a private key is expected is
        named for what it is.
        """
        ident = Identity.generate()
        self.assertBadFile(ident.publicKey.toText().encode() + b"\n", "holds a public key")
        from cryptography.hazmat.primitives.asymmetric import ed25519

        pub = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.assertBadFile(pub, "holds a public key")

    def test_encrypted(self):
        """
        A passphrase-protected key is refused with a clear message.
        """
        from cryptography.hazmat.primitives.asymmetric import ed25519

        pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"))
        self.assertBadFile(pem, "encrypted")

    def test_badPubFile(self):
        """
        A .pub file with a bad line names the file and line.
        """
        path = self.path + ".pub"
        with open(path, "w") as f:
            f.write("# comment\ned25519-tooshort\n")
        e = self.assertRaises(KeyFileError, loadPublicKey, path)
        self.assertIn(path + ":2", str(e))

    def test_loadOrCreate(self):
        """
        loadOrCreateIdentity creates a 0600 key once, then loads the same key.
        """
        first, created = loadOrCreateIdentity(self.path)
        self.assertTrue(created)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        second, created = loadOrCreateIdentity(self.path)
        self.assertFalse(created)
        self.assertEqual(first.publicKey, second.publicKey)

class AuthorizedKeysTests(unittest.TestCase):
    def test_parse(self):
        """
        Keys with comments, blank lines and # comments parse; the key text
        form is the same as everywhere else.
        """
        a, b = Identity.generate().publicKey, Identity.generate().publicKey
        text = f"# players\n\n{a.toText()} alice laptop\n{b.toText()}\n"
        keys = parseAuthorizedKeys(text)
        self.assertEqual(keys, {a: "alice laptop", b: ""})

    def test_badLine(self):
        """
        A bad line is reported with the file name and line number.
        """
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(Identity.generate().publicKey.toText() + "\nssh-ed25519 AAAA x\n")
        e = self.assertRaises(KeyFileError, loadAuthorizedKeys, path)
        self.assertIn(f"{path}:2", str(e))

    def test_missing(self):
        """
        A missing authorized keys file is a clear error.
        """
        e = self.assertRaises(KeyFileError, loadAuthorizedKeys, "/nonexistent/authorized")
        self.assertIn("/nonexistent/authorized", str(e))
