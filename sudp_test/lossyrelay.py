"""
An in-process lossy UDP relay for integration tests.

A L{LossyRelay} listens on an ephemeral port of 127.0.0.1 and sits between
one UDP client and one UDP server (a sudp client and a sudp server in the
tests): the client sends to the relay's port instead of the server's; the
relay forwards what the client sends to the server, and what the server
sends back to the client's address, which it learns from the first datagram
that does not come from the server. The server sees the relay's address as
the client's.

On the way the relay drops, duplicates, reorders and delays datagrams, as an
L{Impairment} of each direction says, with decisions drawn from a seeded
C{random.Random} (never the global generator): the same seed and the same
datagrams in the same order give the same decisions. Everything it did is
counted per direction in L{LossyRelay.counters}.

    relay = LossyRelay(reactor, ("127.0.0.1", serverPort), seed=7,
                       impairment=Impairment(drop=0.1, duplicate=0.05, reorder=0.1))
    port = relay.listen()
    self.addCleanup(relay.stop)     # cancels every timer, closes the port
    ... connect the client to relay.address ...
"""

import random
import socket
from collections import Counter
from dataclasses import dataclass

from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol

CLIENT_TO_SERVER = "c2s"
"""The direction of datagrams from the client to the server."""

SERVER_TO_CLIENT = "s2c"
"""The direction of datagrams from the server to the client."""

DIRECTIONS = (CLIENT_TO_SERVER, SERVER_TO_CLIENT)
"""Both directions, client to server first."""

NOW = "now"
"""A L{Plan} kind: send the datagram at once."""

HOLD = "hold"
"""A L{Plan} kind: hold the datagram back until later ones have passed (reordering)."""

LATER = "later"
"""A L{Plan} kind: send the datagram after a delay (a C{reactor.callLater})."""

COUNTER_NAMES = (
    "received", "forwarded", "dropped", "duplicated", "reordered", "delayed",
    "discarded", "sendErrors",
)
"""
The counters of each direction:

  - C{received}: datagrams that arrived at the relay;
  - C{forwarded}: datagrams sent on (copies included, and late ones once sent);
  - C{dropped}: datagrams dropped on purpose;
  - C{duplicated}: extra copies made (each sent once, possibly later);
  - C{reordered}: datagrams held back until later ones had passed;
  - C{delayed}: datagrams sent after a random delay;
  - C{discarded}: held or delayed datagrams thrown away by L{LossyRelay.stop};
  - C{sendErrors}: sends the kernel refused.
"""


@dataclass(frozen=True)
class Plan:
    """
    How one copy of a datagram is sent.

    @ivar kind: L{NOW}, L{HOLD} or L{LATER}.
    @ivar depth: for L{HOLD}, how many later datagrams of the same direction
        must arrive before this one is released.
    @ivar delay: for L{LATER}, the delay in seconds; for L{HOLD}, the longest
        the datagram is held if fewer than C{depth} datagrams arrive.
    """

    kind: str
    depth: int = 0
    delay: float = 0.0


@dataclass(frozen=True)
class Decision:
    """
    What the relay does with one arriving datagram: nothing (dropped), or one
    L{Plan} per copy sent, the original first.

    @ivar dropped: True if the datagram is dropped (C{plans} is then empty).
    @ivar plans: a tuple of L{Plan}s: one, or two if the datagram is duplicated.
    """

    dropped: bool
    plans: tuple = ()

    @property
    def duplicated(self):
        """
        True if an extra copy is sent.
        """
        return len(self.plans) > 1

    @property
    def reordered(self):
        """
        True if the original is held back (reordered).
        """
        return bool(self.plans) and self.plans[0].kind == HOLD

    @property
    def delayed(self):
        """
        True if the original is sent after a random delay.
        """
        return bool(self.plans) and self.plans[0].kind == LATER


DROPPED = Decision(True)
"""The L{Decision} to drop a datagram."""


