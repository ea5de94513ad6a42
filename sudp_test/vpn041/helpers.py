# -*- test-case-name: sudp_test.vpn041.test_client, sudp_test.vpn041.test_dataplane, sudp_test.vpn041.test_gateway, sudp_test.vpn041.test_netcat, sudp_test.vpn041.test_settings, sudp_test.vpn041.test_tap -*-
"""
Helpers shared by several test modules (moved from test_vpn041).
"""

import atexit
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
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.internet import defer, protocol, reactor, tcp
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.logger import formatEvent, globalLogPublisher

from sudp.vpn041.client import Vpn041Client
from sudp.vpn041.dataplane import HEADER_SIZE
from sudp.vpn041.gateway import Gateway
from sudp.vpn041.settings import AppSettings

from sudp_test import integration
from sudp_test.paths import ROOT
from sudp_test.waiting import waiter

GATEWAY_NS = "sudp.vpn041.gateway"

SIXTEEN = b"0123456789abcdef"  # one full AES block: CBC adds a whole block of padding (0x10 * 16)

# What each encryptionType must negotiate with these (ECDSA) certificates,
# written out here rather than read from sudp.vpn041.settings.
NEGOTIATED = {
    "Tls13": ("TLSv1.3", {"TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"}),
    "Tls13Aes256Gcm": ("TLSv1.3", {"TLS_AES_256_GCM_SHA384"}),
    "Tls13ChaCha20Poly1305": ("TLSv1.3", {"TLS_CHACHA20_POLY1305_SHA256"}),
    "Tls12Aes256Gcm": ("TLSv1.2", {"ECDHE-ECDSA-AES256-GCM-SHA384"}),
}

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

class Recorder(integration.Recorder):
    """
    An application protocol that records the pushes it receives.
    """

    def waitFor(self, n):
        return waitUntil(lambda: len(self.messages) >= n, f"{n} pushes")

class RecorderFactory(integration.RecorderFactory):
    def __init__(self, cls=Recorder):
        integration.RecorderFactory.__init__(self, cls)

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
    def startGateway(self, appSettings, factory=None, authenticated=False, cert=None, **options):
        """
        @param options: more keyword arguments of L{Gateway}.
        @return: a listening L{Gateway} (auth and UDP ports on 127.0.0.1).
        """
        factory = factory or RecorderFactory()
        certPath, keyPath = cert or self.certs.gateway
        gateway = Gateway(reactor, appSettings, factory, certPath, keyPath, self.certs.ca,
                          authenticated=authenticated, **options)
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
    def session(self, useEncryption=True, authenticated=False, encryptionType="Tls13", **options):
        """
        @param options: more keyword arguments of L{Gateway}.
        @return: C{(gateway, gateway factory, client, client protocol,
            gateway protocol)} of one established session.
        """
        gatewayFactory = RecorderFactory()
        gateway = yield self.startGateway(AppSettings(useEncryption, encryptionType), gatewayFactory, authenticated,
                                          **options)
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

    def fromClient(self, client, gateway, datagram):
        """
        Send C{datagram} to the gateway from the client's own address (its
        UDP socket): what anyone who can spoof that address can do.
        """
        client.udpPort.socket.sendto(datagram, udpAddress(gateway))

    def fromGateway(self, gateway, client, datagram):
        """
        Send C{datagram} to the client from the gateway's own address.
        """
        host = client.udpPort.getHost()
        gateway.sendDatagram(datagram, (host.host, host.port))

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
