# -*- test-case-name: sudp_test.stream.test_connection, sudp_test.stream.test_protocol -*-
"""
What a L{sudp.stream.connection.StreamConnection} shows: its state
(L{StreamState}), the events it reports through C{nextEvents()}, and
L{SFrameClosed}, why a connection ended. Besides
these it reports L{sudp.work.WorkNeeded}. Plain objects: no Twisted type
(L{sudp.stream.protocol} turns an L{SFrameClosed} into its
C{ConnectionDone} or C{ConnectionLost} kind for the application).
"""

import enum

from sudp.errors import SUDPError

CLEAN_REASONS = frozenset({"closed", "closed-by-peer"})


class StreamState(enum.Enum):
    """
    Where a L{sudp.stream.connection.StreamConnection} is.
    """

    HANDSHAKE = "handshake"
    CONFIRMING = "confirming"
    OPEN = "open"
    CLOSED = "closed"


class SFrameClosed(SUDPError):
    """
    Why an sframe connection ended. C{reason} is one of C{"closed"},
    C{"closed-by-peer"}, C{"bad-mac"}, C{"bad-checksum"}, C{"bad-sequence"},
    C{"frame-too-large"}, C{"bad-rekey"}, C{"key-exhausted"}, C{"slow-peer"},
    C{"idle-timeout"}, C{"protocol-error"}, C{"not-authorized"},
    C{"application-error"}, C{"connection-lost"}.
    """

    def __init__(self, reason, detail=""):
        self.reason = reason
        self.detail = detail
        SUDPError.__init__(self, f"{reason}: {detail}" if detail else reason)

    @property
    def clean(self):
        """
        True for a close by either side (C{"closed"}, C{"closed-by-peer"}).
        """
        return self.reason in CLEAN_REASONS

    def describe(self):
        """
        @return: C{"reason: detail"}, or the reason alone.
        """
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


class _Event:
    __slots__ = ()

    def __repr__(self):
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"<{type(self).__name__} {fields}>"


class Opened(_Event):
    """
    The key exchange is done and the peer accepted: application data may
    flow.

    @ivar peerKey: the peer's verified key (the server's; a client's if it
        proved one), or None.
    @ivar suite: the name of the stream suite.
    """

    __slots__ = ("peerKey", "suite")

    def __init__(self, peerKey, suite):
        self.peerKey = peerKey
        self.suite = suite


class DataReceived(_Event):
    """
    The payload of one verified DATA frame (CODE 0).
    """

    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data


class FrameReceived(_Event):
    """
    One verified frame of an application CODE other than DATA.
    """

    __slots__ = ("code", "payload")

    def __init__(self, code, payload):
        self.code = code
        self.payload = payload


class CloseStream(_Event):
    """
    Close the stream below: at once (C{abort}), or once what was written
    has gone out.
    """

    __slots__ = ("abort",)

    def __init__(self, abort):
        self.abort = abort


class Ended(_Event):
    """
    The connection is over, once: nothing is reported after it but a
    L{CloseStream}.

    @ivar reason: the L{SFrameClosed}.
    @ivar handshakeError: None if the connection had opened; else the
        error to fail a client's connect with.
    @ivar refused: True when this side ended it before it opened (a failed
        key exchange or client check), False when the stream went away.
    """

    __slots__ = ("reason", "handshakeError", "refused")

    def __init__(self, reason, handshakeError=None, refused=False):
        self.reason = reason
        self.handshakeError = handshakeError
        self.refused = refused
