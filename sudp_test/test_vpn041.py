"""
Tests of vpn041, the gateway profile of seed 001 (docs/vpn041.md): the
flat appSettings file, the TLS authentication plane (mutual certificates,
session ids and keys), the 17-byte-header UDP data plane, the seed's
failure rules on both sides, and the C{twist vpn041} / C{sudp vpn041}
commands. Integration tests use real sockets on 127.0.0.1 only; the
certificates are made once for the module (a temporary directory removed
at exit).
"""

import atexit
import base64
import datetime
import importlib.util
import ipaddress
import json
import os
import shutil
import socket
import sys
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from OpenSSL import SSL
from twisted.internet import defer, protocol, reactor, ssl, tcp
from twisted.internet._sslverify import ClientTLSOptions
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, wrapClientTLS
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.protocols.basic import LineOnlyReceiver
from twisted.trial import unittest

from sudp.errors import ConfigurationError, MalformedPacket, SessionClosed
from sudp.vpn041.auth import (
    SessionIds,
    Vpn041AuthFailed,
    Vpn041Fatal,
    decodeRequest,
    decodeResponse,
    encodeRefusal,
    encodeRequest,
    encodeResponse,
)
from sudp.vpn041.client import Vpn041Client
from sudp.vpn041.dataplane import (
    HEADER_SIZE,
    DecryptFailure,
    PacketCodec,
    maxPayload,
    packetKey,
    parseHeader,
)
from sudp.vpn041.gateway import Gateway
from sudp.vpn041.settings import AppSettings, loadAppSettings, parseAppSettings
from sudp.vpn041.tls import clientOptions

from sudp_test import test_udp_integration
from sudp_test.waiting import waiter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GATEWAY_NS = "sudp.vpn041.gateway"
CLIENT_NS = "sudp.vpn041.client"
MODES = [(False, False), (True, False), (False, True), (True, True)]  # (useEncryption, authenticated)
SIXTEEN = b"0123456789abcdef"  # one full AES block: CBC adds a whole block of padding (0x10 * 16)

# What each encryptionType must negotiate with these (ECDSA) certificates,
# written out here rather than read from sudp.vpn041.settings.
NEGOTIATED = {
    "Tls13": ("TLSv1.3", {"TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"}),
    "Tls13Aes256Gcm": ("TLSv1.3", {"TLS_AES_256_GCM_SHA384"}),
    "Tls13ChaCha20Poly1305": ("TLSv1.3", {"TLS_CHACHA20_POLY1305_SHA256"}),
    "Tls12Aes256Gcm": ("TLSv1.2", {"ECDHE-ECDSA-AES256-GCM-SHA384"}),
}


# -- certificates, once for the module -----------------------------------------


