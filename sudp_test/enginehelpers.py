"""
Helpers for driving the sudp/1 sans-IO engines in tests, with no reactor and
no sockets: an in-memory L{Network} that moves datagrams between one server
engine and any number of client engines, plus snapshots of engine state for
"nothing changed" assertions and builders for hand-made packets.

Typical use::

    net, server, client = connectedPair()
    client.sendMessage(client.session, b"hi", net.now)
    events = net.pump()          # [(who, event), ...]; who is "server" or a client address
    [msg] = net.take("server", MessageReceived)
"""

import os
import random
import sys
from collections import Counter

from twisted.internet.task import Clock

from sudp.keys import Identity
from sudp.suites import _CryptographyPacketCipher
from sudp.udp import packets as P
from sudp.udp.client import ClientEngine
from sudp.udp.config import Config
from sudp.udp.events import SessionOpened
from sudp.udp.keyschedule import Ephemeral
from sudp.udp.server import ServerEngine

SERVER_ADDR = ("127.0.0.1", 9000)
CLIENT_ADDR = ("127.0.0.1", 40000)
START = 1_000_000.0  # 8333 whole cookie rotations of 120 s, plus 40 s


class Network:
    """
    One server engine and client engines keyed by address, joined in memory.
    Time comes from a L{Clock} (L{now}); nothing is lost unless L{drop} says so.

    @ivar sent: every datagram moved, as C{(src, dst, data)}.
    @ivar undelivered: datagrams the server sent to an address with no client.
    @ivar events: every event reported so far, as C{(who, event)}.
    @ivar drop: C{(data, src, dst) -> bool}; True loses the datagram.
    """

    def __init__(self, server, now=START, clock=None):
        """
        @param clock: a L{twisted.internet.task.Clock} to read and advance
            for time (a new one set to C{now} if not given).
        """
        self.server = server
        if clock is None:
            clock = Clock()
            clock.advance(now)
        self.clock = clock
        self.clients = {}
        self.sent = []
        self.undelivered = []
        self.events = []
        self.drop = lambda data, src, dst: False

    @property
    def now(self):
        """
        The time: the clock's.
        """
        return self.clock.seconds()

    @now.setter
    def now(self, when):
        self.clock.advance(when - self.clock.seconds())

    def add(self, client, addr=CLIENT_ADDR):
        self.clients[addr] = client
        return client

    def move(self, client, newAddr):
        """
        The client's source address changes (NAT rebinding).
        """
        for addr, c in list(self.clients.items()):
            if c is client:
                del self.clients[addr]
        self.clients[newAddr] = client

    def addressOf(self, client):
        for addr, c in self.clients.items():
            if c is client:
                return addr
        raise KeyError(client)

    def pump(self, drop=None):
        """
        Move datagrams until every outbox is empty.

        @param drop: overrides L{drop} for this call.
        @return: the events reported during this call, as C{(who, event)}.
        """
        drop = drop or self.drop
        before = len(self.events)
        moved = True
        while moved:
            moved = False
            for addr, client in list(self.clients.items()):
                for data, dst in client.datagramsToSend():
                    moved = True
                    self.sent.append((addr, dst, data))
                    if dst == SERVER_ADDR and not drop(data, addr, dst):
                        self.server.receiveDatagram(data, addr, self.now)
            for data, dst in self.server.datagramsToSend():
                moved = True
                self.sent.append((SERVER_ADDR, dst, data))
                if dst not in self.clients:
                    self.undelivered.append((dst, data))
                elif not drop(data, SERVER_ADDR, dst):
                    self.clients[dst].receiveDatagram(data, SERVER_ADDR, self.now)
            self._collect()
        return self.events[before:]

    def _collect(self):
        for who, engine in [("server", self.server)] + list(self.clients.items()):
            self.events.extend((who, e) for e in engine.nextEvents())

    def advance(self, seconds):
        """
        Move time forward by C{seconds}, running every timer that falls due
        on the way and pumping after each.
        """
        target = self.now + seconds
        while True:
            engines = [self.server] + list(self.clients.values())
            deadlines = [d for d in (e.nextDeadline() for e in engines) if d is not None]
            when = min(deadlines, default=None)
            if when is None or when > target:
                break
            self.now = max(self.now, when)
            for e in engines:
                d = e.nextDeadline()
                if d is not None and d <= self.now:
                    e.handleTimer(self.now)
            self.pump()
        self.now = target
        self.pump()

    def take(self, who, kind):
        """
        Remove and return the events of type C{kind} reported by C{who}.
        """
        found = [e for w, e in self.events if w == who and isinstance(e, kind)]
        self.events = [(w, e) for w, e in self.events if not (w == who and isinstance(e, kind))]
        return found

    def toServer(self, data, addr=CLIENT_ADDR):
        """
        Hand one datagram to the server as if from C{addr}.

        @return: what the server put in its outbox, taken out of it.
        """
        self.server.receiveDatagram(data, addr, self.now)
        return takeOutbox(self.server)


