# -*- test-case-name: sudp_test.vpn041.test_gateway -*-
"""
The vpn041 gateway (server): the TLS authentication listener, the UDP
data-plane port and the sessions between them.

Each authenticated client gets a session: an id (1-255, drawn at random
among the free ones), a random key, and an application protocol from the
factory, whose transport pushes datagrams to the client. Spec 041's failure
rule for the server: a datagram from the session's own address that does
not decrypt logs one error, ends that session (its authentication
connection is closed, its id freed), and nothing more is logged for that
client: later datagrams for the ended session are counted drops. Datagrams
from other addresses, refused nonces and, in the authenticated variant,
tags that fail are counted drops that never end a session.
"""

import os
from collections import Counter
from dataclasses import replace

from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver
from twisted.protocols.tls import TLSMemoryBIOFactory

from sudp.errors import MalformedPacket
from sudp.eventlog import ConnectionLog
from sudp.stream.listener import LimitedListenerFactory, defaultMaxConnections
from sudp.vpn041.auth import (
    MAX_LINE,
    MAX_SESSIONS,
    SessionIds,
    Vpn041AuthFailed,
    decodeRequest,
    encodeRefusal,
    encodeResponse,
    encodeSessionEnd,
)
from sudp.vpn041.dataplane import GATEWAY, DecryptFailure, PacketCodec, parseHeader
from sudp.vpn041.nonces import NonceRefused
from sudp.vpn041.settings import Limits
from sudp.vpn041.tls import serverOptions
from sudp.vpn041.transport import DatagramForwarder, PushTransport, Vpn041Address

log = Logger()


class GatewaySession(PushTransport):
    """
    One client's session, and the transport of its application protocol:
    C{write(payload)} pushes one datagram to the client.
    """

    def __init__(self, gateway, sessionId, sessionKey, clientName, pushAddress, authConnection, family):
        s = gateway.settings
        PushTransport.__init__(self, PacketCodec(sessionId, sessionKey, s.useEncryption, gateway.authenticated,
                                                 family, role=GATEWAY), log, pushAddress, gateway.reactor,
                               gateway.limits)
        self.gateway = gateway
        self.clientName = clientName
        self.authConnection = authConnection
        self.anyPeerPort = gateway.natPorts

    @property
    def pushAddress(self):
        """
        Where pushes go, and where the session's datagrams must come from:
        the address the client authenticated from, and the UDP port it
        declared inside TLS.
        """
        return self.peerAddress

    def _push(self, datagram):
        self.gateway.sendDatagram(datagram, self.pushAddress)

    def loseConnection(self):
        self.gateway.endSession(self, "closed")

    def getPeer(self):
        return Vpn041Address(self.sessionId, self.clientName, *self.pushAddress)

    def getHost(self):
        return self.gateway.udpPort.getHost()


class AuthServerProtocol(LineOnlyReceiver):
    """
    One client's authentication connection (inside TLS): a request, a
    response, then it stays open for the life of the session.
    """

    delimiter = b"\n"
    MAX_LENGTH = MAX_LINE

    def __init__(self, gateway):
        self.gateway = gateway
        self.session = None
        self.deadline = None

    def connectionMade(self):
        """
        Start the handshake deadline: TLS and the request must be done
        within C{limits.handshakeTimeout}.
        """
        self.deadline = self.gateway.reactor.callLater(self.gateway.limits.handshakeTimeout, self.timedOut)

    def timedOut(self):
        """
        The deadline passed before a request: the connection is closed.
        """
        self.deadline = None
        self.gateway.counters["auth-timeout"] += 1
        self.transport.abortConnection()

    def _stopDeadline(self):
        if self.deadline is not None and self.deadline.active():
            self.deadline.cancel()
        self.deadline = None

    def lineReceived(self, line):
        if self.session is not None:
            return  # nothing more is said on this connection
        self._stopDeadline()
        try:
            udpPort, useEncryption, authenticated = decodeRequest(line)
        except Vpn041AuthFailed as e:
            return self.refuse(str(e))
        self.session = self.gateway.openSession(self, udpPort, useEncryption, authenticated)

    def refuse(self, reason):
        log.warn("vpn041: authentication refused for {client}: {reason}", client=self.clientName(), reason=reason)
        self.gateway.counters["auth-refused"] += 1
        self.sendLine(encodeRefusal(reason))
        self.transport.loseConnection()

    def lineLengthExceeded(self, line):
        self.refuse("request too long")

    def clientName(self):
        """
        @return: the subject of the client's verified certificate.
        """
        peer = self.transport.getPeerCertificate() if hasattr(self.transport, "getPeerCertificate") else None
        if peer is None:
            return "?"
        return ",".join(f"{k.decode()}={v.decode()}" for k, v in peer.get_subject().get_components())

    def connectionLost(self, reason):
        self._stopDeadline()
        if self.session is not None:
            self.gateway.endSession(self.session, "auth-connection-closed")


