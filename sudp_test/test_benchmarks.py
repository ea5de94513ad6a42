# -*- test-case-name: sudp_test.test_benchmarks -*-
"""
Tests of benchmarks.

A smoke run of the benchmark suite with tiny counts, so it cannot rot.
No figure is asserted: timing belongs to benchmarks/, not to tests.
"""

import json
import os
import re
import shutil
import subprocess
import sys

from twisted.python import log
from twisted.trial import unittest

from sudp_test.paths import ROOT

class BenchmarkSmokeTests(unittest.TestCase):
    def test_quickRun(self):
        """
        benchmarks/run.py --quick runs every case end to end and writes a JSON
        file in which every figure has a value, and every compared figure a
        baseline from the same run and a ratio.
        """
        out = os.path.abspath(self.mktemp())
        result = subprocess.run(
            [sys.executable, os.path.join(ROOT, "benchmarks", "run.py"), "--quick", "--json", out],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
        )
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        with open(out) as f:
            report = json.load(f)
        figures = report["figures"]
        self.assertTrue(report["quick"])
        for prefix in ("one-way 64 B", "one-way 1200 B", "echo 64 B", "echo 1200 B", "latency p50",
                       "latency p99", "handshakes per second", "server CPU per handshake",
                       "cookie replies", "memory per session", "overhead per datagram",
                       "sframe aes-256-ctr-sha256 bulk"):
            self.assertTrue([k for k in figures if k.startswith(prefix)], prefix)
        for name, f in figures.items():
            self.assertGreater(f["value"], 0, name)
            if "baseline" in f:
                self.assertGreater(f["baseline"], 0, name)
                self.assertAlmostEqual(f["ratio"], f["value"] / f["baseline"], places=6)
        self.assertEqual(figures["overhead per datagram, chacha20-poly1305"]["value"], 29)
        self.assertIn("figure", result.stdout)
        # what was measured, and on what
        self.assertIn("measuring sudp from", result.stdout)
        self.assertIn(report["data path"]["data path"], result.stdout)
        for key in ("cpu", "aes instructions", "kernel", "python", "twisted", "cryptography",
                    "openssl (cryptography)"):
            self.assertIsNotNone(report["machine"][key], key)
        if report["data path"]["native cipher"]:
            self.assertIsNotNone(report["machine"]["openssl (native cipher)"])

class EnvironmentTests(unittest.TestCase):
    """
    benchmarks/run.py measures the sudp it says, and refuses one that lacks
    the speedups built elsewhere.
    """

    def test_missingSpeedupsRefused(self):
        """
        A sudp without the compiled module while one is built (a checkout's
        sudp/ shadowing an installed one, as a newcomer met it) is refused
        with what to do, before anything is measured.
        """
        from sudp import speedups

        if speedups.native is None:
            raise unittest.SkipTest("no built speedups here to be shadowed")
        home = os.path.abspath(self.mktemp())
        shutil.copytree(os.path.join(ROOT, "sudp"), os.path.join(home, "sudp"),
                        ignore=shutil.ignore_patterns("*.so", "__pycache__"))
        env = dict(os.environ, SUDP_BENCH_HOME=home)
        env.pop("SUDP_NO_SPEEDUPS", None)
        result = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "run.py"), "--quick", "--json",
                                 os.path.abspath(self.mktemp())], cwd=ROOT, capture_output=True, text=True,
                                env=env, timeout=120)
        self.assertEqual(result.returncode, 1)
        self.assertIn("has no compiled C speedups, but", result.stderr)
        self.assertIn(home, result.stderr)
        self.assertNotIn("figure", result.stdout)

    def test_staleBuildRefused(self):
        """
        A compiled module older than sudp/_speedups.c is refused; a fresh one
        is chosen and put first on the path.
        """
        sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
        self.addCleanup(sys.path.remove, os.path.join(ROOT, "benchmarks"))
        from environment import StaleBuild, chooseSudp

        root = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(root, "sudp"))
        built = os.path.join(root, "sudp", "_speedups.cpython-311-x86_64-linux-gnu.so")
        source = os.path.join(root, "sudp", "_speedups.c")
        for name in (built, source):
            with open(name, "w"):
                pass
        os.utime(built, (1000, 1000))
        environ, path = {}, []
        e = self.assertRaises(StaleBuild, chooseSudp, root, environ, path)
        self.assertIn("older than sudp/_speedups.c", str(e))
        self.assertEqual(path, [])
        os.utime(built, None)
        os.utime(source, (1000, 1000))
        self.assertEqual(chooseSudp(root, environ, path), root)
        self.assertEqual((environ, path), ({"SUDP_BENCH_HOME": root}, [root]))

    def test_microbenchmarks(self):
        """
        The per-packet, per-suite and vpn041 microbenchmarks run with tiny counts.
        """
        tiny = ["--packets", "200", "--repeats", "1"]
        for script, needle in (("bench_datapath.py", "raw"), ("bench_suites.py", "raw"),
                               ("bench_vpn041.py", "vpn041 aes-256-cbc")):
            result = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script)] + tiny,
                                    cwd=ROOT, capture_output=True, text=True, timeout=120)
            self.assertEqual(result.returncode, 0, result.stderr[-3000:])
            self.assertIn(needle, result.stdout)

