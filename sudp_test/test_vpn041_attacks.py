"""
The attacks of the vpn041 hardening review (docs/vpn041.md, "Attacks of
the hardening review"), each run against real gateways and clients on
127.0.0.1: reflection, replay and the CBC padding oracle, outsiders ending
sessions, and the authentication port held by idle connections.
"""

import os
import socket
import textwrap

from twisted.internet import defer, reactor
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from twisted.logger import LogLevel

from sudp.vpn041.auth import SessionIds
from sudp.vpn041.dataplane import HEADER_SIZE
from sudp.vpn041.nonces import makeNonce
from sudp.vpn041.settings import AppSettings, Limits

from sudp.errors import ConfigurationError
from sudp.stream.listener import defaultMaxConnections
from sudp.vpn041.client import Vpn041Client
from sudp.vpn041.gateway import AuthServerProtocol, Gateway

from sudp_test.attackers import established, serverProcess, silentConnections
from sudp_test.test_vpn041 import LogCapture, RecorderFactory, Vpn041Mixin, flip, udpAddress, waitUntil


def modeName(useEncryption, authenticated):
    """
    @return: a short name of a data-plane mode, for messages.
    """
    return {(False, False): "plaintext", (True, False): "cbc", (False, True): "gmac", (True, True): "gcm"}[
        (useEncryption, authenticated)]


class AttackMixin(Vpn041Mixin):
    """
    Sessions to attack, and the three places a datagram can come from: the
    client's own UDP socket, the gateway's, and a third address.
    """

    @defer.inlineCallbacks
    def captured(self, useEncryption, authenticated):
        """
        @return: C{(gateway, client, p, g, up, down)}: one session, with one
            datagram captured in each direction (C{up} from the client, C{down}
            from the gateway), both delivered.
        """
        gateway, _, client, p, g = yield self.session(useEncryption, authenticated)
        up, down = self.captureInput(gateway), self.captureOutput(gateway)
        p.transport.write(b"client to gateway")
        g.transport.write(b"gateway to client")
        yield g.waitFor(1)
        yield p.waitFor(1)
        return gateway, client, p, g, up[0], down[0]

    def handled(self, side, protocol):
        """
        @return: how many datagrams C{side} (a gateway or a client) has
            delivered to C{protocol} or dropped, plus one if its session ended.
        """
        return len(protocol.messages) + sum(side.drops.values()) + (not protocol.transport.connected)

    def toClientFrom(self, sock, client, datagram):
        """
        Send C{datagram} to the client from C{sock}.
        """
        host = client.udpPort.getHost()
        sock.sendto(datagram, (host.host, host.port))


class ReflectionTests(AttackMixin, unittest.TestCase):
    """
    Issue 16 point 1: a datagram sent back towards its sender is never
    delivered, whatever address it comes from; one from a third address
    is a counted drop that cannot end the session.
    """

    @defer.inlineCallbacks
    def reflect(self, useEncryption, authenticated):
        name = modeName(useEncryption, authenticated)
        gateway, client, p, g, up, down = yield self.captured(useEncryption, authenticated)
        third = self.rawSocket()
        before = self.handled(gateway, g), self.handled(client, p)
        # from a third address: each datagram to the side that sent it, and to the other
        third.sendto(down, udpAddress(gateway))
        third.sendto(up, udpAddress(gateway))
        self.toClientFrom(third, client, up)
        self.toClientFrom(third, client, down)
        yield waitUntil(lambda: self.handled(gateway, g) >= before[0] + 2 and self.handled(client, p) >= before[1] + 2,
                        f"{name}: four datagrams handled")
        self.assertEqual((g.messages, p.messages), ([b"client to gateway"], [b"gateway to client"]), name)
        self.assertEqual((gateway.drops["wrong-address"], client.drops["wrong-address"]), (2, 2), name)
        self.assertIn(client.session.sessionId, gateway.sessions, name)
        self.assertFalse(client.fatal.called, name)
        # from the peer's own address (spoofed): the gateway's push to the gateway, the client's to the client
        before = self.handled(gateway, g), self.handled(client, p)
        self.fromClient(client, gateway, down)
        self.fromGateway(gateway, client, up)
        yield waitUntil(lambda: self.handled(gateway, g) >= before[0] + 1 and self.handled(client, p) >= before[1] + 1,
                        f"{name}: two reflections handled")
        self.assertEqual((g.messages, p.messages), ([b"client to gateway"], [b"gateway to client"]), name)
        self.assertEqual((gateway.drops["replay"], client.drops["replay"]), (1, 1), name)
        self.assertIn(client.session.sessionId, gateway.sessions, name)
        self.assertFalse(client.fatal.called, name)

    def test_plaintext(self):
        """
        useEncryption false: a datagram sent back to its sender, from the
        peer's address or a third one, is dropped and counted (from the
        peer's address, by the record of nonces, which holds those the
        session sent too).
        """
        return self.reflect(False, False)

    def test_cbc(self):
        """
        useEncryption true (AES-CBC): the same.
        """
        return self.reflect(True, False)

    def test_authenticatedPlaintext(self):
        """
        The authenticated variant without encryption (GMAC): the same.
        """
        return self.reflect(False, True)

    def test_authenticated(self):
        """
        The authenticated variant with encryption (AES-GCM): the same; on the
        landed code the gateway's push sent back to the gateway was
        delivered as the client's.
        """
        return self.reflect(True, True)


