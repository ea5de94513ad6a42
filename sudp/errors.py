# -*- test-case-name: sudp_test.gossip6.test_config, sudp_test.udp.test_client, sudp_test.udp.test_control -*-
"""
The exception types of sudp.

Every error sudp raises on purpose is a subclass of L{SUDPError}, so an
application can catch the whole family in one clause, and every decoder raises
L{MalformedPacket} (never C{struct.error} or C{IndexError}) on bad input.
"""


class SUDPError(Exception):
    """
    Base class of every error raised by sudp.
    """


class ConfigurationError(SUDPError, ValueError):
    """
    An option, endpoint string or configuration value is invalid.
    """


class KeyFileError(SUDPError, ValueError):
    """
    A key file is missing, unreadable, too open, of the wrong type or corrupt.
    The message always names the file.
    """


class PublicKeyFormatError(SUDPError, ValueError):
    """
    A public key in text form could not be parsed.
    """


class MalformedPacket(SUDPError, ValueError):
    """
    A datagram or record could not be decoded.

    @ivar reason: a short machine-readable reason, such as C{"truncated"},
        C{"wrong-version"} or C{"unknown-type"}; used for drop counters.
    """

    def __init__(self, reason, detail=""):
        self.reason = reason
        self.detail = detail
        SUDPError.__init__(self, f"{reason}: {detail}" if detail else reason)


class MessageTooLarge(SUDPError, ValueError):
    """
    An application message is larger than the session's C{maxMessageSize}.

    @ivar size: the size of the refused message.
    @ivar limit: the largest message the session accepts.
    """

    def __init__(self, size, limit):
        self.size = size
        self.limit = limit
        SUDPError.__init__(
            self,
            f"message of {size} bytes is larger than the limit of {limit} bytes "
            f"(maxMessageSize; one message is one datagram)",
        )


class HandshakeFailed(SUDPError):
    """
    The handshake could not be completed.
    """


class HandshakeTimeout(HandshakeFailed):
    """
    The peer did not complete the handshake in time.
    """


class ServerUnreachable(HandshakeFailed):
    """
    The server's host answered that nothing listens on the port (an ICMP
    port unreachable, before any answer from a server).
    """


class NoCommonSuite(HandshakeFailed):
    """
    The server accepts none of the cipher suites the client offered; the
    message names both sides' suites.
    """


class BadServerSignature(HandshakeFailed):
    """
    The server's handshake was not signed by the expected key: either the
    client was given the wrong server key, or someone is in the middle.
    """


class ClientNotAuthorized(HandshakeFailed):
    """
    The server refused the client's identity (not in its authorized keys, or
    no identity was presented where one is required).
    """


class SessionClosed(SUDPError):
    """
    A session ended.

    @ivar reason: a short reason string such as C{"idle-timeout"} or
        C{"closed-by-peer"}.
    """

    def __init__(self, reason, detail=""):
        self.reason = reason
        self.detail = detail
        SUDPError.__init__(self, f"{reason}: {detail}" if detail else reason)


def errorText(error):
    """
    @return: what went wrong, in words, for a message that names the file:
        an C{OSError}'s C{strerror} ("No such file or directory"), else
        C{str(error)} (a C{UnicodeDecodeError}, a NUL byte in a path).
    """
    return getattr(error, "strerror", None) or str(error)
