"""
What the gateway's and the client's sessions share: the application
protocol's transport (C{write(payload)} pushes one datagram), the peer
address, and the UDP protocol that hands datagrams to its owner.
"""

from twisted.internet.interfaces import IAddress, ITransport
from twisted.internet.protocol import DatagramProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from sudp.errors import SessionClosed


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
    datagram (C{_push}, the subclass's). L{end} ends it once.

    @ivar protocol: the application protocol, once built.
    @ivar ended: why the session ended, or None while it is open.
    """

    def __init__(self, codec, log):
        """
        @param log: the side's C{twisted.logger.Logger}, for an application
            protocol that fails in C{connectionLost}.
        """
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

    def write(self, data):
        """
        Push C{data} to the peer in one datagram.

        @raise ValueError: if it is over L{maxMessageSize}.
        @raise SessionClosed: if the session has ended.
        """
        if not self.connected:
            raise SessionClosed(self.ended or "closed", "the vpn041 session has ended")
        self._push(self.codec.seal(bytes(data)))

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
