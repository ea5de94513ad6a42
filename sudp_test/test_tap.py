# -*- test-case-name: sudp_test.test_tap -*-
"""
Tests for L{sudp.tap}.

Tests for L{sudp.tap}: every server-wide option of C{twist sudp} holds for
its C{--listen} stream listeners too, or the command refuses to start.

Integration tests of sudp/1 over real UDP sockets on 127.0.0.1, through the
public Twisted face: endpoint strings, factories, protocols, transports.
"""

import os
import sys

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import clientFromString
from twisted.trial import unittest

from sudp import speedups
from sudp.errors import ClientNotAuthorized
from sudp.keys import Identity, saveIdentity
from sudp.rsakeyfiles import saveRSAIdentity
from sudp.stream.handshake import AEAD_FRAMES, GCM_FRAMES
from sudp.tap import makeService, Options
from sudp.tapservices import StreamListener

from sudp_test.gossip6.helpers import CLIENT_ID
from sudp_test.integration import RecorderFactory, SUDPIntegrationMixin, echoOnce
from sudp_test.paths import ROOT
from sudp_test.waiting import sleep, waitUntil

LISTEN = "sframe:endpoint=tcp\\:0\\:interface=127.0.0.1"

class _Collect(protocol.Protocol):
    def __init__(self):
        self.received = b""

    def dataReceived(self, data):
        self.received += data

