# -*- test-case-name: sudp_test.vpn041.test_client -*-
"""
The vpn041 client: authenticate over TLS, then push both ways over UDP.

L{connectGateway} fires with the application protocol once the gateway has
answered; its transport's C{write(payload)} pushes one datagram. Spec 041's
failure rule for the client: a datagram from the gateway's address that
does not decrypt (in the spec's mode; in the authenticated variant a tag
that fails is a counted drop) logs one critical error and stops the client hard: the session
ends at once, the protocol's C{connectionLost} gets a L{Vpn041Fatal}, every
later write raises it, and L{Vpn041Client.fatal} fires. (The command-line
client, C{sudp vpn041}, exits with status 70.)
"""

from collections import Counter

from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import implementer

from sudp.errors import MalformedPacket, SessionClosed
from sudp.vpn041.auth import (
    MAX_LINE,
    Vpn041AuthFailed,
    Vpn041Fatal,
    decodeResponse,
    decodeSessionEnd,
    encodeRequest,
)
from sudp.vpn041.dataplane import CLIENT, DecryptFailure, PacketCodec, parseHeader
from sudp.vpn041.nonces import NonceRefused
from sudp.vpn041.settings import Limits
from sudp.vpn041.tls import checkNegotiated, clientOptions
from sudp.vpn041.transport import DatagramForwarder, PushTransport, Vpn041Address

log = Logger()
MAX_EARLY = 16  # datagrams held while the authentication response is on its way


@implementer(IHandshakeListener)
class AuthClientProtocol(LineOnlyReceiver):
    """
    The client's authentication connection: after TLS, one request and
    one response; it stays open for the life of the session.
    """

    delimiter = b"\n"
    MAX_LENGTH = MAX_LINE

    def __init__(self, client):
        self.client = client

    def handshakeCompleted(self):
        if self.client.udpPort is None:  # the client gave up meanwhile (its connect failed or timed out)
            return
        problem = checkNegotiated(self.transport.getHandle(), self.client.settings.encryptionType)
        if problem:
            return self.client._authFailed(Vpn041AuthFailed(problem), self)
        self.sendLine(encodeRequest(self.client.udpPort.getHost().port, self.client.settings.useEncryption,
                                    self.client.authenticated))

    def lineReceived(self, line):
        if self.client.session is not None:
            self.client.endReason = decodeSessionEnd(line) or self.client.endReason
            return
        try:
            response = decodeResponse(line)
        except Vpn041AuthFailed as e:
            return self.client._authFailed(e, self)
        self.client._authenticated(response, self)

    def lineLengthExceeded(self, line):
        self.client._authFailed(Vpn041AuthFailed("the gateway's response is too long"), self)

    def connectionLost(self, reason):
        self.client._authLost(reason)


class ClientSession(PushTransport):
    """
    The transport of the client's application protocol: C{write(payload)}
    pushes one datagram to the gateway.
    """

    def __init__(self, client, codec, gatewayAddress):
        PushTransport.__init__(self, codec, log, gatewayAddress, client.reactor, client.limits)
        self.client = client

    @property
    def gatewayAddress(self):
        """
        The gateway's UDP address: the address of its authentication
        connection and the UDP port it named. Only datagrams from it are taken.
        """
        return self.peerAddress

    def write(self, data):
        """
        @raise Vpn041Fatal: after a fatal data-plane failure.
        @raise SessionClosed: after the session ended otherwise.
        @raise ValueError: for a payload over C{maxMessageSize}.
        """
        if self.client.fatalError is not None:
            raise self.client.fatalError
        PushTransport.write(self, data)

    def _push(self, datagram):
        self.client.sendDatagram(datagram)

    def loseConnection(self):
        self.client.close("closed")

    def getPeer(self):
        return Vpn041Address(0, "gateway", *self.gatewayAddress)

    def getHost(self):
        return self.client.udpPort.getHost()


