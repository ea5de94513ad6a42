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
        Build C{ext}; if it is optional and its build fails, warn and go on.
        """
        try:
            build_ext.build_extension(self, ext)
        except BUILD_ERRORS as e:
            if not ext.optional:
                raise
            command = getattr(self.compiler, "compiler_so", None) or [None]
            showWarning(speedupsWarning(failureReason(command[0], e)))


setup(ext_modules=[SPEEDUPS], cmdclass={"build_ext": OptionalBuildExt})
