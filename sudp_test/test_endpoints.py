"""
Tests for the key files named in endpoint strings (L{sudp.udp.endpoints},
L{sudp.stream.endpoints}): a missing key says how to make one, and
C{createKey=true} makes it.
"""

import os
import stat

from twisted.internet import reactor
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.trial import unittest

from sudp.errors import ConfigurationError, KeyFileError
from sudp.keys import Identity, loadIdentity


class MissingKeyTests(unittest.TestCase):
    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.key = os.path.join(self.dir, "server.key")
        self.serverKey = Identity.generate().publicKey.toText()

    def strings(self, extra=""):
        key = self.key
        return [
            (serverFromString, f"sudp:9000:key={key}{extra}"),
            (serverFromString, f"sframe:key={key}{extra}:endpoint=tcp\\:9001"),
            (clientFromString, f"sudp:host=127.0.0.1:port=9000:serverKey={self.serverKey}:key={key}{extra}"),
            (clientFromString, f"sframe:serverKey={self.serverKey}:key={key}{extra}:endpoint=tcp\\:127.0.0.1\\:9"),
        ]

    def test_missingKeySaysHowToMakeIt(self):
        """
        A key path that does not exist names the file, the command that
        creates it and the option that would (the landed code said only
        "no such key file").
        """
        for parse, description in self.strings():
            e = self.assertRaises(KeyFileError, parse, reactor, description)
            self.assertIn(self.key, str(e))
            self.assertIn(f"sudp keygen {self.key}", str(e))
            self.assertIn("createKey=true", str(e))
            self.assertFalse(os.path.exists(self.key))

    def test_createKey(self):
        """
        createKey=true creates the key (mode 0600, with its .pub) the first
        time and loads the same key after.
        """
        for parse, description in self.strings(":createKey=true"):
            parse(reactor, description)
            self.assertEqual(stat.S_IMODE(os.stat(self.key).st_mode), 0o600)
            self.assertTrue(os.path.exists(self.key + ".pub"))
            first = loadIdentity(self.key).publicKey
            parse(reactor, description)
            self.assertEqual(loadIdentity(self.key).publicKey, first)
            os.remove(self.key)
            os.remove(self.key + ".pub")

    def test_createKeyValue(self):
        """
        createKey takes a boolean; anything else is a clear error.
        """
        parse, description = self.strings(":createKey=perhaps")[0]
        e = self.assertRaises(ConfigurationError, parse, reactor, description)
        self.assertIn("createKey", str(e))
