# -*- test-case-name: sudp_test.udp.test_endpoints -*-
"""
sudp/1 as Twisted stream endpoints: a server on a UDP port, a client to
one. Their string forms (C{sudp:...}) are parsed in L{sudp.parsers}.

The handshake is a plug-in object (L{sudp.interfaces.IHandshake}) the
endpoint is given; None: sudp/1's.
"""

import errno
import socket

from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IStreamClientEndpoint, IStreamServerEndpoint
from zope.interface import implementer

from twisted.internet.posixbase import PosixReactorBase

from sudp.resolve import anyAddressFor, resolveHost

from sudp import speedups
from sudp.udp import batching
from sudp.udp.adapters import ServerAdapter
from sudp.udp.clientadapter import ClientAdapter
from sudp.udp.client import ClientEngine
from sudp.udp.config import Config
from sudp.udp.server import ServerEngine


@implementer(IListeningPort)
class SUDPListeningPort:
    """
    A listening sudp/1 server: one UDP port, many sessions.

    @ivar engine: the L{ServerEngine} (its C{stats()} has the counters).
    """

    def __init__(self, udpPort, adapter):
        self._port = udpPort
        self.adapter = adapter
        self.engine = adapter.engine
        self._stopped = None

    def startListening(self):
        """
        The port listens from creation; this is a no-op.
        """

    def stopListening(self):
        """
        Close every session (telling each client), then the UDP port.
        """
        if self._stopped is None:
            self.adapter.shutdown()
            self._stopped = defer.maybeDeferred(self._port.stopListening)
            self._stopped.addBoth(lambda r: (self.adapter.factory.doStop(), r)[1])
        # each caller gets its own Deferred, so no caller sees another's results
        mine = defer.Deferred()
        self._stopped.addBoth(lambda r: (mine.callback(None), r)[1])
        return mine

    loseConnection = stopListening

    def getHost(self):
        return self._port.getHost()


@implementer(IStreamServerEndpoint)
class SUDPServerEndpoint:
    """
    A sudp/1 server on a UDP port. Each authenticated session gets a
    protocol from the factory passed to L{listen}.
    """

    def __init__(self, reactor, port, identity, config=None, interface="", authorizedKeys=None,
                 cookieSecret=None, handshake=None, nextIdentity=None):
        """
        @param interface: the address to listen on; C{""} (the default):
            every address of both families, IPv4 and IPv6.
        @param handshake: the L{sudp.interfaces.IHandshake} to answer
            (C{identity} is the key it signs with), or None for sudp/1's.
        @param nextIdentity: while rolling the server's key, the key it will
            use next, announced to every client (L{ServerEngine}).
        """
        self._reactor = reactor
        self._port = port
        self.nextIdentity = nextIdentity
        self._identity = identity
        self._config = config or Config()
        self._interface = interface
        self._authorizedKeys = authorizedKeys
        self._cookieSecret = cookieSecret
        self._handshake = handshake

    @property
    def portNumber(self):
        """
        The UDP port number this endpoint listens on (0: any free one).
        """
        return self._port

    def listen(self, factory):
        """
        @return: a C{Deferred} firing with a L{SUDPListeningPort}.
        """
        def start():
            half = None if self._handshake is None else self._handshake.datagramServer(self._identity)
            engine = ServerEngine(self._identity, self._config, self._authorizedKeys, cookieSecret=self._cookieSecret,
                                  nextIdentity=self.nextIdentity, handshake=half)
            adapter = ServerAdapter(engine, factory, self._reactor)
            udpPort = listenServerUDP(self._reactor, self._port, adapter, self._interface, self._config,
                                      self._config.recvBatch)
            _bound(engine, udpPort)
            factory.doStart()
            return SUDPListeningPort(udpPort, adapter)

        return defer.execute(start)