def takeOutbox(engine):
    """
    @return: what C{engine} queued to send (L{sudp.engine.IDatagramEngine.datagramsToSend}).
    """
    return engine.datagramsToSend()


def newServer(config=None, identity=None, **kwargs):
    return ServerEngine(identity or Identity.generate(), config or Config(), **kwargs)


def connect(net, addr=CLIENT_ADDR, config=None, identity=None, serverKey=None):
    """
    Add a client at C{addr}, run its handshake to the end and return it.
    """
    client = net.add(
        ClientEngine(serverKey or net.server.identity.publicKey, SERVER_ADDR, config or Config(),
                     identity=identity),
        addr,
    )
    client.start(net.now)
    net.pump()
    return client


def connectedPair(config=None, serverConfig=None, clientConfig=None, serverKey=None,
                  clientIdentity=None, authorizedKeys=None, now=START):
    """
    A server and one client with an open session between them; the
    C{SessionOpened} events are already taken.

    @return: C{(network, server, client)}.
    """
    server = newServer(serverConfig or config, authorizedKeys=authorizedKeys)
    net = Network(server, now)
    client = connect(net, CLIENT_ADDR, clientConfig or config, clientIdentity, serverKey)
    if serverKey is None:
        assert len(net.take("server", SessionOpened)) == 1, net.events
        assert len(net.take(CLIENT_ADDR, SessionOpened)) == 1, net.events
    return net, server, client


def serverSessionOf(server, client):
    """
    @return: the server's L{Session} paired with C{client}'s.
    """
    return server.sessions[client.session.remoteIndex]


def seededPair(seed, config, serverAddr=SERVER_ADDR, clientAddr=CLIENT_ADDR):
    """
    A server and a client with an open session, everything drawn from
    C{seed}: two calls with one seed (and addresses) give identical worlds.
    """
    rng = random.Random(seed)
    server = ServerEngine(Identity(rng.randbytes(32)), config, cookieSecret=rng.randbytes(32),
                          random=random.Random(rng.random()).randbytes)
    client = ClientEngine(server.identity.publicKey, serverAddr, config,
                          random=random.Random(rng.random()).randbytes)
    client.start(START)
    for _ in range(4):
        for data, _ in takeOutbox(client):
            server.receiveDatagram(data, clientAddr, START)
        for data, _ in takeOutbox(server):
            client.receiveDatagram(data, serverAddr, START)
    assert client.session.state == "open"
    server.events, client.events = [], []
    return server, client


def pythonTwin(suite):
    """
    C{suite} with the same name, id and wire behaviour, but sealing and
    opening through the C{cryptography} package, never the native cipher.
    """

    class PythonCipher(type(suite)):
        def newCipher(self, key):
            return _CryptographyPacketCipher(self.aead(bytes(key)))

    return PythonCipher()