class Gateway:
    """
    A vpn041 gateway: L{listen} starts the authentication listener and the
    UDP port; sessions are kept by id.

    @ivar drops: data-plane datagrams dropped, by reason.
    @ivar counters: sessions opened and ended, refusals.
    """

    def __init__(self, reactor, settings, factory, certFile, keyFile, caFile, authenticated=False,
                 random=os.urandom, limits=None, natPorts=False):
        """
        @param settings: the gateway's L{sudp.vpn041.settings.AppSettings}.
        @param factory: builds each session's application protocol.
        @param authenticated: the authenticated variant of the data plane (a
            16-byte tag; not the spec's).
        @param limits: the gateway's L{Limits} (default: the defaults).
        @param natPorts: take a session's datagrams from any UDP port of the
            address its client authenticated from (a NAT may change the
            port); in the authenticated variant, pushes then go to the port
            of the latest datagram that authenticated with a fresh nonce.
        """
        self.natPorts = bool(natPorts)
        self.reactor = reactor
        self.limits = limits or Limits()
        self.settings = settings
        self.factory = factory
        self.authenticated = bool(authenticated)
        self.random = random
        self.tls = serverOptions(certFile, keyFile, caFile, settings.encryptionType)
        self.sessions = {}
        self.ids = SessionIds()
        self.drops = Counter()
        self.counters = Counter()
        self.udpPort = self.authPort = None
        self.listenerFactory = None
        self._socket = None

    def listen(self, authEndpoint, udpPortNumber, interface=""):
        """
        @param authEndpoint: a stream server endpoint (e.g. TCP) for the
            authentication plane; TLS is added here.
        @return: a Deferred firing with C{(authPort, udpPort)}.
        """
        if not self.authenticated:
            log.warn("vpn041: the UDP data plane has NO INTEGRITY PROTECTION (spec 041, by design): anyone on "
                     "the path can alter or forge datagrams; see docs/vpn041.md (the authenticated variant "
                     "adds a tag)")
        try:
            self.udpPort = self.reactor.listenUDP(udpPortNumber, DatagramForwarder(self), interface=interface)
        except CannotListenError:
            return defer.fail()
        self._socket = self.udpPort.socket
        factory = Factory.forProtocol(lambda: AuthServerProtocol(self))
        limits = self.limits
        if not limits.maxConnections:
            limits = replace(limits, maxConnections=max(16, defaultMaxConnections() - MAX_SESSIONS))
        self.listenerFactory = LimitedListenerFactory(TLSMemoryBIOFactory(self.tls, False, factory), limits,
                                                      self.reactor, ConnectionLog(self.reactor, transport="vpn041"))
        d = authEndpoint.listen(self.listenerFactory)

        def listening(authPort):
            self.authPort = authPort
            self.factory.doStart()
            return authPort, self.udpPort

        return d.addCallback(listening)

    def stopListening(self):
        """
        End every session and close both ports.
        """
        for session in list(self.sessions.values()):
            self.endSession(session, "shutdown")
        self.factory.doStop()
        return defer.gatherResults([defer.maybeDeferred(p.stopListening) for p in (self.authPort, self.udpPort)
                                    if p is not None])

    # -- sessions -------------------------------------------------------------

    def openSession(self, auth, udpPort, useEncryption, authenticated):
        """
        Answer an authentication request: a session, or a refusal.
        """
        if useEncryption != self.settings.useEncryption or authenticated != self.authenticated:
            return auth.refuse(f"the data plane differs: the gateway has useEncryption={self.settings.useEncryption}"
                               f" and authenticated={self.authenticated}")
        sessionId = self.ids.allocate()
        if sessionId is None:
            return auth.refuse("all 255 session ids are taken")
        key = self.random(32)
        host = auth.transport.getPeer().host
        family = 6 if ":" in host else 4
        session = GatewaySession(self, sessionId, key, auth.clientName(), (host, udpPort), auth, family)
        protocol = self.factory.buildProtocol(session.getPeer())
        if protocol is None:
            self.ids.release(sessionId)
            return auth.refuse("the gateway's application refused the session")
        self.sessions[sessionId] = session
        session.protocol = protocol
        # authenticated: its connection no longer counts against the listener's
        # caps (the 255 sessions are allowed for apart) and is never evicted
        self.listenerFactory.slots.remove(auth.transport.transport)
        self.counters["sessions-opened"] += 1
        auth.sendLine(encodeResponse(sessionId, key, self.udpPort.getHost().port, self.settings.useEncryption,
                                     self.authenticated))
        log.info("vpn041: session {id} for {client}", id=sessionId, client=session.clientName)
        protocol.makeConnection(session)
        return session

    def endSession(self, session, reason):
        """
        End C{session}: its id is freed, its auth connection closed, its
        protocol told.
        """
        def teardown():
            if self.sessions.get(session.sessionId) is session:
                del self.sessions[session.sessionId]
                self.ids.release(session.sessionId)
            self.counters["sessions-ended"] += 1
            if reason != "auth-connection-closed":
                session.authConnection.sendLine(encodeSessionEnd(reason))  # the client can say why
            session.authConnection.transport.loseConnection()

        session.end(reason, teardown)

    # -- the data plane -------------------------------------------------------

    def sendDatagram(self, datagram, address):
        try:
            self._socket.sendto(datagram, address)
        except OSError:
            self.counters["send-errors"] += 1  # UDP is lossy

    def datagramReceived(self, data, addr):
        try:
            sessionId, nonce, body = parseHeader(data)
        except MalformedPacket:
            self.drops["truncated"] += 1
            return
        session = self.sessions.get(sessionId)
        if session is None:
            # an ended session, a forged id, or 0: counted, never logged
            self.drops["unknown-session"] += 1
            return
        if not session.isFrom(addr):
            # not from the address its client authenticated from: a reflection, a
            # spoofer or an outsider; counted, never logged, never able to end it
            self.drops["wrong-address"] += 1
            return
        try:
            payload = session.receive(nonce, body)
        except NonceRefused as e:
            self.drops[e.reason] += 1  # before any decryption: no padding query, no session end
            return
        except DecryptFailure as e:
            if self.authenticated:
                # a tag that fails proves nothing about the sender: a counted drop,
                # so no one without the key can end a session
                self.drops["bad-tag"] += 1
                return
            self.drops["decrypt-failure"] += 1
            log.error("vpn041: session {id} ({client}): a datagram from {addr} does not decrypt ({error}); "
                      "ending the session", id=sessionId, client=session.clientName, addr=addr, error=e)
            self.endSession(session, "decrypt-failure")
            return
        if self.authenticated and addr[1] != session.pushAddress[1]:
            # natPorts: the datagram authenticated and its nonce was fresh: it is
            # the client's, from the port its NAT gives it now
            session.peerAddress = (session.peerAddress[0], addr[1])
        self.counters["received"] += 1
        try:
            session.protocol.dataReceived(payload)
        except Exception:
            log.failure("vpn041: the application protocol failed in dataReceived; ending its session")
            self.endSession(session, "application-error")

