# -*- test-case-name: sudp_test.peer.test_engine -*-
"""
L{PeerEngine}: peer mode's logic, sans-IO (docs/peers.md). It keeps the
engine contract (L{sudp.engine.IDatagramEngine}): feed it datagrams, timers
and the application's calls with the time; pull datagrams, events
(L{sudp.peer.events}) and the next deadline. L{sudp.peer.node.PeerNode} is
its Twisted driver.

Inside, one sudp/1 server engine answers the peers that start a session
with this node, and one client engine per peer runs the handshakes this
node starts; the peer engine drives them through the same contract and
decides, for every session that opens, whether the peer is trusted:

  - its key is pinned for the session's address (the INIT's cookie-proven
    source, or the address this node's HELLO went to): the key must match,
    or the session is refused, loudly (C{key-changed});
  - no key is pinned and the application added that address: with trust on
    first use the key is pinned (up to the known peers' C{maxPins});
    without it the session is refused;
  - anything else is a stranger, refused and counted.

Peers are found by their session, not by the address packets come from:
a session follows its peer to a new address only after path validation
(in both directions: C{followPeer}), and the application keeps calling the
peer by the address it added. A session that ends is replaced by a new
handshake, with exponential backoff.
"""

import logging
import os
from collections import Counter
from dataclasses import replace

from zope.interface import implementer

from sudp.addresses import canonicalAddress, formatAddress
from sudp.engine import EngineOutput, IDatagramEngine
from sudp.errors import BadServerSignature, ConfigurationError, MalformedPacket, SessionClosed
from sudp.peer.events import (
    PeerConnected,
    PeerDisconnected,
    PeerHandshakeFailed,
    PeerKeyPinned,
    PeerMessage,
    PeerRefused,
)
from sudp.peer.framing import PEER_VERSION, Framing, UnknownVersion
from sudp.peer.knownpeers import PeerKeyChanged, PinLimitReached
from sudp.peer.peers import Peer, route
from sudp.udp.client import ClientEngine
from sudp.udp.config import Config
from sudp.udp.events import HandshakeFailure, MessageReceived, SessionEnded, SessionOpened
from sudp.udp.ratelimit import HandshakeRateLimiter
from sudp.udp.records import CLOSE_NOT_AUTHORIZED
from sudp.udp.server import ServerEngine
from sudp.udp.session import CLIENT

PROTOCOL_VERSION = f"sudp/1 peer v{PEER_VERSION}"
MAX_QUEUED = 256  # messages held per peer until its session opens
DUPLICATE_GRACE = 2.0  # seconds a duplicate session still delivers what was in flight on it


class PeerKeyUnknown(ConfigurationError):
    """
    A peer was added with no key pinned for it while trust on first use is
    off: no session with it could ever be trusted.
    """


