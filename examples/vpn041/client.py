"""
A vpn041 client: authenticate, push a few messages, print what the gateway
pushes, stop after a while.

    python examples/vpn041/client.py certs alice examples/vpn041/client.appsettings.json [AUTH_PORT [SECONDS]]
"""

import sys

from twisted.internet import defer, protocol, task

from sudp.vpn041.client import connectGateway
from sudp.vpn041.settings import loadAppSettings


class Printer(protocol.Protocol):
    def __init__(self, pushes):
        self.pushes = pushes

    def dataReceived(self, data):
        self.pushes.append(data.decode(errors="replace"))
        print("push:", self.pushes[-1], flush=True)

    def connectionLost(self, reason):
        print("session ended:", reason.value, flush=True)


@defer.inlineCallbacks
def run(reactor, certs, name, appsettings, authPort="9443", seconds="5"):
    """
    Authenticate, push three messages, listen for C{seconds}, close.

    @return: a Deferred firing with the pushes received.
    """
    pushes = []
    client = connectGateway(reactor, "127.0.0.1", int(authPort), loadAppSettings(appsettings),
                            protocol.Factory.forProtocol(lambda: Printer(pushes)), f"{certs}/{name}.pem",
                            f"{certs}/{name}.key", f"{certs}/ca.pem", bindAddress="127.0.0.1")
    session = yield client.ready
    print(f"authenticated: session {session.transport.sessionId}, largest push "
          f"{session.transport.maxMessageSize} bytes", flush=True)
    for i in range(3):
        session.transport.write(b"hello %d from %s" % (i, name.encode()))
    yield task.deferLater(reactor, float(seconds), lambda: None)
    session.transport.loseConnection()
    return pushes


def main(reactor, *args):
    return run(reactor, *args).addCallback(lambda _: None)


if __name__ == "__main__":
    task.react(main, sys.argv[1:])
