# -*- test-case-name: sudp_test.udp.test_records -*-
"""
The CONTROL records' value codecs (L{sudp.udp.records}): every field
decoded round-trips, the bytes are those of protocol.md's tables, and a
value of the wrong size raises L{MalformedPacket} only.
"""

from hypothesis import given, strategies as st
from twisted.trial import unittest

from sudp.errors import MalformedPacket
from sudp.udp import records as R
from sudp.udp.records import ClientAuth, NextServerKey, RekeyRequest, RekeyResponse

epochs = st.integers(0, 2**32 - 1)

keys = st.binary(min_size=32, max_size=32)

ed25519Signatures = st.binary(min_size=64, max_size=64)

rekeySignatures = st.binary(min_size=64, max_size=R._SIZES[R.REKEY_RESPONSE][1] - 36)

class RekeyRequestTests(unittest.TestCase):
    @given(epochs, keys)
    def test_clientRoundTrip(self, epoch, ephemeral):
        """
        The client's request: u32 epoch then its ephemeral key; both fields
        come back, and the record is type 0x10 with length 36.
        """
        request = RekeyRequest(epoch, ephemeral)
        value = request.encode()
        self.assertEqual(value, epoch.to_bytes(4, "big") + ephemeral)
        self.assertEqual(request.record(), b"\x10\x00\x24" + value)
        decoded = RekeyRequest.decode(value)
        self.assertEqual((decoded.epoch, decoded.ephemeral), (epoch, ephemeral))
        self.assertEqual(R.decodeRecords(request.record()), [(R.REKEY_REQUEST, value)])

    @given(epochs)
    def test_serverRoundTrip(self, epoch):
        """
        The server's ask carries the epoch alone; it decodes with no key.
        """
        value = RekeyRequest(epoch).encode()
        self.assertEqual(value, epoch.to_bytes(4, "big"))
        self.assertEqual(RekeyRequest.decode(value), RekeyRequest(epoch, None))

    def test_wrongSizes(self):
        """
        Anything but 4 or 36 bytes is malformed: shorter, between, longer.
        """
        for size in (0, 3, 5, 35, 37, 100):
            e = self.assertRaises(MalformedPacket, RekeyRequest.decode, bytes(size))
            self.assertEqual(e.reason, "bad-record")

    def test_encodeChecks(self):
        """
        An encoder given a value that would not decode refuses it.
        """
        self.assertRaises(ValueError, RekeyRequest(2**32).encode)
        self.assertRaises(ValueError, RekeyRequest(1, b"short").encode)

class RekeyResponseTests(unittest.TestCase):
    @given(epochs, keys, rekeySignatures)
    def test_roundTrip(self, epoch, ephemeral, signature):
        """
        u32 epoch, the server's ephemeral key, its signature (Ed25519's 64
        bytes, or gossip6's longer RSA-PSS): every field comes back.
        """
        response = RekeyResponse(epoch, ephemeral, signature)
        value = response.encode()
        self.assertEqual(value, epoch.to_bytes(4, "big") + ephemeral + signature)
        decoded = RekeyResponse.decode(value)
        self.assertEqual((decoded.epoch, decoded.ephemeral, decoded.signature), (epoch, ephemeral, signature))
        self.assertEqual(R.decodeRecords(response.record()), [(R.REKEY_RESPONSE, value)])

    def test_wrongSizes(self):
        """
        A signature shorter than Ed25519's, or longer than the record's
        bound, is malformed.
        """
        high = R._SIZES[R.REKEY_RESPONSE][1]
        for size in (0, 4, 36, 99, high + 1):
            e = self.assertRaises(MalformedPacket, RekeyResponse.decode, bytes(size))
            self.assertEqual(e.reason, "bad-record")
        self.assertEqual(len(RekeyResponse.decode(bytes(high)).signature), high - 36)

    def test_encodeChecks(self):
        self.assertRaises(ValueError, RekeyResponse(1, bytes(32), bytes(63)).encode)
        self.assertRaises(ValueError, RekeyResponse(1, bytes(31), bytes(64)).encode)
        self.assertRaises(ValueError, RekeyResponse(-1, bytes(32), bytes(64)).encode)

class KeyAndSignatureTests(unittest.TestCase):
    @given(keys, ed25519Signatures)
    def test_roundTrip(self, key, signature):
        """
        CLIENT_AUTH and NEXT_SERVER_KEY: a public key, then a signature.
        """
        for codec, recordType in ((ClientAuth, R.CLIENT_AUTH), (NextServerKey, R.NEXT_SERVER_KEY)):
            value = codec(key, signature).encode()
            self.assertEqual(value, key + signature)
            decoded = codec.decode(value)
            self.assertEqual((decoded.publicKey, decoded.signature), (key, signature))
            self.assertEqual(R.decodeRecords(codec(key, signature).record()), [(recordType, value)])

    def test_wrongSizes(self):
        """
        Anything but 96 bytes is malformed, and the reason names the record.
        """
        for codec, name in ((ClientAuth, "CLIENT_AUTH"), (NextServerKey, "NEXT_SERVER_KEY")):
            for size in (0, 32, 95, 97, 200):
                e = self.assertRaises(MalformedPacket, codec.decode, bytes(size))
                self.assertEqual(e.reason, "bad-record")
                self.assertIn(name, str(e))

    def test_encodeChecks(self):
        self.assertRaises(ValueError, ClientAuth(bytes(31), bytes(64)).encode)
        self.assertRaises(ValueError, NextServerKey(bytes(32), bytes(65)).encode)

class AnyBytesTests(unittest.TestCase):
    @given(st.binary(max_size=700))
    def test_onlyMalformedPacket(self, value):
        """
        On any bytes a decoder returns or raises L{MalformedPacket}; never
        IndexError or struct.error.
        """
        for codec in (RekeyRequest, RekeyResponse, ClientAuth, NextServerKey):
            try:
                codec.decode(value)
            except MalformedPacket:
                pass
