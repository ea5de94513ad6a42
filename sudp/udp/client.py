# -*- test-case-name: sudp_test.udp.test_client -*-
"""
The sudp/1 client engine: sans-IO, no reactor, one session to one server.

Call C{start(now)}, then feed C{receiveDatagram(data, addr, now)} and
C{handleTimer(now)} at C{nextDeadline()} (the engine contract,
L{sudp.engine.IDatagramEngine}); after each call send C{datagramsToSend()} and
handle C{nextEvents()} (the adapter does this). The engine reports
L{SessionOpened} once the server has confirmed the session, or
L{HandshakeFailure} with a L{sudp.errors.HandshakeFailed}.

The handshake between the cookie and CONFIRM is the client half of a
handshake plug-in (L{sudp.interfaces.IDatagramClientHandshake}; sudp/1's
own, L{sudp.udp.sudp1.SUDP1Client}, unless another is given).
"""

import enum
import hmac
import os
from collections import Counter

from zope.interface import implementer

from sudp.engine import EngineOutput, IDatagramEngine
from sudp.udp.delivery import Delivery

from sudp.addresses import displayAddress
from sudp.errors import (
    ClientNotAuthorized,
    HandshakeFailed,
    HandshakeTimeout,
    MalformedPacket,
    ServerUnreachable,
    SessionClosed,
)
from sudp.keys import PublicKey
from sudp.udp import packets as P
from sudp.udp import records as R
from sudp.udp.config import Config
from sudp.udp.reset import isReset
from sudp.udp.events import HandshakeFailure, ServerKeyAnnounced
from sudp.udp.session import CLIENT, CONFIRMING, OPEN, Session
from sudp.udp.sudp1 import SUDP1Client
from sudp.work import WorkNeeded
from sudp.udp.ciphercache import CipherCache
from sudp.udp.datapath import BatchReceiver, fastPath
from sudp.udp.timers import NEVER, TimerQueue



class ClientState(enum.Enum):
    """
    Where a client's handshake stands.
    """

    IDLE = "idle"  # not started
    WORKING = "working"  # the handshake's off-thread work (sudp.work) runs before the HELLO
    HELLO_SENT = "hello-sent"
    INIT_SENT = "init-sent"
    CONFIRM_SENT = "confirm-sent"
    ESTABLISHED = "established"
    FAILED = "failed"


IDLE, WORKING, HELLO_SENT, INIT_SENT, CONFIRM_SENT, ESTABLISHED, FAILED = ClientState


