# -*- test-case-name: sudp_test.vpn041.test_tap -*-
"""
C{twist vpn041}: run a vpn041 gateway (docs/vpn041.md). ::

    twist vpn041 --appsettings appsettings.json --cert gateway.pem --key gateway.key
                 --ca ca.pem [--auth-port 9443] [--port 9000] [--interface ADDR]
                 [--authenticated] [--nat] [--app module.attr] [--handshake-timeout SECONDS]
                 [--max-connections N] [--max-connections-per-source N]
                 [--max-nonces N] [--nonce-lifetime SECONDS]
"""

from twisted.application import service
from twisted.internet import protocol
from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.logger import Logger
from twisted.python import usage

from sudp.errors import SUDPError
from sudp.startup import exitIfListenFails, failFast
from sudp.tap import Echo, loadApp, printVersion
from sudp.vpn041.dataplane import maxPayload
from sudp.vpn041.settings import Limits, loadAppSettings


class Options(usage.Options):
    synopsis = "--appsettings FILE --cert FILE --key FILE --ca FILE [options]"
    longdesc = ("Run a vpn041 gateway (spec 041): a TLS authentication plane that hands clients a session "
                "id and an AES key, and a UDP push data plane. The UDP plane has no integrity protection "
                "unless --authenticated is given.")
    optParameters = [
        ["appsettings", None, None, "The flat appSettings JSON file (useEncryption, encryptionType)."],
        ["cert", None, None, "The gateway's certificate (PEM)."],
        ["key", None, None, "The gateway's private key (PEM)."],
        ["ca", None, None, "The CA certificate that signs client certificates (PEM)."],
        ["auth-port", None, 9443, "TCP port of the TLS authentication plane.", int],
        ["port", "p", 9000, "UDP port of the data plane.", int],
        ["interface", "i", "", "Address to bind (default: all)."],
        ["app", "a", None, "Protocol factory to serve, as module.attr (default: echo)."],
        ["handshake-timeout", None, Limits.handshakeTimeout,
         "Seconds a connection to the auth port has to complete TLS and send its request.", float],
        ["max-connections", None, Limits.maxConnections,
         "Connections to the auth port not yet authenticated, at once (0: the descriptor limit less 64 "
         "and less 255).", int],
        ["max-connections-per-source", None, Limits.maxConnectionsPerSource,
         "Such connections one source address (IPv6: /64) may hold.", int],
        ["max-nonces", None, Limits.maxNonces, "Nonces each session's replay record holds.", int],
        ["nonce-lifetime", None, Limits.nonceLifetime,
         "Seconds each session's replay record holds a nonce (and a datagram may be late or early).", float],
    ]
    optFlags = [["authenticated", None, "The authenticated data plane: a 16-byte AES-GCM tag per datagram "
                                        "(not the spec's; clients must use it too)."],
                ["nat", None, "Take a session's datagrams from any UDP port of the address its client "
                              "authenticated from (clients behind a NAT that changes ports)."]]

    def opt_version(self):
        """
        Print sudp's version (and Twisted's) and exit.
        """
        printVersion()

    def postOptions(self):
        for name in ("appsettings", "cert", "key", "ca"):
            if not self[name]:
                raise usage.UsageError(f"--{name} is required")
        for name in ("auth-port", "port"):
            if not 0 <= self[name] <= 65535:
                raise usage.UsageError(f"--{name} {self[name]}: not a port")
        try:
            self["settings"] = loadAppSettings(self["appsettings"])
            self["limits"] = Limits(maxNonces=self["max-nonces"], nonceLifetime=self["nonce-lifetime"],
                                    handshakeTimeout=self["handshake-timeout"],
                                    maxConnections=self["max-connections"],
                                    maxConnectionsPerSource=self["max-connections-per-source"])
        except SUDPError as e:
            raise usage.UsageError(str(e)) from None
        self["factory"] = loadApp(self["app"]) if self["app"] else protocol.Factory.forProtocol(Echo)


class GatewayService(service.Service):
    """
    Runs a L{sudp.vpn041.gateway.Gateway} and says where it listens.
    """

    log = Logger()

    def __init__(self, gateway, authEndpoint, udpPort, interface):
        self.gateway = gateway
        self.authEndpoint = authEndpoint
        self.udpPort = udpPort
        self.interface = interface

    def startService(self):
        from twisted.internet import reactor

        service.Service.startService(self)
        d = self.gateway.listen(self.authEndpoint, self.udpPort, self.interface)
        d.addCallback(self._listening)
        exitIfListenFails(d, reactor, "the vpn041 auth (TCP) or data (UDP) port")
        return d

    def _listening(self, ports):
        authPort, udpPort = ports
        s = self.gateway.settings
        self.log.info("vpn041: authentication (TLS, {type}) on TCP port {auth}; data plane on UDP port {udp}",
                      type=s.encryptionType, auth=authPort.getHost().port, udp=udpPort.getHost().port)
        self.log.info("vpn041: useEncryption={enc}, authenticated={a}, largest payload {n} bytes (IPv4, MTU 1500)",
                      enc=s.useEncryption, a=self.gateway.authenticated,
                      n=maxPayload(s.useEncryption, self.gateway.authenticated))

    def stopService(self):
        service.Service.stopService(self)
        return self.gateway.stopListening()


@failFast
def makeService(options):
    """
    @return: the service C{twist vpn041} runs; a bad certificate, key or CA
        file ends the process with one line C{Error: ...}
        (L{sudp.startup.failFast}).
    """
    from twisted.internet import reactor

    from sudp.vpn041.gateway import Gateway

    try:
        gateway = Gateway(reactor, options["settings"], options["factory"], options["cert"], options["key"],
                          options["ca"], authenticated=options["authenticated"], limits=options["limits"],
                          natPorts=options["nat"])
    except SUDPError as e:
        raise usage.UsageError(str(e)) from None
    interface = options["interface"]
    endpoint = (TCP6ServerEndpoint if ":" in interface else TCP4ServerEndpoint)(
        reactor, options["auth-port"], interface=interface)
    return GatewayService(gateway, endpoint, options["port"], interface)
