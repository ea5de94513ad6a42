"""
C{sudp vpn041}: the vpn041 command-line client. It authenticates to a
gateway, then sends each line of standard input as one push and writes
each push received to standard output.

Exit status: 0 when input ends or the gateway ends the session, 1 when the
authentication fails, and 70 (EX_SOFTWARE) at once, after one critical
log line, when a datagram from the gateway does not decrypt (spec 041:
"log critical error once, immediately crash").
"""

import os
import sys

from twisted.internet import defer, protocol, stdio
from twisted.logger import globalLogBeginner, textFileLogObserver

from sudp.netcat import LineSender, MessagePrinter

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
    status = []
    client = connectGateway(reactor, host, authPort, settings, protocol.Factory.forProtocol(lambda: MessagePrinter(out, done)),
                            certFile, keyFile, caFile, authenticated)

    def fatal(error):
        err.flush()
        os._exit(FATAL_STATUS)  # spec 041: the client crashes, at once

    client.fatal.addCallback(fatal)

    def ready(session):
        if stdin:
            stdio.StandardIO(LineSender(session, err, "sudp vpn041"))
        return done

    def failed(f):
        err.write(f"sudp vpn041: {f.value}\n")
        status.append(1)

    client.ready.addCallback(ready).addErrback(failed).addBoth(lambda _: reactor.stop())
    reactor.run()
    return status[0] if status else 0