def mutations(datagram):
    """
    @return: C{datagram} (17 bytes of payload: two AES blocks in CBC)
        changed under its own nonce: the padding broken (the last bit of the
        first block flips the last bit of the padding), the first byte of
        the second block's plaintext flipped (valid padding: an alteration
        CBC delivers), and one byte short.
    """
    return [flip(datagram, HEADER_SIZE + 15), flip(datagram, HEADER_SIZE), datagram[:-1]]


class ReplayTests(AttackMixin, unittest.TestCase):
    """
    Issue 16 point 2: a captured datagram replayed, or changed under its
    nonce, from the sender's own address, is dropped before any decryption:
    never delivered, never a padding query, never the end of the session.
    """

    @defer.inlineCallbacks
    def replay(self, useEncryption, authenticated):
        name = modeName(useEncryption, authenticated)
        gateway, client, p, g, up, down = yield self.captured(useEncryption, authenticated)
        logs = LogCapture(self)
        before = self.handled(gateway, g), self.handled(client, p)
        for datagram in [up] + mutations(up):
            self.fromClient(client, gateway, datagram)
        for datagram in [down] + mutations(down):
            self.fromGateway(gateway, client, datagram)
        yield waitUntil(lambda: self.handled(gateway, g) >= before[0] + 4 and self.handled(client, p) >= before[1] + 4,
                        f"{name}: eight datagrams handled")
        self.assertEqual((g.messages, p.messages), ([b"client to gateway"], [b"gateway to client"]), name)
        self.assertEqual((gateway.drops["replay"], client.drops["replay"]), (4, 4), name)
        self.assertEqual(gateway.drops["decrypt-failure"], 0, name)  # never decrypted: no padding query
        self.assertIn(client.session.sessionId, gateway.sessions, name)
        self.assertFalse(client.fatal.called, name)
        self.assertEqual(logs.atLeast(LogLevel.warn), [], name)
        p.transport.write(b"still")
        g.transport.write(b"going")
        yield g.waitFor(2)
        yield p.waitFor(2)

    def test_plaintext(self):
        """
        useEncryption false: replays and changed copies are counted drops.
        """
        return self.replay(False, False)

    def test_cbc(self):
        """
        useEncryption true (AES-CBC): the same; on the landed code the
        replay and the copy with valid padding were delivered and the copy
        with broken padding ended the session: a padding oracle.
        """
        return self.replay(True, False)

    def test_authenticatedPlaintext(self):
        """
        The authenticated variant without encryption: the same.
        """
        return self.replay(False, True)

    def test_authenticated(self):
        """
        The authenticated variant with encryption: the same (on the landed
        code the replay was delivered).
        """
        return self.replay(True, True)


