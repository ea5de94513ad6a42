# -*- test-case-name: sudp_test.peer.test_blocking -*-
"""
L{PeerSocket}: a blocking, thread-safe facade of peer mode for programs that
do not run a Twisted reactor, in the shape of py-vault-udp's
C{UDPSocketClass} (py-vault-udp's README)::

    with PeerSocket(recv_port=11000, rate_limit=100, key_file="me.key",
                    known_peers="known_peers") as sock:
        sock.add_peer(("192.168.1.100", 8000))
        sock.on_receive(lambda data, addr: print(data, addr))
        sock.send_data(b"Hello!")                         # every peer
        sock.send_data(b"Direct", ("192.168.1.100", 8000))
        print(sock.get_stats())

The reactor runs in one daemon thread shared by every PeerSocket of the
process; each method hands its work to that thread and waits for the
result, so it may be called from any thread. Receive callbacks run in the
reactor thread: keep them short, or hand the data to your own thread.
"""

import threading

from twisted.internet import threads

from sudp.keys import Identity, PublicKey, loadOrCreateIdentity
from sudp.peer.knownpeers import KnownPeers
from sudp.peer.node import PeerNode, listenPeers

_lock = threading.Lock()
_thread = None


def _reactor():
    """
    @return: the reactor, running in its daemon thread (started once).
    @raise RuntimeError: if called from the reactor's own thread (there, use
        L{PeerNode} directly).
    """
    global _thread
    from twisted.internet import reactor

    with _lock:
        if _thread is None:
            if reactor.running:
                raise RuntimeError("the reactor already runs in this process: use sudp.peer.node.PeerNode")
            _thread = threading.Thread(target=reactor.run, kwargs={"installSignalHandlers": False},
                                       name="sudp-reactor", daemon=True)
            _thread.start()
    if threading.current_thread() is _thread:
        raise RuntimeError("PeerSocket blocks: do not call it from the reactor thread (use PeerNode there)")
    return reactor


class PeerSocket:
    """
    A peer-mode node behind blocking calls.

    @ivar public_key: this node's public key, in the text form peers pin.
    @ivar port: the UDP port it listens on.
    """

    def __init__(self, recv_port=11000, rate_limit=100, key_file=None, known_peers=None, tofu=False,
                 compress=False, pad=False, interface="", mtu=None, timeout=5.0):
        """
        @param key_file: this node's Ed25519 key (created, 0600, if missing);
            None: a new key for this run only.
        @param known_peers: the known-peers file (pinned keys), or None.
        @param tofu: trust a new peer's key the first time it proves one.
        """
        self.reactor = _reactor()
        self.timeout = timeout
        identity = loadOrCreateIdentity(key_file)[0] if key_file else Identity.generate()
        self.public_key = identity.publicKey.toText()
        self._callbacks = []
        self._stopped = False

        def start():
            self.node = PeerNode(self.reactor, identity, KnownPeers(known_peers, tofu), rateLimit=rate_limit,
                                 compress=compress, pad=pad, mtu=mtu, onMessage=self._dispatch)
            self._port = listenPeers(self.reactor, recv_port, self.node, interface)
            return self._port.getHost().port

        self.port = self._call(start)

    def _call(self, f, *args):
        if threading.current_thread() is _thread:  # from a receive callback: already in the reactor thread
            return f(*args)
        return threads.blockingCallFromThread(self.reactor, f, *args)

    def _dispatch(self, data, addr):
        for callback in list(self._callbacks):
            callback(data, addr)

    def on_receive(self, callback):
        """
        Call C{callback(data, addr)} for every message received (in the
        reactor thread). Several callbacks may be registered.
        """
        self._callbacks.append(callback)

    def add_peer(self, addr, key=None):
        """
        Add the peer at C{addr} and start a session with it.

        @param key: its public key (C{ed25519-...} text or L{PublicKey}), to
            pin; else the known peers' (or trust on first use).
        """
        if isinstance(key, str):
            key = PublicKey.fromText(key)
        self._call(lambda: self.node.addPeer(tuple(addr), key) and None)

    def remove_peer(self, addr):
        self._call(self.node.removePeer, tuple(addr))

    def send_data(self, data, addr=None):
        """
        Send C{data} (bytes, or text as UTF-8) to one peer, or to all.

        @raise sudp.errors.MessageTooLarge: if it cannot fit one datagram.
        """
        if isinstance(data, str):
            data = data.encode("utf-8")
        self._call(self.node.send, bytes(data), None if addr is None else tuple(addr))

    def get_peers(self):
        return self._call(self.node.getPeers)

    def get_peers_by_ip(self, ip):
        return self._call(self.node.getPeersByIP, ip)

    def has_peer(self, addr):
        return self._call(self.node.hasPeer, tuple(addr))

    def get_stats(self):
        """
        @return: protocol version, MTU, peer count and per-peer counters.
        """
        return self._call(self.node.stats)

    def stop(self, timeout=5.0):
        """
        Close every session and the socket. The reactor thread keeps
        running for other sockets of the process.
        """
        if self._stopped:
            return
        self._stopped = True

        def stop():
            self.node.stop()
            return self._port.stopListening()

        self._call(stop)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
