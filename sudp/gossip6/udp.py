# -*- test-case-name: sudp_test.gossip6.test_udp -*-
"""
gossip6 on UDP: the halves the sudp/1 engines are given (sans-IO, like
sudp/1's, L{sudp.udp.sudp1}).

The handshake sits behind sudp/1's stateless cookie (HELLO, COOKIE), then
G6_INIT carries the client's m|s and G6_RESP the server's; the client's
CONFIRM and everything after are sudp/1 CONTROL and DATA packets of an
AES-256-GCM session (rekeys included, signed with the server's RSA key).

A proof of work is seconds of CPU at high difficulties: the halves never
compute one in a call. They ask their engine for off-thread work
(L{sudp.work.WorkNeeded} with a L{sudp.gossip6.proof.ProofJob}); whoever
drives the engine runs C{job.run()} (the Twisted adapters in a worker
thread) and then calls the engine's C{workDone(job, now)} (or
C{workFailed(job, now)}).
"""

import os

from zope.interface import implementer

from sudp.errors import HandshakeFailed
from sudp.interfaces import IDatagramClientHandshake, IDatagramServerHandshake
from sudp.gossip6.checks import ReuseRecord, checkSigned, trustStore
from sudp.gossip6.config import Gossip6Config
from sudp.gossip6.keys import SUITE, sessionKeys
from sudp.gossip6.proof import ProofJob
from sudp.gossip6.wire import G6_INIT, G6_RESP, Gossip6Init, Gossip6Resp
from sudp.udp.client import ClientEngine
from sudp.udp.config import Config
from sudp.udp.handshake import randomIndex
from sudp.udp.keyschedule import Ephemeral
from sudp.udp.server import ServerEngine
from sudp.udp.sudp1 import Opening


class Gossip6Refused(HandshakeFailed):
    """
    The server's gossip6 message broke one of the Gossip-6 spec's rules; C{reason}
    names it (C{untrusted-key}, C{bad-signature}, C{weak-proof},
    C{stale-timestamp}, C{future-timestamp}, C{wrong-address}).
    """

    def __init__(self, reason, detail=""):
        self.reason = reason
        HandshakeFailed.__init__(self, f"gossip6: the server's handshake was refused: {reason}"
                                       + (f" ({detail})" if detail else ""))


class _Half:
    """
    What both halves hold: the trusted keys, the options, and the addresses
    a peer may name as ours.

    @ivar trusted: DER SubjectPublicKeyInfo -> the trusted L{RSAPublicKey}.
    @ivar localAddresses: the C{(host, port)} pairs a peer may name as this
        side (the Gossip-6 spec's "Bob's P2P listening socket" and "Alice's
        P2P client socket"): the configured ones, else the socket's own
        (L{bound}).
    """

    def __init__(self, trustedKeys, gossip6):
        self.gossip6 = gossip6 or Gossip6Config()
        self.trusted = trustStore(trustedKeys)
        self.localAddresses = self.gossip6.localAddresses

    def bound(self, address):
        """
        Without configured localAddresses, answer to the socket's own.
        """
        if not self.localAddresses:
            self.localAddresses = (address,)


