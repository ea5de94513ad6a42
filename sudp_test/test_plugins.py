# -*- test-case-name: sudp_test.test_plugins -*-
"""
Twisted finds every sudp plugin: an import error in the plugin file would
only be logged and the plugins would silently disappear.
"""

from twisted.application.service import IServiceMaker
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.python import usage
from twisted.trial import unittest

from sudp.errors import ConfigurationError
from sudp.keys import Identity, saveIdentity
from sudp.udp.endpoints import SUDPClientEndpoint, SUDPServerEndpoint

from sudp_test import plugincheck

class PluginDiscoveryTests(unittest.TestCase):
    def test_allFoundAndVerified(self):
        """
        getPlugins finds the sudp service maker and both endpoint parsers,
        and verifyObject passes on each.
        """
        self.assertEqual(plugincheck.problems(), [])
        found = plugincheck.findPlugins()
        self.assertEqual(set(found["services"]), plugincheck.EXPECTED_SERVICES)
        self.assertEqual(set(found["servers"]), {"sudp", "sframe"})
        self.assertEqual(set(found["clients"]), {"sudp", "sframe"})

    def test_serviceMakerOptions(self):
        """
        The service maker's options parse --port and reject a bad app.
        """
        maker = plugincheck.findPlugins()["services"]["sudp"]
        self.assertTrue(IServiceMaker.providedBy(maker))
        options = maker.options()
        options.parseOptions(["--port", "9123"])
        self.assertEqual(options["port"], 9123)
        self.assertRaises(usage.UsageError, maker.options().parseOptions, ["--app", "nosuchmodule.factory"])
        self.assertRaises(usage.UsageError, maker.options().parseOptions, ["--app", "sudp.errors.SUDPError"])
        self.assertRaises(usage.UsageError, maker.options().parseOptions, ["--suites", "rot13"])

class EndpointStringTests(unittest.TestCase):
    def setUp(self):
        from twisted.internet import reactor

        self.reactor = reactor
        self.key = self.mktemp()
        self.identity = Identity.generate()
        saveIdentity(self.identity, self.key)

    def test_serverFromString(self):
        """
        sudp:PORT:key=FILE builds a server endpoint through the plugin.
        """
        ep = serverFromString(self.reactor, f"sudp:9000:key={self.key}:maxSessions=5:ordering=strict")
        self.assertIsInstance(ep, SUDPServerEndpoint)
        self.assertEqual(ep._port, 9000)
        self.assertEqual(ep._config.maxSessions, 5)
        self.assertEqual(ep._config.ordering, "strict")

    def test_clientFromString(self):
        """
        sudp:host=..:port=..:serverKey=.. builds a client endpoint; the key
        can also be a .pub file.
        """
        text = self.identity.publicKey.toText()
        ep = clientFromString(self.reactor, f"sudp:host=127.0.0.1:port=9000:serverKey={text}")
        self.assertIsInstance(ep, SUDPClientEndpoint)
        self.assertEqual(ep._serverKey, (self.identity.publicKey,))
        ep = clientFromString(self.reactor, f"sudp:127.0.0.1:9000:serverKey={self.key}.pub")
        self.assertEqual(ep._serverKey, (self.identity.publicKey,))

    def test_errorsAtParseTime(self):
        """
        Unknown options, bad values, unknown suites and missing keys fail
        when the string is parsed, with ConfigurationError or KeyFileError.
        """
        text = self.identity.publicKey.toText()
        bad = [
            f"sudp:9000:key={self.key}:nosuchoption=1",
            f"sudp:9000:key={self.key}:maxSessions=lots",
            f"sudp:9000:key={self.key}:ordering=random",
            f"sudp:9000:key={self.key}:suites=rot13",
            f"sudp:9000:key={self.key}:replayWindow=10",
            "sudp:9000",
            f"sudp:key={self.key}",
            "sudp:9000:key=/nonexistent.key",
        ]
        for s in bad:
            self.assertRaises(Exception, serverFromString, self.reactor, s)
        for s in bad[:5]:
            self.assertRaises(ConfigurationError, serverFromString, self.reactor, s)
        for s in [
            "sudp:host=127.0.0.1:port=9000",
            f"sudp:host=127.0.0.1:serverKey={text}",
            "sudp:host=127.0.0.1:port=9000:serverKey=ed25519-short",
            f"sudp:host=127.0.0.1:port=x:serverKey={text}",
            f"sudp:host=127.0.0.1:port=9000:serverKey={text}:bogus=1",
            f"sudp:host=127.0.0.1:port=9000:serverKey={text}:suites=chacha20-poly1305,rot13",
            f"sudp:host=127.0.0.1:port=70000:serverKey={text}",
        ]:
            self.assertRaises(ConfigurationError, clientFromString, self.reactor, s)
