# -*- test-case-name: sudp_test.udp.test_handshake -*-
"""
Tests for L{sudp.udp.handshake}: the sudp/1 handshake functions are
domain-separated per protocol (sudp/1 over UDP, sframe), so that nothing
signed for one is accepted by the other.
"""

import os

from twisted.trial import unittest

from sudp.errors import BadServerSignature, ClientNotAuthorized
from sudp.keys import Identity
from sudp.stream.handshake import (
    ClientKeyExchange,
    framed,
    SEED003,
    ServerKeyExchange,
    StreamConfig,
)
from sudp.suites import DEFAULT_SUITE
from sudp.udp import packets as P
from sudp.udp.client import ClientEngine, CONFIRM_SENT, FAILED
from sudp.udp.config import Config
from sudp.udp.events import HandshakeFailure
from sudp.udp.handshake import answerInit, checkAnswer, checkClientProof, clientProof
from sudp.udp.keyschedule import Ephemeral, SFRAME_LABELS, UDP_LABELS

SERVER_ADDR = ("127.0.0.1", 9000)

class CrossProtocolTests(unittest.TestCase):
    def setUp(self):
        self.server = Identity.generate()

    def test_sframeRespIntoUdpClient(self):
        """
        An attacker who sees a UDP client's HELLO answers it with a forged
        COOKIE (timestamp and cookie zero, as sframe's INIT has them),
        relays the client's INIT to an sframe server holding the same key,
        and relays its signed RESP back: the UDP client refuses it (on the
        landed code it accepted it and went on to CONFIRM).
        """
        client = ClientEngine(self.server.publicKey, SERVER_ADDR, Config())
        client.start(0.0)
        [(hello, _)] = client.outbox
        client.outbox = []
        client.receiveDatagram(P.encodeCookie(P.decodeHello(hello), 0, bytes(16)), SERVER_ADDR, 0.0)
        [(init, _)] = client.outbox
        client.outbox = []
        sframeServer = ServerKeyExchange(self.server, StreamConfig(suites=(SEED003,)))
        step = sframeServer.receive(framed(init))
        self.assertIsNotNone(step.established)
        resp = step.toSend[2:]
        client.receiveDatagram(resp, SERVER_ADDR, 0.1)
        self.assertNotEqual(client.state, CONFIRM_SENT)
        self.assertEqual(client.state, FAILED)
        [failure] = [e for e in client.events if isinstance(e, HandshakeFailure)]
        self.assertIsInstance(failure.error, BadServerSignature)

    def test_udpRespIntoSframeClient(self):
        """
        The reverse: an sframe client's INIT answered under sudp/1 over
        UDP's labels (as a UDP server holding the same key would sign it) is
        refused by the sframe client as not signed by the server.
        """
        client = ClientKeyExchange(self.server.publicKey, StreamConfig(suites=(SEED003,)))
        initBytes = client.start().toSend[2:]
        init = P.HandshakeInit.decode(initBytes)
        udpAnswer = answerInit(self.server, init, initBytes, SEED003, 9, os.urandom(32))
        error = self.assertRaises(BadServerSignature, client.receive, framed(udpAnswer.resp))
        self.assertIn(self.server.publicKey.fingerprint(), str(error))

    def answer(self, labels):
        """
        @return: C{(init bytes, decoded RESP, client ephemeral)} of a
            handshake answered under C{labels}.
        """
        eph = Ephemeral(os.urandom(32))
        initBytes = P.HandshakeInit(7, 0, bytes(16), eph.public, [DEFAULT_SUITE.suiteId]).encode()
        init = P.HandshakeInit.decode(initBytes)
        answer = answerInit(self.server, init, initBytes, DEFAULT_SUITE, 9, os.urandom(32), labels)
        return initBytes, P.HandshakeResp.decode(answer.resp), eph

    def test_serverSignaturesSeparated(self):
        """
        A RESP signed under one protocol's labels verifies under its own and
        under no other.
        """
        for signed in (UDP_LABELS, SFRAME_LABELS):
            initBytes, resp, eph = self.answer(signed)
            checkAnswer(self.server.publicKey, initBytes, resp, eph, (DEFAULT_SUITE,), signed)
            for other in (UDP_LABELS, SFRAME_LABELS):
                if other is not signed:
                    self.assertRaises(BadServerSignature, checkAnswer, self.server.publicKey, initBytes,
                                      resp, eph, (DEFAULT_SUITE,), other)

    def test_clientProofsSeparated(self):
        """
        A client proof made for one protocol is refused by the other.
        """
        client = Identity.generate()
        th = os.urandom(32)
        for made in (UDP_LABELS, SFRAME_LABELS):
            proof = clientProof(client, th, made)
            self.assertEqual(checkClientProof(proof, th, None, made), client.publicKey)
            for other in (UDP_LABELS, SFRAME_LABELS):
                if other is not made:
                    self.assertRaises(ClientNotAuthorized, checkClientProof, proof, th, None, other)

    def test_labelsDistinct(self):
        """
        Every label differs from every other, within and across protocols.
        """
        labels = [getattr(l, name) for l in (UDP_LABELS, SFRAME_LABELS)
                  for name in ("transcript", "server", "client")]
        self.assertEqual(len(set(labels)), len(labels))
        self.assertEqual(UDP_LABELS.transcript, b"sudp/1 handshake\0")
