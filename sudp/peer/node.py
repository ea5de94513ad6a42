# -*- test-case-name: sudp_test.peer.test_node -*-
"""
L{PeerNode}: symmetric sudp/1 peers on one UDP socket (docs/peers.md).

Every node listens on one port and is both a sudp/1 server (for peers that
start a session with it) and a client (for peers it starts one with); it
authenticates as a client with its own Ed25519 key, so each side of every
session knows the other's key and checks it against the known peers. A
peer is its address (host, port): several on one IP are several peers.

Either side may start. If both start at once, two sessions open; both
nodes keep the one started by the node with the smaller public key and
close the other, so exactly one remains.
"""

import ipaddress
import os
from collections import Counter
from dataclasses import replace

from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from sudp.addresses import canonicalAddress, formatAddress
from sudp.errors import BadServerSignature, MalformedPacket, SessionClosed
from sudp.peer.framing import PEER_VERSION, Framing, UnknownVersion, interfaceMTU
from sudp.peer.knownpeers import PeerKeyChanged
from sudp.peer.peers import Peer, nextDeadline, route
from sudp.udp.batching import senderFor
from sudp.udp.client import ClientEngine
from sudp.udp.config import Config
from sudp.engine import drain
from sudp.udp.events import HandshakeFailure, MessageReceived, SessionEnded, SessionOpened
from sudp.udp.ratelimit import HandshakeRateLimiter
from sudp.udp.records import CLOSE_NOT_AUTHORIZED
from sudp.udp.server import ServerEngine

PROTOCOL_VERSION = f"sudp/1 peer v{PEER_VERSION}"
MAX_QUEUED = 256  # messages held per peer until its session opens
DUPLICATE_GRACE = 2.0  # seconds a duplicate session still delivers what was in flight on it


