"""
gossip6 on UDP: server and client engines (sans-IO, like sudp/1's).

The handshake sits behind sudp/1's stateless cookie (HELLO, COOKIE), then
G6_INIT carries the client's m|s and G6_RESP the server's; the client's
CONFIRM and everything after are sudp/1 CONTROL and DATA packets of an
AES-256-GCM session (rekeys included, signed with the server's RSA key).

A proof of work is seconds of CPU at high difficulties: the engines never
compute one in a call. They report L{WorkNeeded} with a
L{sudp.gossip6.proof.ProofJob}; whoever drives the engine runs
C{job.run()} (the Twisted adapters in a worker thread) and then calls
C{workDone(job, now)} (or C{workFailed(job, now)}).
"""

import os

from sudp.errors import HandshakeFailed
from sudp.handshake import randomIndex
from sudp.gossip6.checks import ReuseRecord, checkSigned, trustStore
from sudp.gossip6.config import Gossip6Config
from sudp.gossip6.keys import SUITE, sessionKeys
from sudp.gossip6.proof import ProofJob
from sudp.gossip6.wire import Gossip6Init, Gossip6Resp
from sudp.udp import packets as P
from sudp.udp.client import IDLE, INIT_SENT, ClientEngine
from sudp.udp.config import Config
from sudp.work import WorkNeeded
from sudp.udp.keyschedule import Ephemeral
from sudp.udp.server import SOLVING, ServerEngine
from sudp.udp.timers import NEVER


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


class _Solving:
    """
    A server handshake whose answer is being proven: holds its slot among
    the pending handshakes until the proof is ready or the time is up.
    """

    state = SOLVING
    respBytes = None

    def __init__(self, engine, init, initBytes, addr, clientKey, ephemeral, secret, job, expires):
        self.engine = engine
        self.init = init
        self.initBytes = initBytes
        self.addr = addr
        self.clientKey = clientKey
        self.ephemeral = ephemeral
        self.secret = secret
        self.job = job
        self.remoteIndex = init.senderIndex
        self.expires = expires
        self.deadline = NEVER
        self.done = False

    def onTimer(self, now):
        if not self.done and now >= self.expires:
            self.engine._solved(self, now, expired=True)

    def evict(self, now):
        """
        Give this handshake's slot to a newcomer: the proof is cancelled.
        """
        if not self.done:
            self.engine._solved(self, now)
            self.job.cancel()
            self.engine.drops["pending-evicted"] += 1


class Gossip6ServerEngine(ServerEngine):
    """
    A server that answers gossip6 handshakes (and only those).

    @ivar trusted: DER SubjectPublicKeyInfo -> the trusted L{RSAPublicKey}.
    @ivar localAddresses: the C{(host, port)} pairs clients may name as
        this server (the Gossip-6 spec's "Bob's P2P listening socket"): the
        configured ones, else the adapter sets the socket's own.
    @ivar reuse: the L{ReuseRecord} of accepted proofs.
    """

    INIT_TYPE = P.G6_INIT

    def __init__(self, identity, trustedKeys, config=None, gossip6=None, cookieSecret=None, random=os.urandom):
        """
        @param identity: the server's L{sudp.rsakeys.RSAIdentity}.
        @param trustedKeys: the clients' L{sudp.rsakeys.RSAPublicKey}s.
        @param gossip6: a L{Gossip6Config}.
        """
        ServerEngine.__init__(self, identity, config or Config(suites=(SUITE,)), None, cookieSecret, random)
        self.gossip6 = gossip6 or Gossip6Config()
        self.trusted = trustStore(trustedKeys)
        self.localAddresses = self.gossip6.localAddresses
        self.reuse = ReuseRecord(self.gossip6.maxReuseRecords)

    def _decodeInit(self, data):
        return Gossip6Init.decode(data)

    def _answer(self, init, initBytes, addr, now):
        reason, clientKey = checkSigned(init.signed, now, self.localAddresses, self.trusted, self.gossip6, self.reuse)
        if reason:
            self.refuse(addr, reason)  # counted, and reported for the server's log
            return
        ephemeral = Ephemeral(self.random(32))
        try:
            secret = ephemeral.exchange(init.signed.message.dhe)
        except HandshakeFailed:
            self.drops["bad-ephemeral"] += 1
            return
        job = ProofJob(self.identity, ephemeral.public, addr, int(now), self.gossip6, self.random)
        solving = _Solving(self, init, initBytes, addr, clientKey, ephemeral, secret, job,
                           now + self.config.handshakeTimeout)
        job.context = solving
        self.byEphemeral[bytes(init.ephemeral)] = solving
        self.holdSlot(solving, addr)
        self.timers.arm(solving, solving.expires)
        self.counters["proofs-started"] += 1
        self.events.append(WorkNeeded(job))

    def workDone(self, job, now):
        """
        The server's own proof is solved: send G6_RESP and keep the session
        pending until the client's CONFIRM.
        """
        solving = job.context
        if solving.done:  # expired meanwhile, or the server shut down
            return
        self._solved(solving, now)
        index = self._newIndex()
        resp = Gossip6Resp(solving.init.senderIndex, index, job.signed).encode()
        keys = sessionKeys(solving.initBytes, resp, solving.secret)
        self._pending(index, solving.init.senderIndex, solving.init.ephemeral, SUITE, keys, resp, solving.addr, now,
                      peerKey=solving.clientKey)
        self.counters["proof-attempts"] += job.attempts

    def workFailed(self, job, now):
        """
        The proof could not be made (cancelled, or the solver failed).
        """
        if not job.context.done:
            self._solved(job.context, now)
            self.drops["proof-failed"] += 1

    def _solved(self, solving, now, expired=False):
        solving.done = True
        solving.deadline = NEVER
        if self.byEphemeral.get(bytes(solving.init.ephemeral)) is solving:
            del self.byEphemeral[bytes(solving.init.ephemeral)]
        self.releaseSlot(solving)
        if expired:
            solving.job.cancel()
            self.drops["handshake-expired"] += 1

    def shutdown(self, now):
        for solving in [s for s in self.byEphemeral.values() if s.state is SOLVING]:
            self._solved(solving, now)
            solving.job.cancel()
        ServerEngine.shutdown(self, now)


