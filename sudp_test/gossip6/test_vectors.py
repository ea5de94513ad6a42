# -*- test-case-name: sudp_test.gossip6.test_vectors -*-
"""
The test vectors of docs/gossip6.md, checked two ways: independently (with
hashlib, struct and cryptography only, from the document's description)
and against sudp's gossip6 code.
"""

import hashlib
import hmac
import ipaddress
import os
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from twisted.trial import unittest

from sudp.gossip6.checks import checkSigned
from sudp.gossip6.config import Gossip6Config
from sudp.gossip6.keys import sessionKeys, STREAM_TRANSCRIPT_LABEL, transcript
from sudp.gossip6.proof import meetsTarget, proofValue
from sudp.gossip6.wire import decodeStreamMessage, Gossip6Init, Gossip6Resp, Signed
from sudp.rsakeys import RSAPublicKey
from sudp.stream.handshake import frameKeys

from sudp_test.vectorfile import documentVectors

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(os.path.dirname(__file__)))), "docs", "gossip6.md")

documented = documentVectors(DOC, "gossip6")

def address(text):
    host, _, port = text.rpartition(":")
    return host, int(port)

class IndependentTests(unittest.TestCase):
    """
    Every value recomputed from the document's description alone.
    """

    def setUp(self):
        self.v, self.p = documented()

    def scrypt(self, m):
        p = self.p
        return hashlib.scrypt(m, salt=b"gossip6 proof of work", n=int(p["scrypt_n"]), r=int(p["scrypt_r"]),
                              p=int(p["scrypt_p"]), maxmem=64 << 20, dklen=32)

    def layout(self, m):
        """
        Split m by section 1's table.
        """
        (size,) = struct.unpack_from(">H", m, 32)
        key = m[34 : 34 + size]
        at = 34 + size
        t, family = struct.unpack_from(">QB", m, at)
        ipSize = 4 if family == 4 else 16
        ip = m[at + 9 : at + 9 + ipSize]
        (port,) = struct.unpack_from(">H", m, at + 9 + ipSize)
        nonce = m[at + 11 + ipSize :]
        return m[:32], key, t, (str(ipaddress.ip_address(ip)), port), nonce

    def test_messageLayout(self):
        """
        Each m holds the sender's X25519 key, RSA key, T, the receiver's
        address and a 16-byte nonce, in that order.
        """
        v, p = self.v, self.p
        for side, other, t in (("client", "server", "client_t"), ("server", "client", "server_t")):
            dhe, key, when, peer, nonce = self.layout(v[f"{side}_m"])
            self.assertEqual(dhe, v[f"{side}_dhe"])
            self.assertEqual(key, v[f"{side}_rsa_public"])
            self.assertEqual(when, int(p[t]))
            self.assertEqual(peer, address(p[f"{other}_address"]))
            self.assertEqual(nonce, v[f"{side}_nonce"])
            self.assertEqual(len(nonce), 16)
            m, s = v[f"{side}_m"], v[f"{side}_signature"]
            self.assertEqual(v[f"{side}_signed"], struct.pack(">H", len(m)) + m + struct.pack(">H", len(s)) + s)

    def test_ephemeralKeys(self):
        """
        The X25519 public keys and the shared secret come from the private keys.
        """
        v = self.v
        c = X25519PrivateKey.from_private_bytes(v["client_x25519_private"])
        s = X25519PrivateKey.from_private_bytes(v["server_x25519_private"])
        raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
        self.assertEqual(c.public_key().public_bytes(*raw), v["client_dhe"])
        self.assertEqual(s.public_key().public_bytes(*raw), v["server_dhe"])
        self.assertEqual(c.exchange(s.public_key()), v["dh_shared"])
        self.assertEqual(s.exchange(c.public_key()), v["dh_shared"])

    def test_proofOfWork(self):
        """
        scrypt(m) with the document's salt and C is the given proof, and it
        has at least `difficulty` leading zero bits.
        """
        v, bits = self.v, int(self.p["difficulty"])
        for side in ("client", "server"):
            proof = self.scrypt(v[f"{side}_m"])
            self.assertEqual(proof, v[f"{side}_proof"])
            self.assertLess(int.from_bytes(proof, "big"), 1 << (256 - bits))

    def test_signatures(self):
        """
        s verifies as RSA-PSS (MGF1-SHA3-256, 32-byte salt) over SHA3-256(m),
        both over m and over the digest prehashed.
        """
        from cryptography.hazmat.primitives.asymmetric import utils

        v = self.v
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA3_256()), salt_length=32)
        for side in ("client", "server"):
            key = serialization.load_der_public_key(v[f"{side}_rsa_public"])
            m, s = v[f"{side}_m"], v[f"{side}_signature"]
            self.assertEqual(hashlib.sha3_256(m).digest(), v[f"{side}_digest"])
            key.verify(s, m, pss, hashes.SHA3_256())
            key.verify(s, v[f"{side}_digest"], pss, utils.Prehashed(hashes.SHA3_256()))

    def test_packets(self):
        """
        G6_INIT and G6_RESP are laid out as section 1 says.
        """
        v, p = self.v, self.p
        self.assertEqual(v["init"], struct.pack(">BII", 0x15, int(p["init_sender_index"], 16),
                                                int(p["init_cookie_timestamp"])) + bytes(range(0xA0, 0xB0))
                         + v["client_signed"])
        self.assertEqual(v["resp"], struct.pack(">BII", 0x16, int(p["init_sender_index"], 16),
                                                int(p["resp_sender_index"], 16)) + v["server_signed"])
        for name, typeByte, side in (("stream_init_message", 0x15, "client"), ("stream_resp_message", 0x16, "server")):
            body = bytes([typeByte]) + v[f"{side}_signed"]
            self.assertEqual(v[name], struct.pack(">H", len(body)) + body)

    def test_keys(self):
        """
        th and the sudp/1 key schedule over it give c2s and s2c; the first
        DATA packet is AES-256-GCM under c2s with nonce 0^32 | seq 0 and the
        header as associated data; the stream's frame keys are sframe's.
        """
        v = self.v
        th = hashlib.sha256(b"gossip6 handshake\0" + struct.pack(">I", len(v["init"])) + v["init"] + v["resp"]).digest()
        self.assertEqual(th, v["transcript"])
        prk = hmac.new(th, v["dh_shared"], hashlib.sha256).digest()
        okm = HKDFExpand(hashes.SHA256(), 128, b"sudp/1 keys" + struct.pack(">I", 0)).derive(prk)
        self.assertEqual((okm[:32], okm[32:64]), (v["c2s"], v["s2c"]))
        header = struct.pack(">BIQ", 0x18, int(self.p["resp_sender_index"], 16), 0)
        sealed = AESGCM(v["c2s"]).encrypt(bytes(12), v["data_plaintext"], header)
        self.assertEqual(v["data_packet"], header + sealed)
        sinit, sresp = v["stream_init_message"][2:], v["stream_resp_message"][2:]
        sth = hashlib.sha256(
            b"gossip6 stream handshake\0" + struct.pack(">I", len(sinit)) + sinit + sresp).digest()
        self.assertEqual(sth, v["stream_transcript"])
        prk = hmac.new(sth, v["dh_shared"], hashlib.sha256).digest()
        block = HKDFExpand(hashes.SHA256(), 160, b"sudp/1 sframe").derive(prk)
        self.assertEqual((block[:80], block[80:]), (v["stream_client_half"], v["stream_server_half"]))

