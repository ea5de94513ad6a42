"""
A vpn041 gateway that greets each client and echoes its pushes, with a
push to every client each few seconds (the "push" in spec 041).

    python examples/vpn041/make_certs.py certs alice
    python examples/vpn041/gateway.py certs examples/vpn041/gateway.appsettings.json [AUTH_PORT UDP_PORT]

The same gateway runs with `twist vpn041 --app ...`; this file shows the API.
"""

import sys

from twisted.internet import protocol, task
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.logger import globalLogBeginner, textFileLogObserver

from sudp.vpn041.gateway import Gateway
from sudp.vpn041.settings import loadAppSettings


class Pushes(protocol.Protocol):
    """
    One client's session: greet, echo, and take part in the periodic push.
    """

    def connectionMade(self):
        self.factory.clients.add(self)
        peer = self.transport.getPeer()
        self.transport.write(b"welcome, session %d (%s)" % (peer.sessionId, peer.clientName.encode()))

    def dataReceived(self, data):
        self.transport.write(b"echo: " + data)

    def connectionLost(self, reason):
        self.factory.clients.discard(self)


class PushFactory(protocol.Factory):
    protocol = Pushes

    def __init__(self):
        self.clients = set()
        self.ticks = 0

    def tick(self):
        self.ticks += 1
        for client in list(self.clients):
            client.transport.write(b"tick %d" % self.ticks)


def start(reactor, certs, appsettings, authPort="9443", udpPort="9000", tick=3.0):
    """
    @return: a Deferred firing with C{(gateway, (authPort, udpPort))}.
    """
    factory = PushFactory()
    gateway = Gateway(reactor, loadAppSettings(appsettings), factory, f"{certs}/gateway.pem",
                      f"{certs}/gateway.key", f"{certs}/ca.pem")
    ticks = task.LoopingCall(factory.tick)
    ticks.clock = reactor
    ticks.start(tick, now=False)
    stop = gateway.stopListening
    gateway.stopListening = lambda: (ticks.stop(), stop())[1]
    d = gateway.listen(TCP4ServerEndpoint(reactor, int(authPort), interface="127.0.0.1"), int(udpPort), "127.0.0.1")
    return d.addCallback(lambda ports: (gateway, ports))


def main(reactor, certs, appsettings, authPort="9443", udpPort="9000"):
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)])
    d = start(reactor, certs, appsettings, authPort, udpPort)
    d.addCallback(lambda result: print(f"gateway: auth TCP {result[1][0].getHost().port}, "
                                       f"UDP {result[1][1].getHost().port}", flush=True))
    return d.addCallback(lambda _: task.deferLater(reactor, 1e9, lambda: None))


if __name__ == "__main__":
    task.react(main, sys.argv[1:])
