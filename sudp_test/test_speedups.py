# -*- test-case-name: sudp_test.test_speedups -*-
"""
The optional C speedups: which path is in use, the native cipher against
the C{cryptography} package's, and the pure-Python path still passing the
engine and integration tests with them switched off.
"""

import os
import random
import subprocess
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from twisted.trial import unittest

from sudp import speedups
from sudp.errors import MalformedPacket
from sudp.suites import _CryptographyPacketCipher, getSuite
from sudp.udp import packets as P, replay, session

from sudp_test.paths import ROOT

class SpeedupsTests(unittest.TestCase):
    def test_describe(self):
        """
        describe() says which data path runs, and sessions use the window
        of that path.
        """
        text = speedups.describe()
        if speedups.native is None:
            self.assertIn("pure-Python", text)
            self.assertIs(replay.Window, replay.ReplayWindow)
        else:
            self.assertIn("C speedups", text)
            self.assertIs(replay.Window, speedups.native.Window)
        self.assertIs(session.Window, replay.Window)

    def test_pythonPathPasses(self):
        """
        With SUDP_NO_SPEEDUPS=1 the pure-Python data path is chosen, and the
        engine, data-path, batching and real-socket tests pass on it.
        """
        env = dict(os.environ, SUDP_NO_SPEEDUPS="1")
        check = subprocess.run(
            [sys.executable, "-c", "from sudp import speedups; print(speedups.native, speedups.describe())"],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
        )
        self.assertIn("None pure-Python data path (C speedups disabled by SUDP_NO_SPEEDUPS)", check.stdout)
        modules = ['sudp_test.udp.test_ciphercache.CipherCacheTests', 'sudp_test.udp.test_ratelimit.HandshakeRateLimitTests', 'sudp_test.udp.test_server.RegressionTests', 'sudp_test.udp.test_session.DataTests', 'sudp_test.udp.test_sudp1.HandshakeTests', 'sudp_test.udp.test_sudp1.MutualAuthTests', 'sudp_test.udp.test_client.ClientBadInputTests', 'sudp_test.udp.test_client.ClientHandshakeTests', 'sudp_test.udp.test_control.MaliciousPeerTests', 'sudp_test.udp.test_cookie.CookieTests', 'sudp_test.udp.test_server.AmplificationTests', 'sudp_test.udp.test_server.LimitTests', 'sudp_test.udp.test_server.ServerMalformedTests', 'sudp_test.udp.test_server.StatelessnessTests', 'sudp_test.udp.test_session.AddressAndWindowTests', 'sudp_test.udp.test_session.DataAuthenticationTests', 'sudp_test.udp.test_session.NonceTests', 'sudp_test.test_tap.CommandLineTests', 'sudp_test.udp.test_adapters.ServerRestartTests', 'sudp_test.udp.test_endpoints.EndpointTests', 'sudp_test.udp.test_endpoints.FastFailureTests', 'sudp_test.udp.test_endpoints.KeyRolloverTests', 'sudp_test.udp.test_endpoints.LimitTests', 'sudp_test.udp.test_endpoints.MutualAuthTests',
                   'sudp_test.udp.test_batching', 'sudp_test.udp.test_datapath']
        result = subprocess.run(
            [sys.executable, "-m", "twisted.trial", "--temp-directory", os.path.abspath(self.mktemp())] + modules,
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
        )
        tail = result.stdout[-2000:]
        self.assertEqual(result.returncode, 0, tail)
        self.assertIn("PASSED", tail)

ALGORITHMS = {"chacha20-poly1305": ChaCha20Poly1305, "aes-256-gcm": AESGCM}

