# -*- test-case-name: sudp_test.udp.test_session -*-
"""
An established (or confirming) sudp/1 session, shared by client and server:
sealing and opening packets, opening, timers and closing. The CONTROL
records are handled in L{sudp.udp.control}, rekeying in L{sudp.udp.rekey},
path validation in L{sudp.udp.path}, and what the receive path reads (the
C data path's contract) is in L{sudp.udp.receivestate}.

A session talks to its engine only through L{sudp.engine.ISessionHost}.
Security-relevant state (replay window, peer address, timers) changes only
after a packet has authenticated.
"""

from operator import attrgetter

from sudp.errors import MalformedPacket, MessageTooLarge, SessionClosed
from sudp.udp import records as R
from sudp.udp.control import ControlRecords
from sudp.udp.events import SessionEnded, SessionOpened
from sudp.udp.packets import CONTROL, DATA, DATA_HEADER, DATA_HEADER_SIZE
from sudp.udp.path import PathValidation
from sudp.udp.receivestate import KeyEpoch, ReceiveState, Role, SessionState
from sudp.udp.rekey import SERVER_REKEY_LAG, Rekeying
from sudp.udp.replay import Window
from sudp.udp.timers import NEVER

__all__ = [
    "CLIENT", "SERVER", "PENDING", "CONFIRMING", "OPEN", "CLOSED", "SERVER_REKEY_LAG",
    "KeyEpoch", "Role", "Session", "SessionState", "Window",
]

CLIENT, SERVER = Role.CLIENT, Role.SERVER
PENDING, CONFIRMING, OPEN, CLOSED = (
    SessionState.PENDING, SessionState.CONFIRMING, SessionState.OPEN, SessionState.CLOSED,
)

_pack = DATA_HEADER.pack


def _receiveField(name, doc):
    """
    @return: a property over the field C{name} of the session's
        L{ReceiveState}, where the value lives.
    """
    return property(attrgetter("receiveState." + name),
                    lambda self, value: setattr(self.receiveState, name, value), doc=doc)