class ImplementationTests(unittest.TestCase):
    """
    sudp's gossip6 code decodes, checks and derives the same values.
    """

    def setUp(self):
        self.v, self.p = documented()
        p = self.p
        self.config = Gossip6Config(scryptN=int(p["scrypt_n"]), scryptR=int(p["scrypt_r"]),
                                    scryptP=int(p["scrypt_p"]), difficulty=int(p["difficulty"]),
                                    tMax=60, clockSkew=5)

    def test_decodeEncode(self):
        """
        The packets decode to the documented fields and encode back byte for byte.
        """
        v = self.v
        init, resp = Gossip6Init.decode(v["init"]), Gossip6Resp.decode(v["resp"])
        self.assertEqual(init.encode(), v["init"])
        self.assertEqual(resp.encode(), v["resp"])
        self.assertEqual(init.signed.raw, v["client_m"])
        self.assertEqual(init.signed.message.peer, address(self.p["server_address"]))
        self.assertEqual(resp.signed.message.peer, address(self.p["client_address"]))
        self.assertEqual(resp.signed.message.encode(), v["server_m"])
        self.assertEqual(Signed.decode(v["client_signed"]).encode(), v["client_signed"])
        self.assertEqual(decodeStreamMessage(0x16, v["stream_resp_message"][2:]).encode(), v["server_signed"])

    def test_checksPass(self):
        """
        At the vectors' time, with each side's address as ours and the
        other's key trusted, every rule passes; the proof is valid and has
        the documented value.
        """
        v, p = self.v, self.p
        for side, other, t in (("client", "server", "server_t"), ("server", "client", "client_t")):
            signed = Signed.decode(v[f"{side}_signed"])
            key = RSAPublicKey.fromDER(v[f"{side}_rsa_public"])
            reason, found = checkSigned(signed, int(p[t]), (address(p[f"{other}_address"]),), {key.der: key},
                                        self.config)
            self.assertEqual((reason, found), (None, key))
            self.assertEqual(proofValue(signed.raw, self.config), v[f"{side}_proof"])
            self.assertTrue(meetsTarget(signed.raw, self.config))

    def test_keys(self):
        """
        The session keys and the stream's transcript are the documented ones.
        """
        v = self.v
        keys = sessionKeys(v["init"], v["resp"], v["dh_shared"])
        self.assertEqual((keys.transcript, bytes(keys.c2s), bytes(keys.s2c)), (v["transcript"], v["c2s"], v["s2c"]))
        sinit, sresp = v["stream_init_message"][2:], v["stream_resp_message"][2:]
        sth = transcript(sinit, sresp, STREAM_TRANSCRIPT_LABEL)
        self.assertEqual(sth, v["stream_transcript"])
        self.assertEqual(frameKeys(sth, v["dh_shared"]), (v["stream_client_half"], v["stream_server_half"]))

class LengthTests(unittest.TestCase):
    def test_documentedLengthOfM(self):
        """
        gossip6.md states m's length as C{a + L} bytes for an IPv4 peer and
        C{b + L} for IPv6 (L the length of RSA_pub); the encoder agrees, for
        every RSA size the profile accepts. (The document said 61 and 73,
        four bytes short, before.)
        """
        import re

        from sudp.gossip6.wire import Message

        with open(DOC, encoding="utf-8") as f:
            text = f.read()
        found = re.search(r"`m` is (\d+) \+ L bytes with an IPv4 peer, (\d+) \+ L with IPv6 \((\d+) for RSA-3072",
                          text)
        self.assertIsNotNone(found)
        v4, v6, rsa3072 = map(int, found.groups())
        for size in (294, 422, 550):  # DER SubjectPublicKeyInfo of RSA-2048, -3072, -4096
            key = bytes(size)
            self.assertEqual(len(Message(bytes(32), key, 1, ("127.0.0.1", 9)).encode()), v4 + size)
            self.assertEqual(len(Message(bytes(32), key, 1, ("::1", 9)).encode()), v6 + size)
        self.assertEqual(rsa3072, v4 + 422)
