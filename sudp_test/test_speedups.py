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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
        modules = ["sudp_test.test_udp_engine", "sudp_test.test_udp_badinput", "sudp_test.test_udp_integration",
                   "sudp_test.test_batching", "sudp_test.test_datapath"]
        result = subprocess.run(
            [sys.executable, "-m", "twisted.trial", "--temp-directory", os.path.abspath(self.mktemp())] + modules,
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
        )
        tail = result.stdout[-2000:]
        self.assertEqual(result.returncode, 0, tail)
        self.assertIn("PASSED", tail)