_REACH = re.compile(r"\.(outbox|events)\b")


def reachesIntoEngine(line):
    """
    @return: whether a line of a driver reads or writes an engine's output
        lists (C{.outbox}, C{.events}); importing C{sudp.udp.events} does not.
    """
    return _REACH.search(line) is not None and "sudp.udp.events" not in line


class EngineContractTests(unittest.TestCase):
    """
    Benchmarks and stress tools drive the engines through the engine
    contract only (L{sudp.engine}): they never reach into an engine's
    output lists.
    """

    def test_noDriverReachesIn(self):
        offenders = []
        for folder in ("benchmarks", "stress"):
            path = os.path.join(ROOT, folder)
            if not os.path.isdir(path):
                continue
            for name in sorted(os.listdir(path)):
                if name.endswith(".py"):
                    with open(os.path.join(path, name)) as f:
                        for number, line in enumerate(f, 1):
                            if reachesIntoEngine(line):
                                offenders.append(f"{folder}/{name}:{number}: {line.strip()}")
        self.assertEqual(offenders, [])

    def test_patternCatchesAReach(self):
        """
        The check above is not vacuous: it sees the idioms it forbids.
        """
        for line in ("for d, _ in client.outbox:", "server.events.clear()", "x = engine.events"):
            self.assertTrue(reachesIntoEngine(line), line)
        for line in ("from sudp.udp.events import SessionOpened", "for e in engine.nextEvents():"):
            self.assertFalse(reachesIntoEngine(line), line)


class CostFigureTests(unittest.TestCase):
    def test_benchmarkSmoke(self):
        """
        benchmarks/bench_gossip6.py runs with tiny settings in a subprocess:
        it prints its table and writes figures in which the server's
        operations per attempt are what the order of the checks promises
        (nothing for junk, cookies and cheap rules; one scrypt for a weak
        proof; one scrypt and one verify for a bad signature; for an
        accepted handshake, its own proof and one sign besides). The table
        goes to the test log; no time is asserted.
        """
        out = os.path.abspath(self.mktemp())
        result = subprocess.run(
            [sys.executable, os.path.join(ROOT, "benchmarks", "bench_gossip6.py"), "--difficulty", "1",
             "--scrypt-n", "16", "--repeats", "1", "--bits", "2048", "--json", out],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        log.msg("gossip6 cost figures (tiny settings):\n" + result.stdout)
        self.assertIn("attacker, one valid message", result.stdout)
        with open(out) as f:
            figures = json.load(f)
        server = figures["server"]
        ops = {name: (r["scrypt"], r["verify"], r["sign"]) for name, r in server.items()}
        for name in ("bad-cookie", "stale-timestamp", "wrong-address", "untrusted-key"):
            self.assertEqual(ops[name], (0, 0, 0), name)
        self.assertEqual(ops["weak-proof"], (1, 0, 0))
        self.assertEqual(ops["bad-signature"], (1, 1, 0))
        self.assertEqual(ops["accepted"][1:], (1, 1))
        self.assertGreaterEqual(ops["accepted"][0], 2)
        for name, r in server.items():
            self.assertGreater(r["seconds"], 0, name)
        self.assertEqual(figures["attacker"]["expectedEvaluations"], 2)
        self.assertGreaterEqual(figures["attacker"]["meanEvaluations"], 1)


class ReadmeTests(unittest.TestCase):
    """
    benchmarks/README.md and stress/README.md each list every script of
    their folder, one table row each.
    """

    def test_everyScriptListed(self):
        """
        The scripts named in the first column of each README's tables are
        exactly the folder's C{*.py} files.
        """
        for folder in ("benchmarks", "stress"):
            path = os.path.join(ROOT, folder)
            scripts = sorted(n for n in os.listdir(path) if n.endswith(".py"))
            with open(os.path.join(path, "README.md")) as f:
                listed = sorted(set(re.findall(r"^\| `([\w.]+\.py)` \|", f.read(), re.M)))
            self.assertEqual(listed, scripts, folder)
