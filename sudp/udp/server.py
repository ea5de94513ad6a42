# -*- test-case-name: sudp_test.udp.test_server -*-
"""
The sudp/1 server engine: sans-IO, no reactor.

It keeps the engine contract (L{sudp.engine.IDatagramEngine}): feed it
C{receiveDatagram(data, addr, now)} and C{handleTimer(now)} at
C{nextDeadline()}; after each call, send the C{(datagram, addr)} pairs of
C{datagramsToSend()} and handle the events of C{nextEvents()} (the adapter
does this, with L{sudp.engine.drain}).

Before a valid cookie the server holds no per-client state at all: a HELLO is
answered with a smaller COOKIE computed from the address and the clock, and
everything else from an unvalidated address is dropped and counted.

The handshake behind the cookie is the server half of a handshake plug-in
(L{sudp.interfaces.IDatagramServerHandshake}; sudp/1's own,
L{sudp.udp.sudp1.SUDP1Server}, unless another is given): the engine admits
its INIT (cookie, replay, rate, pending slots) and the half answers it,
through the calls below (L{openPending}, L{awaitWork}, L{refuse}...).
"""

import os
from collections import Counter

from zope.interface import implementer

from sudp.engine import EngineOutput, IDatagramEngine
from sudp.udp.delivery import Delivery

from sudp.addresses import addressPrefix
from sudp.errors import MalformedPacket
from sudp.keys import Identity
from sudp.udp import packets as P
from sudp.udp.config import Config
from sudp.udp.cookie import CookieFactory
from sudp.udp.records import CLOSE_SHUTDOWN
from sudp.udp.session import OPEN, PENDING, SERVER, Session
from sudp.udp.datapath import BatchReceiver, fastPath
from sudp.udp.ciphercache import CipherCache
from sudp.udp.events import ClientRefused
from sudp.udp.pending import AwaitingWork, PendingSlots, PendingState
from sudp.udp.ratelimit import HandshakeRateLimiter
from sudp.udp.reset import RESET_KEY_LABEL, ResetTokens
from sudp.udp.sudp1 import SUDP1Server
from sudp.udp.timers import TimerQueue
from sudp.work import WorkNeeded

_DATA_MASK = 0xFC  # 0x18-0x1B: DATA and CONTROL, either key phase, version 1
_DATA = P.DATA
_HEADER_SIZE = P.DATA_HEADER_SIZE
_unpackHeader = P.DATA_HEADER.unpack_from


