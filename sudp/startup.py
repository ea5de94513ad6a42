# -*- test-case-name: sudp_test.test_startup -*-
"""
Servers that cannot start say why in one line and exit non-zero.

C{twist sudp} and C{twist vpn041} use these: a bad key, certificate,
authorized-keys, trusted-keys file or C{--listen} string found while the
service is made (L{failFast}), and a port that cannot be bound once the
reactor runs (L{exitIfListenFails}), each end the process with one line
C{Error: ...} on standard error and no traceback.
"""

import errno
import os
import sys

from twisted.application.runner._exit import ExitStatus, exit
from twisted.internet.error import CannotListenError
from twisted.python import usage

from sudp.errors import SUDPError, errorText

EX_CONFIG = ExitStatus.EX_CONFIG  # 78: a bad file or option
EX_UNAVAILABLE = ExitStatus.EX_UNAVAILABLE  # 69: a port that cannot be bound


def oneLine(text):
    """
    @return: C{text} with every run of white space (newlines too) made one
        space.
    """
    return " ".join(str(text).split())


def failFast(makeService):
    """
    Wrap a plugin's C{makeService(options)}: an L{SUDPError}, a
    C{usage.UsageError} or an C{OSError} it raises ends the process with
    C{Error: <message>} and exit status 78 (C{EX_CONFIG}), before the
    reactor runs.
    """

    def make(options):
        try:
            return makeService(options)
        except (SUDPError, usage.UsageError, OSError) as e:
            exit(EX_CONFIG, f"Error: {oneLine(_describe(e))}")

    make.__doc__ = makeService.__doc__
    make.__name__ = makeService.__name__
    return make


def _describe(error):
    if isinstance(error, OSError):
        return f"{error.filename}: {errorText(error)}" if error.filename else errorText(error)
    return str(error)


def listenFailure(failure, what):
    """
    @param what: what could not listen, e.g. C{"UDP port 9000"}.
    @return: the one-line message for a listen that failed with C{failure}.
    """
    error = failure.value
    if isinstance(error, CannotListenError):
        cause = error.socketError
        reason = errorText(cause) if isinstance(cause, OSError) else oneLine(cause)
        hint = ""
        if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
            hint = ": another program uses it; stop it or choose another port"
        elif isinstance(cause, OSError) and cause.errno == errno.EACCES:
            hint = ": ports below 1024 need privileges; choose a port above 1023"
        elif isinstance(cause, OSError) and cause.errno == errno.EADDRNOTAVAIL:
            hint = ": that address is not one of this host's; check --interface"
        where = f"{error.interface or '*'}:{error.port}"
        return f"cannot listen on {what} ({where}: {reason}){hint}"
    return f"cannot listen on {what}: {oneLine(error)}"


def exitIfListenFails(deferred, reactor, what, exitProcess=os._exit, stderr=None):
    """
    If C{deferred} (a listen) fails, write C{Error: cannot listen on ...}
    to standard error, stop the reactor and end the process with status 69
    (C{EX_UNAVAILABLE}) once it has shut down (so the other services stop
    cleanly first).

    @param exitProcess: ends the process with a status (tests replace it).
    @return: C{deferred}, with the errback added.
    """

    def failed(failure):
        out = stderr if stderr is not None else sys.stderr
        out.write(f"Error: {listenFailure(failure, what)}\n")
        out.flush()
        reactor.addSystemEventTrigger("after", "shutdown", exitProcess, int(EX_UNAVAILABLE))
        if reactor.running:
            reactor.stop()
        else:
            reactor.callWhenRunning(reactor.stop)

    return deferred.addErrback(failed)