def pythonConfig(config):
    """
    C{config} with each built-in suite's L{pythonTwin}.
    """
    return config.replace(suites=tuple(pythonTwin(s) if getattr(s, "algorithm", None) else s for s in config.suites))


# -- snapshots ---------------------------------------------------------------


def sessionState(session):
    """
    Everything about a session that an unauthenticated datagram must not
    change (the forgery counter C{failures} aside, which counts them).
    """
    if session is None:
        return None
    return (
        session.state,
        session.peerAddr,
        session.localIndex,
        session.remoteIndex,
        session.lastRecv,
        session.lastSend,
        session.rekey is None,
        session.rekeyAsk,
        session.sendEpoch.number if session.sendEpoch is not None else None,
        dict(session.stats),
        tuple(
            None if ep is None else (
                ep.number, ep.window.state(), ep.sendSeq, ep.heard, ep.retireAt,
                bytes(ep.keys.c2s), bytes(ep.keys.s2c),
            )
            for ep in session.epochs
        ),
    )


def serverState(server):
    """
    The server's client-visible state: sessions, pending handshakes, timers.
    """
    return (
        {i: sessionState(s) for i, s in server.sessions.items()},
        sorted(server.byEphemeral),
        server.pendingCount,
        server.openCount,
        server.timers.nextDeadline(),
        len(server.timers),
        Counter({k: v for k, v in server.counters.items() if k not in STATELESS_COUNTERS}),
    )


# counters of what a server answers without keeping state
STATELESS_COUNTERS = ("cookies-sent", "resets-sent", "refusals-sent")


def isResetFor(data, request):
    """
    @return: True if C{data} is a stateless reset a server may send in
        answer to C{request}: type 0x1C, 21 to 41 bytes, smaller than
        C{request} (protocol.md 10.9).
    """
    from sudp.udp.reset import MAX_RESET_SIZE, MIN_RESET_SIZE

    return (data[:1] == bytes([P.STATELESS_RESET])
            and MIN_RESET_SIZE <= len(data) <= min(len(request) - 1, MAX_RESET_SIZE))


def clientState(client):
    return (
        client.state,
        client._packet,
        client._retransmitAt,
        client._expires,
        sessionState(client.session),
        client.nextDeadline(),
    )


def containerSizes(*objects):
    """
    @return: C{{name: (len, sys.getsizeof)}} for every dict, list, set and
        Counter held in an attribute of C{objects} (one level down).
    """
    sizes = {}
    for n, obj in enumerate(objects):
        for name, value in vars(obj).items():
            if isinstance(value, (dict, list, set, frozenset, tuple)):
                sizes[f"{n}.{name}"] = (len(value), sys.getsizeof(value))
        heap = getattr(obj, "_heap", None)
        if heap is not None:
            sizes[f"{n}._heap"] = (len(heap), sys.getsizeof(heap))
    return sizes


def dropsDuring(engine, action):
    """
    Run C{action()} and return the drop counts it added, as a plain dict.
    """
    before = Counter(engine.drops)
    action()
    after = Counter(engine.drops)
    after.subtract(before)
    return {k: v for k, v in after.items() if v}


# -- hand-made packets --------------------------------------------------------


def getCookie(server, addr, now):
    """
    Send a HELLO from C{addr} and return the server's C{(timestamp, cookie)}.
    """
    server.receiveDatagram(P.encodeHello(b"N" * 8), addr, now)
    [(reply, dst)] = takeOutbox(server)
    assert dst == addr
    _, timestamp, cookie = P.decodeCookie(reply)
    return timestamp, cookie


def makeInit(timestamp, cookie, ephemeral=None, suites=(1,), senderIndex=0x01020304):
    """
    @return: the bytes of a HANDSHAKE_INIT; a fresh ephemeral unless given.
    """
    if ephemeral is None:
        ephemeral = Ephemeral(os.urandom(32)).public
    return P.HandshakeInit(senderIndex, timestamp, cookie, ephemeral, suites).encode()
