# -*- test-case-name: sudp_test.test_asan -*-
"""
The memory-safety check of the C speedups, C{.ci/asan}: it builds
sudp/_speedups.c under AddressSanitizer and UndefinedBehaviorSanitizer in a
copy of the checkout and runs tests against that build; a small set of
tests passes there, and an out-of-bounds read in the module's code is
reported and fails the run.
"""

import os
import shutil
import subprocess
import sys

from twisted.trial import unittest

from sudp import speedups
from sudp_test.paths import ROOT

SCRIPT = os.path.join(ROOT, ".ci", "asan")

BUILT = "asan: built with -fsanitize=address,undefined: "

# A test module run by the script in the second test. The C code is
# correct; the fault is planted in its input: a 2-byte bytes object whose
# length field is changed to 13 (a whole DATA header), so DataPath.run
# reads the header past the end of the object's allocation, as it would if
# its own bounds check were wrong.
PLANTED = '''\
import ctypes

from twisted.trial import unittest

class PlantedOverreadTests(unittest.TestCase):
    def test_overread(self):
        from sudp import _speedups
        data = bytes([0x18, 0])
        # ob_size comes after ob_refcnt and ob_type
        ctypes.c_ssize_t.from_address(id(data) + 2 * ctypes.sizeof(ctypes.c_void_p)).value = 13
        _speedups.DataPath({}, 1, 2, 3, 1452).run([data], 0, ("127.0.0.1", 1), 0.0, [])
'''

def gccLibrary(name):
    """
    @return: the path of gcc's C{name} (libasan.so), or None if gcc is
        not there or has no such library.
    """
    try:
        path = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except OSError:
        return None
    return path if os.path.isabs(path) and os.path.exists(path) else None

def whyNot():
    """
    @return: why C{.ci/asan} cannot run here, or None if it can.
    """
    if not os.path.exists(SCRIPT) or not os.path.exists(os.path.join(ROOT, ".git")) or not shutil.which("git"):
        return "not a git checkout with .ci/asan (it copies the files git tracks)"
    if speedups.native is None:
        return "the C speedups cannot be built here (no C compiler or no Python headers?)"
    if not hasattr(speedups.native, "Cipher"):
        return "the C speedups are built without the native cipher (no OpenSSL headers)"
    if shutil.which("gcc") is None or shutil.which("nm") is None:
        return "gcc or nm is not on PATH"
    for name in ("libasan.so", "libubsan.so"):
        if gccLibrary(name) is None:
            return f"gcc has no {name} (Debian: apt install libasan8 libubsan1)"
    return None

def runScript(*arguments):
    """
    Run C{.ci/asan} with C{arguments}, from a clean environment (no
    sanitizer settings inherited) and with this interpreter.

    @return: the finished process; its C{stdout} holds both streams.
    """
    env = {key: value for key, value in os.environ.items()
           if key not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "PYTHONMALLOC", "SUDP_ASAN_KEEP")}
    env["PYTHON"] = sys.executable
    return subprocess.run([SCRIPT, *arguments], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=180)

class AsanTests(unittest.TestCase):
    """
    C{.ci/asan} runs tests against an instrumented build, and a memory error
    in the module's code fails it.
    """

    def setUp(self):
        reason = whyNot()
        if reason is not None:
            raise unittest.SkipTest(reason)

    def test_instrumentedBuildPasses(self):
        """
        The replay window's tests and the native cipher's pass against the
        build under both sanitizers, which is a module in the temporary
        copy, not the checkout's; the run ends with trial's result line.
        """
        result = runScript("sudp_test.udp.test_replay", "sudp_test.test_speedups.NativeCipherTests")
        output = result.stdout
        self.assertEqual(result.returncode, 0, output[-3000:])
        built = [line[len(BUILT):] for line in output.splitlines() if line.startswith(BUILT)]
        self.assertEqual(len(built), 1, output[-3000:])
        path = built[0].rsplit(" (", 1)[0]
        self.assertTrue(path.endswith(".so"), path)
        self.assertIn("_speedups", os.path.basename(path))
        self.assertFalse(path.startswith(ROOT + os.sep), path)
        for test in ("NativeReplayWindowTests", "test_sealsAsCryptography ...", "test_badArguments ..."):
            self.assertIn(test, output)
        self.assertNotIn("[SKIPPED]", output)
        self.assertTrue(output.rstrip().splitlines()[-1].startswith("PASSED ("), output[-3000:])

    def test_overreadIsCaught(self):
        """
        A read past the end of a Python buffer by the module's own code
        (DataPath.run reading a DATA header from a bytes object whose length
        field is made larger than its allocation) is reported as a
        heap-buffer-overflow at its line of sudp/_speedups.c, and the script
        fails. Without PYTHONMALLOC=malloc the same read lands inside one of
        Python's memory pools and goes unseen, so this also shows that
        setting takes effect.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        planted = os.path.join(directory, "test_plantedoverread.py")
        with open(planted, "w") as f:
            f.write(PLANTED)
        result = runScript(planted)
        output = result.stdout
        self.assertNotEqual(result.returncode, 0, output[-3000:])
        self.assertIn(BUILT, output)
        self.assertIn("ERROR: AddressSanitizer: heap-buffer-overflow", output)
        self.assertIn("READ of size", output)
        self.assertIn("in DataPath_run sudp/_speedups.c:", output)
        self.assertIn("sanitizer report(s)", output.rstrip().splitlines()[-1])
