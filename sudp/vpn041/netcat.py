# -*- test-case-name: sudp_test.test_vpn041 -*-
"""
C{sudp vpn041}: the vpn041 command-line client. It authenticates to a
gateway, then sends each line of standard input as one push and writes
each push received to standard output.

Exit status: 0 when input ends or the gateway ends the session, 1 when the
authentication fails, 70 (EX_SOFTWARE) at once, after one critical log
line, when a datagram from the gateway does not decrypt (spec 041: "log
critical error once, immediately crash"), and 130 on SIGINT (Ctrl-C), 143
on SIGTERM, after closing the session (a second signal does not wait).
"""

import os
import sys

from twisted.internet import defer, protocol, stdio
from twisted.logger import globalLogBeginner, textFileLogObserver

from sudp.cli import EXIT_FAILURE, EXIT_OK
from sudp.netcat import CLOSE_GRACE, LineSender, MessagePrinter, runUntilFinished

FATAL_STATUS = 70


def runClient(host, authPort, settings, certFile, keyFile, caFile, authenticated=False, reactor=None,
              out=None, err=None, stdin=True):
    """
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
                            certFile, keyFile, caFile, authenticated)

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
        return done

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

    client.ready.addCallback(ready).addCallbacks(lambda _: EXIT_OK, failed).addCallback(finish)
    return runUntilFinished(reactor, lambda: finished, interrupt)
