# -*- test-case-name: sudp_test.test_cli -*-
"""
Tests for L{sudp.cli}.

Tests for key files (sudp.keys) and the sudp command (sudp.cli).

Tests for C{sudp connect} (L{sudp.netcat}): its quiet period and its exit
statuses on a L{task.Clock} with a fake session, then against a real echo
server in this process, then run as the command it is (C{python -m sudp
connect} in a child process) against a C{twist sudp} echo server or an echo
server in this process, on 127.0.0.1 and ephemeral ports. Every wait is
bounded and every child process is ended (and waited for) at cleanup. Also
C{sudp --version} and the C{--version} of the C{twist} plugins.

Tests for the RSA key material of gossip6 (L{sudp.rsakeys}) and the RSA side
of the C{sudp keygen} and C{sudp pubkey} commands.

RSA key generation is slow next to Ed25519 (tens to hundreds of
milliseconds), so a few identities are made once at import and shared; the
out-of-range private keys some error tests need are made once, on first use.
Public keys of any size or exponent are built from numbers, without
generating anything.
"""

import io
import os
import stat
import subprocess
import sys

from cryptography.hazmat.primitives.asymmetric import ec
from twisted.internet import defer
from twisted.trial import unittest

from sudp import cli
from sudp.keys import Identity, loadIdentity, saveIdentity
from sudp.rsakeyfiles import loadRSAIdentity, saveRSAIdentity

from sudp_test.helpers import A, BOUND, SMALL, ended, pkcs8, spawn
from sudp_test.keyfiles import TempDirMixin
from sudp_test.paths import ROOT

def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    status = cli.main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()

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

class VersionTests(unittest.TestCase):
    """
    C{sudp --version}, C{twist sudp --version} and C{twist vpn041 --version}
    report sudp's version.
    """

    timeout = 2 * BOUND

    @defer.inlineCallbacks
    def test_sudpVersion(self):
        """
        C{sudp --version} prints C{sudp VERSION} and exits 0.
        """
        import sudp

        child = spawn(self, "-m", "sudp", "--version")
        code = yield ended(child)
        self.assertEqual((code, child.out), (0, f"sudp {sudp.__version__}\n".encode()), child.err)

    @defer.inlineCallbacks
    def assertTwistVersion(self, plugin):
        """
        C{twist PLUGIN --version} prints sudp's version and Twisted's, and
        exits 0.
        """
        import twisted

        import sudp

        child = spawn(self, "-m", "twisted", plugin, "--version")
        code = yield ended(child)
        expected = f"sudp {sudp.__version__} (Twisted {twisted.__version__})\n".encode()
        self.assertEqual((code, child.out), (0, expected), child.err)

    def test_twistSudpVersion(self):
        """
        C{twist sudp --version} reports sudp's version, not only Twisted's.
        """
        return self.assertTwistVersion("sudp")

    def test_twistVpn041Version(self):
        """
        C{twist vpn041 --version} reports sudp's version, not only Twisted's.
        """
        return self.assertTwistVersion("vpn041")

