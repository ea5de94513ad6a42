# -*- test-case-name: sudp_test.test_speedups -*-
"""
The optional C speedups: which path is in use, and the pure-Python path
still passing the engine and integration tests with them switched off.
"""

import os
import subprocess
import sys

from twisted.trial import unittest

from sudp import speedups
from sudp.udp import replay, session

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
