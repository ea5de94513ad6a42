# -*- test-case-name: sudp_test.peer.test_blocking -*-
"""
L{PeerSocket} (also named L{UDPSocketClass}): a blocking, thread-safe facade
of peer mode for programs that do not run a Twisted reactor, in the shape
of py-vault-udp's C{UDPSocketClass}::

    with PeerSocket(recv_port=11000, tofu=True, known_peers="known_peers") as sock:
        sock.add_peer(("192.168.1.100", 8000))
        sock.udp_recv_data.connect(lambda text, addr: print(text, addr))
        sock.send_data("Hello!")                          # every peer
        sock.send_data(b"Direct", ("192.168.1.100", 8000))
        print(sock.get_stats())

Where the reactor runs:

  - no reactor runs in the process: the sockets share one private reactor
    (not Twisted's global one) in a daemon thread, started by the first
    socket and stopped, its thread joined, when the last one stops;
  - Twisted's reactor already runs (a Twisted program, or crochet): the
    socket uses it; from another thread each call waits for the reactor
    thread, and from the reactor thread itself (a receive callback, a
    Twisted callback) calls run at once.

Every method hands its work to the reactor thread and waits for the result,
so it may be called from any thread. Receive callbacks run in the reactor
thread: keep them short, or hand the data to your own thread.
"""

import queue
import threading
from dataclasses import replace

from twisted.internet import defer
from twisted.python import failure, threadable

from sudp.keys import Identity, PublicKey, loadOrCreateIdentity
from sudp.peer.knownpeers import MAX_PINS, KnownPeers
from sudp.peer.node import PeerNode, listenPeers
from sudp.peer.signals import Signal
from sudp.udp.config import Config

_lock = threading.Lock()
_private = None  # (reactor, thread) while any PeerSocket uses the private reactor
_users = 0


def _newReactor():
    """
    @return: a new reactor instance, not installed as Twisted's global one.
    """
    try:
        from twisted.internet.epollreactor import EPollReactor as Reactor
    except ImportError:  # not Linux
        from twisted.internet.selectreactor import SelectReactor as Reactor
    return Reactor()


def _acquire():
    """
    @return: C{(reactor, private)}: Twisted's reactor if it runs, else the
        private one (started now if no socket uses it).
    """
    global _private, _users
    from twisted.internet import reactor

    if reactor.running:
        return reactor, False
    with _lock:
        if _private is None:
            private = _newReactor()
            thread = threading.Thread(target=private.run, kwargs={"installSignalHandlers": False},
                                      name="sudp-reactor", daemon=True)
            thread.start()
            _private = (private, thread)
        _users += 1
        return _private[0], True


def _release(timeout):
    """
    One socket no longer uses the private reactor: the last one stops it
    and waits up to C{timeout} seconds for its thread.

    @return: False if the thread did not end in time.
    """
    global _private, _users
    with _lock:
        _users -= 1
        if _users or _private is None:
            return True
        reactor, thread = _private
        _private = None
    reactor.callFromThread(reactor.stop)
    if threading.current_thread() is thread:  # stopped from a receive callback: it ends once this returns
        return True
    thread.join(timeout)
    return not thread.is_alive()


def reactorThread():
    """
    @return: the thread the private reactor runs in, or None.
    """
    private = _private
    return None if private is None else private[1]


