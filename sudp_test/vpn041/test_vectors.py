# -*- test-case-name: sudp_test.vpn041.test_vectors -*-
"""
The test vectors of docs/vpn041.md, checked against sudp's data plane and
independently with cryptography's HKDF, AES-CBC, PKCS#7 and AES-GCM.
"""

import os

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import algorithms, Cipher, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from twisted.trial import unittest

from sudp.vpn041.dataplane import CLIENT, GATEWAY, PacketCodec, packetKey, parseHeader

from sudp_test.vectorfile import documentVectors

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(os.path.dirname(__file__)))), "docs", "vpn041.md")

documented = documentVectors(DOC, "vpn041")

MODES = {"cbc": (True, False), "gcm": (True, True), "gmac": (False, True)}

# direction -> (the sender's role, the receiver's, the derivation's label)
DIRECTIONS = {"up": (CLIENT, GATEWAY, b"vpn041 packet client-to-gateway"),
              "down": (GATEWAY, CLIENT, b"vpn041 packet gateway-to-client")}

class VectorTests(unittest.TestCase):
    def setUp(self):
        self.v, self.p = documented()
        self.sid = int(self.p["session_id"])
        self.header = bytes([self.sid]) + self.v["nonce"]

    def test_packetKey(self):
        """
        key | iv = HKDF-SHA-256(IKM = session key, salt = nonce, info =
        "vpn041 packet client-to-gateway" or "... gateway-to-client", 48).
        """
        v = self.v
        for direction, (sender, _, label) in DIRECTIONS.items():
            okm = HKDF(hashes.SHA256(), 48, salt=v["nonce"], info=label).derive(v["session_key"])
            expected = (v[f"packet_key_{direction}"], v[f"packet_iv_{direction}"])
            self.assertEqual((okm[:32], okm[32:]), expected)
            self.assertEqual(packetKey(v["session_key"], v["nonce"], sender), expected)

    def test_independently(self):
        """
        The forms in each direction, rebuilt from the document's description.
        """
        v, h = self.v, self.header
        self.assertEqual(v["datagram_plain"], h + v["payload"])
        for direction in DIRECTIONS:
            key, iv = v[f"packet_key_{direction}"], v[f"packet_iv_{direction}"]
            padder = padding.PKCS7(128).padder()
            padded = padder.update(v["payload"]) + padder.finalize()
            enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
            self.assertEqual(v[f"datagram_cbc_{direction}"], h + enc.update(padded) + enc.finalize())
            gcm = AESGCM(key)
            self.assertEqual(v[f"datagram_gcm_{direction}"], h + gcm.encrypt(iv[:12], v["payload"], h))
            self.assertEqual(v[f"datagram_gmac_{direction}"],
                             h + v["payload"] + gcm.encrypt(iv[:12], b"", h + v["payload"]))
        self.assertEqual(len(h), 17)

    def test_codec(self):
        """
        sudp's codecs seal the same datagrams and the peer's opens them back.
        """
        v = self.v
        for direction, (sender, receiver, _) in DIRECTIONS.items():
            forms = dict(MODES, plain=(False, False))
            for name, (enc, auth) in forms.items():
                wire = v["datagram_plain"] if name == "plain" else v[f"datagram_{name}_{direction}"]
                codec = PacketCodec(self.sid, v["session_key"], enc, auth, role=sender)
                self.assertEqual(codec.seal(v["payload"], v["nonce"]), wire, (name, direction))
                sid, nonce, body = parseHeader(wire)
                self.assertEqual((sid, nonce), (self.sid, v["nonce"]))
                peer = PacketCodec(self.sid, v["session_key"], enc, auth, role=receiver)
                self.assertEqual(peer.open(nonce, body), v["payload"], (name, direction))
