"""
sudp/1 as Twisted stream endpoints, and their string forms. ::

  serverFromString(reactor, "sudp:9000:key=server.key")
  clientFromString(reactor, "sudp:host=127.0.0.1:port=9000:serverKey=ed25519-...")

Every option of L{sudp.udp.config.Config} can be given by name
(C{maxSessions=500}, C{ordering=strict}, C{suites=chacha20-poly1305}, ...);
an unknown option or a bad value is a L{ConfigurationError} when the string is
parsed, not at the first packet.
"""

import errno
import os
import socket

from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IStreamClientEndpoint, IStreamServerEndpoint
from zope.interface import implementer

from sudp import options as options_
from sudp.errors import ConfigurationError, KeyFileError, SUDPError
from sudp.handshake import pinnedKeys
from sudp.resolve import anyAddressFor, resolveHost
from sudp.keys import PublicKey, loadAuthorizedKeys, loadIdentity, loadOrCreateIdentity, loadPublicKey
from sudp.suites import parseSuiteList
from twisted.internet.posixbase import PosixReactorBase

from sudp import speedups
from sudp.udp import batching
from sudp.udp.adapters import ClientAdapter, ServerAdapter
from sudp.udp.client import ClientEngine
from sudp.udp.config import OPTION_NAMES, Config
from sudp.udp.server import ServerEngine

def configFromOptions(options):
    """
    Build a L{Config} from string options (as in an endpoint string); the
    options used are removed from C{options}.

    @raise ConfigurationError: on a bad value.
    """
    return options_.configFromOptions(Config, options, parseSuiteList, "sudp")


SERVER_OPTIONS = frozenset({"port", "key", "interface", "authorizedKeys", "handshake", "createKey", "nextKey"})
CLIENT_OPTIONS = frozenset({"host", "port", "serverKey", "serverKeys", "key", "bindAddress", "timeout", "handshake",
                            "createKey"})


