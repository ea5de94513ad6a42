# -*- test-case-name: sudp_test.udp.test_path -*-
"""
Path validation for a server session (docs/protocol.md, "Addresses and
path validation"), as QUIC does it (RFC 9000, section 8.2).

A session's address is the cookie-proven source of its HANDSHAKE_INIT.
An authenticated packet from another address is processed as usual but does
not move the session: it starts a L{PathProbe}, which sends a fresh random
PATH_CHALLENGE to the new address. The session moves there only when the
matching PATH_RESPONSE comes back from that address. Until then the new
address receives at most L{AMPLIFICATION_FACTOR} times the bytes the
session received from it (the challenges, and copies of the session's
packets so that a genuine NAT rebinding loses nothing), and the session's
traffic keeps going to the validated address.

L{PathValidation} is the part of L{sudp.udp.session.Session} that runs
the probes.
"""

import hmac

from sudp.udp import records as R
from sudp.udp.packets import CONTROL, DATA_HEADER_SIZE
from sudp.udp.timers import NEVER

AMPLIFICATION_FACTOR = 3
CHALLENGE_SIZE = 16
MAX_CHALLENGES = 4  # outstanding challenges of one probe (each retransmission is fresh)


class PathProbe:
    """
    One unvalidated address a session has heard from.

    @ivar addr: the address being validated.
    @ivar received: authenticated bytes received from it.
    @ivar sent: bytes sent to it.
    @ivar challenges: the challenges sent to it and not yet answered,
        newest last.
    @ivar expires: when the probe is abandoned.
    @ivar retransmitAt: when a fresh challenge is due.
    """

    __slots__ = ("addr", "received", "sent", "challenges", "expires", "retransmitAt")

    def __init__(self, addr, received, now, timeout):
        self.addr = addr
        self.received = received
        self.sent = 0
        self.challenges = []
        self.expires = now + timeout
        self.retransmitAt = now

    def allows(self, size):
        """
        @return: True if C{size} more bytes may go to the address without
            passing L{AMPLIFICATION_FACTOR} times what came from it.
        """
        return self.sent + size <= AMPLIFICATION_FACTOR * self.received

    def charge(self, size):
        """
        Count C{size} bytes sent to the address.
        """
        self.sent += size

    def addChallenge(self, challenge):
        """
        Remember a challenge sent (the oldest is forgotten past
        L{MAX_CHALLENGES}).
        """
        self.challenges.append(bytes(challenge))
        del self.challenges[:-MAX_CHALLENGES]

    def answers(self, response):
        """
        @return: True if C{response} echoes one of the challenges sent.
        """
        found = False
        for challenge in self.challenges:
            found |= hmac.compare_digest(challenge, response)
        return found


class PathValidation:
    """
    The path-validation half of a server's L{sudp.udp.session.Session} (a
    mixin: it uses the session's C{host}, C{config}, C{suite} and
    C{receiveState}, and its C{_seal}, C{_sendControl}, C{_rearm} and
    C{_resetTokenRecord}).
    """

    __slots__ = ()

    def _heardFrom(self, addr, size, current, now):
        """
        An authenticated packet of C{size} bytes came from C{addr}. From the
        validated address while another is being validated, and the newest
        of a current key: the other address is given up. From another
        address: count it toward that address's budget, and validate the
        address if the packet is the newest of a current key (a delayed copy
        replayed from elsewhere starts nothing).
        """
        rx = self.receiveState
        probe = rx.probe
        if addr == rx.peerAddr:
            if current:
                # the newest packet came from the validated address: the peer
                # is there after all, so the other address gets nothing more
                rx.probe = None
                self.host.drop("path-abandoned")
            return
        if probe is not None and probe.addr == addr:
            probe.received += size
            return
        if not current:
            self.host.drop("stale-from-new-address")
            return
        # a newer path replaces one still being validated (RFC 9000 9.3)
        rx.probe = PathProbe(addr, size, now, self.config.pathValidationTimeout)
        self.host.count("path-probes")
        self._challenge(now)

    def _challenge(self, now):
        """
        Send a fresh PATH_CHALLENGE to the probed address, if its budget
        allows (else the next packet from it, or the timer, tries again).
        """
        probe = self.receiveState.probe
        probe.retransmitAt = now + self.config.retransmitInitial
        size = DATA_HEADER_SIZE + R.RECORD_HEADER_SIZE + CHALLENGE_SIZE + self.suite.tagSize
        if not probe.allows(size):
            self.host.drop("path-budget")
            self._rearm(now)
            return
        challenge = self.host.random(CHALLENGE_SIZE)
        probe.addChallenge(challenge)
        probe.charge(size)
        self.host.count("path-challenges")
        self._seal(CONTROL, R.encodeRecord(R.PATH_CHALLENGE, challenge), now, to=probe.addr)
        self._rearm(now)

    def _onPathResponse(self, value, addr, now):
        rx = self.receiveState
        probe = rx.probe
        if probe is None or probe.addr != addr or not probe.answers(value):
            self.host.drop("path-response-mismatch")
            return
        rx.peerAddr = addr
        rx.probe = None
        self.host.count("paths-validated")
        token = self._resetTokenRecord()
        if token:  # the token is bound to the address: the client gets the new one
            self._sendControl(token, now)

    def _probeDeadline(self):
        """
        @return: when the probe's timers next need to run (L{NEVER} without one).
        """
        probe = self.receiveState.probe
        return NEVER if probe is None else min(probe.expires, probe.retransmitAt)

    def _probeTimers(self, now):
        probe = self.receiveState.probe
        if probe is None:
            return
        if now >= probe.expires:
            self.receiveState.probe = None
            self.host.drop("path-validation-failed")
        elif now >= probe.retransmitAt:
            self._challenge(now)
