# -*- test-case-name: sudp_test.test_cpufeatures -*-
"""
Tests for L{sudp.cpufeatures}.
"""

import os

from twisted.trial import unittest

from sudp import cpufeatures

X86 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu vme sse2 aes avx2\n"
X86_NO_AES = "processor\t: 0\nflags\t\t: fpu vme sse2 avx2\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\n"
ARM_NO_AES = "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32\n"


class AESTests(unittest.SynchronousTestCase):
    def cpuinfo(self, text):
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_fromCpuinfo(self):
        """
        The kernel's word decides: the aes flag (x86) or feature (ARM).
        """
        for text, expected in ((X86, True), (X86_NO_AES, False), (ARM, True), (ARM_NO_AES, False)):
            self.assertIs(cpufeatures.hasAESInstructions(self.cpuinfo(text), "x86_64"), expected, text)

    def test_assumedFromMachine(self):
        """
        No /proc/cpuinfo (or no flags in it): x86-64 and 64-bit ARM are
        assumed to have them, others not.
        """
        missing = os.path.abspath(self.mktemp())
        for machine, expected in (("x86_64", True), ("AMD64", True), ("arm64", True), ("aarch64", True),
                                  ("armv7l", False), ("riscv64", False), ("i686", False)):
            self.assertIs(cpufeatures.hasAESInstructions(missing, machine), expected, machine)
        self.assertIs(cpufeatures.hasAESInstructions(self.cpuinfo("processor : 0\n"), "riscv64"), False)

    def test_thisMachine(self):
        if not os.path.exists(cpufeatures.CPUINFO):
            raise unittest.SkipTest("no /proc/cpuinfo")
        with open(cpufeatures.CPUINFO) as f:
            flags = [line for line in f if line.startswith(("flags", "Features"))][:1]
        if flags:
            self.assertIs(cpufeatures.hasAESInstructions(), "aes" in flags[0].split())