@implementer(IDatagramEngine)
class ServerEngine(Delivery, BatchReceiver, EngineOutput):
    """
    @ivar sessions: index -> L{Session}, pending and open.
    @ivar drops: a C{Counter} of dropped datagrams by reason.
    """

    def __init__(self, identity, config=None, authorizedKeys=None, cookieSecret=None, random=os.urandom,
                 nextIdentity=None, handshake=None):
        """
        @param identity: the server's L{sudp.keys.Identity}.
        @param authorizedKeys: None (any client), or a collection of
            L{sudp.keys.PublicKey} that clients must prove.
        @param cookieSecret: the cookie master key; workers of one server
            share it. Random by default.
        @param random: a function C{n -> n random bytes}; tests fix it.
        @param nextIdentity: while rolling the server's key, the
            L{sudp.keys.Identity} it will use next: each client is told of
            it, with proof (protocol.md 9.4), and the handshake stays signed
            by C{identity}.
        @param handshake: the server half of the handshake to answer (an
            L{sudp.interfaces.IDatagramServerHandshake}, from an
            L{sudp.interfaces.IHandshake}'s C{datagramServer()}); None:
            sudp/1's own.
        """
        self.identity = identity
        self.nextIdentity = nextIdentity
        self.config = config or Config()
        self._maxDatagram = self.config.maxDatagramSize
        self.authorizedKeys = None if authorizedKeys is None else frozenset(authorizedKeys)
        self.random = random
        self.cookies = CookieFactory(cookieSecret or random(32), self.config.cookieRotation)
        self.sessions = {}
        self.byEphemeral = {}  # client ephemeral -> its session, while the session lives
        self.pending = PendingSlots(self.config.maxPendingHandshakes)
        self.openCount = 0
        self.timers = TimerQueue()
        self.ciphers = CipherCache(self.config.cipherCache)
        self.limiter = HandshakeRateLimiter(self.config.handshakesPerSecond, self.config.handshakeBurst)
        self.resets = ResetTokens(identity.deriveSecret(RESET_KEY_LABEL), self.config.resetsPerSecond,
                                  self.config.resetBurst)
        self.outbox = []
        self.events = []
        self.drops = Counter()
        self.counters = Counter()
        self._fast = fastPath(self.sessions, self._maxDatagram)
        self.handshake = SUDP1Server() if handshake is None else handshake
        self.signatureSize = self.handshake.signatureSize  # the longest signature its rekeys carry
        self.working = {}  # job -> the AwaitingWork waiting for it

    @property
    def pendingCount(self):
        """
        How many handshakes are pending (answered, not yet confirmed).
        """
        return len(self.pending)

    # -- bookkeeping used by sessions --------------------------------------

    def drop(self, reason):
        self.drops[reason] += 1

    def refuse(self, addr, reason, peerKey=None, suite=None):
        """
        Count a cookie-proven client refused for C{reason} and report it
        (L{ClientRefused}) so that the adapter can log it.
        """
        self.drops[reason] += 1
        self.events.append(ClientRefused(addr, reason, peerKey, suite))

    def prefixOf(self, addr):
        """
        @return: the source prefix C{addr} counts in for the handshake rate
            and the fair share of pending handshakes.
        """
        try:
            return addressPrefix(addr[0], self.config.handshakePrefixV4, self.config.handshakePrefixV6)
        except ValueError:  # not a numeric address (an engine driven by hand)
            return addr[0]

    def holdSlot(self, entry, addr):
        """
        Let a pending handshake (a L{Session}, or an L{AwaitingWork}) hold a
        slot counted for C{addr}'s prefix.
        """
        self.pending.add(entry, self.prefixOf(addr))

    def releaseSlot(self, entry):
        """
        Give a pending handshake's slot back.
        """
        self.pending.remove(entry)

    def sessionOpened(self, session):
        self.releaseSlot(session)
        self.openCount += 1
        self.counters["sessions-opened"] += 1

    def sessionClosed(self, session, wasOpen):
        if self.sessions.get(session.localIndex) is session:
            del self.sessions[session.localIndex]
        if self.byEphemeral.get(session.clientEphemeral) is session:
            del self.byEphemeral[session.clientEphemeral]
        if wasOpen:
            self.openCount -= 1
        else:
            self.releaseSlot(session)

    # -- input -------------------------------------------------------------

    def receiveDatagram(self, data, addr, now):
        """
        Handle one datagram from C{addr} (a C{(host, port)} tuple).
        Unauthenticated junk is dropped and counted in L{drops}; nothing raises.
        """
        size = len(data)
        if size > self._maxDatagram:
            self.drops["oversized"] += 1
            return
        if size and data[0] & _DATA_MASK == _DATA:
            # the hot path
            if size < _HEADER_SIZE:
                self.drops["truncated"] += 1
                return
            typeByte, index, seq = _unpackHeader(data)
            session = self.sessions.get(index)
            if session is None:
                self.drops["unknown-session"] += 1
                self._reset(data, index, addr, now)
                return
            if size < session.minimumPacket:
                self.drops["truncated"] += 1
                return
            session.receive(data, typeByte, seq, addr, now)
            return
        try:
            t = P.packetType(data)
            if t == P.HELLO:
                self._hello(data, addr, now)
            elif t == self.handshake.initType:
                self._init(data, addr, now)
            else:
                self.drops["unexpected-type"] += 1
        except MalformedPacket as e:
            self.drops[e.reason] += 1

    def _reset(self, data, index, addr, now):
        """
        Answer a protected packet for an index with no session with a
        stateless reset (L{sudp.udp.reset}), smaller than it and within the
        server's rate.
        """
        reset = self.resets.answer(data, index, addr, now)
        if reset is not None:
            self.outbox.append((reset, addr))
            self.counters["resets-sent"] += 1

    def resetToken(self, session):
        """
        @return: the stateless reset token of C{session}, for its current
            (validated) address.
        """
        return self.resets.token(session.localIndex, session.peerAddr)

    def _hello(self, data, addr, now):
        nonce = P.decodeHello(data)
        timestamp, cookie = self.cookies.make(addr[0], addr[1], now)
        key = b""
        if self.config.revealKey and P.helloAsksKey(data) and isinstance(self.identity, Identity):
            key = self.identity.publicKey.raw  # still smaller than the HELLO (protocol.md 5.7)
            self.counters["keys-revealed"] += 1
        self.outbox.append((P.encodeCookie(nonce, timestamp, cookie, key), addr))
        self.counters["cookies-sent"] += 1

    def _init(self, data, addr, now):
        init = self.handshake.decodeInit(data)
        if self._admit(init, addr, now, len(data)):
            self.handshake.answer(self, init, data, addr, now)

    def _admit(self, init, addr, now, size):
        """
        What every handshake passes before the server does any work for it:
        the cookie, a retransmission or replay, the rate per source prefix,
        the limits on pending handshakes (with fair eviction) and sessions.

        @param size: the INIT's length in bytes: a RESP is resent only to an
            INIT at least as long, so a replayed INIT amplifies nothing.
        @return: True if the INIT may be answered.
        """
        problem = self.cookies.check(addr[0], addr[1], init.timestamp, init.cookie, now)
        if problem:
            self.drops[problem] += 1
            return False
        # the address is proven; from here on state may be kept
        known = self.byEphemeral.get(init.ephemeral)
        if known is not None:
            if known.remoteIndex == init.senderIndex and known.state is PENDING:
                if size < len(known.respBytes):
                    # an unpadded INIT again: maybe replayed at a victim
                    self.drops["init-too-short-for-resend"] += 1
                else:
                    self.outbox.append((known.respBytes, addr))  # our RESP was lost
                    self.counters["resp-retransmitted"] += 1
            elif known.remoteIndex == init.senderIndex and known.state is PendingState.WORKING:
                self.counters["init-while-solving"] += 1  # the answer is on its way
            else:  # a replayed INIT of a session that exists: no new work, no reply
                self.drops["duplicate-ephemeral"] += 1
            return False
        prefix = self.prefixOf(addr)
        if not self.limiter.allow(prefix, now):
            # one proven source may not take every pending slot
            self.refuse(addr, "rate-limited")
            return False
        if self.pending.full():
            victim = self.pending.victimFor(prefix)
            if victim is None:
                self.refuse(addr, "too-many-pending")
                return False
            # the oldest handshake of the source holding the most slots gives way
            self.counters["pending-evicted"] += 1
            victim.evict(now)
        if self.openCount + self.pendingCount >= self.config.maxSessions:
            self.refuse(addr, "server-full")
            return False
        return True

    # -- what a handshake half calls ----------------------------------------

    def queueDatagram(self, datagram, addr):
        """
        Send C{datagram} to C{addr} (an answer that opens no session).
        """
        self.outbox.append((datagram, addr))

    def newIndex(self):
        """
        @return: a fresh session index: random, 32 bits, not 0, unused.
        """
        while True:
            index = int.from_bytes(self.random(4), "big")
            if index and index not in self.sessions:
                return index

    def openPending(self, index, remoteIndex, clientEphemeral, suite, keys, resp, addr, now, peerKey=None):
        """
        Keep a pending session (RESP sent, CONFIRM awaited) and send its RESP.

        @param index: this side's index (L{newIndex}), C{remoteIndex} the client's.
        @param clientEphemeral: the client's ephemeral key (an INIT carrying
            it again is a retransmission or a replay).
        @param keys: the epoch-0 L{sudp.udp.keyschedule.EpochKeys}.
        @param resp: the encoded answer, resent if the INIT comes again.
        @param peerKey: the client's key, if the handshake verified it
            (no CLIENT_AUTH is then accepted).
        @return: the pending L{Session}.
        """
        session = Session(self, SERVER, self.config, suite, index, remoteIndex, addr, keys, now, peerKey=peerKey)
        session.clientEphemeral = bytes(clientEphemeral)
        session.respBytes = resp
        session.pendingExpires = now + self.config.handshakeTimeout
        self.sessions[index] = session
        self.byEphemeral[session.clientEphemeral] = session
        self.holdSlot(session, addr)
        self.timers.arm(session, session.pendingExpires)
        self.outbox.append((resp, addr))
        self.counters["handshakes"] += 1
        return session

    def awaitWork(self, job, init, addr, now, context=None):
        """
        Hold C{init}'s pending slot while C{job} runs off the reactor thread,
        and report L{WorkNeeded}; the half hears of it again in its
        C{workDone(engine, pending, now)} (or C{workFailed}), unless the
        handshake times out or is evicted first (the job is then cancelled).

        @param context: what the half needs to finish (C{pending.context}).
        @return: the L{AwaitingWork}.
        """
        pending = AwaitingWork(self, job, init.senderIndex, init.ephemeral, addr,
                               now + self.config.handshakeTimeout, context)
        pending.hold()
        self.events.append(WorkNeeded(job))
        return pending

    def workDone(self, job, now):
        """
        Off-thread work the handshake asked for is done: it answers now
        (unless the handshake expired, was evicted or the server shut down).
        """
        pending = self.working.get(job)
        if pending is not None and pending.end():
            self.handshake.workDone(self, pending, now)

    def workFailed(self, job, now):
        """
        The work could not be done (cancelled, or it raised).
        """
        pending = self.working.get(job)
        if pending is not None and pending.end():
            self.handshake.workFailed(self, pending, now)

    def bound(self, address):
        """
        The adapter's socket is bound to C{address} (C{(host, port)}): the
        handshake may bind its messages to it.
        """
        self.handshake.bound(address)

    # -- timers and output ---------------------------------------------------

    def nextDeadline(self):
        """
        @return: when L{onTimer} should next be called, or None.
        """
        return self.timers.nextDeadline()

    def onTimer(self, now):
        """
        Run every timer that is due.
        """
        for session in self.timers.due(now):
            session.onTimer(now)

    def shutdown(self, now):
        """
        Close every session, telling each client the server is going away,
        and cancel the work pending handshakes wait for.
        """
        for pending in list(self.working.values()):
            pending.end()
            pending.job.cancel()
        for session in list(self.sessions.values()):
            session.close(now, CLOSE_SHUTDOWN, "server shutting down", notify=session.state is OPEN)

    def stats(self):
        """
        @return: a dict of counters: sessions, pending handshakes, drops by reason.
        """
        return {
            "sessions": self.openCount,
            "pending": self.pendingCount,
            "drops": dict(self.drops),
            **dict(self.counters),
        }