@implementer(IDatagramEngine)
class PeerEngine(EngineOutput):
    """
    A peer-mode node without I/O.

    @ivar peers: L{Peer}s by the address the application knows them by.
    @ivar drops: datagrams and sessions dropped before any peer could be
        named, by reason (C{stranger}, C{no-peer}...).
    """

    def __init__(self, identity, knownPeers, config=None, framing=None, rateLimit=100, retryInterval=2.0,
                 maxRetryInterval=60.0, random=os.urandom):
        """
        @param identity: this node's L{sudp.keys.Identity}.
        @param knownPeers: a L{sudp.peer.knownpeers.KnownPeers}.
        @param config: sudp/1's options (L{Config}); the datagram size is
            the framing's, and C{revealKey} and C{followPeer} are on.
        @param framing: the node's L{Framing} (a 1500-byte MTU over IPv6 if
            not given).
        @param rateLimit: messages a second accepted from one peer (a token
            bucket with a burst of as many); more are dropped and counted.
        @param retryInterval: seconds before the first retry of a failed
            handshake or a replacement of an ended session; each failure in
            a row doubles it, up to C{maxRetryInterval}.
        """
        if retryInterval <= 0 or maxRetryInterval < retryInterval:
            raise ConfigurationError("retryInterval must be positive and at most maxRetryInterval")
        self.identity = identity
        self.knownPeers = knownPeers
        self.framing = framing or Framing(1500, 6)
        self.config = replace(config or Config(), maxDatagramSize=self.framing.datagramSize, revealKey=True,
                              followPeer=True)
        self.random = random
        self.server = ServerEngine(identity, self.config, random=random)
        self.limiter = HandshakeRateLimiter(rateLimit, rateLimit)
        self.retryInterval = retryInterval
        self.maxRetryInterval = maxRetryInterval
        self.peers = {}
        self.drops = Counter()
        self.outbox = []
        self.events = []
        self._bySession = {}  # every session kept (current or retiring) -> its peer
        self._byIndex = {}  # this node's client engines by their session index

    # -- the application's calls -------------------------------------------

    def addPeer(self, addr, now, key=None):
        """
        Add a peer and start a session with it.

        @param key: its L{sudp.keys.PublicKey}, pinned now; else the known
            peers' key for C{addr}, or, with trust on first use, the key
            the peer proves in the first handshake.
        @raise PeerKeyChanged: if C{key} differs from the pinned one.
        @raise PeerKeyUnknown: if no key is given or pinned and trust on
            first use is off.
        @return: the L{Peer}.
        """
        addr = canonicalAddress(addr)
        if key is not None:
            self.knownPeers.pin(addr, key)
        elif self.knownPeers.get(addr) is None and not self.knownPeers.tofu:
            raise PeerKeyUnknown(
                f"no key is pinned for peer {formatAddress(addr)} and trust on first use is off, so no session "
                f"with it could be trusted: give its key (add_peer(addr, key=...); a node prints its key as "
                f"public_key), add a line for it to the known peers, or turn on trust on first use (tofu=True)")
        peer = self.peers.get(addr)
        if peer is None:
            peer = self.peers[addr] = Peer(addr, self.retryInterval)
        peer.added = True
        peer.retryAt = now
        self._connect(peer, now)
        self._pump(now)
        return peer

    def removePeer(self, addr, now):
        """
        Close the sessions with a peer (telling it) and forget it, not its
        pinned key.
        """
        peer = self.peers.get(canonicalAddress(addr))
        if peer is None:
            return
        peer.removed = True  # its sessions' ends start nothing new
        for session in list(peer.retiring):
            session.close(now, text="peer removed")
        if peer.session is not None:
            peer.session.close(now, text="peer removed")
        engine = peer.engine
        if engine is not None:
            engine.closeSession(engine.session, now, "peer removed")
        self._pump(now)  # their CLOSEs, while the peer is still listed
        del self.peers[peer.addr]
        if engine is not None:
            self._forget(peer, engine)

    def send(self, data, now, addr=None):
        """
        Send C{data} to the peer at C{addr}, or to every peer (C{None}).
        A message for a peer without a session waits (at most 256 each).

        @raise sudp.errors.MessageTooLarge: if it cannot fit one datagram
            (after compression).
        @raise KeyError: if C{addr} is not a peer.
        """
        plaintext = self.framing.encode(data)
        peers = list(self.peers.values()) if addr is None else [self.peers[canonicalAddress(addr)]]
        for peer in peers:
            if peer.session is not None:
                self._sendOn(peer, plaintext, now)
            elif len(peer.queue) < MAX_QUEUED:
                peer.queue.append(plaintext)
                self._connect(peer, now)
            else:
                peer.dropped["queue-full"] += 1
        self._pump(now)

    def stop(self, now):
        """
        Close every session (telling each peer).
        """
        for addr in list(self.peers):
            self.removePeer(addr, now)
        self.server.shutdown(now)
        self._pump(now)

    def reconfigure(self, **changes):
        """
        Change sudp/1 options (L{Config} fields, such as C{rekeyAfterTime})
        for the sessions that open from now on.

        @raise sudp.errors.ConfigurationError: on a bad value.
        """
        if "maxDatagramSize" in changes:
            raise ConfigurationError("the datagram size follows the MTU: make a new node to change it")
        self.config = self.server.config = replace(self.config, **changes)

    def stats(self, now):
        """
        @return: like py-vault-udp's C{get_stats()}: protocol version, MTU,
            the largest message, peer count, drops before any peer was
            named, and per peer its state and counters.
        """
        drops = self.drops.copy()
        for engine in self._engines():
            drops.update(engine.drops)
        return {"protocol_version": PROTOCOL_VERSION, "mtu": self.framing.mtu,
                "max_message": self.framing.maxMessage, "peer_count": len(self.peers), "drops": dict(drops),
                "pins": len(self.knownPeers), "tofu": self.knownPeers.tofu,
                "peers": {formatAddress(a): p.describe(now) for a, p in self.peers.items()}}

    # -- the engine contract -------------------------------------------------

    def receiveDatagram(self, data, addr, now):
        """
        Handle one datagram: the engine it belongs to takes it.
        """
        engine = route(data, addr, self.peers.values(), self.server.sessions, self._byIndex)
        (engine or self.server).receiveDatagram(data, addr, now)
        self._pump(now)

    def receiveDatagrams(self, datagrams, addr, now):
        """
        Handle several datagrams from C{addr}, in order.
        """
        for data in datagrams:
            engine = route(data, addr, self.peers.values(), self.server.sessions, self._byIndex)
            (engine or self.server).receiveDatagram(data, addr, now)
        self._pump(now)

    def nextDeadline(self):
        """
        @return: the earliest of the engines' deadlines, the end of a
            duplicate session's grace, and the next handshake of a peer
            this node can and wants to reach; None if there is none.
        """
        when = [engine.nextDeadline() for engine in self._engines()]
        for peer in self.peers.values():
            when.extend(peer.retiring.values())
            if self._wantsSession(peer):
                when.append(peer.retryAt)
        when = [w for w in when if w is not None]
        return min(when) if when else None

    def onTimer(self, now):
        """
        Run what is due: the engines' timers, duplicate sessions' ends and
        handshakes to (re)start.
        """
        for engine in self._engines():
            due = engine.nextDeadline()
            if due is not None and due <= now:
                engine.handleTimer(now)
        for peer in list(self.peers.values()):
            for session, until in list(peer.retiring.items()):
                if until <= now:
                    del peer.retiring[session]
                    session.close(now, text="duplicate session")
            self._connect(peer, now)
        self._pump(now)

    def sendMessage(self, session, message, now):
        """
        Send an already framed message on one of this node's sessions.
        """
        session.sendMessage(message, now)
        self._pump(now)

    def closeSession(self, session, now, text=""):
        """
        Close one of this node's sessions (its peer stays, and is reached
        again after the backoff).
        """
        session.close(now, text=text)
        self._pump(now)

    # -- inside ------------------------------------------------------------------

    def _engines(self):
        return [self.server] + [p.engine for p in self.peers.values() if p.engine is not None]

    def _wantsSession(self, peer):
        """
        @return: True if a handshake with C{peer} should start at its retry
            time: none runs or is open, and its key is pinned (or the
            application added it and trusts on first use).
        """
        if peer.session is not None or peer.engine is not None or peer.removed:
            return False
        return self.knownPeers.get(peer.addr) is not None or (peer.added and self.knownPeers.tofu)

    def _connect(self, peer, now):
        if not self._wantsSession(peer) or now < peer.retryAt:
            return
        key = self.knownPeers.get(peer.addr)
        engine = ClientEngine(key, peer.addr, self.config, identity=self.identity, random=self.random,
                              learnServerKey=key is None)
        peer.engine = engine
        peer.stats["handshakes"] += 1
        engine.start(now)

    def _pump(self, now):
        """
        Take what every engine queued and act on its events, until none has
        anything more (acting may queue more).
        """
        busy = True
        while busy:
            busy = False
            for engine in self._engines():
                index = getattr(engine, "handshakeIndex", None)
                if index is not None and index not in self._byIndex:
                    self._byIndex[index] = engine
                out = engine.datagramsToSend()
                if out:
                    busy = True
                    self.outbox.extend(out)
                events = engine.nextEvents()
                if events:
                    busy = True
                    for event in events:
                        self._handle(engine, event, now)

    def _handle(self, engine, event, now):
        kind = type(event)
        if kind is MessageReceived:
            self._received(event.session, event.message, now)
        elif kind is SessionOpened:
            self._opened(event.session, engine, now)
        elif kind is SessionEnded:
            self._ended(event.session, engine, now)
        elif kind is HandshakeFailure:
            self._failed(engine, event.error, now)

    def _sendOn(self, peer, plaintext, now):
        try:
            peer.session.sendMessage(plaintext, now)
        except SessionClosed:
            peer.dropped["session-closed"] += 1
            return
        peer.stats["sent"] += 1

    # -- trust -----------------------------------------------------------------

    def _opened(self, session, engine, now):
        """
        A session opened: decide whether its peer is trusted, then keep it.
        """
        addr = canonicalAddress(session.peerAddr)  # cookie-proven (server) or where the HELLO went (client)
        started = engine is not self.server
        peer = self.peers.get(addr)
        if started and (peer is None or peer.engine is not engine):
            session.close(now, text="peer removed")
            return
        refusal = self._trust(addr, session.peerKey, peer)
        if refusal is not None:
            reason, detail = refusal
            session.close(now, CLOSE_NOT_AUTHORIZED, "not a trusted peer")
            self.drops[reason] += 1
            self.events.append(PeerRefused(addr, reason, detail))
            if peer is not None:
                peer.lastError = f"{reason}: {detail}"
                if started:
                    self._retryIn(peer, now)
            return
        if peer is None:
            peer = self.peers[addr] = Peer(addr, self.retryInterval)  # a pinned peer reached us first
        self._keep(peer, session, now)

    def _trust(self, addr, key, peer):
        """
        @return: None if C{key}, just proven by a session from C{addr}, is
            trusted; else C{(reason, what to do)}.
        """
        if key is None:
            return "no-key", "the peer did not authenticate with a key (it is not a peer node)"
        pinned = self.knownPeers.get(addr)
        if pinned is not None:
            if pinned == key:
                return None
            return "key-changed", (
                f"THE KEY OF PEER {formatAddress(addr)} HAS CHANGED: pinned {pinned.fingerprint()}, proven "
                f"{key.fingerprint()}. Someone may be impersonating it. If the peer's key was replaced, remove "
                f"its line from {self.knownPeers.path or 'the known peers'}")
        if peer is None or not peer.added:
            return "stranger", (
                f"{formatAddress(addr)} is not a peer this node added and its key "
                f"{key.fingerprint()} is not pinned; add it (with its key) to talk to it")
        if not self.knownPeers.tofu:
            return "untrusted", f"no key is pinned for {formatAddress(addr)} and trust on first use is off"
        try:
            self.knownPeers.pinFirstUse(addr, key)
        except PinLimitReached as e:
            return "pin-limit", str(e)
        except PeerKeyChanged as e:  # pragma: no cover - get() said nothing was pinned
            return "key-changed", str(e)
        self.events.append(PeerKeyPinned(addr, key))
        return None

    def _keep(self, peer, session, now):
        current = peer.session
        self._bySession[session] = peer
        if current is not None and current is not session and \
                self._initiatorKey(current) == self._initiatorKey(session):
            # the same node started a new session: it restarted, or lost the
            # old one; the new one replaces it
            current.close(now, text="replaced by a new session")
            current = peer.session
        if current is not None and current is not session:
            # both started at once: keep the session started by the smaller
            # key; the other still delivers what is in flight on it for a
            # moment (the peer may have sent on it before it knew), then closes
            keep = min((current, session), key=self._initiatorKey)
            drop = session if keep is current else current
            peer.retiring[drop] = now + DUPLICATE_GRACE
            if keep is current:
                return
        if peer.session is None:  # (not the duplicate of one already announced)
            self.events.append(PeerConnected(peer.addr, session.peerKey, started=session.role is CLIENT))
        peer.session = session
        peer.lastHandshake = now
        peer.lastError = None
        while peer.queue:
            self._sendOn(peer, peer.queue.popleft(), now)

    def _initiatorKey(self, session):
        """
        The raw public key of the node that started C{session}.
        """
        started = session.role is CLIENT  # this node's client engine started it
        return (self.identity.publicKey if started else session.peerKey).raw

    # -- ends and failures ---------------------------------------------------

    def _retryIn(self, peer, now):
        """
        Schedule the next handshake with C{peer} after its backoff, and
        double the backoff.

        @return: the seconds until then.
        """
        wait = peer.backoff
        peer.retryAt = now + wait
        peer.backoff = min(wait * 2, self.maxRetryInterval)
        return wait

    def _ended(self, session, engine, now):
        peer = self._bySession.pop(session, None)
        if engine is not self.server:
            owner = next((p for p in self.peers.values() if p.engine is engine), None)
            if owner is not None:
                self._forget(owner, engine)
        if peer is None:
            return
        peer.retiring.pop(session, None)
        if peer.session is not session:
            return
        peer.stats["rekeys"] += session.stats["rekeys"]
        peer.stats["disconnects"] += 1
        peer.session = None
        reason = session.closeReason or "closed"
        peer.lastError = f"session ended: {reason}"
        if peer.removed:
            return
        if now - peer.lastHandshake >= self.maxRetryInterval:
            peer.backoff = self.retryInterval  # it lasted: start the waits again from the first
        if reason == "not-authorized":  # the peer refused this node as soon as the session opened
            self.events.append(PeerRefused(peer.addr, "refused-by-peer", (
                f"the peer closed the session at once: it does not trust this node (it must add this node's "
                f"address, with trust on first use or this node's key {self.identity.publicKey.toText()}); "
                f"trying again in {self._retryIn(peer, now):g} s")))
            return
        self.events.append(PeerDisconnected(peer.addr, reason, self._retryIn(peer, now)))

    def _failed(self, engine, error, now):
        owner = next((p for p in self.peers.values() if p.engine is engine), None)
        if owner is None:
            return
        self._forget(owner, engine)
        if owner.removed:
            return
        owner.dropped["handshake-failed"] += 1
        owner.lastError = str(error)
        level = logging.WARNING
        if isinstance(error, BadServerSignature):
            level = logging.ERROR
            error = BadServerSignature(
                f"{formatAddress(owner.addr)} DID NOT PROVE ITS PINNED KEY {engine.serverKey.fingerprint()}: it "
                f"is not that peer, or its key was replaced (then edit the known peers)")
        self.events.append(PeerHandshakeFailed(owner.addr, error, self._retryIn(owner, now), level))

    def _forget(self, peer, engine):
        self.drops.update(engine.drops)  # what it dropped stays counted
        engine.drops.clear()
        index = engine.handshakeIndex
        if index is not None and self._byIndex.get(index) is engine:
            del self._byIndex[index]
        if peer.engine is engine:
            peer.engine = None

    # -- messages --------------------------------------------------------------

    def _received(self, session, plaintext, now):
        peer = self._bySession.get(session)
        if peer is None:
            self.drops["no-peer"] += 1
            return
        if not self.limiter.allow(peer.addr, now):
            peer.dropped["rate-limited"] += 1
            return
        try:
            message = self.framing.decode(plaintext)
        except UnknownVersion as e:
            peer.dropped["unknown-version"] += 1
            if not peer.versionWarned:
                peer.versionWarned = True
                self.events.append(PeerRefused(peer.addr, "unknown-version",
                                               f"it speaks another peer protocol: {e}; its messages are refused"))
            return
        except MalformedPacket as e:
            peer.dropped[e.reason] += 1
            return
        peer.stats["received"] += 1
        self.events.append(PeerMessage(peer.addr, message))
