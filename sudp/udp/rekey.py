# -*- test-case-name: sudp_test.udp.test_rekey -*-
"""
Rekeying a sudp/1 session (docs/protocol.md, section 12): the client asks
with a fresh ephemeral key (by count, by time, or when the server asks),
the server answers with its own and a signature of the rekey transcript,
and both derive the next epoch's keys from the exchange and the previous
epoch's chain key. The first packet under the new epoch switches the
server; the old epoch is kept for a grace period, then wiped.

L{Rekeying} is the part of L{sudp.udp.session.Session} that does this; a
rekey in flight is a L{ClientRekey} (client) or a L{ServerRekey} (server)
in C{session.rekey}, and the server's request that the client rekey a
L{RekeyAsk} in C{session.rekeyAsk}.
"""

from dataclasses import dataclass, replace

from sudp.errors import HandshakeFailed, MalformedPacket
from sudp.udp import records as R
from sudp.udp.keyschedule import REKEY_SIGNATURE_LABEL, Ephemeral, deriveKeys, rekeyTranscript
from sudp.udp.receivestate import KeyEpoch, Role, SessionState
from sudp.udp.timers import NEVER

SERVER_REKEY_LAG = 10.0  # the server asks for a rekey this long after the client would start one


@dataclass(frozen=True, slots=True)
class ClientRekey:
    """
    A rekey the client started and the server has not answered yet.

    @ivar epoch: the epoch asked for.
    @ivar ephemeral: the client's L{Ephemeral} for it.
    @ivar retransmitAt: when the REKEY_REQUEST is sent again.
    """

    epoch: int
    ephemeral: Ephemeral
    retransmitAt: float


@dataclass(frozen=True, slots=True)
class ServerRekey:
    """
    The server's answer to a client's rekey, kept until the client switches
    (a retransmitted request gets the same answer).

    @ivar epoch: the epoch answered.
    @ivar clientEphemeral: the client's ephemeral public key it answered.
    @ivar record: the REKEY_RESPONSE record sent.
    """

    epoch: int
    clientEphemeral: bytes
    record: bytes


@dataclass(frozen=True, slots=True)
class RekeyAsk:
    """
    The server's request that the client start a rekey (a 4-byte
    REKEY_REQUEST), resent until the client does.
    """

    epoch: int
    retransmitAt: float


