# -*- test-case-name: sudp_test.stream.test_endpoints -*-
"""
sframe endpoints: wrap any stream endpoint. Their string forms
(C{sframe:key=server.key:endpoint=tcp\\:9001}) are parsed in
L{sudp.parsers}.

The handshake is a plug-in object (L{sudp.interfaces.IHandshake}) the
endpoint is given; None: sudp/1's.
"""

from twisted.internet import defer
from twisted.internet.interfaces import IStreamClientEndpoint, IStreamServerEndpoint
from zope.interface import implementer

from sudp.stream.handshake import StreamConfig
from sudp.stream.listener import LimitedListenerFactory
from sudp.stream.protocol import SFrameFactory


@implementer(IStreamServerEndpoint)
class SFrameServerEndpoint:
    """
    An sframe server on top of any stream server endpoint.
    """

    def __init__(self, reactor, inner, identity, config=None, authorizedKeys=None, handshake=None):
        """
        @param handshake: the L{sudp.interfaces.IHandshake} whose key
            exchange to run (C{identity} is the key it signs with), or None
            for sudp/1's.
        """
        self._reactor = reactor
        self._inner = inner
        self._identity = identity
        self._config = config or StreamConfig()
        self._authorizedKeys = authorizedKeys
        self._handshake = handshake

    def listen(self, factory):
        """
        @return: the inner endpoint's listening port, serving C{factory}'s
            protocols over sframe.
        """
        exchanges = keyExchanges(self._handshake, False, self._identity, self._config)
        framing = SFrameFactory(factory, self._config, self._reactor, exchanges,
                                authorizedKeys=self._authorizedKeys, isClient=False)
        limited = LimitedListenerFactory(framing, self._config, self._reactor)
        framing.connectionLog = limited.connectionLog
        return self._inner.listen(limited)


@implementer(IStreamClientEndpoint)
class SFrameClientEndpoint:
    """
    An sframe client on top of any stream client endpoint; L{connect} fires
    with the application protocol once the server proved its key.
    """

    def __init__(self, reactor, inner, serverKey, config=None, identity=None, handshake=None):
        """
        @param handshake: the L{sudp.interfaces.IHandshake} whose key
            exchange to run (C{identity} is then the client's key for it,
            and C{serverKey} is unused: the handshake's trusted keys
            decide), or None for sudp/1's.
        """
        self._reactor = reactor
        self._inner = inner
        self._serverKey = serverKey
        self._config = config or StreamConfig()
        self._identity = identity
        self._handshake = handshake

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
        exchanges = keyExchanges(self._handshake, True, self._identity, self._config, self._serverKey)
        wrapping = SFrameFactory(factory, self._config, self._reactor, exchanges, ready=ready, isClient=True)
        connecting = self._inner.connect(wrapping)
        state["connecting"] = connecting

        def connected(wrapper):
            state["wrapper"] = wrapper

        def failed(f):
            if not ready.called:
                ready.errback(f)

        connecting.addCallbacks(connected, failed)
        return ready


def keyExchanges(handshake, isClient, identity, config, serverKeys=()):
    """
    @param handshake: an L{sudp.interfaces.IHandshake}, or None for sudp/1's
        with C{serverKeys} pinned (a client).
    @return: a zero-argument callable giving a fresh
        C{IStreamKeyExchange} for each connection.
    """
    if handshake is None:
        from sudp.stream.handshake import ClientKeyExchange, ServerKeyExchange

        if isClient:
            return lambda: ClientKeyExchange(serverKeys, config, identity=identity)
        return lambda: ServerKeyExchange(identity, config)
    return lambda: handshake.streamKeyExchange(isClient, identity, config)