class Vpn041Client:
    """
    One client connection to a gateway.

    @ivar ready: fires with the application protocol once authenticated,
        or fails with L{Vpn041AuthFailed}.
    @ivar fatal: fires with the L{Vpn041Fatal} if the data plane fails.
    @ivar drops: datagrams dropped, by reason.
    """

    def __init__(self, reactor, host, authPort, settings, factory, certFile, keyFile, caFile,
                 authenticated=False, bindAddress="", limits=None):
        """
        @param limits: the client's L{Limits} (default: the defaults).
        """
        self.reactor = reactor
        self.limits = limits or Limits()
        self.host = host
        self.authPortNumber = authPort
        self.settings = settings
        self.factory = factory
        self.authenticated = bool(authenticated)
        self.tls = clientOptions(host, certFile, keyFile, caFile, settings.encryptionType)
        self.bindAddress = bindAddress
        self.ready = defer.Deferred()
        self.fatal = defer.Deferred()
        self.fatalError = None
        self.endReason = None  # why the gateway said it ended the session
        self.session = None
        self.protocol = None
        self.auth = None
        self.drops = Counter()
        self.udpPort = None
        self._early = []  # datagrams that arrived before the authentication response

    def connect(self):
        """
        Open the UDP port, then the TLS authentication connection.

        @return: L{ready}.
        """
        family6 = ":" in self.host
        self.udpPort = self.reactor.listenUDP(0, DatagramForwarder(self), interface=self.bindAddress or
                                              ("::" if family6 else ""))
        endpoint = (TCP6ClientEndpoint if family6 else TCP4ClientEndpoint)(self.reactor, self.host,
                                                                            self.authPortNumber)
        factory = Factory.forProtocol(lambda: AuthClientProtocol(self))
        d = endpoint.connect(TLSMemoryBIOFactory(self.tls, True, factory))
        d.addErrback(lambda f: self._authFailed(Vpn041AuthFailed(f"cannot reach the gateway: {f.value}"), None))
        return self.ready

    # -- authentication -------------------------------------------------------

    def _authenticated(self, response, auth):
        if (response.useEncryption, response.authenticated) != (self.settings.useEncryption, self.authenticated):
            return self._authFailed(Vpn041AuthFailed("the gateway's data plane settings differ from ours"), auth)
        self.auth = auth
        host = auth.transport.getPeer().host  # the address we authenticated, not a name to resolve again
        family = 6 if ":" in host else 4
        codec = PacketCodec(response.sessionId, response.sessionKey, response.useEncryption, response.authenticated,
                            family, role=CLIENT)
        self.session = ClientSession(self, codec, (host, response.udpPort))
        self.protocol = self.session.protocol = self.factory.buildProtocol(self.session.getPeer())
        if self.protocol is None:
            return self._authFailed(Vpn041AuthFailed("the client factory returned no protocol"), auth)
        self.protocol.makeConnection(self.session)
        if not self.ready.called:
            self.ready.callback(self.protocol)
        early, self._early = self._early, []
        for data, addr in early:
            self.datagramReceived(data, addr)

    def _authFailed(self, error, auth):
        if auth is not None:
            auth.transport.abortConnection()
        self._stopUDP()
        if not self.ready.called:
            self.ready.errback(error)

    def _authLost(self, reason):
        if self.session is None:
            if not self.ready.called:
                self._authFailed(Vpn041AuthFailed(f"the authentication failed: {reason.value}"), None)
            return
        why = self.endReason or "no reason given"
        self.close("gateway-closed", SessionClosed("gateway-closed", f"the gateway ended the session ({why})"))

    # -- the data plane ---------------------------------------------------------

    def sendDatagram(self, datagram):
        try:
            self.udpPort.socket.sendto(datagram, self.session.gatewayAddress)
        except OSError:
            self.drops["send-error"] += 1

    def datagramReceived(self, data, addr):
        if self.session is None and self.fatalError is None and len(self._early) < MAX_EARLY:
            # a push sent as the session opened can overtake the TLS response
            self._early.append((data, addr))
            return
        if self.session is None or not self.session.connected:
            self.drops["no-session"] += 1
            return
        try:
            sessionId, nonce, body = parseHeader(data)
        except MalformedPacket:
            self.drops["truncated"] += 1
            return
        if sessionId != self.session.sessionId:
            self.drops["unknown-session"] += 1
            return
        if not self.session.isFrom(addr):
            self.drops["wrong-address"] += 1  # only the gateway's address speaks for the gateway
            return
        try:
            payload = self.session.receive(nonce, body)
        except NonceRefused as e:
            self.drops[e.reason] += 1  # before any decryption: never the spec's crash
            return
        except DecryptFailure as e:
            if self.authenticated:
                self.drops["bad-tag"] += 1  # proves nothing about the sender: never the crash
                return
            return self._fatal(e, addr)
        self.protocol.dataReceived(payload)

    def _fatal(self, error, addr):
        """
        Spec 041: log a critical error once and stop hard.
        """
        self.fatalError = Vpn041Fatal(f"a datagram from {addr[0]}:{addr[1]} does not decrypt ({error}); "
                                      "the vpn041 client stops")
        log.critical("vpn041: {error}", error=self.fatalError)
        self.close("fatal", self.fatalError)
        self.fatal.callback(self.fatalError)

    def close(self, reason, error=None):
        """
        End the session: the authentication connection and the UDP port close.
        """
        def teardown():
            self.auth.transport.loseConnection()
            self._stopUDP()

        if self.session is not None:
            self.session.end(reason, teardown, error)

    def _stopUDP(self):
        if self.udpPort is not None:
            port, self.udpPort = self.udpPort, None
            port.stopListening()


def connectGateway(reactor, host, authPort, settings, factory, certFile, keyFile, caFile, authenticated=False,
                   bindAddress="", limits=None):
    """
    Authenticate to a gateway and start a session.

    @param bindAddress: the address the client's UDP socket binds (default: all).
    @param limits: the client's L{Limits} (default: the defaults).
    @return: the L{Vpn041Client}; its C{ready} fires with the protocol.
    """
    client = Vpn041Client(reactor, host, authPort, settings, factory, certFile, keyFile, caFile, authenticated,
                          bindAddress, limits)
    client.connect()
    return client
