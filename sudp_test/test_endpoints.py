"""
Tests for the key files named in endpoint strings (L{sudp.udp.endpoints},
L{sudp.stream.endpoints}): a missing key says how to make one, and
C{createKey=true} makes it.
"""

import os
import stat

from twisted.internet import defer, reactor
from twisted.internet.address import IPv4Address, IPv6Address
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


class IPv6Tests(unittest.TestCase):
    """
    IPv6 end to end: a client endpoint picks its socket's family from the
    host (the landed code bound an IPv4 socket and failed with "not a
    numeric address of this socket's family" unless given an undocumented
    bindAddress=\\:\\:), a server without an interface listens on both
    families, and getHost/getPeer give the right address types.
    """

    timeout = 30

    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.key = os.path.join(self.dir, "server.key")
        self.identity = Identity.generate()
        from sudp.keys import saveIdentity

        saveIdentity(self.identity, self.key)
        self.pub = self.identity.publicKey.toText()

    @defer.inlineCallbacks
    def listen(self, description):
        from sudp.tap import Echo
        from sudp_test.test_udp_integration import RecorderFactory

        self.serverFactory = RecorderFactory(Echo)
        port = yield serverFromString(reactor, description).listen(self.serverFactory)
        self.addCleanup(port.stopListening)
        return port

    @defer.inlineCallbacks
    def echo(self, description):
        """
        Connect with C{description}, send one message, and check the echo.

        @return: the connected client protocol.
        """
        from sudp_test.test_udp_integration import RecorderFactory

        client = yield clientFromString(reactor, description).connect(RecorderFactory())
        self.addCleanup(client.transport.loseConnection)
        client.transport.write(b"over v6")
        got = yield client.waitFor(1)
        self.assertEqual(got, [b"over v6"])
        return client

    @defer.inlineCallbacks
    def test_sudpOverIPv6(self):
        """
        sudp:host=\\:\\:1 works with no bindAddress; both sides see
        IPv6Address of type UDP.
        """
        port = yield self.listen(f"sudp:0:key={self.key}:interface=\\:\\:1")
        self.assertIsInstance(port.getHost(), IPv6Address)
        number = port.getHost().port
        client = yield self.echo(f"sudp:host=\\:\\:1:port={number}:serverKey={self.pub}")
        self.assertEqual(client.transport.getPeer(), IPv6Address("UDP", "::1", number))
        self.assertIsInstance(client.transport.getHost(), IPv6Address)
        server = self.serverFactory.protocols[0]
        self.assertIsInstance(server.transport.getPeer(), IPv6Address)
        self.assertEqual(server.transport.getPeer().port, client.transport.getHost().port)

    @defer.inlineCallbacks
    def test_positionalIPv6Host(self):
        """
        The short form sudp:HOST:PORT takes an escaped IPv6 literal too.
        """
        port = yield self.listen(f"sudp:0:key={self.key}:interface=\\:\\:1")
        yield self.echo(f"sudp:\\:\\:1:{port.getHost().port}:serverKey={self.pub}")

    @defer.inlineCallbacks
    def test_dualStackByDefault(self):
        """
        A server endpoint with no interface hears IPv4 and IPv6 clients on
        one port, and shows an IPv4 client as an IPv4Address (not an
        IPv4-mapped IPv6 address).
        """
        port = yield self.listen(f"sudp:0:key={self.key}")
        number = port.getHost().port
        yield self.echo(f"sudp:host=\\:\\:1:port={number}:serverKey={self.pub}")
        v4 = yield self.echo(f"sudp:host=127.0.0.1:port={number}:serverKey={self.pub}")
        self.assertEqual(v4.transport.getPeer(), IPv4Address("UDP", "127.0.0.1", number))
        peers = [p.transport.getPeer() for p in self.serverFactory.protocols]
        self.assertEqual(sorted(type(a).__name__ for a in peers), ["IPv4Address", "IPv6Address"])
        self.assertIn("127.0.0.1", [a.host for a in peers])

    @defer.inlineCallbacks
    def test_sframeOverIPv6(self):
        """
        sframe over tcp6 on ::1: the session's addresses are IPv6.
        """
        port = yield self.listen(f"sframe:key={self.key}:endpoint=tcp6\\:0\\:interface=\\\\\\:\\\\\\:1")
        number = port.getHost().port
        client = yield self.echo(
            f"sframe:serverKey={self.pub}:endpoint=tcp\\:\\\\\\:\\\\\\:1\\:{number}")
        self.assertIsInstance(client.transport.getPeer(), IPv6Address)

    @defer.inlineCallbacks
    def test_gossip6OverIPv6(self):
        """
        The gossip6 handshake on sudp: over ::1.
        """
        from sudp.rsaidentity import RSAIdentity
        from sudp.rsakeyfiles import saveRSAIdentity

        server, client = RSAIdentity.generate(2048), RSAIdentity.generate(2048)
        paths = {}
        for name, identity in (("server", server), ("client", client)):
            paths[name] = os.path.join(self.dir, name + "_rsa.key")
            saveRSAIdentity(identity, paths[name])
        trusted = os.path.join(self.dir, "trusted.txt")
        with open(trusted, "w") as f:
            f.write(server.publicKey.toText() + "\n" + client.publicKey.toText() + "\n")
        common = f"handshake=gossip6:trustedKeys={trusted}:difficulty=4"
        port = yield self.listen(f"sudp:0:key={paths['server']}:interface=\\:\\:1:{common}")
        yield self.echo(f"sudp:host=\\:\\:1:port={port.getHost().port}:key={paths['client']}:{common}")
        # and an IPv4 client of a dual-stack server, which sees it as ::ffff:127.0.0.1
        port = yield self.listen(f"sudp:0:key={paths['server']}:{common}")
        yield self.echo(f"sudp:host=127.0.0.1:port={port.getHost().port}:key={paths['client']}:{common}")


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
