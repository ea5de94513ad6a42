"""
Tests for L{sudp.tap}: every server-wide option of C{twist sudp} holds for
its C{--listen} stream listeners too, or the command refuses to start.
"""

import os

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import clientFromString
from twisted.trial import unittest

from sudp.errors import ClientNotAuthorized
from sudp.keys import Identity, saveIdentity
from sudp.stream.handshake import AEAD_FRAMES, GCM_FRAMES
from sudp.tap import Options, makeService
from sudp.tapservices import StreamListener

from sudp_test.waiting import waitUntil

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
