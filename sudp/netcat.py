# -*- test-case-name: sudp_test.test_netcat -*-
"""
C{sudp connect ENDPOINT}: a netcat-like client.

Each line read from standard input is sent as one message (without its
newline); each message received is written to standard output followed by a
newline.

End of input does not close the session at once, since replies to the last
lines sent may still be on their way: a quiet period (L{QuietPeriod}) keeps
it open until C{wait} seconds (C{--wait}, default L{DEFAULT_WAIT}) pass with
no message received, the wait starting again at each message, and in any
case no longer than C{maxWait} seconds (C{--max-wait}, default
L{DEFAULT_MAX_WAIT}) after the end of input. C{--wait 0} closes at once.

Exit status (the constants are in L{sudp.cli}):
  - C{EXIT_OK} (0): input ended and the session was closed after the quiet
    period, or the server closed the session;
  - C{EXIT_FAILURE} (1): the connection or its handshake failed, or the
    session was lost;
  - C{EXIT_USAGE} (2): a usage error (reported by the command line parser);
  - C{EXIT_INTERRUPTED} (130): interrupted by SIGINT (Ctrl-C);
  - C{EXIT_TERMINATED} (143): terminated by SIGTERM (128 + the signal's
    number, as shells report a process a signal ended).

An interrupt closes the session (telling the server) and exits without a
traceback; a second interrupt exits without waiting for the close.
"""

import signal
import sys

from twisted.internet import defer, protocol, stdio
from twisted.internet.endpoints import clientFromString
from twisted.internet.error import ConnectionDone, ReactorNotRunning
from twisted.protocols.basic import LineReceiver

from sudp.exits import DEFAULT_MAX_WAIT, DEFAULT_WAIT, EXIT_FAILURE, EXIT_OK
from sudp.errors import SUDPError

CLOSE_GRACE = 5.0
"""
Seconds a session closed by the client (after the quiet period, or on an
interrupt) has to end before the client exits anyway.
"""


class MessagePrinter(protocol.Protocol):
    """
    Writes each message received, and a newline, to C{out}, and then calls
    C{onMessage} (if given) with no arguments; fires C{done} with the reason
    when the session ends.
    """

    def __init__(self, out, done, onMessage=None):
        self.out = out
        self.done = done
        self.onMessage = onMessage

    def dataReceived(self, data):
        self.out.write(data + b"\n")
        self.out.flush()
        if self.onMessage is not None:
            self.onMessage()

    def connectionLost(self, reason):
        if not self.done.called:
            self.done.callback(reason.value)


class LineSender(LineReceiver):
    """
    Sends each line of standard input as one message on C{session}'s
    transport; a message it refuses is reported on C{err}, prefixed with
    C{name}. End of input calls C{onEnd} with no arguments if it is given,
    and otherwise closes the session at once.
    """

    delimiter = b"\n"
    MAX_LENGTH = 1 << 20

    def __init__(self, session, err, name="sudp connect", onEnd=None):
        self.session = session
        self.err = err
        self.name = name
        self.onEnd = onEnd

    def lineReceived(self, line):
        try:
            self.session.transport.write(line.rstrip(b"\r"))
        except (SUDPError, ValueError) as e:
            self.err.write(f"{self.name}: {e}\n")

    def connectionLost(self, reason):
        if self.onEnd is not None:
            self.onEnd()
        elif getattr(self.session.transport, "connected", True):
            self.session.transport.loseConnection()


class QuietPeriod:
    """
    The wait after end of input for the last replies: once L{start}ed, calls
    C{close} when C{wait} seconds pass with no L{messageReceived}, each
    message starting the wait again, or when C{maxWait} seconds have passed
    since L{start}, whichever comes first; at once if C{wait} is 0. It calls
    C{close} at most once, and never after L{cancel}.

    @ivar clock: the C{twisted.internet.interfaces.IReactorTime} that times
        the waits.
    """

    def __init__(self, clock, wait, maxWait, close):
        """
        @raise ValueError: if C{wait} is negative or more than C{maxWait}.
        """
        if not 0 <= wait <= maxWait:
            raise ValueError(
                f"the quiet period needs 0 <= wait <= maxWait, not wait={wait:g}, "
                f"maxWait={maxWait:g}"
            )
        self.clock = clock
        self.wait = wait
        self.maxWait = maxWait
        self._close = close
        self._calls = None
        self._over = False

    def start(self):
        """
        Input has ended: begin the quiet period (a second call does nothing).
        """
        if self._over or self._calls is not None:
            return
        if self.wait == 0:
            self._end()
        else:
            self._calls = [
                self.clock.callLater(self.wait, self._end),
                self.clock.callLater(self.maxWait, self._end),
            ]

    def messageReceived(self):
        """
        A message has arrived: during the quiet period, the wait starts again.
        """
        if self._calls is not None:
            self._calls[0].reset(self.wait)

    def cancel(self):
        """
        The session has ended otherwise: never call C{close}.
        """
        self._over = True
        for call in self._calls or ():
            if call.active():
                call.cancel()
        self._calls = None

    def _end(self):
        self.cancel()
        self._close()


