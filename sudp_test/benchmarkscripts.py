# -*- test-case-name: sudp_test.test_climit,sudp_test.test_peerbenchmarks -*-
"""
Running benchmark code in a subprocess for the tests of benchmarks/: a
benchmark script imports run.py, which chooses the sudp it measures for
its whole process, so each case runs in its own interpreter.
"""

import json
import os
import subprocess
import sys

from twisted.trial import unittest

from sudp_test.paths import ROOT

BENCHMARKS = os.path.join(ROOT, "benchmarks")


def runBenchmarkCode(testCase, module, code, timeout, prelude=""):
    """
    Run C{code} with benchmarks/C{module}.py imported under its name, after
    C{prelude}; C{code} assigns C{result}, which comes back decoded from
    JSON. The prelude may print C{{"skip": reason}} as JSON and exit 0 to
    skip the test.
    """
    script = ("import json, sys\n"
              f"sys.path.insert(0, {BENCHMARKS!r})\n"
              f"import {module}\n"
              f"{prelude}"
              f"{code}\n"
              "print(json.dumps({'result': result}))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
    testCase.assertEqual(done.returncode, 0, done.stderr[-3000:])
    out = json.loads(done.stdout.splitlines()[-1])
    if "skip" in out:
        raise unittest.SkipTest(out["skip"])
    return out["result"]
