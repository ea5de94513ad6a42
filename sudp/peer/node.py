# -*- test-case-name: sudp_test.peer.test_node -*-
"""
L{PeerNode}: symmetric sudp/1 peers on one UDP socket (docs/peers.md), in
Twisted: the thin driver of L{sudp.peer.engine.PeerEngine}, which holds all
of peer mode's logic. The node feeds the engine what its socket reads and
its timer (through C{IReactorTime}), sends what the engine queued, and
hands the engine's events on: messages to C{onMessage}, everything else to
the C{sudp.peer} logger of the standard library's C{logging} (so that a
plain program sees refusals and failures with C{logging.basicConfig}) and,
for refusals and failures, to C{onError}.
"""

import logging
import os

from twisted.internet.protocol import DatagramProtocol

from sudp.engine import drain
from sudp.errors import ConfigurationError
from sudp.peer.engine import MAX_QUEUED, PROTOCOL_VERSION, PeerEngine, PeerKeyUnknown
from sudp.peer.events import PeerMessage
from sudp.peer.framing import Framing
from sudp.peer.netinfo import interfaceMTU
from sudp.udp.batching import senderFor

__all__ = ["PeerNode", "listenPeers", "PeerKeyUnknown", "PROTOCOL_VERSION", "MAX_QUEUED"]

log = logging.getLogger("sudp.peer")


