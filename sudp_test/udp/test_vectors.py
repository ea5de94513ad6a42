# -*- test-case-name: sudp_test.udp.test_vectors -*-
"""
The test vectors of docs/protocol.md, parsed out of the document itself.

  - the code reproduces every documented byte: the cookie from
    L{sudp.udp.cookie.CookieFactory}, every handshake, DATA and CONTROL
    packet from the real engines fed the documented keys, random bytes and
    times, the keys from L{sudp.udp.keyschedule}, the codecs of
    L{sudp.udp.packets} and L{sudp.udp.records};
  - the documented bytes follow from the documented formulas, recomputed
    here with hashlib, hmac, C{cryptography} and PyNaCl only, so the
    specification is tested and not just the code.
"""

import hashlib
import hmac
import os
import socket
import struct

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from nacl import bindings as naclBindings
from twisted.trial import unittest

from sudp import suites
from sudp.keys import Identity
from sudp.udp import keyschedule, packets, records, reset
from sudp.udp.client import ClientEngine
from sudp.udp.config import Config
from sudp.udp.cookie import CookieFactory
from sudp.udp.events import MessageReceived, SessionOpened
from sudp.udp.server import ServerEngine

from sudp_test import vectorfile

PROTOCOL_MD = os.path.join(os.path.dirname(os.path.dirname(__file__)), "..", "docs", "protocol.md")

def parseVectors(text):
    """
    @return: C{(vectors, params)} of the C{sudp-vectors} and
        C{sudp-params} blocks in C{text} (see L{sudp_test.vectorfile}).
    """
    return vectorfile.parseVectors(text, "sudp")

documented = vectorfile.documentVectors(PROTOCOL_MD, "sudp")

def hkdfExtract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()

def hkdfExpand(prk, info, length):
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]

def x25519Public(private):
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()

def x25519(private, public):
    return X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(public))

def blake2b(data, key, size, person):
    return hashlib.blake2b(data, key=key, digest_size=size, person=person.ljust(16, b"\0")).digest()

def u32(n):
    return struct.pack(">I", n)

def record(rtype, value=b""):
    return struct.pack(">BH", rtype, len(value)) + value

def chachaOpen(key, packet):
    """
    Open a default-suite packet as section 10.2 says: nonce 0^32 | seq64,
    associated data the 13-byte header.
    """
    header = packet[:13]
    return ChaCha20Poly1305(key).decrypt(b"\0\0\0\0" + header[5:13], packet[13:], header)

class ScriptedRandom:
    """
    Hands out the documented random strings. The order in which an engine
    draws its strings within one step is not part of the protocol, so a
    request for C{n} bytes gets the first string of that size not yet
    handed out (the documented order settles the two 32-byte strings of each
    engine: the handshake ephemeral comes before the rekey ephemeral).
    """

    def __init__(self, test, strings):
        self.test = test
        self.strings = list(strings)

    def __call__(self, n):
        for i, value in enumerate(self.strings):
            if len(value) == n:
                return self.strings.pop(i)
        self.test.fail(f"the engine asked for {n} random bytes, which the vectors do not list")

