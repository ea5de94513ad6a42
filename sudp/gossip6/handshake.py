# -*- test-case-name: sudp_test.gossip6.test_handshake -*-
"""
gossip6 as a handshake plug-in (L{sudp.interfaces.IHandshake}): the object
an endpoint is given for C{handshake=gossip6}, which gives the datagram
engines their halves (L{sudp.gossip6.udp}) and each sframe connection its
key exchange (L{sudp.gossip6.stream}).
"""

import os

from zope.interface import implementer

from sudp.errors import ConfigurationError
from sudp.interfaces import IHandshake
from sudp.keyfiles import identityForEndpoint
from sudp.gossip6.config import Gossip6Config, gossip6FromOptions
from sudp.gossip6.stream import Gossip6StreamSetup
from sudp.gossip6.udp import Gossip6Client, Gossip6Server


@implementer(IHandshake)
class Gossip6Handshake:
    """
    gossip6 for one endpoint: RSA identities, trusted keys shared out of
    band, a proof of work per handshake.

    @ivar trustedKeys: the peers' L{sudp.rsakeys.RSAPublicKey}s, a tuple.
    @ivar config: the L{Gossip6Config}.
    """

    name = "gossip6"

    def __init__(self, trustedKeys, config=None):
        self.trustedKeys = tuple(trustedKeys)
        self.config = config or Gossip6Config()
        self._streams = {}  # random -> the stream setup (its record of proofs, shared by connections)

    def loadIdentity(self, path, create=False):
        """
        @return: the RSA identity in C{path} (made there with C{create}).
        """
        from sudp.rsakeyfiles import loadOrCreateRSAIdentity, loadRSAIdentity

        return identityForEndpoint(path, create, loadRSAIdentity, loadOrCreateRSAIdentity, "sudp keygen --type rsa")

    def datagramServer(self, identity):
        return Gossip6Server(identity, self.trustedKeys, self.config)

    def datagramClient(self, identity):
        return Gossip6Client(identity, self.trustedKeys, self.config)

    def streamSetup(self, random=None):
        """
        @return: the L{Gossip6StreamSetup} this endpoint's connections share
            (with its record of accepted proofs), one per C{random}.
        """
        random = random or os.urandom
        setup = self._streams.get(random)
        if setup is None:
            setup = self._streams[random] = Gossip6StreamSetup(self.trustedKeys, self.config, random)
        return setup

    def streamKeyExchange(self, isClient, identity, streamConfig, random=None):
        """
        @return: gossip6's key exchange for one sframe connection; a
            server's share one record of accepted proofs (L{streamSetup}).
        """
        return self.streamSetup(random).keyExchange(identity, isClient)


def fromOptions(options, what, authorized=None, serverKey=None):
    """
    Build the plug-in from an endpoint string's options (C{handshake=gossip6}
    was given): its own (L{sudp.gossip6.config.OPTION_NAMES}) are taken out.

    @param authorized: the C{authorizedKeys=} given, refused with gossip6.
    @param serverKey: a client's C{serverKey=} text: an RSA key trusted alone.
    @return: a L{Gossip6Handshake}.
    @raise ConfigurationError: on a bad combination or value.
    """
    if authorized is not None:
        raise ConfigurationError(f"{what}: gossip6 authenticates peers with trustedKeys=, not authorizedKeys=")
    if "suites" in options:
        raise ConfigurationError(f"{what}: gossip6 protects data with aes-256-gcm only (no suites=)")
    config, trusted = gossip6FromOptions(options, what, serverKey)
    return Gossip6Handshake(trusted, config)
