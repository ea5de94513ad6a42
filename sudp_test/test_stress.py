# -*- test-case-name: sudp_test.test_stress -*-
"""
Tests of stress.

stress/flood.py end to end: junk of every kind at a sudp server in its
own process while legitimate clients are served, bounded (a few thousand
junk datagrams, 50 clients with a few messages each). The tool's own checks
must all pass and its figures must add up. No timing is asserted.

The stress tools in stress/ run end to end in their C{--quick} form.
"""

import json
import os
import subprocess
import sys

from twisted.trial import unittest

from sudp_test.paths import ROOT

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

class MutationRunTests(unittest.TestCase):
    """
    C{stress/mutate.py --quick} end to end, in a subprocess.
    """

    def runQuick(self, env=None):
        """
        Run the script with C{--quick} and return its JSON report, after
        checking the exit status and every field a report must have.
        """
        out = os.path.abspath(self.mktemp())
        result = subprocess.run(
            [sys.executable, os.path.join(ROOT, "stress", "mutate.py"), "--quick", "--seed", "7",
             "--json", out],
            cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ, **(env or {})),
        )
        self.assertEqual(result.returncode, 0, result.stdout[-3000:] + result.stderr[-3000:])
        self.assertIn("PASS", result.stdout)
        with open(out) as f:
            report = json.load(f)
        self.assertTrue(report["ok"])
        self.assertTrue(report["quick"])
        self.assertEqual(report["seed"], 7)
        self.assertEqual(report["count"], 20_000)
        self.assertGreaterEqual(report["fed"], 20_000)
        self.assertEqual(report["fed"], report["batched"] + report["single"])
        self.assertGreater(report["batched"], 0)
        self.assertGreater(report["single"], 0)
        self.assertEqual(report["exceptions"], 0)
        self.assertEqual(report["exceptionSamples"], [])
        g = report["genuine"]
        self.assertGreater(g["clientToServerSent"], 0)
        self.assertEqual(g["clientToServerDelivered"], g["clientToServerSent"])
        self.assertGreater(g["serverToClientSent"], 0)
        self.assertEqual(g["serverToClientDelivered"], g["serverToClientSent"])
        self.assertEqual(g["helperMessagesDelivered"], g["helperMessagesSent"])
        session = report["session"]
        self.assertEqual((session["serverState"], session["clientState"], session["ended"]), ("open", "open", []))
        self.assertGreaterEqual(session["serverRekeys"], 1)
        for kind in ("HELLO", "COOKIE", "INIT", "RESP", "CONFIRM", "DATA", "KEEPALIVE", "REKEY_REQUEST",
                     "REKEY_RESPONSE"):
            self.assertGreater(report["captured"].get(kind, 0), 0, kind)
        for kind in ("flip", "substitute", "truncate", "extend", "splice", "rewrite", "replay", "random"):
            self.assertGreater(report["mutations"].get(kind, 0), 0, kind)
        self.assertGreater(sum(report["drops"].values()), 0)
        self.assertGreaterEqual(report["keepalives"].get("client", 0), 1)
        self.assertGreaterEqual(report["keepalives"].get("server", 0), 1)
        for reason in ("bad-tag", "replay", "unknown-session", "truncated", "bad-cookie", "rate-limited"):
            self.assertIn(reason, report["drops"])
        for key in ("tracedStart", "tracedMid", "tracedEnd", "tracedGrowth", "rssStart", "rssEnd"):
            self.assertIn(key, report["memory"])
        for key in ("sessions", "byEphemeral", "timers", "rateLimiter", "cookieSecrets", "cipherCache"):
            for when in ("start", "end", "max"):
                self.assertIn(key, report["containers"][when])
        for key in ("seconds", "datagramsPerSecond", "engineDatagramsPerSecond"):
            self.assertIsInstance(report[key], float)
        self.assertEqual(sorted(report["checks"]), sorted([
            "no-exceptions", "genuine-delivered-exactly-once", "session-undisturbed", "no-forged-effect",
            "no-amplification", "drop-reasons-documented", "helpers-ok", "exercised", "containers-bounded",
            "memory-flat"]))
        for name, check in report["checks"].items():
            self.assertTrue(check["ok"], (name, check))
        return report

    def test_quickRun(self):
        """
        stress/mutate.py --quick (20,000 mutated datagrams fed to a
        server engine, through the C data path where it is built, while a
        real session runs) exits 0, and its JSON report says: no exception,
        every genuine message delivered exactly once, the session open at
        both ends, every check passed, drops counted by reason, memory and
        container figures present. No speed is asserted.
        """
        self.runQuick()

    def test_quickRunPurePython(self):
        """
        The same with the C speedups disabled (SUDP_NO_SPEEDUPS=1): the
        pure-Python receive path passes the same checks.
        """
        report = self.runQuick({"SUDP_NO_SPEEDUPS": "1"})
        self.assertFalse(report["speedups"])