class Scenario:
    """
    The documented server and client engines, driven step by step at the
    documented times, with every timer of both engines run when it is due.
    Every datagram moved between them is the documented one, not the
    engine's output, so each engine is checked against the document on its
    own, and any datagram the document does not list fails the test.
    """

    def __init__(self, test):
        self.test = test
        self.v, self.p = documented()
        v, p = self.v, self.p
        self.serverAddr = (p["server_address"], int(p["server_port"]))
        self.clientAddr = (p["client_address"], int(p["client_port"]))
        byId = {s.suiteId: s for s in (suites.DEFAULT_SUITE, suites.AES256GCM, suites.XCHACHA20POLY1305,
                                        suites.XSALSA20POLY1305)}
        config = Config(rekeyAfterTime=float(p["rekey_after_time"]),
                        suites=tuple(byId[int(n)] for n in p["suites"].split()))
        self.config = config
        self.serverRandom = ScriptedRandom(test, [b for n, b in v.items() if n.startswith("server_random_")])
        self.clientRandom = ScriptedRandom(test, [b for n, b in v.items() if n.startswith("client_random_")])
        self.serverIdentity = Identity(v["server_identity_seed"])
        self.server = ServerEngine(
            self.serverIdentity, config, cookieSecret=v["cookie_master"], random=self.serverRandom
        )
        self.client = ClientEngine(
            self.serverIdentity.publicKey, self.serverAddr, config,
            identity=Identity(v["client_identity_seed"]), random=self.clientRandom,
        )

    def t(self, name):
        return float(self.p[name])

    def runTimers(self, until):
        """
        Run every timer of both engines that is due by C{until}, in time
        order, as an adapter would. Whatever they send stays in the outboxes,
        where L{fromClient} and L{fromServer} check it.
        """
        for _ in range(1000):
            due = [
                (when, engine)
                for engine in (self.server, self.client)
                for when in [engine.nextDeadline()]
                if when is not None and when <= until
            ]
            if not due:
                return
            first = min(when for when, _ in due)
            for when, engine in due:
                if when == first:
                    engine.onTimer(first)
        self.test.fail("the engines' timers do not settle")

    def fromClient(self, expected):
        """
        Check that the client sent exactly the documented datagrams (to the
        server), then deliver the documented bytes to the server.
        """
        out, self.client.outbox = self.client.outbox, []
        self.test.assertEqual([d.hex() for d, _ in out], [self.v[n].hex() for n in expected])
        self.test.assertEqual([a for _, a in out], [self.serverAddr] * len(expected))

    def fromServer(self, expected):
        out, self.server.outbox = self.server.outbox, []
        self.test.assertEqual([d.hex() for d, _ in out], [self.v[n].hex() for n in expected])
        self.test.assertEqual([a for _, a in out], [self.clientAddr] * len(expected))

    def toServer(self, name, when):
        self.runTimers(self.t(when))
        self.fromClient([])
        self.fromServer([])
        self.server.receiveDatagram(self.v[name], self.clientAddr, self.t(when))

    def toClient(self, name, when):
        self.runTimers(self.t(when))
        self.fromClient([])
        self.fromServer([])
        self.client.receiveDatagram(self.v[name], self.serverAddr, self.t(when))

    def clientSends(self, name, when):
        self.runTimers(self.t(when))
        self.client.sendMessage(self.client.session, self.v[name], self.t(when))

    def serverSends(self, name, when):
        self.runTimers(self.t(when))
        self.server.sendMessage(self.session, self.v[name], self.t(when))

    def events(self, engine, kind):
        found = [e for e in engine.events if isinstance(e, kind)]
        engine.events = [e for e in engine.events if not isinstance(e, kind)]
        return found

    def handshake(self):
        """
        HELLO, COOKIE, HANDSHAKE_INIT, HANDSHAKE_RESP, CONFIRM, KEEPALIVE.
        """
        self.client.start(self.t("t_client_start"))
        self.fromClient(["hello"])
        self.toServer("hello", "t_server_hello")
        self.fromServer(["cookie_packet"])
        self.toClient("cookie_packet", "t_client_cookie")
        self.fromClient(["init"])
        self.toServer("init", "t_server_init")
        self.fromServer(["resp"])
        self.toClient("resp", "t_client_resp")
        self.fromClient(["confirm_packet"])
        self.toServer("confirm_packet", "t_server_confirm")
        self.fromServer(["server_keepalive_packet"])
        self.toClient("server_keepalive_packet", "t_client_keepalive")
        self.fromClient([])
        [self.session] = self.server.sessions.values()

    def firstMessages(self):
        """
        One DATA packet each way under epoch 0.
        """
        self.clientSends("client_message_0", "t_client_ping")
        self.fromClient(["client_data_packet"])
        self.toServer("client_data_packet", "t_client_ping")
        self.serverSends("server_message_0", "t_server_pong")
        self.fromServer(["server_data_packet"])
        self.toClient("server_data_packet", "t_server_pong")

    def rekey(self):
        """
        The client's own timer starts the rekey; REKEY_REQUEST, REKEY_RESPONSE,
        the client's KEEPALIVE under epoch 1, then one DATA packet each way.
        """
        self.runTimers(self.t("t_client_rekey"))
        self.fromClient(["rekey_request_packet"])
        self.toServer("rekey_request_packet", "t_server_rekey_request")
        self.fromServer(["rekey_response_packet"])
        self.toClient("rekey_response_packet", "t_client_rekey_response")
        self.fromClient(["client_keepalive_packet_1"])
        self.toServer("client_keepalive_packet_1", "t_server_keepalive_1")
        self.fromServer([])
        self.clientSends("client_message_1", "t_client_ping_1")
        self.fromClient(["client_data_packet_1"])
        self.toServer("client_data_packet_1", "t_client_ping_1")
        self.serverSends("server_message_1", "t_server_pong_1")
        self.fromServer(["server_data_packet_1"])
        self.toClient("server_data_packet_1", "t_server_pong_1")

class DocumentTests(unittest.TestCase):
    """
    The vectors are present and well formed.
    """

    def test_parsed(self):
        """
        docs/protocol.md holds every vector this module checks, with the sizes
        the specification gives them.
        """
        v, p = documented()
        sizes = {
            "hello": 64, "cookie_packet": 29, "init": 122, "resp": 122, "resp_prefix": 42,
            "transcript": 32, "okm_0": 128, "okm_1": 128, "confirmation": 16,
            "server_signature": 64, "client_signature": 64, "rekey_signature": 64,
            "confirm_packet": 13 + 102 + 16, "server_keepalive_packet": 13 + 22 + 16,
            "client_data_packet": 33, "server_data_packet": 33, "cookie_ipv4": 16, "cookie_ipv6": 16,
            "rekey_request_packet": 13 + 39 + 16, "rekey_response_packet": 13 + 103 + 16,
        }
        for name, size in sizes.items():
            self.assertEqual(len(v[name]), size, name)
        for name in ("t_client_start", "t_client_rekey", "check_1", "server_port"):
            self.assertIn(name, p)

    def test_parserRejectsJunk(self):
        """
        The parser refuses a malformed line and a name given twice, so a
        damaged document cannot pass silently.
        """
        self.assertRaises(ValueError, parseVectors, "```sudp-vectors\nnot a line\n```\n")
        self.assertRaises(ValueError, parseVectors, "```sudp-vectors\na = 00\na = 01\n```\n")
        self.assertRaises(ValueError, parseVectors, "```sudp-vectors\na = zz\n```\n")
        self.assertEqual(
            parseVectors("```sudp-vectors\n# c\na = 00ff\nb =\n```\n```sudp-params\nc = x y\n```\n"),
            ({"a": b"\x00\xff", "b": b""}, {"c": "x y"}),
        )