def _checkNames(options, own, what):
    from sudp.gossip6.config import OPTION_NAMES as GOSSIP6_NAMES

    options_.checkNames(options, own | OPTION_NAMES | set(GOSSIP6_NAMES), what)


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
                 cookieSecret=None, gossip6=None, nextIdentity=None):
        """
        @param interface: the address to listen on; C{""} (the default):
            every address of both families, IPv4 and IPv6.
        @param gossip6: a L{sudp.gossip6.udp.Gossip6Setup} to run the gossip6
            handshake (C{identity} is then an L{sudp.rsakeys.RSAIdentity}),
            or None for sudp/1's.
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
        self._gossip6 = gossip6

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
            if self._gossip6 is None:
                engine = ServerEngine(
                    self._identity, self._config, self._authorizedKeys, cookieSecret=self._cookieSecret,
                    nextIdentity=self.nextIdentity,
                )
            else:
                engine = self._gossip6.serverEngine(self._identity, self._config, self._cookieSecret)
            adapter = ServerAdapter(engine, factory, self._reactor)
            udpPort = listenServerUDP(self._reactor, self._port, adapter, self._interface, self._config,
                                      self._config.recvBatch)
            if self._gossip6 is not None:
                self._gossip6.bound(engine, udpPort)
            factory.doStart()
            return SUDPListeningPort(udpPort, adapter)

        return defer.execute(start)


@implementer(IStreamClientEndpoint)
class SUDPClientEndpoint:
    """
    A sudp/1 client: L{connect} fires with the application protocol once the
    server has proven C{serverKey} and confirmed the session.
    """

    def __init__(self, reactor, host, port, serverKey, config=None, identity=None, bindAddress="", gossip6=None):
        """
        @param gossip6: a L{sudp.gossip6.udp.Gossip6Setup} to run the gossip6
            handshake (C{identity} is then the client's
            L{sudp.rsakeys.RSAIdentity} and C{serverKey} is unused: the
            setup's trusted keys decide), or None for sudp/1's.
        """
        self._reactor = reactor
        self._host = host
        self._port = port
        self._serverKey = serverKey
        self._config = config or Config()
        self._identity = identity
        self._bindAddress = bindAddress
        self._gossip6 = gossip6

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
                adapter.engine.close(self._reactor.seconds())
                adapter.flush()
                adapter._finish()

        ready = defer.Deferred(cancel)

        def resolved(ip):
            if ready.called:  # cancelled while the name was being resolved
                return
            if self._gossip6 is None:
                engine = ClientEngine(self._serverKey, (ip, self._port), self._config, identity=self._identity)
            else:
                engine = self._gossip6.clientEngine(self._identity, (ip, self._port), self._config)
            udpPort = None

            def onEnd():
                if udpPort is not None:
                    udpPort.stopListening()

            adapter = ClientAdapter(engine, factory, self._reactor, ready, onEnd)
            state["adapter"] = adapter
            udpPort = _listenUDP(self._reactor, 0, adapter, self._bindAddress or anyAddressFor(ip), self._config,
                                 min(self._config.recvBatch, CLIENT_RECV_BATCH))
            udpPort.connect(ip, self._port)  # the kernel then reports ICMP port unreachable
            if self._gossip6 is not None:
                self._gossip6.bound(engine, udpPort)
            adapter.start()

        def failed(f):
            if not ready.called:
                ready.errback(f)

        d = resolveHost(self._reactor, self._host)
        d.addCallback(resolved)
        d.addErrback(failed)
        return ready


CLIENT_RECV_BATCH = 4  # a client's socket hears one server: small buffers


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


# -- string parsers -------------------------------------------------------------


def parseServer(reactor, /, *args, **kwargs):
    """
    C{sudp:PORT:key=FILE[:interface=ADDR][:authorizedKeys=FILE][:nextKey=FILE][:option=value...]}

    C{nextKey}: while rolling the server's key, the key it will use next,
    announced to every client with proof (docs/keys.md, "Rolling a
    server's key").

    @return: a L{SUDPServerEndpoint}.
    """
    options = dict(kwargs)
    _checkNames(options, SERVER_OPTIONS, "sudp server")
    if len(args) > 1:
        raise ConfigurationError(f"sudp server: one positional argument (the port), got {args}")
    port = options.pop("port", args[0] if args else None)
    if port is None:
        raise ConfigurationError("sudp server: give a port, e.g. sudp:9000:key=server.key")
    keyFile = options.pop("key", None)
    if keyFile is None:
        raise ConfigurationError("sudp server: give the server key file, e.g. sudp:9000:key=server.key")
    interface = options.pop("interface", "")
    authorized = options.pop("authorizedKeys", None)
    nextKey = options.pop("nextKey", None)
    gossip6 = _handshake(options, "sudp server", authorized=authorized)
    if nextKey is not None and gossip6 is not None:
        raise ConfigurationError("sudp server: nextKey= is for the sudp/1 handshake (gossip6 peers trust a key file)")
    create = popCreateKey(options, "sudp server")
    config = configFromOptions(options)
    options_.rejectGossip6Only(options, "sudp server")
    return SUDPServerEndpoint(
        reactor,
        _portNumber(port, "server"),
        identityFromFile(keyFile, gossip6, create),
        config,
        interface=interface,
        authorizedKeys=None if authorized is None else loadAuthorizedKeys(authorized),
        gossip6=gossip6,
        nextIdentity=identityFromFile(nextKey, None),
    )


def _handshake(options, what, authorized=None, serverKey=None):
    from sudp.gossip6.config import handshakeFromOptions
    from sudp.gossip6.udp import Gossip6Setup

    return handshakeFromOptions(options, what, Gossip6Setup, authorized, serverKey)


def identityFromFile(keyFile, gossip6, create=False):
    """
    @param create: create the key file (0600, with its C{.pub}) if it does
        not exist (the endpoint option C{createKey=true}).
    @return: the identity in C{keyFile}: RSA for gossip6, else Ed25519;
        None without a file.
    @raise KeyFileError: for a missing file (without C{create}), saying
        how to make one.
    """
    if keyFile is None:
        return None
    from sudp.rsakeys import loadOrCreateRSAIdentity, loadRSAIdentity

    if create:
        return (loadOrCreateIdentity if gossip6 is None else loadOrCreateRSAIdentity)(keyFile)[0]
    if not os.path.lexists(keyFile):
        kind = "" if gossip6 is None else "--type rsa "
        raise KeyFileError(f"{keyFile}: no such key file; create it with `sudp keygen {kind}{keyFile}`, "
                           "or add createKey=true to the endpoint string")
    return (loadIdentity if gossip6 is None else loadRSAIdentity)(keyFile)


def popCreateKey(options, what):
    """
    Take the C{createKey} option out of C{options}.

    @return: its value, False if absent.
    @raise ConfigurationError: if it is not a boolean.
    """
    text = options.pop("createKey", "false")
    try:
        return options_.convertBool(text)
    except ValueError:
        raise ConfigurationError(f"{what} option createKey={text!r}: give true or false") from None


def parseClient(reactor, /, *args, **kwargs):
    """
    C{sudp:host=HOST:port=PORT:serverKey=KEY[,KEY...][:serverKeys=FILE][:key=FILE][:bindAddress=ADDR]
    [:option=value...]} (or C{sudp:HOST:PORT:serverKey=KEY}). Each C{KEY} is
    the text form C{ed25519-...} or a C{.pub} file; the server must prove
    one of them (L{serverKeysFromOptions}).

    @return: a L{SUDPClientEndpoint}.
    """
    options = dict(kwargs)
    _checkNames(options, CLIENT_OPTIONS, "sudp client")
    if len(args) > 2:
        raise ConfigurationError(f"sudp client: at most host and port positionally, got {args}")
    positional = list(args) + [None, None]
    host = options.pop("host", positional[0])
    port = options.pop("port", positional[1])
    if not host or not port:
        raise ConfigurationError("sudp client: give host and port, e.g. sudp:host=127.0.0.1:port=9000:serverKey=...")
    keyFile = options.pop("key", None)
    bindAddress = options.pop("bindAddress", "")
    timeout = options.pop("timeout", None)
    if timeout is not None:
        options["handshakeTimeout"] = timeout
    gossip6, pinned = clientTrust(options, "sudp client", _handshake)
    if gossip6 is None and not pinned:
        raise ConfigurationError("sudp client: give serverKey=ed25519-... (the server's public key) "
                                 "or serverKeys=FILE")
    if gossip6 is not None and keyFile is None:
        raise ConfigurationError("sudp client (gossip6): give key=FILE, the client's RSA key (sudp keygen --type rsa)")
    create = popCreateKey(options, "sudp client")
    config = configFromOptions(options)
    options_.rejectGossip6Only(options, "sudp client")
    identity = identityFromFile(keyFile, gossip6, create)
    return SUDPClientEndpoint(
        reactor,
        host,
        _portNumber(port, "client"),
        None if gossip6 is not None else pinned,
        config,
        identity=identity,
        bindAddress=bindAddress,
        gossip6=gossip6,
    )


def _portNumber(text, side):
    try:
        number = int(text)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise ConfigurationError(f"sudp {side}: port {text!r} is not a port number (0-65535)")
    return number


def clientTrust(options, what, handshake):
    """
    Take what a client string says about the server it trusts: the gossip6
    handshake and its options (its C{serverKey=} an RSA key), or else the
    pinned Ed25519 keys (L{serverKeysFromOptions}).

    @param handshake: C{(options, what, serverKey=...)} -> the transport's
        gossip6 setup, or None for the sudp/1 handshake.
    @return: C{(gossip6 setup or None, pinned keys)}.
    """
    serverKey = options.get("serverKey")
    if options.get("handshake") == "gossip6":
        options.pop("serverKey", None)
    gossip6 = handshake(options, what, serverKey=serverKey)
    return gossip6, (() if gossip6 is not None else serverKeysFromOptions(options, what))


def serverKeysFromOptions(options, what):
    """
    Take the pinned server keys out of a client string's options:
    C{serverKey=} (one key, C{ed25519-...} or a C{.pub} file, or several
    separated by commas, as while a server rolls its key) and
    C{serverKeys=FILE} (a known-hosts style file: one key per line,
    C{#} comments), either or both.

    @return: a tuple of L{PublicKey}, empty if neither option is given.
    @raise ConfigurationError: naming a key or file that does not load.
    """
    keys = []
    for text in filter(None, (t.strip() for t in options.pop("serverKey", "").split(","))):
        try:
            keys.append(PublicKey.fromText(text) if text.startswith("ed25519-") else loadPublicKey(text))
        except SUDPError as e:
            raise ConfigurationError(f"{what}: serverKey {text!r}: not a public key and not a key file: {e}") from None
    path = options.pop("serverKeys", None)
    if path is not None:
        try:
            found = loadAuthorizedKeys(path)
        except SUDPError as e:
            raise ConfigurationError(f"{what}: serverKeys={path}: {e}") from None
        if not found:
            raise ConfigurationError(f"{what}: serverKeys={path} holds no key")
        keys.extend(found)
    return pinnedKeys(keys)

