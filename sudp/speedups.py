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

What they hold is loops, and, where they were built with OpenSSL's
headers, the native packet cipher of the two built-in AEAD suites
(C{Cipher}: OpenSSL's EVP interface, called from C, no cryptography of its
own). Set C{SUDP_NO_NATIVE_CIPHER=1} to keep the loops but seal and open
through the C{cryptography} package. Plug-in suites always use their own
L{sudp.interfaces.IPacketCipher}.

@var native: the C module, or None.
@var batchedIO: True if C{recvmmsg}/C{sendmmsg} batching is available.
@var nativeCipher: the C{Cipher} type, or None.
"""

import os

native = None
if not os.environ.get("SUDP_NO_SPEEDUPS"):
    try:
        from sudp import _speedups as native
    except ImportError:  # not built here: the pure-Python path
        native = None

batchedIO = native is not None and hasattr(native, "Receiver")


def _nativeCipher():
    """
    @return: the C module's C{Cipher}, declared an
        L{sudp.interfaces.IPacketCipher} and raising
        L{sudp.errors.MalformedPacket}, or None where it was not built or
        C{SUDP_NO_NATIVE_CIPHER} is set.
    """
    if native is None or not hasattr(native, "Cipher") or os.environ.get("SUDP_NO_NATIVE_CIPHER"):
        return None
    from zope.interface import classImplements

    from sudp.errors import MalformedPacket
    from sudp.interfaces import IPacketCipher

    native.setMalformedPacket(MalformedPacket)
    classImplements(native.Cipher, IPacketCipher)
    return native.Cipher


nativeCipher = _nativeCipher()


def describe():
    """
    @return: one line saying which data path is in use, for logs and C{--version}-like output.
    """
    if native is None:
        why = "disabled by SUDP_NO_SPEEDUPS" if os.environ.get("SUDP_NO_SPEEDUPS") else "not built"
        return f"pure-Python data path (C speedups {why})"
    line = "C speedups: replay window, data path" + (", recvmmsg/sendmmsg" if batchedIO else "")
    if nativeCipher is not None:
        return line + f", native cipher ({native.OPENSSL_VERSION})"
    if hasattr(native, "Cipher"):
        return line + "; the cryptography package's cipher (SUDP_NO_NATIVE_CIPHER)"
    return line + "; the cryptography package's cipher (built without OpenSSL's headers)"
