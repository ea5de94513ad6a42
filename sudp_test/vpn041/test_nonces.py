# -*- test-case-name: sudp_test.vpn041.test_nonces -*-
"""
Tests for L{sudp.vpn041.nonces}: the nonce layout and each session's
record of nonces, bounded by count and time (sans-IO, and through a session
transport on a C{task.Clock}).
"""

import os

from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial import unittest

from sudp.vpn041.dataplane import CLIENT, GATEWAY, PacketCodec, parseHeader
from sudp.vpn041.nonces import makeNonce, NonceRecord, NonceRefused, nonceTime
from sudp.vpn041.settings import Limits
from sudp.vpn041.transport import PushTransport

class NonceTests(unittest.TestCase):
    def test_layout(self):
        """
        A nonce is 16 bytes: the session time in milliseconds (6 bytes,
        big-endian), then 10 random bytes; times before the session are 0.
        """
        nonce = makeNonce(12.3456, lambda n: b"\xaa" * n)
        self.assertEqual(nonce, (12345).to_bytes(6, "big") + b"\xaa" * 10)
        self.assertEqual(nonceTime(nonce), 12.345)
        self.assertEqual(makeNonce(-1)[:6], bytes(6))
        self.assertEqual(len({makeNonce(1.0) for _ in range(1000)}), 1000)

def refusal(record, nonce, now):
    """
    @return: the reason C{record} refuses C{nonce} at C{now}, or None.
    """
    try:
        record.check(nonce, now)
    except NonceRefused as e:
        return e.reason
    return None

class NonceRecordTests(unittest.TestCase):
    def test_replay(self):
        """
        A recorded nonce is refused as a replay; a fresh one is not, and
        checking changes nothing.
        """
        record = NonceRecord(10, 30.0)
        nonce = makeNonce(1.0)
        self.assertIsNone(refusal(record, nonce, 1.0))
        self.assertIsNone(refusal(record, nonce, 1.0))
        record.add(nonce, 1.0)
        self.assertEqual(refusal(record, nonce, 1.5), "replay")

    def test_time(self):
        """
        A nonce more than lifetime seconds behind or ahead of the session
        clock is refused (stale, future), recorded or not, so the record
        can forget expired nonces without a replay getting through.
        """
        record = NonceRecord(10, 30.0)
        nonce = makeNonce(5.0)
        record.add(nonce, 5.0)
        self.assertEqual(refusal(record, makeNonce(69.0), 100.0), "stale")
        self.assertEqual(refusal(record, makeNonce(131.0), 100.0), "future")
        self.assertIsNone(refusal(record, makeNonce(71.0), 100.0))
        record.add(makeNonce(100.0), 100.0)
        self.assertEqual(len(record), 1)  # the nonce of 5.0 expired
        self.assertEqual(refusal(record, nonce, 100.0), "stale")

    def test_count(self):
        """
        The record holds at most maxNonces; the ones it forgets early raise
        its floor, and nonces at or before the floor are refused (stale):
        10,000 nonces through a record of 100 leave 100 held, and none of
        the forgotten is accepted again.
        """
        record = NonceRecord(100, 30.0)
        nonces = [makeNonce(i / 1000) for i in range(10000)]
        for i, nonce in enumerate(nonces):
            record.add(nonce, i / 1000)
        self.assertEqual(len(record), 100)
        self.assertEqual(record.floor, 9.899)
        refused = {refusal(record, nonce, 10.0) for nonce in nonces}
        self.assertEqual(refused, {"replay", "stale"})
        self.assertIsNone(refusal(record, makeNonce(9.95), 10.0))  # a late but unseen datagram

    def test_bad(self):
        """
        A record holds at least one nonce for a positive time.
        """
        self.assertRaises(ValueError, NonceRecord, 0, 30.0)
        self.assertRaises(ValueError, NonceRecord, 10, 0)

class _Transport(PushTransport):
    def __init__(self, role, clock, key, limits):
        PushTransport.__init__(self, PacketCodec(9, key, True, role=role), Logger(), ("127.0.0.1", 1), clock, limits)
        self.sent = []

    def _push(self, datagram):
        self.sent.append(datagram)

class SessionClockTests(unittest.TestCase):
    def test_capturedDatagramExpires(self):
        """
        Through session transports on a task.Clock: a push is received once;
        replayed within the lifetime it is a replay, after it (when the record
        has forgotten it) it is stale: never delivered twice. The sender's
        own datagram sent back to it is a replay.
        """
        clock, key = Clock(), os.urandom(32)
        limits = Limits(maxNonces=50, nonceLifetime=10.0)
        gateway, client = _Transport(GATEWAY, clock, key, limits), _Transport(CLIENT, clock, key, limits)
        clock.advance(2)
        client.write(b"hello")
        _, nonce, body = parseHeader(client.sent[0])
        self.assertEqual(gateway.receive(nonce, body), b"hello")
        self.assertEqual(self.assertRaises(NonceRefused, gateway.receive, nonce, body).reason, "replay")
        self.assertEqual(self.assertRaises(NonceRefused, client.receive, nonce, body).reason, "replay")
        clock.advance(11)
        gateway.write(b"later")  # the record forgets what expired
        self.assertEqual(len(gateway.nonces), 1)
        self.assertEqual(self.assertRaises(NonceRefused, gateway.receive, nonce, body).reason, "stale")