class ServerWideOptionTests(unittest.TestCase):
    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.key = os.path.join(self.dir, "server.key")
        self.identity = Identity.generate()
        saveIdentity(self.identity, self.key)
        self.allowed = Identity.generate()
        self.authorized = os.path.join(self.dir, "authorized")
        with open(self.authorized, "w") as f:
            f.write(self.allowed.publicKey.toText() + "\n")

    def options(self, *args, listen=LISTEN):
        options = Options()
        options.parseOptions(["--port", "0", "--interface", "127.0.0.1", "--key", self.key,
                              *args, "--listen", listen])
        return options

    def streamEndpoint(self, *args, listen=LISTEN):
        """
        @return: the sframe server endpoint C{twist sudp ARGS --listen ...}
            serves on.
        """
        top = makeService(self.options(*args, listen=listen))
        [listener] = [s for s in top if isinstance(s, StreamListener)]
        return listener.endpoint

    def test_authorizedKeys(self):
        """
        --authorized-keys holds on the sframe listener (on the landed code
        it accepted anonymous and unlisted clients there, silently).
        """
        endpoint = self.streamEndpoint("--authorized-keys", self.authorized)
        self.assertEqual(list(endpoint._authorizedKeys), [self.allowed.publicKey])
        self.assertIsNone(self.streamEndpoint()._authorizedKeys)

    @defer.inlineCallbacks
    def test_authorizedKeysEndToEnd(self):
        """
        Over real sockets: an unlisted client is refused on the --listen
        sframe listener, a listed one served.
        """
        endpoint = self.streamEndpoint("--authorized-keys", self.authorized)
        port = yield endpoint.listen(protocol.Factory.forProtocol(_Echo))
        self.addCleanup(port.stopListening)
        where = f"serverKey={self.identity.publicKey.toText()}:endpoint=tcp\\:127.0.0.1\\:{port.getHost().port}"
        stranger = os.path.join(self.dir, "stranger.key")
        saveIdentity(Identity.generate(), stranger)
        d = clientFromString(reactor, f"sframe:{where}:key={stranger}").connect(
            protocol.Factory.forProtocol(_Collect))
        yield self.assertFailure(d, ClientNotAuthorized)
        d = clientFromString(reactor, f"sframe:{where}").connect(protocol.Factory.forProtocol(_Collect))
        yield self.assertFailure(d, ClientNotAuthorized)  # anonymous
        allowed = os.path.join(self.dir, "allowed.key")
        saveIdentity(self.allowed, allowed)
        client = yield clientFromString(reactor, f"sframe:{where}:key={allowed}").connect(
            protocol.Factory.forProtocol(_Collect))
        client.transport.write(b"hello")
        yield waitUntil(lambda: client.received == b"hello", "the echo")
        client.transport.loseConnection()

    def test_suites(self):
        """
        --suites names that sframe knows hold on the listener, in order.
        """
        endpoint = self.streamEndpoint("--suites", "aes-256-gcm,chacha20-poly1305")
        self.assertEqual(endpoint._config.suites, (GCM_FRAMES, AEAD_FRAMES))

    def test_udpOnlySuiteRefused(self):
        """
        A suite sframe does not have ends the start with one line.
        """
        exit = self.assertRaises(SystemExit, makeService, self.options("--suites", "xsalsa20-poly1305"))
        self.assertNotEqual(exit.code, 0)

    def test_maxSessions(self):
        self.assertEqual(self.streamEndpoint("--max-sessions", "77")._config.maxConnections, 77)

    def test_idleTimeout(self):
        """
        --idle-timeout holds on the listener, its keepalive shortened to fit.
        """
        config = self.streamEndpoint("--idle-timeout", "20")._config
        self.assertEqual((config.idleTimeout, config.keepaliveInterval), (20.0, 5.0))
        config = self.streamEndpoint("--idle-timeout", "600")._config
        self.assertEqual((config.idleTimeout, config.keepaliveInterval), (600.0, 60.0))

    def test_maxPendingRefused(self):
        """
        --max-pending has no stream counterpart: with --listen it refuses to
        start rather than not apply silently.
        """
        exit = self.assertRaises(SystemExit, makeService, self.options("--max-pending", "10"))
        self.assertNotEqual(exit.code, 0)

    def test_handshake(self):
        """
        --handshake gossip6 and its options hold on the listener.
        """
        from sudp.rsaidentity import RSAIdentity
        from sudp.rsakeyfiles import saveRSAIdentity

        rsaKey = os.path.join(self.dir, "rsa.key")
        saveRSAIdentity(RSAIdentity.generate(2048), rsaKey)
        trusted = os.path.join(self.dir, "trusted")
        with open(rsaKey + ".pub") as pub, open(trusted, "w") as f:
            f.write(pub.read())
        options = Options()
        options.parseOptions(["--port", "0", "--interface", "127.0.0.1", "--key", rsaKey, "--handshake",
                              "gossip6", "--trusted-keys", trusted, "--difficulty", "3", "--listen", LISTEN])
        [listener] = [s for s in makeService(options) if isinstance(s, StreamListener)]
        self.assertIsNotNone(listener.endpoint._handshake)
        self.assertEqual(listener.endpoint._handshake.config.difficulty, 3)

    def test_explicitListenOptionWins(self):
        """
        An option the --listen string names itself is kept.
        """
        endpoint = self.streamEndpoint("--max-sessions", "77",
                                       listen=LISTEN.replace("sframe:", "sframe:maxConnections=5:"))
        self.assertEqual(endpoint._config.maxConnections, 5)

    def test_plainStreamRefused(self):
        """
        Server-wide security options with a --listen that is not sframe:
        (so they could not apply) refuse to start.
        """
        exit = self.assertRaises(SystemExit, makeService,
                                 self.options("--authorized-keys", self.authorized, listen="tcp:0"))
        self.assertNotEqual(exit.code, 0)

