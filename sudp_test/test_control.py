"""
L{sudp.udp.control}: the records of one CONTROL packet are handled in
order, and the values with fields go through their codecs.
"""

from twisted.trial import unittest

from sudp.keys import Identity
from sudp.udp import records as R
from sudp.udp.events import MessageReceived, ServerKeyAnnounced, SessionEnded
from sudp.udp.keyschedule import NEXT_KEY_SIGNATURE_LABEL
from sudp_test.enginehelpers import CLIENT_ADDR, connectedPair, serverSessionOf


class ControlRecordsTests(unittest.TestCase):
    def test_inOrder(self):
        """
        Messages before a CLOSE in one packet are delivered, the session
        ends at the CLOSE, and what follows it is not handled.
        """
        net, server, client = connectedPair()
        client.session._sendControl(
            R.encodeRecord(R.APP_DATA, b"one") + R.encodeRecord(R.APP_DATA, b"two")
            + R.encodeClose(R.CLOSE_NORMAL, "bye") + R.encodeRecord(R.APP_DATA, b"three"), net.now)
        net.pump()
        self.assertEqual([e.message for e in net.take("server", MessageReceived)], [b"one", b"two"])
        [ended] = net.take("server", SessionEnded)
        self.assertEqual((ended.reason.reason, ended.reason.detail), ("closed-by-peer", "bye"))

    def test_nextServerKeyRecord(self):
        """
        A server rolling its key answers a CONFIRM with a NEXT_SERVER_KEY
        record: the next key, and its signature of the handshake transcript.
        """
        net, server, client = connectedPair()
        server.nextIdentity = Identity.generate()
        session = serverSessionOf(server, client)
        [(rtype, value)] = R.decodeRecords(session._nextKeyRecord())
        announced = R.NextServerKey.decode(value)
        self.assertEqual((rtype, announced.publicKey), (R.NEXT_SERVER_KEY, server.nextIdentity.publicKey.raw))
        self.assertTrue(server.nextIdentity.publicKey.verify(
            announced.signature, NEXT_KEY_SIGNATURE_LABEL + session.handshakeTranscript))
        client.session._sendControl(client._confirm, net.now)
        net.pump()
        [event] = net.take(CLIENT_ADDR, ServerKeyAnnounced)
        self.assertEqual(event.key, server.nextIdentity.publicKey)

    def test_noNextKey(self):
        """
        A server that announces no key adds no record.
        """
        _, server, client = connectedPair()
        self.assertEqual(serverSessionOf(server, client)._nextKeyRecord(), b"")
