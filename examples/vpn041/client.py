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
    def dataReceived(self, data):
        print("push:", data.decode(errors="replace"), flush=True)

    def connectionLost(self, reason):
        print("session ended:", reason.value, flush=True)


@defer.inlineCallbacks
def main(reactor, certs, name, appsettings, authPort="9443", seconds="5"):
    client = connectGateway(reactor, "127.0.0.1", int(authPort), loadAppSettings(appsettings),
                            protocol.Factory.forProtocol(Printer), f"{certs}/{name}.pem", f"{certs}/{name}.key",
                            f"{certs}/ca.pem")
    session = yield client.ready
    print(f"authenticated: session {session.transport.sessionId}, largest push "
          f"{session.transport.maxMessageSize} bytes", flush=True)
    for i in range(3):
        session.transport.write(b"hello %d from %s" % (i, name.encode()))
    yield task.deferLater(reactor, float(seconds), lambda: None)
    session.transport.loseConnection()


if __name__ == "__main__":
    task.react(main, sys.argv[1:])