def _loadMakeCerts():
    path = os.path.join(ROOT, "examples", "vpn041", "make_certs.py")
    spec = importlib.util.spec_from_file_location("vpn041_make_certs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _serverCertificate(directory, name, ca, dnsNames, ips=()):
    """
    A gateway certificate signed by C{ca} that names only C{dnsNames} and
    C{ips} (make_certs always names localhost, 127.0.0.1 and ::1).
    """
    caKey, caCert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(caCert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(n) for n in dnsNames] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]),
                critical=False)
            .sign(caKey, hashes.SHA256()))
    certPath, keyPath = os.path.join(directory, name + ".pem"), os.path.join(directory, name + ".key")
    with open(certPath, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(keyPath, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return certPath, keyPath


class Certs:
    """
    A test deployment: a CA with a gateway and clients (alice, bob), another
    CA with its own gateway and client (mallory), and a gateway certificate
    from the right CA that names another host.
    """

    def __init__(self, directory):
        makeCerts = _loadMakeCerts()
        self.dir = directory
        ca = makeCerts.makeCA(directory)
        self.ca = os.path.join(directory, "ca.pem")
        self.gateway = makeCerts.makeCertificate(directory, "gateway", ca, server=True)
        self.alice = makeCerts.makeCertificate(directory, "alice", ca)
        self.bob = makeCerts.makeCertificate(directory, "bob", ca)
        self.wrongName = _serverCertificate(directory, "elsewhere", ca, ["elsewhere.example"], ["192.0.2.1"])
        other = os.path.join(directory, "other")
        os.mkdir(other)
        otherCA = makeCerts.makeCA(other, name="another CA")
        self.otherCA = os.path.join(other, "ca.pem")
        self.mallory = makeCerts.makeCertificate(other, "mallory", otherCA)
        self.otherGateway = makeCerts.makeCertificate(other, "gateway", otherCA, server=True)

    def appSettings(self, name, document):
        """
        @return: the path of a new appsettings file holding C{document}
            (a str is written as is, anything else as JSON).
        """
        path = os.path.join(self.dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(document if isinstance(document, str) else json.dumps(document))
        return path


_CERTS = []


def certs():
    """
    @return: the module's L{Certs}, made on first use; the directory is
        removed when the test process exits.
    """
    if not _CERTS:
        directory = tempfile.mkdtemp(prefix="vpn041-test-")
        atexit.register(shutil.rmtree, directory, True)
        _CERTS.append(Certs(directory))
    return _CERTS[0]


# -- helpers --------------------------------------------------------------------


waitUntil = waiter(timeout=20.0)


def openTCP():
    """
    @return: the TCP connections the reactor still watches.
    """
    return [s for s in reactor.getReaders() + reactor.getWriters() if isinstance(s, tcp.Connection)]


def flip(datagram, index, mask=0x01):
    """
    @return: C{datagram} with the bits of C{mask} flipped in byte C{index}.
    """
    b = bytearray(datagram)
    b[index] ^= mask
    return bytes(b)


def flipPadding(datagram):
    """
    For a CBC datagram of a 16-byte payload (two blocks: the payload, then
    sixteen 0x10 padding bytes): flip the last bit of the first ciphertext
    block, which flips the last bit of the padding block (0x10 -> 0x11):
    the padding is then always invalid. In the authenticated variant any
    flipped bit fails the tag.
    """
    return flip(datagram, HEADER_SIZE + 15)


def truncate(datagram):
    """
    @return: C{datagram} one byte short: a CBC body that is not a multiple
        of 16 (and a GCM tag that does not verify).
    """
    return datagram[:-1]


class LogCapture:
    """
    Records every event of the global log publisher while a test runs.
    """

    def __init__(self, testCase):
        self.events = []
        globalLogPublisher.addObserver(self)
        testCase.addCleanup(globalLogPublisher.removeObserver, self)

    def __call__(self, event):
        self.events.append(event)

    def select(self, namespace, level=None):
        """
        @return: the formatted events of C{namespace} (at C{level}, if given).
        """
        return [formatEvent(e) for e in self.events if e.get("log_namespace") == namespace
                and (level is None or e.get("log_level") == level)]

    def vpn041(self):
        """
        @return: the formatted vpn041 events, at any level.
        """
        return [formatEvent(e) for e in self.events if str(e.get("log_namespace", "")).startswith("sudp.vpn041")]

    def atLeast(self, level):
        """
        @return: the formatted vpn041 events at C{level} or above.
        """
        return [formatEvent(e) for e in self.events
                if str(e.get("log_namespace", "")).startswith("sudp.vpn041")
                and e.get("log_level") is not None and e["log_level"] >= level]


class Recorder(test_udp_integration.Recorder):
    """
    An application protocol that records the pushes it receives.
    """

    def waitFor(self, n):
        return waitUntil(lambda: len(self.messages) >= n, f"{n} pushes")


class RecorderFactory(test_udp_integration.RecorderFactory):
    def __init__(self, cls=Recorder):
        test_udp_integration.RecorderFactory.__init__(self, cls)

    def bySession(self, sessionId):
        return [p for p in self.protocols if p.addr.sessionId == sessionId][-1]


class Vpn041Mixin:
    """
    Gateways and clients on 127.0.0.1, stopped at cleanup (and the test
    waits until their TCP connections are closed).
    """

    timeout = 60

    def setUp(self):
        self.certs = certs()
        self.addCleanup(waitUntil, lambda: not openTCP(), "every TCP connection closed")

    @defer.inlineCallbacks
    def startGateway(self, appSettings, factory=None, authenticated=False, cert=None):
        """
        @return: a listening L{Gateway} (auth and UDP ports on 127.0.0.1).
        """
        factory = factory or RecorderFactory()
        certPath, keyPath = cert or self.certs.gateway
        gateway = Gateway(reactor, appSettings, factory, certPath, keyPath, self.certs.ca,
                          authenticated=authenticated)
        yield gateway.listen(TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"), 0, "127.0.0.1")
        self.addCleanup(gateway.stopListening)
        return gateway

    def connectClient(self, gateway, appSettings=None, name="alice", authenticated=None, factory=None,
                      host="127.0.0.1", tlsOptions=None):
        """
        Start a client of C{gateway} (its UDP port bound to 127.0.0.1).

        @return: the L{Vpn041Client}; C{.ready} fires with its protocol.
        """
        certPath, keyPath = getattr(self.certs, name)
        client = Vpn041Client(reactor, host, gateway.authPort.getHost().port, appSettings or gateway.settings,
                              factory or RecorderFactory(), certPath, keyPath, self.certs.ca,
                              gateway.authenticated if authenticated is None else authenticated,
                              bindAddress="127.0.0.1")
        if tlsOptions is not None:
            client.tls = tlsOptions
        client.connect()
        self.addCleanup(self.closeClient, client)
        return client

    def closeClient(self, client):
        client.close("test over")
        client._stopUDP()

    @defer.inlineCallbacks
    def session(self, useEncryption=True, authenticated=False, encryptionType="Tls13"):
        """
        @return: C{(gateway, gateway factory, client, client protocol,
            gateway protocol)} of one established session.
        """
        gatewayFactory = RecorderFactory()
        gateway = yield self.startGateway(AppSettings(useEncryption, encryptionType), gatewayFactory, authenticated)
        client = self.connectClient(gateway)
        p = yield client.ready
        return gateway, gatewayFactory, client, p, gatewayFactory.bySession(client.session.sessionId)

    def captureInput(self, gateway):
        """
        @return: a list that receives every datagram the gateway's UDP
            socket receives, as it was on the wire.
        """
        return self._capture(gateway, "datagramReceived")

    def captureOutput(self, gateway):
        """
        @return: a list that receives every datagram the gateway sends.
        """
        return self._capture(gateway, "sendDatagram")

    def _capture(self, gateway, name):
        """
        Wrap C{gateway}'s method C{name(datagram, address)}: each datagram
        is recorded, then handed on.
        """
        seen = []
        original = getattr(gateway, name)

        def recording(datagram, address):
            seen.append(bytes(datagram))
            original(datagram, address)

        self.patch(gateway, name, recording)
        return seen

    def rawSocket(self):
        """
        @return: a plain UDP socket on 127.0.0.1 (an attacker on the path),
            closed at cleanup.
        """
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        self.addCleanup(s.close)
        return s


def udpAddress(gateway):
    return ("127.0.0.1", gateway.udpPort.getHost().port)


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


# -- 1. the full flow ---------------------------------------------------------------


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


for _type in NEGOTIATED:
    for _enc in (True, False):
        setattr(FullFlowTests, f"test_{_type}_{'encrypted' if _enc else 'plaintext'}", _flowTest(_type, _enc, False))
for _enc in (True, False):
    setattr(FullFlowTests, f"test_authenticated_{'encrypted' if _enc else 'plaintext'}",
            _flowTest("Tls13", _enc, True))


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


# -- 2. session ids -------------------------------------------------------------------


class SessionIdTests(Vpn041Mixin, unittest.TestCase):
    """
    Session ids are 1-255, the 256th client is refused, freed ids are reused last.
    """

    def test_allocatorOrder(self):
        """
        SessionIds hands out 1..255 in order (never 0), then None; a freed id
        goes to the back of the line: it comes back only after every id
        never used or freed earlier.
        """
        ids = SessionIds()
        first = [ids.allocate() for _ in range(3)]
        self.assertEqual(first, [1, 2, 3])
        ids.release(1)
        self.assertEqual(ids.allocate(), 4)  # not 1
        rest = [ids.allocate() for _ in range(251)]
        self.assertEqual(rest, list(range(5, 256)))
        self.assertEqual(ids.allocate(), 1)  # last
        self.assertIsNone(ids.allocate())
        ids.release(17)
        ids.release(3)
        self.assertEqual((ids.allocate(), ids.allocate(), ids.allocate()), (17, 3, None))

    @defer.inlineCallbacks
    def test_freedIdReusedLast(self):
        """
        Over real TLS: alice gets 1, bob 2; after alice's session ends, the
        next client gets 3, not alice's 1.
        """
        gateway = yield self.startGateway(AppSettings(True, "Tls13"))
        alice = self.connectClient(gateway, name="alice")
        pa = yield alice.ready
        bob = self.connectClient(gateway, name="bob")
        yield bob.ready
        self.assertEqual((alice.session.sessionId, bob.session.sessionId), (1, 2))
        pa.transport.loseConnection()
        yield waitUntil(lambda: 1 not in gateway.sessions, "session 1 ended at the gateway")
        third = self.connectClient(gateway, name="alice")
        yield third.ready
        self.assertEqual(third.session.sessionId, 3)

    @defer.inlineCallbacks
    def test_255Sessions(self):
        """
        255 clients authenticate over real TLS and get exactly the ids
        1..255; the 256th fails with Vpn041AuthFailed saying every id is
        taken, while all 255 sessions keep pushing both ways; an id comes
        back only when its session has ended, freed ids in the order they
        were freed.
        """
        gatewayFactory = RecorderFactory()
        gateway = yield self.startGateway(AppSettings(True, "Tls13"), gatewayFactory)
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
            for sessionId in freed:
                again = self.connectClient(gateway, name="bob")
                yield again.ready
                self.assertEqual(again.session.sessionId, sessionId)
        self.assertEqual(len(gateway.sessions), 255)


# -- 3. certificates and mismatched settings ---------------------------------------------


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


# -- 4. failure rules --------------------------------------------------------------------


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
        bad = tamper(wire[0])
        attacker.sendto(bad, udpAddress(gateway))

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

    def test_authenticatedFlip(self):
        """
        The authenticated variant (useEncryption true): a flipped bit fails
        the tag and follows the same rule.
        """
        return self.serverFailure(True, True, flipPadding)

    def test_authenticatedPlaintextFlip(self):
        """
        The authenticated variant with useEncryption false: flipping a byte
        of the cleartext payload fails the tag and follows the same rule.
        """
        return self.serverFailure(False, True, lambda d: flip(d, HEADER_SIZE + 3, 0x20))

    @defer.inlineCallbacks
    def test_forgedDatagramEndsSession(self):
        """
        Documents the seed's denial of service (docs/vpn041.md section 4): a
        datagram never seen on the wire, random bytes under a guessed id,
        from any address, ends that session (a 40-byte body: never a
        whole number of AES blocks, so the outcome does not depend on luck).
        """
        gateway, _, client, p, g = yield self.session()
        logs = LogCapture(self)
        self.rawSocket().sendto(bytes([client.session.sessionId]) + os.urandom(56), udpAddress(gateway))
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
    def test_replayDelivered(self):
        """
        Documents a risk (docs/vpn041.md section 4): there is no sequence
        number, so a captured datagram replayed is delivered again, in every
        mode, the authenticated variant included.
        """
        for useEncryption, authenticated in MODES:
            gateway, _, client, p, g = yield self.session(useEncryption, authenticated)
            wire = self.captureInput(gateway)
            p.transport.write(b"transfer 10 EUR")
            yield g.waitFor(1)
            self.rawSocket().sendto(wire[0], udpAddress(gateway))
            yield g.waitFor(2)
            self.assertEqual(g.messages, [b"transfer 10 EUR"] * 2)

    @defer.inlineCallbacks
    def test_replayFromElsewhereKeepsPushAddress(self):
        """
        The authenticated variant: a valid datagram captured and replayed
        from another address must not move the session's push address (or
        anyone on the path could send the client's pushes to themselves
        with one replay); pushes still reach the client.
        """
        gateway, _, client, p, g = yield self.session(True, True)
        wire = self.captureInput(gateway)
        p.transport.write(b"hello")
        yield g.waitFor(1)
        clientHost = client.udpPort.getHost()
        self.assertEqual(g.transport.pushAddress, (clientHost.host, clientHost.port))
        attacker = self.rawSocket()
        attacker.sendto(wire[0], udpAddress(gateway))
        yield g.waitFor(2)  # the replay itself is delivered (see test_replayDelivered)
        self.assertEqual(g.transport.pushAddress, (clientHost.host, clientHost.port),
                         f"a replay from {attacker.getsockname()} moved the pushes there")
        g.transport.write(b"for the client")
        yield p.waitFor(1)

    @defer.inlineCallbacks
    def test_plaintextFlipDelivered(self):
        """
        useEncryption false has no integrity, by design: a payload altered on
        the path is delivered altered, nothing is logged, the session goes on.
        """
        gateway, _, client, p, g = yield self.session(useEncryption=False)
        wire = self.captureInput(gateway)
        p.transport.write(b"pay alice 10 EUR")
        yield g.waitFor(1)
        logs = LogCapture(self)
        bad = flip(wire[0], HEADER_SIZE + 10, ord("1") ^ ord("9"))
        self.rawSocket().sendto(bad, udpAddress(gateway))
        yield g.waitFor(2)
        self.assertEqual(g.messages, [b"pay alice 10 EUR", b"pay alice 90 EUR"])
        self.assertEqual(logs.atLeast(LogLevel.warn), [])
        self.assertIn(client.session.sessionId, gateway.sessions)

    @defer.inlineCallbacks
    def test_cbcFlipDelivered(self):
        """
        useEncryption true is not integrity either: flipping bits of
        ciphertext block 1 garbles plaintext block 1 and flips exactly those
        bits of block 2, with valid padding, so an attacker without the key
        changes "10" into "90" and the gateway delivers it without a word.
        """
        gateway, _, client, p, g = yield self.session(useEncryption=True)
        wire = self.captureInput(gateway)
        payload = SIXTEEN + b"pay alice 10 EUR"
        p.transport.write(payload)
        yield g.waitFor(1)
        logs = LogCapture(self)
        bad = flip(wire[0], HEADER_SIZE + 10, ord("1") ^ ord("9"))
        self.rawSocket().sendto(bad, udpAddress(gateway))
        yield g.waitFor(2)
        altered = g.messages[1]
        self.assertEqual(altered[16:], b"pay alice 90 EUR")
        self.assertNotEqual(altered[:16], SIXTEEN)
        self.assertEqual(logs.atLeast(LogLevel.warn), [])
        self.assertIn(client.session.sessionId, gateway.sessions)


class ClientFailureRuleTests(Vpn041Mixin, unittest.TestCase):
    """
    Seed 001 section 8, client: a datagram that does not decrypt logs one
    critical error and the client stops hard.
    """

    @defer.inlineCallbacks
    def clientFailure(self, useEncryption, authenticated, tamper):
        gateway, _, client, p, g = yield self.session(useEncryption, authenticated)
        sent = self.captureOutput(gateway)
        g.transport.write(SIXTEEN)
        yield p.waitFor(1)
        logs = LogCapture(self)
        bad = tamper(sent[0])
        pushAddress = g.transport.pushAddress
        gateway.sendDatagram(bad, pushAddress)  # from the gateway's own socket
        gateway.sendDatagram(bad, pushAddress)

        error = yield client.fatal
        self.assertIsInstance(error, Vpn041Fatal)
        self.assertIs(client.fatalError, error)
        critical = logs.select(CLIENT_NS, LogLevel.critical)
        self.assertEqual(len(critical), 1, critical)
        self.assertIn("does not decrypt", critical[0])
        self.assertIs(p.reason.value, error)  # connectionLost got the Vpn041Fatal
        self.assertEqual(p.messages, [SIXTEEN])
        self.assertRaises(Vpn041Fatal, p.transport.write, b"after the crash")
        self.assertIsNone(client.udpPort)  # stopped: nothing more arrives
        # once: another bad datagram reaching the client logs nothing more
        client.datagramReceived(bad, pushAddress)
        self.assertEqual(len(logs.select(CLIENT_NS, LogLevel.critical)), 1)
        self.assertGreaterEqual(client.drops["no-session"], 1)
        self.assertRaises(Vpn041Fatal, p.transport.write, b"still")
        # the gateway sees the session end when the client's auth connection closes
        reason = yield g.lost
        self.assertEqual(reason.reason, "auth-connection-closed")
        self.assertEqual(gateway.sessions, {})
        self.assertEqual(logs.select(GATEWAY_NS, LogLevel.error), [])

    def test_cbcPaddingFlip(self):
        """
        useEncryption true: a gateway datagram with broken padding makes the
        client log one critical error, fire client.fatal, give its protocol
        connectionLost(Vpn041Fatal), raise Vpn041Fatal on every later write,
        and close its auth connection (the gateway's session ends).
        """
        return self.clientFailure(True, False, flipPadding)

    def test_cbcTruncated(self):
        """
        The same for a truncated datagram from the gateway.
        """
        return self.clientFailure(True, False, truncate)

    def test_authenticatedFlip(self):
        """
        The authenticated variant: any flipped bit fails the tag; the same rule.
        """
        return self.clientFailure(True, True, flipPadding)

    def test_authenticatedPlaintextFlip(self):
        """
        The authenticated variant without encryption: a flip of the clear
        payload fails the tag; the same rule.
        """
        return self.clientFailure(False, True, lambda d: flip(d, HEADER_SIZE + 3, 0x20))

    @defer.inlineCallbacks
    def test_plaintextFlipDelivered(self):
        """
        useEncryption false: the client cannot tell an altered push; it is
        delivered altered and the client goes on (no integrity, by design).
        """
        gateway, _, client, p, g = yield self.session(useEncryption=False)
        sent = self.captureOutput(gateway)
        g.transport.write(b"pay alice 10 EUR")
        yield p.waitFor(1)
        logs = LogCapture(self)
        gateway.sendDatagram(flip(sent[0], HEADER_SIZE + 10, ord("1") ^ ord("9")), g.transport.pushAddress)
        yield p.waitFor(2)
        self.assertEqual(p.messages, [b"pay alice 10 EUR", b"pay alice 90 EUR"])
        self.assertFalse(client.fatal.called)
        self.assertEqual(logs.atLeast(LogLevel.warn), [])
        p.transport.write(b"still here")
        yield g.waitFor(1)


class ProcessProtocol(protocol.ProcessProtocol):
    """
    A subprocess: its output, and C{ended} firing with its exit status.
    """

    def __init__(self):
        self.out = b""
        self.err = b""
        self.ended = defer.Deferred()
        self.status = None

    def outReceived(self, data):
        self.out += data

    def errReceived(self, data):
        self.err += data

    def processEnded(self, reason):
        self.status = reason.value.exitCode
        self.ended.callback(self.status)

    def waitOut(self, needle, what=None):
        return waitUntil(lambda: needle in self.out + self.err, what or f"{needle!r} in the output")


class SubprocessMixin(Vpn041Mixin):
    def env(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def spawn(self, *args):
        """
        Run C{python ARGS}; it is stopped at cleanup if still running.
        """
        pp = ProcessProtocol()
        reactor.spawnProcess(pp, sys.executable, [sys.executable, *args], env=self.env(), path=self.certs.dir)

        def stop():
            if not pp.ended.called:
                pp.transport.signalProcess("TERM")
                return pp.ended

        self.addCleanup(stop)
        return pp

    def clientArgs(self, appsettings, authPort, *extra):
        return ["-m", "sudp", "vpn041", "--appsettings", appsettings, "--cert", self.certs.alice[0],
                "--key", self.certs.alice[1], "--ca", self.certs.ca, "--host", "127.0.0.1",
                "--auth-port", str(authPort), *extra]

    def twistArgs(self, appsettings, *extra):
        return ["-m", "twisted", "--log-format=text", "vpn041", "--appsettings", appsettings,
                "--cert", self.certs.gateway[0], "--key", self.certs.gateway[1], "--ca", self.certs.ca,
                "--auth-port", "0", "--port", "0", "--interface", "127.0.0.1", *extra]


class TamperBack(protocol.Protocol):
    """
    A gateway application that answers every push with a datagram of its
    session whose padding is broken, sent from the gateway's own socket.
    """

    def dataReceived(self, data):
        session = self.transport
        bad = flipPadding(session.codec.seal(SIXTEEN))
        session.gateway.sendDatagram(bad, session.pushAddress)


class CommandLineFatalTests(SubprocessMixin, unittest.TestCase):
    """
    The command-line client's failure rule.
    """

    @defer.inlineCallbacks
    def test_sudpVpn041ExitsOnTamperedDatagram(self):
        """
        sudp vpn041 (a subprocess) sends a push; the gateway answers with a
        datagram whose padding is broken: the client prints one critical
        line and exits at once with status 70, and the gateway sees the
        session end.
        """
        gatewayFactory = RecorderFactory(TamperBack)
        gateway = yield self.startGateway(AppSettings(True, "Tls13"), gatewayFactory)
        appsettings = self.certs.appSettings("cli-fatal.json", {"appSettings": {"useEncryption": True,
                                                                                "encryptionType": "Tls13"}})
        pp = self.spawn(*self.clientArgs(appsettings, gateway.authPort.getHost().port))
        pp.transport.write(b"hello\n")  # stdin stays open: only the fatal failure ends the client
        status = yield pp.ended
        self.assertEqual(status, 70, pp.err)
        text = pp.err.decode()
        critical = [line for line in text.splitlines() if "critical" in line]
        self.assertEqual(len(critical), 1, text)
        self.assertIn("does not decrypt", critical[0])
        self.assertEqual(pp.out, b"")
        yield waitUntil(lambda: not gateway.sessions, "the gateway ends the session")
        self.assertEqual(gatewayFactory.protocols[0].transport.ended, "auth-connection-closed")


class CommandLineInterruptTests(SubprocessMixin, unittest.TestCase):
    """
    The command-line client interrupted: the exit statuses of C{sudp --help}.
    """

    @defer.inlineCallbacks
    def assertInterrupted(self, signal, status):
        """
        sudp vpn041 (a subprocess) with a session, its input still open, sent
        C{signal}, exits with C{status}, without a traceback, and the
        gateway sees the session end.
        """
        from sudp.tap import Echo

        gateway = yield self.startGateway(AppSettings(True, "Tls13"), protocol.Factory.forProtocol(Echo))
        appsettings = self.certs.appSettings("cli-interrupt.json", {"appSettings": {"useEncryption": True,
                                                                                    "encryptionType": "Tls13"}})
        pp = self.spawn(*self.clientArgs(appsettings, gateway.authPort.getHost().port))
        pp.transport.write(b"hello\n")
        yield waitUntil(lambda: b"hello\n" in pp.out, "the echo of hello")
        pp.transport.signalProcess(signal)
        code = yield pp.ended
        self.assertEqual(code, status, pp.err)
        self.assertNotIn(b"Traceback", pp.err)
        self.assertNotIn(b"Unhandled error", pp.err)
        yield waitUntil(lambda: not gateway.sessions, "the gateway ends the session")

    def test_sigint(self):
        """
        Ctrl-C (SIGINT): status 130.
        """
        return self.assertInterrupted("INT", 130)

    def test_sigterm(self):
        """
        SIGTERM: status 143.
        """
        return self.assertInterrupted("TERM", 143)


class CommandLineAuthTests(SubprocessMixin, unittest.TestCase):
    """
    The command-line client when it cannot start a session.
    """

    @defer.inlineCallbacks
    def test_sudpVpn041AuthFails(self):
        """
        sudp vpn041 with useEncryption true against a gateway with false
        exits 1 with the gateway's reason; with a bad appsettings file
        (an unknown key; an encryptionType that is a list) it exits 1 with
        a message naming the file, without a traceback.
        """
        gateway = yield self.startGateway(AppSettings(False, "Tls13"))
        port = gateway.authPort.getHost().port
        good = self.certs.appSettings("cli-true.json", {"appSettings": {"useEncryption": True,
                                                                       "encryptionType": "Tls13"}})
        unknown = self.certs.appSettings("cli-unknown.json", BAD_SETTINGS["unknown-key"][0])
        listed = self.certs.appSettings("cli-list.json", BAD_SETTINGS["encryptionType-list"][0])
        processes = [self.spawn(*self.clientArgs(path, port)) for path in (good, unknown, listed)]
        statuses = yield defer.gatherResults([pp.ended for pp in processes])
        errors = [pp.err.decode() for pp in processes]
        self.assertEqual(statuses[0], 1, errors[0])
        self.assertIn("useEncryption=False", errors[0])
        self.assertEqual(gateway.sessions, {})
        for path, status, error in zip((unknown, listed), statuses[1:], errors[1:]):
            self.assertNotIn("Traceback", error)
            self.assertEqual(status, 1, error)
            self.assertIn(path, error)


# -- 5. appSettings --------------------------------------------------------------------------


BAD_SETTINGS = {
    "unknown-key": ({"appSettings": {"useEncryption": True, "encryptionType": "Tls13", "mtu": 1400}}, "mtu"),
    "missing-useEncryption": ({"appSettings": {"encryptionType": "Tls13"}}, "useEncryption"),
    "missing-encryptionType": ({"appSettings": {"useEncryption": True}}, "encryptionType"),
    "empty": ({"appSettings": {}}, "useEncryption"),
    "useEncryption-yes": ({"appSettings": {"useEncryption": "yes", "encryptionType": "Tls13"}}, "useEncryption"),
    "useEncryption-1": ({"appSettings": {"useEncryption": 1, "encryptionType": "Tls13"}}, "useEncryption"),
    "useEncryption-null": ({"appSettings": {"useEncryption": None, "encryptionType": "Tls13"}}, "useEncryption"),
    "encryptionType-5": ({"appSettings": {"useEncryption": True, "encryptionType": 5}}, "encryptionType"),
    "encryptionType-unknown": ({"appSettings": {"useEncryption": True, "encryptionType": "Tls10"}},
                               "encryptionType"),
    "encryptionType-lowercase": ({"appSettings": {"useEncryption": True, "encryptionType": "tls13"}},
                                 "encryptionType"),
    "encryptionType-list": ({"appSettings": {"useEncryption": True, "encryptionType": ["Tls13"]}},
                            "encryptionType"),
    "encryptionType-object": ({"appSettings": {"useEncryption": True, "encryptionType": {"name": "Tls13"}}},
                              "encryptionType"),
    "nested": ({"appSettings": {"udp": {"useEncryption": True}, "auth": {"encryptionType": "Tls13"}}}, "udp"),
    "not-under-appSettings": ({"useEncryption": True, "encryptionType": "Tls13"}, "appSettings"),
    "extra-top-level": ({"appSettings": {"useEncryption": True, "encryptionType": "Tls13"}, "logging": {}},
                        "appSettings"),
    "appSettings-list": ({"appSettings": [True, "Tls13"]}, "appSettings"),
    "top-level-list": ([{"appSettings": {"useEncryption": True, "encryptionType": "Tls13"}}], "appSettings"),
    "not-json": ("useEncryption = true\n", "JSON"),
    "empty-file": ("", "JSON"),
    "trailing-garbage": ('{"appSettings": {"useEncryption": true, "encryptionType": "Tls13"}} x', "JSON"),
}


class AppSettingsTests(unittest.TestCase):
    """
    The flat appSettings file: exactly two keys of the right types.
    """

    def setUp(self):
        self.certs = certs()

    def test_good(self):
        """
        Every encryptionType with either useEncryption value loads.
        """
        for encryptionType in NEGOTIATED:
            for useEncryption in (True, False):
                path = self.certs.appSettings(f"good-{encryptionType}-{useEncryption}.json", {
                    "appSettings": {"useEncryption": useEncryption, "encryptionType": encryptionType}})
                self.assertEqual(loadAppSettings(path), AppSettings(useEncryption, encryptionType))

    def test_bad(self):
        """
        Unknown and missing keys, wrong types (useEncryption "yes", 1, null;
        encryptionType 5, unknown, a list or an object), nested or non-flat
        documents, and text that is not JSON are each a ConfigurationError
        naming the file and what is wrong.
        """
        problems = []
        for name, (document, mention) in BAD_SETTINGS.items():
            path = self.certs.appSettings(f"bad-{name}.json", document)
            try:
                loadAppSettings(path)
            except ConfigurationError as e:
                if path not in str(e) or mention not in str(e):
                    problems.append(f"{name}: {e}")
            except Exception as e:
                problems.append(f"{name}: {type(e).__name__} instead of ConfigurationError: {e}")
            else:
                problems.append(f"{name}: accepted")
        self.assertEqual(problems, [])

    def test_missingFile(self):
        """
        A missing file is a ConfigurationError naming it.
        """
        path = os.path.join(self.certs.dir, "does-not-exist.json")
        error = self.assertRaises(ConfigurationError, loadAppSettings, path)
        self.assertIn(path, str(error))

    def test_parseNamesTheSource(self):
        """
        parseAppSettings names the source it was given.
        """
        error = self.assertRaises(ConfigurationError, parseAppSettings, "{", "settings.json")
        self.assertIn("settings.json", str(error))

    def test_constructorChecks(self):
        """
        AppSettings itself refuses values of the wrong type.
        """
        for args in [("yes", "Tls13"), (1, "Tls13"), (None, "Tls13"), (True, 5), (True, "Tls14")]:
            self.assertRaises(ConfigurationError, AppSettings, *args)


class GatewayStartTests(SubprocessMixin, unittest.TestCase):
    """
    What the gateway says and refuses when it starts.
    """

    @defer.inlineCallbacks
    def test_noIntegrityWarning(self):
        """
        The gateway of the seed's data plane logs a warning that UDP has no
        integrity protection when it starts listening, whatever
        useEncryption says; the authenticated variant does not.
        """
        for useEncryption in (True, False):
            logs = LogCapture(self)
            yield self.startGateway(AppSettings(useEncryption, "Tls13"))
            warnings = logs.select(GATEWAY_NS, LogLevel.warn)
            self.assertEqual(len(warnings), 1, warnings)
            self.assertIn("NO INTEGRITY", warnings[0])
        logs = LogCapture(self)
        yield self.startGateway(AppSettings(True, "Tls13"), authenticated=True)
        self.assertEqual(logs.select(GATEWAY_NS, LogLevel.warn), [])

    @defer.inlineCallbacks
    def test_twistBadAppSettings(self):
        """
        twist vpn041 with a bad appsettings file (an unknown key, a wrong
        type, a missing file, a non-flat document) exits non-zero with a
        message naming the file.
        """
        cases = [self.certs.appSettings("twist-unknown.json", BAD_SETTINGS["unknown-key"][0]),
                 self.certs.appSettings("twist-yes.json", BAD_SETTINGS["useEncryption-yes"][0]),
                 os.path.join(self.certs.dir, "twist-missing.json"),
                 self.certs.appSettings("twist-object.json", BAD_SETTINGS["encryptionType-object"][0])]
        processes = [self.spawn(*self.twistArgs(path)) for path in cases]
        statuses = yield defer.gatherResults([pp.ended for pp in processes])
        for path, pp, status in zip(cases, processes, statuses):
            output = (pp.out + pp.err).decode()
            self.assertNotEqual(status, 0, output)
            self.assertIn(path, output)
            self.assertNotIn("Traceback", output)


# -- 6. the data plane ---------------------------------------------------------------------------


def codecs(sessionId=7, key=None, family=4):
    key = key or bytes(range(32))
    return [PacketCodec(sessionId, key, enc, auth, family) for enc, auth in MODES]


class DataPlaneTests(unittest.TestCase):
    """
    The datagram format, the per-packet keys and the MTU bound (sans-IO).
    """

    def test_header(self):
        """
        The header is exactly 17 bytes: the session id, then the 16-byte
        nonce, both in the clear, in every mode; parseHeader splits it.
        """
        self.assertEqual(HEADER_SIZE, 17)
        for codec in codecs(sessionId=200):
            nonce = bytes(range(100, 116))
            datagram = codec.seal(b"payload", nonce=nonce)
            self.assertEqual(datagram[0], 200)
            self.assertEqual(datagram[1:17], nonce)
            self.assertEqual(parseHeader(datagram), (200, nonce, datagram[17:]))
            self.assertEqual(codec.open(nonce, datagram[17:]), b"payload")
        self.assertEqual(codecs()[0].seal(b"abc")[17:], b"abc")  # plaintext: nothing but the header added

    def test_packetKeyIsHKDF(self):
        """
        The per-packet key and IV are HKDF-SHA-256(salt=nonce, ikm=session
        key, info="vpn041 packet", 48 bytes) computed independently, and
        differ for every nonce; both sides derive the same.
        """
        sessionKey = os.urandom(32)
        seen = set()
        for _ in range(200):
            nonce = os.urandom(16)
            okm = HKDF(algorithm=hashes.SHA256(), length=48, salt=nonce, info=b"vpn041 packet").derive(sessionKey)
            key, iv = packetKey(sessionKey, nonce)
            self.assertEqual((key, iv), (okm[:32], okm[32:]))
            self.assertEqual(packetKey(sessionKey, nonce), (key, iv))
            seen.add(key)
            seen.add(iv)
        self.assertEqual(len(seen), 400)
        other = os.urandom(32)
        self.assertNotEqual(packetKey(other, b"\0" * 16), packetKey(sessionKey, b"\0" * 16))

    def test_cbcUsesThePacketKey(self):
        """
        useEncryption: the body is AES-256-CBC with PKCS#7 under the packet
        key and IV, checked with cryptography directly.
        """
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        sessionKey, nonce = os.urandom(32), os.urandom(16)
        codec = PacketCodec(9, sessionKey, True)
        datagram = codec.seal(b"hello", nonce=nonce)
        okm = HKDF(algorithm=hashes.SHA256(), length=48, salt=nonce, info=b"vpn041 packet").derive(sessionKey)
        decryptor = Cipher(algorithms.AES(okm[:32]), modes.CBC(okm[32:])).decryptor()
        padded = decryptor.update(datagram[17:]) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        self.assertEqual(unpadder.update(padded) + unpadder.finalize(), b"hello")
        self.assertEqual(len(datagram), 17 + 16)

    def test_freshNonces(self):
        """
        Every datagram gets a fresh random nonce: 10,000 datagrams of the
        same payload have 10,000 different nonces and bodies.
        """
        codec = PacketCodec(1, os.urandom(32), True)
        datagrams = [codec.seal(b"same") for _ in range(10000)]
        self.assertEqual(len({d[1:17] for d in datagrams}), 10000)
        self.assertEqual(len({d[17:] for d in datagrams}), 10000)

    def test_maxPayload(self):
        """
        The largest payload in each mode makes a datagram of at most 1,472
        bytes (IPv4) or 1,452 (IPv6), exactly that in plaintext and the
        authenticated variant; one byte more raises ValueError.
        """
        limits = {4: 1500 - 28, 6: 1500 - 48}
        expected = {(4, False, False): 1455, (4, True, False): 1439, (4, False, True): 1439,
                    (4, True, True): 1439, (6, False, False): 1435, (6, True, False): 1423,
                    (6, False, True): 1419, (6, True, True): 1419}
        for family in (4, 6):
            for codec in codecs(family=family):
                mode = (family, codec.useEncryption, codec.authenticated)
                self.assertEqual(codec.maxPayload, expected[mode], mode)
                self.assertEqual(maxPayload(codec.useEncryption, codec.authenticated, family), expected[mode])
                datagram = codec.seal(b"x" * codec.maxPayload)
                self.assertLessEqual(len(datagram), limits[family], mode)
                if not codec.useEncryption or codec.authenticated:
                    self.assertEqual(len(datagram), limits[family], mode)
                self.assertEqual(codec.open(datagram[1:17], datagram[17:]), b"x" * codec.maxPayload)
                self.assertRaises(ValueError, codec.seal, b"x" * (codec.maxPayload + 1))

    def test_sessionIdRange(self):
        """
        A codec's session id is 1-255 (0 is the server's) and its key 32 bytes.
        """
        for bad in (0, 256, -1):
            self.assertRaises(ValueError, PacketCodec, bad, bytes(32), True)
        self.assertRaises(ValueError, PacketCodec, 1, bytes(31), True)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.binary(max_size=64), st.sampled_from(MODES))
    def test_openArbitraryBytes(self, data, mode):
        """
        parseHeader and PacketCodec.open on arbitrary bytes raise only
        MalformedPacket or DecryptFailure, in every mode.
        """
        codec = PacketCodec(1, bytes(32), *mode)
        try:
            _, nonce, body = parseHeader(data)
        except MalformedPacket:
            self.assertLess(len(data), 17)
            return
        try:
            codec.open(nonce, body)
        except DecryptFailure:
            self.assertTrue(codec.useEncryption or codec.authenticated)

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.sampled_from(MODES), st.data())
    def test_roundTrip(self, mode, data):
        """
        seal then open gives back any payload up to maxPayload, in every mode.
        """
        key = os.urandom(32)
        sender = PacketCodec(42, key, *mode)
        receiver = PacketCodec(42, key, *mode)
        payload = data.draw(st.binary(max_size=sender.maxPayload))
        datagram = sender.seal(payload)
        sessionId, nonce, body = parseHeader(datagram)
        self.assertEqual(sessionId, 42)
        self.assertEqual(receiver.open(nonce, body), payload)


class AuthMessageTests(unittest.TestCase):
    """
    The auth plane's JSON lines.
    """

    def test_roundTrip(self):
        """
        A request and a response decode to what was encoded; a refusal
        decodes to Vpn041AuthFailed with its reason.
        """
        self.assertEqual(decodeRequest(encodeRequest(5000, True, False)), (5000, True, False))
        key = os.urandom(32)
        response = decodeResponse(encodeResponse(255, key, 9000, False, True))
        self.assertEqual((response.sessionId, response.sessionKey, response.udpPort, response.useEncryption,
                          response.authenticated), (255, key, 9000, False, True))
        error = self.assertRaises(Vpn041AuthFailed, decodeResponse, encodeRefusal("all 255 session ids are taken"))
        self.assertIn("all 255 session ids are taken", str(error))

    def test_badResponses(self):
        """
        A session id of 0 or 256, a key that is not 32 bytes, or a key that
        is not base64 are refused.
        """
        good = json.loads(encodeResponse(1, bytes(32), 9000, True, False))
        for change in [{"sessionId": 0}, {"sessionId": 256}, {"sessionId": True}, {"sessionKey": "AAAA"},
                       {"sessionKey": "not base64!"}, {"sessionKey": "\u00e9" * 44}, {"udpPort": 0}]:
            line = json.dumps({**good, **change}).encode()
            self.assertRaises(Vpn041AuthFailed, decodeResponse, line)

    def test_deeplyNested(self):
        """
        A line of deeply nested JSON (within the 4,096-byte line limit) is
        a Vpn041AuthFailed, not a RecursionError, for both decoders.
        """
        for line in (b"[" * 4000, b'{"a":' * 1000 + b"1" + b"}" * 1000):
            self.assertRaises(Vpn041AuthFailed, decodeRequest, line)
            self.assertRaises(Vpn041AuthFailed, decodeResponse, line)

    @settings(max_examples=300, deadline=None)
    @given(st.one_of(st.binary(max_size=200),
                     st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
                                  lambda inner: st.lists(inner, max_size=4)
                                  | st.dictionaries(st.sampled_from(
                                      ["type", "version", "ok", "sessionId", "sessionKey", "udpPort",
                                       "useEncryption", "authenticated", "error"]) | st.text(max_size=5), inner,
                                      max_size=9), max_leaves=20).map(lambda o: json.dumps(o).encode()),
                     st.fixed_dictionaries({
                         "type": st.sampled_from(["VpnAuthRequest", "VpnAuthResponse"]), "version": st.just(1),
                         "ok": st.just(True), "sessionId": st.integers(-1, 300),
                         "sessionKey": st.text(max_size=50) | st.binary(max_size=40).map(
                             lambda b: base64.b64encode(b).decode()),
                         "udpPort": st.integers(-1, 70000) | st.booleans(),
                         "useEncryption": st.booleans() | st.integers(0, 1),
                         "authenticated": st.booleans() | st.none()}).map(lambda o: json.dumps(o).encode())))
    def test_decodersArbitraryLines(self, line):
        """
        decodeRequest and decodeResponse on arbitrary lines (bytes, any JSON,
        near-valid messages) either decode or raise Vpn041AuthFailed.
        """
        for decode in (decodeRequest, decodeResponse):
            try:
                decode(line)
            except Vpn041AuthFailed:
                pass


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


# -- 7. twist vpn041 and sudp vpn041 end to end ---------------------------------------------------


class EndToEndTests(SubprocessMixin, unittest.TestCase):
    """
    twist vpn041 and sudp vpn041, each in a subprocess.
    """

    @defer.inlineCallbacks
    def endToEnd(self, authenticated):
        appsettings = self.certs.appSettings(f"e2e-{authenticated}.json", {
            "appSettings": {"useEncryption": True, "encryptionType": "Tls13"}})
        extra = ["--authenticated"] if authenticated else []
        gateway = self.spawn(*self.twistArgs(appsettings, *extra))
        yield gateway.waitOut(b"largest payload", "twist vpn041 listening")
        text = (gateway.out + gateway.err).decode()
        line = [ln for ln in text.splitlines() if "on TCP port" in ln][0]
        authPort = int(line.split("on TCP port ")[1].split(";")[0])
        self.assertEqual("NO INTEGRITY" in text, not authenticated, text)

        client = self.spawn(*self.clientArgs(appsettings, authPort, *extra))
        client.transport.write(b"hello gateway\nsecond push\n")
        yield client.waitOut(b"hello gateway\nsecond push\n", "the two echoes")
        client.transport.closeStdin()  # end of input ends the session
        status = yield client.ended
        self.assertEqual(status, 0, client.err)
        self.assertEqual(client.out, b"hello gateway\nsecond push\n")
        yield gateway.waitOut(b"vpn041: session 1 for", "the session in the gateway's log")
        gateway.transport.signalProcess("TERM")
        yield gateway.ended

    def test_echo(self):
        """
        twist vpn041 (default echo app, seed data plane) logs the
        no-integrity warning; sudp vpn041 authenticates, sends two stdin
        lines as pushes and prints the two echoed pushes, then exits 0 at
        end of input.
        """
        return self.endToEnd(False)

    def test_echoAuthenticated(self):
        """
        The same with --authenticated on both sides, and no warning.
        """
        return self.endToEnd(True)
