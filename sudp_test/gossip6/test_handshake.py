# -*- test-case-name: sudp_test.gossip6.test_handshake -*-
"""
Tests for L{sudp.gossip6.handshake}.
"""

import os

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.trial import unittest

from sudp.errors import ClientNotAuthorized, HandshakeFailed, HandshakeTimeout
from sudp.gossip6.udp import Gossip6Refused
from sudp.keys import Identity
from sudp.rsakeyfiles import saveRSAIdentity
from sudp.stream.connection import StreamConnection
from sudp.udp.handshake import clientProof
from sudp.udp.keyschedule import SFRAME_LABELS

from sudp_test.gossip6.helpers import KEYS, REFUSALS
from sudp_test.integration import Recorder, RecorderFactory

LOW = ":difficulty=3:scryptN=64"

class Peer(Recorder):
    """
    A L{Recorder} that tells its factory when it is connected (sframe builds
    the application protocol before the key exchange, and connects it only
    after).
    """

    def connectionMade(self):
        if not self.factory.connected.called:
            self.factory.connected.callback(self)

class PeerFactory(RecorderFactory):
    """
    @ivar connected: fires with the first L{Peer} connected.
    """

    def __init__(self):
        RecorderFactory.__init__(self, Peer)
        self.connected = defer.Deferred()

class UDPRelay:
    """
    A one-client UDP "NAT" on 127.0.0.2: what the client sends to the
    public socket leaves the inside socket for the server; the server's
    answers go back the same way.
    """

    def __init__(self):
        relay = self

        class Public(protocol.DatagramProtocol):
            def datagramReceived(self, data, addr):
                relay.client = addr
                if relay.server is not None:
                    relay.insidePort.write(data, relay.server)

        class Inside(protocol.DatagramProtocol):
            def datagramReceived(self, data, addr):
                if addr == relay.server and relay.client is not None:
                    relay.publicPort.write(data, relay.client)

        self.client = self.server = None
        self.publicPort = reactor.listenUDP(0, Public(), interface="127.0.0.2")
        self.insidePort = reactor.listenUDP(0, Inside(), interface="127.0.0.2")

    def stop(self):
        return defer.gatherResults([defer.maybeDeferred(self.publicPort.stopListening),
                                    defer.maybeDeferred(self.insidePort.stopListening)])

class Pipe(protocol.Protocol):
    """
    One side of a TCP relay: what arrives is written to the other side.
    """

    def __init__(self):
        self.other = None
        self.buffered = []
        self.made = defer.Deferred()
        self.lost = defer.Deferred()

    def connectionMade(self):
        self.made.callback(self)

    def dataReceived(self, data):
        if self.other is None:
            self.buffered.append(data)
        else:
            self.other.transport.write(data)

    def join(self, other):
        self.other, other.other = other, self
        for a, b in ((self, other), (other, self)):
            for data in a.buffered:
                b.transport.write(data)
            a.buffered = []

    def connectionLost(self, reason):
        self.lost.callback(None)
        if self.other is not None and self.other.transport is not None:
            self.other.transport.loseConnection()

class RelayFactory(protocol.Factory):
    """
    The public side of a TCP relay; C{first} fires with its first
    connection once made.
    """

    def __init__(self):
        self.first = defer.Deferred()

    def buildProtocol(self, addr):
        pipe = Pipe()
        if not self.first.called:
            pipe.made.addCallback(self.first.callback)
        return pipe