class Netcat:
    """
    One run of C{sudp connect}: connects to C{endpoint} (a client endpoint
    string, or an C{twisted.internet.interfaces.IStreamClientEndpoint}
    provider), relays input lines out and messages in (to C{out}, a binary
    file), closes the session after the L{QuietPeriod} that follows end of
    input, and settles the exit status, which L{finished} fires with.
    Messages for the user go to C{err} (a text file), prefixed with C{name}.

    @ivar finished: a C{defer.Deferred} that fires with the exit status.
    @ivar quiet: the L{QuietPeriod} after end of input, timed by C{reactor}.
    """

    def __init__(self, reactor, endpoint, out, err, wait=DEFAULT_WAIT, maxWait=DEFAULT_MAX_WAIT,
                 name="sudp connect"):
        """
        @raise ValueError: if C{wait} and C{maxWait} make no quiet period.
        """
        self.reactor = reactor
        self.endpoint = endpoint
        self.out = out
        self.err = err
        self.name = name
        self.quiet = QuietPeriod(reactor, wait, maxWait, self.close)
        self.finished = defer.Deferred()
        self._connecting = None
        self._session = None
        self._interrupted = None
        self._grace = None

    def start(self, startInput=None):
        """
        Connect; once connected, call C{startInput} (if given) with the
        L{LineSender} to feed, e.g. C{stdio.StandardIO}.

        @return: L{finished}.
        """
        done = defer.Deferred()
        try:
            endpoint = self.endpoint
            if isinstance(endpoint, str):
                endpoint = clientFromString(self.reactor, endpoint)
            factory = protocol.Factory.forProtocol(
                lambda: MessagePrinter(self.out, done, self.quiet.messageReceived)
            )
            self._connecting = endpoint.connect(factory)
        except Exception as e:
            self._failed(e)
            return self.finished
        self._connecting.addCallback(self._connected, done, startInput)
        self._connecting.addErrback(lambda f: self._failed(f.value))
        return self.finished

    def _connected(self, session, done, startInput):
        self._connecting = None
        self._session = session
        transport = session.transport
        key = transport.peerPublicKey.fingerprint()
        self.err.write(f"{self.name}: connected, server key {key}, suite {transport.suite}\n")
        self.err.flush()
        done.addCallback(self._ended)
        if startInput is not None and not self.finished.called:
            startInput(LineSender(session, self.err, self.name, onEnd=self.quiet.start))

    def _failed(self, error):
        self._connecting = None
        if self._interrupted is None:
            self.err.write(f"{self.name}: {error}\n")
        self._finish(EXIT_FAILURE)

    def _ended(self, reason):
        if self._interrupted is None and not isinstance(reason, ConnectionDone):
            self.err.write(f"{self.name}: session ended: {reason}\n")
            self._finish(EXIT_FAILURE)
        else:
            self._finish(EXIT_OK)

    def close(self):
        """
        Close the session, telling the server; exit anyway if it has not
        ended L{CLOSE_GRACE} seconds later.
        """
        if self._session is None or self.finished.called:
            return
        transport = self._session.transport
        if getattr(transport, "connected", True):
            transport.loseConnection()
        if not self.finished.called and self._grace is None:
            self._grace = self.reactor.callLater(CLOSE_GRACE, self._finish, EXIT_OK)

    def interrupt(self, signum):
        """
        A signal (SIGINT, SIGTERM) asks the client to stop: end the handshake
        or close the session, and finish with status 128 + C{signum}. A
        second interrupt finishes at once.
        """
        if self.finished.called:
            return
        if self._interrupted is not None:
            self._finish(EXIT_OK)
            return
        self._interrupted = 128 + signum
        self.quiet.cancel()
        if self._connecting is not None:
            self._connecting.cancel()
        elif self._session is not None:
            self.close()
        else:
            self._finish(EXIT_OK)

    def _finish(self, status):
        """
        Fire L{finished} (once) with C{status}, or with the interrupt's
        status if there was one.
        """
        if self.finished.called:
            return
        if self._grace is not None and self._grace.active():
            self._grace.cancel()
        self.quiet.cancel()
        self.finished.callback(self._interrupted if self._interrupted is not None else status)


def runUntilFinished(reactor, start, interrupt):
    """
    Run C{reactor} until the C{defer.Deferred} that C{start()} returns fires
    with an exit status. SIGINT and SIGTERM call C{interrupt(signum)} in the
    reactor thread (instead of Twisted's handlers, which stop the reactor
    under the run's feet).

    @return: the exit status; L{EXIT_FAILURE} if C{start}'s C{defer.Deferred}
        failed (the failure is written to standard error).
    """
    status = []

    def stop(result):
        status.append(result)
        try:
            reactor.stop()
        except ReactorNotRunning:
            pass

    def failed(f):
        sys.stderr.write(f.getTraceback())
        return EXIT_FAILURE

    def handler(signum, frame):
        reactor.callFromThread(interrupt, signum)

    def run():
        defer.maybeDeferred(start).addErrback(failed).addCallback(stop)

    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, handler) for number in signals}
    try:
        reactor.callWhenRunning(run)
        reactor.run(installSignalHandlers=False)
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
    return status[0] if status else EXIT_FAILURE


def runNetcat(endpoint, timeout=10.0, reactor=None, stdin=True, wait=DEFAULT_WAIT,
              maxWait=DEFAULT_MAX_WAIT):
    """
    Connect to C{endpoint} and relay standard input and output (see the
    module's documentation): C{timeout} bounds the handshake of a C{sudp:}
    endpoint that names no timeout of its own; C{wait} and C{maxWait} make
    the quiet period after end of input.

    @return: the exit status.
    """
    from twisted.internet import reactor as defaultReactor

    reactor = reactor or defaultReactor
    if "timeout=" not in endpoint and endpoint.startswith("sudp:"):
        endpoint += f":timeout={timeout:g}"
    netcat = Netcat(reactor, endpoint, sys.stdout.buffer, sys.stderr, wait, maxWait)
    startInput = stdio.StandardIO if stdin else None
    return runUntilFinished(reactor, lambda: netcat.start(startInput), netcat.interrupt)
