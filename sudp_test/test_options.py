# -*- test-case-name: sudp_test.test_options -*-
"""
Tests for L{sudp.options}.

Tests for the key files named in endpoint strings (L{sudp.udp.endpoints},
L{sudp.stream.endpoints}): a missing key says how to make one, and
C{createKey=true} makes it.
"""

from twisted.internet import reactor
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.trial import unittest

from sudp.errors import ConfigurationError
from sudp.keys import Identity

class UnknownOptionTests(unittest.TestCase):
    """
    A mistyped option is reported as unknown, with the known ones listed
    (the landed code said "give host and port" for prot=9000).
    """

    def test_typoInClient(self):
        key = Identity.generate().publicKey.toText()
        for description in (f"sudp:host=127.0.0.1:prot=9000:serverKey={key}",
                            f"sudp:hots=127.0.0.1:port=9000:serverKey={key}"):
            e = self.assertRaises(ConfigurationError, clientFromString, reactor, description)
            self.assertIn("unknown", str(e))
            self.assertIn("prot" if "prot" in description else "hots", str(e))
            self.assertIn("known:", str(e))
            self.assertIn("port", str(e).split("known:")[1])

    def test_typoInServer(self):
        e = self.assertRaises(ConfigurationError, serverFromString, reactor, "sudp:kye=server.key:port=9000")
        self.assertIn("unknown sudp server option(s): kye", str(e))
