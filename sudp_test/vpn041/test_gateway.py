# -*- test-case-name: sudp_test.vpn041.test_gateway -*-
"""
Tests for L{sudp.vpn041.gateway}.
"""

import json
import os
import socket
import textwrap

from OpenSSL import SSL
from twisted.internet import defer, protocol, reactor, ssl
from twisted.internet._sslverify import ClientTLSOptions
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, wrapClientTLS
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel
from twisted.protocols.basic import LineOnlyReceiver
from twisted.trial import unittest

from sudp.errors import ConfigurationError, SessionClosed
from sudp.stream.listener import defaultMaxConnections
from sudp.vpn041.auth import decodeResponse, encodeRequest, Vpn041AuthFailed
from sudp.vpn041.client import Vpn041Client
from sudp.vpn041.dataplane import HEADER_SIZE
from sudp.vpn041.gateway import AuthServerProtocol, Gateway
from sudp.vpn041.nonces import makeNonce
from sudp.vpn041.settings import AppSettings, Limits
from sudp.vpn041.tls import clientOptions

from sudp_test.attackers import established, serverProcess, silentConnections
from sudp_test.vpn041.helpers import (
    GATEWAY_NS,
    LogCapture,
    NEGOTIATED,
    RecorderFactory,
    SIXTEEN,
    Vpn041Mixin,
    flip,
    flipPadding,
    truncate,
    udpAddress,
    waitUntil,
)

class LineClient(LineOnlyReceiver):
    """
    An auth-plane client that says one line of its choice inside TLS and
    records what the gateway answers.
    """

    delimiter = b"\n"
    MAX_LENGTH = 1 << 16

    def __init__(self, line):
        self.line = line
        self.lines = []
        self.lost = defer.Deferred()

    def connectionMade(self):
        self.sendLine(self.line)

    def lineReceived(self, line):
        self.lines.append(line)

    def connectionLost(self, reason):
        self.lost.callback(None)