class PeerNode(DatagramProtocol):
    """
    A peer-mode node. Start it with C{reactor.listenUDP(port, node)}
    (L{listenPeers} does).

    @ivar onMessage: called as C{onMessage(data, addr)} for every message.
    @ivar drops: datagrams dropped before any peer could be named, by reason.
    """

    log = Logger()
    noisy = False

    def __init__(self, reactor, identity, knownPeers, config=None, rateLimit=100, compress=False, pad=False,
                 mtu=None, family=4, onMessage=None, retryInterval=2.0, random=os.urandom):
        """
        @param identity: this node's L{sudp.keys.Identity}.
        @param knownPeers: a L{sudp.peer.knownpeers.KnownPeers}.
        @param rateLimit: messages a second accepted from one peer (a token
            bucket with a burst of as many); more are dropped and counted.
        @param compress: zstd-compress messages where it makes them smaller.
        @param pad: pad every datagram to the same size.
        @param mtu: the path MTU; by default the interfaces' smallest.
        """
        self.reactor = reactor
        self.identity = identity
        self.knownPeers = knownPeers
        self.mtu = mtu or interfaceMTU()
        self.framing = Framing(self.mtu, family, compress, pad)
        config = config or Config()
        self.config = replace(config, maxDatagramSize=self.framing.datagramSize)  # the MTU decides
        # every key is checked against the known peers by address once the
        # session opens (_opened): a refused one is closed as not authorized
        self.server = ServerEngine(identity, self.config, random=random)
        self.random = random
        self.rateLimit = rateLimit
        self.limiter = HandshakeRateLimiter(rateLimit, rateLimit)  # a token bucket per peer, on messages
        self.retryInterval = retryInterval
        self.onMessage = onMessage
        self.peers = {}
        self._byIndex = {}  # client engines by their session index
        self.drops = Counter()
        self._call = None
        self._sender = None

    # -- the application side ---------------------------------------------------

    def addPeer(self, addr, key=None):
        """
        Add a peer and start a session with it (now, if its key is known).

        @param key: its L{sudp.keys.PublicKey}, pinned now; else the known
            peers' key for C{addr}, if any. Without a key the node waits
            for the peer to start the session (and trusts its key only if
            the known peers say so, or on first use).
        @raise PeerKeyChanged: if C{key} differs from the pinned one.
        """
        addr = canonicalAddress(addr)
        if key is not None:
            self.knownPeers.pin(addr, key)
        peer = self.peers.get(addr)
        if peer is None:
            peer = self.peers[addr] = Peer(addr)
        self._connect(peer)
        self._flushAll()
        return peer

    def removePeer(self, addr):
        """
        Close the session with a peer and forget it (not its pinned key).
        """
        peer = self.peers.pop(canonicalAddress(addr), None)
        if peer is None:
            return
        now = self.reactor.seconds()
        for session, call in list(peer.retiring.items()):
            call.cancel()
            session.close(now, text="peer removed")
        peer.retiring.clear()
        if peer.session is not None:
            peer.session.close(now, text="peer removed")
        if peer.engine is not None:
            engine = peer.engine
            engine.closeSession(engine.session, now)
            self._drain(engine)  # its CLOSE: the peer is no longer listed, so _flushAll would not see it
            self._forget(engine)
        self._flushAll()

    def send(self, data, addr=None):
        """
        Send C{data} to the peer at C{addr}, or to every peer (C{None}).
        A message for a peer without a session yet waits (at most 256 each).

        @raise MessageTooLarge: if it cannot fit one datagram (after compression).
        @raise KeyError: if C{addr} is not a peer.
        """
        plaintext = self.framing.encode(data)
        peers = list(self.peers.values()) if addr is None else [self.peers[canonicalAddress(addr)]]
        now = self.reactor.seconds()
        for peer in peers:
            if peer.session is not None:
                self._sendOn(peer, plaintext, now)
            elif len(peer.queue) < MAX_QUEUED:
                peer.queue.append(plaintext)
                self._connect(peer)
            else:
                peer.dropped["queue-full"] += 1
        self._flushAll()

    def getPeers(self):
        """
        @return: the peers' addresses.
        """
        return list(self.peers)

    def getPeersByIP(self, ip):
        """
        @return: the addresses of the peers on C{ip} (several ports each).
        """
        host = str(ipaddress.ip_address(ip))
        return [addr for addr in self.peers if addr[0] == host]

    def hasPeer(self, addr):
        return canonicalAddress(addr) in self.peers

    def stats(self):
        """
        @return: like py-vault-udp's C{get_stats()}: protocol version, MTU, the
            largest message, peer count, and per peer its counters.
        """
        return {"protocol_version": PROTOCOL_VERSION, "mtu": self.mtu, "max_message": self.framing.maxMessage,
                "peer_count": len(self.peers), "drops": dict(sum(
                    [self.server.drops] + [p.engine.drops for p in self.peers.values() if p.engine is not None],
                    self.drops.copy())),
                "peers": {formatAddress(a): p.describe() for a, p in self.peers.items()}}

    def stop(self):
        """
        Close every session (telling each peer) and stop the timer.
        """
        now = self.reactor.seconds()
        for addr in list(self.peers):
            self.removePeer(addr)
        self.server.shutdown(now)
        self._flushAll()
        self._cancelTimer()

    # -- sessions -----------------------------------------------------------------

    def _connect(self, peer):
        """
        Start a session with C{peer} if there is none, none is starting, its
        key is known, and its retry time has come.
        """
        now = self.reactor.seconds()
        key = self.knownPeers.get(peer.addr)
        if peer.session is not None or peer.engine is not None or key is None or now < peer.retryAt:
            return
        engine = ClientEngine(key, peer.addr, self.config, identity=self.identity, random=self.random)
        peer.engine = engine
        engine.start(now)

    def _sendOn(self, peer, plaintext, now):
        try:
            peer.session.sendMessage(plaintext, now)
        except SessionClosed:
            peer.dropped["session-closed"] += 1
            return
        peer.stats["sent"] += 1

    def _opened(self, session, engine):
        addr = canonicalAddress(session.peerAddr)
        now = self.reactor.seconds()
        key = session.peerKey
        try:
            trusted = key is not None and self.knownPeers.check(addr, key)
        except PeerKeyChanged as e:
            self.log.error("sudp peer: {error}", error=e)
            trusted = False
        if not trusted:
            session.close(now, CLOSE_NOT_AUTHORIZED, "not a known peer")
            self.drops["untrusted-peer"] += 1
            return
        peer = self.peers.get(addr)
        if peer is None:
            peer = self.peers[addr] = Peer(addr)  # a known peer that reached us first
        current = peer.session
        if current is not None and current is not session and \
                self._initiatorKey(current) == self._initiatorKey(session):
            # the same node started a new session: it restarted, or lost the
            # old one; the new one replaces it
            current.close(now, text="replaced by a new session")
            current = None
        if current is not None and current is not session:
            # both started at once: keep the session started by the smaller
            # key; the other still delivers what is in flight on it for a
            # moment (the peer may have sent on it before it knew), then closes
            keep = min((current, session), key=self._initiatorKey)
            drop = session if keep is current else current
            peer.retiring[drop] = self.reactor.callLater(DUPLICATE_GRACE, self._retired, peer, drop)
            if keep is current:
                return
        peer.session = session
        peer.lastHandshake = now
        while peer.queue:
            self._sendOn(peer, peer.queue.popleft(), now)

    def _retired(self, peer, session):
        peer.retiring.pop(session, None)
        session.close(self.reactor.seconds(), text="duplicate session")
        self._flushAll()

    def _initiatorKey(self, session):
        """
        The raw public key of the node that started C{session}.
        """
        started = session.role == "client"  # this node's client engine started it
        return (self.identity.publicKey if started else session.peerKey).raw

    def _ended(self, session):
        peer = self.peers.get(canonicalAddress(session.peerAddr))
        if peer is None:
            return
        if peer.engine is not None and peer.engine.session is session:
            self._forget(peer.engine)  # a session this node started is over (or was the duplicate)
        if peer.session is not session:
            return
        peer.stats["rekeys"] += session.stats["rekeys"]
        peer.session = None
        peer.retryAt = self.reactor.seconds() + self.retryInterval

    def _received(self, session, plaintext):
        addr = canonicalAddress(session.peerAddr)
        peer = self.peers.get(addr)
        if peer is None or (peer.session is not session and session not in peer.retiring):
            self.drops["no-peer"] += 1
            return
        if not self.limiter.allow(addr, self.reactor.seconds()):
            peer.dropped["rate-limited"] += 1
            return
        try:
            message = self.framing.decode(plaintext)
        except UnknownVersion as e:
            peer.dropped["unknown-version"] += 1
            if not peer.versionWarned:
                peer.versionWarned = True
                self.log.error("sudp peer: {peer} speaks another protocol: {error}; its messages are refused",
                               peer=formatAddress(addr), error=e)
            return
        except MalformedPacket as e:
            peer.dropped[e.reason] += 1
            return
        peer.stats["received"] += 1
        if self.onMessage is not None:
            try:
                self.onMessage(message, addr)
            except Exception:
                self.log.failure("sudp peer: onMessage failed")

    def _forget(self, engine):
        self.drops.update(engine.drops)  # what it dropped stays counted
        engine.drops.clear()
        index = engine.handshakeIndex
        if index is not None and self._byIndex.get(index) is engine:
            del self._byIndex[index]
        for peer in self.peers.values():
            if peer.engine is engine:
                peer.engine = None

    # -- the socket ---------------------------------------------------------------

    def datagramReceived(self, data, addr):
        now = self.reactor.seconds()
        engine = self._route(data)
        (engine or self.server).receiveDatagram(data, addr, now)
        self._flushAll()

    def _route(self, data):
        """
        @return: the client engine a datagram is for, or None (the server's).
        """
        return route(data, self.peers.values(), self.server.sessions, self._byIndex)

    def _flushAll(self):
        """
        Send what every engine queued, act on its events, reschedule the timer.
        """
        for engine in [self.server] + [p.engine for p in self.peers.values() if p.engine is not None]:
            index = getattr(engine, "handshakeIndex", None)
            if index is not None and index not in self._byIndex:
                self._byIndex[index] = engine
            self._drain(engine)
        self._schedule()

    def _drain(self, engine):
        def handle(event):
            kind = type(event)
            if kind is MessageReceived:
                self._received(event.session, event.message)
            elif kind is SessionOpened:
                self._opened(event.session, engine)
            elif kind is SessionEnded:
                self._ended(event.session)
            elif kind is HandshakeFailure:
                self._failed(engine, event.error)

        drain(engine, self._send, handle)

    def _send(self, out):
        if self.transport is not None:
            self._sender = senderFor(self._sender, self.transport.socket, self.config.gso)
            failed, _ = self._sender.sendAll(out)
            if failed:  # UDP is lossy: counted, as the adapters count theirs
                self.drops["send-failed"] += failed

    def _failed(self, engine, error):
        for peer in self.peers.values():
            if peer.engine is engine:
                if isinstance(error, BadServerSignature):
                    self.log.error("sudp peer: {peer} DID NOT PROVE ITS PINNED KEY {key}: it is not that peer, or "
                                   "its key was replaced (then edit the known peers)", peer=formatAddress(peer.addr),
                                   key=engine.serverKey.fingerprint())
                else:
                    self.log.info("sudp peer: no session with {peer}: {error}", peer=formatAddress(peer.addr),
                                  error=error)
                peer.dropped["handshake-failed"] += 1
                peer.retryAt = self.reactor.seconds() + self.retryInterval
        self._forget(engine)

    # -- timers -------------------------------------------------------------------

    def _schedule(self):
        when = nextDeadline(self.server, self.peers.values(), self.knownPeers)
        self._cancelTimer()
        if when is not None and self.transport is not None:
            self._call = self.reactor.callLater(max(0.0, when - self.reactor.seconds()), self._onTimer)

    def _onTimer(self):
        self._call = None
        now = self.reactor.seconds()
        self.server.handleTimer(now)
        for peer in list(self.peers.values()):
            if peer.engine is not None:
                peer.engine.handleTimer(now)
            else:
                self._connect(peer)
        self._flushAll()

    def _cancelTimer(self):
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def stopProtocol(self):
        self._cancelTimer()


def listenPeers(reactor, port, node, interface=""):
    """
    Listen on C{port} with C{node}.

    @return: the listening port.
    """
    return reactor.listenUDP(port, node, interface=interface, maxPacketSize=node.config.maxDatagramSize + 1)