class LabelTests(unittest.TestCase):
    """
    Section 16.1: the labels and personalisation strings.
    """

    def test_labels(self):
        """
        The code's labels are the documented bytes, which are the documented
        ASCII strings with their trailing zero bytes.
        """
        v, _ = documented()
        expected = {
            "label_handshake": (keyschedule.HANDSHAKE_LABEL, b"sudp/1 handshake\0"),
            "label_server_signature": (keyschedule.SERVER_SIGNATURE_LABEL, b"sudp/1 server signature\0"),
            "label_client_signature": (keyschedule.CLIENT_SIGNATURE_LABEL, b"sudp/1 client signature\0"),
            "label_keys": (keyschedule.KEYS_LABEL, b"sudp/1 keys"),
            "label_rekey": (keyschedule.REKEY_LABEL, b"sudp/1 rekey\0"),
            "label_rekey_signature": (keyschedule.REKEY_SIGNATURE_LABEL, b"sudp/1 rekey signature\0"),
            "label_handshake_refused": (keyschedule.REFUSAL_SIGNATURE_LABEL, b"sudp/1 handshake refused\0"),
            "label_reset_key": (reset.RESET_KEY_LABEL, b"sudp/1 stateless reset key"),
            "label_reset_token": (reset.TOKEN_LABEL, b"sudp/1 stateless reset token\0"),
            "label_reset_filler": (reset.FILLER_LABEL, b"sudp/1 stateless reset filler\0"),
            "label_next_server_key": (keyschedule.NEXT_KEY_SIGNATURE_LABEL, b"sudp/1 next server key\0"),
        }
        for name, (code, spec) in expected.items():
            self.assertEqual(v[name], code, name)
            self.assertEqual(v[name], spec, name)

    def test_personalisation(self):
        """
        The BLAKE2b personalisation strings are the ASCII names padded with
        zero bytes to 16 bytes.
        """
        v, _ = documented()
        self.assertEqual(v["person_cookie_secret"], b"sudp1-cookiekey\0")
        self.assertEqual(v["person_cookie"], b"sudp1-cookie\0\0\0\0")

class InputTests(unittest.TestCase):
    """
    Section 16.2: identities and the keys made from the random strings.
    """

    def test_identities(self):
        """
        The documented public keys are those of the documented seeds, through
        sudp.keys.Identity and through cryptography's Ed25519.
        """
        v, _ = documented()
        for who in ("server", "client"):
            seed, public = v[f"{who}_identity_seed"], v[f"{who}_public_key"]
            self.assertEqual(Identity(seed).publicKey.raw, public)
            self.assertEqual(Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw(), public)

    def test_ephemerals(self):
        """
        The documented ephemeral public keys are X25519 of the documented
        random strings, by keyschedule.Ephemeral and by cryptography directly.
        """
        v, _ = documented()
        pairs = [
            ("client_random_2_ephemeral", "client_ephemeral_public"),
            ("server_random_1_ephemeral", "server_ephemeral_public"),
            ("client_random_4_rekey_ephemeral", "rekey_client_ephemeral_public"),
            ("server_random_3_rekey_ephemeral", "rekey_server_ephemeral_public"),
        ]
        for private, public in pairs:
            self.assertEqual(keyschedule.Ephemeral(v[private]).public, v[public], public)
            self.assertEqual(x25519Public(v[private]), v[public], public)

    def test_randomStrings(self):
        """
        Each random string is SHA-256 of "sudp/1 test vector: " and its
        description, truncated, as section 16.2 says.
        """
        v, _ = documented()
        descriptions = {
            "server_identity_seed": "server identity seed",
            "client_identity_seed": "client identity seed",
            "cookie_master": "cookie master key",
            "client_random_1_hello_nonce": "client hello nonce",
            "client_random_2_ephemeral": "client handshake ephemeral",
            "client_random_3_index": "client index",
            "client_random_4_rekey_ephemeral": "client rekey ephemeral",
            "server_random_1_ephemeral": "server handshake ephemeral",
            "server_random_2_index": "server index",
            "server_random_3_rekey_ephemeral": "server rekey ephemeral",
        }
        for name, text in descriptions.items():
            digest = hashlib.sha256(b"sudp/1 test vector: " + text.encode()).digest()
            self.assertEqual(v[name], digest[: len(v[name])], name)

