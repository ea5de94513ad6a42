"""
sframe endpoints: wrap any stream endpoint. ::

  sframe:key=server.key:endpoint=tcp\\:9001
  sframe:serverKey=ed25519-...:endpoint=tcp\\:127.0.0.1\\:9001

Options: C{suites=aes-256-ctr-sha256,chacha20-poly1305},
C{maxFramePayload=65536}, C{frameTimeout=30}, C{handshakeTimeout=10}; a
server takes C{authorizedKeys=FILE}, a client C{key=FILE}.
"""

from twisted.internet import defer
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.internet.interfaces import IStreamClientEndpoint, IStreamServerEndpoint
from zope.interface import implementer

from sudp.errors import ConfigurationError
from sudp.options import checkNames, configFromOptions, optionNames, rejectGossip6Only
from sudp.keys import loadAuthorizedKeys
from sudp.stream.handshake import StreamConfig, parseStreamSuites
from sudp.stream.listener import LimitedListenerFactory
from sudp.stream.protocol import SFrameFactory


@implementer(IStreamServerEndpoint)
class SFrameServerEndpoint:
    """
    An sframe server on top of any stream server endpoint.
    """

    def __init__(self, reactor, inner, identity, config=None, authorizedKeys=None, gossip6=None):
        """
        @param gossip6: a L{sudp.gossip6.stream.Gossip6StreamSetup} to run the
            gossip6 key exchange (C{identity} is then an RSA identity).
        """
        self._reactor = reactor
        self._inner = inner
        self._identity = identity
        self._config = config or StreamConfig()
        self._authorizedKeys = authorizedKeys
        self._gossip6 = gossip6

    def listen(self, factory):
        """
        @return: the inner endpoint's listening port, serving C{factory}'s
            protocols over sframe.
        """
        framing = SFrameFactory(factory, self._config, self._reactor, identity=self._identity,
                                authorizedKeys=self._authorizedKeys, gossip6=self._gossip6, isClient=False)
        limited = LimitedListenerFactory(framing, self._config, self._reactor)
        framing.connectionLog = limited.connectionLog
        return self._inner.listen(limited)


@implementer(IStreamClientEndpoint)
class SFrameClientEndpoint:
    """
    An sframe client on top of any stream client endpoint; L{connect} fires
    with the application protocol once the server proved its key.
    """

    def __init__(self, reactor, inner, serverKey, config=None, identity=None, gossip6=None):
        """
        @param gossip6: a L{sudp.gossip6.stream.Gossip6StreamSetup} to run the
            gossip6 key exchange (C{identity} is then the client's RSA
            identity, and C{serverKey} is unused: the trusted keys decide).
        """
        self._reactor = reactor
        self._inner = inner
        self._serverKey = serverKey
        self._config = config or StreamConfig()
        self._identity = identity
        self._gossip6 = gossip6

    def connect(self, factory):
        state = {}

        def cancel(d):
            connecting = state.get("connecting")
            if connecting is not None and not connecting.called:
                connecting.cancel()
            wrapper = state.get("wrapper")
            if wrapper is not None:
                wrapper.transport.abortConnection()

        ready = defer.Deferred(cancel)
        wrapping = SFrameFactory(factory, self._config, self._reactor, identity=self._identity,
                                 serverKey=self._serverKey, ready=ready, gossip6=self._gossip6, isClient=True)
        connecting = self._inner.connect(wrapping)
        state["connecting"] = connecting

        def connected(wrapper):
            state["wrapper"] = wrapper

        def failed(f):
            if not ready.called:
                ready.errback(f)

        connecting.addCallbacks(connected, failed)
        return ready


def _config(options):
    return configFromOptions(StreamConfig, options, parseStreamSuites, "sframe")


SERVER_OPTIONS = frozenset({"key", "endpoint", "authorizedKeys", "handshake", "createKey"})
CLIENT_OPTIONS = frozenset({"serverKey", "serverKeys", "endpoint", "key", "handshake", "createKey"})


def _checkNames(options, own, what):
    from sudp.gossip6.config import OPTION_NAMES as GOSSIP6_NAMES

    checkNames(options, own | optionNames(StreamConfig) | set(GOSSIP6_NAMES), what)


def _inner(parse, reactor, description):
    """
    Parse the stream endpoint sframe wraps.

    @raise ConfigurationError: whatever Twisted's parser or the endpoint
        class refuses, named as this option's.
    """
    try:
        return parse(reactor, description)
    except Exception as e:
        raise ConfigurationError(f"sframe: endpoint={description!r}: {type(e).__name__}: {e}") from e


def parseServer(reactor, /, *args, **kwargs):
    """
    C{sframe:key=FILE:endpoint=INNER[:authorizedKeys=FILE][:option=value...]}
    """
    from sudp.udp.endpoints import identityFromFile, popCreateKey

    options = dict(kwargs)
    _checkNames(options, SERVER_OPTIONS, "sframe server")
    if args:
        raise ConfigurationError(f"sframe server: options only (key=, endpoint=), got {args}")
    keyFile = options.pop("key", None)
    inner = options.pop("endpoint", None)
    if not keyFile or not inner:
        raise ConfigurationError(r"sframe server: give key=FILE and endpoint=..., e.g. sframe:key=server.key:endpoint=tcp\:9001")
    authorized = options.pop("authorizedKeys", None)
    gossip6 = _handshake(options, "sframe server", authorized=authorized)
    create = popCreateKey(options, "sframe server")
    config = _config(options)
    rejectGossip6Only(options, "sframe server")
    return SFrameServerEndpoint(
        reactor, _inner(serverFromString, reactor, inner), identityFromFile(keyFile, gossip6, create), config,
        authorizedKeys=None if authorized is None else loadAuthorizedKeys(authorized), gossip6=gossip6,
    )


def _handshake(options, what, authorized=None, serverKey=None):
    from sudp.gossip6.config import handshakeFromOptions
    from sudp.gossip6.stream import Gossip6StreamSetup

    return handshakeFromOptions(options, what, Gossip6StreamSetup, authorized, serverKey)


def parseClient(reactor, /, *args, **kwargs):
    """
    C{sframe:serverKey=KEY:endpoint=INNER[:key=FILE][:option=value...]}
    """
    from sudp.udp.endpoints import clientTrust, identityFromFile, popCreateKey

    options = dict(kwargs)
    _checkNames(options, CLIENT_OPTIONS, "sframe client")
    if args:
        raise ConfigurationError(f"sframe client: options only (serverKey=, endpoint=), got {args}")
    inner = options.pop("endpoint", None)
    keyFile = options.pop("key", None)
    gossip6, pinned = clientTrust(options, "sframe client", _handshake)
    if not inner or (gossip6 is None and not pinned):
        raise ConfigurationError(
            r"sframe client: give serverKey=ed25519-... and endpoint=..., e.g. endpoint=tcp\:127.0.0.1\:9001"
        )
    if gossip6 is not None and keyFile is None:
        raise ConfigurationError("sframe client (gossip6): give key=FILE, the client's RSA key")
    create = popCreateKey(options, "sframe client")
    config = _config(options)
    rejectGossip6Only(options, "sframe client")
    return SFrameClientEndpoint(
        reactor, _inner(clientFromString, reactor, inner), None if gossip6 else pinned, config,
        identity=identityFromFile(keyFile, gossip6, create), gossip6=gossip6,
    )