class Session(ControlRecords, Rekeying, PathValidation):
    """
    @ivar host: the L{sudp.engine.ISessionHost} that owns this session.
    @ivar localIndex: the index the peer puts in packets to us.
    @ivar remoteIndex: the index we put in packets to the peer.
    @ivar peerKey: the peer's verified L{PublicKey}, or None (a server whose
        client did not authenticate).
    @ivar receiveState: the L{ReceiveState}: C{state}, C{peerAddr},
        C{probe}, C{epochs} and C{lastRecv} live there.
    @ivar rekey: the rekey in flight, a L{sudp.udp.rekey.ClientRekey} or
        L{sudp.udp.rekey.ServerRekey}, or None.
    @ivar rekeyAsk: (server) its L{sudp.udp.rekey.RekeyAsk}, or None.
    """

    __slots__ = (
        "host", "role", "config", "suite", "localIndex", "remoteIndex", "receiveState",
        "serverKey", "peerKey", "handshakeTranscript", "sendEpoch",
        "lastSend", "deadline", "rekey", "rekeyAsk", "closeReason", "closeText",
        "_closing", "pendingExpires", "maxMessageSize", "rekeyAfterMessages",
        "rejectAfterMessages", "stats", "minimumPacket", "rekeyTokens", "rekeyTokensAt",
        # kept by a server engine: the client's ephemeral key (replayed INITs
        # are recognised by it) and, while pending, the RESP to resend
        "clientEphemeral", "respBytes",
        # a client's stateless reset token from the server (sudp.udp.reset), or None
        "resetToken",
    )

    state = _receiveField("state", "the session's L{SessionState}")
    peerAddr = _receiveField(
        "peerAddr",
        "where packets go: the validated address of the peer. A server session starts on the "
        "cookie-proven address of its HANDSHAKE_INIT and moves only after path validation "
        "(L{sudp.udp.path}); a client session stays on the server's address.")
    probe = _receiveField("probe", "the L{sudp.udp.path.PathProbe} of an address being validated, or None")
    epochs = _receiveField("epochs", "the two L{KeyEpoch} slots (or None), by key phase bit")
    lastRecv = _receiveField("lastRecv", "when the last authenticated packet arrived")

    def __init__(self, host, role, config, suite, localIndex, remoteIndex, peerAddr,
                 keys, now, serverKey=None, peerKey=None):
        self.host = host
        self.role = role
        self.config = config
        self.suite = suite
        self.localIndex = localIndex
        self.remoteIndex = remoteIndex
        self.serverKey = serverKey  # verifies rekey responses (client side)
        self.peerKey = peerKey
        self.handshakeTranscript = keys.transcript
        first = KeyEpoch(keys, role, suite, config, now)
        self.sendEpoch = first
        self.lastSend = now
        self.deadline = NEVER
        self.rekey = None
        self.rekeyAsk = None
        self.closeReason = None
        self.closeText = ""
        self._closing = False
        self.pendingExpires = NEVER
        self.clientEphemeral = self.respBytes = None
        self.resetToken = None
        self.maxMessageSize = config.maxDatagramSize - DATA_HEADER_SIZE - suite.tagSize
        self.minimumPacket = DATA_HEADER_SIZE + suite.tagSize
        # usage limits: the configured ones, never past the suite's (RFC 9001 6.6)
        self.rekeyAfterMessages = min(config.rekeyAfterMessages, suite.confidentialityLimit // 2)
        self.rejectAfterMessages = min(config.rejectAfterMessages, suite.confidentialityLimit)
        self.stats = {"sent": 0, "received": 0, "rekeys": 0, "rekeysStarted": 0}
        self.rekeyTokens = float(config.rekeyBurst)
        self.rekeyTokensAt = now
        self.receiveState = ReceiveState(PENDING if role is SERVER else CONFIRMING, peerAddr,
                                         self.minimumPacket, self.stats, first, now)

    # -- sending ---------------------------------------------------------

    def _seal(self, kind, plaintext, now, to=None):
        """
        Seal and queue one packet, to the validated address, or to C{to}.
        While a new address is being validated, a copy also goes there
        within its amplification budget, so that a genuine NAT rebinding
        loses nothing (the peer's replay window drops the spare copy).

        @return: False (and the session is closed, or closing) if the key is
            exhausted: a sequence number is never used twice under a key.
        """
        ep = self.sendEpoch
        seq = ep.sendSeq
        if seq >= self.rejectAfterMessages:
            if not self._closing:
                self.close(now, R.CLOSE_KEY_EXHAUSTED, "no rekey before the key's limit", notify=False)
            return False
        ep.sendSeq = seq + 1
        header = _pack(kind | (ep.number & 1), self.remoteIndex, seq)
        sealer = ep.sealer
        if sealer is None:
            self.host.armCiphers(ep)
            sealer = ep.sealer
        packet = header + sealer.seal(seq, header, plaintext)
        queue = self.host.queueDatagram
        if to is None:
            rx = self.receiveState
            queue(packet, rx.peerAddr)
            probe = rx.probe
            if probe is not None and probe.allows(len(packet)):
                probe.charge(len(packet))
                queue(packet, probe.addr)
        else:
            queue(packet, to)
        self.lastSend = now
        if (kind == DATA and seq + 1 >= self.rekeyAfterMessages
                and self.rekey is None and self.rekeyAsk is None):
            # only application packets start a rekey by count, so the rekey's
            # own packets cannot start another (rejectAfterMessages still
            # bounds every packet)
            self._startRekey(now)
        return True

    def sendMessage(self, message, now):
        """
        Seal one application message into one DATA datagram.

        @raise MessageTooLarge: if C{message} is over L{maxMessageSize}.
        @raise SessionClosed: if the session is not open.
        """
        if self.receiveState.state is not OPEN:
            raise SessionClosed(self.closeReason or "not-open", "the session is not open")
        if len(message) > self.maxMessageSize:
            raise MessageTooLarge(len(message), self.maxMessageSize)
        if not self._seal(DATA, message, now):
            raise SessionClosed("key-exhausted", "the key reached rejectAfterMessages without a rekey")
        self.stats["sent"] += 1

    def _sendControl(self, recordBytes, now):
        self._seal(CONTROL, recordBytes, now)

    # -- receiving -------------------------------------------------------

    def receive(self, data, typeByte, seq, addr, now):
        """
        Handle a DATA or CONTROL datagram addressed to this session.
        """
        rx = self.receiveState
        ep = rx.epochs[typeByte & 1]
        if ep is None or rx.state is CLOSED:
            self.host.drop("no-key")
            return
        window = ep.window
        newest = seq > window.highest  # the common case needs no window lookup
        if not newest and not window.check(seq):
            self.host.drop("replay")
            return
        opener = ep.opener
        if opener is None:
            self.host.armCiphers(ep)
            opener = ep.opener
        try:
            plaintext = opener.open(seq, data[:DATA_HEADER_SIZE], data[DATA_HEADER_SIZE:])
        except MalformedPacket:
            ep.failures += 1
            self.host.drop("bad-tag")
            self._checkIntegrityLimit(ep, now)
            return
        # authenticated: now, and only now, state may change
        window.commit(seq)
        rx.lastRecv = now
        if rx.probe is not None or (addr != rx.peerAddr and rx.state is OPEN and
                                    (self.role is SERVER or self.config.followPeer)):
            self._heardFrom(addr, len(data), newest and ep.number >= self.sendEpoch.number, now)
        if not ep.heard:
            self._firstOnEpoch(ep, now)
        if typeByte & 2:
            self._control(plaintext, now, addr)
        elif rx.state is OPEN:  # the common case, inline
            self.stats["received"] += 1
            self.host.deliver(self, plaintext)
        else:
            self._deliver(plaintext, now)

    def _deliver(self, message, now):
        """
        Hand an authenticated application message on (the first one opens a
        confirming client's session).
        """
        if self.receiveState.state is CONFIRMING:
            self._open(now)
        if self.receiveState.state is OPEN:
            self.stats["received"] += 1
            self.host.deliver(self, message)
        else:
            self.host.drop("not-open")

    # -- opening ---------------------------------------------------------

    def _open(self, now):
        self.receiveState.state = OPEN
        self.respBytes = None  # only a pending session resends its RESP
        self.host.sessionOpened(self)
        self.host.reportEvent(SessionOpened(self))
        self._rearm(now)

    # -- timers ----------------------------------------------------------

    def _nextDeadline(self):
        if self.receiveState.state is PENDING:
            return self.pendingExpires
        c = self.config
        when = min(self.receiveState.lastRecv + c.idleTimeout, self.lastSend + c.keepaliveInterval,
                   self._probeDeadline(), self._rekeyDeadline())
        for ep in self.receiveState.epochs:
            if ep is not None and ep.retireAt < when:
                when = ep.retireAt
        return when

    def _rearm(self, now):
        if self.receiveState.state is not CLOSED:
            self.host.armTimer(self, self._nextDeadline())

    def onTimer(self, now):
        """
        Run whatever timers are due: expiry, idle timeout, key retirement,
        keepalive, rekey and its retransmission.
        """
        c = self.config
        rx = self.receiveState
        if rx.state is CLOSED:
            return
        if rx.state is PENDING:
            if now >= self.pendingExpires:
                self.close(now, R.CLOSE_PROTOCOL_ERROR, "handshake not confirmed", notify=False)
                self.host.drop("handshake-expired")
                return
        elif rx.state is OPEN:
            if now - rx.lastRecv >= c.idleTimeout:
                self.close(now, R.CLOSE_IDLE, "idle timeout")
                return
            epochs = rx.epochs
            for slot, ep in enumerate(epochs):
                if ep is not None and ep.retireAt <= now:
                    ep.wipe()
                    epochs[slot] = None
            self._rekeyTimers(now)
            self._probeTimers(now)
            if rx.state is OPEN and now - self.lastSend >= c.keepaliveInterval:
                self._sendControl(R.encodeRecord(R.KEEPALIVE), now)
        self._rearm(now)

    # -- closing ---------------------------------------------------------

    def close(self, now, code=R.CLOSE_NORMAL, text="", notify=True, byPeer=False, reason=None):
        """
        End the session: tell the peer (best effort) unless C{notify} is false,
        wipe every key, and report L{SessionEnded} if it had opened.

        @param reason: the reason reported, for an end no CLOSE code names
            (default: the code's).
        """
        rx = self.receiveState
        if rx.state is CLOSED or self._closing:
            return
        self._closing = True
        if notify:
            self._sendControl(R.encodeClose(code, text, self.maxMessageSize - R.RECORD_HEADER_SIZE), now)
        wasOpen = rx.state is OPEN
        if reason is None:
            reason = R.CLOSE_REASONS.get(code, "protocol-error")
            if code == R.CLOSE_NORMAL and not byPeer:
                reason = "closed"
        self.closeReason = reason
        self.closeText = text
        rx.state = CLOSED
        rx.probe = None
        self.deadline = NEVER  # any queued timer entry is now stale
        for ep in rx.epochs:
            if ep is not None:
                ep.wipe()
        rx.epochs = [None, None]
        self.host.sessionClosed(self, wasOpen)
        if wasOpen:
            self.host.reportEvent(SessionEnded(self, SessionClosed(reason, text)))

    def statelessReset(self, now):
        """
        The server sent a stateless reset carrying this session's token: it
        no longer knows the session. End it, sending nothing.
        """
        self.close(now, notify=False, reason="stateless-reset",
                   text="the server no longer knows this session (it restarted, or ended it "
                        "and its CLOSE was lost); connect again")

    def evict(self, now):
        """
        Give up this pending handshake for a newcomer (fair eviction, see
        L{sudp.udp.pending}): no CLOSE is sent, the client retries.
        """
        self.host.drop("pending-evicted")
        self.close(now, R.CLOSE_PROTOCOL_ERROR, "evicted for a newer handshake", notify=False)
