# -*- test-case-name: sudp_test.udp.test_adapters -*-
"""
Attackers and measuring clients over real UDP sockets, for the attack
reproductions (L{sudp_test.udp.test_adapters},
L{sudp_test.udp.test_path_integration}) and C{benchmarks/bench_exhaustion.py}.

  - L{CountingSocket}: a socket that counts the bytes it sends and receives
    (a victim, or a socket to send spoofed packets from);
  - L{HandClient}: a sudp/1 L{ClientEngine} driven by hand over one real
    socket, so that a test decides which socket each datagram leaves from
    and which datagrams the engine sees;
  - L{InitFlood}: many cookie-proven source addresses sending
    HANDSHAKE_INITs with random ephemerals (no X25519 work for the attacker)
    at a rate, never confirming;
  - L{connectOneByOne}: new clients from other addresses connecting one
    after another, with their outcome and connect time;
  - L{serverProcess}, L{silentConnections}, L{established}: a server in a
    child process, flooded with TCP connections that never send a byte
    (L{sudp_test.stream.test_listener}, L{sudp_test.vpn041.test_gateway}).

C{python -m sudp_test.attackers prefix-flood} runs the IPv6 form of the
handshake exhaustion attack inside a network namespace the caller made
(C{unshare -rn}): see L{prefixFlood}.
"""

import json
import os
import socket
import subprocess
import sys
import time

from twisted.internet import defer, task
from twisted.internet.endpoints import clientFromString
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol

from sudp.udp import packets as P
from sudp.udp.client import ClientEngine

ATTACK_INTERVAL_TICKS = 20
"""How many times a second L{InitFlood} sends its INITs (spread over the second)."""


class CountingSocket(DatagramProtocol):
    """
    One UDP socket that counts what it sends and receives.

    @ivar bytesSent: bytes sent through L{sendRaw}.
    @ivar bytesReceived: bytes received.
    @ivar received: every datagram received, as C{(time, data, addr)}.
    """

    noisy = False

    def __init__(self, reactor):
        self.reactor = reactor
        self.bytesSent = 0
        self.bytesReceived = 0
        self.received = []
        self.port = None

    def bind(self, host):
        """
        Listen on an ephemeral port of C{host}.

        @return: the listening port (also C{port}); stop it at cleanup.
        """
        self.port = self.reactor.listenUDP(0, self, interface=host)
        return self.port

    @property
    def address(self):
        """
        C{(host, port)} of this socket.
        """
        host = self.port.getHost()
        return host.host, host.port

    def sendRaw(self, data, addr):
        """
        Send C{data} to C{addr} and count it.
        """
        self.bytesSent += len(data)
        self.transport.write(data, addr)

    def datagramReceived(self, data, addr):
        """
        Count one datagram.
        """
        self.bytesReceived += len(data)
        self.received.append((self.reactor.seconds(), data, addr))

    def receivedSince(self, when):
        """
        @return: the bytes received at or after C{when}.
        """
        return sum(len(d) for t, d, _ in self.received if t >= when)


class HandClient(CountingSocket):
    """
    A L{ClientEngine} driven by hand over this socket.

    @ivar engine: the client engine.
    @ivar events: every event the engine reported.
    @ivar outgoing: every datagram the engine produced, in order.
    @ivar withhold: first bytes (packet types) of datagrams not given to the
        engine (to stop a handshake at a chosen step).
    @ivar divert: None, or a L{CountingSocket} that the engine's datagrams
        leave from instead of this one (a spoofed source).
    """

    def __init__(self, reactor, serverKey, serverAddr, config=None):
        CountingSocket.__init__(self, reactor)
        self.engine = ClientEngine(serverKey, serverAddr, config)
        self.events = []
        self.outgoing = []
        self.withhold = set()
        self.divert = None
        self._call = None

    def start(self):
        """
        Start the handshake (send HELLO).
        """
        self.engine.start(self.reactor.seconds())
        self.flush()

    def datagramReceived(self, data, addr):
        """
        Count the datagram and give it to the engine unless withheld.
        """
        CountingSocket.datagramReceived(self, data, addr)
        if data and data[0] in self.withhold:
            return
        self.engine.receiveDatagram(data, (addr[0], addr[1]), self.reactor.seconds())
        self.flush()

    def send(self, message):
        """
        Send one application message on the open session.
        """
        self.engine.sendMessage(self.engine.session, message, self.reactor.seconds())
        self.flush()

    def eventsOf(self, kind):
        """
        @return: the events of type C{kind} reported so far.
        """
        return [e for e in self.events if isinstance(e, kind)]

    def flush(self):
        """
        Send what the engine put out (from L{divert} if set), collect its
        events and schedule its next timer.
        """
        out, self.engine.outbox = self.engine.outbox, []
        for data, addr in out:
            self.outgoing.append(data)
            (self.divert or self).sendRaw(data, addr)
        self.events.extend(self.engine.events)
        self.engine.events = []
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        when = self.engine.nextDeadline()
        if when is not None and self.transport is not None:
            self._call = self.reactor.callLater(max(0.0, when - self.reactor.seconds()), self._timer)

    def _timer(self):
        self._call = None
        self.engine.onTimer(self.reactor.seconds())
        self.flush()

    def detach(self):
        """
        Stop driving the engine: cancel its timer and give it nothing more
        (the socket still counts what it sends and receives).
        """
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self.withhold.update(range(256))

    def stopListening(self):
        """
        Cancel the engine's timer and close the socket.

        @return: a L{Deferred} that fires once the socket is closed.
        """
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        return defer.maybeDeferred(self.port.stopListening)


