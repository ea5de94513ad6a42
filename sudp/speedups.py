# -*- test-case-name: sudp_test.test_speedups -*-
"""
The optional C speedups of the data path (C{sudp._speedups}), and the
choice between them and the pure-Python code.

sudp is complete without them: every loop they replace exists in Python
beside them (L{sudp.udp.replay.ReplayWindow}, the engine's
C{receiveDatagram}, one C{recvmsg} or C{sendto} per datagram). They are
built by C{pip install .} where a C compiler and the Python headers are at
hand, and skipped with one warning where not (setup.py). Set
C{SUDP_NO_SPEEDUPS=1} to run the pure-Python path with them installed (the
tests run both).

What they hold is loops, never cryptography: packets are still opened by
the session's own L{sudp.interfaces.IPacketCipher}.

@var native: the C module, or None.
@var batchedIO: True if C{recvmmsg}/C{sendmmsg} batching is available.
"""

import os

native = None
if not os.environ.get("SUDP_NO_SPEEDUPS"):
    try:
        from sudp import _speedups as native
    except ImportError:  # not built here: the pure-Python path
        native = None

batchedIO = native is not None and hasattr(native, "Receiver")


def describe():
    """
    @return: one line saying which data path is in use, for logs and C{--version}-like output.
    """
    if native is None:
        why = "disabled by SUDP_NO_SPEEDUPS" if os.environ.get("SUDP_NO_SPEEDUPS") else "not built"
        return f"pure-Python data path (C speedups {why})"
    return "C speedups: replay window, data path" + (", recvmmsg/sendmmsg" if batchedIO else "")
