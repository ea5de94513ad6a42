# -*- test-case-name: sudp_test.gossip6.test_keys -*-
"""
Tests for L{sudp.gossip6.keys}.
"""

import hashlib
import struct

from twisted.trial import unittest

from sudp.gossip6 import keys as keys_
from sudp.gossip6.wire import encodeStreamMessage, G6_INIT
from sudp.stream.handshake import framed

from sudp_test.enginehelpers import SERVER_ADDR as S, START
from sudp_test.gossip6.helpers import KEYS, solved, streamServer

class TransportSeparationTests(unittest.TestCase):
    """
    gossip6 on a stream and gossip6 on UDP hash their transcripts under
    different labels (docs/gossip6.md section 5).
    """

    def test_streamTranscriptHasItsOwnLabel(self):
        """
        A stream handshake's transcript is SHA-256 under
        C{"gossip6 stream handshake\\0"}, not what the UDP transcript
        function gives for the same two messages, so keys made for one
        transport are never those of the other.
        """
        _, kx = streamServer()
        init = encodeStreamMessage(G6_INIT, solved(KEYS.client, S))
        need = kx.receive(framed(init), START).work
        need.job.run()
        step = kx.workDone(need.job, START)
        done, reply = step.established, step.toSend
        resp = reply[2:]
        label = b"gossip6 stream handshake\0"
        expected = hashlib.sha256(label + struct.pack(">I", len(init)) + init + resp)
        self.assertEqual(done.transcript, expected.digest())
        self.assertNotEqual(done.transcript, keys_.transcript(init, resp))
