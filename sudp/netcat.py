"""
C{sudp connect ENDPOINT}: a netcat-like client.

Each line read from standard input is sent as one message (without its
newline); each message received is written to standard output followed by a
newline. End of input closes the session; the exit status is 0 on a clean
close and 1 on a failed handshake or a lost session.
"""

import sys

from twisted.internet import defer, protocol, stdio
from twisted.internet.endpoints import clientFromString
from twisted.protocols.basic import LineReceiver

from sudp.errors import SUDPError


class MessagePrinter(protocol.Protocol):
    """
    Writes each message received, and a newline, to C{out}; fires C{done}
    with the reason when the session ends.
    """

    def __init__(self, out, done):
        self.out = out
        self.done = done

    def dataReceived(self, data):
        self.out.write(data + b"\n")
        self.out.flush()

    def connectionLost(self, reason):
        if not self.done.called:
            self.done.callback(reason.value)


class LineSender(LineReceiver):
    """
    Sends each line of standard input as one message on C{session}'s
    transport; a message it refuses is reported on C{err}, prefixed with
    C{name}. End of input closes the session.
    """

    delimiter = b"\n"
    MAX_LENGTH = 1 << 20

    def __init__(self, session, err, name="sudp connect"):
        self.session = session
        self.err = err
        self.name = name

    def lineReceived(self, line):
        try:
            self.session.transport.write(line.rstrip(b"\r"))
        except (SUDPError, ValueError) as e:
            self.err.write(f"{self.name}: {e}\n")

    def connectionLost(self, reason):
        if getattr(self.session.transport, "connected", True):
            self.session.transport.loseConnection()


def runNetcat(endpoint, timeout=10.0, reactor=None, stdin=True):
    """
    Connect to C{endpoint} and relay standard input and output.

    @return: the exit status.
    """
    from twisted.internet import reactor as defaultReactor
    from twisted.internet.error import ConnectionDone

    reactor = reactor or defaultReactor
    out = sys.stdout.buffer
    err = sys.stderr
    status = []

    if "timeout=" not in endpoint and endpoint.startswith("sudp:"):
        endpoint += f":timeout={timeout:g}"

    @defer.inlineCallbacks
    def main():
        done = defer.Deferred()
        try:
            ep = clientFromString(reactor, endpoint)
            session = yield ep.connect(protocol.Factory.forProtocol(lambda: MessagePrinter(out, done)))
        except Exception as e:
            err.write(f"sudp connect: {e}\n")
            status.append(1)
            return
        key = session.transport.peerPublicKey
        err.write(f"sudp connect: connected, server key {key.fingerprint()}, suite {session.transport.suite}\n")
        if stdin:
            stdio.StandardIO(LineSender(session, err))
        reason = yield done
        if isinstance(reason, ConnectionDone):
            status.append(0)
        else:
            err.write(f"sudp connect: session ended: {reason}\n")
            status.append(1)

    def run():
        d = main()
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(run)
    reactor.run()
    return status[0] if status else 1
