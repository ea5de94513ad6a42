# -*- test-case-name: sudp_test.gossip6.test_stream -*-
"""
Tests for L{sudp.gossip6.stream}.
"""

from dataclasses import replace

from twisted.trial import unittest

from sudp.gossip6 import checks as checks_
from sudp.gossip6.stream import Gossip6StreamSetup
from sudp.gossip6.udp import Gossip6Refused
from sudp.gossip6.wire import decodeStreamMessage, encodeStreamMessage, G6_INIT, G6_RESP
from sudp.stream.handshake import Established, framed
from sudp.work import WorkNeeded

from sudp_test.enginehelpers import CLIENT_ADDR as C, SERVER_ADDR as S, START
from sudp_test.gossip6.helpers import C2, G, KEYS, RulesMixin, streamServer

def streamClient(host=C, peer=S, gossip6=G, now=START):
    """
    @return: a client key exchange that has sent its INIT and waits for the answer.
    """
    setup = Gossip6StreamSetup([KEYS.server.publicKey, KEYS.other.publicKey], gossip6)
    kx = setup.keyExchange(KEYS.client, isClient=True)
    kx.connected(host, peer)
    need = kx.start(now).work
    need.job.run()
    kx.workDone(need.job, now)
    return kx

class StreamServerRuleTests(RulesMixin, unittest.TestCase):
    """
    The rules on the sframe server key exchange (the stream's own addresses
    are this side's), and the reuse record its connections share.
    """

    ours = S

    @property
    def sender(self):
        return KEYS.client

    def refuse(self, signed, reason, now=START, local=(S,), setup=None, peer=C):
        setup, kx = streamServer(local[0], peer, setup=setup)
        digest = checks_.messageDigest(signed)
        recorded, records = setup.reuse.seen(digest, now), len(setup.reuse)
        e = self.assertRaises(Gossip6Refused, kx.receive, framed(encodeStreamMessage(G6_INIT, signed)), now)
        self.assertEqual(e.reason, reason)
        proofRecorded = reason == "bad-signature"  # remembered apart, not in the record
        self.assertEqual(len(setup.reuse), records)
        self.assertEqual(setup.reuse.seen(digest, now), recorded or proofRecorded)

    def accept(self, signed, now=START, local=(S,), setup=None, peer=C):
        setup, kx = streamServer(local[0], peer, setup=setup)
        need = kx.receive(framed(encodeStreamMessage(G6_INIT, signed)), now).work
        self.assertIsInstance(need, WorkNeeded)
        self.assertTrue(setup.reuse.seen(checks_.messageDigest(signed), now))
        need.job.run()
        step = kx.workDone(need.job, now)
        done, reply, rest = step.established, step.toSend, step.rest
        self.assertIsInstance(done, Established)
        self.assertEqual(done.peerKey, KEYS.client.publicKey)
        self.assertEqual(rest, b"")
        answer = decodeStreamMessage(G6_RESP, reply[2:])
        self.assertEqual(answer.message.peer, peer)
        return setup

    def test_configuredAddress(self):
        """
        With localAddresses configured (a server behind NAT), m must name
        that address: the stream's own is refused as wrong-address.
        """
        setup = Gossip6StreamSetup([KEYS.client.publicKey], replace(G, localAddresses=(("127.0.0.2", 9999),)))
        self.refuse(self.make(), "wrong-address", setup=setup)
        self.accept(self.make(peer=("127.0.0.2", 9999)), setup=setup)

    def test_reusedProof(self):
        """
        The same m|s is accepted on one connection and refused as
        reused-proof on another (another peer address), the record being
        the endpoint's, shared by its connections.
        """
        signed = self.make()
        setup = self.accept(signed)
        self.refuse(signed, "reused-proof", START + 1, setup=setup, peer=C2)

    def test_reusedProofAfterTMaxIsStale(self):
        """
        After tMax the same m is refused as stale-timestamp.
        """
        signed = self.make()
        setup = self.accept(signed)
        self.refuse(signed, "stale-timestamp", START + G.tMax + 1, setup=setup, peer=C2)

    def test_reuseRecordFull(self):
        """
        With maxReuseRecords=2 the third fresh handshake is refused as
        reuse-record-full; once the records expire a new one is accepted and
        the record holds just it.
        """
        setup = Gossip6StreamSetup([KEYS.client.publicKey], replace(G, maxReuseRecords=2))
        self.accept(self.make(), setup=setup)
        self.accept(self.make(), setup=setup)
        self.refuse(self.make(), "reuse-record-full", setup=setup)
        later = START + G.tMax + 1
        self.accept(self.make(int(later)), later, setup=setup)
        self.assertEqual(len(setup.reuse), 1)

class StreamClientRuleTests(RulesMixin, unittest.TestCase):
    """
    The rules the seed gives Alice, on the sframe client key exchange.
    """

    ours = C

    @property
    def sender(self):
        return KEYS.server

    def refuse(self, signed, reason, now=START, local=(C,)):
        kx = streamClient(local[0])
        e = self.assertRaises(Gossip6Refused, kx.receive, framed(encodeStreamMessage(G6_RESP, signed)), now)
        self.assertEqual(e.reason, reason)

    def accept(self, signed, now=START, local=(C,)):
        kx = streamClient(local[0])
        step = kx.receive(framed(encodeStreamMessage(G6_RESP, signed)), now)
        done, rest = step.established, step.rest
        self.assertIsInstance(done, Established)
        self.assertEqual((done.peerKey, rest), (KEYS.server.publicKey, b""))
