"""
C{sudp vpn041}: the vpn041 command-line client. It authenticates to a
gateway, then sends each line of standard input as one push and writes
each push received to standard output.

Exit status: 0 when input ends or the gateway ends the session, 1 when the
authentication fails, and 70 (EX_SOFTWARE) at once, after one critical
log line, when a datagram from the gateway does not decrypt (seed 001:
"log critical error once, immediately crash").
"""

import os
import sys

from twisted.internet import defer, protocol, stdio
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.protocols.basic import LineReceiver

from sudp.errors import SUDPError

FATAL_STATUS = 70


class _Pushes(protocol.Protocol):
    def __init__(self, out, done):
        self.out = out
        self.done = done

    def dataReceived(self, data):
        self.out.write(data + b"\n")
        self.out.flush()

    def connectionLost(self, reason):
        if not self.done.called:
            self.done.callback(reason.value)


class _Lines(LineReceiver):
    delimiter = b"\n"
    MAX_LENGTH = 1 << 16

    def __init__(self, session, err):
        self.session = session
        self.err = err

    def lineReceived(self, line):
        try:
            self.session.transport.write(line.rstrip(b"\r"))
        except (SUDPError, ValueError) as e:
            self.err.write(f"sudp vpn041: {e}\n")

    def connectionLost(self, reason):
        if self.session.transport.connected:
            self.session.transport.loseConnection()


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
    client = connectGateway(reactor, host, authPort, settings, protocol.Factory.forProtocol(lambda: _Pushes(out, done)),
                            certFile, keyFile, caFile, authenticated)

    def fatal(error):
        err.flush()
        os._exit(FATAL_STATUS)  # seed 001: the client crashes, at once

    client.fatal.addCallback(fatal)

    def ready(session):
        if stdin:
            stdio.StandardIO(_Lines(session, err))
        return done

    def failed(f):
        err.write(f"sudp vpn041: {f.value}\n")
        status.append(1)

    client.ready.addCallback(ready).addErrback(failed).addBoth(lambda _: reactor.stop())
    reactor.run()
    return status[0] if status else 0