@implementer(IDatagramServerHandshake)
class Gossip6Server(_Half):
    """
    The server half: answers gossip6 handshakes (and only those).

    @ivar reuse: the L{ReuseRecord} of accepted proofs.
    """

    initType = G6_INIT

    def __init__(self, identity, trustedKeys, gossip6=None):
        """
        @param identity: the server's L{sudp.rsaidentity.RSAIdentity} (its
            engine's too: it signs the rekeys).
        @param trustedKeys: the clients' L{sudp.rsakeys.RSAPublicKey}s.
        @param gossip6: a L{Gossip6Config}.
        """
        _Half.__init__(self, trustedKeys, gossip6)
        self.signatureSize = identity.signatureSize
        self.reuse = ReuseRecord(self.gossip6.maxReuseRecords)

    def decodeInit(self, data):
        return Gossip6Init.decode(data)

    def answer(self, engine, init, initBytes, addr, now):
        reason, clientKey = checkSigned(init.signed, now, self.localAddresses, self.trusted, self.gossip6, self.reuse)
        if reason:
            engine.refuse(addr, reason)  # counted, and reported for the server's log
            return
        ephemeral = Ephemeral(engine.random(32))
        try:
            secret = ephemeral.exchange(init.signed.message.dhe)
        except HandshakeFailed:
            engine.drops["bad-ephemeral"] += 1
            return
        job = ProofJob(engine.identity, ephemeral.public, addr, int(now), self.gossip6, engine.random)
        job.context = engine.awaitWork(job, init, addr, now, (init, initBytes, clientKey, secret))
        engine.counters["proofs-started"] += 1

    def workDone(self, engine, pending, now):
        """
        The server's own proof is solved: send G6_RESP and keep the session
        pending until the client's CONFIRM.
        """
        init, initBytes, clientKey, secret = pending.context
        job = pending.job
        index = engine.newIndex()
        resp = Gossip6Resp(init.senderIndex, index, job.signed).encode()
        keys = sessionKeys(initBytes, resp, secret)
        engine.openPending(index, init.senderIndex, init.ephemeral, SUITE, keys, resp, pending.addr, now,
                           peerKey=clientKey)
        engine.counters["proof-attempts"] += job.attempts

    def workFailed(self, engine, pending, now):
        """
        The proof could not be made (cancelled, or the solver failed).
        """
        engine.drops["proof-failed"] += 1


@implementer(IDatagramClientHandshake)
class Gossip6Client(_Half):
    """
    The client half: it proves and signs its m first (the engine reports
    L{sudp.work.WorkNeeded}), then HELLO, COOKIE, G6_INIT, G6_RESP, CONFIRM.
    """

    respType = G6_RESP
    pinned = ()  # no Ed25519 key: the trusted RSA keys decide

    def __init__(self, identity, trustedKeys, gossip6=None):
        """
        @param identity: the client's L{sudp.rsaidentity.RSAIdentity}.
        @param trustedKeys: the servers' L{sudp.rsakeys.RSAPublicKey}s.
        """
        _Half.__init__(self, trustedKeys, gossip6)
        self.rsaIdentity = identity
        self.signatureSize = max((key.signatureSize for key in self.trusted.values()), default=0)
        self._job = self._ephemeral = None

    def start(self, engine, now):
        """
        @return: the proof of work of our m.
        """
        self._ephemeral = Ephemeral(engine.random(32))
        self._job = ProofJob(self.rsaIdentity, self._ephemeral.public, engine.serverAddr, int(now), self.gossip6,
                             engine.random)
        return self._job

    def workFailed(self, job):
        return HandshakeFailed("gossip6: the proof of work could not be made")

    def makeInit(self, engine, timestamp, cookie):
        index = randomIndex(engine.random)
        return index, Gossip6Init(index, timestamp, cookie, self._job.signed).encode()

    def decodeResp(self, data):
        return Gossip6Resp.decode(data)

    def checkResp(self, engine, resp, respBytes, initBytes, now):
        reason, serverKey = checkSigned(resp.signed, now, self.localAddresses, self.trusted, self.gossip6)
        if reason:
            engine.drops[reason] += 1
            raise Gossip6Refused(reason)
        secret = self._ephemeral.exchange(resp.signed.message.dhe)
        return Opening(SUITE, resp.senderIndex, sessionKeys(initBytes, respBytes, secret), serverKey)

    def checkRefusal(self, refused, initBytes, offered):
        """
        A gossip6 server never refuses a suite: a refusal is unexpected.
        """
        return None, "unexpected-refusal"


def gossip6ServerEngine(identity, trustedKeys, config=None, gossip6=None, cookieSecret=None, random=os.urandom):
    """
    @return: a L{ServerEngine} answering gossip6 handshakes (and only those)
        with a L{Gossip6Server} half.
    """
    return ServerEngine(identity, config or Config(suites=(SUITE,)), None, cookieSecret, random,
                        handshake=Gossip6Server(identity, trustedKeys, gossip6))


def gossip6ClientEngine(identity, trustedKeys, serverAddr, config=None, gossip6=None, random=os.urandom):
    """
    @return: a L{ClientEngine} running the gossip6 handshake with a
        L{Gossip6Client} half.
    """
    return ClientEngine(None, serverAddr, config or Config(suites=(SUITE,)), None, random,
                        handshake=Gossip6Client(identity, trustedKeys, gossip6))
