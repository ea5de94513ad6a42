# -*- test-case-name: sudp_test.test_path -*-
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
"""

import hmac

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
