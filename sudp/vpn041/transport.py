# -*- test-case-name: sudp_test.vpn041.test_nonces -*-
"""
What the gateway's and the client's sessions share: the application
protocol's transport (C{write(payload)} pushes one datagram), the peer
address, and the UDP protocol that hands datagrams to its owner.
"""

import ipaddress

from twisted.internet.interfaces import IAddress, ITransport
from twisted.internet.protocol import DatagramProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from sudp.errors import SessionClosed
from sudp.vpn041.nonces import NonceRecord, makeNonce


def sameHost(a, b):
    """
    @return: True if C{a} and C{b} name the same IP address (their text
        forms may differ, and an IPv4-mapped IPv6 address is its IPv4
        address); names that are not addresses are compared as text.
    """
    def parse(host):
        address = ipaddress.ip_address(host.split("%")[0])
        return getattr(address, "ipv4_mapped", None) or address

    try:
        return parse(a) == parse(b)
    except ValueError:
        return a == b


@implementer(IAddress)
class Vpn041Address:
    """
    A vpn041 peer: its session id, its certificate's subject, where pushes go.
    """

    def __init__(self, sessionId, clientName, host, port):
        self.sessionId = sessionId
        self.clientName = clientName
        self.host = host
        self.port = port

    def __repr__(self):
        return f"Vpn041Address({self.sessionId}, {self.clientName!r}, {self.host!r}, {self.port})"


@implementer(ITransport)
class PushTransport:
    """
    One session's transport: C{write(payload)} seals the payload with the
    session's L{sudp.vpn041.dataplane.PacketCodec} and pushes it as one
    datagram (C{_push}, the subclass's); L{receive} opens a datagram from
    the peer. Both keep the session's record of nonces
    (L{sudp.vpn041.nonces.NonceRecord}), on a session clock started when
    the session opened. L{end} ends it once.

    @ivar protocol: the application protocol, once built.
    @ivar ended: why the session ended, or None while it is open.
    @ivar peerAddress: C{(host, port)}: where datagrams go, and the only
        address whose datagrams the session takes (L{isFrom}).
    @ivar anyPeerPort: take datagrams from any port of the peer's host (a
        NAT may change the port).
    """

    anyPeerPort = False

    def __init__(self, codec, log, peerAddress, clock, limits):
        """
        @param log: the side's C{twisted.logger.Logger}, for an application
            protocol that fails in C{connectionLost}.
        @param clock: the C{twisted.internet.interfaces.IReactorTime} of the
            session clock.
        @param limits: the side's L{sudp.vpn041.settings.Limits}.
        """
        self.peerAddress = peerAddress
        self.clock = clock
        self.opened = clock.seconds()
        self.nonces = NonceRecord(limits.maxNonces, limits.nonceLifetime)
        self.codec = codec
        self.log = log
        self.protocol = None
        self.connected = True
        self.disconnecting = False
        self.ended = None

    @property
    def sessionId(self):
        return self.codec.sessionId

    @property
    def maxMessageSize(self):
        """
        The largest payload L{write} takes: what keeps a datagram within a
        1,500-byte MTU.
        """
        return self.codec.maxPayload

    def isFrom(self, addr):
        """
        @return: True if a datagram from C{addr} (C{(host, port, ...)}) comes
            from the session's peer address.
        """
        host, port = self.peerAddress
        return sameHost(addr[0], host) and (self.anyPeerPort or addr[1] == port)

    def write(self, data):
        """
        Push C{data} to the peer in one datagram.

        @raise ValueError: if it is over L{maxMessageSize}.
        @raise SessionClosed: if the session has ended.
        """
        if not self.connected:
            raise SessionClosed(self.ended or "closed", "the vpn041 session has ended")
        self._push(self.seal(bytes(data)))

    def elapsed(self):
        """
        @return: seconds on the session clock.
        """
        return self.clock.seconds() - self.opened

    def seal(self, payload):
        """
        @return: a datagram of C{payload} under a fresh nonce, which the
            record of nonces now holds (so it is refused if it comes back).
        @raise ValueError: if it is over L{maxMessageSize}.
        """
        now = self.elapsed()
        nonce = makeNonce(now, self.codec.random)
        datagram = self.codec.seal(payload, nonce)
        self.nonces.add(nonce, now)
        return datagram

    def receive(self, nonce, body):
        """
        Open a datagram from the peer: its nonce is checked against the
        record before any decryption, and recorded only once the datagram
        has opened.

        @return: the payload.
        @raise sudp.vpn041.nonces.NonceRefused: if the record refuses it.
        @raise sudp.vpn041.dataplane.DecryptFailure: if it does not open.
        """
        now = self.elapsed()
        self.nonces.check(nonce, now)
        payload = self.codec.open(nonce, body)
        self.nonces.add(nonce, now)
        return payload

    def writeSequence(self, data):
        for payload in data:
            self.write(payload)

    def end(self, reason, teardown, error=None):
        """
        End the session, once: mark it ended, run C{teardown()} (close the
        authentication connection...), then tell the protocol, with
        C{error} or a L{SessionClosed} naming C{reason}.

        @return: False if it had ended already.
        """
        if not self.connected:
            return False
        self.connected = False
        self.ended = reason
        teardown()
        if self.protocol is not None:
            try:
                self.protocol.connectionLost(Failure(error or SessionClosed(reason, "the vpn041 session has ended")))
            except Exception:
                self.log.failure("vpn041: the application protocol failed in connectionLost")
        return True


class DatagramForwarder(DatagramProtocol):
    """
    A UDP socket's protocol that hands each datagram to C{owner.datagramReceived}.
    """

    noisy = False

    def __init__(self, owner):
        self.owner = owner

    def datagramReceived(self, data, addr):
        self.owner.datagramReceived(data, addr)