class Rekeying:
    """
    The rekey half of L{sudp.udp.session.Session} (a mixin: it uses the
    session's C{host}, C{config}, C{suite}, C{sendEpoch}, C{receiveState},
    C{stats}, C{rekey}, C{rekeyAsk} and rekey tokens, and its
    C{_sendControl}, C{_rearm} and C{close}).
    """

    __slots__ = ()

    def _startRekey(self, now):
        nextEpoch = self.sendEpoch.number + 1
        self.stats["rekeysStarted"] += 1
        if self.role is Role.CLIENT:
            self.rekey = ClientRekey(nextEpoch, Ephemeral(self.host.random(32)),
                                     now + self.config.rekeyRetransmit)
            self._sendRekeyRequest(now)
        else:
            self.rekeyAsk = RekeyAsk(nextEpoch, now + self.config.rekeyRetransmit)
            self._sendControl(R.RekeyRequest(nextEpoch).record(), now)
        self._rearm(now)

    def _sendRekeyRequest(self, now):
        rekey = self.rekey
        self._sendControl(R.RekeyRequest(rekey.epoch, rekey.ephemeral.public).record(), now)

    def _onRekeyRequest(self, value, now):
        try:
            request = R.RekeyRequest.decode(value)
        except MalformedPacket as e:  # decodeRecords has checked the size already
            self.host.drop(e.reason)
            return
        epoch, current = request.epoch, self.sendEpoch.number
        if self.role is Role.CLIENT:
            if request.ephemeral is None and epoch == current + 1 and self.rekey is None:
                self._startRekey(now)
            return
        clientEph = request.ephemeral
        if clientEph is None:
            self.host.drop("bad-rekey")
            return
        rekey = self.rekey
        if rekey is not None:
            if rekey.epoch == epoch and rekey.clientEphemeral == clientEph:
                self._sendControl(rekey.record, now)  # our response was lost
            return
        if epoch != current + 1:
            return  # stale
        if not self._rekeyAllowed(now):
            self.host.drop("rekey-rate-limited")
            return  # the client retransmits its request
        eph = Ephemeral(self.host.random(32))
        try:
            secret = eph.exchange(clientEph)
        except HandshakeFailed:
            self.host.drop("bad-rekey")
            return
        previous = self.sendEpoch.keys
        th = rekeyTranscript(previous.transcript, epoch, clientEph, eph.public)
        signature = self.host.identity.sign(REKEY_SIGNATURE_LABEL + th)
        keys = deriveKeys(epoch, th, secret + bytes(previous.chainKey), self.suite.keySize)
        self._install(keys, now)
        record = R.RekeyResponse(epoch, eph.public, signature).record()
        self.rekey = ServerRekey(epoch, clientEph, record)
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
        rekey = self.rekey
        if self.role is not Role.CLIENT or rekey is None:
            return
        try:
            response = R.RekeyResponse.decode(value)
        except MalformedPacket as e:  # decodeRecords has checked the size already
            self.host.drop(e.reason)
            return
        epoch = response.epoch
        if epoch != rekey.epoch:
            return
        previous = self.sendEpoch.keys
        th = rekeyTranscript(previous.transcript, epoch, rekey.ephemeral.public, response.ephemeral)
        if not self.serverKey.verify(response.signature, REKEY_SIGNATURE_LABEL + th):
            self.host.drop("bad-rekey-signature")
            self.close(now, R.CLOSE_PROTOCOL_ERROR, "rekey response not signed by the server")
            return
        try:
            secret = rekey.ephemeral.exchange(response.ephemeral)
        except HandshakeFailed:
            self.close(now, R.CLOSE_PROTOCOL_ERROR, "bad rekey key")
            return
        keys = deriveKeys(epoch, th, secret + bytes(previous.chainKey), self.suite.keySize)
        self.sendEpoch = self._install(keys, now)
        self.rekey = None
        self.stats["rekeys"] += 1
        # the first packet under the new key tells the server to switch
        self._sendControl(R.encodeRecord(R.KEEPALIVE), now)

    def _install(self, keys, now):
        epochs = self.receiveState.epochs
        slot = keys.epoch & 1
        old = epochs[slot]
        if old is not None:
            old.wipe()
        ep = KeyEpoch(keys, self.role, self.suite, self.config, now)
        epochs[slot] = ep
        return ep

    def _firstOnEpoch(self, ep, now):
        """
        The first authenticated packet under C{ep}: a server whose client
        has switched to it switches too, and the previous epoch starts its
        grace period.
        """
        ep.heard = True
        previous = self.receiveState.epochs[(ep.number + 1) & 1]
        if previous is not None and previous.number == ep.number - 1:
            if self.sendEpoch is previous:  # server: the client has switched
                self.sendEpoch = ep
                self.rekey = None
                self.stats["rekeys"] += 1
            previous.retireAt = now + self.config.oldKeyGrace
            self._rearm(now)

    def _checkIntegrityLimit(self, ep, now):
        """
        RFC 9001 6.6: rekey once half the suite's integrity limit of failed
        opens is reached under a key; close at the limit.
        """
        limit = self.suite.integrityLimit
        if ep.failures >= limit:
            self.close(now, R.CLOSE_PROTOCOL_ERROR, "integrity limit reached")
        elif (ep.failures >= limit // 2 and ep is self.sendEpoch and self.state is SessionState.OPEN
              and self.rekey is None and self.rekeyAsk is None):
            self._startRekey(now)

    def _rekeyDeadline(self):
        """
        @return: when the rekey timers next need to run.
        """
        c = self.config
        if self.role is Role.CLIENT:
            return self.rekey.retransmitAt if self.rekey else self.sendEpoch.created + c.rekeyAfterTime
        if self.rekeyAsk:
            return self.rekeyAsk.retransmitAt
        if self.rekey is None:
            return self.sendEpoch.created + c.rekeyAfterTime + SERVER_REKEY_LAG
        return NEVER

    def _rekeyTimers(self, now):
        c = self.config
        if self.role is Role.CLIENT:
            if self.rekey is None:
                if now - self.sendEpoch.created >= c.rekeyAfterTime:
                    self._startRekey(now)
            elif now >= self.rekey.retransmitAt:
                self.rekey = replace(self.rekey, retransmitAt=now + c.rekeyRetransmit)
                self._sendRekeyRequest(now)
        elif self.rekeyAsk is not None:
            ask = self.rekeyAsk
            if now >= ask.retransmitAt:
                self.rekeyAsk = replace(ask, retransmitAt=now + c.rekeyRetransmit)
                self._sendControl(R.RekeyRequest(ask.epoch).record(), now)
        elif self.rekey is None and now - self.sendEpoch.created >= c.rekeyAfterTime + SERVER_REKEY_LAG:
            self._startRekey(now)