class NativeCipherTests(unittest.TestCase):
    """
    The native cipher (OpenSSL's EVP from C) seals exactly as the
    C{cryptography} package does and opens exactly what it opens.
    """

    def setUp(self):
        if speedups.nativeCipher is None:
            raise unittest.SkipTest("the native cipher is not built here (or SUDP_NO_NATIVE_CIPHER is set)")

    def pair(self, algorithm, key):
        return speedups.nativeCipher(algorithm, key), _CryptographyPacketCipher(ALGORITHMS[algorithm](key))

    def test_builtInSuitesUseIt(self):
        """
        Both built-in AEAD suites (and a subclass of one) key the native
        cipher; the other suites keep their own.
        """
        for name in ALGORITHMS:
            cipher = getSuite(name).newCipher(bytes(32))
            self.assertIsInstance(cipher, speedups.nativeCipher)
            self.assertEqual(cipher.algorithm, name)
        for name in ("xchacha20-poly1305", "xsalsa20-poly1305"):
            self.assertNotIsInstance(getSuite(name).newCipher(bytes(32)), speedups.nativeCipher)
        self.assertIn("native cipher (OpenSSL", speedups.describe())

    def test_sealsAsCryptography(self):
        """
        Random keys, sequence numbers (the edges of 64 bits included),
        headers and lengths from 0 to 2,000 bytes: the same bytes out, and
        each opens the other's.
        """
        rng = random.Random(19)
        for algorithm in ALGORITHMS:
            for i in range(400):
                key = rng.randbytes(32)
                native, reference = self.pair(algorithm, key)
                seq = rng.choice([0, 1, 2**32 - 1, 2**32, 2**63, 2**64 - 1, rng.getrandbits(64)])
                header = P.encodeDataHeader(P.DATA | (i & 1), rng.getrandbits(32), seq)
                plaintext = rng.randbytes(rng.choice([0, 1, 15, 16, 17, 64, 1200, rng.randrange(2001)]))
                sealed = native.seal(seq, header, plaintext)
                self.assertEqual(sealed, reference.seal(seq, header, plaintext))
                self.assertEqual(reference.open(seq, header, sealed), plaintext)
                self.assertEqual(native.open(seq, header, sealed), plaintext)
                # the contexts are reused: the next packet is not disturbed
                self.assertEqual(native.open(seq, header, bytearray(sealed)), plaintext)

    def test_refusesWhatCryptographyRefuses(self):
        """
        Every flipped bit of ciphertext, tag or header, a wrong sequence
        number, a wrong key, truncations down to nothing: MalformedPacket
        ('bad-tag'), and a good packet opens after each of them.
        """
        rng = random.Random(20)
        for algorithm in ALGORITHMS:
            key = rng.randbytes(32)
            native, reference = self.pair(algorithm, key)
            header = P.encodeDataHeader(P.DATA, 7, 99)
            sealed = reference.seal(99, header, b"attack at dawn")
            bad = []
            for bit in range(len(sealed) * 8):
                data = bytearray(sealed)
                data[bit // 8] ^= 1 << (bit % 8)
                bad.append((99, header, bytes(data)))
            for bit in range(len(header) * 8):
                h = bytearray(header)
                h[bit // 8] ^= 1 << (bit % 8)
                bad.append((99, bytes(h), sealed))
            bad += [(98, header, sealed), (100, header, sealed), (99 + 2**32, header, sealed)]
            bad += [(99, header, sealed[:n]) for n in range(len(sealed))]
            wrongKey = speedups.nativeCipher(algorithm, rng.randbytes(32))
            for seq, h, data in bad:
                e = self.assertRaises(MalformedPacket, native.open, seq, h, data)
                self.assertEqual(e.reason, "bad-tag")
                self.assertRaises(MalformedPacket, reference.open, seq, h, data)
                self.assertEqual(native.open(99, header, sealed), b"attack at dawn")
            self.assertRaises(MalformedPacket, wrongKey.open, 99, header, sealed)

    def test_badArguments(self):
        """
        Unknown algorithms, keys that are not 32 bytes, sequence numbers out
        of range and wrong argument counts are clear errors.
        """
        C = speedups.nativeCipher
        self.assertRaises(ValueError, C, "rot13", bytes(32))
        self.assertRaises(ValueError, C, "aes-256-gcm", bytes(16))
        self.assertRaises(TypeError, C, "aes-256-gcm", "not bytes")
        c = C("chacha20-poly1305", bytes(32))
        self.assertRaises(OverflowError, c.seal, 2**64, b"", b"")
        self.assertRaises(OverflowError, c.seal, -1, b"", b"")
        self.assertRaises(TypeError, c.seal, 1, b"")
        self.assertRaises(TypeError, c.open, 1, b"", "text")
        self.assertRaises(RuntimeError, C.__new__(C).seal, 1, b"", b"")
        self.assertIsNone(C.__new__(C).algorithm)

class CipherChoiceTests(unittest.TestCase):
    """
    The loops in C with the cryptography package's cipher, and a build
    without OpenSSL's headers.
    """

    def test_noNativeCipher(self):
        """
        With SUDP_NO_NATIVE_CIPHER=1 the C loops run with the cryptography
        package's cipher, and the data-path and batching tests pass.
        """
        if speedups.native is None:
            raise unittest.SkipTest("the C speedups are not built")
        env = dict(os.environ, SUDP_NO_NATIVE_CIPHER="1")
        env.pop("SUDP_NO_SPEEDUPS", None)
        check = subprocess.run(
            [sys.executable, "-c", "from sudp import speedups; print(speedups.nativeCipher, speedups.describe())"],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
        )
        self.assertIn("None C speedups", check.stdout)
        self.assertIn("the cryptography package's cipher (SUDP_NO_NATIVE_CIPHER)", check.stdout)
        result = subprocess.run(
            [sys.executable, "-m", "twisted.trial", "--temp-directory", os.path.abspath(self.mktemp()),
             "sudp_test.udp.test_datapath", "sudp_test.udp.test_batching", "sudp_test.udp.test_vectors.SuiteTests"],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
        )
        self.assertEqual(result.returncode, 0, result.stdout[-2000:])

    def test_buildWithoutOpenSSL(self):
        """
        SUDP_NO_EVP=1 builds the speedups without the native cipher (as a
        machine without OpenSSL's headers does), and that module works: the
        loops, no Cipher, describe() says which cipher runs.
        """
        if speedups.native is None:
            raise unittest.SkipTest("the C speedups are not built (no compiler?)")
        build = os.path.abspath(self.mktemp())
        env = dict(os.environ, SUDP_NO_EVP="1")
        result = subprocess.run(
            [sys.executable, "setup.py", "-q", "build_ext", "--build-lib", build, "--build-temp", build + "-tmp"],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
        )
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        script = (
            "import sys; sys.path.insert(0, sys.argv[1]); import sudp; "
            "sudp.__path__.insert(0, sys.argv[1] + '/sudp'); "
            "from sudp import speedups; "
            "assert speedups.native.__file__.startswith(sys.argv[1]), speedups.native.__file__; "
            "print(hasattr(speedups.native, 'Cipher'), speedups.nativeCipher, speedups.describe())"
        )
        check = subprocess.run([sys.executable, "-c", script, build], capture_output=True, text=True,
                               cwd=ROOT, timeout=60)
        self.assertEqual(check.returncode, 0, check.stderr[-2000:])
        self.assertIn("False None C speedups", check.stdout)
        self.assertIn("built without OpenSSL's headers", check.stdout)

MISUSE = r"""
import socket, sys
from sudp import _speedups as S
W, D, R = S.Window, S.DataPath, S.Receiver
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.setblocking(False)
DATA = [b"\x18\x01\x02\x03\x04" + bytes(40)]
cases = {
    "uninitialised Window.check": lambda: W.__new__(W).check(1),
    "uninitialised Window.commit": lambda: W.__new__(W).commit(1),
    "uninitialised Window.state": lambda: W.__new__(W).state(),
    "negative window": lambda: W(-5),
    "huge window": lambda: W(2 ** 40),
    "negative sequence": lambda: W().check(-1),
    "sequence of 2**64": lambda: W().commit(2 ** 64),
    "sequence not a number": lambda: W().commit("x"),
    "uninitialised DataPath.run": lambda: D.__new__(D).run(DATA, 0, ("h", 1), 0.0, []),
    "DataPath.run without a list": lambda: D({}, 1, 2, 3, 1452).run(None, 0, None, 0, []),
    "DataPath.run without events": lambda: D({}, 1, 2, 3, 1452).run(DATA, 0, None, 0, None),
    "DataPath over a non-session": lambda: D({0x01020304: 5}, 1, 2, 3, 1452).run(DATA, 0, ("h", 1), 0.0, []),
    "uninitialised Receiver.read": lambda: R.__new__(R).read(),
    "Receiver on a bad fd": lambda: R(-1, 4, 1452).read(),
    "Receiver of 0 buffers": lambda: R(s.fileno(), 0, 1452),
    "Receiver of huge buffers": lambda: R(s.fileno(), 10 ** 9, 10 ** 9),
    "sendBatch without arguments": lambda: S.sendBatch(),
    "sendBatch of junk": lambda: S.sendBatch(-1, None, None),
    "sendBatch to a bad address": lambda: S.sendBatch(s.fileno(), [(b"x", ("999.1.1.1", 99999))], 0),
}
window = W()
window.commit(5)
window.__init__(128)  # re-initialised: a fresh, working window
assert window.check(5) and window.highest == -1
for name, case in cases.items():
    try:
        case()
    except Exception as e:
        print(name, "->", type(e).__name__)
    else:
        print(name, "-> no error")
print("survived")
"""

class MisuseTests(unittest.TestCase):
    """
    The C extension's types cannot crash the interpreter through misuse:
    objects whose __init__ never ran, wrong argument types and sizes.
    """

    def test_misuseRaises(self):
        """
        Every misuse raises a Python exception (on the landed code the first
        one, an uninitialised Window, killed the process with SIGFPE). Run
        in a child process, so a crash fails this test instead of ending
        the test run.
        """
        if speedups.native is None:
            raise unittest.SkipTest("the C speedups are not built")
        result = subprocess.run([sys.executable, "-c", MISUSE], cwd=ROOT, capture_output=True, text=True,
                                timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        lines = result.stdout.splitlines()
        self.assertEqual(lines[-1], "survived")
        self.assertEqual([line for line in lines[:-1] if line.endswith("no error")], [])
        self.assertEqual(len(lines) - 1, 19)
