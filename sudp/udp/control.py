# -*- test-case-name: sudp_test.udp.test_control -*-
"""
The CONTROL records of a sudp/1 session (docs/protocol.md, "Records" and
9.1, 9.4): each record of an authenticated CONTROL packet handled in
order, the server's check of the client's CONFIRM (and CLIENT_AUTH), and
what a server tells its client in its answer (reset token, next key).

L{ControlRecords} is that part of L{sudp.udp.session.Session}.
"""

from sudp.errors import ClientNotAuthorized, MalformedPacket
from sudp.udp.handshake import checkClientProof
from sudp.keys import PublicKey
from sudp.udp import records as R
from sudp.udp.events import ClientRefused
from sudp.udp.keyschedule import NEXT_KEY_SIGNATURE_LABEL
from sudp.udp.receivestate import Role, SessionState

CLIENT, SERVER = Role.CLIENT, Role.SERVER
PENDING, CONFIRMING, OPEN, CLOSED = (
    SessionState.PENDING, SessionState.CONFIRMING, SessionState.OPEN, SessionState.CLOSED,
)


class ControlRecords:
    """
    The CONTROL-record half of L{sudp.udp.session.Session} (a mixin: it
    uses the session's C{host}, C{receiveState}, C{role}, C{peerKey} and
    C{handshakeTranscript}, and its C{_deliver}, C{_open},
    C{_sendControl}, C{close} and the rekey and path-validation handlers).
    """

    __slots__ = ()

    def _control(self, plaintext, now, addr=None):
        try:
            recs = R.decodeRecords(plaintext, self.host.signatureSize)
        except MalformedPacket as e:
            self.host.drop(e.reason)
            self.close(now, R.CLOSE_PROTOCOL_ERROR, f"malformed records: {e}")
            return
        rx = self.receiveState
        if self.role is SERVER and rx.state is PENDING:
            # the records that open the session come first, whatever their order
            auths = [v for t, v in recs if t == R.CLIENT_AUTH]
            if any(t == R.CONFIRM for t, _ in recs):
                self._onConfirm(auths, now)
                if rx.state is CLOSED:
                    return
        for rtype, value in recs:
            if rtype == R.APP_DATA:
                self._deliver(value, now)
            elif rtype == R.CLOSE:
                code, text = R.decodeClose(value)
                self.close(now, code, text, notify=False, byPeer=True)
                return
            elif rtype == R.CONFIRM and self.role is SERVER and rx.state is OPEN:
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
                if self.role is CLIENT or self.config.followPeer:
                    self._sendControl(R.encodeRecord(R.PATH_RESPONSE, value), now)
                else:  # only servers validate paths, unless clients follow theirs
                    self.host.drop("unexpected-path-challenge")
            elif rtype == R.PATH_RESPONSE:
                self._onPathResponse(value, addr, now)
            elif rtype == R.RESET_TOKEN:
                if self.role is CLIENT:
                    self.resetToken = bytes(value)
            elif rtype == R.NEXT_SERVER_KEY:
                if self.role is CLIENT:
                    self._onNextServerKey(value)
            if rx.state is CLOSED:
                return
        if rx.state is CONFIRMING:
            self._open(now)

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
                self.peerKey = checkClientProof(auth, self.handshakeTranscript, self.host.authorizedKeys)
        except ClientNotAuthorized as e:
            if "signature" in str(e):
                self.host.drop("bad-client-signature")
            self.host.reportEvent(ClientRefused(self.peerAddr, "not-authorized: " + str(e), suite=self.suite))
            self.close(now, R.CLOSE_NOT_AUTHORIZED, str(e))
            return
        self._open(now)

    # -- what the server tells its client ----------------------------------

    def _resetTokenRecord(self):
        """
        @return: a server's RESET_TOKEN record for this session at its
            current address, or nothing if its engine makes no tokens.
        """
        token = self.host.resetToken(self)
        return b"" if token is None else R.encodeRecord(R.RESET_TOKEN, token)

    def _nextKeyRecord(self):
        """
        @return: a server's NEXT_SERVER_KEY record: its next public key and
            that key's signature of this handshake's transcript, or nothing
            if it announces none.
        """
        nextIdentity = self.host.nextIdentity
        if nextIdentity is None:
            return b""
        proof = nextIdentity.sign(NEXT_KEY_SIGNATURE_LABEL + self.handshakeTranscript)
        return R.NextServerKey(nextIdentity.publicKey.raw, proof).record()

    def _onNextServerKey(self, value):
        """
        (Client) The server announced its next key: believe it if that key
        signed this session's transcript (so the server holding the pinned
        key also holds it), and report it once if it is not pinned yet.
        """
        try:
            announced = R.NextServerKey.decode(value)
        except MalformedPacket as e:  # decodeRecords has checked the size already
            self.host.drop(e.reason)
            return
        key = PublicKey(announced.publicKey)
        if not key.verify(announced.signature, NEXT_KEY_SIGNATURE_LABEL + self.handshakeTranscript):
            self.host.drop("bad-next-key")
            return
        self.host.nextServerKey(self, key)
