"""
Integration tests of sudp/1 over real UDP sockets on 127.0.0.1, through the
public Twisted face: endpoint strings, factories, protocols, transports.
"""

import os
import socket
import sys

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.internet.error import ConnectionDone
from twisted.trial import unittest

from sudp import speedups
from sudp.errors import BadServerSignature, ClientNotAuthorized, HandshakeTimeout, MessageTooLarge, ServerUnreachable
from sudp.interfaces import ISUDPTransport
from sudp.keys import Identity, saveIdentity
from sudp.tap import Echo
from sudp.udp.transport import SessionLost

from sudp_test.waiting import sleep, waitUntil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Recorder(protocol.Protocol):
    """
    Records messages; C{waitFor(n)} fires once n have arrived.
    """

    def __init__(self):
        self.messages = []
        self.lost = defer.Deferred()
        self.reason = None
        self._waiters = []

    def dataReceived(self, data):
        self.messages.append(data)
        for n, d in list(self._waiters):
            if len(self.messages) >= n:
                self._waiters.remove((n, d))
                d.callback(self.messages)

    def waitFor(self, n, timeout=5):
        if len(self.messages) >= n:
            return defer.succeed(self.messages)
        d = defer.Deferred()
        self._waiters.append((n, d))
        return d.addTimeout(timeout, reactor)

    def connectionLost(self, reason):
        self.reason = reason
        self.lost.callback(reason.value)


class RecorderFactory(protocol.Factory):
    def __init__(self, cls=Recorder):
        self.protocols = []
        self.built = defer.Deferred()
        self.cls = cls

    def buildProtocol(self, addr):
        p = self.cls()
        p.factory = self
        p.addr = addr
        self.protocols.append(p)
        if not self.built.called:
            self.built.callback(p)
        return p


@defer.inlineCallbacks
def echoOnce(test, endpoint):
    """
    Connect with the client string C{endpoint}, check that one message comes
    back, and close.

    @return: a L{Deferred} firing with the client protocol, closed.
    """
    client = yield clientFromString(reactor, endpoint).connect(RecorderFactory())
    client.transport.write(b"ping")
    got = yield client.waitFor(1)
    test.assertEqual(got, [b"ping"])
    client.transport.loseConnection()
    yield client.lost
    return client


class SUDPIntegrationMixin:
    timeout = 30

    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.serverKeyFile = os.path.join(self.dir, "server.key")
        self.identity = Identity.generate()
        saveIdentity(self.identity, self.serverKeyFile)

    def serverString(self, options):
        """
        @return: the server endpoint string under test, with C{options}.
        """
        return f"sudp:0:key={self.serverKeyFile}:interface=127.0.0.1{options}"

    def clientString(self, options, key):
        """
        @return: the client endpoint string for the listening server.
        """
        return f"sudp:host=127.0.0.1:port={self.port.getHost().port}:serverKey={key}{options}"

    @defer.inlineCallbacks
    def listen(self, factory=None, options=""):
        factory = factory or protocol.Factory.forProtocol(Echo)
        port = yield serverFromString(reactor, self.serverString(options)).listen(factory)
        self.addCleanup(port.stopListening)
        self.port = port
        return port

    def endpoint(self, options="", serverKey=None):
        key = serverKey or self.identity.publicKey.toText()
        return clientFromString(reactor, self.clientString(options, key))

    @defer.inlineCallbacks
    def connect(self, options="", factory=None):
        client = yield self.endpoint(options).connect(factory or RecorderFactory())
        self.addCleanup(client.transport.loseConnection)
        return client


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
        self.assertEqual(t.suite, "chacha20-poly1305")
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


class ProcessProtocol(protocol.ProcessProtocol):
    def __init__(self, lines=()):
        self.out = b""
        self.err = b""
        self.lines = list(lines)
        self.ended = defer.Deferred()
        self.outWaiters = []

    def connectionMade(self):
        if self.lines:
            for line in self.lines:
                self.transport.write(line + b"\n")

    def outReceived(self, data):
        self.out += data
        for needle, d in list(self.outWaiters):
            if needle in self.out:
                self.outWaiters.remove((needle, d))
                d.callback(self.out)

    def errReceived(self, data):
        self.err += data

    def waitOut(self, needle, timeout=20):
        if needle in self.out:
            return defer.succeed(self.out)
        d = defer.Deferred()
        self.outWaiters.append((needle, d))
        return d.addTimeout(timeout, reactor)

    def processEnded(self, reason):
        self.ended.callback(reason.value.exitCode)


