"""
The test vectors of docs/vpn041.md, checked against sudp's data plane and
independently with cryptography's HKDF, AES-CBC, PKCS#7 and AES-GCM.
"""

import os

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from twisted.trial import unittest

from sudp.vpn041.dataplane import PacketCodec, packetKey, parseHeader
from sudp_test.vectorfile import documentVectors

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "vpn041.md")
documented = documentVectors(DOC, "vpn041")
MODES = {"plain": (False, False), "cbc": (True, False), "gcm": (True, True), "gmac": (False, True)}


class VectorTests(unittest.TestCase):
    def setUp(self):
        self.v, self.p = documented()
        self.sid = int(self.p["session_id"])
        self.header = bytes([self.sid]) + self.v["nonce"]

    def test_packetKey(self):
        """
        key | iv = HKDF-SHA-256(IKM = session key, salt = nonce, info = "vpn041 packet", 48).
        """
        v = self.v
        okm = HKDF(hashes.SHA256(), 48, salt=v["nonce"], info=b"vpn041 packet").derive(v["session_key"])
        self.assertEqual((okm[:32], okm[32:]), (v["packet_key"], v["packet_iv"]))
        self.assertEqual(packetKey(v["session_key"], v["nonce"]), (v["packet_key"], v["packet_iv"]))

    def test_independently(self):
        """
        The four forms, rebuilt from the document's description.
        """
        v, h = self.v, self.header
        self.assertEqual(v["datagram_plain"], h + v["payload"])
        padder = padding.PKCS7(128).padder()
        padded = padder.update(v["payload"]) + padder.finalize()
        enc = Cipher(algorithms.AES(v["packet_key"]), modes.CBC(v["packet_iv"])).encryptor()
        self.assertEqual(v["datagram_cbc"], h + enc.update(padded) + enc.finalize())
        gcm = AESGCM(v["packet_key"])
        self.assertEqual(v["datagram_gcm"], h + gcm.encrypt(v["packet_iv"][:12], v["payload"], h))
        self.assertEqual(v["datagram_gmac"], h + v["payload"] + gcm.encrypt(v["packet_iv"][:12], b"", h + v["payload"]))
        self.assertEqual(len(h), 17)

    def test_codec(self):
        """
        sudp's codec seals the same datagrams and opens them back.
        """
        v = self.v
        for name, (enc, auth) in MODES.items():
            codec = PacketCodec(self.sid, v["session_key"], enc, auth)
            self.assertEqual(codec.seal(v["payload"], v["nonce"]), v[f"datagram_{name}"], name)
            sid, nonce, body = parseHeader(v[f"datagram_{name}"])
            self.assertEqual((sid, nonce), (self.sid, v["nonce"]))
            self.assertEqual(codec.open(nonce, body), v["payload"], name)
