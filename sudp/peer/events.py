# -*- test-case-name: sudp_test.peer.test_engine -*-
"""
What a peer engine (L{sudp.peer.engine.PeerEngine}) reports to its driver,
through C{nextEvents()}: messages, and every change and failure a peer
node's application should hear of. Each event knows the stdlib C{logging}
level it deserves and says itself in one line (L{PeerEvent.text}), so a
driver can log all of them the same way (L{sudp.peer.node.PeerNode} logs to
the C{sudp.peer} logger and calls the application's C{onError}).

Addresses are the ones the application added peers with (a peer is found
by its session, so a peer behind a NAT that rebinds keeps its name).
"""

import logging

from sudp.addresses import formatAddress


class PeerEvent:
    """
    Something a node's application may want to know.

    @cvar level: the stdlib C{logging} level to log it at.
    @cvar failure: True for a refusal or a failure (the node calls the
        application's error callback with it).
    @ivar addr: the peer's address.
    """

    level = logging.INFO
    failure = False

    def text(self):
        """
        @return: a line for a log or a user.
        """
        raise NotImplementedError  # pragma: no cover - each event says itself

    def __repr__(self):
        return f"<{type(self).__name__} {self.text()}>"


class PeerMessage(PeerEvent):
    """
    A message from a peer (its framing undone).
    """

    level = logging.DEBUG

    def __init__(self, addr, data):
        self.addr = addr
        self.data = data

    def text(self):
        return f"{len(self.data)} bytes from {formatAddress(self.addr)}"


class PeerConnected(PeerEvent):
    """
    A session with a peer opened (and was kept, of two opened at once).

    @ivar key: the key the peer proved.
    @ivar started: True if this node started the session.
    """


    def __init__(self, addr, key, started):
        self.addr = addr
        self.key = key
        self.started = started

    def text(self):
        return f"session with {formatAddress(self.addr)} open (key {self.key.fingerprint()})"


class PeerKeyPinned(PeerEvent):
    """
    Trust on first use pinned a peer's key (and wrote it to the known peers).
    """

    level = logging.WARNING

    def __init__(self, addr, key):
        self.addr = addr
        self.key = key

    def text(self):
        return (f"trusting {formatAddress(self.addr)} on first use: pinned {self.key.fingerprint()} "
                f"({self.key.toText()}); compare it with the key that peer prints")


class PeerDisconnected(PeerEvent):
    """
    The session with a peer ended; a new handshake follows in C{retryIn}
    seconds.

    @ivar reason: the session's close reason (C{"idle-timeout"},
        C{"shutdown"}, C{"stateless-reset"}...).
    """


    def __init__(self, addr, reason, retryIn):
        self.addr = addr
        self.reason = reason
        self.retryIn = retryIn

    def text(self):
        return (f"session with {formatAddress(self.addr)} ended ({self.reason}); "
                f"reconnecting in {self.retryIn:g} s")


class PeerRefused(PeerEvent):
    """
    A session was refused (closed as not authorized as soon as it opened),
    or a peer's messages are.

    @ivar reason: C{"stranger"} (an address the application did not add,
        with no pinned key), C{"key-changed"} (a key other than the pinned
        one), C{"no-key"} (the peer did not authenticate),
        C{"pin-limit"} (trust on first use, with the known peers full) or
        C{"unknown-version"} (another peer-protocol version).
    @ivar detail: what to do about it.
    """

    level = logging.WARNING
    failure = True

    def __init__(self, addr, reason, detail):
        self.addr = addr
        self.reason = reason
        self.detail = detail
        if reason in ("key-changed", "unknown-version"):
            self.level = logging.ERROR

    def text(self):
        return f"refused {formatAddress(self.addr)} ({self.reason}): {self.detail}"


class PeerHandshakeFailed(PeerEvent):
    """
    A handshake this node started failed; it is tried again in C{retryIn}
    seconds.

    @ivar error: the L{sudp.errors.HandshakeFailed}.
    """

    level = logging.WARNING
    failure = True

    def __init__(self, addr, error, retryIn, level=logging.WARNING):
        self.addr = addr
        self.error = error
        self.retryIn = retryIn
        self.level = level

    def text(self):
        return f"no session with {formatAddress(self.addr)}: {self.error}; trying again in {self.retryIn:g} s"