def runModule(*argv):
    """
    Run C{python -m sudp ARGV} in a subprocess.

    @return: the C{subprocess.CompletedProcess}, text output captured.
    """
    return subprocess.run([sys.executable, "-m", "sudp", *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)

class RSACommandTests(TempDirMixin, unittest.TestCase):
    """
    sudp keygen --type rsa and sudp pubkey on RSA keys, in a subprocess and
    in this process.
    """

    def test_pythonDashM(self):
        """
        python -m sudp keygen --type rsa FILE --comment C writes a 3072-bit
        key 0600 and FILE.pub, printing the key and fingerprint; python -m
        sudp pubkey prints the same two lines from FILE and from FILE.pub.
        """
        result = runModule("keygen", "--type", "rsa", self.path, "--comment", "gossip peer")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        identity = loadRSAIdentity(self.path)
        self.assertEqual(identity.bits, 3072)
        key = identity.publicKey
        self.assertEqual(result.stdout.splitlines()[1:], [key.toText(), key.fingerprint()])
        with open(self.path + ".pub", encoding="utf-8") as f:
            self.assertEqual(f.read(), f"{key.toText()} gossip peer\n")
        for source in (self.path, self.path + ".pub"):
            result = runModule("pubkey", source)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(result.stdout, f"{key.toText()}\n{key.fingerprint()}\n")

    def test_keygenBits(self):
        """
        --bits 2048 makes a 2048-bit key; the default type is still Ed25519.
        """
        status, out, err = run("keygen", "--type", "rsa", "--bits", "2048", self.path)
        self.assertEqual((status, err), (0, ""))
        self.assertEqual(loadRSAIdentity(self.path).bits, 2048)
        edPath = self.freshPath(".key")
        self.assertEqual(run("keygen", edPath)[0], 0)
        self.assertIsInstance(loadIdentity(edPath), Identity)

    def test_usageErrors(self):
        """
        Bad --bits values, --bits without --type rsa and an unknown --type
        are usage errors (exit 2) that say why, and write no file.
        """
        for argv, fragment in (
            (["--type", "rsa", "--bits", "1024"], "2048 to 4096"),
            (["--type", "rsa", "--bits", "3000"], "multiple of 256"),
            (["--type", "rsa", "--bits", "8192"], "2048 to 4096"),
            (["--type", "rsa", "--bits", "many"], "not a number of bits"),
            (["--bits", "2048"], "--bits applies only to --type rsa"),
            (["--type", "dsa"], "invalid choice"),
        ):
            stderr = io.StringIO()
            self.patch(sys, "stderr", stderr)
            e = self.assertRaises(SystemExit, cli.main, ["keygen", *argv, self.path])
            self.assertEqual(e.code, 2)
            self.assertIn(fragment, stderr.getvalue())
            self.assertFalse(os.path.exists(self.path))

    def test_keygenRefusesOverwrite(self):
        """
        keygen --type rsa over an existing file exits 1 naming it; --force
        overwrites.
        """
        saveRSAIdentity(A, self.path)
        status, out, err = run("keygen", "--type", "rsa", "--bits", "2048", self.path)
        self.assertEqual(status, 1)
        self.assertIn("refusing to overwrite", err)
        self.assertIn(self.path, err)
        self.assertEqual(loadRSAIdentity(self.path).publicKey, A.publicKey)
        status, out, err = run("keygen", "--type", "rsa", "--bits", "2048", self.path, "--force")
        self.assertEqual(status, 0)
        self.assertEqual(loadRSAIdentity(self.path).bits, 2048)

    def test_pubkeyEitherKind(self):
        """
        pubkey prints the text form and fingerprint of an Ed25519 or an RSA
        key, from the private file or the .pub; an RSA key file readable by
        others, or a file of another key type, exits 1 naming the file.
        """
        ed = Identity.generate()
        edPath = self.freshPath(".key")
        saveIdentity(ed, edPath)
        saveRSAIdentity(SMALL, self.path)
        for source, key in ((edPath, ed.publicKey), (edPath + ".pub", ed.publicKey),
                            (self.path, SMALL.publicKey), (self.path + ".pub", SMALL.publicKey)):
            self.assertEqual(run("pubkey", source), (0, f"{key.toText()}\n{key.fingerprint()}\n", ""))
        os.chmod(self.path, 0o644)
        status, out, err = run("pubkey", self.path)
        self.assertEqual(status, 1)
        self.assertIn(self.path, err)
        self.assertIn("too open", err)
        ecPath = self.writeFile(pkcs8(ec.generate_private_key(ec.SECP256R1())))
        status, out, err = run("pubkey", ecPath)
        self.assertEqual(status, 1)
        self.assertIn("expected an Ed25519 or an RSA key", err)

    def test_help(self):
        """
        The help of keygen and pubkey mentions RSA, --type and --bits.
        """
        for argv, fragments in ((["keygen", "--help"], ["--type", "{ed25519,rsa}", "--bits", "3072"]),
                                (["pubkey", "--help"], ["Ed25519 or RSA"]),
                                (["--help"], ["Ed25519 or RSA"])):
            stdout = io.StringIO()
            self.patch(sys, "stdout", stdout)
            e = self.assertRaises(SystemExit, cli.main, argv)
            self.assertEqual(e.code, 0)
            for fragment in fragments:
                self.assertIn(fragment, stdout.getvalue())