class _FloodSocket(CountingSocket):
    """
    One attacker address of an L{InitFlood}: learns its cookie, counts RESPs.
    """

    def __init__(self, reactor):
        CountingSocket.__init__(self, reactor)
        self.cookie = None
        self.resps = 0

    def datagramReceived(self, data, addr):
        self.bytesReceived += len(data)
        if data[:1] == bytes([P.COOKIE]):
            try:
                _, timestamp, cookie = P.decodeCookie(data)
            except Exception:  # noqa: BLE001 - an attacker ignores junk
                return
            self.cookie = (timestamp, cookie)
        elif data[:1] == bytes([P.HANDSHAKE_RESP]):
            self.resps += 1


class InitFlood:
    """
    The handshake exhaustion attacker of issue 14: each source address gets
    a cookie (HELLO, COOKIE), then sends cookie-valid HANDSHAKE_INITs with
    random ephemerals at C{rate} a second and never confirms.

    @ivar sockets: one L{CountingSocket} per source address.
    @ivar initsSent: INITs sent in all.
    """

    def __init__(self, reactor, serverAddr, sources, rate=20.0):
        """
        @param sources: the source addresses (each must be bindable).
        @param rate: INITs a second from each source (the server's default
            handshake rate per source is 20).
        """
        self.reactor = reactor
        self.serverAddr = serverAddr
        self.sources = list(sources)
        self.rate = rate
        self.sockets = []
        self.initsSent = 0
        self._loop = None
        self._credit = 0.0

    def start(self):
        """
        Bind every source and start sending.
        """
        for host in self.sources:
            s = _FloodSocket(self.reactor)
            s.bind(host)
            self.sockets.append(s)
        self._loop = task.LoopingCall(self._tick)
        self._loop.clock = self.reactor
        self._loop.start(1.0 / ATTACK_INTERVAL_TICKS, now=True)

    @property
    def resps(self):
        """
        HANDSHAKE_RESPs the attacker received: handshakes it holds pending.
        """
        return sum(s.resps for s in self.sockets)

    @property
    def withCookie(self):
        """
        How many sources have a cookie.
        """
        return sum(1 for s in self.sockets if s.cookie is not None)

    def _tick(self):
        self._credit += self.rate / ATTACK_INTERVAL_TICKS
        count, self._credit = int(self._credit), self._credit - int(self._credit)
        for s in self.sockets:
            if s.cookie is None:
                s.sendRaw(P.encodeHello(os.urandom(P.HELLO_NONCE_SIZE)), self.serverAddr)
                continue
            for _ in range(count):
                sender = int.from_bytes(os.urandom(4), "big") or 1
                init = P.HandshakeInit(sender, s.cookie[0], s.cookie[1], os.urandom(32), (1,)).encode()
                s.sendRaw(init, self.serverAddr)
                self.initsSent += 1

    def stop(self):
        """
        Stop sending and close every socket.

        @return: a L{Deferred} that fires once they are closed.
        """
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        return defer.gatherResults([defer.maybeDeferred(s.port.stopListening) for s in self.sockets])


def listenServer(reactor, factory, config=None, interface="127.0.0.1"):
    """
    An in-process sudp/1 server on an ephemeral port of C{interface}, with
    a fresh identity.

    @return: a L{Deferred} firing with C{(listening port, identity)}; the
        port has C{engine} (the L{sudp.udp.server.ServerEngine}).
    """
    from sudp.keys import Identity
    from sudp.udp.endpoints import SUDPServerEndpoint

    identity = Identity.generate()
    d = SUDPServerEndpoint(reactor, 0, identity, config, interface=interface).listen(factory)
    return d.addCallback(lambda port: (port, identity))