class PeerSocket:
    """
    A peer-mode node behind blocking calls.

    @ivar public_key: this node's public key, in the text form peers pin.
    @ivar port: the UDP port it listens on.
    @ivar udp_recv_data: a L{Signal} emitted as C{(text, addr)} for every
        message: the message decoded as UTF-8, losslessly
        (C{errors="surrogateescape"}: C{text.encode("utf-8",
        "surrogateescape")} gives back its bytes), as py-vault-udp's
        users expect; L{on_receive} callbacks get the bytes.
    @ivar udp_send_data: a L{Signal} connected to L{send_data}: emitting
        C{(data)} or C{(data, addr)} sends.
    @ivar node: the L{PeerNode} (use it only from the reactor thread).
    """

    def __init__(self, recv_port=11000, rate_limit=100, key_file=None, known_peers=None, tofu=False,
                 compress=False, compression_level=3, pad=False, interface="", mtu=None, lifetime=None,
                 config=None, max_pins=MAX_PINS, timeout=5.0):
        """
        @param recv_port: the UDP port to listen on (0: any free one).
        @param rate_limit: messages a second accepted from one peer.
        @param key_file: this node's Ed25519 key (created, 0600, if
            missing); None: a new key for this run only.
        @param known_peers: the known-peers file (pinned keys), or None.
        @param tofu: trust on first use: pin the first key each peer added
            by address proves.
        @param compress: zstd-compress messages where it makes them
            smaller, at C{compression_level} (1 fastest to 22).
        @param pad: pad every datagram to one size.
        @param interface: the address to listen on: C{""} all IPv4, C{"::"}
            IPv6 and IPv4, C{"::1"}...
        @param lifetime: seconds a session key is used before sudp/1 rekeys
            (py-vault-udp's key lifetime); default C{config}'s
            C{rekeyAfterTime} (300).
        @param config: sudp/1's options: a L{Config} or a dict of its
            fields (C{idleTimeout}, C{keepaliveInterval}, ...).
        @param max_pins: the most keys trust on first use pins.
        @param timeout: seconds each call waits for the reactor thread.
        @raise sudp.errors.ConfigurationError: on a bad option, or a key
            file that cannot be read; C{OSError} if the port is taken.
        """
        if isinstance(config, dict):
            config = Config(**config)
        config = config or Config()
        if lifetime is not None:
            config = replace(config, rekeyAfterTime=lifetime)
        self.timeout = timeout
        identity = loadOrCreateIdentity(key_file)[0] if key_file else Identity.generate()
        self.public_key = identity.publicKey.toText()
        self._callbacks = []
        self._errorCallbacks = []
        self._stopped = False
        self.udp_recv_data = Signal("udp_recv_data")
        self.udp_send_data = Signal("udp_send_data")
        self.udp_send_data.connect(self.send_data)
        self.reactor, self._private = _acquire()
        known = KnownPeers(known_peers, tofu, max_pins)

        def start():
            self.node = PeerNode(self.reactor, identity, known, config=config, rateLimit=rate_limit,
                                 compress=compress, compressionLevel=compression_level, pad=pad, mtu=mtu,
                                 interface=interface, onMessage=self._dispatch, onError=self._failed)
            self._port = listenPeers(self.reactor, recv_port, self.node)
            return self._port.getHost().port

        try:
            self.port = self._call(start)
        except BaseException:
            self._stopped = True
            if self._private:
                _release(timeout)
            raise

    # -- running things in the reactor thread ---------------------------------------

    def _inReactorThread(self):
        if self._private:
            return threading.current_thread() is reactorThread()
        return threadable.isInIOThread()

    def _call(self, f, *args, timeout=None):
        """
        Run C{f(*args)} in the reactor thread and wait for its result (a
        Deferred's, if it returns one).

        @raise TimeoutError: if it takes longer than C{timeout} (the
            socket's by default).
        """
        if self._inReactorThread():  # a receive callback, or a Twisted program's own code
            return f(*args)
        results = queue.Queue()

        def run():
            d = defer.maybeDeferred(f, *args)
            d.addBoth(results.put)

        self.reactor.callFromThread(run)
        try:
            result = results.get(timeout=self.timeout if timeout is None else timeout)
        except queue.Empty:
            raise TimeoutError(f"the reactor thread did not answer within {timeout or self.timeout:g} s") from None
        if isinstance(result, failure.Failure):
            result.raiseException()
        return result

    def _dispatch(self, data, addr):
        for callback in list(self._callbacks):
            callback(data, addr)
        if len(self.udp_recv_data):
            self.udp_recv_data.emit(data.decode("utf-8", "surrogateescape"), addr)

    def _failed(self, event):
        for callback in list(self._errorCallbacks):
            callback(event)

    # -- py-vault-udp's API ------------------------------------------------------

    def on_receive(self, callback):
        """
        Call C{callback(data, addr)} for every message, C{data} in bytes (in
        the reactor thread). Several callbacks may be registered.
        """
        self._callbacks.append(callback)

    def on_error(self, callback):
        """
        Call C{callback(event)} for every refusal and failure (a
        L{sudp.peer.events.PeerRefused} or
        L{sudp.peer.events.PeerHandshakeFailed}; C{event.text()} says it
        in a line). They are also logged to the C{sudp.peer} logger.
        """
        self._errorCallbacks.append(callback)

    def add_peer(self, addr, key=None):
        """
        Add the peer at C{addr} and start a session with it.

        @param key: its public key (C{ed25519-...} text or L{PublicKey}),
            to pin; else the known peers' or, with C{tofu}, the first one
            it proves.
        @raise sudp.peer.engine.PeerKeyUnknown: with no key, none pinned,
            and trust on first use off.
        """
        if isinstance(key, str):
            key = PublicKey.fromText(key)
        self._call(lambda: self.node.addPeer(tuple(addr), key) and None)

    def remove_peer(self, addr):
        """
        Close the session with the peer at C{addr} and forget it.
        """
        self._call(self.node.removePeer, tuple(addr))

    def send_data(self, data, addr=None):
        """
        Send C{data} (bytes, or text as UTF-8) to one peer, or to all.

        @raise sudp.errors.MessageTooLarge: if it cannot fit one datagram.
        @raise KeyError: if C{addr} is not a peer.
        """
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        self._call(self.node.send, bytes(data), None if addr is None else tuple(addr))

    def get_peers(self):
        """
        @return: the peers' addresses.
        """
        return self._call(self.node.getPeers)

    def get_peers_by_ip(self, ip):
        """
        @return: the addresses of the peers on C{ip}.
        """
        return self._call(self.node.getPeersByIP, ip)

    def has_peer(self, addr):
        """
        @return: True if C{addr} is a peer.
        """
        return self._call(self.node.hasPeer, tuple(addr))

    def get_stats(self):
        """
        @return: protocol version, MTU, largest message, peer count, drops,
            and per peer its state and counters (docs/peers.md, "Stats").
        """
        return self._call(self.node.stats)

    @property
    def lifetime(self):
        """
        Seconds a session key is used before sudp/1 rekeys; setting it
        applies to the sessions that open afterwards (give C{lifetime=} to
        the constructor to cover every session).
        """
        return self._call(lambda: self.node.engine.config.rekeyAfterTime)

    @lifetime.setter
    def lifetime(self, seconds):
        self._call(lambda: self.node.engine.reconfigure(rekeyAfterTime=seconds))

    def update_recv_port(self, recv_port):
        """
        Listen on another port instead. Peers see this node's packets come
        from the new port and move their sessions there once they validated
        it (as after a NAT rebinding): nothing is re-established.

        @raise twisted.internet.error.CannotListenError: if the port is
            taken (the node listens on its old one again).
        @return: the new port.
        """
        def listen(_, port):
            self._port = listenPeers(self.reactor, port, self.node)
            self.port = self._port.getHost().port
            return self.port

        def back(reason, old):
            listen(None, old)  # the old port again, then the error
            return reason

        def move():
            old = self.port
            d = defer.maybeDeferred(self._port.stopListening)
            d.addCallback(listen, recv_port)
            d.addErrback(back, old)
            return d

        return self._call(move)

    def stop(self, timeout=5.0):
        """
        Close every session (telling each peer) and the socket, waiting at
        most C{timeout} seconds; the last socket on the private reactor
        stops it and waits for its thread. Calling it again does nothing.

        @return: True if everything closed within C{timeout}.
        """
        if self._stopped:
            return True
        self._stopped = True
        clean = True

        def stop():
            self.node.stop()
            return self._port.stopListening()

        try:
            self._call(stop, timeout=timeout)
        except TimeoutError:
            clean = False
        if self._private:
            clean = _release(timeout) and clean
        return clean

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


UDPSocketClass = PeerSocket
"""
py-vault-udp's name for L{PeerSocket}.
"""
