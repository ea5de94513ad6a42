# -*- test-case-name: sudp_test.test_tap -*-
"""
The services C{twist sudp} runs: L{SUDPService}, the sudp/1 server on its
UDP port, and L{StreamListener}, each sframe C{--listen}. Each says on
start how clients reach it, and fails the process at once if it cannot
listen.
"""

import shlex

from twisted.application import service
from twisted.logger import Logger
from twisted.python import usage

from sudp import speedups
from sudp.options import escapeValue
from sudp.startup import exitIfListenFails


class SUDPService(service.Service):
    """
    The C{twist sudp} service: listens, then logs the public key and a ready
    client endpoint string with the port actually bound.

    @ivar port: the L{sudp.udp.endpoints.SUDPListeningPort} once listening.
    """

    log = Logger()

    def __init__(self, endpoint, factory, identity, created, keyFile, interface, gossip6=False):
        self.gossip6 = gossip6
        self.endpoint = endpoint
        self.factory = factory
        self.identity = identity
        self.created = created
        self.keyFile = keyFile
        self.interface = interface
        self.port = None

    def clientEndpointString(self):
        """
        @return: the client endpoint string for this server (for gossip6,
            with the client's own RSA key file to fill in).
        """
        host = escapeValue(self.interface if self.interface not in ("", "0.0.0.0", "::") else "127.0.0.1")
        number = self.port.getHost().port
        if self.gossip6:
            return (f"sudp:host={host}:port={number}:handshake=gossip6:key=CLIENT_RSA.key"
                    f":serverKey={self.identity.publicKey.toText()}")
        return f"sudp:host={host}:port={number}:serverKey={self.identity.publicKey.toText()}"

    def startService(self):
        from twisted.internet import reactor

        service.Service.startService(self)
        d = self.endpoint.listen(self.factory)
        d.addCallback(self._listening)
        exitIfListenFails(d, reactor, f"UDP port {self.endpoint.portNumber}"
                                      + (f" of {self.interface}" if self.interface else ""))
        return d

    def _listening(self, port):
        self.port = port
        key = self.identity.publicKey
        self.log.info(
            "sudp: {action} server key {keyFile}", action="created" if self.created else "loaded",
            keyFile=self.keyFile,
        )
        self.log.info("sudp: public key {key} ({fingerprint})", key=key.toText(), fingerprint=key.fingerprint())
        self.log.info("sudp: data path: {path}", path=speedups.describe())
        nextIdentity = getattr(self.endpoint, "nextIdentity", None)
        if nextIdentity is not None:
            self.log.info("sudp: announcing the next server key {key} ({fingerprint}) to every client",
                          key=nextIdentity.publicKey.toText(), fingerprint=nextIdentity.publicKey.fingerprint())
        self.log.info("sudp: listening on UDP port {port}; clients connect with:", port=port.getHost().port)
        self.log.info("sudp:   {endpoint}", endpoint=self.clientEndpointString())
        if not self.gossip6:
            self.log.info("sudp: from a shell: sudp connect {quoted}", quoted=shlex.quote(self.clientEndpointString()))

    def stopService(self):
        service.Service.stopService(self)
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()


class StreamListener(service.Service):
    """
    Serves the app on one more stream endpoint (C{--listen}) and logs where,
    with a ready C{sframe:} client string when it is one.
    """

    log = Logger()

    def __init__(self, description, endpoint, factory, identity, gossip6=False):
        self.gossip6 = gossip6
        self.description = description
        self.endpoint = endpoint
        self.factory = factory
        self.identity = identity
        self.port = None

    def startService(self):
        from twisted.internet import reactor

        service.Service.startService(self)
        d = self.endpoint.listen(self.factory)
        d.addCallback(self._listening)
        exitIfListenFails(d, reactor, f"--listen {self.description}")
        return d

    def _listening(self, port):
        self.port = port
        host = port.getHost()
        self.log.info("sudp: also listening on {description} ({type} port {port})",
                      description=self.description, type=host.type, port=host.port)
        if self.description.startswith("sframe:") and host.type == "TCP":
            address = host.host if host.host not in ("0.0.0.0", "::") else "127.0.0.1"
            self.log.info(
                "sudp:   sframe:{handshake}serverKey={key}:endpoint={inner}",
                key=self.identity.publicKey.toText(), inner=escapeValue(f"tcp:{escapeValue(address)}:{host.port}"),
                handshake="handshake=gossip6:key=CLIENT_RSA.key:" if self.gossip6 else "",
            )

    def stopService(self):
        service.Service.stopService(self)
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()


def streamEndpointString(description, keyFile, gossip6=None, serverWide=None):
    """
    @param serverWide: the server-wide options that apply to stream
        listeners too, as sframe option name -> text (L{serverWideOptions}).
    @return: C{description}, with C{key=keyFile} added to an C{sframe:} string
        that names no key, the server's gossip6 options to one that names no
        handshake, and each server-wide option it does not name itself.
    @raise usage.UsageError: if server-wide options are given and
        C{description} is not an C{sframe:} string (they cannot apply).
    """
    if description.startswith("sframe:"):
        if ":key=" not in description:
            description += f":key={keyFile}"
        if gossip6 and ":handshake=" not in description:
            description += ":handshake=gossip6" + "".join(
                f":{name}={_escape(value)}" for name, value in gossip6.items())
        for name, value in (serverWide or {}).items():
            if f":{name}=" not in description:
                description += f":{name}={_escape(value)}"
    elif serverWide or gossip6:
        given = ", ".join(sorted(serverWide or {})) or "handshake"
        raise usage.UsageError(f"--listen {description!r}: not an sframe: endpoint, so the server-wide "
                               f"options ({given}) cannot apply to it; wrap it: sframe:endpoint=...")
    return description


def _escape(value):
    return value.replace("\\", "\\\\").replace(":", "\\:")
