# -*- test-case-name: sudp_test.peer.test_node -*-
"""
What a peer node knows of each peer (L{Peer}), and which of its engines an
incoming datagram belongs to (L{route}): no I/O, no reactor.
"""

from collections import Counter, deque

from sudp.udp import packets as P

_DATA_TYPES = frozenset((P.DATA, P.DATA | 1, P.CONTROL, P.CONTROL | 1))


class Peer:
    """
    What a node knows of one peer.

    @ivar addr: the peer's address, C{(host, port)}.
    @ivar session: the open sudp/1 session with it, or None.
    @ivar engine: the L{ClientEngine} of a session this node started, or None.
    @ivar stats: counters: sent, received, dropped (by reason), rekeys.
    @ivar lastHandshake: when the last session with it opened (the node's clock).
    """

    def __init__(self, addr):
        self.addr = addr
        self.session = None
        self.engine = None
        self.queue = deque()
        self.retryAt = 0.0
        self.stats = Counter()
        self.dropped = Counter()
        self.lastHandshake = None
        self.versionWarned = False
        self.retiring = {}  # duplicate session -> the call that closes it after DUPLICATE_GRACE

    def describe(self):
        """
        @return: this peer's entry of L{PeerNode.stats}.
        """
        rekeys = self.session.stats["rekeys"] if self.session is not None else 0
        return {"state": "open" if self.session is not None else ("connecting" if self.engine else "idle"),
                "sent": self.stats["sent"], "received": self.stats["received"], "dropped": dict(self.dropped),
                "rekeys": self.stats["rekeys"] + rekeys, "lastHandshake": self.lastHandshake,
                "key": None if self.session is None else self.session.peerKey.fingerprint()}


def route(data, peers, serverSessions, byIndex):
    """
    Which engine of a node a datagram is for: a COOKIE goes to the client
    engine whose HELLO it answers, a RESP or a protected packet to the
    client engine owning its index unless the server's sessions hold that
    index; everything else to the server engine.

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
            if peer.engine is not None and peer.engine.helloNonce == nonce:
                return peer.engine
        return None
    if (t == P.HANDSHAKE_RESP or t in _DATA_TYPES) and len(data) >= 5:
        index = int.from_bytes(data[1:5], "big")
        if index not in serverSessions:
            return byIndex.get(index)
    return None


def nextDeadline(server, peers, knownPeers):
    """
    @return: when a node must next run its timers: the earliest deadline of
        its engines, and of a retry for a peer with no session or engine
        that has messages queued or a known key; None if none.
    """
    when = [server.nextDeadline()]
    for peer in peers:
        if peer.engine is not None:
            when.append(peer.engine.nextDeadline())
        if peer.session is None and peer.engine is None and (peer.queue or knownPeers.get(peer.addr)):
            when.append(peer.retryAt)
    when = [w for w in when if w is not None]
    return min(when) if when else None
