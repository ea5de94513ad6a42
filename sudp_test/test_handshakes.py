# -*- test-case-name: sudp_test.udp.test_handshakes -*-
"""
Tests for L{sudp.handshakes}.

Handshakes as plug-ins: the objects (L{sudp.handshakes.SUDP1Handshake},
L{sudp.gossip6.handshake.Gossip6Handshake}) keep L{IHandshake} and give
halves that keep the engines' interfaces; choosing one by name in endpoint
strings; and the engines running a handshake they do not know, one that
asks for off-thread work before it answers.
"""

from twisted.trial import unittest
from zope.interface import implementer
from zope.interface.verify import verifyObject

from sudp.errors import ConfigurationError, KeyFileError
from sudp.gossip6.config import Gossip6Config
from sudp.gossip6.handshake import Gossip6Handshake
from sudp.gossip6.wire import G6_INIT, G6_RESP
from sudp.handshakes import (
    _CHOICES,
    HandshakeChoice,
    handshakeFromOptions,
    handshakeOptionNames,
    registerHandshake,
    SUDP1Handshake,
)
from sudp.interfaces import IDatagramClientHandshake, IDatagramServerHandshake, IHandshake
from sudp.keys import Identity
from sudp.stream.handshake import ClientKeyExchange, ServerKeyExchange, StreamConfig
from sudp.udp import packets as P
from sudp.udp.client import ClientEngine, ClientState
from sudp.udp.config import Config
from sudp.udp.events import MessageReceived, SessionOpened
from sudp.udp.server import ServerEngine
from sudp.udp.sudp1 import SUDP1Server
from sudp.work import WorkNeeded

from sudp_test.enginehelpers import CLIENT_ADDR, Network, SERVER_ADDR
from sudp_test.helpers import RSA

class PluginObjectTests(unittest.SynchronousTestCase):
    """
    Both shipped handshakes keep the plug-in contract.
    """

    def test_sudp1(self):
        """
        SUDP1Handshake and its halves provide their interfaces; its stream
        key exchanges are sframe's own, the client's pinning the keys given.
        """
        server, client = Identity.generate(), Identity.generate()
        handshake = SUDP1Handshake(serverKeys=[server.publicKey, server.publicKey])
        self.assertEqual((handshake.name, handshake.serverKeys), ("sudp/1", (server.publicKey,)))
        verifyObject(IHandshake, handshake)
        verifyObject(IDatagramServerHandshake, handshake.datagramServer(server))
        verifyObject(IDatagramClientHandshake, handshake.datagramClient(client))
        self.assertIsInstance(handshake.streamKeyExchange(True, client, StreamConfig()), ClientKeyExchange)
        self.assertIsInstance(handshake.streamKeyExchange(False, server, StreamConfig()), ServerKeyExchange)

    def test_gossip6(self):
        """
        Gossip6Handshake and its halves provide their interfaces; a
        server's stream connections share one record of accepted proofs.
        """
        handshake = Gossip6Handshake([RSA.publicKey], Gossip6Config(difficulty=3))
        self.assertEqual((handshake.name, handshake.trustedKeys), ("gossip6", (RSA.publicKey,)))
        verifyObject(IHandshake, handshake)
        verifyObject(IDatagramServerHandshake, handshake.datagramServer(RSA))
        verifyObject(IDatagramClientHandshake, handshake.datagramClient(RSA))
        first = handshake.streamKeyExchange(False, RSA, StreamConfig())
        second = handshake.streamKeyExchange(False, RSA, StreamConfig())
        self.assertIsNot(first, second)
        self.assertIs(first.reuse, second.reuse)
        self.assertIs(first.reuse, handshake.streamSetup().reuse)

    def test_keyFiles(self):
        """
        Each handshake loads its own kind of key and says how to make a
        missing one.
        """
        path = self.mktemp()
        for handshake, kind in ((SUDP1Handshake(), "sudp keygen "), (Gossip6Handshake([]), "--type rsa ")):
            e = self.assertRaises(KeyFileError, handshake.loadIdentity, path)
            self.assertIn(kind, str(e))
        self.assertIsInstance(SUDP1Handshake().loadIdentity(path, create=True), Identity)

    def test_gossip6TypesReserved(self):
        """
        gossip6's packet types are those sudp/1 reserves for a handshake
        plug-in, so a sudp/1 engine counts them as unexpected, not unknown.
        """
        self.assertEqual((G6_INIT, G6_RESP), (P.PLUGIN_INIT, P.PLUGIN_RESP))
        self.assertEqual(P.packetType(bytes([G6_INIT])), G6_INIT)