class PeerNode(DatagramProtocol):
    """
    A peer-mode node. Start it with L{listenPeers}.

    @ivar engine: its L{PeerEngine}.
    @ivar onMessage: called as C{onMessage(data, addr)} for every message.
    @ivar onError: None, or called with every refusal and failure (a
        L{sudp.peer.events.PeerRefused} or
        L{sudp.peer.events.PeerHandshakeFailed}: C{addr}, C{reason} or
        C{error}, and C{text()}).
    @ivar onEvent: None, or called with every other event but messages
        (peers connecting, keys pinned, sessions ending).
    """

    noisy = False

    def __init__(self, reactor, identity, knownPeers, config=None, rateLimit=100, compress=False, pad=False,
                 mtu=None, interface="", onMessage=None, onError=None, onEvent=None, retryInterval=2.0,
                 maxRetryInterval=60.0, compressionLevel=3, random=os.urandom):
        """
        @param reactor: provides C{IReactorTime} and C{IReactorUDP}.
        @param identity: this node's L{sudp.keys.Identity}.
        @param knownPeers: a L{sudp.peer.knownpeers.KnownPeers}.
        @param config: sudp/1's options (L{sudp.udp.config.Config}).
        @param rateLimit: messages a second accepted from one peer.
        @param compress: zstd-compress messages where it makes them
            smaller, at C{compressionLevel}.
        @param pad: pad every datagram to the same size.
        @param mtu: the path MTU; by default the interfaces' smallest.
        @param interface: the address to listen on: C{""} all IPv4, C{"::"}
            all IPv6 (and IPv4-mapped); an IPv6 one counts the IPv6 header
            in the MTU.
        @param retryInterval: the first wait before a handshake is tried
            again (doubling up to C{maxRetryInterval}).
        """
        self.reactor = reactor
        self.interface = interface
        self.mtu = mtu or interfaceMTU()
        self.framing = Framing(self.mtu, 6 if ":" in interface else 4, compress, pad, compressionLevel)
        self.engine = PeerEngine(identity, knownPeers, config, self.framing, rateLimit, retryInterval,
                                 maxRetryInterval, random)
        self.onMessage = onMessage
        self.onError = onError
        self.onEvent = onEvent
        self._call = None
        self._sender = None

    @property
    def identity(self):
        return self.engine.identity

    @property
    def knownPeers(self):
        return self.engine.knownPeers

    @property
    def config(self):
        return self.engine.config

    @property
    def peers(self):
        """
        The engine's L{sudp.peer.peers.Peer}s by address.
        """
        return self.engine.peers

    # -- the application's calls -------------------------------------------------

    def addPeer(self, addr, key=None):
        """
        Add a peer and start a session with it (L{PeerEngine.addPeer}).

        @raise PeerKeyUnknown: with no key given or pinned, and trust on
            first use off.
        @raise sudp.peer.knownpeers.PeerKeyChanged: if C{key} differs from
            the pinned one.
        """
        peer = self.engine.addPeer(addr, self.reactor.seconds(), key)
        self._flush()
        return peer

    def removePeer(self, addr):
        """
        Close the session with a peer and forget it (not its pinned key).
        """
        self.engine.removePeer(addr, self.reactor.seconds())
        self._flush()

    def send(self, data, addr=None):
        """
        Send C{data} to the peer at C{addr}, or to every peer (C{None}).

        @raise sudp.errors.MessageTooLarge: if it cannot fit one datagram.
        @raise KeyError: if C{addr} is not a peer.
        """
        self.engine.send(data, self.reactor.seconds(), addr)
        self._flush()

    def getPeers(self):
        """
        @return: the peers' addresses.
        """
        return list(self.engine.peers)

    def getPeersByIP(self, ip):
        """
        @return: the addresses of the peers on C{ip} (several ports each).
        """
        from ipaddress import ip_address

        host = str(ip_address(ip))
        return [addr for addr in self.engine.peers if addr[0] == host]

    def hasPeer(self, addr):
        """
        @return: True if C{addr} is a peer.
        """
        from sudp.addresses import canonicalAddress

        return canonicalAddress(addr) in self.engine.peers

    def stats(self):
        """
        @return: L{PeerEngine.stats}.
        """
        return self.engine.stats(self.reactor.seconds())

    def stop(self):
        """
        Close every session (telling each peer) and stop the timer.
        """
        self.engine.stop(self.reactor.seconds())
        self._flush()
        self._cancelTimer()

    # -- the socket and the timer ------------------------------------------------

    def datagramReceived(self, data, addr):
        self.engine.receiveDatagram(data, addr, self.reactor.seconds())
        self._flush()

    def _flush(self):
        drain(self.engine, self._send, self._handle)
        self._schedule()

    def _send(self, out):
        if self.transport is not None:
            self._sender = senderFor(self._sender, self.transport.socket, self.config.gso)
            failed, _ = self._sender.sendAll(out)
            if failed:  # UDP is lossy: counted, as the adapters count theirs
                self.engine.drops["send-failed"] += failed

    def _handle(self, event):
        if type(event) is PeerMessage:
            if self.onMessage is not None:
                try:
                    self.onMessage(event.data, event.addr)
                except Exception:
                    log.exception("sudp peer: onMessage failed on a message from %s", event.addr)
            return
        log.log(event.level, "sudp peer: %s", event.text())
        callback = self.onError if event.failure else self.onEvent
        if callback is not None:
            try:
                callback(event)
            except Exception:
                log.exception("sudp peer: the %s callback failed", "onError" if event.failure else "onEvent")

    def _schedule(self):
        when = self.engine.nextDeadline()
        self._cancelTimer()
        if when is not None and self.transport is not None:
            self._call = self.reactor.callLater(max(0.0, when - self.reactor.seconds()), self._onTimer)

    def _onTimer(self):
        self._call = None
        self.engine.handleTimer(self.reactor.seconds())
        self._flush()

    def _cancelTimer(self):
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def startProtocol(self):
        self._schedule()

    def stopProtocol(self):
        self._cancelTimer()


def listenPeers(reactor, port, node, interface=None):
    """
    Listen on C{port} with C{node}, on the node's interface.

    @param interface: None (the node's), or the same family as the node's.
    @raise ConfigurationError: if C{interface} is IPv6 and the node's is not
        (its MTU accounting would be 20 bytes short).
    @return: the listening port.
    """
    if interface is None:
        interface = node.interface
    elif (":" in interface) != (":" in node.interface):
        raise ConfigurationError(f"listen on {interface!r} with a node made with interface={node.interface!r}: its "
                                 f"MTU accounting depends on the address family")
    return reactor.listenUDP(port, node, interface=interface, maxPacketSize=node.config.maxDatagramSize + 1)
