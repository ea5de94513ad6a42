"""
stress/flood.py end to end: junk of every kind at a sudp server in its
own process while legitimate clients are served, bounded (a few thousand
junk datagrams, 50 clients with a few messages each). The tool's own checks
must all pass and its figures must add up. No timing is asserted.
"""

import json
import os
import subprocess
import sys

from twisted.trial import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOOD = os.path.join(ROOT, "stress", "flood.py")


class FloodTests(unittest.TestCase):
    def flood(self, *args):
        """
        Run stress/flood.py --quick with C{args}.

        @return: its JSON report.
        """
        out = os.path.abspath(self.mktemp())
        result = subprocess.run(
            [sys.executable, FLOOD, "--quick", "--seed", "7", "--json", out, *args],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
        )
        self.assertEqual(result.returncode, 0, result.stdout[-4000:] + result.stderr[-4000:])
        self.assertIn("all checks passed", result.stdout)
        with open(out) as f:
            return json.load(f)

    def assertAccounted(self, report):
        """
        Every check passed, and the figures add up: every datagram sent was
        read by the server or dropped by the kernel at its socket; every
        junk datagram the server read is a drop or a COOKIE.
        """
        self.assertTrue(report["ok"])
        self.assertEqual([c for c in report["checks"] if not c["ok"]], [])
        self.assertGreaterEqual(len(report["checks"]), 15)
        f = report["flood"]
        for kind, count in f["counts"].items():  # a send the kernel refused is not counted as sent
            self.assertLessEqual(f["junkSent"].get(kind, 0), count, kind)
            self.assertGreaterEqual(f["junkSent"].get(kind, 0), count - f["junkSendErrors"], kind)
        self.assertEqual(f["junkSentTotal"], sum(f["junkSent"].values()))
        self.assertEqual(f["junkSentTotal"] + f["legitSentTotal"], f["serverRead"] + f["kernelLoss"])
        self.assertEqual(f["junkRead"] + f["legitReadTotal"], f["serverRead"])
        self.assertEqual(f["junkRead"], sum(f["junkDrops"].values()) + f["junkCookies"])
        self.assertEqual(f["cookiesSent"], f["junkCookies"] + f["legitRead"].get("HELLO", 0))
        self.assertEqual(f["junkLostToKernel"] + f["legitLostToKernel"], f["kernelLoss"])
        expected = f["expectedJunkOutcomes"]
        self.assertEqual(sum(expected.values()), f["junkSentTotal"])
        if f["junkLostToKernel"] == 0:
            self.assertEqual(f["junkDrops"], {k: v for k, v in expected.items() if k != "cookie"})
            self.assertEqual(f["junkCookies"], expected["cookie"])
        else:
            for reason, count in f["junkDrops"].items():
                self.assertLessEqual(count, expected.get(reason, 0), reason)
        # the legitimate clients
        g = f["legit"]
        self.assertEqual(g["opened"], g["clients"])
        self.assertEqual(g["echoed"], g["messages"])
        self.assertEqual(g["clients"], 50)
        self.assertEqual(g["messages"], 50 * report["messages"])
        # no state for junk
        self.assertEqual(f["after"]["sessions"], 50)
        self.assertEqual(f["after"]["pending"], 0)
        self.assertEqual(f["after"]["containers"]["byEphemeral"], 50)
        self.assertEqual(f["after"]["containers"]["limiter"], 1)
        self.assertLessEqual(f["rss"]["growth"], f["rss"]["tolerance"])
        self.assertEqual(f["junkReplies"].get("other", 0), 0)
        # the per-address rate limit
        r = report["rateLimit"]
        self.assertGreaterEqual(r["accepted"], r["handshakeBurst"])
        self.assertLess(r["accepted"], r["burst"])
        self.assertEqual(r["accepted"] + r["rateLimited"], r["burst"])
        self.assertEqual(r["otherHostsServed"], r["otherHosts"])
        self.assertEqual(r["pending"], r["accepted"])

    def test_quick(self):
        """
        --quick: a few thousand junk datagrams of every kind, predicted drop
        reason by drop reason, while 50 clients each get 3 messages echoed.
        """
        report = self.flood()
        self.assertAccounted(report)
        f = report["flood"]
        self.assertLess(f["junkSentTotal"], 5000)
        for kind in ("hellos", "forged-inits", "stale-inits", "wrong-addr-inits", "malformed-inits",
                     "random-data", "live-data", "random-bytes"):
            self.assertGreater(f["junkSent"].get(kind, 0), 0, kind)
        for reason in ("bad-cookie", "expired-cookie", "bad-field", "truncated", "oversized", "unknown-session",
                       "bad-tag", "replay", "no-key", "wrong-version", "unknown-type", "unexpected-type"):
            self.assertGreater(f["junkDrops"].get(reason, 0), 0, reason)
        self.assertGreater(f["junkCookies"], 0)
        self.assertGreater(f["legitSentDuringJunk"], 0)

    def test_kernelDrops(self):
        """
        With the server stopped for a second while 30,000 HELLOs arrive, its
        socket buffer (at most 8 MiB) overflows: the kernel drops datagrams,
        clients among them, and the clients make good their losses; the
        accounting holds against what the server read.
        """
        report = self.flood("--stall", "1", "--rate", "0", "--hellos", "30000")
        self.assertAccounted(report)
        f = report["flood"]
        self.assertGreater(f["kernelLoss"], 0)
        self.assertGreater(f["junkLostToKernel"], 0)