class NatTests(AttackMixin, unittest.TestCase):
    """
    Issue 16 point 1, behind a NAT that changes the client's UDP port: the
    gateway's natPorts option takes a session's datagrams from any port of
    the address its client authenticated from.
    """

    @defer.inlineCallbacks
    def fromMappedPort(self, useEncryption, authenticated, natPorts):
        """
        The client's fresh datagram arrives from another port of its address
        (as a NAT would map it); pushes are then sent.

        @return: C{(gateway, g, mapped socket)}.
        """
        gateway, _, client, p, g = yield self.session(useEncryption, authenticated, natPorts=natPorts)
        mapped = self.rawSocket()
        mapped.sendto(p.transport.seal(b"through the NAT"), udpAddress(gateway))
        yield waitUntil(lambda: g.messages or gateway.drops, "the datagram handled")
        return gateway, g, mapped

    @defer.inlineCallbacks
    def test_strictByDefault(self):
        """
        Without natPorts, the datagram from another port is a wrong-address drop.
        """
        gateway, g, _ = yield self.fromMappedPort(True, True, False)
        self.assertEqual((g.messages, gateway.drops["wrong-address"]), ([], 1))

    @defer.inlineCallbacks
    def test_authenticatedFollowsThePort(self):
        """
        natPorts, authenticated variant: the datagram is delivered and, since
        it authenticated and its nonce was fresh, pushes go to its port.
        """
        gateway, g, mapped = yield self.fromMappedPort(True, True, True)
        self.assertEqual(g.messages, [b"through the NAT"])
        self.assertEqual(g.transport.pushAddress, mapped.getsockname())
        g.transport.write(b"back through the NAT")
        mapped.settimeout(5)
        datagram = mapped.recv(2048)
        self.assertEqual(datagram[0], g.transport.sessionId)

    @defer.inlineCallbacks
    def test_specModeKeepsThePort(self):
        """
        natPorts in the spec's mode: the datagram is taken, but nothing
        authenticates it, so pushes stay on the port the client declared.
        """
        gateway, g, mapped = yield self.fromMappedPort(True, False, True)
        self.assertEqual(g.messages, [b"through the NAT"])
        self.assertNotEqual(g.transport.pushAddress, mapped.getsockname())

    @defer.inlineCallbacks
    def test_otherAddressStillRefused(self):
        """
        natPorts relaxes the port only: a session's datagram from another
        address is still a wrong-address drop.
        """
        gateway, _, client, p, g = yield self.session(True, True, natPorts=True)
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(other.close)
        other.bind(("127.0.0.2", 0))
        other.sendto(p.transport.seal(b"from elsewhere"), udpAddress(gateway))
        yield waitUntil(lambda: gateway.drops["wrong-address"], "the datagram dropped")
        self.assertEqual(g.messages, [])


