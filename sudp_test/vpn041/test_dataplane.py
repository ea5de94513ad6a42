# -*- test-case-name: sudp_test.vpn041.test_dataplane -*-
"""
Tests for L{sudp.vpn041.dataplane}.
"""

import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, HealthCheck, settings, strategies as st
from twisted.trial import unittest

from sudp.errors import MalformedPacket
from sudp.vpn041.dataplane import (
    CLIENT,
    DecryptFailure,
    GATEWAY,
    HEADER_SIZE,
    maxPayload,
    PacketCodec,
    packetKey,
    parseHeader,
)

from sudp_test.vpn041.helpers import SIXTEEN

MODES = [(False, False), (True, False), (False, True), (True, True)]  # (useEncryption, authenticated)

def codecs(sessionId=7, key=None, family=4):
    """
    @return: C{(client, gateway)} codec pairs of one session, one per mode.
    """
    key = key or bytes(range(32))
    return [(PacketCodec(sessionId, key, enc, auth, family, role=CLIENT),
             PacketCodec(sessionId, key, enc, auth, family, role=GATEWAY)) for enc, auth in MODES]

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
        for codec, peer in codecs(sessionId=200):
            nonce = bytes(range(100, 116))
            datagram = codec.seal(b"payload", nonce=nonce)
            self.assertEqual(datagram[0], 200)
            self.assertEqual(datagram[1:17], nonce)
            self.assertEqual(parseHeader(datagram), (200, nonce, datagram[17:]))
            self.assertEqual(peer.open(nonce, datagram[17:]), b"payload")
        self.assertEqual(codecs()[0][0].seal(b"abc")[17:], b"abc")  # plaintext: nothing but the header added

    def test_packetKeyIsHKDF(self):
        """
        The per-packet key and IV are HKDF-SHA-256(salt=nonce, ikm=session
        key, info="vpn041 packet client-to-gateway" or "... gateway-to-client",
        48 bytes) computed independently, and differ for every nonce and
        direction; both sides derive the same for a given packet.
        """
        sessionKey = os.urandom(32)
        seen = set()
        for _ in range(200):
            nonce = os.urandom(16)
            for sender, label in ((CLIENT, b"vpn041 packet client-to-gateway"),
                                  (GATEWAY, b"vpn041 packet gateway-to-client")):
                okm = HKDF(algorithm=hashes.SHA256(), length=48, salt=nonce, info=label).derive(sessionKey)
                key, iv = packetKey(sessionKey, nonce, sender)
                self.assertEqual((key, iv), (okm[:32], okm[32:]))
                seen.add(key)
                seen.add(iv)
        self.assertEqual(len(seen), 800)
        other = os.urandom(32)
        self.assertNotEqual(packetKey(other, b"\0" * 16, CLIENT), packetKey(sessionKey, b"\0" * 16, CLIENT))

    def test_directionSeparation(self):
        """
        Each side opens what the other sealed, in every mode, but never what
        it sealed itself: with encryption or a tag, a datagram sent back to
        its sender fails to open (in plaintext there is nothing to check:
        the replay record and the address binding drop it, see
        test_vpn041_attacks).
        """
        for client, gateway in codecs():
            for sender, receiver in ((client, gateway), (gateway, client)):
                datagram = sender.seal(SIXTEEN)
                _, nonce, body = parseHeader(datagram)
                self.assertEqual(receiver.open(nonce, body), SIXTEEN)
                if sender.useEncryption or sender.authenticated:
                    try:
                        opened = sender.open(nonce, body)
                    except DecryptFailure:
                        continue
                    self.assertNotEqual(opened, SIXTEEN, (sender.role, sender.useEncryption))
        self.assertRaises(ValueError, PacketCodec, 1, bytes(32), True, role="server")

    def test_cbcUsesThePacketKey(self):
        """
        useEncryption: the body is AES-256-CBC with PKCS#7 under the packet
        key and IV, checked with cryptography directly.
        """
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        sessionKey, nonce = os.urandom(32), os.urandom(16)
        codec = PacketCodec(9, sessionKey, True, role=GATEWAY)
        datagram = codec.seal(b"hello", nonce=nonce)
        okm = HKDF(algorithm=hashes.SHA256(), length=48, salt=nonce,
                   info=b"vpn041 packet gateway-to-client").derive(sessionKey)
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
            for codec, peer in codecs(family=family):
                mode = (family, codec.useEncryption, codec.authenticated)
                self.assertEqual(codec.maxPayload, expected[mode], mode)
                self.assertEqual(maxPayload(codec.useEncryption, codec.authenticated, family), expected[mode])
                datagram = codec.seal(b"x" * codec.maxPayload)
                self.assertLessEqual(len(datagram), limits[family], mode)
                if not codec.useEncryption or codec.authenticated:
                    self.assertEqual(len(datagram), limits[family], mode)
                self.assertEqual(peer.open(datagram[1:17], datagram[17:]), b"x" * codec.maxPayload)
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
        sender = PacketCodec(42, key, *mode, role=CLIENT)
        receiver = PacketCodec(42, key, *mode, role=GATEWAY)
        payload = data.draw(st.binary(max_size=sender.maxPayload))
        datagram = sender.seal(payload)
        sessionId, nonce, body = parseHeader(datagram)
        self.assertEqual(sessionId, 42)
        self.assertEqual(receiver.open(nonce, body), payload)
