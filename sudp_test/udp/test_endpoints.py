# -*- test-case-name: sudp_test.udp.test_endpoints -*-
"""
Tests for L{sudp.udp.endpoints}.
"""

import os
import socket

from twisted.internet import defer, protocol, reactor
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.internet.error import ConnectionDone
from twisted.trial import unittest

from sudp.errors import (
    BadServerSignature,
    ClientNotAuthorized,
    HandshakeTimeout,
    MessageTooLarge,
    ServerUnreachable,
)
from sudp.interfaces import ISUDPTransport
from sudp.keys import Identity, saveIdentity
from sudp.tap import Echo
from sudp.udp.config import Config
from sudp.udp.transport import SessionLost

from sudp_test import integration
from sudp_test.integration import RecorderFactory, SUDPIntegrationMixin, echoOnce
from sudp_test.waiting import sleep, waitUntil

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
        from sudp_test.integration import RecorderFactory

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
        from sudp_test.integration import RecorderFactory

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

class EndpointSuiteTests(integration.SUDPIntegrationMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def test_endpointOptions(self):
        """
        suites= on both endpoint strings selects and orders suites: a server
        that allows only aes-256-gcm and a client offering chacha20 first
        agree on aes-256-gcm over real sockets.
        """
        yield self.listen(options=":suites=aes-256-gcm")
        client = yield self.connect(":suites=chacha20-poly1305,aes-256-gcm")
        self.assertEqual(client.transport.suite, "aes-256-gcm")
        client.transport.write(b"gcm")
        got = yield client.waitFor(1)
        self.assertEqual(got, [b"gcm"])

class EndpointTests(SUDPIntegrationMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def test_echo(self):
        """
        Messages written by the client come back from the echo server, whole
        and in order; the transport exposes the peer, host, key and limits.
        """
        yield self.listen()
        client = yield self.connect()
        messages = [b"hello", b"x" * 1000, b"\x00\xff" * 10]
        for m in messages:
            client.transport.write(m)
        got = yield client.waitFor(3)
        self.assertEqual(got, messages)
        t = client.transport
        self.assertTrue(ISUDPTransport.providedBy(t))
        self.assertEqual(t.peerPublicKey, self.identity.publicKey)
        self.assertEqual(t.suite, Config().suites[0].name)  # the default order: by this CPU
        self.assertEqual(t.maxMessageSize, 1452 - 29)
        self.assertEqual((t.getPeer().host, t.getPeer().port), ("127.0.0.1", self.port.getHost().port))
        self.assertEqual(t.getPeer().type, "UDP")
        self.assertEqual(t.getHost().type, "UDP")

    @defer.inlineCallbacks
    def test_serverSideView(self):
        """
        The server's protocol sees the client's address, both ways of
        messaging work, and the message size limit raises MessageTooLarge.
        """
        factory = RecorderFactory()
        yield self.listen(factory)
        client = yield self.connect()
        server = yield factory.built
        self.assertEqual(server.transport.getPeer().port, client.transport.getHost().port)
        self.assertIsNone(server.transport.peerPublicKey)
        server.transport.write(b"push")
        yield client.waitFor(1)
        self.assertEqual(client.messages, [b"push"])
        e = self.assertRaises(MessageTooLarge, client.transport.write, b"x" * (client.transport.maxMessageSize + 1))
        self.assertEqual(e.limit, client.transport.maxMessageSize)
        client.transport.write(b"x" * client.transport.maxMessageSize)
        yield server.waitFor(1)
        self.assertEqual(len(server.messages[0]), client.transport.maxMessageSize)

    @defer.inlineCallbacks
    def test_loseConnection(self):
        """
        loseConnection on the client ends both sides: ConnectionDone locally
        and on the server.
        """
        factory = RecorderFactory()
        yield self.listen(factory)
        client = yield self.endpoint().connect(RecorderFactory())
        server = yield factory.built
        client.transport.loseConnection()
        reason = yield client.lost
        self.assertIsInstance(reason, ConnectionDone)
        reason = yield server.lost.addTimeout(5, reactor)
        self.assertIsInstance(reason, ConnectionDone)
        self.assertEqual(reason.reason, "closed-by-peer")

    @defer.inlineCallbacks
    def test_stopListeningTwice(self):
        """
        stopListening may be called more than once; each caller gets its own
        Deferred, and the factory is stopped once.
        """
        factory = RecorderFactory()
        stops = []
        factory.stopFactory = lambda: stops.append(1)
        yield self.listen(factory)
        first = self.port.stopListening()
        first.addCallback(lambda _: "changed by the first caller")
        second = yield self.port.stopListening()
        self.assertIsNone(second)
        self.assertEqual((yield first), "changed by the first caller")
        self.assertEqual(stops, [1])

    @defer.inlineCallbacks
    def test_serverStopsListening(self):
        """
        Stopping the server closes each session and the client learns why.
        """
        yield self.listen()
        client = yield self.endpoint().connect(RecorderFactory())
        yield self.port.stopListening()
        reason = yield client.lost.addTimeout(5, reactor)
        self.assertIsInstance(reason, SessionLost)
        self.assertEqual(reason.reason, "server-shutdown")

    @defer.inlineCallbacks
    def test_wrongServerKey(self):
        """
        A client given the wrong server key fails connect() with
        BadServerSignature, and the server opens no session.
        """
        factory = RecorderFactory()
        yield self.listen(factory)
        wrong = Identity.generate().publicKey.toText()
        d = self.endpoint(serverKey=wrong).connect(RecorderFactory())
        e = yield self.assertFailure(d, BadServerSignature)
        self.assertIn(wrong, str(e))
        self.assertEqual(factory.protocols, [])

    @defer.inlineCallbacks
    def test_noServer(self):
        """
        With no answer at all (a socket that reads and never replies),
        connect() fails with HandshakeTimeout after the configured timeout.
        """
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        self.addCleanup(s.close)
        portNumber = s.getsockname()[1]
        ep = clientFromString(
            reactor,
            f"sudp:host=127.0.0.1:port={portNumber}:serverKey={self.identity.publicKey.toText()}:timeout=1",
        )
        e = yield self.assertFailure(ep.connect(RecorderFactory()), HandshakeTimeout)
        self.assertIn("within 1 s", str(e))

    @defer.inlineCallbacks
    def test_cancelConnect(self):
        """
        Cancelling connect() abandons the handshake with CancelledError.
        """
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        self.addCleanup(s.close)  # a port that swallows everything
        ep = clientFromString(
            reactor, f"sudp:host=127.0.0.1:port={s.getsockname()[1]}:serverKey={self.identity.publicKey.toText()}"
        )
        d = ep.connect(RecorderFactory())
        yield sleep(0.1)
        d.cancel()
        yield self.assertFailure(d, defer.CancelledError)

    @defer.inlineCallbacks
    def test_factoryFailure(self):
        """
        A server factory whose buildProtocol raises (or returns None) gets
        the failure logged and the session closed; the client learns it and
        the server keeps serving others.
        """
        class Broken(protocol.Factory):
            calls = 0

            def buildProtocol(self, addr):
                Broken.calls += 1
                if Broken.calls == 1:
                    raise RuntimeError("application bug")
                return None

        yield self.listen(Broken())
        for _ in range(2):
            client = yield self.endpoint().connect(RecorderFactory())
            reason = yield client.lost.addTimeout(5, reactor)
            self.assertEqual(reason.reason, "closed-by-peer")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(self.port.engine.stats()["sessions"], 0)

    @defer.inlineCallbacks
    def test_dataReceivedFailure(self):
        """
        A server protocol whose dataReceived raises (the C data path calls
        it directly) gets the failure logged and its session closed; the
        messages before it were delivered, and the server keeps serving.
        """
        got = []

        class Fragile(protocol.Protocol):
            def dataReceived(self, data):
                got.append(data)
                if data == b"boom":
                    raise ZeroDivisionError("application bug")

        yield self.listen(protocol.Factory.forProtocol(Fragile))
        client = yield self.connect()
        for m in (b"one", b"two", b"boom", b"after"):
            client.transport.write(m)
        reason = yield client.lost.addTimeout(5, reactor)
        self.assertEqual(reason.reason, "closed-by-peer")
        self.assertEqual(got, [b"one", b"two", b"boom"])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        other = yield self.connect()
        other.transport.write(b"still serving")
        yield waitUntil(lambda: got[-1:] == [b"still serving"], 5)

    @defer.inlineCallbacks
    def test_cancelDuringResolve(self):
        """
        Cancelling connect() while the host name resolves leaves nothing
        running: no port is opened afterwards.
        """
        resolving = defer.Deferred()
        fake = type("R", (), {"resolve": lambda self, name: resolving, "seconds": reactor.seconds})()
        from sudp.udp.endpoints import SUDPClientEndpoint

        ep = SUDPClientEndpoint(fake, "server.example", 9000, self.identity.publicKey)
        d = ep.connect(RecorderFactory())
        d.cancel()
        yield self.assertFailure(d, defer.CancelledError)
        resolving.callback("127.0.0.1")  # would call fake.listenUDP, which does not exist

    @defer.inlineCallbacks
    def test_natRebinding(self):
        """
        When the client's source port changes mid-session (a NAT rebinding),
        the session carries on: a packet from the new address authenticates
        and is delivered; the server validates the new address (one round
        trip: a challenge and its answer) and then moves the session there,
        and replies reach the client there.
        """
        factory = RecorderFactory()
        yield self.listen(factory)
        client = yield self.connect()
        server = yield factory.built
        client.transport.write(b"before")
        yield server.waitFor(1)
        oldPort = server.transport.getPeer().port
        adapter = client.transport._adapter
        yield adapter.transport.stopListening()
        newPort = reactor.listenUDP(0, adapter, interface="127.0.0.1")
        self.addCleanup(newPort.stopListening)
        self.assertNotEqual(newPort.getHost().port, oldPort)
        client.transport.write(b"after")
        got = yield server.waitFor(2)
        self.assertEqual(got, [b"before", b"after"])
        yield waitUntil(lambda: server.transport.getPeer().port == newPort.getHost().port,
                        "the server to validate the new address", timeout=2.0)
        self.assertEqual(self.port.engine.stats()["paths-validated"], 1)
        server.transport.write(b"reply reaches the new port")
        got = yield client.waitFor(1)
        self.assertEqual(got, [b"reply reaches the new port"])
        self.assertEqual(self.port.engine.stats()["sessions"], 1)

    @defer.inlineCallbacks
    def test_junkIsCountedNotFatal(self):
        """
        Junk datagrams at a live server are dropped and counted; the server
        keeps serving its session.
        """
        yield self.listen()
        client = yield self.connect()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        target = ("127.0.0.1", self.port.getHost().port)
        junk = [b"", b"\x00", b"\x21" * 64, b"\x13" * 70, b"\x18" + os.urandom(40), os.urandom(1400)]
        for j in junk:
            s.sendto(j, target)
        client.transport.write(b"still here")
        yield client.waitFor(1)
        yield sleep(0.05)
        drops = self.port.engine.stats()["drops"]
        self.assertEqual(sum(drops.values()), len(junk), drops)

class LimitTests(SUDPIntegrationMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def test_largeDatagrams(self):
        """
        maxDatagramSize above Twisted's default read size (8192) works end to
        end, and a datagram over the limit is dropped as oversized.
        """
        yield self.listen(options=":maxDatagramSize=9000")
        client = yield self.connect(":maxDatagramSize=9000")
        self.assertEqual(client.transport.maxMessageSize, 9000 - 29)
        big = os.urandom(9000 - 29)
        client.transport.write(big)
        got = yield client.waitFor(1)
        self.assertEqual(got, [big])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.sendto(b"\x18" + bytes(9000), ("127.0.0.1", self.port.getHost().port))
        client.transport.write(b"after")
        yield client.waitFor(2)
        self.assertEqual(self.port.engine.stats()["drops"], {"oversized": 1})

class MutualAuthTests(SUDPIntegrationMixin, unittest.TestCase):
    def writeAuthorized(self, *identities):
        path = os.path.join(self.dir, "authorized")
        with open(path, "w") as f:
            for i in identities:
                f.write(i.publicKey.toText() + " a player\n")
        return path

    def clientKey(self):
        path = os.path.join(self.dir, f"client{len(os.listdir(self.dir))}.key")
        ident = Identity.generate()
        saveIdentity(ident, path)
        return ident, path

    @defer.inlineCallbacks
    def test_authorizedClient(self):
        """
        A client with key=FILE listed in the server's authorizedKeys=FILE
        connects, and the server's transport carries the client's key.
        """
        ident, path = self.clientKey()
        factory = RecorderFactory()
        yield self.listen(factory, f":authorizedKeys={self.writeAuthorized(ident)}")
        client = yield self.connect(f":key={path}")
        server = yield factory.built
        self.assertEqual(server.transport.peerPublicKey, ident.publicKey)
        client.transport.write(b"hi")
        yield server.waitFor(1)

    @defer.inlineCallbacks
    def test_unauthorizedClient(self):
        """
        A client whose key is not listed fails connect() with
        ClientNotAuthorized; one without a key likewise.
        """
        ident, path = self.clientKey()
        other, _ = self.clientKey()
        factory = RecorderFactory()
        yield self.listen(factory, f":authorizedKeys={self.writeAuthorized(other)}")
        yield self.assertFailure(self.endpoint(f":key={path}").connect(RecorderFactory()), ClientNotAuthorized)
        yield self.assertFailure(self.endpoint().connect(RecorderFactory()), ClientNotAuthorized)
        self.assertEqual(factory.protocols, [])

class FastFailureTests(SUDPIntegrationMixin, unittest.TestCase):
    """
    A client learns within a second that nothing listens at the server's
    address (the landed code waited the whole handshake timeout, 10 s, and
    then said "state hello-sent").
    """

    @defer.inlineCallbacks
    def test_closedPortFailsWithinOneSecond(self):
        for family, host, escaped in ((socket.AF_INET, "127.0.0.1", "127.0.0.1"), (socket.AF_INET6, "::1", "\\:\\:1")):
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.bind((host, 0))
            portNumber = s.getsockname()[1]
            s.close()
            ep = clientFromString(
                reactor, f"sudp:host={escaped}:port={portNumber}:serverKey={self.identity.publicKey.toText()}")
            started = reactor.seconds()
            e = yield self.assertFailure(ep.connect(RecorderFactory()).addTimeout(5, reactor), ServerUnreachable)
            self.assertLess(reactor.seconds() - started, 1.0)
            self.assertIn(str(portNumber), str(e))
            self.assertIn(host, str(e))


    @defer.inlineCallbacks
    def test_refusedSuitesSaySo(self):
        """
        A client offering only suites the server refuses fails at once with
        NoCommonSuite naming both sides' suites.
        """
        from sudp.errors import NoCommonSuite

        yield self.listen(options=":suites=aes-256-gcm")
        started = reactor.seconds()
        e = yield self.assertFailure(self.endpoint(":suites=chacha20-poly1305").connect(RecorderFactory()),
                                     NoCommonSuite)
        self.assertLess(reactor.seconds() - started, 1.0)
        self.assertIn("it accepts: aes-256-gcm", str(e))

class KeyRolloverTests(unittest.TestCase):
    """
    The documented procedure of docs/keys.md, "Rolling a server's key", end
    to end over real sockets: (1) the server keeps proving its old key A and
    announces B, clients pinning only A are told (logged) to pin B, (2)
    clients pin A and B, (3) the server switches to B; clients pinning both
    go on, a client pinning only A is refused with a message that says the
    server may use a new key.
    """

    timeout = 60

    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.keys = {}
        for name in ("a", "b"):
            path = os.path.join(self.dir, name + ".key")
            identity = Identity.generate()
            saveIdentity(identity, path)
            self.keys[name] = (path, identity.publicKey.toText())
        self.warnings = []

        def observe(event):
            if event.get("log_level") is not None and event["log_level"].name == "warn":
                from twisted.logger import formatEvent

                self.warnings.append(formatEvent(event))

        from twisted.logger import globalLogPublisher

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)

    @defer.inlineCallbacks
    def serve(self, options):
        port = yield serverFromString(reactor, f"sudp:0:interface=127.0.0.1:{options}").listen(
            protocol.Factory.forProtocol(Echo))
        self.addCleanup(port.stopListening)
        return port.getHost().port

    def echo(self, number, pins):
        return echoOnce(self, f"sudp:host=127.0.0.1:port={number}:{pins}")

    @defer.inlineCallbacks
    def test_rollover(self):
        (aPath, a), (bPath, b) = self.keys["a"], self.keys["b"]
        # 1. the server proves A and announces B
        number = yield self.serve(f"key={aPath}:nextKey={bPath}")
        client = yield self.echo(number, f"serverKey={a}")
        self.assertEqual(client.transport.peerPublicKey.toText(), a)
        [warning] = [w for w in self.warnings if "announces its next key" in w]
        self.assertIn(b, warning)
        self.assertIn(f"serverKey={a},{b}", warning)
        # 2. clients pin both (here: a known-hosts style file); nothing more to say
        self.warnings.clear()
        known = os.path.join(self.dir, "server_keys")
        with open(known, "w") as f:
            f.write(f"# the servers of this app\n{a} old\n{b} new\n")
        yield self.echo(number, f"serverKeys={known}")
        self.assertEqual([w for w in self.warnings if "announces" in w], [])
        # 3. the server switches to B
        number = yield self.serve(f"key={bPath}")
        for pins in (f"serverKeys={known}", f"serverKey={a},{b}", f"serverKey={b}"):
            client = yield self.echo(number, pins)
            self.assertEqual(client.transport.peerPublicKey.toText(), b)
        e = yield self.assertFailure(
            clientFromString(reactor, f"sudp:host=127.0.0.1:port={number}:serverKey={a}").connect(RecorderFactory()),
            BadServerSignature)
        self.assertIn("new key", str(e))

    @defer.inlineCallbacks
    def test_sframeAcceptsEitherKey(self):
        """
        An sframe client pins a set of keys the same way.
        """
        (aPath, a), (bPath, b) = self.keys["a"], self.keys["b"]
        port = yield serverFromString(
            reactor, f"sframe:key={bPath}:endpoint=tcp\\:0\\:interface=127.0.0.1").listen(
            protocol.Factory.forProtocol(Echo))
        self.addCleanup(port.stopListening)
        client = yield clientFromString(
            reactor, f"sframe:serverKey={a},{b}:endpoint=tcp\\:127.0.0.1\\:{port.getHost().port}").connect(
            RecorderFactory())
        self.assertEqual(client.transport.peerPublicKey.toText(), b)
        client.transport.write(b"ping")
        self.assertEqual((yield client.waitFor(1)), [b"ping"])
        client.transport.loseConnection()
        yield client.lost
