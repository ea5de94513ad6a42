# -*- test-case-name: sudp_test.peer.test_engine -*-
"""
What a peer node knows of each peer (L{Peer}), and which of its engines an
incoming datagram belongs to (L{route}): no I/O, no reactor.
"""

from collections import Counter, deque

from sudp.addresses import canonicalAddress, formatAddress
from sudp.udp import packets as P

_DATA_TYPES = frozenset((P.DATA, P.DATA | 1, P.CONTROL, P.CONTROL | 1))


class Peer:
    """
    What a node knows of one peer.

    @ivar addr: the peer's address as the application added it (or as its
        first session came from), C{(host, port)}: its name, whatever
        address its session moves to.
    @ivar added: True if the application added it (only those are trusted
        on first use, and a handshake is started only with those and with
        peers whose key is pinned).
    @ivar session: the open sudp/1 session with it, or None.
    @ivar engine: the L{sudp.udp.client.ClientEngine} of a handshake or
        session this node started, or None.
    @ivar queue: messages waiting for a session.
    @ivar retryAt: when the next handshake may start.
    @ivar backoff: the wait after the next failure (doubles up to the
        node's maximum, back to its first value once a session opens).
    @ivar retiring: a duplicate session -> when it closes.
    @ivar stats: counters: sent, received, rekeys, disconnects, handshakes.
    @ivar dropped: messages dropped, by reason.
    @ivar lastHandshake: when the last session with it opened.
    """

    def __init__(self, addr, backoff, added=False):
        self.addr = addr
        self.added = added
        self.removed = False
        self.session = None
        self.engine = None
        self.queue = deque()
        self.retryAt = 0.0
        self.backoff = backoff
        self.retiring = {}
        self.stats = Counter()
        self.dropped = Counter()
        self.lastHandshake = None
        self.lastError = None
        self.versionWarned = False

    @property
    def state(self):
        """
        C{"open"}, C{"connecting"} (a handshake runs) or C{"waiting"}.
        """
        if self.session is not None:
            return "open"
        return "connecting" if self.engine is not None else "waiting"

    def describe(self, now):
        """
        @return: this peer's entry of the node's stats: its state, where
            its session is now, counters, and when it is tried again.
        """
        session = self.session
        rekeys = session.stats["rekeys"] if session is not None else 0
        return {"state": self.state, "added": self.added,
                "address": formatAddress(session.peerAddr) if session is not None else None,
                "sent": self.stats["sent"], "received": self.stats["received"], "queued": len(self.queue),
                "dropped": dict(self.dropped), "rekeys": self.stats["rekeys"] + rekeys,
                "handshakes": self.stats["handshakes"], "disconnects": self.stats["disconnects"],
                "lastHandshake": self.lastHandshake, "lastError": self.lastError,
                "retryIn": None if self.state != "waiting" else max(0.0, self.retryAt - now),
                "key": None if session is None else session.peerKey.fingerprint()}


def route(data, addr, peers, serverSessions, byIndex):
    """
    Which engine of a node a datagram is for: a COOKIE goes to the client
    engine whose HELLO it answers, if it comes from the address that HELLO
    went to; a RESP or a protected packet to the client engine owning its
    index unless the server's sessions hold that index; everything else to
    the server engine.

    @param addr: where the datagram came from.
    @param peers: the node's L{Peer}s.
    @param serverSessions: the server engine's sessions by index.
    @param byIndex: client engines by their session index.
    @return: the client engine, or None (the server's).
    """
    if not data:
        return None
    t = data[0]
    if t == P.COOKIE and len(data) >= 9:
        nonce = bytes(data[1:9])
        for peer in peers:
            engine = peer.engine
            if engine is not None and engine.helloNonce == nonce and _same(engine.serverAddr, addr):
                return engine
        return None
    if (t == P.HANDSHAKE_RESP or t in _DATA_TYPES) and len(data) >= 5:
        index = int.from_bytes(data[1:5], "big")
        if index not in serverSessions:
            return byIndex.get(index)
    return None


def _same(a, b):
    try:
        return canonicalAddress(a) == canonicalAddress(b)
    except ValueError:
        return False
