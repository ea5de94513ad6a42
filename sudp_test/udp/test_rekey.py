# -*- test-case-name: sudp_test.udp.test_rekey -*-
"""
Tests for L{sudp.udp.rekey}.

L{sudp.udp.rekey}: the rekey state a session keeps (L{ClientRekey},
L{ServerRekey}, L{RekeyAsk}) through a rekey from either side, and the one
failure it turns into a drop.
"""

from twisted.trial import unittest

from sudp.errors import MalformedPacket
from sudp.gossip6.handshake import Gossip6Handshake
from sudp.keys import Identity
from sudp.udp import records as R, rekey
from sudp.udp.client import ClientEngine
from sudp.udp.config import Config
from sudp.udp.keyschedule import Ephemeral, REKEY_SIGNATURE_LABEL, rekeyTranscript
from sudp.udp.rekey import ClientRekey, RekeyAsk, ServerRekey
from sudp.udp.server import ServerEngine

from sudp_test.enginehelpers import connectedPair, SERVER_ADDR, serverSessionOf, takeOutbox
from sudp_test.helpers import RSA

class RekeySignatureTests(unittest.SynchronousTestCase):
    """
    A REKEY_RESPONSE is bounded by the signature size of the handshake the
    session came from, not by the largest any handshake may use.
    """

    def test_bound(self):
        """
        An RSA-2048 signature's REKEY_RESPONSE is refused under sudp/1's
        bound (64 bytes) and accepted under the RSA key's; the engines say
        which from their handshake half.
        """
        record = R.encodeRecord(R.REKEY_RESPONSE, bytes(36 + RSA.signatureSize))
        e = self.assertRaises(MalformedPacket, R.decodeRecords, record, 64)
        self.assertEqual(e.reason, "bad-record")
        self.assertEqual(R.decodeRecords(record, RSA.signatureSize), [(R.REKEY_RESPONSE, bytes(36 + 256))])
        self.assertEqual(ServerEngine(Identity.generate()).signatureSize, 64)
        gossip6 = Gossip6Handshake([RSA.publicKey])
        engine = ClientEngine(None, SERVER_ADDR, Config(), handshake=gossip6.datagramClient(RSA))
        self.assertEqual(engine.signatureSize, 256)
        engine = ServerEngine(RSA, Config(), handshake=gossip6.datagramServer(RSA))
        self.assertEqual(engine.signatureSize, 256)

class RekeyStateTests(unittest.TestCase):
    def test_clientStarts(self):
        """
        The client's rekey is a L{ClientRekey} until the answer comes; the
        server keeps its answer as a L{ServerRekey}, signed by its key over
        the rekey transcript, until the client switches; then neither holds one.
        """
        net, server, client = connectedPair()
        session, mine = serverSessionOf(server, client), client.session
        previous = mine.sendEpoch.keys.transcript
        mine._startRekey(net.now)
        started = mine.rekey
        self.assertIsInstance(started, ClientRekey)
        self.assertEqual((started.epoch, started.retransmitAt), (1, net.now + client.config.rekeyRetransmit))
        self.assertIsInstance(started.ephemeral, Ephemeral)
        for data, _ in takeOutbox(client):
            server.receiveDatagram(data, net.addressOf(client), net.now)
        answer = session.rekey
        self.assertIsInstance(answer, ServerRekey)
        self.assertEqual((answer.epoch, answer.clientEphemeral), (1, started.ephemeral.public))
        [(rtype, value)] = R.decodeRecords(answer.record)
        response = R.RekeyResponse.decode(value)
        self.assertEqual((rtype, response.epoch), (R.REKEY_RESPONSE, 1))
        th = rekeyTranscript(previous, 1, started.ephemeral.public, response.ephemeral)
        self.assertTrue(server.identity.publicKey.verify(response.signature, REKEY_SIGNATURE_LABEL + th))
        for data, addr in takeOutbox(server):
            client.receiveDatagram(data, addr, net.now)
        net.pump()
        self.assertEqual((mine.rekey, session.rekey), (None, None))
        self.assertEqual((mine.sendEpoch.number, session.sendEpoch.number), (1, 1))

    def test_retransmissionReplacesTheState(self):
        """
        A REKEY_REQUEST resent on its timer is a new L{ClientRekey} (the
        state is a value: one taken before is not changed), for the same
        epoch and key.
        """
        net, server, client = connectedPair()
        mine = client.session
        mine._startRekey(net.now)
        first = mine.rekey
        takeOutbox(client)  # lost
        net.now = first.retransmitAt
        client.handleTimer(net.now)
        again = mine.rekey
        self.assertIsNot(again, first)
        self.assertEqual((again.epoch, again.ephemeral), (first.epoch, first.ephemeral))
        self.assertEqual(again.retransmitAt, net.now + client.config.rekeyRetransmit)
        self.assertEqual(len(takeOutbox(client)), 1)

    def test_serverAsks(self):
        """
        The server's ask is a L{RekeyAsk}; the client answers it with a rekey
        of its own, which clears it.
        """
        net, server, client = connectedPair()
        session = serverSessionOf(server, client)
        session._startRekey(net.now)
        self.assertEqual(session.rekeyAsk, RekeyAsk(1, net.now + server.config.rekeyRetransmit))
        self.assertIsNone(session.rekey)
        net.pump()
        self.assertIsNone(session.rekeyAsk)
        self.assertEqual((client.session.sendEpoch.number, session.sendEpoch.number), (1, 1))

class FailureTests(unittest.TestCase):
    def test_onlyAHandshakeFailureIsDropped(self):
        """
        The exchange with the client's rekey key failing as a bad key does
        (L{sudp.errors.HandshakeFailed}) is a drop; any other error is a
        bug and is not hidden.
        """
        net, server, client = connectedPair()
        client.session._startRekey(net.now)
        request = takeOutbox(client)

        class Broken(Ephemeral):
            def exchange(self, peerPublic):
                raise RuntimeError("broken")

        self.patch(rekey, "Ephemeral", Broken)
        self.assertRaises(RuntimeError, server.receiveDatagram, request[0][0], net.addressOf(client), net.now)

class SignedByTheHostTests(unittest.TestCase):
    def test_serverIdentitySigns(self):
        """
        The response is signed with the identity the session's host gives.
        """
        net, server, client = connectedPair()
        other = Identity.generate()
        server.identity = other
        client.session._startRekey(net.now)
        for data, _ in takeOutbox(client):
            server.receiveDatagram(data, net.addressOf(client), net.now)
        value = R.decodeRecords(serverSessionOf(server, client).rekey.record)[0][1]
        response = R.RekeyResponse.decode(value)
        previous = client.session.sendEpoch.keys.transcript
        th = rekeyTranscript(previous, 1, client.session.rekey.ephemeral.public, response.ephemeral)
        self.assertTrue(other.publicKey.verify(response.signature, REKEY_SIGNATURE_LABEL + th))