@dataclass(frozen=True)
class Impairment:
    """
    What the relay does to the datagrams of one direction. Probabilities are
    per datagram, from 0 to 1, drawn in this order:

      1. C{drop}: the datagram is dropped (nothing else is drawn);
      2. C{duplicate} (of the datagrams not dropped): one extra copy is sent
         after a random delay of 0 to C{duplicateDelay} seconds;
      3. C{reorder} (of the datagrams not dropped): the original is held back
         until 1 to C{reorderDepth} (uniformly) further datagrams of the same
         direction have arrived, or for at most a random C{reorderDelay / 10}
         to C{reorderDelay} seconds if fewer arrive, whichever comes first;
      4. C{delay} (of the datagrams neither dropped nor held): the original is
         sent after a random delay uniform in C{delayMin}..C{delayMax}
         seconds, so datagrams that arrive after it overtake it;
      5. otherwise the original is sent at once.

    @ivar drop: probability of a drop.
    @ivar duplicate: probability of a duplicate.
    @ivar duplicateDelay: the longest delay of a duplicate copy, seconds.
    @ivar reorder: probability of holding a datagram back.
    @ivar reorderDepth: the most later datagrams a held one waits for.
    @ivar reorderDelay: the longest a held datagram is held, seconds.
    @ivar delay: probability of a random delay.
    @ivar delayMin: the shortest random delay, seconds.
    @ivar delayMax: the longest random delay, seconds.
    """

    drop: float = 0.0
    duplicate: float = 0.0
    duplicateDelay: float = 0.02
    reorder: float = 0.0
    reorderDepth: int = 3
    reorderDelay: float = 0.05
    delay: float = 0.0
    delayMin: float = 0.001
    delayMax: float = 0.03

    def __post_init__(self):
        for name in ("drop", "duplicate", "reorder", "delay"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a probability (0 to 1), not {value!r}")
        if self.reorderDepth < 1:
            raise ValueError("reorderDepth must be at least 1")
        if not 0.0 <= self.delayMin <= self.delayMax:
            raise ValueError("need 0 <= delayMin <= delayMax")
        if self.duplicateDelay < 0 or self.reorderDelay <= 0:
            raise ValueError("duplicateDelay must be >= 0 and reorderDelay > 0")

    @property
    def longestDelay(self):
        """
        The longest time, in seconds, a datagram (or its copy) can spend in
        the relay under this impairment.
        """
        longest = 0.0
        if self.duplicate:
            longest = max(longest, self.duplicateDelay)
        if self.reorder:
            longest = max(longest, self.reorderDelay)
        if self.delay:
            longest = max(longest, self.delayMax)
        return longest

    @property
    def clean(self):
        """
        True if this impairment does nothing: every datagram is sent at once.
        """
        return not (self.drop or self.duplicate or self.reorder or self.delay)

    def decide(self, rng):
        """
        Draw what happens to one datagram.

        @param rng: a C{random.Random}; only its C{random}, C{randint} and
            C{uniform} methods are used, so a seeded one gives the same
            decisions every time.
        @return: a L{Decision}.
        """
        if self.clean:
            return Decision(False, (Plan(NOW),))
        if rng.random() < self.drop:
            return DROPPED
        copy = None
        if rng.random() < self.duplicate:
            copy = Plan(LATER, delay=rng.uniform(0.0, self.duplicateDelay))
        if rng.random() < self.reorder:
            original = Plan(
                HOLD,
                depth=rng.randint(1, self.reorderDepth),
                delay=rng.uniform(self.reorderDelay / 10, self.reorderDelay),
            )
        elif rng.random() < self.delay:
            original = Plan(LATER, delay=rng.uniform(self.delayMin, self.delayMax))
        else:
            original = Plan(NOW)
        return Decision(False, (original,) if copy is None else (original, copy))


CLEAN = Impairment()
"""An impairment that does nothing."""


class _Held:
    """
    A datagram held back for reordering: released when C{remaining} more
    datagrams have arrived, or when C{call} fires.
    """

    __slots__ = ("direction", "data", "dest", "remaining", "call")

    def __init__(self, direction, data, dest, remaining):
        self.direction = direction
        self.data = data
        self.dest = dest
        self.remaining = remaining
        self.call = None


class LossyRelay(DatagramProtocol):
    """
    A UDP relay between one client and one server that impairs the traffic.

    @ivar serverAddr: C{(host, port)} of the real server.
    @ivar clientAddr: C{(host, port)} of the client, learned from the first
        datagram that does not come from the server; None until then.
        Datagrams from any third address are not relayed (counted in
        C{strangers}).
    @ivar impairments: a dict, direction -> L{Impairment}.
    @ivar counters: a dict, direction -> L{Counter} of L{COUNTER_NAMES}.
    @ivar types: a dict, direction -> L{Counter} of the first byte of every
        datagram received (for sudp/1, the packet type: C{0x11} HELLO,
        C{0x13} HANDSHAKE_INIT, C{0x1a} CONTROL...), before any impairment:
        what the sender actually sent.
    @ivar decisions: a dict, direction -> list of every L{Decision} taken, in
        order, if C{record} was true; else None.
    @ivar strangers: datagrams from neither the client nor the server.
    @ivar port: the listening port once L{listen} was called.
    """

    noisy = False
    """Do not log starting and stopping the protocol."""

    def __init__(self, reactor, serverAddr, seed, impairment=None, clientToServer=None,
                 serverToClient=None, record=False):
        """
        @param reactor: provides C{listenUDP} and C{callLater}.
        @param serverAddr: C{(host, port)} of the real server.
        @param seed: seeds the relay's own C{random.Random}; each direction
            draws from its own generator seeded from it, so the decisions of
            one direction do not depend on how the two directions interleave.
        @param impairment: the L{Impairment} of both directions (default: none).
        @param clientToServer: the L{Impairment} of client-to-server
            datagrams, instead of C{impairment}.
        @param serverToClient: the L{Impairment} of server-to-client
            datagrams, instead of C{impairment}.
        @param record: keep every L{Decision} in L{decisions}.
        """
        self.reactor = reactor
        self.serverAddr = (serverAddr[0], serverAddr[1])
        self.seed = seed
        both = impairment if impairment is not None else CLEAN
        self.impairments = {
            CLIENT_TO_SERVER: clientToServer if clientToServer is not None else both,
            SERVER_TO_CLIENT: serverToClient if serverToClient is not None else both,
        }
        master = random.Random(seed)
        self._rngs = {d: random.Random(master.getrandbits(64)) for d in DIRECTIONS}
        self.counters = {d: Counter({name: 0 for name in COUNTER_NAMES}) for d in DIRECTIONS}
        self.types = {d: Counter() for d in DIRECTIONS}
        self.decisions = {d: [] for d in DIRECTIONS} if record else None
        self.clientAddr = None
        self.strangers = 0
        self.port = None
        self._held = {d: [] for d in DIRECTIONS}
        self._calls = {}  # DelayedCall -> direction, for every datagram sent later
        self._stopped = False
        self._stopping = None

    # -- setting up ------------------------------------------------------

    def listen(self, interface="127.0.0.1", receiveBuffer=2**20):
        """
        Listen on an ephemeral UDP port of C{interface}.

        @param receiveBuffer: the socket's C{SO_RCVBUF} (the kernel caps it),
            so that bursts are not lost in the relay's own socket.
        @return: the listening port (also L{port}).
        """
        self.port = self.reactor.listenUDP(0, self, interface=interface, maxPacketSize=65535)
        if receiveBuffer:
            try:
                self.port.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receiveBuffer)
            except OSError:
                pass
        return self.port

    @property
    def address(self):
        """
        C{(host, port)} the client should send to.
        """
        host = self.port.getHost()
        return host.host, host.port

    def setImpairment(self, impairment, direction=None):
        """
        Change what the relay does from now on (to datagrams that arrive
        later; held and delayed ones keep their plan).

        @param impairment: the new L{Impairment}.
        @param direction: L{CLIENT_TO_SERVER}, L{SERVER_TO_CLIENT}, or None
            for both.
        """
        for d in DIRECTIONS if direction is None else (direction,):
            self.impairments[d] = impairment

    # -- relaying ----------------------------------------------------------

    def datagramReceived(self, data, addr):
        """
        Relay one datagram: from the server to the client, from anyone else
        (the first such sender becomes the client) to the server.
        """
        if self._stopped:
            return
        addr = (addr[0], addr[1])
        if addr == self.serverAddr:
            if self.clientAddr is None:
                self.strangers += 1  # nowhere to send it yet
                return
            self._relay(SERVER_TO_CLIENT, data, self.clientAddr)
            return
        if self.clientAddr is None:
            self.clientAddr = addr
        elif addr != self.clientAddr:
            self.strangers += 1
            return
        self._relay(CLIENT_TO_SERVER, data, self.serverAddr)

    def _relay(self, direction, data, dest):
        counts = self.counters[direction]
        counts["received"] += 1
        if data:
            self.types[direction][data[0]] += 1
        decision = self.impairments[direction].decide(self._rngs[direction])
        if self.decisions is not None:
            self.decisions[direction].append(decision)
        waiting = self._held[direction]
        # datagrams held before this one count it; they go out after it
        due = []
        for held in waiting:
            held.remaining -= 1
            if held.remaining <= 0:
                due.append(held)
        if decision.dropped:
            counts["dropped"] += 1
        else:
            if decision.duplicated:
                counts["duplicated"] += 1
            for i, plan in enumerate(decision.plans):
                if plan.kind == NOW:
                    self._send(direction, data, dest)
                elif plan.kind == HOLD:
                    counts["reordered"] += 1
                    held = _Held(direction, data, dest, plan.depth)
                    held.call = self.reactor.callLater(plan.delay, self._release, held)
                    self._calls[held.call] = direction
                    waiting.append(held)
                else:
                    if i == 0:
                        counts["delayed"] += 1
                    box = []
                    call = self.reactor.callLater(plan.delay, self._sendLater, box, direction, data, dest)
                    box.append(call)
                    self._calls[call] = direction
        for held in due:
            self._release(held)

    def _release(self, held):
        """
        Send a held datagram: enough later ones have passed, or it has waited
        long enough.
        """
        waiting = self._held[held.direction]
        if held not in waiting:
            return
        waiting.remove(held)
        call, held.call = held.call, None
        if call is not None:
            self._calls.pop(call, None)
            if call.active():
                call.cancel()
        self._send(held.direction, held.data, held.dest)

    def _sendLater(self, box, direction, data, dest):
        self._calls.pop(box[0], None)
        self._send(direction, data, dest)

    def _send(self, direction, data, dest):
        if self._stopped or self.transport is None:
            self.counters[direction]["discarded"] += 1
            return
        try:
            self.transport.write(data, dest)
        except OSError:
            self.counters[direction]["sendErrors"] += 1
            return
        self.counters[direction]["forwarded"] += 1

    # -- inspecting and stopping ---------------------------------------------

    @property
    def longestDelay(self):
        """
        The longest time, in seconds, a datagram arriving now can spend in
        the relay, in either direction.
        """
        return max(i.longestDelay for i in self.impairments.values())

    def pending(self):
        """
        @return: how many datagrams are held or waiting for their delay.
        """
        return sum(1 for c in self._calls if c.active())

    def summary(self):
        """
        @return: a plain dict of the counters, for logs and messages:
            C{{"c2s": {...}, "s2c": {...}, "strangers": n}}.
        """
        out = {d: dict(self.counters[d]) for d in DIRECTIONS}
        out["strangers"] = self.strangers
        return out

    def stop(self):
        """
        Stop relaying: cancel every held and delayed datagram (counted as
        C{discarded}) and stop listening. Safe to call more than once.

        @return: a L{Deferred} that fires once the port is closed.
        """
        if self._stopping is None:
            self._stopped = True
            for call, direction in list(self._calls.items()):
                if call.active():
                    call.cancel()
                    self.counters[direction]["discarded"] += 1
            self._calls.clear()
            for waiting in self._held.values():
                del waiting[:]
            port = self.port
            self._stopping = defer.maybeDeferred(port.stopListening) if port is not None else defer.succeed(None)
        mine = defer.Deferred()
        self._stopping.addBoth(lambda r: (mine.callback(None), r)[1])
        return mine