@implementer(IDatagramEngine)
class ClientEngine(Delivery, BatchReceiver, EngineOutput):
    """
    @ivar session: the L{Session} once keys exist, else None.
    @ivar drops: a C{Counter} of dropped datagrams by reason.
    """

    def __init__(self, serverKey, serverAddr, config=None, identity=None, random=os.urandom, handshake=None,
                 learnServerKey=False):
        """
        @param serverKey: the server's L{sudp.keys.PublicKey}, or several
            (while the server rolls its key); the handshake fails unless
            the server proves it holds the private half of one (sudp/1's
            handshake; unused with C{handshake}).
        @param serverAddr: C{(host, port)} of the server.
        @param identity: an L{sudp.keys.Identity} to authenticate with, or
            None (sudp/1's handshake; unused with C{handshake}).
        @param handshake: the client half of the handshake to run (an
            L{sudp.interfaces.IDatagramClientHandshake}, from an
            L{sudp.interfaces.IHandshake}'s C{datagramClient(identity)});
            None: sudp/1's, with C{serverKey} and C{identity}.
        @param learnServerKey: trust on first use (sudp/1's handshake, no
            C{serverKey}): the HELLO asks the server for its public key and
            the key its COOKIE carries is the one the RESP must be signed
            with (protocol.md 5.7). Whoever answers the HELLO at
            C{serverAddr} is believed: the caller decides what to pin.
        """
        if learnServerKey and (serverKey or handshake is not None):
            raise ValueError("learnServerKey is for sudp/1's handshake with no server key pinned")
        self.learnServerKey = learnServerKey
        self.handshake = SUDP1Client(serverKey, identity) if handshake is None else handshake
        self.signatureSize = self.handshake.signatureSize  # the longest signature the server's rekeys carry
        # the pinned keys; serverKey: the one the server proved, once it has
        self.pinned = self.handshake.pinned
        self.serverKey = self.pinned[0] if self.pinned else None
        self.serverAddr = serverAddr
        self.config = config or Config()
        self.identity = identity
        self.random = random
        self.authorizedKeys = None
        self.state = IDLE
        self.session = None
        self._nonce = self._index = None  # the HELLO's nonce, this side's session index
        self._sessions = {}  # index -> session, for the C data path
        self._fast = fastPath(self._sessions, self.config.maxDatagramSize)
        self.timers = TimerQueue()
        self.ciphers = CipherCache(self.config.cipherCache)
        self.outbox = []
        self.events = []
        self.drops = Counter()
        self.counters = Counter()  # path validation, with followPeer
        self._packet = None  # the handshake packet being retransmitted
        self._retransmitAt = NEVER
        self._interval = self.config.retransmitInitial
        self._expires = NEVER
        self._failure = None
        self._announced = set()  # next server keys reported
        self._job = None  # the work the handshake asked for before the HELLO

    def drop(self, reason):
        self.drops[reason] += 1

    def bound(self, address):
        """
        The adapter's socket is bound to C{address} (C{(host, port)}): the
        handshake may bind its messages to it.
        """
        self.handshake.bound(address)

    @property
    def helloNonce(self):
        """
        The nonce of the HELLO sent (a COOKIE echoes it), or None before.
        """
        return self._nonce

    @property
    def handshakeIndex(self):
        """
        This side's session index once chosen (a RESP and every protected
        packet to this client carry it), or None before.
        """
        return self._index

    # -- handshake -----------------------------------------------------------

    def start(self, now):
        """
        Start the handshake clock and send HELLO, or first ask for the work
        the handshake needs (L{WorkNeeded}; the HELLO follows L{workDone}).
        """
        if self.state is not IDLE:
            raise HandshakeFailed("the handshake was already started")
        self._expires = now + self.config.handshakeTimeout
        self._job = self.handshake.start(self, now)
        if self._job is None:
            self._hello(now)
        else:
            self.state = WORKING
            self.events.append(WorkNeeded(self._job))

    def workDone(self, job, now):
        """
        The work the handshake asked for is done: start the cookie exchange.
        """
        if self.state is WORKING and job is self._job:
            self._hello(now)

    def workFailed(self, job, now):
        """
        The work the handshake asked for could not be done: the handshake fails.
        """
        if self.state is WORKING and job is self._job:
            self._fail(self.handshake.workFailed(job), now)

    def _hello(self, now):
        self._nonce = self.random(P.HELLO_NONCE_SIZE)
        self._send(HELLO_SENT, P.encodeHello(self._nonce, self.learnServerKey), now)

    def _send(self, state, packet, now):
        self.state = state
        self._packet = packet
        self._interval = self.config.retransmitInitial
        self._retransmitAt = now + self._interval
        self.outbox.append((packet, self.serverAddr))

    def receiveDatagram(self, data, addr, now):
        """
        Handle one datagram. Anything that does not authenticate is dropped
        and counted in L{drops}.
        """
        if len(data) > self.config.maxDatagramSize:
            self.drops["oversized"] += 1
            return
        try:
            t = P.packetType(data)
            if t & 0xFC == P.DATA:
                self._data(data, t, addr, now)
            elif t == P.COOKIE:
                self._cookie(data, now)
            elif t == self.handshake.respType:
                self._resp(data, now)
            elif t == P.STATELESS_RESET:
                self._statelessReset(data, now)
            elif t == P.HANDSHAKE_REFUSED:
                self._refused(data, now)
            else:
                self.drops["unexpected-type"] += 1
        except MalformedPacket as e:
            self.drops[e.reason] += 1

    def _data(self, data, t, addr, now):
        session = self.session
        if session is None:
            self.drops["no-session"] += 1
            return
        # the order of protocol.md 10.5: the header, the index, then the
        # length the session's suite needs
        _, index, seq = P.decodeDataHeader(data, 0)
        if index != session.localIndex:
            self.drops["unknown-session"] += 1
            return
        if len(data) < session.minimumPacket:
            self.drops["truncated"] += 1
            return
        session.receive(data, t, seq, addr, now)

    def _refused(self, data, now):
        refused = P.HandshakeRefused.decode(data)
        if self.state is not INIT_SENT or refused.receiverIndex != self._index:
            self.drops["unexpected-refusal"] += 1
            return
        error, dropped = self.handshake.checkRefusal(refused, self._packet, self.config.suites)
        if error is None:  # e.g. not signed by the server: anyone could have sent it
            self.drops[dropped] += 1
            return
        self._fail(error, now)

    def _statelessReset(self, data, now):
        session = self.session
        if session is not None and session.state is OPEN and isReset(data, session.resetToken):
            session.statelessReset(now)
        else:
            self.drops["bad-reset"] += 1

    def _cookie(self, data, now):
        nonce, timestamp, cookie = P.decodeCookie(data)
        if self.state is not HELLO_SENT or not hmac.compare_digest(nonce, self._nonce):
            self.drops["unexpected-cookie"] += 1
            return
        if self.learnServerKey and not self._learnKey(data, now):
            return
        self._index, init = self.handshake.makeInit(self, timestamp, cookie)
        self._send(INIT_SENT, init, now)

    def _learnKey(self, cookie, now):
        """
        Take the server's key from its COOKIE (trust on first use).

        @return: False if the handshake failed: the COOKIE carries no key.
        """
        raw = P.cookieServerKey(cookie)
        if raw is None:
            self._fail(HandshakeFailed(
                f"{displayAddress(self.serverAddr)} did not reveal its public key (it is not a sudp peer node, "
                f"or an older one): pin its key instead of trusting it on first use"), now)
            return False
        key = PublicKey(raw)
        self.handshake.pinned = self.pinned = (key,)
        self.serverKey = key
        return True

    def _resp(self, data, now):
        resp = self.handshake.decodeResp(data)
        if self.state is not INIT_SENT or resp.receiverIndex != self._index:
            self.drops["unexpected-resp"] += 1
            return
        try:
            opening = self.handshake.checkResp(self, resp, data, self._packet, now)
        except HandshakeFailed as e:
            self._fail(e, now)
            return
        self._confirming(opening, now)

    def _confirming(self, opening, now):
        """
        Keys exist: keep the session (confirming) and send the CONFIRM.
        """
        self.serverKey = serverKey = opening.serverKey
        self.session = Session(
            self, CLIENT, self.config, opening.suite, self._index, opening.remoteIndex, self.serverAddr,
            opening.keys, now, serverKey=serverKey, peerKey=serverKey,
        )
        self._sessions[self._index] = self.session
        self._confirm = opening.confirm + R.encodeRecord(R.CONFIRM)
        self.state = CONFIRM_SENT
        self._interval = self.config.retransmitInitial
        self._retransmitAt = now + self._interval
        self.session._sendControl(self._confirm, now)

    def _fail(self, error, now):
        if self.state in (FAILED, ESTABLISHED):
            return
        if self.state is WORKING:
            self._job.cancel()
        self.state = FAILED
        self._retransmitAt = self._expires = NEVER
        if self.session is not None and self.session.state is not OPEN:
            self.session.close(now, notify=False)
        self.events.append(HandshakeFailure(error))

    # -- called by the session -----------------------------------------------

    def nextServerKey(self, session, key):
        """
        Called by the session: the server proved C{key}, its next key.
        Report it (L{ServerKeyAnnounced}) once, unless it is pinned already.
        """
        if key in self.pinned or key in self._announced:
            return
        self._announced.add(key)
        self.events.append(ServerKeyAnnounced(session, key, self.serverKey))

    def sessionOpened(self, session):
        self.state = ESTABLISHED
        self._retransmitAt = self._expires = NEVER

    def sessionClosed(self, session, wasOpen):
        if not wasOpen and self.state is CONFIRM_SENT:
            if session.closeReason == "not-authorized":
                error = ClientNotAuthorized(f"the server refused this client: {session.closeText}")
            else:
                error = HandshakeFailed(f"the server ended the handshake: {session.closeReason} {session.closeText}")
            self._fail(error, 0)

    # -- timers and output ---------------------------------------------------

    def nextDeadline(self):
        """
        @return: when L{onTimer} should next be called, or None.
        """
        when = min(self._retransmitAt, self._expires)
        sessionWhen = self.timers.nextDeadline()
        if sessionWhen is not None and sessionWhen < when:
            when = sessionWhen
        return None if when == NEVER else when

    def onTimer(self, now):
        """
        Retransmit the handshake with exponential backoff, fail it on
        timeout, and run the session's timers.
        """
        if now >= self._expires:
            self._fail(HandshakeTimeout(self._timeoutText()), now)
        elif now >= self._retransmitAt:
            self._interval = min(self._interval * 2, self.config.retransmitMax)
            self._retransmitAt = now + self._interval
            if self.state is CONFIRM_SENT and self.session.state is CONFIRMING:
                self.session._sendControl(self._confirm, now)
            elif self.state in (HELLO_SENT, INIT_SENT):
                self.outbox.append((self._packet, self.serverAddr))
        for session in self.timers.due(now):
            if session.state is not CONFIRMING:
                session.onTimer(now)

    _STAGES = {
        HELLO_SENT: "no answer at all (is a sudp server running there? is the UDP port open in "
                    "firewalls on the way? does it run the handshake= this client runs?)",
        INIT_SENT: "the server answered the HELLO but not the HANDSHAKE_INIT (is it overloaded, "
                   "or refusing this client's address? see its log)",
        CONFIRM_SENT: "the server did not confirm the session (see its log)",
    }

    def _timeoutText(self):
        return (f"no handshake with {displayAddress(self.serverAddr)} within "
                f"{self.config.handshakeTimeout:g} s: {self._STAGES.get(self.state, self.state.value)}")

    def portUnreachable(self, now):
        """
        The server's host reported that nothing listens on the port (an
        ICMP port unreachable, seen on the client's connected socket).
        Before any answer from the server this fails the handshake at once
        with L{ServerUnreachable}; after one it is only counted
        (C{drops["port-unreachable"]}): anyone on the path can forge one.
        """
        if self.state is not HELLO_SENT:
            self.drops["port-unreachable"] += 1
            return
        host = displayAddress(self.serverAddr)
        self._fail(ServerUnreachable(
            f"no sudp server at {host}: the host answered that nothing listens on UDP port "
            f"{self.serverAddr[1]} (ICMP port unreachable); check that the server runs, the host "
            f"and port, and firewalls"), now)

    def sendMessage(self, session, message, now):
        """
        Send one application message on C{session} (this engine's one).

        @raise sudp.errors.MessageTooLarge: over the session's maxMessageSize.
        @raise sudp.errors.SessionClosed: if the session is not open (or
            the handshake has not made one).
        """
        if session is None:
            raise SessionClosed("not-open", "the handshake has not completed")
        EngineOutput.sendMessage(self, session, message, now)

    def sendMessages(self, session, messages, now):
        """
        Send each of C{messages} on C{session}, as a burst
        (L{sudp.engine.IDatagramEngine.sendMessages}).

        @raise sudp.errors.SessionClosed: if the handshake has not made a
            session (or it is not open).
        """
        if session is None:
            raise SessionClosed("not-open", "the handshake has not completed")
        EngineOutput.sendMessages(self, session, messages, now)

    def closeSession(self, session, now, text=""):
        """
        Close C{session} (telling the server) once it is open; before that
        (C{session} None or still confirming), abandon the handshake.
        """
        if session is not None and session.state is OPEN:
            EngineOutput.closeSession(self, session, now, text)
        else:
            self._fail(HandshakeFailed("the handshake was cancelled"), now)