class OutsiderTests(AttackMixin, unittest.TestCase):
    """
    Issue 16 point 3: junk datagrams, one per session id, cannot end
    sessions: from an outsider in any mode, and in the authenticated
    variant not even from the sessions' own addresses.
    """

    @defer.inlineCallbacks
    def tenSessions(self, useEncryption, authenticated):
        """
        @return: C{(gateway, clients)}: ten sessions.
        """
        gateway = yield self.startGateway(AppSettings(useEncryption, "Tls13"), authenticated=authenticated)
        clients = [self.connectClient(gateway) for _ in range(10)]
        yield defer.gatherResults([c.ready for c in clients])
        return gateway, clients

    def junk(self, client, sessionId):
        """
        @return: 56 random bytes under C{sessionId}, with a nonce of the
            right time (an attacker can guess it): never a whole number of
            AES blocks, never a valid tag.
        """
        return bytes([sessionId]) + makeNonce(client.session.elapsed()) + os.urandom(39)

    @defer.inlineCallbacks
    def junkFromOutsider(self, useEncryption, authenticated):
        name = modeName(useEncryption, authenticated)
        gateway, clients = yield self.tenSessions(useEncryption, authenticated)
        outsider = self.rawSocket()
        for sessionId in range(1, 256):
            outsider.sendto(self.junk(clients[0], sessionId), udpAddress(gateway))
        yield waitUntil(lambda: sum(gateway.drops.values()) >= 255, f"{name}: 255 junk datagrams dropped")
        self.assertEqual(gateway.drops["wrong-address"], 10, name)
        self.assertEqual(gateway.drops["unknown-session"], 245, name)
        self.assertEqual(gateway.counters["sessions-ended"], 0, name)
        self.assertEqual(len(gateway.sessions), 10, name)

    def test_outsiderPlaintext(self):
        """
        useEncryption false: 255 junk datagrams from an outsider end 0 of 10 sessions.
        """
        return self.junkFromOutsider(False, False)

    def test_outsiderCBC(self):
        """
        The spec's mode (AES-CBC): 0 of 10; the spec's rule (a datagram
        that does not decrypt ends its session) holds only for datagrams
        from the session's own address. On the landed code: 10 of 10.
        """
        return self.junkFromOutsider(True, False)

    def test_outsiderAuthenticated(self):
        """
        The authenticated variant: 0 of 10 (on the landed code: 10 of 10).
        """
        return self.junkFromOutsider(True, True)

    @defer.inlineCallbacks
    def test_spoofedAuthenticated(self):
        """
        The authenticated variant, junk from each session's own address (a
        spoofer): a tag that fails is a counted drop (bad-tag), at the
        gateway and at the client; 0 of 10 sessions end, none is logged
        above info, and every session still pushes both ways.
        """
        gateway, clients = yield self.tenSessions(True, True)
        logs = LogCapture(self)
        for client in clients:
            self.fromClient(client, gateway, self.junk(client, client.session.sessionId))
            self.fromGateway(gateway, client, self.junk(client, client.session.sessionId))
        yield waitUntil(lambda: gateway.drops["bad-tag"] >= 10 and sum(c.drops["bad-tag"] for c in clients) >= 10,
                        "20 bad tags dropped")
        self.assertEqual(gateway.counters["sessions-ended"], 0)
        self.assertFalse(any(c.fatal.called for c in clients))
        self.assertEqual(logs.atLeast(LogLevel.warn), [])
        for client in clients:
            client.protocol.transport.write(b"still here")
            gateway.sessions[client.session.sessionId].write(b"and here")
        yield waitUntil(lambda: all(c.protocol.messages for c in clients), "a push to every client")
        yield waitUntil(lambda: gateway.counters["received"] >= 10, "a push from every client")


class SessionIdTests(unittest.TestCase):
    """
    Issue 16 point 3: session ids are drawn at random among the free ones.
    """

    def test_random(self):
        """
        Ten fresh allocators do not all start at 1, and an allocator's first
        ten ids are not 1-10; every id 1-255 is handed out once, then None;
        a freed id is handed out again (the only free one).
        """
        firsts = {SessionIds().allocate() for _ in range(10)}
        self.assertGreater(len(firsts), 1)
        ids = SessionIds()
        drawn = [ids.allocate() for _ in range(255)]
        self.assertNotEqual(drawn[:10], list(range(1, 11)))
        self.assertEqual(sorted(drawn), list(range(1, 256)))
        self.assertIsNone(ids.allocate())
        ids.release(17)
        self.assertEqual((ids.allocate(), ids.allocate()), (17, None))


AUTH_SERVER = textwrap.dedent(r"""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
    from twisted.internet import reactor, protocol
    from twisted.internet.endpoints import TCP4ServerEndpoint
    from sudp.tap import Echo
    from sudp.vpn041.gateway import Gateway
    from sudp.vpn041.settings import AppSettings, Limits
    cert, key, ca = sys.argv[1:4]
    # a long handshake deadline, so the attackers' silent connections stay: the caps must do it
    gateway = Gateway(reactor, AppSettings(True, "Tls13"), protocol.Factory.forProtocol(Echo), cert, key, ca,
                      limits=Limits(handshakeTimeout=60.0))
    d = gateway.listen(TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"), 0, "127.0.0.1")
    d.addCallback(lambda ports: print(ports[0].getHost().port, flush=True))
    reactor.callLater(60, reactor.stop)
    reactor.run()
""")