class Gossip6ClientEngine(ClientEngine):
    """
    A client that runs the gossip6 handshake: it proves and signs its m
    first (L{WorkNeeded}), then HELLO, COOKIE, G6_INIT, G6_RESP, CONFIRM.

    @ivar localAddresses: the C{(host, port)} pairs the server may name as
        this client (the Gossip-6 spec's "Alice's P2P client socket"): configured, or
        set by the adapter to the socket's own address.
    """

    RESP_TYPE = P.G6_RESP

    def __init__(self, identity, trustedKeys, serverAddr, config=None, gossip6=None, random=os.urandom):
        """
        @param identity: the client's L{sudp.rsakeys.RSAIdentity}.
        @param trustedKeys: the servers' L{sudp.rsakeys.RSAPublicKey}s.
        """
        ClientEngine.__init__(self, None, serverAddr, config or Config(suites=(SUITE,)), None, random)
        self.rsaIdentity = identity
        self.gossip6 = gossip6 or Gossip6Config()
        self.trusted = trustStore(trustedKeys)
        self.localAddresses = self.gossip6.localAddresses
        self._job = None

    def start(self, now):
        """
        Start the handshake clock and ask for the proof of work of our m.
        """
        if self.state is not IDLE:
            raise HandshakeFailed("the handshake was already started")
        self._expires = now + self.config.handshakeTimeout
        self.state = SOLVING
        self._ephemeral = Ephemeral(self.random(32))
        self._job = ProofJob(self.rsaIdentity, self._ephemeral.public, self.serverAddr, int(now), self.gossip6,
                             self.random)
        self.events.append(WorkNeeded(self._job))

    def workDone(self, job, now):
        """
        Our m|s is ready: start the cookie exchange.
        """
        if self.state is SOLVING and job is self._job:
            self._hello(now)

    def workFailed(self, job, now):
        if self.state is SOLVING and job is self._job:
            self._fail(HandshakeFailed("gossip6: the proof of work could not be made"), now)

    def _makeInit(self, timestamp, cookie):
        self._index = randomIndex(self.random)
        return Gossip6Init(self._index, timestamp, cookie, self._job.signed).encode()

    def _resp(self, data, now):
        resp = Gossip6Resp.decode(data)
        if self.state is not INIT_SENT or resp.receiverIndex != self._index:
            self.drops["unexpected-resp"] += 1
            return
        reason, serverKey = checkSigned(resp.signed, now, self.localAddresses, self.trusted, self.gossip6)
        if reason:
            self.drops[reason] += 1
            self._fail(Gossip6Refused(reason), now)
            return
        try:
            secret = self._ephemeral.exchange(resp.signed.message.dhe)
        except HandshakeFailed as e:
            self._fail(e, now)
            return
        self._confirming(SUITE, resp.senderIndex, sessionKeys(self._packet, data, secret), serverKey, b"", now)

    def _fail(self, error, now):
        if self._job is not None and self.state is SOLVING:
            self._job.cancel()
        ClientEngine._fail(self, error, now)


class Gossip6Setup:
    """
    What a C{sudp:} endpoint needs to run gossip6 instead of the sudp/1
    handshake: the trusted keys and the options.
    """

    def __init__(self, trustedKeys, config=None):
        self.trustedKeys = tuple(trustedKeys)
        self.config = config or Gossip6Config()

    def serverEngine(self, identity, config, cookieSecret=None):
        return Gossip6ServerEngine(identity, self.trustedKeys, config, self.config, cookieSecret)

    def clientEngine(self, identity, serverAddr, config):
        return Gossip6ClientEngine(identity, self.trustedKeys, serverAddr, config, self.config)

    def bound(self, engine, udpPort):
        """
        Without configured localAddresses, the engine answers to its socket's own.
        """
        if not engine.localAddresses:
            host = udpPort.getHost()
            engine.localAddresses = ((host.host, host.port),)
