# -*- test-case-name: sudp_test.peer.test_blocking, sudp_test.peer.test_node -*-
"""
Helpers shared by several test modules (moved from test_peer).
"""

import logging
import socket

from twisted.internet import reactor

from sudp.keys import Identity
from sudp.peer.knownpeers import KnownPeers
from sudp.peer.node import listenPeers, PeerNode

from sudp_test.waiting import waiter

LOCAL = "127.0.0.1"

waitUntil = waiter(timeout=10.0)

def isOpen(node, other):
    peer = node.peers.get(other.addr)
    return peer is not None and peer.session is not None

def messages(node, sender=None):
    """
    @return: the messages C{node} delivered, in order (from C{sender} only).
    """
    return [data for data, addr in node.received if sender is None or addr == sender.addr]

class PeerNet:
    """
    Makes listening nodes on 127.0.0.1 that record what they deliver, the
    datagrams they receive and the sessions that open and end at them, and
    cleans them up (node.stop(), then the port).
    """

    timeout = 30

    def makeNode(self, identity=None, known=None, port=0, local=LOCAL, **kwargs):
        identity = identity or Identity.generate()
        node = PeerNode(reactor, identity, known if known is not None else KnownPeers(), interface=local, **kwargs)
        node.received = []
        node.incoming = []
        node.opened = []
        node.ended = []
        node.onMessage = lambda data, addr: node.received.append((bytes(data), addr))
        _wrap(node, "datagramReceived", lambda data, addr: node.incoming.append((bytes(data), addr)))
        _wrap(node.engine, "_opened", lambda session, engine, now: node.opened.append(session))
        _wrap(node.engine, "_ended", lambda session, engine, now: node.ended.append(session))
        listening = listenPeers(reactor, port, node, local)
        self.addCleanup(listening.stopListening)
        self.addCleanup(node.stop)
        node.listening = listening
        node.addr = (local, listening.getHost().port)
        node.identity_ = identity
        node.key = identity.publicKey
        return node

    def link(self, a, b):
        """
        C{a} adds C{b} (and starts the session); C{b} trusts C{a}'s key but
        does not add it.

        @return: a Deferred that fires once both ends are open.
        """
        b.knownPeers.pin(a.addr, a.key)
        a.addPeer(b.addr, b.key)
        return waitUntil(lambda: isOpen(a, b) and isOpen(b, a), f"a session {a.addr} -> {b.addr}")

    def captureLogs(self):
        """
        @return: a list that receives every record of the C{sudp.peer}
            stdlib logger (what a plain program's logging.basicConfig shows).
        """
        records = []
        handler = logging.Handler(logging.DEBUG)
        handler.emit = records.append
        logger = logging.getLogger("sudp.peer")
        logger.addHandler(handler)
        level = logger.level
        logger.setLevel(logging.DEBUG)
        self.addCleanup(logger.setLevel, level)
        self.addCleanup(logger.removeHandler, handler)
        return records

    def freePort(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((LOCAL, 0))
        port = s.getsockname()[1]
        s.close()
        return port

    def rawSocket(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((LOCAL, 0))
        self.addCleanup(s.close)
        return s

def _wrap(node, name, record):
    original = getattr(node, name)

    def wrapped(*args):
        record(*args)
        return original(*args)

    setattr(node, name, wrapped)
