# -*- test-case-name: sudp_test.test_engine, sudp_test.udp.test_adapters, sudp_test.udp.test_endpoints -*-
"""
The transport an application protocol sees for one sudp/1 session.

C{write(message)} sends one message (one datagram); C{dataReceived} gets whole
messages; C{loseConnection()} closes the session; C{getPeer()} follows the
client across NAT rebinding; C{peerPublicKey} is the peer's verified key.
"""

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import ITransport
from zope.interface import implementer

from sudp.addresses import unmappedHost
from sudp.errors import MessageTooLarge, SessionClosed
from sudp.interfaces import ISUDPTransport


class SessionDone(SessionClosed, ConnectionDone):
    """
    The session was closed cleanly, by this side or the peer.
    """


class SessionLost(SessionClosed, ConnectionLost):
    """
    The session ended for another reason (idle timeout, refused
    authentication, protocol error, server shutdown...); C{reason} says which.
    """


def lostReason(closed):
    """
    @param closed: a L{SessionClosed}.
    @return: the matching L{SessionDone} or L{SessionLost}, so that
        applications can C{reason.check(ConnectionDone)} as with TCP.
    """
    cls = SessionDone if closed.reason in ("closed", "closed-by-peer") else SessionLost
    return cls(closed.reason, closed.detail)


def udpAddress(addr):
    """
    @return: an C{IPv4Address} or C{IPv6Address} of type C{'UDP'} (an
        IPv4 peer of a dual-stack socket is an C{IPv4Address}).
    """
    host, port = unmappedHost(addr[0]), addr[1]
    if ":" in host:
        return IPv6Address("UDP", host, port)
    return IPv4Address("UDP", host, port)


@implementer(ITransport, ISUDPTransport)
class SessionTransport:
    """
    A session as an C{ITransport}: the application protocol bound to it
    (L{protocol}) gets each message through its C{dataReceived}.
    """

    def __init__(self, adapter, session):
        self._adapter = adapter
        self._session = session
        self._protocol = None
        self.connected = True
        self.disconnecting = False

    @property
    def protocol(self):
        """
        The application protocol bound to this session, or None. Setting it
        makes its C{dataReceived} the session's sink
        (L{sudp.udp.delivery.Delivery.deliverTo}): the engine, and the C
        data path, call it for each message with no event in between.
        """
        return self._protocol

    @protocol.setter
    def protocol(self, protocol):
        self._protocol = protocol
        self._adapter.engine.deliverTo(self._session, None if protocol is None else protocol.dataReceived)

    @property
    def maxMessageSize(self):
        return self._session.maxMessageSize

    @property
    def peerPublicKey(self):
        return self._session.peerKey

    @property
    def suite(self):
        return self._session.suite.name

    @property
    def stats(self):
        """
        Per-session counters: messages sent and received, rekeys.
        """
        return dict(self._session.stats)

    def write(self, data):
        """
        Send C{data} as one message. Empty writes are ignored, as are writes
        after C{loseConnection()} (as with TCP).

        @raise sudp.errors.MessageTooLarge: if C{data} is over C{maxMessageSize}.
        """
        if not data or not self.connected or self.disconnecting:
            return
        self._adapter.sendMessage(self._session, bytes(data))

    def writeSequence(self, data):
        """
        Send the concatenation of C{data} as one message.
        """
        self.write(b"".join(data))

    def writeMessages(self, messages):
        """
        Send each of C{messages} as one message, as a burst: sealed together
        and sent with UDP GSO where the kernel allows (one system call for up
        to 64 datagrams of one size).

        @raise sudp.errors.MessageTooLarge: before anything is sent, if one
            is over C{maxMessageSize}.
        """
        if not self.connected or self.disconnecting:
            return
        messages = [bytes(m) for m in messages if m]
        limit = self._session.maxMessageSize
        for m in messages:
            if len(m) > limit:
                raise MessageTooLarge(len(m), limit)
        self._adapter.sendMessages(self._session, messages)

    def loseConnection(self):
        """
        Close the session, telling the peer.
        """
        if self.connected and not self.disconnecting:
            self.disconnecting = True
            self._adapter.closeSession(self._session)

    abortConnection = loseConnection

    def getPeer(self):
        return udpAddress(self._session.peerAddr)

    def getHost(self):
        return self._adapter.getHost()

    def __repr__(self):
        return f"<sudp session {self._session.localIndex:08x} with {self._session.peerAddr}>"
