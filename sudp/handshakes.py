# -*- test-case-name: sudp_test.test_handshakes -*-
"""
The handshake plug-ins (L{sudp.interfaces.IHandshake}) and how endpoint
strings choose one: C{handshake=sudp} (the default, L{SUDP1Handshake}) or
C{handshake=gossip6} (L{sudp.gossip6.handshake.Gossip6Handshake}), or any
handshake registered with L{registerHandshake}.

This is glue: it sits above the transports (C{sudp.udp}, C{sudp.stream})
and the plug-ins, and none of them imports it
(sudp_test.test_layers).
"""

import os

from zope.interface import implementer

from sudp.errors import ConfigurationError
from sudp.interfaces import IHandshake
from sudp.keyfiles import identityForEndpoint
from sudp.keys import loadIdentity, loadOrCreateIdentity
from sudp.udp.handshake import pinnedKeys
from sudp.udp.sudp1 import SUDP1Client, SUDP1Server


@implementer(IHandshake)
class SUDP1Handshake:
    """
    sudp/1's handshake (docs/protocol.md; sframe.md over streams): the
    server's Ed25519 key pinned by its clients.

    @ivar serverKeys: (a client) the server keys it pins, a tuple (several
        while the server rolls its key); empty on a server.
    """

    name = "sudp/1"

    def __init__(self, serverKeys=()):
        self.serverKeys = pinnedKeys(serverKeys)

    def loadIdentity(self, path, create=False):
        """
        @return: the Ed25519 identity in C{path} (made there with C{create}).
        """
        return identityForEndpoint(path, create, loadIdentity, loadOrCreateIdentity, "sudp keygen")

    def datagramServer(self, identity):
        return SUDP1Server()

    def datagramClient(self, identity):
        return SUDP1Client(self.serverKeys, identity)

    def streamKeyExchange(self, isClient, identity, streamConfig, random=None):
        from sudp.stream.handshake import ClientKeyExchange, ServerKeyExchange

        random = random or os.urandom
        if isClient:
            return ClientKeyExchange(self.serverKeys, streamConfig, identity=identity, random=random)
        return ServerKeyExchange(identity, streamConfig, random=random)


class HandshakeChoice:
    """
    How endpoint strings name one handshake plug-in: its name, its options,
    and how to build it from them.

    @ivar fromOptions: C{(options, what, authorized=None, serverKey=None)}
        -> an L{IHandshake}, taking its options out of C{options}.
    """

    def __init__(self, name, optionNames, fromOptions):
        self.name = name
        self.optionNames = frozenset(optionNames)
        self.fromOptions = fromOptions


_CHOICES = {}


def registerHandshake(choice):
    """
    Let endpoint strings choose a handshake with C{handshake=NAME}.

    @param choice: a L{HandshakeChoice}.
    @raise ConfigurationError: if its name is taken.
    """
    if choice.name == "sudp" or _CHOICES.get(choice.name, choice) is not choice:
        raise ConfigurationError(f"handshake {choice.name!r} is registered already")
    _CHOICES[choice.name] = choice


def _gossip6(options, what, authorized=None, serverKey=None):
    from sudp.gossip6.handshake import fromOptions

    return fromOptions(options, what, authorized, serverKey)


def _registerBuiltins():
    from sudp.gossip6.config import OPTION_NAMES

    registerHandshake(HandshakeChoice("gossip6", OPTION_NAMES, _gossip6))


_registerBuiltins()


def handshakeOptionNames():
    """
    @return: the options of every registered handshake (an endpoint string
        may name them; those of a handshake not chosen are refused later).
    """
    return frozenset().union(*(choice.optionNames for choice in _CHOICES.values()))


def handshakeFromOptions(options, what, authorized=None, serverKey=None):
    """
    Take C{handshake=NAME} and that handshake's options out of an endpoint
    string's options (sudp: and sframe: alike).

    @param authorized: the C{authorizedKeys=} given (a handshake may refuse it).
    @param serverKey: a client's C{serverKey=} text, for a handshake that
        reads it its own way.
    @return: the chosen L{IHandshake}, or None for sudp/1's (the caller
        knows its keys).
    @raise ConfigurationError: on an unknown handshake, a bad combination or value.
    """
    name = options.pop("handshake", "sudp")
    if name == "sudp":
        return None
    choice = _CHOICES.get(name)
    if choice is None:
        known = " or ".join(["sudp", *sorted(_CHOICES)])
        raise ConfigurationError(f"{what}: handshake is {known}, not {name!r}")
    return choice.fromOptions(options, what, authorized, serverKey)
