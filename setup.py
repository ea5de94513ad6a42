"""
Builds the optional C speedups (sudp/_speedups.c). Everything else about the
package is in pyproject.toml.

If they cannot be built (no C compiler, or no Python headers) the install
still succeeds, sudp runs its pure-Python data path (sudp/speedups.py), and
the build prints one warning that says so and how to get the fast path.
pip shows a successful build's output only with -v, so where pip has taken
the build's output and a terminal is at hand, the warning is written to that
terminal instead: a plain C{pip install} shows it.
"""

import os
import re
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import BaseError, CCompilerError, CompileError

SPEEDUPS = Extension("sudp._speedups", ["sudp/_speedups.c"], optional=True, extra_compile_args=["-O2"])

# what setuptools itself forgives an optional extension (BaseError is DistutilsError)
BUILD_ERRORS = (CCompilerError, CompileError, BaseError)

NO_SPEEDUPS_WARNING = """\

WARNING: txsudp's optional C speedups were not built ({reason}).
  txsudp works without them, on its slower pure-Python data path.
  For the fast path, install a C compiler and the Python headers
  (Debian/Ubuntu: apt install build-essential python3-dev;
  Fedora: dnf install gcc python3-devel; Alpine: apk add build-base python3-dev;
  macOS: xcode-select --install), then reinstall without pip's cache:
  pip install --force-reinstall --no-deps --no-cache-dir txsudp   (in a checkout: pip install .)
"""


NO_EVP_WARNING = """\

WARNING: txsudp's C speedups were built without the native cipher ({reason}).
  The built-in suites then seal and open through the cryptography package
  (about 1 microsecond more per packet). For the native cipher, install
  OpenSSL 3's headers (Debian/Ubuntu: apt install libssl-dev; Fedora: dnf
  install openssl-devel; macOS: brew install openssl@3 and set CFLAGS and
  LDFLAGS), then reinstall as above.
"""

# the native cipher: OpenSSL's EVP interface, linked to the system's libcrypto
EVP_MACROS = [("SUDP_EVP", "1")]
EVP_LIBRARIES = ["crypto"]


def failureReason(compiler, error):
    """
    @param compiler: the C compiler's command, or None if unknown.
    @param error: what the build raised.
    @return: why the build failed, in one short line (the compiler's own
        messages are in the build output before the warning).
    """
    text = " ".join(str(error).split())
    name = compiler or "the C compiler"
    status = re.search(r"exit (?:status|code) (-?\d+)", text)
    if status:
        return f"{name} failed with exit status {status.group(1)}"
    if "No such file or directory" in text or "not found" in text:
        return f"{name} was not found"
    return text or f"{name} failed"


def speedupsWarning(reason):
    """
    @param reason: why the build failed, one line (L{failureReason}).
    @return: the warning printed when the C speedups could not be built.
    """
    return NO_SPEEDUPS_WARNING.format(reason=reason)


def showWarning(text, stream=None):
    """
    Show C{text} once to the person running the build: on C{stream}
    (standard error) if that is a terminal; else, since pip has taken the
    build's output and shows it only with -v, on the process's controlling
    terminal; and on C{stream} if there is none (CI, where the log of
    C{pip install -v} has it).
    """
    stream = sys.stderr if stream is None else stream
    if not stream.isatty():
        try:
            with open("/dev/tty", "w") as tty:
                tty.write(text)
            return
        except OSError:  # no controlling terminal
            pass
    stream.write(text)
    stream.flush()


class OptionalBuildExt(build_ext):
    """
    build_ext for optional extensions: where one cannot be built, print
    L{speedupsWarning} once instead of setuptools' one-line log message, and
    go on without it.
    """

    def build_extension(self, ext):
        """
        Build C{ext}, with the native cipher where OpenSSL's headers and
        library are there (unless C{SUDP_NO_EVP=1}); if that fails, without
        it; if the build fails, for an optional one, warn and go on.
        """
        if ext.name == SPEEDUPS.name and os.environ.get("SUDP_NO_EVP") != "1":
            ext.define_macros += EVP_MACROS
            ext.libraries += EVP_LIBRARIES
            try:
                build_ext.build_extension(self, ext)
                return
            except BUILD_ERRORS as e:
                evpError = e
            finally:
                ext.define_macros = [m for m in ext.define_macros if m not in EVP_MACROS]
                ext.libraries = [name for name in ext.libraries if name not in EVP_LIBRARIES]
            if self._build(ext):
                showWarning(NO_EVP_WARNING.format(reason=failureReason(self._compilerName(), evpError)))
            return
        self._build(ext)

    def _compilerName(self):
        return (getattr(self.compiler, "compiler_so", None) or [None])[0]

    def _build(self, ext):
        """
        @return: True if C{ext} was built.
        """
        try:
            build_ext.build_extension(self, ext)
        except BUILD_ERRORS as e:
            if not ext.optional:
                raise
            showWarning(speedupsWarning(failureReason(self._compilerName(), e)))
            return False
        return True


setup(ext_modules=[SPEEDUPS], cmdclass={"build_ext": OptionalBuildExt})