class Gossip6EndpointTests(unittest.TestCase):
    """
    sudp: and sframe: endpoint strings with handshake=gossip6 over real
    sockets on 127.0.0.1 (and 127.0.0.2 for a "NAT").
    """

    timeout = 60

    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.keyFiles = {}
        for name in ("server", "client", "stranger"):
            path = os.path.join(self.dir, name + ".key")
            saveRSAIdentity(getattr(KEYS, name), path, comment=name)
            self.keyFiles[name] = path
        self.serverTrusts = self.trusted("server-trusts", ["client"])
        self.clientTrusts = self.trusted("client-trusts", ["server"])

    def trusted(self, name, who):
        """
        @return: a trusted keys file of the C{.pub} lines of C{who}.
        """
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write("# trusted gossip6 peers\n")
            for w in who:
                with open(self.keyFiles[w] + ".pub") as pub:
                    f.write(pub.read())
        return path

    def sudpServer(self, extra=LOW):
        return (f"sudp:0:key={self.keyFiles['server']}:interface=127.0.0.1:handshake=gossip6:"
                f"trustedKeys={self.serverTrusts}{extra}")

    def sudpClient(self, port, host="127.0.0.1", key="client", extra=LOW):
        return (f"sudp:host={host}:port={port}:handshake=gossip6:key={self.keyFiles[key]}:"
                f"trustedKeys={self.clientTrusts}:bindAddress=127.0.0.1{extra}")

    def sframeServer(self, extra=LOW):
        return (f"sframe:key={self.keyFiles['server']}:handshake=gossip6:trustedKeys={self.serverTrusts}{extra}"
                ":endpoint=tcp\\:0\\:interface=127.0.0.1")

    def sframeClient(self, port, host="127.0.0.1", key="client", extra=LOW):
        return (f"sframe:key={self.keyFiles[key]}:handshake=gossip6:trustedKeys={self.clientTrusts}{extra}"
                f":endpoint=tcp\\:{host}\\:{port}")

    @defer.inlineCallbacks
    def listen(self, description, factory):
        endpoint = serverFromString(reactor, description)
        port = yield endpoint.listen(factory)
        self.addCleanup(port.stopListening)
        return endpoint, port

    @defer.inlineCallbacks
    def exchange(self, client, factory, serverKey=None, clientKey=None):
        """
        Messages go both ways; each side's transport names the other's RSA
        key; then the client closes and both ends see it.
        """
        server = yield factory.connected
        client.transport.write(b"hello, server")
        got = yield server.waitFor(1)
        self.assertEqual(got, [b"hello, server"])
        server.transport.write(b"hello, client")
        got = yield client.waitFor(1)
        self.assertEqual(got, [b"hello, client"])
        self.assertEqual(client.transport.peerPublicKey, serverKey or KEYS.server.publicKey)
        self.assertEqual(server.transport.peerPublicKey, clientKey or KEYS.client.publicKey)
        client.transport.loseConnection()
        yield client.lost
        yield server.lost.addTimeout(5, reactor)

    def recordRefusals(self, endpoint):
        """
        @return: a list receiving the reason of every gossip6 refusal of an
            sframe server endpoint's connections (sframe keeps no drop counters).
        """
        handshake, refusals = endpoint._handshake, []
        make = handshake.streamKeyExchange

        def keyExchange(isClient, identity, streamConfig, random=None):
            kx = make(isClient, identity, streamConfig, random)
            receive = kx.receive

            def recording(data, now):
                try:
                    return receive(data, now)
                except Gossip6Refused as e:
                    refusals.append(e.reason)
                    raise

            kx.receive = recording
            return kx

        handshake.streamKeyExchange = keyExchange
        return refusals

    @defer.inlineCallbacks
    def test_sudpTrustedClient(self):
        """
        A trusted client connects over sudp: with handshake=gossip6; messages
        go both ways and peerPublicKey is each side's RSA key; the server
        started one proof and dropped nothing.
        """
        factory = PeerFactory()
        _, port = yield self.listen(self.sudpServer(), factory)
        client = yield clientFromString(reactor, self.sudpClient(port.getHost().port)).connect(RecorderFactory())
        yield self.exchange(client, factory)
        stats = port.engine.stats()
        self.assertEqual(set(stats["drops"]) & REFUSALS, set())
        self.assertEqual((stats["proofs-started"], stats["sessions-opened"]), (1, 1))
        self.assertEqual(port.engine.handshake.localAddresses, (("127.0.0.1", port.getHost().port),))

    @defer.inlineCallbacks
    def test_sframeTrustedClient(self):
        """
        A trusted client connects over sframe: (TCP) with handshake=gossip6;
        messages go both ways and peerPublicKey is each side's RSA key.
        """
        factory = PeerFactory()
        endpoint, port = yield self.listen(self.sframeServer(), factory)
        refusals = self.recordRefusals(endpoint)
        client = yield clientFromString(reactor, self.sframeClient(port.getHost().port)).connect(RecorderFactory())
        yield self.exchange(client, factory)
        self.assertEqual((refusals, len(endpoint._handshake.streamSetup().reuse)), ([], 1))

    @defer.inlineCallbacks
    def test_sframeClientProofRefused(self):
        """
        A trusted gossip6 client that adds an Ed25519 client proof to its
        CONFIRM (to swap its verified RSA identity for another key) is
        refused (not-authorized); the server's application never sees it.
        On the landed code the connection opened with the Ed25519 key as
        the client's identity.
        """
        factory = PeerFactory()
        _, port = yield self.listen(self.sframeServer(), factory)
        other = Identity.generate()
        keysSet = StreamConnection._step

        def withProof(engine, step, now):
            if engine.isClient and step.established is not None:
                step.established.confirm = clientProof(other, step.established.transcript, SFRAME_LABELS)
            return keysSet(engine, step, now)

        self.patch(StreamConnection, "_step", withProof)
        d = clientFromString(reactor, self.sframeClient(port.getHost().port)).connect(RecorderFactory())
        yield self.assertFailure(d, ClientNotAuthorized)
        self.assertFalse(factory.connected.called)

    @defer.inlineCallbacks
    def test_sudpUntrustedClient(self):
        """
        A client whose key the server does not trust fails to connect (no
        answer: the handshake times out) and the server counted
        untrusted-key, keeping nothing.
        """
        factory = PeerFactory()
        _, port = yield self.listen(self.sudpServer(), factory)
        d = clientFromString(reactor, self.sudpClient(port.getHost().port, key="stranger",
                                                      extra=LOW + ":timeout=1")).connect(RecorderFactory())
        yield self.assertFailure(d, HandshakeTimeout)
        drops = port.engine.stats()["drops"]
        self.assertEqual(set(drops), {"untrusted-key"})
        self.assertGreaterEqual(drops["untrusted-key"], 1)
        self.assertEqual((port.engine.pendingCount, port.engine.sessions, factory.protocols), (0, {}, []))
        self.assertFalse(factory.connected.called)

    @defer.inlineCallbacks
    def test_sframeUntrustedClient(self):
        """
        Over sframe, the server refuses an untrusted client's message
        (untrusted-key) and drops the connection; connect fails.
        """
        factory = PeerFactory()
        endpoint, port = yield self.listen(self.sframeServer(), factory)
        refusals = self.recordRefusals(endpoint)
        d = clientFromString(reactor, self.sframeClient(port.getHost().port, key="stranger")).connect(
            RecorderFactory())
        yield self.assertFailure(d, HandshakeFailed)
        self.assertEqual((refusals, len(endpoint._handshake.streamSetup().reuse)), (["untrusted-key"], 0))
        self.assertFalse(factory.connected.called)

    @defer.inlineCallbacks
    def test_sudpBehindNAT(self):
        """
        A server on 127.0.0.1 known to its clients by a "NAT" address on
        127.0.0.2 (localAddresses=): a client that names the socket's own
        address is refused (wrong-address); one that reaches the server
        through the NAT names that address and is accepted (the client,
        seen by the server at the NAT's inside address, names that one in
        its own localAddresses).
        """
        relay = UDPRelay()
        self.addCleanup(relay.stop)
        public, inside = relay.publicPort.getHost().port, relay.insidePort.getHost().port
        factory = PeerFactory()
        _, port = yield self.listen(self.sudpServer(LOW + f":localAddresses=127.0.0.2\\:{public}"), factory)
        relay.server = ("127.0.0.1", port.getHost().port)
        d = clientFromString(reactor, self.sudpClient(port.getHost().port, extra=LOW + ":timeout=1")).connect(
            RecorderFactory())
        yield self.assertFailure(d, HandshakeTimeout)
        self.assertEqual(set(port.engine.drops), {"wrong-address"})
        client = yield clientFromString(
            reactor, self.sudpClient(public, "127.0.0.2", extra=LOW + f":localAddresses=127.0.0.2\\:{inside}"),
        ).connect(RecorderFactory())
        yield self.exchange(client, factory)
        self.assertEqual(set(port.engine.drops), {"wrong-address"})

    @defer.inlineCallbacks
    def test_sframeBehindNAT(self):
        """
        The same over sframe with a TCP relay on 127.0.0.2: the direct
        client is refused (wrong-address), the relayed one accepted.
        """
        relayFactory = RelayFactory()
        relayPort = reactor.listenTCP(0, relayFactory, interface="127.0.0.2")
        self.addCleanup(relayPort.stopListening)
        public = relayPort.getHost().port
        factory = PeerFactory()
        endpoint, port = yield self.listen(self.sframeServer(LOW + f":localAddresses=127.0.0.2\\:{public}"),
                                           factory)
        refusals = self.recordRefusals(endpoint)
        d = clientFromString(reactor, self.sframeClient(port.getHost().port)).connect(RecorderFactory())
        yield self.assertFailure(d, HandshakeFailed)
        self.assertEqual(refusals, ["wrong-address"])
        # the NAT's inside connection, made first so that its address is known
        inside = Pipe()
        yield protocol.ClientCreator(reactor, lambda: inside).connectTCP(
            "127.0.0.1", port.getHost().port, bindAddress=("127.0.0.2", 0))
        self.addCleanup(lambda: inside.transport.loseConnection() or inside.lost)
        insidePort = inside.transport.getHost().port
        d = clientFromString(
            reactor, self.sframeClient(public, "127.0.0.2", extra=LOW + f":localAddresses=127.0.0.2\\:{insidePort}"),
        ).connect(RecorderFactory())
        outer = yield relayFactory.first
        outer.join(inside)
        client = yield d
        yield self.exchange(client, factory)
        self.assertEqual(refusals, ["wrong-address"])

    @defer.inlineCallbacks
    def test_sudpDefaultParameters(self):
        """
        At the default parameters (scrypt N=1024, r=8, p=1, difficulty 6) a
        trusted client connects over sudp: and messages go both ways.
        """
        factory = PeerFactory()
        _, port = yield self.listen(self.sudpServer(extra=""), factory)
        config = port.engine.handshake.gossip6
        self.assertEqual((config.scryptN, config.scryptR, config.scryptP, config.difficulty), (1024, 8, 1, 6))
        client = yield clientFromString(reactor, self.sudpClient(port.getHost().port, extra="")).connect(
            RecorderFactory())
        yield self.exchange(client, factory)
        self.assertGreaterEqual(port.engine.counters["proof-attempts"], 1)
