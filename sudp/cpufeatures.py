# -*- test-case-name: sudp_test.test_cpufeatures -*-
"""
Whether this CPU has AES instructions, which decides the default order of
the cipher suites (L{sudp.suites.defaultSuites}), as TLS stacks decide
theirs: AES-256-GCM first where the hardware runs it in constant time and
fast, ChaCha20-Poly1305 first where it does not.

On Linux the answer is the kernel's (C{/proc/cpuinfo}: the C{aes} flag on
x86, the C{aes} feature on ARM). Elsewhere it is assumed from the machine
type: x86-64 and 64-bit ARM processors made in the last decade have them.
"""

import functools
import platform

CPUINFO = "/proc/cpuinfo"
_ASSUMED = {"x86_64", "amd64", "arm64", "aarch64"}


def _fromCpuinfo(text):
    """
    @return: True or False from the first C{flags} or C{Features} line of
        a C{/proc/cpuinfo} text, or None if it has neither.
    """
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return "aes" in value.split()
    return None


@functools.lru_cache(maxsize=None)
def hasAESInstructions(cpuinfo=CPUINFO, machine=None):
    """
    @param cpuinfo: where the kernel describes the CPU.
    @param machine: the machine type (C{platform.machine()} by default).
    @return: True if the CPU has AES instructions (or is assumed to).
    """
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            found = _fromCpuinfo(f.read())
    except OSError:
        found = None
    if found is not None:
        return found
    return (machine or platform.machine()).lower() in _ASSUMED
