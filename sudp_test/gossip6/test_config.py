# -*- test-case-name: sudp_test.gossip6.test_config -*-
"""
Tests for L{sudp.gossip6.config}.

gossip6 as a handshake of the sudp engines and endpoints: the sessions it
opens (messages, rekeys signed with RSA), the asynchronous proof of work
(retransmissions while solving, expiry, shutdown), configuration errors,
and `twist sudp --handshake gossip6`.

The discard rules, their order and costs, fuzzing and the endpoint
integration are in test_gossip6_rules; the vectors in test_gossip6_vectors.
"""

import os

from twisted.internet import reactor
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.trial import unittest

from sudp.errors import ConfigurationError
from sudp.gossip6.config import parseLocalAddresses
from sudp.rsakeyfiles import saveRSAIdentity

from sudp_test.gossip6.helpers import CLIENT_ID, SERVER_ID

class ConfigurationTests(unittest.TestCase):
    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.key = os.path.join(self.dir, "rsa.key")
        saveRSAIdentity(SERVER_ID, self.key)
        self.trusted = os.path.join(self.dir, "trusted")
        with open(self.trusted, "w") as f:
            f.write(CLIENT_ID.publicKey.toText() + " a client\n")

    def test_errorsAtParseTime(self):
        """
        gossip6 misconfigurations are ConfigurationErrors when the string is
        parsed: no trusted keys, authorizedKeys or suites with gossip6, an
        unknown handshake, bad values, an Ed25519 key where an RSA one is
        needed.
        """
        base = f"sudp:9000:key={self.key}:handshake=gossip6"
        for bad in (base, base + f":trustedKeys={self.trusted}:authorizedKeys={self.trusted}",
                    base + f":trustedKeys={self.trusted}:suites=aes-256-gcm",
                    f"sudp:9000:key={self.key}:handshake=noise",
                    base + f":trustedKeys={self.trusted}:difficulty=40",
                    base + f":trustedKeys={self.trusted}:scryptN=1000",
                    base + f":trustedKeys={self.trusted}:tMax=-1",
                    base + f":trustedKeys={self.trusted}:localAddresses=nowhere",
                    f"sframe:key={self.key}:handshake=gossip6:endpoint=tcp\\:0"):
            self.assertRaises(ConfigurationError, serverFromString, reactor, bad)
        from sudp.errors import KeyFileError
        from sudp.keys import Identity, saveIdentity

        edKey = os.path.join(self.dir, "ed.key")
        saveIdentity(Identity.generate(), edKey)
        self.assertRaises(KeyFileError, serverFromString, reactor,
                          f"sudp:9000:key={edKey}:handshake=gossip6:trustedKeys={self.trusted}")
        client = f"sudp:host=127.0.0.1:port=9:handshake=gossip6:trustedKeys={self.trusted}"
        self.assertRaises(ConfigurationError, clientFromString, reactor, client)  # no key=

    def test_options(self):
        """
        Every gossip6 option reaches the config; serverKey=rsa-... on a
        client is trusted alone.
        """
        endpoint = serverFromString(
            reactor, f"sudp:9000:key={self.key}:handshake=gossip6:trustedKeys={self.trusted}:tMax=30:"
                     "clockSkew=2:scryptN=2048:scryptR=4:scryptP=2:difficulty=9:maxReuseRecords=100:"
                     "localAddresses=203.0.113.5\\:9000,[2001\\:db8\\:\\:1]\\:9000")
        config = endpoint._handshake.config
        self.assertEqual((config.tMax, config.clockSkew, config.scryptN, config.scryptR, config.scryptP,
                          config.difficulty, config.maxReuseRecords),
                         (30.0, 2.0, 2048, 4, 2, 9, 100))
        self.assertEqual(config.localAddresses, (("203.0.113.5", 9000), ("2001:db8::1", 9000)))
        self.assertEqual(endpoint._handshake.trustedKeys, (CLIENT_ID.publicKey,))
        client = clientFromString(
            reactor, f"sudp:host=127.0.0.1:port=9:handshake=gossip6:key={self.key}:"
                     f"serverKey={SERVER_ID.publicKey.toText()}")
        self.assertEqual(client._handshake.trustedKeys, (SERVER_ID.publicKey,))

    def test_parseLocalAddresses(self):
        """
        localAddresses are IP:PORT pairs, IPv6 in brackets; anything else is refused.
        """
        self.assertEqual(parseLocalAddresses("1.2.3.4:5, [::1]:6"), (("1.2.3.4", 5), ("::1", 6)))
        for bad in ("1.2.3.4", "host:5", "1.2.3.4:0", "1.2.3.4:70000", "[::1]"):
            self.assertRaises(ConfigurationError, parseLocalAddresses, bad)
