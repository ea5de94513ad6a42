# -*- test-case-name: sudp_test.vpn041.test_auth -*-
"""
Tests for L{sudp.vpn041.auth}.

Tests of vpn041, the gateway profile of seed 001 (docs/vpn041.md): the
flat appSettings file, the TLS authentication plane (mutual certificates,
session ids and keys), the 17-byte-header UDP data plane, the seed's
failure rules on both sides, and the C{twist vpn041} / C{sudp vpn041}
commands. Integration tests use real sockets on 127.0.0.1 only; the
certificates are made once for the module (a temporary directory removed
at exit).

The attacks of the vpn041 hardening review (docs/vpn041.md, "Attacks of
the hardening review"), each run against real gateways and clients on
127.0.0.1: reflection, replay and the CBC padding oracle, outsiders ending
sessions, and the authentication port held by idle connections.
"""

import base64
import json
import os

from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from sudp.vpn041.auth import (
    decodeRequest,
    decodeResponse,
    encodeRefusal,
    encodeRequest,
    encodeResponse,
    SessionIds,
    Vpn041AuthFailed,
)

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

class SessionIdTests(unittest.TestCase):
    """
    Issue 16 point 3: session ids are drawn at random among the free ones.
    """

    def test_random(self):
        """
        Ten fresh allocators do not all start at 1, and an allocator's first
        ten ids are not 1-10; every id 1-255 is handed out once, then None;
        a freed id is handed out again (the only free one).
        """
        firsts = {SessionIds().allocate() for _ in range(10)}
        self.assertGreater(len(firsts), 1)
        ids = SessionIds()
        drawn = [ids.allocate() for _ in range(255)]
        self.assertNotEqual(drawn[:10], list(range(1, 11)))
        self.assertEqual(sorted(drawn), list(range(1, 256)))
        self.assertIsNone(ids.allocate())
        ids.release(17)
        self.assertEqual((ids.allocate(), ids.allocate()), (17, None))
