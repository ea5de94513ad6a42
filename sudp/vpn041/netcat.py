# -*- test-case-name: sudp_test.vpn041.test_netcat -*-
"""
C{sudp vpn041}: the vpn041 command-line client. It authenticates to a
gateway, then sends each line of standard input as one push and writes
each push received to standard output.

Exit status: 0 when input ends, 1 when the authentication fails or the
gateway ends the session (the reason it gave is printed), 70 (EX_SOFTWARE) at once, after one critical log
line, when a datagram from the gateway does not decrypt (spec 041: "log
critical error once, immediately crash"), and 130 on SIGINT (Ctrl-C), 143
on SIGTERM, after closing the session (a second signal does not wait).
"""

import os
import sys

from twisted.internet import defer, protocol, stdio
from twisted.logger import globalLogBeginner, textFileLogObserver

from sudp.exits import EXIT_FAILURE, EXIT_OK
from sudp.errors import SessionClosed
from sudp.netcat import CLOSE_GRACE, LineSender, MessagePrinter, runUntilFinished

FATAL_STATUS = 70


def runClient(host, authPort, settings, certFile, keyFile, caFile, authenticated=False, reactor=None,
              out=None, err=None, stdin=True, limits=None):
    """
    @param limits: the client's L{sudp.vpn041.settings.Limits}.
    @return: the exit status (or never returns: a fatal data-plane failure
        ends the process with L{FATAL_STATUS}).
    """
    from twisted.internet import reactor as defaultReactor

    from sudp.vpn041.client import connectGateway

    reactor = reactor or defaultReactor
    out = out or sys.stdout.buffer
    err = err or sys.stderr
    globalLogBeginner.beginLoggingTo([textFileLogObserver(err)], redirectStandardIO=False)
    done = defer.Deferred()
    client = connectGateway(reactor, host, authPort, settings, protocol.Factory.forProtocol(lambda: MessagePrinter(out, done)),
                            certFile, keyFile, caFile, authenticated, limits=limits)

    def fatal(error):
        err.flush()
        os._exit(FATAL_STATUS)  # spec 041: the client crashes, at once

    client.fatal.addCallback(fatal)
    finished = defer.Deferred()
    sessions = []
    interrupted = []

    def finish(status):
        if not finished.called:
            finished.callback(interrupted[0] if interrupted else status)

    def ready(session):
        sessions.append(session)
        if stdin and not finished.called:
            stdio.StandardIO(LineSender(session, err, "sudp vpn041"))
        return done.addCallback(ended)

    def ended(reason):
        if isinstance(reason, SessionClosed) and reason.reason == "gateway-closed":
            err.write(f"sudp vpn041: {reason.detail}\n")
            return EXIT_FAILURE
        return EXIT_OK

    def failed(f):
        if not interrupted:
            err.write(f"sudp vpn041: {f.value}\n")
        return EXIT_FAILURE

    def interrupt(signum):
        first = not interrupted
        interrupted.append(128 + signum)
        if first and sessions:
            sessions[0].transport.loseConnection()
            reactor.callLater(CLOSE_GRACE, finish, EXIT_OK)
        else:  # no session yet, or a second signal: at once
            finish(EXIT_OK)

    client.ready.addCallback(ready).addErrback(failed).addCallback(finish)
    return runUntilFinished(reactor, lambda: finished, interrupt)