class CommandLineTests(SUDPIntegrationMixin, unittest.TestCase):
    timeout = 60

    def env(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        return env

    @defer.inlineCallbacks
    def twistSudp(self, key, prefix, *extra, interface="127.0.0.1"):
        """
        Start C{twist sudp} on free ports (stopped at cleanup) and wait for the
        endpoint string it prints that starts with C{prefix}.

        @param interface: its C{--interface}; None: none (all addresses).

        @return: C{(everything printed so far, the endpoint string)}.
        """
        pp = ProcessProtocol()
        reactor.spawnProcess(
            pp, sys.executable,
            [sys.executable, "-m", "twisted", "--log-format=text", "sudp", "--port", "0",
             *(["--interface", interface] if interface else []), "--key", key, *extra],
            env=self.env(), path=self.dir,
        )

        def stop():
            if not pp.ended.called:
                pp.transport.signalProcess("TERM")
                return pp.ended

        self.addCleanup(stop)
        yield pp.waitOut(prefix.encode())
        for _ in range(100):  # until the line holding the prefix is complete
            if b"\n" in pp.out[pp.out.index(prefix.encode()):]:
                break
            yield sleep(0.05)
        text = pp.out.decode()
        line = [ln for ln in text.splitlines() if prefix in ln][0]
        return text, line[line.index(prefix):].strip()

    @defer.inlineCallbacks
    def test_twistSudp(self):
        """
        twist sudp creates its key, prints the public key and a ready client
        endpoint string, and serves echo to a client using that string.
        """
        key = os.path.join(self.dir, "twist.key")
        out, endpoint = yield self.twistSudp(key, "sudp:host=")
        from sudp.keys import loadIdentity

        self.assertIn(loadIdentity(key).publicKey.toText(), out)
        self.assertIn("created server key", out)
        self.assertIn("data path: " + speedups.describe(), out)
        yield self.echoWith(endpoint)

    def echoWith(self, endpoint):
        return echoOnce(self, endpoint)

    @defer.inlineCallbacks
    def test_twistSudpIPv6(self):
        """
        twist sudp --interface ::1 prints a client string that works as
        printed (the landed code printed host=::1, which does not parse).
        """
        out, shell = yield self.twistSudp(os.path.join(self.dir, "twist.key"), "from a shell: ", interface="::1")
        endpoint = [line.split("sudp:   ", 1)[1] for line in out.splitlines() if "sudp:   sudp:host=" in line][0]
        self.assertIn("host=\\:\\:1:", endpoint)
        self.assertEqual(shell, f"from a shell: sudp connect '{endpoint}'")
        yield self.echoWith(endpoint)

    @defer.inlineCallbacks
    def test_twistSudpDualStack(self):
        """
        Without --interface, twist sudp listens on both families: the
        printed (IPv4) client string works, and so does the same over ::1.
        """
        out, endpoint = yield self.twistSudp(os.path.join(self.dir, "twist.key"), "sudp:host=", interface=None)
        self.assertIn("host=127.0.0.1:", endpoint)
        yield self.echoWith(endpoint)
        yield self.echoWith(endpoint.replace("host=127.0.0.1:", "host=\\:\\:1:"))

    @defer.inlineCallbacks
    def test_twistSudpListenSFrameIPv6(self):
        """
        The sframe client string printed for an IPv6 stream listener works.
        """
        out, endpoint = yield self.twistSudp(
            os.path.join(self.dir, "twist.key"), "sframe:serverKey=",
            "--listen", "sframe:endpoint=tcp6\\:0\\:interface=\\\\\\:\\\\\\:1")
        yield self.echoWith(endpoint)

    @defer.inlineCallbacks
    def test_twistSudpListenSFrame(self):
        """
        twist sudp --listen sframe:endpoint=... serves the same app over
        sframe beside UDP, with the server key, and prints a ready sframe
        client endpoint string that works.
        """
        key = os.path.join(self.dir, "twist.key")
        out, endpoint = yield self.twistSudp(
            key, "sframe:serverKey=", "--listen", "sframe:endpoint=tcp\\:0\\:interface=127.0.0.1"
        )
        client = yield clientFromString(reactor, endpoint).connect(RecorderFactory())
        client.transport.write(b"over tcp")
        got = yield client.waitFor(1)
        self.assertEqual(got, [b"over tcp"])
        self.assertEqual(client.transport.suite, "aes-256-ctr-sha256")
        client.transport.loseConnection()
        yield client.lost

    @defer.inlineCallbacks
    def test_sudpConnect(self):
        """
        sudp connect sends each stdin line as a message and prints each
        message it receives; end of input closes the session, exit 0.
        """
        yield self.listen()
        endpoint = f"sudp:host=127.0.0.1:port={self.port.getHost().port}:serverKey={self.identity.publicKey.toText()}"
        pp = ProcessProtocol()
        reactor.spawnProcess(pp, sys.executable, [sys.executable, "-m", "sudp", "connect", endpoint],
                             env=self.env(), path=self.dir)
        for line in (b"one", b"two words", b"three"):
            pp.transport.write(line + b"\n")
        yield pp.waitOut(b"three\n")
        pp.transport.closeStdin()
        code = yield pp.ended.addTimeout(20, reactor)
        self.assertEqual(pp.out, b"one\ntwo words\nthree\n")
        self.assertEqual(code, 0, pp.err)
        self.assertIn(b"connected, server key SHA256:", pp.err)

    @defer.inlineCallbacks
    def test_sudpConnectWrongKey(self):
        """
        sudp connect with a wrong server key exits 1 and says why.
        """
        yield self.listen()
        wrong = Identity.generate().publicKey.toText()
        endpoint = f"sudp:host=127.0.0.1:port={self.port.getHost().port}:serverKey={wrong}"
        pp = ProcessProtocol()
        reactor.spawnProcess(pp, sys.executable, [sys.executable, "-m", "sudp", "connect", endpoint],
                             env=self.env(), path=self.dir)
        code = yield pp.ended.addTimeout(20, reactor)
        self.assertEqual(code, 1)
        self.assertIn(b"not signed by", pp.err)


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


class ServerRestartTests(unittest.TestCase):
    """
    A server process killed and started again on its port, with its key: its
    old clients learn within one round trip (a stateless reset) and a
    ClientService reconnects (the landed code kept the client on its dead
    session for the idle timeout, 61.9 s, while its writes vanished).
    """

    timeout = 60

    @defer.inlineCallbacks
    def test_clientServiceReconnectsAfterRestart(self):
        from twisted.application.internet import ClientService
        from sudp_test.serverprocess import startTwistSudp

        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        endpoint, process = yield startTwistSudp(reactor, self, directory)
        factory = RecorderFactory()
        service = ClientService(clientFromString(reactor, endpoint), factory,
                                retryPolicy=lambda attempt: 0.1)
        service.startService()
        self.addCleanup(service.stopService)
        first = yield service.whenConnected(failAfterFailures=5)
        first.transport.write(b"before")
        yield first.waitFor(1)

        process.signalProcess("KILL")
        port = endpoint.split(":port=")[1].split(":")[0]
        yield startTwistSudp(reactor, self, directory, "--port", port)

        started = reactor.seconds()
        first.transport.write(b"into the void")
        yield first.lost.addTimeout(5, reactor)
        self.assertLess(reactor.seconds() - started, 1.0)
        self.assertEqual(first.reason.value.reason, "stateless-reset")
        self.assertIn("restarted", str(first.reason.value))

        yield sleep(0)  # the service hears of the loss after the protocol
        second = yield service.whenConnected(failAfterFailures=5)
        self.assertIsNot(second, first)
        second.transport.write(b"after")
        got = yield second.waitFor(1)
        self.assertEqual(got, [b"after"])


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
