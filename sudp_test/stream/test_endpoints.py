# -*- test-case-name: sudp_test.stream.test_endpoints -*-
"""
Tests for L{sudp.stream.endpoints}.

Adversarial tests of sframe (seed 003 frames over a stream).

A. The codec (L{FrameWriter}/L{FrameReader}) with each stream cipher (seed
   003's AES-256-CTR with the chained MAC, ChaCha20-Poly1305 and AES-256-GCM
   per frame), no reactor: every single bit flipped, truncation, headers
   refused before their payload, sequence wrap, replay and reordering,
   arbitrary read boundaries and write splitting (hypothesis).

B. L{SFrameProtocol} under Twisted, in memory (L{MemoryReactorClock},
   L{twisted.test.iosim}, L{StringTransport}) and, for flow control, over
   real TCP on 127.0.0.1: bytes tampered in flight, a peer stopping or
   trickling mid-frame, handshake timeouts, wrong keys, refused clients,
   garbage instead of a handshake, peers holding the keys but breaking the
   CONFIRM/ACCEPT/CLOSE rules, producers and pausing.

Every limit hit on purpose over real sockets on 127.0.0.1: each gives its
clear error or counted drop, and the server keeps serving everyone else.

A "bystander" client is connected before each limit is hit and must get
its echo back before, while and after the limit bites.

sframe integration over real TCP on 127.0.0.1: an unchanged twisted.web
application behind an sframe server endpoint, fetched by an unchanged Agent
through an sframe client endpoint; endpoint strings; client authentication;
frame codes for applications that want them.
"""

import hashlib
import os

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.internet.task import deferLater
from twisted.trial import unittest
from twisted.web.client import Agent, readBody
from twisted.web.iweb import IAgentEndpointFactory
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data
from zope.interface import implementer

from sudp.errors import BadServerSignature, ClientNotAuthorized, ConfigurationError
from sudp.keys import Identity, saveIdentity
from sudp.stream.protocol import IFrameReceiver, ISFrameTransport, SFrameDone, SFrameLost
from sudp.tap import Echo

from sudp_test import integration
from sudp_test.integration import BystanderMixin, EchoRecorder, Recorder, RecorderFactory
from sudp_test.stream.helpers import MemoryRecorderFactory, PushProducer
from sudp_test.waiting import sleep

class RealTCPFlowTests(unittest.TestCase):
    """
    Flow control over real TCP on 127.0.0.1, through endpoint strings.
    """

    timeout = 10

    @defer.inlineCallbacks
    def setUpConnection(self, serverApp):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        keyFile = os.path.join(directory, "server.key")
        identity = Identity.generate()
        saveIdentity(identity, keyFile)
        port = yield serverFromString(
            reactor, f"sframe:key={keyFile}:endpoint=tcp\\:0\\:interface=127.0.0.1"
        ).listen(serverApp)
        self.addCleanup(port.stopListening)
        client = yield clientFromString(
            reactor,
            f"sframe:serverKey={identity.publicKey.toText()}"
            f":endpoint=tcp\\:127.0.0.1\\:{port.getHost().port}",
        ).connect(MemoryRecorderFactory())
        self.addCleanup(self.closeClient, client)
        for _ in range(200):
            if serverApp.built and serverApp.built[0].made:
                break
            yield deferLater(reactor, 0.01, lambda: None)
        return client, serverApp.built[0]

    def closeClient(self, client):
        if client.lost is None:
            client.transport.abortConnection()

    @defer.inlineCallbacks
    def waitUntil(self, condition, seconds=5):
        for _ in range(int(seconds / 0.01)):
            if condition():
                return
            yield deferLater(reactor, 0.01, lambda: None)
        self.fail("timed out")

    @defer.inlineCallbacks
    def test_pauseAndProducer(self):
        """
        A server application that pauses its sframe transport receives
        nothing until it resumes; meanwhile the client's push producer is
        paused once its large write fills the TCP buffer, and resumed after
        the server reads again; every byte arrives.
        """
        serverApp = MemoryRecorderFactory()
        client, server = yield self.setUpConnection(serverApp)
        server.transport.pauseProducing()
        producer = PushProducer()
        client.transport.registerProducer(producer, True)
        data = os.urandom(4 * 1024 * 1024)
        client.transport.write(data)
        self.assertIn("pause", producer.calls)
        yield deferLater(reactor, 0.3, lambda: None)
        self.assertEqual(server.received(), b"")
        self.assertNotIn("resume", producer.calls)
        server.transport.resumeProducing()
        yield self.waitUntil(lambda: len(server.received()) >= len(data))
        self.assertEqual(server.received(), data)
        yield self.waitUntil(lambda: "resume" in producer.calls)
        client.transport.unregisterProducer()
        client.transport.loseConnection()
        yield self.waitUntil(lambda: server.lost is not None and client.lost is not None)
        self.assertIsInstance(server.lost.value, SFrameDone)

