"""
An established (or confirming) sudp/1 session, shared by client and server:
the data path, CONTROL records, rekeying, keepalive and idle timers.

Security-relevant state (replay window, peer address, timers) changes only
after a packet has authenticated.
"""

from sudp.errors import ClientNotAuthorized, MalformedPacket, MessageTooLarge, SessionClosed
from sudp.udp.handshake import checkClientProof
from sudp.udp import records as R
from sudp.udp.events import ClientRefused, MessageReceived, SessionEnded, SessionOpened
from sudp.keys import PublicKey
from sudp.udp.keyschedule import (
    NEXT_KEY_SIGNATURE_LABEL,
    REKEY_SIGNATURE_LABEL,
    Ephemeral,
    deriveKeys,
    rekeyTranscript,
)
from sudp.udp.packets import CONTROL, DATA, DATA_HEADER, DATA_HEADER_SIZE
from sudp.udp.path import CHALLENGE_SIZE, PathProbe
from sudp.udp.replay import Window
from sudp.udp.timers import NEVER

CLIENT = "client"
SERVER = "server"

PENDING = "pending"  # server: RESP sent, waiting for the client's CONFIRM
CONFIRMING = "confirming"  # client: keys derived, waiting for the server's first packet
OPEN = "open"
CLOSED = "closed"

SERVER_REKEY_LAG = 10.0  # the server asks for a rekey this long after the client would start one

_pack = DATA_HEADER.pack


class KeyEpoch:
    """
    One direction pair of keys with its own sequence numbers and replay window.
    """

    __slots__ = (
        "number", "keys", "suite", "role", "sealer", "opener", "window", "sendSeq",
        "created", "failures", "retireAt", "heard",
    )

    def __init__(self, keys, role, suite, config, now):
        self.number = keys.epoch
        self.keys = keys
        self.suite = suite
        self.role = role
        # the keyed cipher objects are made on first use and may be given back
        # for room (sudp.udp.ciphercache); the keys stay in self.keys
        self.sealer = self.opener = None
        self.window = Window(config.replayWindow, config.ordering == "strict")
        self.sendSeq = 0
        self.created = now
        self.failures = 0
        self.retireAt = NEVER
        self.heard = False  # has an authenticated packet arrived under this epoch?

    def makeCiphers(self):
        """
        Make this epoch's sealing and opening objects from its keys.
        """
        keys = self.keys
        send, recv = (keys.c2s, keys.s2c) if self.role == CLIENT else (keys.s2c, keys.c2s)
        self.sealer = self.suite.newCipher(send)
        self.opener = self.suite.newCipher(recv)

    def wipe(self):
        self.keys.wipe()
        self.sealer = self.opener = None
        self.suite = None  # a wiped epoch can never make ciphers again