class CookieTests(unittest.TestCase):
    """
    Section 16.3: the cookie.
    """

    def addresses(self):
        _, p = documented()
        return [
            (p["client_address"], int(p["client_port"]), "ipv4"),
            (p["client_address_ipv6"], int(p["client_port"]), "ipv6"),
        ]

    def test_factory(self):
        """
        CookieFactory.make gives the documented timestamp and cookie for the
        IPv4 and the IPv6 client.
        """
        v, p = documented()
        factory = CookieFactory(v["cookie_master"], int(p["cookie_rotation"]))
        for host, port, family in self.addresses():
            ts, cookie = factory.make(host, port, float(p["t_server_hello"]))
            self.assertEqual(u32(ts), v["cookie_input_ipv4"][-4:])
            self.assertEqual(cookie, v[f"cookie_{family}"])

    def test_formula(self):
        """
        The documented secret, inputs and cookies follow from section 6 with
        hashlib's keyed, personalised BLAKE2b.
        """
        v, p = documented()
        rotation = int(p["cookie_rotation"])
        ts = int(float(p["t_server_hello"])) % 2**32
        n = ts // rotation
        self.assertEqual(v["cookie_period"], struct.pack(">Q", n))
        self.assertEqual(v["cookie_period_next"], struct.pack(">Q", n + 1))
        secret = blake2b(v["cookie_period"], v["cookie_master"], 32, b"sudp1-cookiekey")
        self.assertEqual(secret, v["cookie_secret"])
        self.assertEqual(
            blake2b(v["cookie_period_next"], v["cookie_master"], 32, b"sudp1-cookiekey"), v["cookie_secret_next"]
        )
        for host, port, family in self.addresses():
            af = socket.AF_INET if family == "ipv4" else socket.AF_INET6
            data = socket.inet_pton(af, host) + struct.pack(">HI", port, ts)
            self.assertEqual(data, v[f"cookie_input_{family}"])
            self.assertEqual(blake2b(data, secret, 16, b"sudp1-cookie"), v[f"cookie_{family}"])

    def checks(self):
        _, p = documented()
        for name, value in p.items():
            if name.startswith("check_"):
                fields = value.split()
                yield name, int(fields[0]), float(fields[1]), fields[2], fields[3:] == ["zero"]

    def cookieFor(self, ts, zero):
        v, p = documented()
        if zero:
            return bytes(16)
        secret = blake2b(struct.pack(">Q", ts // int(p["cookie_rotation"])), v["cookie_master"], 32, b"sudp1-cookiekey")
        data = socket.inet_pton(socket.AF_INET, p["client_address"]) + struct.pack(">HI", int(p["client_port"]), ts)
        return blake2b(data, secret, 16, b"sudp1-cookie")

    def test_acceptance(self):
        """
        CookieFactory.check gives the documented result for every line of the
        acceptance table.
        """
        v, p = documented()
        factory = CookieFactory(v["cookie_master"], int(p["cookie_rotation"]))
        lines = list(self.checks())
        self.assertGreaterEqual(len(lines), 5)
        for name, ts, now, result, zero in lines:
            got = factory.check(p["client_address"], int(p["client_port"]), ts, self.cookieFor(ts, zero), now)
            self.assertEqual(got or "ok", result, name)

    def test_acceptanceRule(self):
        """
        The rule of section 6.3, written out here, gives the documented result
        for every line of the acceptance table.
        """
        _, p = documented()
        rotation = int(p["cookie_rotation"])
        for name, ts, now, result, zero in self.checks():
            current = int(now) % 2**32
            age = (current - ts) % 2**32
            if age > 2 * rotation or ts // rotation < current // rotation - 1:
                got = "expired-cookie"
            elif zero:  # a cookie that is not the MAC fails the comparison
                got = "bad-cookie"
            else:
                got = "ok"
            self.assertEqual(got, result, name)

class EngineTests(unittest.TestCase):
    """
    Sections 16.4-16.6: the real engines, fed the documented inputs, send the
    documented datagrams.
    """

    def test_handshake(self):
        """
        HELLO, COOKIE, HANDSHAKE_INIT, HANDSHAKE_RESP, the client's CONFIRM and
        the server's KEEPALIVE answer are the documented bytes, and both
        sessions open with the documented indexes and identities.
        """
        s = Scenario(self)
        s.handshake()
        v = s.v
        self.assertEqual(len(s.events(s.server, SessionOpened)), 1)
        self.assertEqual(len(s.events(s.client, SessionOpened)), 1)
        self.assertEqual(s.session.localIndex, int.from_bytes(v["server_random_2_index"], "big"))
        self.assertEqual(s.client.session.localIndex, int.from_bytes(v["client_random_3_index"], "big"))
        self.assertEqual(s.session.peerKey.raw, v["client_public_key"])
        self.assertEqual(s.client.session.peerKey.raw, v["server_public_key"])
        self.assertEqual(dict(s.server.drops), {})
        self.assertEqual(dict(s.client.drops), {})

    def test_keysInEngines(self):
        """
        After the handshake both engines hold the documented epoch-0 keys and
        transcript hash.
        """
        s = Scenario(self)
        s.handshake()
        v = s.v
        for session in (s.session, s.client.session):
            keys = session.epochs[0].keys
            self.assertEqual(keys.transcript, v["transcript"])
            self.assertEqual(bytes(keys.c2s), v["c2s_0"])
            self.assertEqual(bytes(keys.s2c), v["s2c_0"])
            self.assertEqual(bytes(keys.confirmKey), v["confirm_key_0"])
            self.assertEqual(bytes(keys.chainKey), v["chain_key_0"])

    def test_firstMessages(self):
        """
        One application message each way under epoch 0: the documented DATA
        packets, delivered as the documented messages.
        """
        s = Scenario(self)
        s.handshake()
        s.firstMessages()
        self.assertEqual([e.message for e in s.events(s.server, MessageReceived)], [s.v["client_message_0"]])
        self.assertEqual([e.message for e in s.events(s.client, MessageReceived)], [s.v["server_message_0"]])

    def test_pathValidation(self):
        """
        Section 16.8: the server, its next sequence number 10, hearing the
        client from a new address, sends the documented PATH_CHALLENGE
        packet there (with the documented challenge drawn); the client, its
        next sequence number 10, answers with the documented PATH_RESPONSE
        packet; that answer from the new address moves the session.
        """
        s = Scenario(self)
        s.handshake()
        s.firstMessages()
        v = s.v
        newAddr = ("127.0.0.1", 51000)
        s.session.sendEpoch.sendSeq = 10
        s.client.session.sendEpoch.sendSeq = 9
        s.client.sendMessage(s.client.session, b"from a new port", s.t("t_server_pong"))  # sequence 9
        [(moved, _)] = s.client.outbox
        s.client.outbox = []
        s.server.random = lambda n: v["path_challenge_value"][:n]
        s.server.receiveDatagram(moved, newAddr, s.t("t_server_pong"))
        challenges = [(d, a) for d, a in s.server.outbox if a == newAddr and d[0] == 0x1A]
        self.assertEqual(challenges[0], (v["path_challenge_packet"], newAddr))
        s.server.outbox = []
        s.client.receiveDatagram(v["path_challenge_packet"], s.serverAddr, s.t("t_server_pong"))
        self.assertEqual(s.client.outbox, [(v["path_response_packet"], s.serverAddr)])
        s.server.receiveDatagram(v["path_response_packet"], newAddr, s.t("t_server_pong"))
        self.assertEqual(s.session.peerAddr, newAddr)

    def test_rekey(self):
        """
        The rekey to epoch 1: REKEY_REQUEST, REKEY_RESPONSE, the client's
        KEEPALIVE under phase 1 and one message each way are the documented
        bytes; both sides end up sending under epoch 1 with the documented
        keys, and every random string was consumed.
        """
        s = Scenario(self)
        s.handshake()
        s.firstMessages()
        s.events(s.server, MessageReceived)
        s.events(s.client, MessageReceived)
        s.rekey()
        v = s.v
        self.assertEqual([e.message for e in s.events(s.server, MessageReceived)], [v["client_message_1"]])
        self.assertEqual([e.message for e in s.events(s.client, MessageReceived)], [v["server_message_1"]])
        for session in (s.session, s.client.session):
            self.assertEqual(session.sendEpoch.number, 1)
            keys = session.sendEpoch.keys
            self.assertEqual(keys.transcript, v["rekey_transcript"])
            self.assertEqual(bytes(keys.c2s), v["c2s_1"])
            self.assertEqual(bytes(keys.s2c), v["s2c_1"])
            self.assertEqual(bytes(keys.chainKey), v["chain_key_1"])
        self.assertEqual(s.clientRandom.strings, [])
        self.assertEqual(s.serverRandom.strings, [])
        self.assertEqual(dict(s.server.drops), {})
        self.assertEqual(dict(s.client.drops), {})

class ResetAndRefusalEngineTests(unittest.TestCase):
    """
    Section 16.9, produced by the real engines.
    """

    def test_statelessReset(self):
        """
        The client holds the documented token after the handshake; a server
        restarted with the same key answers the documented DATA packet with
        the documented reset, which ends the client's session.
        """
        s = Scenario(self)
        s.handshake()
        s.firstMessages()
        v = s.v
        self.assertEqual(s.client.session.resetToken, v["reset_token"])
        restarted = ServerEngine(s.serverIdentity, s.config, cookieSecret=v["cookie_master"])
        now = s.t("t_server_pong")
        restarted.receiveDatagram(v["client_data_packet"], s.clientAddr, now)
        self.assertEqual(restarted.outbox, [(v["stateless_reset_packet"], s.clientAddr)])
        s.client.receiveDatagram(v["stateless_reset_packet"], s.serverAddr, now)
        self.assertEqual(s.client.session.closeReason, "stateless-reset")

    def test_handshakeRefused(self):
        """
        A server with the documented key and cookie master, configured with
        suites 2 and 4, answers the documented INIT with the documented
        refusal; the client that sent that INIT fails with NoCommonSuite.
        """
        from sudp.errors import NoCommonSuite
        from sudp.suites import AES256GCM, XSALSA20POLY1305
        from sudp.udp.events import HandshakeFailure

        s = Scenario(self)
        v = s.v
        server = ServerEngine(s.serverIdentity, Config(suites=(AES256GCM, XSALSA20POLY1305)),
                              cookieSecret=v["cookie_master"])
        server.receiveDatagram(v["init"], s.clientAddr, s.t("t_server_init"))
        self.assertEqual(server.outbox, [(v["handshake_refused_packet"], s.clientAddr)])
        s.client.start(s.t("t_client_start"))
        s.client.receiveDatagram(v["cookie_packet"], s.serverAddr, s.t("t_client_cookie"))
        self.assertEqual(s.client.outbox[-1], (v["init"], s.serverAddr))
        s.client.receiveDatagram(v["handshake_refused_packet"], s.serverAddr, s.t("t_client_resp"))
        [failure] = [e for e in s.client.events if isinstance(e, HandshakeFailure)]
        self.assertIsInstance(failure.error, NoCommonSuite)

class ResetAndRefusalFormulaTests(unittest.TestCase):
    """
    Section 16.9 from the formulas of sections 7.5 and 10.9, with hashlib,
    hmac and C{cryptography} only.
    """

    def test_resetKeyTokenAndPacket(self):
        v, p = documented()
        prk = hkdfExtract(bytes(32), v["server_identity_seed"])  # no salt: HashLen zeros (RFC 5869)
        self.assertEqual(hkdfExpand(prk, b"sudp/1 stateless reset key", 32), v["reset_key"])
        index = struct.unpack(">I", v["client_data_packet"][1:5])[0]
        address = socket.inet_pton(socket.AF_INET, p["client_address"]) + struct.pack(">H", int(p["client_port"]))
        token = hmac.new(v["reset_key"], b"sudp/1 stateless reset token\0" + struct.pack(">I", index) + address,
                         hashlib.sha256).digest()[:16]
        self.assertEqual(token, v["reset_token"])
        self.assertEqual(v["server_open_plaintext"], bytes.fromhex("020000") + b"\x81\x00\x10" + token)
        trigger = v["client_data_packet"]
        size = min(len(trigger) - 1, 41)
        filler = hmac.new(v["reset_key"], b"sudp/1 stateless reset filler\0" + trigger,
                          hashlib.sha256).digest()[:size - 17]
        self.assertEqual(v["stateless_reset_packet"], b"\x1c" + filler + token)

    def test_refusalSignature(self):
        v, _ = documented()
        refused = v["handshake_refused_packet"]
        init = v["init"]
        self.assertEqual(refused[:8], b"\x17" + init[1:5] + bytes([2, 2, 4]))
        message = (b"sudp/1 handshake refused\0" + v["server_public_key"] + hashlib.sha256(init).digest()
                   + refused[:8])
        private = Ed25519PrivateKey.from_private_bytes(v["server_identity_seed"])
        self.assertEqual(private.sign(message), refused[8:])
        self.assertLessEqual(len(refused), len(init))

class KeyScheduleTests(unittest.TestCase):
    """
    Sections 8 and 12 through sudp.udp.keyschedule.
    """

    def test_handshake(self):
        """
        handshakeTranscript, Ephemeral.exchange, deriveKeys and confirmation
        give the documented transcript, shared secret, keys and confirmation.
        """
        v, _ = documented()
        th = keyschedule.handshakeTranscript(v["server_public_key"], v["init"], v["resp_prefix"])
        self.assertEqual(th, v["transcript"])
        dh = keyschedule.Ephemeral(v["client_random_2_ephemeral"]).exchange(v["server_ephemeral_public"])
        self.assertEqual(dh, v["dh_shared"])
        self.assertEqual(keyschedule.Ephemeral(v["server_random_1_ephemeral"]).exchange(v["client_ephemeral_public"]), dh)
        keys = keyschedule.deriveKeys(0, th, dh, 32)
        self.assertEqual(bytes(keys.c2s + keys.s2c + keys.confirmKey + keys.chainKey), v["okm_0"])
        self.assertEqual(keys.confirmation(), v["confirmation"])

    def test_rekey(self):
        """
        rekeyTranscript and deriveKeys over dh' and the old chain key give the
        documented epoch-1 transcript and keys.
        """
        v, _ = documented()
        th = keyschedule.rekeyTranscript(
            v["transcript"], 1, v["rekey_client_ephemeral_public"], v["rekey_server_ephemeral_public"]
        )
        self.assertEqual(th, v["rekey_transcript"])
        dh = keyschedule.Ephemeral(v["client_random_4_rekey_ephemeral"]).exchange(v["rekey_server_ephemeral_public"])
        self.assertEqual(dh, v["rekey_dh_shared"])
        keys = keyschedule.deriveKeys(1, th, dh + v["chain_key_0"], 32)
        self.assertEqual(bytes(keys.c2s + keys.s2c + keys.confirmKey + keys.chainKey), v["okm_1"])

class CodecTests(unittest.TestCase):
    """
    sudp.udp.packets and sudp.udp.records against the documented packets.
    """

    def test_handshakePackets(self):
        """
        The encoders build, and the decoders take apart, the documented
        HELLO, COOKIE, HANDSHAKE_INIT and HANDSHAKE_RESP.
        """
        v, _ = documented()
        nonce = v["client_random_1_hello_nonce"]
        self.assertEqual(packets.encodeHello(nonce), v["hello"])
        self.assertEqual(packets.decodeHello(v["hello"]), nonce)
        ts, cookie = struct.unpack(">I", v["cookie_input_ipv4"][-4:])[0], v["cookie_ipv4"]
        self.assertEqual(packets.encodeCookie(nonce, ts, cookie), v["cookie_packet"])
        self.assertEqual(packets.decodeCookie(v["cookie_packet"]), (nonce, ts, cookie))
        clientIndex = int.from_bytes(v["client_random_3_index"], "big")
        serverIndex = int.from_bytes(v["server_random_2_index"], "big")
        init = packets.HandshakeInit(clientIndex, ts, cookie, v["client_ephemeral_public"], [1])
        self.assertEqual(init.encode(padTo=packets.HANDSHAKE_RESP_SIZE), v["init"])
        decoded = packets.HandshakeInit.decode(v["init"])
        self.assertEqual(
            (decoded.senderIndex, decoded.timestamp, decoded.cookie, decoded.ephemeral, decoded.suites),
            (clientIndex, ts, cookie, v["client_ephemeral_public"], (1,)),
        )
        resp = packets.HandshakeResp(
            clientIndex, serverIndex, 1, v["server_ephemeral_public"], v["confirmation"], v["server_signature"]
        )
        self.assertEqual(resp.encode(), v["resp"])
        self.assertEqual(resp.prefix(), v["resp_prefix"])
        decoded = packets.HandshakeResp.decode(v["resp"])
        self.assertEqual(decoded.encode(), v["resp"])

    def test_records(self):
        """
        The documented CONTROL plaintexts decode to the documented records.
        """
        v, _ = documented()
        self.assertEqual(
            records.decodeRecords(v["confirm_plaintext"]),
            [(records.CLIENT_AUTH, v["client_public_key"] + v["client_signature"]), (records.CONFIRM, b"")],
        )
        self.assertEqual(records.decodeRecords(v["keepalive_plaintext"]), [(records.KEEPALIVE, b"")])
        self.assertEqual(
            records.decodeRecords(v["rekey_request_plaintext"]),
            [(records.REKEY_REQUEST, u32(1) + v["rekey_client_ephemeral_public"])],
        )
        self.assertEqual(
            records.decodeRecords(v["rekey_response_plaintext"]),
            [(records.REKEY_RESPONSE, u32(1) + v["rekey_server_ephemeral_public"] + v["rekey_signature"])],
        )

    def test_sealing(self):
        """
        The default suite's packet cipher seals each documented plaintext under
        the documented header into the documented packet.
        """
        v, _ = documented()
        for packet, plaintext, key in self.protected(v):
            header = packet[:13]
            seq = struct.unpack(">Q", header[5:])[0]
            self.assertEqual(header + suites.DEFAULT_SUITE.newCipher(key).seal(seq, header, plaintext), packet)
            self.assertEqual(suites.DEFAULT_SUITE.newCipher(key).open(seq, header, packet[13:]), plaintext)

    @staticmethod
    def protected(v):
        """
        @return: C{(packet, plaintext, key)} for every documented protected packet.
        """
        return [
            (v["confirm_packet"], v["confirm_plaintext"], v["c2s_0"]),
            (v["server_keepalive_packet"], v["server_open_plaintext"], v["s2c_0"]),
            (v["client_data_packet"], v["client_message_0"], v["c2s_0"]),
            (v["server_data_packet"], v["server_message_0"], v["s2c_0"]),
            (v["rekey_request_packet"], v["rekey_request_plaintext"], v["c2s_0"]),
            (v["rekey_response_packet"], v["rekey_response_plaintext"], v["s2c_0"]),
            (v["client_keepalive_packet_1"], v["keepalive_plaintext"], v["c2s_1"]),
            (v["client_data_packet_1"], v["client_message_1"], v["c2s_1"]),
            (v["server_data_packet_1"], v["server_message_1"], v["s2c_1"]),
        ]

class SpecificationTests(unittest.TestCase):
    """
    The documented bytes recomputed from the formulas of the specification
    with hashlib, hmac, cryptography and PyNaCl, without sudp's code.
    """

    def test_handshakeLayout(self):
        """
        The documented handshake packets have the layouts of section 5, with
        the documented nonce, cookie, indexes, keys, confirmation and signature
        at the documented offsets.
        """
        v, _ = documented()
        nonce = v["client_random_1_hello_nonce"]
        self.assertEqual(v["hello"], b"\x11" + nonce + bytes(55))
        ts = v["cookie_input_ipv4"][-4:]
        self.assertEqual(v["cookie_packet"], b"\x12" + nonce + ts + v["cookie_ipv4"])
        clientIndex, serverIndex = v["client_random_3_index"], v["server_random_2_index"]
        self.assertEqual(
            v["init"], b"\x13" + clientIndex + ts + v["cookie_ipv4"] + v["client_ephemeral_public"] + b"\x01\x01"
            + bytes(122 - 59)  # zero padding to the RESP's size (section 5.3)
        )
        prefix = b"\x14" + clientIndex + serverIndex + b"\x01" + v["server_ephemeral_public"]
        self.assertEqual(v["resp_prefix"], prefix)
        self.assertEqual(v["resp"], prefix + v["confirmation"] + v["server_signature"])

    def test_keySchedule(self):
        """
        th = SHA-256(label | server key | INIT | RESP[:42]); X25519 of the
        documented private keys; HKDF-Extract with th as salt and HKDF-Expand
        with "sudp/1 keys" | u32(0); the split; HMAC-SHA-256 confirmation.
        """
        v, _ = documented()
        th = hashlib.sha256(b"sudp/1 handshake\0" + v["server_public_key"] + v["init"] + v["resp"][:42]).digest()
        self.assertEqual(th, v["transcript"])
        dh = x25519(v["client_random_2_ephemeral"], x25519Public(v["server_random_1_ephemeral"]))
        self.assertEqual(dh, x25519(v["server_random_1_ephemeral"], x25519Public(v["client_random_2_ephemeral"])))
        self.assertEqual(dh, v["dh_shared"])
        prk = hkdfExtract(th, dh)
        self.assertEqual(prk, v["prk_0"])
        okm = hkdfExpand(prk, b"sudp/1 keys" + u32(0), 128)
        self.assertEqual(okm, v["okm_0"])
        self.assertEqual(
            (okm[:32], okm[32:64], okm[64:96], okm[96:]),
            (v["c2s_0"], v["s2c_0"], v["confirm_key_0"], v["chain_key_0"]),
        )
        self.assertEqual(hmac.new(okm[64:96], th, hashlib.sha256).digest()[:16], v["confirmation"])

    def test_signatures(self):
        """
        The server, client and rekey signatures are the deterministic Ed25519
        signatures of the documented labels and transcripts, and verify.
        """
        v, _ = documented()
        server = Ed25519PrivateKey.from_private_bytes(v["server_identity_seed"])
        client = Ed25519PrivateKey.from_private_bytes(v["client_identity_seed"])
        cases = [
            (server, v["server_public_key"], b"sudp/1 server signature\0" + v["transcript"], "server_signature"),
            (client, v["client_public_key"], b"sudp/1 client signature\0" + v["transcript"], "client_signature"),
            (server, v["server_public_key"], b"sudp/1 rekey signature\0" + v["rekey_transcript"], "rekey_signature"),
        ]
        for private, public, message, name in cases:
            self.assertEqual(private.sign(message), v[name], name)
            Ed25519PublicKey.from_public_bytes(public).verify(v[name], message)  # raises if bad

    def test_rekeySchedule(self):
        """
        th' = SHA-256("sudp/1 rekey\\0" | th | u32(1) | client eph | server
        eph); IKM = dh' | chain key 0; HKDF with "sudp/1 keys" | u32(1).
        """
        v, _ = documented()
        clientPublic = x25519Public(v["client_random_4_rekey_ephemeral"])
        serverPublic = x25519Public(v["server_random_3_rekey_ephemeral"])
        th = hashlib.sha256(b"sudp/1 rekey\0" + v["transcript"] + u32(1) + clientPublic + serverPublic).digest()
        self.assertEqual(th, v["rekey_transcript"])
        dh = x25519(v["server_random_3_rekey_ephemeral"], clientPublic)
        self.assertEqual(dh, v["rekey_dh_shared"])
        self.assertEqual(dh + v["chain_key_0"], v["rekey_ikm"])
        prk = hkdfExtract(th, dh + v["chain_key_0"])
        self.assertEqual(prk, v["prk_1"])
        okm = hkdfExpand(prk, b"sudp/1 keys" + u32(1), 128)
        self.assertEqual(okm, v["okm_1"])
        self.assertEqual(
            (okm[:32], okm[32:64], okm[64:96], okm[96:]),
            (v["c2s_1"], v["s2c_1"], v["confirm_key_1"], v["chain_key_1"]),
        )

    def test_controlPlaintexts(self):
        """
        The CONTROL plaintexts are the TLV records of section 11 with the
        documented values.
        """
        v, _ = documented()
        self.assertEqual(
            v["confirm_plaintext"],
            record(0x05, v["client_public_key"] + v["client_signature"]) + record(0x04),
        )
        self.assertEqual(v["keepalive_plaintext"], record(0x02))
        self.assertEqual(v["rekey_request_plaintext"], record(0x10, u32(1) + v["rekey_client_ephemeral_public"]))
        self.assertEqual(
            v["rekey_response_plaintext"],
            record(0x11, u32(1) + v["rekey_server_ephemeral_public"] + v["rekey_signature"]),
        )

    def test_protectedPackets(self):
        """
        Every documented DATA and CONTROL packet has the header of section
        10.1 (type with key phase, receiver index, sequence number) and opens
        with ChaCha20-Poly1305 under nonce 0^32 | u64 seq with the header as
        associated data, to the documented plaintext.
        """
        v, _ = documented()
        toServer, toClient = v["server_random_2_index"], v["client_random_3_index"]
        expected = [  # name, type byte, receiver index, sequence, key, plaintext
            ("confirm_packet", 0x1A, toServer, 0, "c2s_0", "confirm_plaintext"),
            ("server_keepalive_packet", 0x1A, toClient, 0, "s2c_0", "server_open_plaintext"),
            ("client_data_packet", 0x18, toServer, 1, "c2s_0", "client_message_0"),
            ("server_data_packet", 0x18, toClient, 1, "s2c_0", "server_message_0"),
            ("rekey_request_packet", 0x1A, toServer, 2, "c2s_0", "rekey_request_plaintext"),
            ("rekey_response_packet", 0x1A, toClient, 2, "s2c_0", "rekey_response_plaintext"),
            ("client_keepalive_packet_1", 0x1B, toServer, 0, "c2s_1", "keepalive_plaintext"),
            ("client_data_packet_1", 0x19, toServer, 1, "c2s_1", "client_message_1"),
            ("server_data_packet_1", 0x19, toClient, 0, "s2c_1", "server_message_1"),
            ("path_challenge_packet", 0x1A, toClient, 10, "s2c_0", "path_challenge_plaintext"),
            ("path_response_packet", 0x1A, toServer, 10, "c2s_0", "path_response_plaintext"),
        ]
        value = hashlib.sha256(b"sudp test vector: path challenge").digest()[:16]
        self.assertEqual(v["path_challenge_value"], value)
        self.assertEqual(v["path_challenge_plaintext"], b"\x06\x00\x10" + value)  # 11.1: type, u16 length, value
        self.assertEqual(v["path_response_plaintext"], b"\x07\x00\x10" + value)
        for name, typeByte, index, seq, key, plaintext in expected:
            packet = v[name]
            header = bytes([typeByte]) + index + struct.pack(">Q", seq)
            self.assertEqual(packet[:13], header, name)
            self.assertEqual(len(packet), 13 + len(v[plaintext]) + 16, name)
            self.assertEqual(chachaOpen(v[key], packet), v[plaintext], name)
            nonce = b"\0\0\0\0" + struct.pack(">Q", seq)
            self.assertEqual(header + ChaCha20Poly1305(v[key]).encrypt(nonce, v[plaintext], header), packet, name)
        self.assertEqual(v["confirm_header"], v["confirm_packet"][:13])
        self.assertEqual(v["client_message_0"], b"ping")
        self.assertEqual(v["server_message_0"], b"pong")

class SuiteTests(unittest.TestCase):
    """
    Section 16.7: packet protection by every suite of section 3.1.
    """

    def test_primitives(self):
        """
        Each suite's documented output is its primitive applied with the nonce
        and associated data of section 3.1.
        """
        v, _ = documented()
        key, header, plaintext = v["suite_key"], v["suite_header"], v["suite_plaintext"]
        seq = header[5:13]
        self.assertEqual(
            ChaCha20Poly1305(key).encrypt(b"\0" * 4 + seq, plaintext, header), v["sealed_chacha20_poly1305"]
        )
        self.assertEqual(AESGCM(key).encrypt(b"\0" * 4 + seq, plaintext, header), v["sealed_aes_256_gcm"])
        self.assertEqual(
            naclBindings.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, header, b"\0" * 16 + seq, key),
            v["sealed_xchacha20_poly1305"],
        )
        self.assertEqual(
            naclBindings.crypto_secretbox(plaintext, header + b"\0" * 11, key), v["sealed_xsalsa20_poly1305"]
        )
        self.assertEqual(header + v["sealed_chacha20_poly1305"], v["client_data_packet"])

    def test_suites(self):
        """
        sudp.suites seals and opens the documented outputs, through newCipher
        (for the two built-in AEADs, the native cipher where it is built)
        and through newAEAD with packetNonce.
        """
        from sudp.speedups import nativeCipher

        v, _ = documented()
        key, header, plaintext = v["suite_key"], v["suite_header"], v["suite_plaintext"]
        seq = struct.unpack(">Q", header[5:13])[0]
        for suite, name in [
            (suites.DEFAULT_SUITE, "chacha20_poly1305"),
            (suites.AES256GCM, "aes_256_gcm"),
            (suites.XCHACHA20POLY1305, "xchacha20_poly1305"),
            (suites.XSALSA20POLY1305, "xsalsa20_poly1305"),
        ]:
            sealed = v[f"sealed_{name}"]
            self.assertEqual(suite.name.replace("-", "_"), name)
            if nativeCipher is not None and name in ("chacha20_poly1305", "aes_256_gcm"):
                self.assertIsInstance(suite.newCipher(key), nativeCipher)
            self.assertEqual(suite.newCipher(key).seal(seq, header, plaintext), sealed, name)
            self.assertEqual(suite.newCipher(key).open(seq, header, sealed), plaintext, name)
            aad = b"" if suite is suites.XSALSA20POLY1305 else header
            self.assertEqual(suite.newAEAD(key).encrypt(suite.packetNonce(seq, header), plaintext, aad), sealed, name)
