# -*- test-case-name: sudp_test.test_peerbenchmarks -*-
"""
Tests of benchmarks/peers.py and benchmarks/peerservers.py: the peers sudp
is compared with (aioquic, asyncio and uvloop UDP, Twisted TLS).

Each family's cases run with tiny counts in a subprocess (peers.py imports
run.py, which chooses the sudp it measures for its whole process), over
127.0.0.1 only, with a timeout; the servers are processes that end when
their standard input closes. No time is asserted: the figures must be
positive and the server must have received what was sent. The aioquic and
uvloop cases are skipped where the `bench` extra is not installed.
"""

import importlib.util
import json
import os
import subprocess
import sys

from twisted.trial import unittest

from sudp_test.benchmarkscripts import BENCHMARKS, runBenchmarkCode



def need(*modules):
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise unittest.SkipTest(f"{', '.join(missing)} not installed (the bench extra: pip install .[bench])")


def runPeers(testCase, code, timeout=90):
    """
    Run C{code} with benchmarks/peers.py imported as C{peers}; it assigns
    C{result}, which comes back decoded from JSON.
    """
    return runBenchmarkCode(testCase, "peers", code, timeout)


class PlainUDPTests(unittest.TestCase):
    def test_asyncioAndUvloop(self):
        """
        Plaintext UDP on asyncio's default loop and on uvloop: run.py's
        sender delivers every datagram of a small one-way run (loopback,
        4 MiB receive buffer) and the echo case completes round trips.
        """
        need("uvloop")
        result = runPeers(self, "result = {m: [peers.oneWayRate(m + '-count', 64, 300),"
                                " peers.echo(m + '-echo', 64, 4, 0.2)[0]] for m in ('asyncio-udp', 'uvloop-udp')}")
        for mode, ((rate, n, cpu, sendRate), echoRate) in result.items():
            self.assertEqual(n, 300, mode)
            for value in (rate, cpu, sendRate, echoRate):
                self.assertGreater(value, 0, mode)


class QuicTests(unittest.TestCase):
    def test_aioquic(self):
        """
        aioquic: every pre-built DATAGRAM packet of a small one-way run is
        delivered (also with the server on uvloop), echo completes round
        trips, a 1 MiB stream arrives whole, and 20 handshakes complete
        with the server's CPU per handshake measured.
        """
        need("aioquic", "uvloop")
        result = runPeers(self, "result = {'one-way': peers.oneWayRate('quic-count', 64, 200),"
                                " 'uvloop': peers.oneWayRate('quic-count:uvloop', 1200, 100),"
                                " 'echo': peers.echo('quic-echo', 64, 4, 0.2)[0],"
                                " 'stream': peers.streamRate(1),"
                                " 'handshakes': peers.handshakeRate(20),"
                                " 'engine': peers.serverCpuPerHandshake(3)}")
        rate, n, cpu, sendRate = result["one-way"]
        self.assertEqual(n, 200)
        self.assertEqual(result["uvloop"][1], 100)
        for value in (rate, cpu, sendRate, result["uvloop"][0], result["echo"], result["engine"]):
            self.assertGreater(value, 0)
        mbps, delivered, cpuPerMiB, side = result["stream"]
        self.assertEqual(delivered, 1 << 20)
        self.assertGreater(mbps, 0)
        self.assertIn(side, ("sender", "receiver"))
        self.assertGreater(result["handshakes"][0], 0)
        self.assertGreater(result["handshakes"][1], 0)


class TLSTests(unittest.TestCase):
    def test_twistedTLS(self):
        """
        Twisted TLS over TCP: every 64-byte record of a one-way run is
        counted, echo completes round trips, and a 1 MiB bulk transfer of
        64 KiB records arrives whole.
        """
        result = runPeers(self, "result = {'one-way': peers.oneWayRate('tls-count', 64, 500),"
                                " 'echo': peers.echo('tls-echo', 64, 4, 0.2)[0],"
                                " 'bulk': peers.streamRate(1, 'tls-count')}")
        rate, n, cpu, sendRate = result["one-way"]
        self.assertEqual(n, 500)
        for value in (rate, cpu, sendRate, result["echo"], result["bulk"][0]):
            self.assertGreater(value, 0)
        self.assertEqual(result["bulk"][1], 1 << 20)


class ControlProtocolTests(unittest.TestCase):
    def test_servesAndExits(self):
        """
        A peer server speaks servers.py's control protocol (its first line
        names its port, peer and certificate; "reset" and "stats" are
        answered) and, when its standard input closes, exits and removes
        the certificate it made.
        """
        proc = subprocess.Popen([sys.executable, os.path.join(BENCHMARKS, "peerservers.py"), "tls-echo"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(proc.stdout.close)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        info = json.loads(proc.stdout.readline())
        self.assertGreater(info["port"], 0)
        self.assertIn("Twisted", info["peer"])
        self.assertTrue(os.path.exists(info["cert"]))
        proc.stdin.write("reset\nstats\n")
        proc.stdin.flush()
        self.assertEqual(json.loads(proc.stdout.readline()), {})
        stats = json.loads(proc.stdout.readline())
        for key in ("datagrams", "messages", "first", "last", "cpu", "rss"):
            self.assertIn(key, stats)
        proc.stdin.close()
        self.assertEqual(proc.wait(20), 0)
        self.assertFalse(os.path.exists(info["cert"]))

    def test_unknownMode(self):
        """
        An unknown mode is refused with the list of modes.
        """
        done = subprocess.run([sys.executable, os.path.join(BENCHMARKS, "peerservers.py"), "sctp-count"],
                              capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("quic-count", done.stderr)
