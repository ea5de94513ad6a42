# -*- test-case-name: sudp_test.gossip6.test_udp, sudp_test.udp.test_client, sudp_test.udp.test_vectors -*-
"""
Events an engine reports to its adapter, in order, through C{engine.events}.
"""


class SessionOpened:
    """
    A session authenticated both ways and is ready for application data.
    """

    __slots__ = ("session",)

    def __init__(self, session):
        self.session = session


class MessageReceived:
    """
    One authenticated application message.
    """

    __slots__ = ("session", "message")

    def __init__(self, session, message):
        self.session = session
        self.message = message


class DeliveryFailed:
    """
    A session's sink (L{sudp.udp.delivery.Delivery.deliverTo}) raised
    C{error} on C{message}; the message counts as delivered.
    """

    __slots__ = ("session", "message", "error")

    def __init__(self, session, message, error):
        self.session = session
        self.message = message
        self.error = error


class SessionEnded:
    """
    A session ended; C{reason} is a L{sudp.errors.SessionClosed}.
    """

    __slots__ = ("session", "reason")

    def __init__(self, session, reason):
        self.session = session
        self.reason = reason


class HandshakeFailure:
    """
    A client handshake failed; C{error} is a L{sudp.errors.HandshakeFailed}.
    """

    __slots__ = ("error",)

    def __init__(self, error):
        self.error = error



class ClientRefused:
    """
    A server refused a client whose address a cookie had proven: C{reason}
    says why (C{rate-limited}, C{too-many-pending}, C{server-full},
    C{no-common-suite}, C{not-authorized}, or a handshake's own reason);
    C{peerKey} is the key the client proved, if any; C{suite} the suite
    agreed, if any.
    """

    __slots__ = ("addr", "reason", "peerKey", "suite")

    def __init__(self, addr, reason, peerKey=None, suite=None):
        self.addr = addr
        self.reason = reason
        self.peerKey = peerKey
        self.suite = suite


class ServerKeyAnnounced:
    """
    (Client) The server proved it holds a key this client does not pin and
    announced it as the key it will use next (protocol.md 9.4): add it to
    the pinned keys before the server switches.

    @ivar key: the announced L{sudp.keys.PublicKey}.
    @ivar serverKey: the pinned key the server proved in the handshake.
    """

    __slots__ = ("session", "key", "serverKey")

    def __init__(self, session, key, serverKey):
        self.session = session
        self.key = key
        self.serverKey = serverKey