class Session:
    """
    @ivar localIndex: the index the peer puts in packets to us.
    @ivar remoteIndex: the index we put in packets to the peer.
    @ivar peerAddr: where packets go: the validated address of the peer. A
        server session starts on the cookie-proven address of its
        HANDSHAKE_INIT and moves only after path validation
        (L{sudp.udp.path}); a client session stays on the server's address.
    @ivar probe: the L{PathProbe} of an address being validated, or None.
    @ivar peerKey: the peer's verified L{PublicKey}, or None (a server whose
        client did not authenticate).
    """

    __slots__ = (
        "engine", "role", "config", "suite", "localIndex", "remoteIndex", "peerAddr",
        "serverKey", "peerKey", "handshakeTranscript", "state", "epochs", "sendEpoch",
        "lastRecv", "lastSend", "deadline", "rekey", "rekeyAsk", "closeReason", "closeText",
        "_closing", "pendingExpires", "maxMessageSize", "rekeyAfterMessages",
        "rejectAfterMessages", "stats", "minimumPacket", "probe", "rekeyTokens", "rekeyTokensAt",
        # kept by a server engine: the client's ephemeral key (replayed INITs
        # are recognised by it) and, while pending, the RESP to resend
        "clientEphemeral", "respBytes",
        # a client's stateless reset token from the server (sudp.udp.reset), or None
        "resetToken",
    )

    def __init__(self, engine, role, config, suite, localIndex, remoteIndex, peerAddr,
                 keys, now, serverKey=None, peerKey=None):
        self.engine = engine
        self.role = role
        self.config = config
        self.suite = suite
        self.localIndex = localIndex
        self.remoteIndex = remoteIndex
        self.peerAddr = peerAddr
        self.serverKey = serverKey  # verifies rekey responses (client side)
        self.peerKey = peerKey
        self.handshakeTranscript = keys.transcript
        self.state = PENDING if role == SERVER else CONFIRMING
        first = KeyEpoch(keys, role, suite, config, now)
        self.epochs = [first, None]
        self.sendEpoch = first
        self.lastRecv = now
        self.lastSend = now
        self.deadline = NEVER
        self.rekey = None  # client: (epoch, Ephemeral, nextRetransmit); server: (epoch, clientEph, record)
        self.rekeyAsk = None  # server: (epoch, nextRetransmit)
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
        self.probe = None
        self.rekeyTokens = float(config.rekeyBurst)
        self.rekeyTokensAt = now

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
            self.engine.ciphers.arm(ep)
            sealer = ep.sealer
        packet = header + sealer.seal(seq, header, plaintext)
        probe = self.probe
        if to is None:
            self.engine.outbox.append((packet, self.peerAddr))
            if probe is not None and probe.allows(len(packet)):
                probe.charge(len(packet))
                self.engine.outbox.append((packet, probe.addr))
        else:
            self.engine.outbox.append((packet, to))
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
        if self.state is not OPEN:
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
        ep = self.epochs[typeByte & 1]
        if ep is None or self.state is CLOSED:
            self.engine.drop("no-key")
            return
        window = ep.window
        newest = seq > window.highest  # the common case needs no window lookup
        if not newest and not window.check(seq):
            self.engine.drop("replay")
            return
        opener = ep.opener
        if opener is None:
            self.engine.ciphers.arm(ep)
            opener = ep.opener
        try:
            plaintext = opener.open(seq, data[:DATA_HEADER_SIZE], data[DATA_HEADER_SIZE:])
        except MalformedPacket:
            ep.failures += 1
            self.engine.drop("bad-tag")
            self._checkIntegrityLimit(ep, now)
            return
        # authenticated: now, and only now, state may change
        window.commit(seq)
        self.lastRecv = now
        if self.probe is not None or (addr != self.peerAddr and self.role == SERVER and self.state is OPEN):
            self._heardFrom(addr, len(data), newest and ep.number >= self.sendEpoch.number, now)
        if not ep.heard:
            self._firstOnEpoch(ep, now)
        if typeByte & 2:
            self._control(plaintext, now, addr)
        else:
            if self.state is CONFIRMING:
                self._open(now)
            if self.state is OPEN:
                self.stats["received"] += 1
                self.engine.events.append(MessageReceived(self, plaintext))
            else:
                self.engine.drop("not-open")

    # -- path validation (server) -------------------------------------------

    def _heardFrom(self, addr, size, current, now):
        """
        An authenticated packet of C{size} bytes came from C{addr}. From the
        validated address while another is being validated, and the newest
        of a current key: the other address is given up. From another
        address: count it toward that address's budget, and validate the
        address if the packet is the newest of a current key (a delayed copy
        replayed from elsewhere starts nothing).
        """
        probe = self.probe
        if addr == self.peerAddr:
            if current:
                # the newest packet came from the validated address: the peer
                # is there after all, so the other address gets nothing more
                self.probe = None
                self.engine.drop("path-abandoned")
            return
        if probe is not None and probe.addr == addr:
            probe.received += size
            return
        if not current:
            self.engine.drop("stale-from-new-address")
            return
        # a newer path replaces one still being validated (RFC 9000 9.3)
        self.probe = PathProbe(addr, size, now, self.config.pathValidationTimeout)
        self.engine.counters["path-probes"] += 1
        self._challenge(now)

    def _challenge(self, now):
        """
        Send a fresh PATH_CHALLENGE to the probed address, if its budget
        allows (else the next packet from it, or the timer, tries again).
        """
        probe = self.probe
        probe.retransmitAt = now + self.config.retransmitInitial
        size = DATA_HEADER_SIZE + R.RECORD_HEADER_SIZE + CHALLENGE_SIZE + self.suite.tagSize
        if not probe.allows(size):
            self.engine.drop("path-budget")
            self._rearm(now)
            return
        challenge = self.engine.random(CHALLENGE_SIZE)
        probe.addChallenge(challenge)
        probe.charge(size)
        self.engine.counters["path-challenges"] += 1
        self._seal(CONTROL, R.encodeRecord(R.PATH_CHALLENGE, challenge), now, to=probe.addr)
        self._rearm(now)

    def _onPathResponse(self, value, addr, now):
        probe = self.probe
        if probe is None or probe.addr != addr or not probe.answers(value):
            self.engine.drop("path-response-mismatch")
            return
        self.peerAddr = addr
        self.probe = None
        self.engine.counters["paths-validated"] += 1
        token = self._resetTokenRecord()
        if token:  # the token is bound to the address: the client gets the new one
            self._sendControl(token, now)

    def _resetTokenRecord(self):
        """
        @return: a server's RESET_TOKEN record for this session at its
            current address, or nothing if its engine makes no tokens.
        """
        tokenFor = getattr(self.engine, "resetToken", None)
        return b"" if tokenFor is None else R.encodeRecord(R.RESET_TOKEN, tokenFor(self))

    def _nextKeyRecord(self):
        """
        @return: a server's NEXT_SERVER_KEY record: its next public key and
            that key's signature of this handshake's transcript, or nothing
            if it announces none.
        """
        nextIdentity = getattr(self.engine, "nextIdentity", None)
        if nextIdentity is None:
            return b""
        proof = nextIdentity.sign(NEXT_KEY_SIGNATURE_LABEL + self.handshakeTranscript)
        return R.encodeRecord(R.NEXT_SERVER_KEY, nextIdentity.publicKey.raw + proof)

    def _onNextServerKey(self, value):
        """
        (Client) The server announced its next key: believe it if that key
        signed this session's transcript (so the server holding the pinned
        key also holds it), and report it once if it is not pinned yet.
        """
        key = PublicKey(bytes(value[:32]))
        if not key.verify(bytes(value[32:]), NEXT_KEY_SIGNATURE_LABEL + self.handshakeTranscript):
            self.engine.drop("bad-next-key")
            return
        self.engine.nextServerKey(self, key)

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
        self.engine.drop("pending-evicted")
        self.close(now, R.CLOSE_PROTOCOL_ERROR, "evicted for a newer handshake", notify=False)

    def _checkIntegrityLimit(self, ep, now):
        """
        RFC 9001 6.6: rekey once half the suite's integrity limit of failed
        opens is reached under a key; close at the limit.
        """
        limit = self.suite.integrityLimit
        if ep.failures >= limit:
            self.close(now, R.CLOSE_PROTOCOL_ERROR, "integrity limit reached")
        elif (ep.failures >= limit // 2 and ep is self.sendEpoch and self.state is OPEN
              and self.rekey is None and self.rekeyAsk is None):
            self._startRekey(now)

    def _firstOnEpoch(self, ep, now):
        ep.heard = True
        previous = self.epochs[(ep.number + 1) & 1]
        if previous is not None and previous.number == ep.number - 1:
            if self.sendEpoch is previous:  # server: the client has switched
                self.sendEpoch = ep
                self.rekey = None
                self.stats["rekeys"] += 1
            previous.retireAt = now + self.config.oldKeyGrace
            self._rearm(now)

    def _control(self, plaintext, now, addr=None):
        try:
            recs = R.decodeRecords(plaintext, self.engine.signatureSize)
        except MalformedPacket as e:
            self.engine.drop(e.reason)
            self.close(now, R.CLOSE_PROTOCOL_ERROR, f"malformed records: {e}")
            return
        if self.role == SERVER and self.state is PENDING:
            # the records that open the session come first, whatever their order
            auths = [v for t, v in recs if t == R.CLIENT_AUTH]
            if any(t == R.CONFIRM for t, _ in recs):
                self._onConfirm(auths, now)
                if self.state is CLOSED:
                    return
        for rtype, value in recs:
            if rtype == R.APP_DATA:
                if self.state is CONFIRMING:
                    self._open(now)
                if self.state is OPEN:
                    self.stats["received"] += 1
                    self.engine.events.append(MessageReceived(self, value))
                else:
                    self.engine.drop("not-open")
            elif rtype == R.CLOSE:
                code, text = R.decodeClose(value)
                self.close(now, code, text, notify=False, byPeer=True)
                return
            elif rtype == R.CONFIRM and self.role == SERVER and self.state is OPEN:
                # answer every CONFIRM, so a lost answer is made good by the
                # client's retransmission; the answer carries the reset token
                # and, while the server rolls its key, its next key
                self._sendControl(R.encodeRecord(R.KEEPALIVE) + self._resetTokenRecord()
                                  + self._nextKeyRecord(), now)
            elif rtype == R.REKEY_REQUEST:
                self._onRekeyRequest(value, now)
            elif rtype == R.REKEY_RESPONSE:
                self._onRekeyResponse(value, now)
            elif rtype == R.PATH_CHALLENGE:
                if self.role == CLIENT:
                    self._sendControl(R.encodeRecord(R.PATH_RESPONSE, value), now)
                else:  # only servers validate paths
                    self.engine.drop("unexpected-path-challenge")
            elif rtype == R.PATH_RESPONSE:
                self._onPathResponse(value, addr, now)
            elif rtype == R.RESET_TOKEN:
                if self.role == CLIENT:
                    self.resetToken = bytes(value)
            elif rtype == R.NEXT_SERVER_KEY:
                if self.role == CLIENT:
                    self._onNextServerKey(value)
            if self.state is CLOSED:
                return
        if self.state is CONFIRMING:
            self._open(now)

    # -- opening ---------------------------------------------------------

    def _onConfirm(self, auths, now):
        """
        @param auths: the values of the CONFIRM packet's CLIENT_AUTH records.
        """
        try:
            if len(auths) > 1:
                raise ClientNotAuthorized("more than one CLIENT_AUTH record")
            auth = auths[0] if auths else None
            if self.peerKey is not None:
                # the handshake authenticated the client already (gossip6):
                # that identity stays, no other key may replace it
                if auth is not None:
                    raise ClientNotAuthorized("this handshake authenticated the client; CLIENT_AUTH is refused")
            else:
                self.peerKey = checkClientProof(auth, self.handshakeTranscript, self.engine.authorizedKeys)
        except ClientNotAuthorized as e:
            if "signature" in str(e):
                self.engine.drop("bad-client-signature")
            self.engine.events.append(ClientRefused(self.peerAddr, "not-authorized: " + str(e), suite=self.suite))
            self.close(now, R.CLOSE_NOT_AUTHORIZED, str(e))
            return
        self._open(now)

    def _open(self, now):
        self.state = OPEN
        self.respBytes = None  # only a pending session resends its RESP
        self.engine.sessionOpened(self)
        self.engine.events.append(SessionOpened(self))
        self._rearm(now)

    # -- rekeying --------------------------------------------------------

    def _startRekey(self, now):
        nextEpoch = self.sendEpoch.number + 1
        self.stats["rekeysStarted"] += 1
        if self.role == CLIENT:
            eph = Ephemeral(self.engine.random(32))
            self.rekey = (nextEpoch, eph, now + self.config.rekeyRetransmit)
            self._sendRekeyRequest(now)
        else:
            self.rekeyAsk = (nextEpoch, now + self.config.rekeyRetransmit)
            self._sendControl(R.encodeRecord(R.REKEY_REQUEST, _u32(nextEpoch)), now)
        self._rearm(now)

    def _sendRekeyRequest(self, now):
        epoch, eph, _ = self.rekey
        self._sendControl(R.encodeRecord(R.REKEY_REQUEST, _u32(epoch) + eph.public), now)

    def _onRekeyRequest(self, value, now):
        epoch = int.from_bytes(value[:4], "big")
        current = self.sendEpoch.number
        if self.role == CLIENT:
            if len(value) == 4 and epoch == current + 1 and self.rekey is None:
                self._startRekey(now)
            return
        if len(value) != 36:
            self.engine.drop("bad-rekey")
            return
        clientEph = value[4:]
        if self.rekey is not None:
            if self.rekey[0] == epoch and self.rekey[1] == clientEph:
                self._sendControl(self.rekey[2], now)  # our response was lost
            return
        if epoch != current + 1:
            return  # stale
        if not self._rekeyAllowed(now):
            self.engine.drop("rekey-rate-limited")
            return  # the client retransmits its request
        eph = Ephemeral(self.engine.random(32))
        try:
            secret = eph.exchange(clientEph)
        except Exception:
            self.engine.drop("bad-rekey")
            return
        previous = self.sendEpoch.keys
        th = rekeyTranscript(previous.transcript, epoch, clientEph, eph.public)
        signature = self.engine.identity.sign(REKEY_SIGNATURE_LABEL + th)
        keys = deriveKeys(epoch, th, secret + bytes(previous.chainKey), self.suite.keySize)
        self._install(keys, now)
        record = R.encodeRecord(R.REKEY_RESPONSE, _u32(epoch) + eph.public + signature)
        self.rekey = (epoch, clientEph, record)
        self.rekeyAsk = None
        self._sendControl(record, now)

    def _rekeyAllowed(self, now):
        """
        A token bucket per session: rekeysPerSecond on average,
        rekeyBurst at once (each answer costs an exchange and a signature).
        """
        c = self.config
        tokens = min(float(c.rekeyBurst), self.rekeyTokens + (now - self.rekeyTokensAt) * c.rekeysPerSecond)
        self.rekeyTokensAt = now
        if tokens < 1.0:
            self.rekeyTokens = tokens
            return False
        self.rekeyTokens = tokens - 1.0
        return True

    def _onRekeyResponse(self, value, now):
        if self.role != CLIENT or self.rekey is None:
            return
        epoch = int.from_bytes(value[:4], "big")
        pending, eph, _ = self.rekey
        if epoch != pending:
            return
        serverEph, signature = value[4:36], value[36:]
        previous = self.sendEpoch.keys
        th = rekeyTranscript(previous.transcript, epoch, eph.public, serverEph)
        if not self.serverKey.verify(signature, REKEY_SIGNATURE_LABEL + th):
            self.engine.drop("bad-rekey-signature")
            self.close(now, R.CLOSE_PROTOCOL_ERROR, "rekey response not signed by the server")
            return
        try:
            secret = eph.exchange(serverEph)
        except Exception:
            self.close(now, R.CLOSE_PROTOCOL_ERROR, "bad rekey key")
            return
        keys = deriveKeys(epoch, th, secret + bytes(previous.chainKey), self.suite.keySize)
        ep = self._install(keys, now)
        self.sendEpoch = ep
        self.rekey = None
        self.stats["rekeys"] += 1
        # the first packet under the new key tells the server to switch
        self._sendControl(R.encodeRecord(R.KEEPALIVE), now)

    def _install(self, keys, now):
        slot = keys.epoch & 1
        old = self.epochs[slot]
        if old is not None:
            old.wipe()
        ep = KeyEpoch(keys, self.role, self.suite, self.config, now)
        self.epochs[slot] = ep
        return ep

    # -- timers ----------------------------------------------------------

    def _nextDeadline(self):
        c = self.config
        if self.state is PENDING:
            return self.pendingExpires
        when = min(self.lastRecv + c.idleTimeout, self.lastSend + c.keepaliveInterval)
        for ep in self.epochs:
            if ep is not None and ep.retireAt < when:
                when = ep.retireAt
        probe = self.probe
        if probe is not None:
            when = min(when, probe.expires, probe.retransmitAt)
        if self.role == CLIENT:
            when = min(when, self.rekey[2] if self.rekey else self.sendEpoch.created + c.rekeyAfterTime)
        elif self.rekeyAsk:
            when = min(when, self.rekeyAsk[1])
        elif self.rekey is None:
            when = min(when, self.sendEpoch.created + c.rekeyAfterTime + SERVER_REKEY_LAG)
        return when

    def _rearm(self, now):
        if self.state is not CLOSED:
            self.engine.timers.arm(self, self._nextDeadline())

    def onTimer(self, now):
        """
        Run whatever timers are due: expiry, idle timeout, key retirement,
        keepalive, rekey and its retransmission.
        """
        c = self.config
        if self.state is CLOSED:
            return
        if self.state is PENDING:
            if now >= self.pendingExpires:
                self.close(now, R.CLOSE_PROTOCOL_ERROR, "handshake not confirmed", notify=False)
                self.engine.drop("handshake-expired")
                return
        elif self.state is OPEN:
            if now - self.lastRecv >= c.idleTimeout:
                self.close(now, R.CLOSE_IDLE, "idle timeout")
                return
            for slot, ep in enumerate(self.epochs):
                if ep is not None and ep.retireAt <= now:
                    ep.wipe()
                    self.epochs[slot] = None
            self._rekeyTimers(now)
            self._probeTimers(now)
            if self.state is OPEN and now - self.lastSend >= c.keepaliveInterval:
                self._sendControl(R.encodeRecord(R.KEEPALIVE), now)
        self._rearm(now)

    def _probeTimers(self, now):
        probe = self.probe
        if probe is None:
            return
        if now >= probe.expires:
            self.probe = None
            self.engine.drop("path-validation-failed")
        elif now >= probe.retransmitAt:
            self._challenge(now)

    def _rekeyTimers(self, now):
        c = self.config
        if self.role == CLIENT:
            if self.rekey is None:
                if now - self.sendEpoch.created >= c.rekeyAfterTime:
                    self._startRekey(now)
            elif now >= self.rekey[2]:
                self.rekey = (self.rekey[0], self.rekey[1], now + c.rekeyRetransmit)
                self._sendRekeyRequest(now)
        elif self.rekeyAsk is not None:
            if now >= self.rekeyAsk[1]:
                epoch = self.rekeyAsk[0]
                self.rekeyAsk = (epoch, now + c.rekeyRetransmit)
                self._sendControl(R.encodeRecord(R.REKEY_REQUEST, _u32(epoch)), now)
        elif self.rekey is None and now - self.sendEpoch.created >= c.rekeyAfterTime + SERVER_REKEY_LAG:
            self._startRekey(now)

    # -- closing ---------------------------------------------------------

    def close(self, now, code=R.CLOSE_NORMAL, text="", notify=True, byPeer=False, reason=None):
        """
        End the session: tell the peer (best effort) unless C{notify} is false,
        wipe every key, and report L{SessionEnded} if it had opened.

        @param reason: the reason reported, for an end no CLOSE code names
            (default: the code's).
        """
        if self.state is CLOSED or self._closing:
            return
        self._closing = True
        if notify:
            self._sendControl(R.encodeClose(code, text, self.maxMessageSize - R.RECORD_HEADER_SIZE), now)
        wasOpen = self.state is OPEN
        if reason is None:
            reason = R.CLOSE_REASONS.get(code, "protocol-error")
            if code == R.CLOSE_NORMAL and not byPeer:
                reason = "closed"
        self.closeReason = reason
        self.closeText = text
        self.state = CLOSED
        self.probe = None
        self.deadline = NEVER  # any queued timer entry is now stale
        for ep in self.epochs:
            if ep is not None:
                ep.wipe()
        self.epochs = [None, None]
        self.engine.sessionClosed(self, wasOpen)
        if wasOpen:
            self.engine.events.append(SessionEnded(self, SessionClosed(reason, text)))


def _u32(n):
    return n.to_bytes(4, "big")