class ChoosingTests(unittest.SynchronousTestCase):
    """
    Endpoint strings name a handshake; the registry knows them.
    """

    def test_default(self):
        """
        Without handshake= (or with handshake=sudp) it is sudp/1's: None.
        """
        self.assertIsNone(handshakeFromOptions({}, "sudp server"))
        self.assertIsNone(handshakeFromOptions({"handshake": "sudp"}, "sudp server"))

    def test_unknown(self):
        """
        An unknown name is refused, naming the known ones.
        """
        e = self.assertRaises(ConfigurationError, handshakeFromOptions, {"handshake": "noise"}, "sudp server")
        self.assertIn("sudp or gossip6, not 'noise'", str(e))

    def test_registered(self):
        """
        A registered handshake is chosen by name with its options, which
        every endpoint string then accepts; its name cannot be taken twice.
        """
        made = []

        def fromOptions(options, what, authorized=None, serverKey=None):
            made.append((options.pop("rounds"), what, serverKey))
            return SUDP1Handshake()

        choice = HandshakeChoice("toy", {"rounds"}, fromOptions)
        registerHandshake(choice)
        self.addCleanup(_CHOICES.pop, "toy")
        self.assertIn("rounds", handshakeOptionNames())
        options = {"handshake": "toy", "rounds": "3"}
        self.assertIsInstance(handshakeFromOptions(options, "sudp client", serverKey="k"), SUDP1Handshake)
        self.assertEqual((made, options), ([("3", "sudp client", "k")], {}))
        self.assertRaises(ConfigurationError, registerHandshake, HandshakeChoice("toy", (), fromOptions))
        self.assertRaises(ConfigurationError, registerHandshake, HandshakeChoice("sudp", (), fromOptions))

class _Nothing:
    """
    Work that does nothing (its C{run} is the off-thread part).
    """

    def __init__(self):
        self.ran = self.cancelled = False

    def run(self):
        self.ran = True

    def cancel(self):
        self.cancelled = True

@implementer(IDatagramServerHandshake)
class SlowSUDP1Server:
    """
    sudp/1's server half, but it asks for off-thread work before each
    answer: a handshake the engine has never heard of.
    """

    initType = P.HANDSHAKE_INIT
    signatureSize = P.SIGNATURE_SIZE

    def __init__(self):
        self.inner = SUDP1Server()
        self.failed = []

    def decodeInit(self, data):
        return self.inner.decodeInit(data)

    def answer(self, engine, init, initBytes, addr, now):
        engine.awaitWork(_Nothing(), init, addr, now, (init, initBytes))

    def workDone(self, engine, pending, now):
        init, initBytes = pending.context
        self.inner.answer(engine, init, initBytes, pending.addr, now)

    def workFailed(self, engine, pending, now):
        self.failed.append(pending)

    def bound(self, address):
        pass

class ForeignHandshakeTests(unittest.SynchronousTestCase):
    """
    The engines run a handshake half they know only by its interface.
    """

    def setUp(self):
        self.identity = Identity.generate()
        self.half = SlowSUDP1Server()
        self.server = ServerEngine(self.identity, Config(), handshake=self.half)
        self.net = Network(self.server)
        self.client = self.net.add(ClientEngine(self.identity.publicKey, SERVER_ADDR), CLIENT_ADDR)

    def jobs(self):
        return [event.job for who, event in self.net.events if type(event) is WorkNeeded]

    def test_opensAfterTheWork(self):
        """
        The INIT waits in its pending slot for the work; once it is done
        the half answers and the session opens and carries messages.
        """
        self.client.start(self.net.now)
        self.net.pump()
        [job] = self.jobs()
        self.assertEqual((self.server.pendingCount, self.server.sessions), (1, {}))
        job.run()
        self.server.workDone(job, self.net.now)
        self.net.pump()
        self.assertEqual(self.client.state, ClientState.ESTABLISHED)
        self.assertEqual((self.server.pendingCount, self.server.working), (0, {}))
        [opened] = self.net.take("server", SessionOpened)
        self.client.sendMessage(self.client.session, b"hello", self.net.now)
        self.net.pump()
        [received] = self.net.take("server", MessageReceived)
        self.assertEqual(received.message, b"hello")

    def test_expiresAndCancels(self):
        """
        Work not done within handshakeTimeout frees the slot, is cancelled
        and counted; its late result is ignored.
        """
        self.client.start(self.net.now)
        self.net.pump()
        [job] = self.jobs()
        self.server.handleTimer(self.net.now + self.server.config.handshakeTimeout)
        self.assertTrue(job.cancelled)
        self.assertEqual((self.server.pendingCount, self.server.byEphemeral), (0, {}))
        self.assertEqual(self.server.drops["handshake-expired"], 1)
        self.server.workDone(job, self.net.now)
        self.assertEqual((self.server.datagramsToSend(), self.server.sessions), ([], {}))

    def test_failedAndShutdown(self):
        """
        Failed work is the half's to count; shutting down cancels work in
        progress.
        """
        self.client.start(self.net.now)
        self.net.pump()
        [job] = self.jobs()
        self.server.workFailed(job, self.net.now)
        self.assertEqual(len(self.half.failed), 1)
        self.assertEqual(self.server.pendingCount, 0)
        other = self.net.add(ClientEngine(self.identity.publicKey, SERVER_ADDR), ("127.0.0.1", 40001))
        other.start(self.net.now)
        self.net.pump()
        [_, second] = self.jobs()
        self.server.shutdown(self.net.now)
        self.assertTrue(second.cancelled)
        self.assertEqual((self.server.pendingCount, self.server.working), (0, {}))