@implementer(IStreamClientEndpoint)
class SUDPClientEndpoint:
    """
    A sudp/1 client: L{connect} fires with the application protocol once the
    server has proven C{serverKey} and confirmed the session.
    """

    def __init__(self, reactor, host, port, serverKey, config=None, identity=None, bindAddress="", handshake=None):
        """
        @param handshake: the L{sudp.interfaces.IHandshake} to run
            (C{identity} is then the client's key for it, and C{serverKey}
            is unused: the handshake's trusted keys decide), or None for
            sudp/1's.
        """
        self._reactor = reactor
        self._host = host
        self._port = port
        self._serverKey = serverKey
        self._config = config or Config()
        self._identity = identity
        self._bindAddress = bindAddress
        self._handshake = handshake

    def connect(self, factory):
        """
        @return: a C{Deferred} firing with the protocol after the handshake,
            or failing with a L{sudp.errors.HandshakeFailed} (e.g.
            L{sudp.errors.BadServerSignature} for a wrong server key,
            L{sudp.errors.HandshakeTimeout}).
        """
        state = {}

        def cancel(d):
            adapter = state.get("adapter")
            if adapter is not None:
                adapter.ready = None
                adapter.engine.closeSession(adapter.engine.session, self._reactor.seconds())
                adapter.flush()
                adapter._finish()

        ready = defer.Deferred(cancel)

        def resolved(ip):
            if ready.called:  # cancelled while the name was being resolved
                return
            half = None if self._handshake is None else self._handshake.datagramClient(self._identity)
            engine = ClientEngine(self._serverKey, (ip, self._port), self._config, identity=self._identity,
                                  handshake=half)
            udpPort = None

            def onEnd():
                if udpPort is not None:
                    udpPort.stopListening()

            adapter = ClientAdapter(engine, factory, self._reactor, ready, onEnd)
            state["adapter"] = adapter
            udpPort = _listenUDP(self._reactor, 0, adapter, self._bindAddress or anyAddressFor(ip), self._config,
                                 min(self._config.recvBatch, CLIENT_RECV_BATCH))
            udpPort.connect(ip, self._port)  # the kernel then reports ICMP port unreachable
            _bound(engine, udpPort)
            adapter.start()

        def failed(f):
            if not ready.called:
                ready.errback(f)

        d = resolveHost(self._reactor, self._host)
        d.addCallback(resolved)
        d.addErrback(failed)
        return ready


CLIENT_RECV_BATCH = 4  # a client's socket hears one server: small buffers


def _bound(engine, udpPort):
    """
    Tell the engine (and so its handshake) the address its socket is bound to.
    """
    host = udpPort.getHost()
    engine.bound((host.host, host.port))


def listenServerUDP(reactor, port, adapter, interface, config, batch):
    """
    A server's UDP port: on C{interface}, or with none given on every
    address of both families (one dual-stack IPv6 socket; IPv4 only where
    the system has no IPv6).
    """
    if interface or not socket.has_ipv6:
        return _listenUDP(reactor, port, adapter, interface, config, batch)
    try:
        return _listenUDP(reactor, port, adapter, "::", config, batch)
    except CannotListenError as e:
        if getattr(e.socketError, "errno", None) not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
            raise
    return _listenUDP(reactor, port, adapter, "", config, batch)


def _listenUDP(reactor, port, adapter, interface, config, batch):
    """
    Listen with a batching, GRO-capable port on a POSIX reactor (falling
    back to plain reads where the kernel refuses), else with the reactor's own.
    """
    size = config.maxDatagramSize + 1  # one more, so an oversize datagram is seen
    if isinstance(reactor, PosixReactorBase) and (config.gro or speedups.batchedIO):
        udpPort = batching.listenUDP(reactor, port, adapter, interface, size, config.gro, batch)
    else:
        udpPort = reactor.listenUDP(port, adapter, interface=interface, maxPacketSize=size)
    if config.recvBuffer:
        udpPort.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, config.recvBuffer)
    return udpPort