@implementer(IAgentEndpointFactory)
class SFrameEndpoints:
    """
    Tells an Agent to reach every URI through an sframe client endpoint.
    """

    def __init__(self, serverKey, port, suite):
        self.serverKey = serverKey
        self.port = port
        self.suite = suite
        self.used = 0

    def endpointForURI(self, uri):
        self.used += 1
        return clientFromString(
            reactor,
            f"sframe:serverKey={self.serverKey}:suites={self.suite}:endpoint=tcp\\:127.0.0.1\\:{self.port}",
        )

class SFrameTestMixin(integration.SUDPIntegrationMixin):
    """
    The same helpers as for sudp, with sframe endpoint strings over TCP.
    """

    timeout = 60

    def serverString(self, options):
        return f"sframe:key={self.serverKeyFile}{options}:endpoint=tcp\\:0\\:interface=127.0.0.1"

    def clientString(self, options, key):
        return f"sframe:serverKey={key}{options}:endpoint=tcp\\:127.0.0.1\\:{self.port.getHost().port}"

class SFrameLimitTests(BystanderMixin, SFrameTestMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def test_frameTooLarge(self):
        """
        A peer whose frames are larger than the server's maxFramePayload
        loses its connection with SFrameLost('frame-too-large'), found from
        the header before the payload is buffered; another connection to
        the same server is served throughout.
        """
        factory = RecorderFactory(EchoRecorder)
        yield self.listen(factory, options=":maxFramePayload=1024")
        yield self.bystander(":maxFramePayload=1024")
        big = yield self.connect(":maxFramePayload=65536")
        serverSide = factory.protocols[-1]
        big.transport.write(b"x" * 5000)  # one 5000-byte frame from this client
        reason = yield serverSide.lost
        self.assertIsInstance(reason, SFrameLost)
        self.assertEqual(reason.reason, "frame-too-large")
        yield big.lost
        yield self.ping()
        # the bystander's own large write is split into frames within the
        # limit, and all of it comes back
        payload = os.urandom(5000)
        self.by.transport.write(payload)
        for _ in range(100):
            echoed = b"".join(self.by.messages[self.pings:])
            if len(echoed) >= len(payload):
                break
            yield sleep(0.05)
        self.assertEqual(echoed, payload)
        self.assertGreaterEqual(len(self.by.messages) - self.pings, 5)  # in frames of at most 1024

class WebOverSFrameTests(SFrameTestMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def fetch(self, suite):
        body = os.urandom(3 * 1024 * 1024 + 12345)
        root = Resource()
        root.putChild(b"big", Data(body, "application/octet-stream"))
        yield self.listen(Site(root))
        endpoints = SFrameEndpoints(self.identity.publicKey.toText(), self.port.getHost().port, suite)
        agent = Agent.usingEndpointFactory(reactor, endpoints)
        response = yield agent.request(b"GET", b"http://sframe.test/big")
        self.assertEqual(response.code, 200)
        got = yield readBody(response)
        self.assertEqual(len(got), len(body))
        self.assertEqual(hashlib.sha256(got).digest(), hashlib.sha256(body).digest())
        self.assertEqual(endpoints.used, 1)

    def test_webSeed003(self):
        """
        twisted.web, unchanged, serves a 3 MiB resource over sframe with seed
        003's suite; an unchanged Agent fetches it through an sframe client
        endpoint and the bytes match.
        """
        return self.fetch("aes-256-ctr-sha256")

    def test_webAEAD(self):
        """
        The same with the per-frame ChaCha20-Poly1305 suite.
        """
        return self.fetch("chacha20-poly1305")

    def test_webGCM(self):
        """
        The same with the per-frame AES-256-GCM suite.
        """
        return self.fetch("aes-256-gcm")

class SFrameEndpointTests(SFrameTestMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def test_echoAndTransport(self):
        """
        Bytes written in pieces of any size come back whole; the transport
        tells the suite and the server's verified key.
        """
        yield self.listen(protocol.Factory.forProtocol(Echo))
        client = yield self.connect()
        self.assertTrue(ISFrameTransport.providedBy(client.transport))
        self.assertEqual(client.transport.suite, "aes-256-ctr-sha256")
        self.assertEqual(client.transport.peerPublicKey, self.identity.publicKey)
        data = os.urandom(200_000)
        client.transport.write(data[:7])
        client.transport.writeSequence([data[7:100_000], data[100_000:]])
        while sum(map(len, client.messages)) < len(data):
            yield client.waitFor(len(client.messages) + 1)
        self.assertEqual(b"".join(client.messages), data)
        self.assertEqual(client.transport.getPeer().port, self.port.getHost().port)

    @defer.inlineCallbacks
    def test_cleanClose(self):
        """
        loseConnection ends both sides cleanly (SFrameDone, a ConnectionDone).
        """
        factory = RecorderFactory()
        yield self.listen(factory)
        client = yield self.endpoint().connect(RecorderFactory())
        server = yield factory.built
        client.transport.write(b"bye")
        yield server.waitFor(1)
        client.transport.loseConnection()
        reason = yield server.lost.addTimeout(5, reactor)
        self.assertIsInstance(reason, SFrameDone)
        self.assertEqual(reason.reason, "closed-by-peer")
        reason = yield client.lost
        self.assertIsInstance(reason, SFrameDone)

    @defer.inlineCallbacks
    def test_wrongServerKey(self):
        """
        A client naming another server key fails connect with BadServerSignature.
        """
        yield self.listen(protocol.Factory.forProtocol(Echo))
        d = self.endpoint(serverKey=Identity.generate().publicKey.toText()).connect(RecorderFactory())
        yield self.assertFailure(d, BadServerSignature)

    @defer.inlineCallbacks
    def test_clientAuthentication(self):
        """
        With authorizedKeys the server admits a listed client key, exposes it
        on its transport, and refuses other clients with ClientNotAuthorized.
        """
        me = Identity.generate()
        mine = os.path.join(self.dir, "me.key")
        saveIdentity(me, mine)
        other = os.path.join(self.dir, "other.key")
        saveIdentity(Identity.generate(), other)
        authorized = os.path.join(self.dir, "authorized")
        with open(authorized, "w") as f:
            f.write(me.publicKey.toText() + " me\n")
        factory = RecorderFactory()
        yield self.listen(factory, f":authorizedKeys={authorized}")
        client = yield self.connect(f":key={mine}")
        server = yield factory.built
        self.assertEqual(server.transport.peerPublicKey, me.publicKey)
        yield self.assertFailure(self.endpoint(f":key={other}").connect(RecorderFactory()), ClientNotAuthorized)
        yield self.assertFailure(self.endpoint().connect(RecorderFactory()), ClientNotAuthorized)
        self.assertEqual(len(factory.protocols), 3)
        self.assertEqual(client.transport.suite, "aes-256-ctr-sha256")

    @defer.inlineCallbacks
    def test_frameCodes(self):
        """
        A protocol providing IFrameReceiver gets each frame's CODE; codes
        reserved for sframe are refused on writeFrame.
        """
        @implementer(IFrameReceiver)
        class Coded(Recorder):
            def frameReceived(self, code, payload):
                self.dataReceived(b"%d:" % code + payload)

        factory = RecorderFactory(Coded)
        yield self.listen(factory)
        client = yield self.connect()
        server = yield factory.built
        client.transport.writeFrame(7, b"seven")
        client.transport.write(b"plain")
        client.transport.writeFrame(0xFFFFFEFF, b"top")
        got = yield server.waitFor(3)
        self.assertEqual(got, [b"7:seven", b"0:plain", b"%d:top" % 0xFFFFFEFF])
        self.assertRaises(ValueError, client.transport.writeFrame, 0xFFFFFF00, b"x")

    def test_parseErrors(self):
        """
        Bad sframe endpoint strings fail at parse time with clear errors.
        """
        key = self.identity.publicKey.toText()
        for bad in [
            "sframe:endpoint=tcp\\:0",
            f"sframe:key={self.serverKeyFile}",
            f"sframe:key={self.serverKeyFile}:endpoint=tcp\\:0:suites=rot13",
            f"sframe:key={self.serverKeyFile}:endpoint=tcp\\:0:bogus=1",
            f"sframe:key={self.serverKeyFile}:endpoint=tcp\\:0:maxFramePayload=0",
        ]:
            self.assertRaises(ConfigurationError, serverFromString, reactor, bad)
        for bad in [
            "sframe:endpoint=tcp\\:127.0.0.1\\:1",
            f"sframe:serverKey={key}",
            "sframe:serverKey=ed25519-x:endpoint=tcp\\:127.0.0.1\\:1",
            f"sframe:serverKey={key}:endpoint=tcp\\:127.0.0.1\\:1:frameTimeout=soon",
        ]:
            self.assertRaises(ConfigurationError, clientFromString, reactor, bad)

class KeyExchangeRuleTests(unittest.TestCase):
    def test_udpInitRefused(self):
        """
        An sframe server refuses a HANDSHAKE_INIT with a timestamp or cookie
        (a sudp/1 INIT), so it never signs a transcript a UDP client would
        accept.
        """
        from sudp.errors import HandshakeFailed
        from sudp.stream.handshake import ServerKeyExchange, StreamConfig
        from sudp.udp import packets as P

        init = P.HandshakeInit(7, 1234, b"c" * 16, Identity.generate().publicKey.raw, [1]).encode()
        kx = ServerKeyExchange(Identity.generate(), StreamConfig())
        e = self.assertRaises(HandshakeFailed, kx.receive, len(init).to_bytes(2, "big") + init)
        self.assertIn("not an sframe", str(e))

    def test_minimumFramePayload(self):
        """
        maxFramePayload below 128 is a configuration error: a CONFIRM with a
        client proof (96 bytes) must fit one frame.
        """
        from sudp.stream.handshake import StreamConfig

        self.assertRaises(ConfigurationError, StreamConfig, maxFramePayload=127)
        self.assertEqual(StreamConfig(maxFramePayload=128).maxFramePayload, 128)