class AuthPortTests(AttackMixin, unittest.TestCase):
    """
    Issue 16 point 4: connections to the authentication port that send
    nothing cannot lock legitimate clients out.
    """

    def gateway(self, clock, **limits):
        """
        @return: a L{Gateway} on C{clock} that does not listen.
        """
        return Gateway(clock, AppSettings(True, "Tls13"), RecorderFactory(), *self.certs.gateway, self.certs.ca,
                       limits=Limits(**limits))

    def test_handshakeDeadline(self):
        """
        A connection that has not sent its request handshakeTimeout (10 s by
        default) after it opened is aborted and counted (auth-timeout); one
        that sent it in time is not.
        """
        clock = Clock()
        gateway = self.gateway(clock)
        silent, talker = AuthServerProtocol(gateway), AuthServerProtocol(gateway)
        silentTransport, talkerTransport = StringTransport(), StringTransport()
        silent.makeConnection(silentTransport)
        talker.makeConnection(talkerTransport)
        clock.advance(9.9)
        self.assertFalse(silentTransport.disconnecting)
        talker.lineReceived(b"not a request")  # refused, but in time
        clock.advance(0.2)
        self.assertTrue(silentTransport.disconnecting)
        self.assertEqual(gateway.counters["auth-timeout"], 1)
        silent.connectionLost(None)
        talker.connectionLost(None)
        clock.advance(100)
        self.assertEqual(gateway.counters["auth-timeout"], 1)
        self.assertEqual(clock.getDelayedCalls(), [])

    @defer.inlineCallbacks
    def test_limitsReachTheListener(self):
        """
        The per-source cap and the total are the listener's; the total's
        default leaves the descriptor headroom and the 255 sessions' own
        connections; bad limits are a ConfigurationError.
        """
        for limits, total in ((Limits(), max(16, defaultMaxConnections() - 255)),
                              (Limits(maxConnections=50, maxConnectionsPerSource=3), 50)):
            gateway = yield self.startGateway(AppSettings(True, "Tls13"), limits=limits)
            self.assertEqual(gateway.listenerFactory.maxConnections, total)
            self.assertEqual(gateway.listenerFactory.config.maxConnectionsPerSource, limits.maxConnectionsPerSource)
        for bad in ({"handshakeTimeout": 0}, {"maxConnectionsPerSource": 0}, {"maxConnections": -1},
                    {"maxNonces": 0}, {"nonceLifetime": float("nan")}, {"handshakePrefixV6": 8}):
            self.assertRaises(ConfigurationError, Limits, **bad)

    @defer.inlineCallbacks
    def test_authenticatedLeaveTheCount(self):
        """
        Over real TLS: a connection counts against the caps until it
        authenticates, then no longer (so it is never evicted).
        """
        gateway = yield self.startGateway(AppSettings(True, "Tls13"))
        idle = socket.create_connection(udpAddress(gateway)[:1] + (gateway.authPort.getHost().port,))
        self.addCleanup(idle.close)
        yield waitUntil(lambda: len(gateway.listenerFactory) == 1, "the idle connection counted")
        client = self.connectClient(gateway)
        yield client.ready
        self.assertEqual(len(gateway.listenerFactory), 1)  # the idle one only

    @defer.inlineCallbacks
    def test_idleConnectionsAtTheDescriptorLimit(self):
        """
        A gateway limited to 1,024 descriptors (in a child process, with a
        60 s handshake deadline) is sent 1,200 connections that send
        nothing, from 120 addresses (127.0.1.1-120, 10 each); a legitimate
        client (from 127.0.0.1) still authenticates and is echoed, and the
        gateway holds at most 1,024 descriptors.
        """
        server, port = serverProcess(self, AUTH_SERVER, *self.certs.gateway, self.certs.ca)
        silentConnections(self, port, 1200)
        yield waitUntil(lambda: established(port) >= 700, "the gateway to be saturated", timeout=20)
        client = Vpn041Client(reactor, "127.0.0.1", port, AppSettings(True, "Tls13"), RecorderFactory(),
                              *self.certs.alice, self.certs.ca, bindAddress="127.0.0.1")
        client.connect()
        self.addCleanup(self.closeClient, client)
        p = yield client.ready.addTimeout(8, reactor)
        p.transport.write(b"legitimate")
        yield p.waitFor(1)
        self.assertEqual(p.messages, [b"legitimate"])
        self.assertLessEqual(len(os.listdir(f"/proc/{server.pid}/fd")), 1024)
