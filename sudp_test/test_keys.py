"""
Tests for key files (sudp.keys) and the sudp command (sudp.cli).
"""

import io
import os
import stat
import subprocess
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from twisted.trial import unittest

from sudp import cli
from sudp.errors import KeyFileError, PublicKeyFormatError
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    status = cli.main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


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


class CommandTests(unittest.TestCase):
    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.path = os.path.join(self.dir, "id.key")

    def test_keygenAndPubkey(self):
        """
        sudp keygen writes FILE (0600) and FILE.pub and prints the key;
        sudp pubkey prints the same key and fingerprint from either file.
        """
        status, out, err = run("keygen", self.path, "--comment", "me")
        self.assertEqual((status, err), (0, ""))
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        key = loadIdentity(self.path).publicKey
        self.assertIn(key.toText(), out)
        for source in (self.path, self.path + ".pub"):
            status, out, err = run("pubkey", source)
            self.assertEqual(status, 0)
            self.assertEqual(out, f"{key.toText()}\n{key.fingerprint()}\n")

    def test_keygenRefusesOverwrite(self):
        """
        keygen over an existing file exits 1 with a message; --force overwrites.
        """
        run("keygen", self.path)
        before = loadIdentity(self.path).publicKey
        status, out, err = run("keygen", self.path)
        self.assertEqual(status, 1)
        self.assertIn("refusing to overwrite", err)
        self.assertEqual(loadIdentity(self.path).publicKey, before)
        status, out, err = run("keygen", self.path, "--force")
        self.assertEqual(status, 0)
        self.assertNotEqual(loadIdentity(self.path).publicKey, before)

    def test_pubkeyTooOpen(self):
        """
        pubkey on a private key readable by others exits 1 naming the file.
        """
        run("keygen", self.path)
        os.chmod(self.path, 0o644)
        status, out, err = run("pubkey", self.path)
        self.assertEqual(status, 1)
        self.assertIn(self.path, err)
        self.assertIn("too open", err)

    def test_pythonDashM(self):
        """
        python -m sudp runs the same command.
        """
        result = subprocess.run(
            [sys.executable, "-m", "sudp", "keygen", self.path],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(loadIdentity(self.path).publicKey.toText(), result.stdout)