class _Echo(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(data)

class KeyLocationTests(unittest.TestCase):
    """
    Where C{twist sudp} keeps its key (--state-dir, $STATE_DIRECTORY, --key)
    and the key it announces next (--next-key).
    """

    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)

    def service(self, *args, env=None):
        from sudp.tapservices import SUDPService

        old = os.environ.pop("STATE_DIRECTORY", None)
        self.addCleanup(lambda: os.environ.__setitem__("STATE_DIRECTORY", old) if old is not None
                        else os.environ.pop("STATE_DIRECTORY", None))
        if env is not None:
            os.environ["STATE_DIRECTORY"] = env
        options = Options()
        options.parseOptions(["--port", "0", "--interface", "127.0.0.1", *args])
        top = makeService(options)
        [udp] = [s for s in top if isinstance(s, SUDPService)]
        return options, udp

    def test_stateDirectory(self):
        """
        --state-dir DIR: the key is DIR/sudp_server.key, DIR created 0700.
        """
        import stat

        state = os.path.join(self.dir, "state", "sudp")
        options, udp = self.service("--state-dir", state)
        self.assertEqual(options["key"], os.path.join(state, "sudp_server.key"))
        self.assertTrue(udp.created)
        self.assertEqual(stat.S_IMODE(os.stat(state).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(options["key"]).st_mode), 0o600)
        options, udp = self.service("--state-dir", state)
        self.assertFalse(udp.created)  # the same key again

    def test_systemdStateDirectory(self):
        """
        Without --state-dir or --key, $STATE_DIRECTORY (systemd's
        StateDirectory=) holds the key.
        """
        options, _ = self.service(env=self.dir)
        self.assertEqual(options["key"], os.path.join(self.dir, "sudp_server.key"))

    def test_keyAndStateDirConflict(self):
        from twisted.python.usage import UsageError

        options = Options()
        self.assertRaises(UsageError, options.parseOptions,
                          ["--key", os.path.join(self.dir, "k"), "--state-dir", self.dir])

    def test_nextKey(self):
        """
        --next-key loads the key announced next; a missing file says how to
        make one; the server's own key is refused.
        """
        key = os.path.join(self.dir, "server.key")
        nextKey = os.path.join(self.dir, "next.key")
        identity = Identity.generate()
        saveIdentity(identity, nextKey)
        _, udp = self.service("--key", key, "--next-key", nextKey)
        self.assertEqual(udp.endpoint.nextIdentity.publicKey, identity.publicKey)
        exit = self.assertRaises(SystemExit, self.service, "--key", key, "--next-key",
                                 os.path.join(self.dir, "missing.key"))
        self.assertNotEqual(exit.code, 0)
        exit = self.assertRaises(SystemExit, self.service, "--key", nextKey, "--next-key", nextKey)
        self.assertNotEqual(exit.code, 0)

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

class TwistGossip6Tests(SUDPIntegrationMixin, unittest.TestCase):
    """
    `twist sudp --handshake gossip6`.
    """

    timeout = 60
    env = CommandLineTests.env
    twistSudp = CommandLineTests.twistSudp

    @defer.inlineCallbacks
    def test_twistGossip6(self):
        """
        twist sudp --handshake gossip6 creates an RSA server key, serves a
        client whose key is in --trusted-keys (over UDP and over sframe with
        --listen), and prints client strings to fill in with the client's key.
        """
        clientKey = os.path.join(self.dir, "client_rsa.key")
        saveRSAIdentity(CLIENT_ID, clientKey)
        trusted = os.path.join(self.dir, "clients.txt")
        with open(trusted, "w") as f:
            f.write(CLIENT_ID.publicKey.toText() + "\n")
        serverKey = os.path.join(self.dir, "server_rsa.key")
        # the sframe line comes last: wait for it, the UDP one is printed before
        out, sframe = yield self.twistSudp(
            serverKey, "sframe:handshake=gossip6", "--handshake", "gossip6", "--trusted-keys", trusted,
            "--difficulty", "3", "--listen", "sframe:endpoint=tcp\\:0\\:interface=127.0.0.1")
        self.assertIn("created server key", out)
        [udp] = [ln[ln.index("sudp:host="):].strip() for ln in out.splitlines() if "sudp:host=" in ln]
        self.assertIn(":handshake=gossip6:key=CLIENT_RSA.key:serverKey=rsa-", udp)
        for endpoint in (udp, sframe):
            client = yield clientFromString(
                reactor, endpoint.replace("CLIENT_RSA.key", clientKey) + ":difficulty=3").connect(RecorderFactory())
            client.transport.write(b"ping")
            self.assertEqual((yield client.waitFor(1)), [b"ping"])
            self.assertEqual(client.transport.peerPublicKey.toText(), udp.rpartition("serverKey=")[2])
            client.transport.loseConnection()
