# -*- test-case-name: sudp_test.test_climit -*-
"""
Tests of benchmarks/climit.py and benchmarks/creceiver.c: the C receiver
that is the floor of sudp's receive path.

Each case runs with tiny counts in a subprocess (climit.py imports run.py,
which chooses the sudp it measures for its whole process), over 127.0.0.1
only, with a timeout; the C receiver is a process that ends when its
standard input closes. No time is asserted: the figures must be positive
and every datagram received must have authenticated. Skipped where gcc or
OpenSSL's headers are missing.
"""

from twisted.trial import unittest

from sudp_test.benchmarkscripts import runBenchmarkCode

COUNT = 2000


def runClimit(testCase, code, timeout=60):
    """
    Run C{code} with benchmarks/climit.py imported as C{climit} and
    creceiver.c built; it assigns C{result}, which comes back decoded from
    JSON. Skips the test if the build tools are missing.
    """
    return runBenchmarkCode(testCase, "climit", code, timeout,
                            prelude=("try:\n"
                                     "    climit.build()\n"
                                     "except climit.MissingTools as e:\n"
                                     "    print(json.dumps({'skip': str(e)}))\n"
                                     "    sys.exit(0)\n"))


class OneWayLimitTests(unittest.TestCase):
    def test_modes(self):
        """
        Plaintext counting and both AEAD suites at 64 and 1,200 bytes: the
        C receiver gets datagrams, every datagram it received authenticated
        as a sudp DATA packet of the session (oneWayLimit raises otherwise),
        and the rates and CPU per message are positive.
        """
        result = runClimit(self, "result = {f'{m} {s}': climit.oneWayLimit(s, %d, m)"
                                 " for m in ('plain', 'chacha20-poly1305', 'aes-256-gcm')"
                                 " for s in (64, 1200)}" % COUNT)
        self.assertEqual(len(result), 6)
        for name, (rate, n, cpu, sendRate, received) in result.items():
            # loopback with a 4 MiB buffer: little or no loss
            self.assertGreater(received, COUNT // 2, name)
            self.assertLessEqual(received, COUNT, name)
            self.assertEqual(n, received, name)
            self.assertGreater(rate, 0, name)
            self.assertGreater(cpu, 0, name)
            self.assertGreater(sendRate, 0, name)

    def test_wrongKey(self):
        """
        Keyed with another key, the C receiver receives the datagrams and
        authenticates none of them: the decrypt is real.
        """
        result = runClimit(self, "result = [climit.oneWayLimit(64, %d, m, key=bytes(32))"
                                 " for m in ('chacha20-poly1305', 'aes-256-gcm')]" % COUNT)
        for rate, n, cpu, sendRate, received in result:
            self.assertGreater(received, 0)
            self.assertEqual((n, rate), (0, 0.0))


class CReceiverTests(unittest.TestCase):
    def test_controlProtocol(self):
        """
        creceiver speaks servers.py's control protocol: "reset" answers {},
        "stats" the counters, the CPU seconds and the RSS, with null times
        before any datagram; a key that is not 64 hex digits is refused.
        """
        result = runClimit(self, "\n".join([
            "import subprocess",
            "with climit.CReceiver('aes-256-gcm', bytes(32)) as r:",
            "    result = [r.command('reset'), r.stats(), r.addr[0]]",
            "bad = subprocess.run([climit.BINARY, 'aes-256-gcm', 'abc'],",
            "                     capture_output=True, text=True)",
            "result.append([bad.returncode, bad.stderr])",
        ]))
        reset, stats, host, (code, stderr) = result
        self.assertEqual(reset, {})
        self.assertEqual(host, "127.0.0.1")
        self.assertEqual((stats["datagrams"], stats["messages"], stats["first"], stats["last"]),
                         (0, 0, None, None))
        self.assertGreaterEqual(stats["cpu"], 0)
        self.assertGreater(stats["rss"], 0)
        self.assertEqual(code, 2)
        self.assertIn("64 hex digits", stderr)