class FullFlowTests(Vpn041Mixin, unittest.TestCase):
    """
    Authentication, the shared session key and pushes both ways, for every
    encryptionType, both useEncryption values and the authenticated variant
    (the test methods are made below the class).
    """

    @defer.inlineCallbacks
    def fullFlow(self, encryptionType, useEncryption, authenticated):
        gatewayFactory = RecorderFactory()
        gateway = yield self.startGateway(AppSettings(useEncryption, encryptionType), gatewayFactory, authenticated)
        wire = self.captureInput(gateway)
        alice = self.connectClient(gateway, name="alice")
        pa = yield alice.ready
        bob = self.connectClient(gateway, name="bob")
        pb = yield bob.ready

        ids = [alice.session.sessionId, bob.session.sessionId]
        self.assertNotEqual(ids[0], ids[1])
        for sessionId in ids:
            self.assertTrue(1 <= sessionId <= 255, sessionId)
        self.assertEqual(sorted(gateway.sessions), sorted(ids))

        version, ciphers = NEGOTIATED[encryptionType]
        keys = []
        for client, name in ((alice, "alice"), (bob, "bob")):
            mine = gateway.sessions[client.session.sessionId]
            self.assertEqual(len(client.session.codec._key), 32)
            self.assertEqual(mine.codec._key, client.session.codec._key)  # both sides hold the same key
            keys.append(mine.codec._key)
            self.assertIn(f"CN={name}", mine.clientName)
            for handle in (client.auth.transport.getHandle(), mine.authConnection.transport.getHandle()):
                self.assertEqual(handle.get_protocol_version_name(), version)
                self.assertIn(handle.get_cipher_name(), ciphers)
            self.assertEqual(client.session.codec.useEncryption, useEncryption)
            self.assertEqual(client.session.codec.authenticated, authenticated)
        self.assertNotEqual(keys[0], keys[1])  # random per session

        pa.transport.write(b"push from alice")
        pb.transport.write(b"push from bob")
        ga, gb = gatewayFactory.bySession(ids[0]), gatewayFactory.bySession(ids[1])
        yield ga.waitFor(1)
        yield gb.waitFor(1)
        self.assertEqual((ga.messages, gb.messages), ([b"push from alice"], [b"push from bob"]))
        ga.transport.write(b"push to alice")
        gb.transport.write(b"push to bob")
        yield pa.waitFor(1)
        yield pb.waitFor(1)
        self.assertEqual((pa.messages, pb.messages), ([b"push to alice"], [b"push to bob"]))

        # the datagram as it was on the wire
        datagram = [d for d in wire if d[0] == ids[0]][0]
        body = datagram[HEADER_SIZE:]
        payload = b"push from alice"
        if authenticated:
            self.assertEqual(len(body), len(payload) + 16)
            self.assertEqual(body[:len(payload)] == payload, not useEncryption)
        elif useEncryption:
            self.assertEqual(len(body), 16 * (len(payload) // 16 + 1))
            self.assertNotIn(payload, datagram)
        else:
            self.assertEqual(body, payload)

def _flowTest(encryptionType, useEncryption, authenticated):
    def test(self):
        return self.fullFlow(encryptionType, useEncryption, authenticated)

    test.__doc__ = (f"Two clients authenticate (mutual TLS, encryptionType {encryptionType}: "
                    f"{NEGOTIATED[encryptionType][0]} with an allowed suite on both sides), get distinct "
                    f"session ids in 1-255 and distinct 32-byte keys the gateway holds too, and push both "
                    f"ways with useEncryption={useEncryption}"
                    f"{' in the authenticated variant' if authenticated else ''}; the wire datagram has "
                    f"the expected form.")
    return test

for _enc in (True, False):
    setattr(FullFlowTests, f"test_authenticated_{'encrypted' if _enc else 'plaintext'}",
            _flowTest("Tls13", _enc, True))

for _type in NEGOTIATED:
    for _enc in (True, False):
        setattr(FullFlowTests, f"test_{_type}_{'encrypted' if _enc else 'plaintext'}", _flowTest(_type, _enc, False))

class SessionEndTests(Vpn041Mixin, unittest.TestCase):
    """
    Either side may end a session; the other side sees it end.
    """

    @defer.inlineCallbacks
    def test_clientCloses(self):
        """
        A client that closes its session ends it at the gateway too: the
        gateway's protocol sees SessionClosed, the id is freed, and the
        client's later writes raise SessionClosed.
        """
        gateway, _, client, p, g = yield self.session()
        sessionId = client.session.sessionId
        p.transport.loseConnection()
        reason = yield g.lost
        self.assertIsInstance(reason, SessionClosed)
        self.assertEqual(reason.reason, "auth-connection-closed")
        self.assertNotIn(sessionId, gateway.sessions)
        self.assertEqual(len(gateway.ids), 255)
        self.assertRaises(SessionClosed, p.transport.write, b"late")

    @defer.inlineCallbacks
    def test_gatewayCloses(self):
        """
        The gateway ending a session closes the client's auth connection:
        the client's protocol sees SessionClosed("gateway-closed").
        """
        gateway, _, client, p, g = yield self.session()
        g.transport.loseConnection()
        reason = yield p.lost
        self.assertIsInstance(reason, SessionClosed)
        self.assertEqual(reason.reason, "gateway-closed")
        self.assertFalse(client.fatal.called)
        self.assertRaises(SessionClosed, g.transport.write, b"late")
        self.assertEqual(gateway.sessions, {})

class SessionIdTests(Vpn041Mixin, unittest.TestCase):
    """
    Session ids are 1-255 (drawn at random: test_vpn041_attacks), the 256th
    client is refused, a freed id can be had again.
    """

    @defer.inlineCallbacks
    def test_255Sessions(self):
        """
        255 clients authenticate over real TLS and get exactly the ids
        1..255; the 256th fails with Vpn041AuthFailed saying every id is
        taken, while all 255 sessions keep pushing both ways; an id comes
        back only when its session has ended.
        """
        gatewayFactory = RecorderFactory()
        # every client comes from 127.0.0.1: lift the auth port's limits per source
        limits = Limits(maxConnectionsPerSource=300, handshakeBurst=300, handshakesPerSecond=1000.0)
        gateway = yield self.startGateway(AppSettings(True, "Tls13"), gatewayFactory, limits=limits)
        clients = []
        for start in range(0, 255, 25):
            batch = [self.connectClient(gateway) for _ in range(min(25, 255 - start))]
            yield defer.gatherResults([c.ready for c in batch])
            clients += batch
        byId = {c.session.sessionId: c for c in clients}
        self.assertEqual(sorted(byId), list(range(1, 256)))
        self.assertEqual(len(gateway.ids), 0)

        extra = self.connectClient(gateway, name="bob")
        error = yield self.assertFailure(extra.ready, Vpn041AuthFailed)
        self.assertIn("all 255 session ids are taken", str(error))
        self.assertEqual(gateway.counters["auth-refused"], 1)
        self.assertEqual(len(gateway.sessions), 255)

        for sessionId, client in byId.items():
            client.protocol.transport.write(b"up %d" % sessionId)
        yield waitUntil(lambda: all(p.messages for p in gatewayFactory.protocols), "a push from every client")
        for p in gatewayFactory.protocols:
            self.assertEqual(p.messages, [b"up %d" % p.addr.sessionId])
            p.transport.write(b"down %d" % p.addr.sessionId)
        yield waitUntil(lambda: all(c.protocol.messages for c in clients), "a push to every client")
        for sessionId, client in byId.items():
            self.assertEqual(client.protocol.messages, [b"down %d" % sessionId])

        for freed in ([17], [3, 200]):
            for sessionId in freed:
                byId[sessionId].protocol.transport.loseConnection()
                yield waitUntil(lambda: sessionId not in gateway.sessions, f"session {sessionId} ended")
            again = []
            for _ in freed:
                client = self.connectClient(gateway, name="bob")
                yield client.ready
                again.append(client.session.sessionId)
            self.assertEqual(sorted(again), freed)
        self.assertEqual(len(gateway.sessions), 255)

class AuthenticationFailureTests(Vpn041Mixin, unittest.TestCase):
    """
    Any TLS, certificate or settings mismatch fails the authentication and
    opens no session.
    """

    @defer.inlineCallbacks
    def refused(self, gateway, client, *reasonParts):
        error = yield self.assertFailure(client.ready, Vpn041AuthFailed)
        for part in reasonParts:
            self.assertIn(part, str(error))
        self.assertEqual(gateway.sessions, {})
        self.assertEqual(gateway.counters["sessions-opened"], 0)
        self.assertEqual(len(gateway.ids), 255)
        self.assertIsNone(client.session)
        self.assertIsNone(client.udpPort)
        return error

    @defer.inlineCallbacks
    def test_clientCertificateFromAnotherCA(self):
        """
        A client certificate signed by another CA is refused by the gateway.
        """
        gateway = yield self.startGateway(AppSettings(True, "Tls13"))
        yield self.refused(gateway, self.connectClient(gateway, name="mallory"), "unknown ca")

    @defer.inlineCallbacks
    def test_noClientCertificate(self):
        """
        A client that presents no certificate at all is refused.
        """
        gateway = yield self.startGateway(AppSettings(True, "Tls13"))
        with open(self.certs.ca, "rb") as f:
            ca = ssl.Certificate.loadPEM(f.read())
        options = ssl.optionsForClientTLS("127.0.0.1", trustRoot=ca)
        yield self.refused(gateway, self.connectClient(gateway, tlsOptions=options), "certificate required")

    @defer.inlineCallbacks
    def test_gatewayCertificateFromAnotherCA(self):
        """
        The client refuses a gateway whose certificate another CA signed.
        """
        gateway = yield self.startGateway(AppSettings(True, "Tls13"), cert=self.certs.otherGateway)
        yield self.refused(gateway, self.connectClient(gateway), "certificate verify failed")

    @defer.inlineCallbacks
    def test_gatewayCertificateForAnotherHost(self):
        """
        The client refuses a gateway certificate from the right CA that does
        not name the address it dialled (127.0.0.1).
        """
        gateway = yield self.startGateway(AppSettings(True, "Tls13"), cert=self.certs.wrongName)
        yield self.refused(gateway, self.connectClient(gateway), "IPAddressMismatch", "127.0.0.1")

    @defer.inlineCallbacks
    def test_tls12ClientTls13Gateway(self):
        """
        A client with encryptionType Tls12Aes256Gcm cannot authenticate to a
        Tls13 gateway (no common TLS version).
        """
        gateway = yield self.startGateway(AppSettings(True, "Tls13"))
        yield self.refused(gateway, self.connectClient(gateway, AppSettings(True, "Tls12Aes256Gcm")),
                           "protocol version")

    @defer.inlineCallbacks
    def test_tls13ClientTls12Gateway(self):
        """
        And the other way round: a Tls13 client and a Tls12Aes256Gcm gateway.
        """
        gateway = yield self.startGateway(AppSettings(True, "Tls12Aes256Gcm"))
        yield self.refused(gateway, self.connectClient(gateway, AppSettings(True, "Tls13")), "protocol version")

    @defer.inlineCallbacks
    def test_clientChecksNegotiatedSuite(self):
        """
        A Tls13ChaCha20Poly1305 client and a Tls13Aes256Gcm gateway agree on
        TLS 1.3 with AES-256-GCM, which the client's own check refuses,
        naming the suite.
        """
        gateway = yield self.startGateway(AppSettings(True, "Tls13Aes256Gcm"))
        client = self.connectClient(gateway, AppSettings(True, "Tls13ChaCha20Poly1305"))
        yield self.refused(gateway, client, "TLS_AES_256_GCM_SHA384", "Tls13ChaCha20Poly1305")

    def restrictedOptions(self, tls13Suites=None, tls12Ciphers=None):
        """
        @return: client TLS options with alice's certificate that offer only
            C{tls13Suites} (TLS 1.3) or only C{tls12Ciphers} (TLS 1.2).
        """
        with open(self.certs.alice[0], "rb") as c, open(self.certs.alice[1], "rb") as k, \
                open(self.certs.ca, "rb") as a:
            mine = ssl.PrivateCertificate.loadPEM(c.read() + b"\n" + k.read())
            ca = ssl.Certificate.loadPEM(a.read())
        version = ssl.TLSVersion.TLSv1_3 if tls13Suites else ssl.TLSVersion.TLSv1_2
        extra = {"raiseMinimumTo": version, "lowerMaximumSecurityTo": version}
        if tls12Ciphers:
            extra["acceptableCiphers"] = ssl.AcceptableCiphers.fromOpenSSLCipherString(tls12Ciphers)
        options = ssl.CertificateOptions(privateKey=mine.privateKey.original, certificate=mine.original,
                                         verify=True, caCerts=[ca.original], **extra)
        context = options.getContext()
        if tls13Suites:
            context.set_tls13_ciphersuites(tls13Suites.encode())
        return ClientTLSOptions(lambda tlsProtocol: SSL.Connection(context), "127.0.0.1")

    @defer.inlineCallbacks
    def test_gatewayRestrictsSuites(self):
        """
        The gateway itself accepts only its encryptionType's suites: a
        client offering only ChaCha20-Poly1305 fails against a
        Tls13Aes256Gcm gateway, one offering only a TLS 1.2 AES-128 suite
        fails against a Tls12Aes256Gcm gateway; a client offering only
        TLS_AES_128_GCM_SHA256 (allowed by Tls13) gets a session from a
        Tls13 gateway.
        """
        gateway = yield self.startGateway(AppSettings(True, "Tls13Aes256Gcm"))
        yield self.refused(gateway, self.connectClient(
            gateway, AppSettings(True, "Tls13"), tlsOptions=self.restrictedOptions("TLS_CHACHA20_POLY1305_SHA256")))
        gateway12 = yield self.startGateway(AppSettings(True, "Tls12Aes256Gcm"))
        yield self.refused(gateway12, self.connectClient(
            gateway12, tlsOptions=self.restrictedOptions(tls12Ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")))
        gateway13 = yield self.startGateway(AppSettings(True, "Tls13"))
        client = self.connectClient(gateway13, tlsOptions=self.restrictedOptions("TLS_AES_128_GCM_SHA256"))
        yield client.ready
        self.assertEqual(client.auth.transport.getHandle().get_cipher_name(), "TLS_AES_128_GCM_SHA256")
        self.assertEqual(len(gateway13.sessions), 1)

    @defer.inlineCallbacks
    def test_useEncryptionMismatch(self):
        """
        A client with useEncryption false is refused by a gateway with true,
        and the reason says so.
        """
        gateway = yield self.startGateway(AppSettings(True, "Tls13"))
        yield self.refused(gateway, self.connectClient(gateway, AppSettings(False, "Tls13")),
                           "refused", "useEncryption=True")
        gateway2 = yield self.startGateway(AppSettings(False, "Tls13"))
        yield self.refused(gateway2, self.connectClient(gateway2, AppSettings(True, "Tls13")),
                           "refused", "useEncryption=False")

    @defer.inlineCallbacks
    def test_authenticatedMismatch(self):
        """
        A client of the authenticated variant is refused by a gateway of the
        seed's plane, with the reason.
        """
        gateway = yield self.startGateway(AppSettings(True, "Tls13"))
        yield self.refused(gateway, self.connectClient(gateway, authenticated=True), "authenticated=False")

class AuthRequestTests(Vpn041Mixin, unittest.TestCase):
    """
    What the gateway answers to requests that are not right, over real TLS
    with a valid client certificate.
    """

    @defer.inlineCallbacks
    def test_malformedRequestsRefused(self):
        """
        A request that is not JSON, of the wrong version, with a bad port or
        a useEncryption that is not a boolean, deeply nested JSON, or a line
        over 4,096 bytes each gets a refusal with a reason, and the gateway
        closes the connection without opening a session.
        """
        gateway = yield self.startGateway(AppSettings(True, "Tls13"))
        request = json.loads(encodeRequest(5000, True, False))
        lines = [b"hello", json.dumps({**request, "version": 2}).encode(),
                 json.dumps({**request, "udpPort": 0}).encode(),
                 json.dumps({**request, "useEncryption": "yes"}).encode(), b"[" * 4000, b"x" * 5000]
        options = clientOptions("127.0.0.1", *self.certs.alice, self.certs.ca, "Tls13")
        endpoint = wrapClientTLS(options, TCP4ClientEndpoint(reactor, "127.0.0.1", gateway.authPort.getHost().port))
        factories = [protocol.Factory.forProtocol(lambda line=line: LineClient(line)) for line in lines]
        clients = yield defer.gatherResults([endpoint.connect(f) for f in factories])
        yield defer.gatherResults([c.lost for c in clients])
        for line, client in zip(lines, clients):
            self.assertEqual(len(client.lines), 1, line[:40])
            error = self.assertRaises(Vpn041AuthFailed, decodeResponse, client.lines[0])
            self.assertIn("the gateway refused", str(error))
        self.assertEqual(gateway.sessions, {})
        self.assertEqual(gateway.counters["auth-refused"], len(lines))

    @defer.inlineCallbacks
    def test_gatewayUnreachable(self):
        """
        A client whose gateway does not listen fails with Vpn041AuthFailed
        and closes its UDP port.
        """
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(protocol.Factory())
        number = port.getHost().port
        yield port.stopListening()
        client = Vpn041Client(reactor, "127.0.0.1", number, AppSettings(True, "Tls13"), RecorderFactory(),
                              *self.certs.alice, self.certs.ca, bindAddress="127.0.0.1")
        client.connect()
        error = yield self.assertFailure(client.ready, Vpn041AuthFailed)
        self.assertIn("cannot reach the gateway", str(error))
        self.assertIsNone(client.udpPort)

class ServerFailureRuleTests(Vpn041Mixin, unittest.TestCase):
    """
    Seed 001 section 8, server: a datagram that does not decrypt logs one
    error, ends the session, and nothing more is logged for that client.
    """

    @defer.inlineCallbacks
    def serverFailure(self, useEncryption, authenticated, tamper):
        gateway, _, client, p, g = yield self.session(useEncryption, authenticated)
        sessionId = client.session.sessionId
        wire = self.captureInput(gateway)
        p.transport.write(SIXTEEN)
        yield g.waitFor(1)
        logs = LogCapture(self)
        attacker = self.rawSocket()
        bad = tamper(p.transport.seal(SIXTEEN))  # a fresh datagram, changed in flight
        self.fromClient(client, gateway, bad)  # the spec's rule holds for the session's own address

        reason = yield g.lost
        self.assertEqual(reason.reason, "decrypt-failure")
        errors = logs.select(GATEWAY_NS, LogLevel.error)
        self.assertEqual(len(errors), 1, errors)
        self.assertIn("does not decrypt", errors[0])
        self.assertIn(f"session {sessionId}", errors[0])
        self.assertEqual(logs.atLeast(LogLevel.warn), errors)  # that one error, nothing else
        self.assertEqual(g.messages, [SIXTEEN])  # the tampered push never reached the application
        self.assertNotIn(sessionId, gateway.sessions)
        self.assertEqual(len(gateway.ids), 255)  # the id is free
        clientReason = yield p.lost  # the client's auth connection was closed: it sees its session end
        self.assertEqual(clientReason.reason, "gateway-closed")
        self.assertFalse(client.fatal.called)

        before = len(logs.vpn041())
        forged = bytes([sessionId]) + os.urandom(16) + os.urandom(32)
        for datagram in (bad, forged, wire[0], bytes([sessionId]) * 5):
            attacker.sendto(datagram, udpAddress(gateway))
        yield waitUntil(lambda: gateway.drops["unknown-session"] + gateway.drops["truncated"] >= 4,
                        "four dropped datagrams")
        self.assertEqual(logs.vpn041()[before:], [])  # nothing more logged for that client
        self.assertEqual((gateway.drops["unknown-session"], gateway.drops["truncated"],
                          gateway.drops["decrypt-failure"]), (3, 1, 1))
        self.assertEqual(gateway.counters["sessions-ended"], 1)

    def test_cbcPaddingFlip(self):
        """
        useEncryption true: a captured datagram whose padding a flipped bit
        breaks logs one error at the gateway, ends the session (id freed,
        the client sees its session end), and later tampered, forged,
        replayed or truncated datagrams for that id are silent counted drops.
        """
        return self.serverFailure(True, False, flipPadding)

    def test_cbcTruncated(self):
        """
        The same for a datagram truncated to a body that is not a multiple of 16.
        """
        return self.serverFailure(True, False, truncate)

    @defer.inlineCallbacks
    def tagFailure(self, useEncryption, tamper):
        """
        The authenticated variant: a fresh datagram changed in flight, from
        the peer's own address, fails its tag and is a counted drop on
        either side (bad-tag), logged at no level above info: it proves
        nothing about who sent it, so it ends nothing.
        """
        gateway, _, client, p, g = yield self.session(useEncryption, True)
        logs = LogCapture(self)
        self.fromClient(client, gateway, tamper(p.transport.seal(SIXTEEN)))
        self.fromGateway(gateway, client, tamper(g.transport.seal(SIXTEEN)))
        yield waitUntil(lambda: gateway.drops["bad-tag"] and client.drops["bad-tag"], "both bad tags dropped")
        self.assertEqual(logs.atLeast(LogLevel.warn), [])
        self.assertEqual((g.messages, p.messages, client.fatal.called), ([], [], False))
        p.transport.write(b"still here")
        g.transport.write(b"and here")
        yield g.waitFor(1)
        yield p.waitFor(1)

    def test_authenticatedFlip(self):
        """
        The authenticated variant (useEncryption true): a flipped bit fails
        the tag: a counted drop on both sides, the session goes on.
        """
        return self.tagFailure(True, flipPadding)

    def test_authenticatedPlaintextFlip(self):
        """
        The authenticated variant with useEncryption false: flipping a byte
        of the cleartext payload fails the tag: the same.
        """
        return self.tagFailure(False, lambda d: flip(d, HEADER_SIZE + 3, 0x20))

    @defer.inlineCallbacks
    def test_forgedDatagramEndsSession(self):
        """
        The spec's rule and its residual risk (docs/vpn041.md section 4): a
        datagram never seen on the wire, random bytes under a guessed id,
        from the session's own address (spoofed), ends that session (a
        40-byte body: never a whole number of AES blocks, so the outcome
        does not depend on luck). From any other address it is a counted
        drop (test_vpn041_attacks).
        """
        gateway, _, client, p, g = yield self.session()
        logs = LogCapture(self)
        forged = bytes([client.session.sessionId]) + makeNonce(client.session.elapsed()) + os.urandom(40)
        self.fromClient(client, gateway, forged)
        reason = yield g.lost
        self.assertEqual(reason.reason, "decrypt-failure")
        self.assertEqual(len(logs.select(GATEWAY_NS, LogLevel.error)), 1)
        yield p.lost

    @defer.inlineCallbacks
    def test_undecodableDatagramsDropped(self):
        """
        Datagrams shorter than the header, for session id 0 or for an id
        with no session are counted drops: nothing is logged and the session
        goes on, at the gateway and at the client.
        """
        gateway, _, client, p, g = yield self.session()
        logs = LogCapture(self)
        sessionId = client.session.sessionId
        other = 200 if sessionId != 200 else 201
        attacker = self.rawSocket()
        for datagram in (b"", bytes([sessionId]) * 16, bytes(17) + os.urandom(32),
                         bytes([other]) + os.urandom(48)):
            attacker.sendto(datagram, udpAddress(gateway))
        yield waitUntil(lambda: sum(gateway.drops.values()) >= 4, "four drops at the gateway")
        self.assertEqual((gateway.drops["truncated"], gateway.drops["unknown-session"]), (2, 2))
        clientHost = client.udpPort.getHost()
        for datagram in (bytes([sessionId]) * 16, bytes([other]) + os.urandom(48)):
            gateway.sendDatagram(datagram, (clientHost.host, clientHost.port))
        yield waitUntil(lambda: sum(client.drops.values()) >= 2, "two drops at the client")
        self.assertEqual((client.drops["truncated"], client.drops["unknown-session"]), (1, 1))
        self.assertEqual(logs.vpn041(), [])
        self.assertFalse(client.fatal.called)
        p.transport.write(b"still here")
        g.transport.write(b"and here")
        yield g.waitFor(1)
        yield p.waitFor(1)

    @defer.inlineCallbacks
    def test_replayFromElsewhereKeepsPushAddress(self):
        """
        The authenticated variant: a valid datagram captured and replayed
        from another address must not move the session's push address (or
        anyone on the path could send the client's pushes to themselves
        with one replay); it is a counted drop, and pushes still reach the
        client.
        """
        gateway, _, client, p, g = yield self.session(True, True)
        wire = self.captureInput(gateway)
        p.transport.write(b"hello")
        yield g.waitFor(1)
        clientHost = client.udpPort.getHost()
        self.assertEqual(g.transport.pushAddress, (clientHost.host, clientHost.port))
        attacker = self.rawSocket()
        attacker.sendto(wire[0], udpAddress(gateway))
        yield waitUntil(lambda: gateway.drops["wrong-address"], "the replay from elsewhere dropped")
        self.assertEqual(g.messages, [b"hello"])
        self.assertEqual(g.transport.pushAddress, (clientHost.host, clientHost.port),
                         f"a replay from {attacker.getsockname()} moved the pushes there")
        g.transport.write(b"for the client")
        yield p.waitFor(1)

    @defer.inlineCallbacks
    def test_plaintextFlipDelivered(self):
        """
        useEncryption false has no integrity, by design: a datagram altered
        in flight by someone on the path (the original never arrives) is
        delivered altered, nothing is logged, the session goes on.
        """
        gateway, _, client, p, g = yield self.session(useEncryption=False)
        logs = LogCapture(self)
        bad = flip(p.transport.seal(b"pay alice 10 EUR"), HEADER_SIZE + 10, ord("1") ^ ord("9"))
        self.fromClient(client, gateway, bad)
        yield g.waitFor(1)
        self.assertEqual(g.messages, [b"pay alice 90 EUR"])
        self.assertEqual(logs.atLeast(LogLevel.warn), [])
        self.assertIn(client.session.sessionId, gateway.sessions)

    @defer.inlineCallbacks
    def test_cbcFlipDelivered(self):
        """
        useEncryption true is not integrity either: flipping bits of
        ciphertext block 1 garbles plaintext block 1 and flips exactly those
        bits of block 2, with valid padding, so an attacker on the path
        without the key changes "10" into "90" in flight (the original never
        arrives) and the gateway delivers it without a word.
        """
        gateway, _, client, p, g = yield self.session(useEncryption=True)
        logs = LogCapture(self)
        bad = flip(p.transport.seal(SIXTEEN + b"pay alice 10 EUR"), HEADER_SIZE + 10, ord("1") ^ ord("9"))
        self.fromClient(client, gateway, bad)
        yield g.waitFor(1)
        altered = g.messages[0]
        self.assertEqual(altered[16:], b"pay alice 90 EUR")
        self.assertNotEqual(altered[:16], SIXTEEN)
        self.assertEqual(logs.atLeast(LogLevel.warn), [])
        self.assertIn(client.session.sessionId, gateway.sessions)

class DataPlaneSocketTests(Vpn041Mixin, unittest.TestCase):
    """
    The MTU bound over real sockets.
    """

    @defer.inlineCallbacks
    def test_largestPushes(self):
        """
        The largest payload goes both ways in one datagram of at most 1,472
        bytes (exactly 1,472 in plaintext); one byte more raises ValueError
        from the transports' write, on both sides.
        """
        for useEncryption, authenticated, size in ((True, False, 1457), (False, False, 1472), (True, True, 1472)):
            gateway, _, client, p, g = yield self.session(useEncryption, authenticated)
            wire, sent = self.captureInput(gateway), self.captureOutput(gateway)
            largest = os.urandom(p.transport.maxMessageSize)
            self.assertEqual(g.transport.maxMessageSize, len(largest))
            p.transport.write(largest)
            g.transport.write(largest)
            yield g.waitFor(1)
            yield p.waitFor(1)
            self.assertEqual((g.messages, p.messages), ([largest], [largest]))
            self.assertEqual((len(wire[0]), len(sent[0])), (size, size))
            self.assertRaises(ValueError, p.transport.write, largest + b"!")
            self.assertRaises(ValueError, g.transport.write, largest + b"!")

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