@defer.inlineCallbacks
def connectOneByOne(reactor, endpoints):
    """
    Connect clients one after another (each endpoint should bound its own
    handshake, e.g. C{handshakeTimeout=3}), close each once connected.

    @param endpoints: client endpoints (or endpoint strings).
    @return: a L{Deferred} firing with one C{(seconds or None, error text
        or None)} per client.
    """
    results = []
    for endpoint in endpoints:
        if isinstance(endpoint, str):
            endpoint = clientFromString(reactor, endpoint)
        started = reactor.seconds()
        try:
            proto = yield endpoint.connect(Factory.forProtocol(Protocol))
        except Exception as e:  # noqa: BLE001 - the outcome is the measurement
            results.append((None, f"{type(e).__name__}: {e}"))
            continue
        results.append((reactor.seconds() - started, None))
        proto.transport.loseConnection()
    return results


# -- the IPv6 form, inside a network namespace --------------------------------

ATTACK_PREFIX = "fd00:5ad:a::"
CLIENT_PREFIX = "fd00:5ad:b::"


def addLoopbackAddresses(addresses):
    """
    Bring C{lo} up and add C{addresses} (IPv6, /64) to it, no duplicate
    address detection (needs a network namespace of one's own).
    """
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    commands = "".join(f"addr add {a}/64 dev lo nodad\n" for a in addresses)
    subprocess.run(["ip", "-6", "-batch", "-"], input=commands.encode(), check=True)


@defer.inlineCallbacks
def prefixFlood(reactor, sources=100, seconds=1.5, clients=3):
    """
    One host holding a /64 (C{sources} addresses of L{ATTACK_PREFIX}) floods
    an in-process server on C{::1} with default limits; then C{clients} new
    clients from another /64 connect one after another (handshakeTimeout 3).

    @return: a dict of the figures: RESPs the /64 got, INITs sent, the
        server's pending handshakes and stats, the clients' results.
    """
    from sudp.udp.config import Config
    from sudp.udp.endpoints import SUDPClientEndpoint

    attackers = [f"{ATTACK_PREFIX}{n:x}" for n in range(1, sources + 1)]
    newcomers = [f"{CLIENT_PREFIX}{n:x}" for n in range(1, clients + 1)]
    addLoopbackAddresses(attackers + newcomers)
    port, identity = yield listenServer(reactor, Factory.forProtocol(Protocol), Config(), "::1")
    serverAddr = ("::1", port.getHost().port)
    flood = InitFlood(reactor, serverAddr, attackers)
    flood.start()
    yield task.deferLater(reactor, seconds, lambda: None)
    pendingDuringFlood = port.engine.stats()["pending"]
    endpoints = [
        SUDPClientEndpoint(reactor, "::1", serverAddr[1], identity.publicKey,
                           Config(handshakeTimeout=3.0), bindAddress=host)
        for host in newcomers
    ]
    results = yield connectOneByOne(reactor, endpoints)
    yield flood.stop()
    stats = port.engine.stats()
    yield port.stopListening()
    return {
        "sources": sources,
        "initsSent": flood.initsSent,
        "withCookie": flood.withCookie,
        "respsToPrefix": flood.resps,
        "maxPendingHandshakes": Config().maxPendingHandshakes,
        "pendingDuringFlood": pendingDuringFlood,
        "clients": results,
        "serverStats": stats,
    }


def main(argv):
    """
    C{prefix-flood}: run L{prefixFlood} and print its figures as one line
    of JSON on standard output.
    """
    if argv[1:] != ["prefix-flood"]:
        sys.stderr.write("usage: python -m sudp_test.attackers prefix-flood\n")
        raise SystemExit(2)

    def show(figures):
        sys.stdout.write(json.dumps(figures) + "\n")
        sys.stdout.flush()

    task.react(lambda reactor: prefixFlood(reactor).addCallback(show))


if __name__ == "__main__":
    main(sys.argv)


def serverProcess(test, script, *args, cwd=None):
    """
    Run C{python -c script args} (killed and reaped at the test's cleanup).

    @return: C{(process, port)}: the port is the first line it prints.
    """
    server = subprocess.Popen([sys.executable, "-c", script, *args], cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    test.addCleanup(server.wait)
    test.addCleanup(server.kill)
    return server, int(server.stdout.readline())


def silentConnections(test, port, count, perAddress=10):
    """
    Open C{count} TCP connections to 127.0.0.1:C{port} that never send a
    byte, C{perAddress} from each of 127.0.1.1, 127.0.1.2, ...; they are
    closed at the test's cleanup.
    """
    attackers = []
    test.addCleanup(lambda: [s.close() for s in attackers])
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((f"127.0.1.{i // perAddress + 1}", 0))
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        attackers.append(s)
        if i % 25 == 24:
            time.sleep(0.03)  # let the server's accept queue drain, as a patient attacker would


def established(port):
    """
    @return: connections to C{port} on 127.0.0.1 the kernel holds as
        established.
    """
    with open("/proc/net/tcp") as f:
        return sum(1 for line in f if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "01")
