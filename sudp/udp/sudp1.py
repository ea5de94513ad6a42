# -*- test-case-name: sudp_test.udp.test_sudp1 -*-
"""
The sudp/1 handshake as the datagram engines' halves (docs/protocol.md,
"Handshake"): the server half answers HANDSHAKE_INIT with a signed
HANDSHAKE_RESP (or a signed HANDSHAKE_REFUSED), the client half builds the
INIT and checks the RESP. The cryptography is L{sudp.udp.handshake}'s; the
engines (L{sudp.udp.server}, L{sudp.udp.client}) do the rest.
"""

from zope.interface import implementer

from sudp.errors import HandshakeFailed
from sudp.interfaces import IDatagramClientHandshake, IDatagramServerHandshake
from sudp.udp import packets as P
from sudp.udp import records as R
from sudp.udp.handshake import (
    answerInit,
    checkAnswer,
    checkRefusal,
    chooseSuite,
    clientProof,
    pinnedKeys,
    randomIndex,
    refuseInit,
)
from sudp.udp.keyschedule import Ephemeral


class Opening:
    """
    What a client half hands its engine once the server's answer checks
    out: the session's suite, the server's index, the epoch-0 keys, the
    server's verified key and the records to send before CONFIRM.
    """

    __slots__ = ("suite", "remoteIndex", "keys", "serverKey", "confirm")

    def __init__(self, suite, remoteIndex, keys, serverKey, confirm=b""):
        self.suite = suite
        self.remoteIndex = remoteIndex
        self.keys = keys
        self.serverKey = serverKey
        self.confirm = confirm


@implementer(IDatagramServerHandshake)
class SUDP1Server:
    """
    The server half of sudp/1: the server's suites (its engine's
    C{config.suites}) and Ed25519 identity (its engine's C{identity}).
    """

    initType = P.HANDSHAKE_INIT
    signatureSize = P.SIGNATURE_SIZE

    def decodeInit(self, data):
        return P.HandshakeInit.decode(data)

    def answer(self, engine, init, initBytes, addr, now):
        suites = engine.config.suites
        suite = chooseSuite(suites, init.suites)
        if suite is None:
            engine.refuse(addr, "no-common-suite")
            # signed, so that the client can believe it; never longer than the INIT
            refusal = refuseInit(engine.identity, init, initBytes, suites)
            if len(refusal) <= len(initBytes):
                engine.queueDatagram(refusal, addr)
                engine.counters["refusals-sent"] += 1
            return
        seed = engine.random(32)  # the ephemeral's randomness is drawn before the index
        index = engine.newIndex()
        try:
            answer = answerInit(engine.identity, init, initBytes, suite, index, seed)
        except HandshakeFailed:
            engine.drops["bad-ephemeral"] += 1
            return
        engine.openPending(index, init.senderIndex, init.ephemeral, suite, answer.keys, answer.resp, addr, now)

    def workDone(self, engine, pending, now):  # pragma: no cover - sudp/1 asks for no work
        raise AssertionError("sudp/1 asks for no off-thread work")

    workFailed = workDone

    def bound(self, address):
        """
        sudp/1 binds nothing to the server's address.
        """


@implementer(IDatagramClientHandshake)
class SUDP1Client:
    """
    The client half of sudp/1.

    @ivar pinned: the server keys this client trusts (L{pinnedKeys}).
    @ivar identity: the client's L{sudp.keys.Identity} to prove with
        CLIENT_AUTH, or None.
    """

    respType = P.HANDSHAKE_RESP
    signatureSize = P.SIGNATURE_SIZE

    def __init__(self, serverKeys, identity=None):
        self.pinned = () if serverKeys is None else pinnedKeys(serverKeys)
        self.identity = identity
        self._ephemeral = None

    def start(self, engine, now):
        """
        @return: None: sudp/1 needs no work before its HELLO.
        """
        return None

    def workFailed(self, job):  # pragma: no cover - sudp/1 asks for no work
        return HandshakeFailed("sudp/1 asked for no work")

    def makeInit(self, engine, timestamp, cookie):
        self._ephemeral = Ephemeral(engine.random(32))
        index = randomIndex(engine.random)
        init = P.HandshakeInit(
            index, timestamp, cookie, self._ephemeral.public, [s.suiteId for s in engine.config.suites],
        ).encode(padTo=P.HANDSHAKE_RESP_SIZE)  # a resent RESP is never larger than this INIT
        return index, init

    def decodeResp(self, data):
        return P.HandshakeResp.decode(data)

    def checkResp(self, engine, resp, respBytes, initBytes, now):
        answer = checkAnswer(self.pinned, initBytes, resp, self._ephemeral, engine.config.suites)
        confirm = b""
        if self.identity is not None:
            confirm = R.encodeRecord(R.CLIENT_AUTH, clientProof(self.identity, answer.keys.transcript))
        return Opening(answer.suite, resp.senderIndex, answer.keys, answer.serverKey, confirm)

    def checkRefusal(self, refused, initBytes, offered):
        if not self.pinned:  # nothing to check its signature with
            return None, "unexpected-refusal"
        error = checkRefusal(self.pinned, initBytes, refused, offered)
        return error, (None if error is not None else "bad-refusal")

    def bound(self, address):
        """
        sudp/1 binds nothing to the client's address.
        """
