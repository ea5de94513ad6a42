# -*- test-case-name: sudp_test.peer.test_engine -*-
"""
An in-memory network of peer engines (L{sudp.peer.engine.PeerEngine}), with
no reactor and no sockets: time from a L{Clock}, datagrams moved by
L{Mesh.pump}, NAT rebinding by L{Mesh.rebind}, and attackers that send
with any source address (L{Mesh.inject}).
"""

from twisted.internet.task import Clock

from sudp.keys import Identity
from sudp.peer.engine import PeerEngine
from sudp.peer.framing import Framing
from sudp.peer.knownpeers import KnownPeers

START = 1_000_000.0


class Mesh:
    """
    Peer engines by address, joined in memory; nothing is lost unless
    L{drop} says so or nothing is at the destination.

    @ivar sent: every datagram sent, as C{(src, dst, data)}.
    @ivar events: every peer event reported, as C{(node address, event)}.
    @ivar handled: datagrams delivered to something (a node or a raw handler).
    """

    def __init__(self, now=START):
        self.clock = Clock()
        self.clock.advance(now)
        self.nodes = {}  # the address a node was made with -> its engine
        self.public = {}  # that address -> where its datagrams come from now (a NAT's mapping)
        self.spoofed = {}  # a node's address -> the source its datagrams carry (it receives nothing there)
        self.raw = {}  # address -> a function (data, src) for hand-made endpoints (attackers, victims)
        self.sent = []
        self.events = []
        self.drop = lambda data, src, dst: False
        self.timerRuns = 0

    @property
    def now(self):
        return self.clock.seconds()

    def node(self, port, tofu=False, known=None, identity=None, host="10.0.0.1", **kwargs):
        """
        @return: a new L{PeerEngine} at C{(host, port)}, its C{addr},
            C{identity} and C{key} set.
        """
        identity = identity or Identity.generate()
        known = known if known is not None else KnownPeers(tofu=tofu)
        engine = PeerEngine(identity, known, framing=kwargs.pop("framing", Framing(1500, 4)), **kwargs)
        engine.addr = (host, port)
        engine.key = identity.publicKey
        self.nodes[engine.addr] = engine
        return engine

    def rebind(self, engine, newAddr):
        """
        A NAT in front of C{engine} maps it to C{newAddr}: its datagrams come
        from there, and nothing sent to its old address reaches it.
        """
        self.public[engine.addr] = newAddr

    def spoof(self, engine, source):
        """
        C{engine}'s datagrams carry C{source} as their source address, but
        what is sent there does not reach it (an attacker off the path).
        """
        self.spoofed[engine.addr] = source

    def addressOf(self, engine):
        return self.public.get(engine.addr, engine.addr)

    def inject(self, data, src, dst):
        """
        Deliver one datagram as if from C{src} (spoofed or not).
        """
        self.sent.append((src, dst, data))
        self._deliver(data, src, dst)

    def _deliver(self, data, src, dst):
        if self.drop(data, src, dst):
            return
        for addr, engine in self.nodes.items():
            if self.public.get(addr, addr) == dst:
                engine.receiveDatagram(data, src, self.now)
                return
        handler = self.raw.get(dst)
        if handler is not None:
            handler(data, src)

    def pump(self):
        """
        Move datagrams until no node has any to send; collect events.
        """
        moved = True
        while moved:
            moved = False
            for addr, engine in list(self.nodes.items()):
                src = self.spoofed.get(addr) or self.public.get(addr, addr)
                for data, dst in engine.datagramsToSend():
                    moved = True
                    self.sent.append((src, dst, data))
                    self._deliver(data, src, dst)
            for addr, engine in self.nodes.items():
                self.events.extend((addr, e) for e in engine.nextEvents())

    def advance(self, seconds):
        """
        Move time forward, running every timer that falls due on the way.
        """
        target = self.now + seconds
        self.pump()
        while True:
            deadlines = [d for d in (e.nextDeadline() for e in self.nodes.values()) if d is not None]
            when = min(deadlines, default=None)
            if when is None or when > target:
                break
            self.clock.advance(max(0.0, when - self.now))
            for engine in list(self.nodes.values()):
                due = engine.nextDeadline()
                if due is not None and due <= self.now:
                    self.timerRuns += 1
                    engine.handleTimer(self.now)
            self.pump()
        self.clock.advance(target - self.now)
        self.pump()

    def take(self, engine, kind):
        """
        Remove and return the events of type C{kind} C{engine} reported.
        """
        found = [e for a, e in self.events if a == engine.addr and isinstance(e, kind)]
        self.events = [(a, e) for a, e in self.events if not (a == engine.addr and isinstance(e, kind))]
        return found

    def messages(self, engine):
        """
        @return: C{(data, addr)} of the messages C{engine} delivered, taken.
        """
        from sudp.peer.events import PeerMessage

        return [(e.data, e.addr) for e in self.take(engine, PeerMessage)]


def isOpen(a, b):
    """
    @return: True if C{a} has an open session with C{b} (by B's address).
    """
    peer = a.peers.get(b.addr)
    return peer is not None and peer.session is not None
