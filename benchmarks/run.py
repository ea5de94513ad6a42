"""
The sudp benchmark suite: one command, loopback only, bounded.

    python benchmarks/run.py [--quick] [--json FILE]

Every figure is printed with the baseline measured in the same run and the
ratio, and written to a JSON file (default benchmarks/results/latest.json).
Servers run in their own process (benchmarks/servers.py, Twisted in both the
plaintext baseline and sudp: the same process layout); load comes from
blocking loops in this process, with the same sender design for both. Each
case is repeated and the median reported.
"""

import argparse
import json
from collections import deque
import os
import select
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# which sudp is measured, and the machine: benchmarks/environment.py (this script's folder)
from environment import StaleBuild, checkDataPath, chooseSudp, machine  # noqa: E402

try:
    SUDP_HOME = chooseSudp()
    DATA_PATH = checkDataPath(SUDP_HOME)
except StaleBuild as e:
    sys.exit(f"benchmarks/run.py: {e}")

from sudp.keys import Identity, PublicKey  # noqa: E402
from sudp.suites import suiteNames, getSuite  # noqa: E402
from sudp.udp import packets as P  # noqa: E402
from sudp.udp.client import ClientEngine  # noqa: E402
from sudp.udp.config import Config  # noqa: E402
from sudp.udp.events import HandshakeFailure, SessionOpened  # noqa: E402
from sudp.udp.batching import GSOSender  # noqa: E402
from sudp.udp.server import ServerEngine  # noqa: E402

from inmemory import exchange  # noqa: E402  (benchmarks/, this script's folder)


class Server:
    """
    A benchmark server in its own process.
    """

    def __init__(self, mode, pure=False, script="servers.py"):
        """
        @param script: C{servers.py} (plaintext Twisted and sudp), or
            C{peerservers.py} (the peers: no sudp, so no data path to check).
        """
        env = dict(os.environ, PYTHONPATH=SUDP_HOME)
        if pure:  # the server without the C speedups (sudp.speedups)
            env["SUDP_NO_SPEEDUPS"] = "1"
        info = self.start([sys.executable, os.path.join(HERE, script), mode], f"{script} {mode}", env)
        self.key = PublicKey.fromText(info["key"]) if "key" in info else None
        self.cert = info.get("cert")  # TLS and QUIC: the certificate a client verifies
        self.dataPath = info.get("dataPath")
        if self.dataPath is not None:
            expected = "pure-Python" if pure else DATA_PATH["data path"]
            if expected not in self.dataPath:
                self.close()
                raise StaleBuild(f"the {mode} server runs {self.dataPath!r}, not {expected!r}")

    def start(self, args, name, env=None):
        """
        Start the server process C{args} (C{name} in errors) and read its
        first line.

        @return: that line's JSON (C{port} at least); C{self.info}.
        """
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            raise RuntimeError(f"{name} did not start (exit {self.proc.returncode})")
        self.info = json.loads(line)
        self.addr = ("127.0.0.1", self.info["port"])
        return self.info

    def command(self, name):
        self.proc.stdin.write(name + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stats(self):
        return self.command("stats")

    def close(self):
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Clients:
    """
    Many sudp client engines on one blocking UDP socket, demultiplexed by
    hello nonce, receiver index and session index.
    """

    def __init__(self, server, config=None):
        self.server = server
        self.config = config or Config()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.byNonce, self.byIndex = {}, {}

    @classmethod
    def forMode(cls, server, mode):
        """
        Clients for a server started with C{mode}: C{"sudp-...:SUITE"}
        offers that one suite.
        """
        suite = mode.partition(":")[2]
        return cls(server, Config(suites=(getSuite(suite),)) if suite else None)

    def _flush(self, engine):
        for data, _ in engine.datagramsToSend():
            self.sock.sendto(data, self.server.addr)

    def _route(self, data):
        t = data[0]
        if t == P.COOKIE:
            return self.byNonce.get(bytes(data[1:9]))
        return self.byIndex.get(int.from_bytes(data[1:5], "big"))

    def handshakes(self, count, concurrent=16, timeout=10):
        """
        @return: the opened client engines.
        """
        opened, failed = [], 0
        started = 0
        active = set()

        def begin():
            nonlocal started
            engine = ClientEngine(self.server.key, self.server.addr, self.config)
            engine.start(time.monotonic())
            self.byNonce[engine._nonce] = engine
            self._flush(engine)
            active.add(engine)
            started += 1

        while started < min(concurrent, count):
            begin()
        deadline = time.monotonic() + timeout
        while active and time.monotonic() < deadline:
            ready, _, _ = select.select([self.sock], [], [], 0.2)
            if not ready:
                continue
            data = self.sock.recv(2048)
            engine = self._route(data)
            if engine is None:
                continue
            engine.receiveDatagram(data, self.server.addr, time.monotonic())
            if getattr(engine, "_index", None):
                self.byIndex[engine._index] = engine
            self._flush(engine)
            for event in engine.nextEvents():
                if isinstance(event, (SessionOpened, HandshakeFailure)):
                    active.discard(engine)
                    self.byNonce.pop(engine._nonce, None)
                    if isinstance(event, SessionOpened):
                        opened.append(engine)
                    else:
                        failed += 1
                    if started < count:
                        begin()
        if failed or len(opened) < count:
            raise RuntimeError(f"handshakes: {len(opened)} of {count} opened, {failed} failed")
        return opened


def median(values):
    return statistics.median(values)


def bound(runs, sent=None):
    """
    Which side limited one-way runs C{(rate, delivered, cpu, send rate)}:
    the receiver if it lost more than 1 % of the C{sent} datagrams (a
    receiver that falls behind overflows its socket buffer within
    milliseconds), or, where C{sent} is not known, delivered at under 90 %
    of the sender's rate; else the sender.
    """
    for rate, n, _, sendRate in runs:
        if (n < 0.99 * sent) if sent is not None else (rate < 0.9 * sendRate):
            return "receiver"
    return "sender"


def figure(value, unit, baseline=None, baselineName=None, higherIsBetter=True, goal=None, bound=None):
    out = {"value": value, "unit": unit}
    if bound is not None:
        out["bound by"] = bound
    if baseline is not None:
        out["baseline"] = baseline
        out["baselineName"] = baselineName
        out["ratio"] = value / baseline if baseline else None
    if goal is not None:
        out["goal"] = goal
    return out


# -- cases ---------------------------------------------------------------------------


def blast(sock, packets, addr, gso=False):
    """
    The one-way load generator: send C{packets} to C{addr} as fast as this
    process can. With the speedups' C{sendmmsg}, 64 datagrams a system call
    (one GSO send of 64 segments with C{gso}), else one C{send} each; a
    datagram the kernel refuses is lost, as UDP loses it.

    @return: the seconds it took.
    """
    from sudp.speedups import native

    start = time.perf_counter()
    if gso:
        sender = GSOSender(sock)
        for i in range(0, len(packets), 64):
            try:
                sender.send(packets[i : i + 64], addr)
            except BlockingIOError:
                pass
        assert sender.gso, "the kernel refused UDP GSO"
    elif native is not None and hasattr(native, "sendBatch"):
        fd, family, sendBatch = sock.fileno(), sock.family, native.sendBatch
        pairs = [(p, addr) for p in packets]
        for i in range(0, len(pairs), 64):
            sendBatch(fd, family, pairs[i : i + 64], 0)
    else:
        send = sock.send
        for p in packets:
            try:
                send(p)
            except BlockingIOError:
                pass
    return time.perf_counter() - start


def oneWayRate(mode, size, count, gso=False, pure=False):
    """
    Blast C{count} pre-built datagrams at a counting server (L{blast}) and
    measure the rate at which it received (plaintext) or delivered (sudp)
    them, from the first send to the last delivery. With C{gso}, the sender
    sends them in GSO batches of 64 (for both modes); with C{pure}, the
    server runs without the C speedups.

    @return: (messages per second, messages, server CPU microseconds per
        message, the sender's datagrams per second)
    """
    with Server(mode, pure) as server:
        payload = os.urandom(size)
        if mode == "udp-count":
            packets = [payload] * count
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        else:
            clients = Clients.forMode(server, mode)
            [engine] = clients.handshakes(1)
            sock = clients.sock
            packets = []
            for _ in range(count):
                engine.sendMessage(engine.session, payload, time.monotonic())
                [(packet, _)] = engine.datagramsToSend()
                packets.append(packet)
        sock.connect(server.addr)
        server.command("reset")
        cpuBefore = server.stats()["cpu"]
        # perf_counter is CLOCK_MONOTONIC, one clock for every process here:
        # the rate runs from the first send to the last delivery
        start = time.perf_counter()
        sending = blast(sock, packets, server.addr, gso)
        stats = drained(server)
    n = stats["messages"] if mode != "udp-count" else stats["datagrams"]
    cpu = (stats["cpu"] - cpuBefore) / n * 1e6 if n else 0.0  # idle waiting costs no CPU
    return n / (stats["last"] - start) if n else 0.0, n, cpu, count / sending


def echo(mode, size, inFlight, seconds):
    """
    Keep C{inFlight} messages outstanding against an echo server.

    @return: (round trips per second, list of round-trip times in seconds,
        the server's CPU microseconds per round trip, this client's)
    """
    with Server(mode) as server:
        payload = os.urandom(size)
        if mode == "udp-echo":
            sock, sendSome, receiveSome = plainEchoClient(server.addr, payload)
        else:
            clients = Clients.forMode(server, mode)
            [engine] = clients.handshakes(1)
            sock = clients.sock
            # the same socket calls as the plaintext client: connected
            # sends, and reads drained as they come; each read goes through
            # the engine's batch entry point and each burst of answers
            # through its burst one (sendMessages), as sudp's adapters do
            sock.connect(server.addr)
            send, session, received = sock.send, engine.session, []
            engine.deliverTo(session, received.append)

            def flush():
                for data, _ in engine.datagramsToSend():
                    send(data)

            def sendSome(count):
                engine.sendMessages(session, [payload] * count, time.monotonic())
                flush()

            def receiveSome():
                datagrams = readSome(sock)
                if datagrams:
                    engine.receiveDatagrams(datagrams, server.addr, time.monotonic())
                    flush()
                got = len(received)
                del received[:]
                return got

        cpuBefore, clientBefore = server.stats()["cpu"], time.process_time()
        rate, rtts = keepInFlight(sendSome, receiveSome, inFlight, seconds)
        clientCpu = time.process_time() - clientBefore
        cpu = server.stats()["cpu"] - cpuBefore
    perTrip = 1e6 / len(rtts) if rtts else 0.0
    return rate, rtts, cpu * perTrip, clientCpu * perTrip


def readSome(sock, most=64, timeout=1.0):
    """
    Wait up to C{timeout} seconds for C{sock} to be readable, then read
    what is waiting, up to C{most} datagrams, without blocking.

    @return: the datagrams read (none after C{timeout} of nothing).
    """
    ready, _, _ = select.select([sock], [], [], timeout)
    return readAll(sock, most) if ready else []


def readAll(sock, most=None):
    """
    @return: every datagram waiting on C{sock} now (at most C{most}),
        without blocking.
    """
    out, recv = [], sock.recv
    while most is None or len(out) < most:
        try:
            out.append(recv(65536, socket.MSG_DONTWAIT))
        except BlockingIOError:
            break
    return out


def plainEchoClient(addr, payload):
    """
    The plaintext echo client: a connected UDP socket sending C{payload}.

    @return: (the socket, sendSome(count), receiveSome() -> the answers
        read, 0 after 1 s of nothing)
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(addr)
    send = sock.send

    def sendSome(count):
        for _ in range(count):
            send(payload)

    def receiveSome():
        return len(readSome(sock))

    return sock, sendSome, receiveSome


def keepInFlight(sendSome, receiveSome, inFlight, seconds):
    """
    Keep C{inFlight} messages outstanding for C{seconds}, the echo
    client's loop: it reads the answers waiting (C{receiveSome()}, their
    count, 0 after a second of nothing) and sends as many new messages
    (C{sendSome(count)}); a lost message is replaced, so the window stays
    full. Every client, sudp's and its peers', runs this one loop, so
    the server, not the client, is what it measures where it can.

    @return: (round trips per second, list of round-trip times in seconds)
    """
    sent = deque([time.perf_counter()] * inFlight)
    sendSome(inFlight)
    rtts = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        got = receiveSome()
        now = time.perf_counter()
        if not got:
            got = 1
            sent.popleft() if sent else None  # a lost datagram: keep the window full
        else:
            got = min(got, len(sent))
            for _ in range(got):
                rtts.append(now - sent.popleft())
        sent.extend([now] * got)
        sendSome(got)
    return len(rtts) / seconds, rtts


def drained(server):
    """
    Wait until C{server} has drained its socket (no datagram read between
    two looks 0.2 s apart).

    @return: its stats.
    """
    time.sleep(0.3)
    stats = server.stats()
    while True:
        time.sleep(0.2)
        later = server.stats()
        if later["datagrams"] == stats["datagrams"]:
            return stats
        stats = later


def handshakeRate(count):
    """
    @return: (handshakes per second, server CPU microseconds per handshake)
    """
    with Server("sudp-echo") as server:
        before = server.stats()["cpu"]
        clients = Clients(server)
        start = time.perf_counter()
        clients.handshakes(count)
        elapsed = time.perf_counter() - start
        cpu = server.stats()["cpu"] - before
    return count / elapsed, cpu / count * 1e6


def serverCpuPerHandshake(count):
    """
    In-process: the time spent inside the server engine for one handshake
    (HELLO, INIT, CONFIRM), clients excluded.

    @return: microseconds per handshake.
    """
    identity = Identity.generate()
    server = ServerEngine(identity, Config(maxSessions=count + 10, maxPendingHandshakes=count + 10,
                                           handshakesPerSecond=1e9, handshakeBurst=10**9))
    spent = 0.0
    addr = ("127.0.0.1", 40000)
    for i in range(count):
        client = ClientEngine(identity.publicKey, ("127.0.0.1", 9000))
        client.start(0.0)
        for _ in range(3):
            out = client.datagramsToSend()
            t = time.perf_counter()
            for data, _ in out:
                server.receiveDatagram(data, addr, 0.0)
            spent += time.perf_counter() - t
            out = server.datagramsToSend()
            for data, _ in out:
                client.receiveDatagram(data, ("127.0.0.1", 9000), 0.0)
        server.nextEvents()
    assert server.stats()["sessions"] == count
    return spent / count * 1e6


def cookieFlood(count, sockets=16, mode="sudp-echo"):
    """
    HELLOs from many source ports at a sudp server; or, with
    C{mode="udp-echo"}, the same flood at a plaintext Twisted server that
    answers every datagram.

    @return: replies per second.
    """
    with Server(mode) as server:
        hello = P.encodeHello(os.urandom(8))
        server.command("reset")
        start = time.perf_counter()  # one clock for every process (see oneWayRate)
        socks = []
        for _ in range(sockets):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.connect(server.addr)
            s.setblocking(False)
            socks.append(s)
        for i in range(count):
            try:
                socks[i % sockets].send(hello)
            except BlockingIOError:
                pass
        stats = drained(server)
    replies = stats["engine"]["cookies-sent"] if mode.startswith("sudp") else stats["datagrams"]
    return replies / (stats["last"] - start)


def memoryPerSession(count):
    """
    @return: server RSS bytes per established session at C{count} sessions.
    """
    with Server("sudp-echo") as server:
        clients = Clients(server)
        clients.handshakes(50)  # warm up
        before = server.stats()["rss"]
        clients.handshakes(count, concurrent=64, timeout=120)
        after = server.stats()
        assert after["engine"]["sessions"] == count + 50, after["engine"]
    return (after["rss"] - before) / count


def overheadBytes():
    """
    Bytes added to a message, from real packets of each suite.
    """
    out = {}
    for name in suiteNames():
        if name not in ("chacha20-poly1305", "aes-256-gcm", "xchacha20-poly1305", "xsalsa20-poly1305"):
            continue
        identity = Identity.generate()
        config = Config(suites=(getSuite(name),))
        server = ServerEngine(identity, config)
        client = ClientEngine(identity.publicKey, ("127.0.0.1", 9000), config)
        client.start(0.0)
        exchange(client, server, ("127.0.0.1", 4000), ("127.0.0.1", 9000), 0.0, rounds=3)
        client.sendMessage(client.session, b"x" * 100, 0.0)
        [(packet, _)] = client.datagramsToSend()
        out[name] = len(packet) - 100
    out.update(profileOverheads())
    return out


def profileOverheads():
    """
    Bytes added to a 100-byte message by the profiles, from real packets:
    vpn041's data plane in each mode (CBC pads 100 bytes to 112), and a
    gossip6 session's DATA (sudp/1 with aes-256-gcm).
    """
    from sudp.gossip6.config import Gossip6Config
    from sudp.gossip6.udp import gossip6ClientEngine, gossip6ServerEngine
    from sudp.rsaidentity import RSAIdentity
    from sudp.vpn041.dataplane import PacketCodec

    out = {}
    for name, enc, auth in (("vpn041 plaintext", False, False), ("vpn041 aes-256-cbc", True, False),
                            ("vpn041 authenticated", True, True)):
        out[name] = len(PacketCodec(1, os.urandom(32), enc, auth).seal(b"x" * 100)) - 100
    ids = RSAIdentity.generate(2048), RSAIdentity.generate(2048)
    cheap = Gossip6Config(difficulty=1, scryptN=16)
    server = gossip6ServerEngine(ids[0], [ids[1].publicKey], gossip6=cheap)
    server.bound(("127.0.0.1", 9000))
    client = gossip6ClientEngine(ids[1], [ids[0].publicKey], ("127.0.0.1", 9000), gossip6=cheap)
    client.bound(("127.0.0.1", 4000))
    now = time.time()
    client.start(now)
    exchange(client, server, ("127.0.0.1", 4000), ("127.0.0.1", 9000), now, rounds=6)
    client.sendMessage(client.session, b"x" * 100, now)
    [(packet, _)] = client.datagramsToSend()
    out["gossip6 session (aes-256-gcm)"] = len(packet) - 100
    return out


def streamFigures(quick):
    path = os.path.join(HERE, "results", "stream.json")
    args = ["--megabytes", "4", "--count", "5000", "--repeats", "1"] if quick else ["--repeats", "3"]
    subprocess.run([sys.executable, os.path.join(HERE, "bench_stream.py"), "--json", path] + args,
                   check=True, env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.DEVNULL)
    with open(path) as f:
        return json.load(f)


# -- the suite -----------------------------------------------------------------------


def run(quick=False, repeats=None):
    repeats = repeats or (1 if quick else 3)
    n = 2000 if quick else 200_000
    echoSeconds = 0.3 if quick else 2.0
    results = {}

    suites = ("chacha20-poly1305", "aes-256-gcm")
    for size in (64, 1200):
        plainRuns = [oneWayRate("udp-count", size, n) for _ in range(repeats)]
        plain = median([r[0] for r in plainRuns])
        plainCpu = median([r[2] for r in plainRuns])
        gsoPlain = median([oneWayRate("udp-count", size, n, gso=True)[0] for _ in range(repeats)])
        for suite in suites:
            encRuns = [oneWayRate(f"sudp-count:{suite}", size, n) for _ in range(repeats)]
            results[f"one-way {size} B, {suite} (msg/s)"] = figure(
                median([r[0] for r in encRuns]), "msg/s", plain, "plaintext Twisted UDP",
                goal=">= 1.0x" if size == 64 else ">= 0.8x", bound=bound(encRuns + plainRuns, n))
            # where the sender is the limit both rates meet it; the receiver's
            # CPU time per message shows what each receive really costs
            results[f"receiver CPU per message, one-way {size} B, {suite} (us)"] = figure(
                median([r[2] for r in encRuns]), "us", plainCpu, "plaintext Twisted UDP", higherIsBetter=False,
                goal="<= 1.0x" if size == 64 else None)
            gsoRuns = [oneWayRate(f"sudp-count:{suite}", size, n, gso=True) for _ in range(repeats)]
            results[f"one-way {size} B, GSO sender, sudp with GRO, {suite} (msg/s)"] = figure(
                median([r[0] for r in gsoRuns]), "msg/s", gsoPlain, "plaintext Twisted UDP, same GSO sender",
                bound=bound(gsoRuns, n))
            results[f"receiver CPU per message, GSO sender, {suite}, {size} B (us)"] = figure(
                median([r[2] for r in gsoRuns]), "us")
        pure = [oneWayRate("sudp-count", size, n, pure=True) for _ in range(repeats)]
        results[f"one-way {size} B, pure-Python data path (msg/s)"] = figure(
            median([r[0] for r in pure]), "msg/s", plain, "plaintext Twisted UDP", bound=bound(pure, n))
        results[f"receiver CPU per message, one-way {size} B, pure Python (us)"] = figure(
            median([r[2] for r in pure]), "us", plainCpu, "plaintext Twisted UDP", higherIsBetter=False)
        plainRuns = [echo("udp-echo", size, 64, echoSeconds) for _ in range(repeats)]
        echoPlain = median([r[0] for r in plainRuns])
        for suite in suites:
            encRuns = [echo(f"sudp-echo:{suite}", size, 64, echoSeconds) for _ in range(repeats)]
            results[f"echo {size} B, 64 in flight, {suite} (rt/s)"] = figure(
                median([r[0] for r in encRuns]), "round trips/s", echoPlain, "plaintext Twisted UDP echo",
                goal=">= 0.8x")
            # both sides run on one core each: the CPU each spends per round
            # trip says which one is the limit (the one near 1e6 / rate)
            results[f"server CPU per round trip, echo {size} B, 64 in flight, {suite} (us)"] = figure(
                median([r[2] for r in encRuns]), "us", median([r[2] for r in plainRuns]),
                "plaintext Twisted UDP echo", higherIsBetter=False)
            results[f"client CPU per round trip, echo {size} B, 64 in flight, {suite} (us)"] = figure(
                median([r[3] for r in encRuns]), "us", median([r[3] for r in plainRuns]),
                "plaintext echo client", higherIsBetter=False)
    for name, mode in (("plain", "udp-echo"), ("sudp", "sudp-echo")):
        rtts = []
        for _ in range(repeats):
            rtts += echo(mode, 64, 1, echoSeconds)[1]
        rtts.sort()
        results[f"latency p50 64 B, 1 in flight ({name})"] = figure(rtts[len(rtts) // 2] * 1e6, "us")
        results[f"latency p99 64 B, 1 in flight ({name})"] = figure(rtts[int(len(rtts) * 0.99)] * 1e6, "us")
    for k in ("p50", "p99"):
        p, s = results[f"latency {k} 64 B, 1 in flight (plain)"], results[f"latency {k} 64 B, 1 in flight (sudp)"]
        s.update(figure(s["value"], "us", p["value"], "plaintext Twisted UDP echo", higherIsBetter=False))

    rates, cpus = zip(*[handshakeRate(200 if quick else 2000) for _ in range(repeats)])
    results["handshakes per second (16 concurrent clients)"] = figure(median(rates), "handshakes/s")
    results["server CPU per handshake (process, loopback)"] = figure(median(cpus), "us", goal="<= 120 us")
    results["server CPU per handshake (engine only)"] = figure(
        median([serverCpuPerHandshake(50 if quick else 1000) for _ in range(repeats)]), "us", goal="<= 120 us")

    plain64 = results["one-way 64 B, chacha20-poly1305 (msg/s)"]["baseline"]
    flood = median([cookieFlood(n) for _ in range(repeats)])
    results["cookie replies under HELLO flood (/s)"] = figure(flood, "replies/s", plain64,
                                                              "plaintext Twisted UDP receive", goal=">= 0.7x")
    # what a plaintext Twisted server does when it answers every datagram of the same flood
    echoFlood = median([cookieFlood(n, mode="udp-echo") for _ in range(repeats)])
    results["cookie replies vs a plaintext Twisted server answering the same flood (/s)"] = figure(
        flood, "replies/s", echoFlood, "plaintext Twisted UDP, one reply per datagram")
    sessions = 500 if quick else 10_000
    results[f"memory per session at {sessions} sessions"] = figure(memoryPerSession(sessions), "bytes RSS",
                                                                    goal="<= 4096")
    for name, overhead in overheadBytes().items():
        results[f"overhead per datagram, {name}"] = figure(
            overhead, "bytes", goal="<= 29" if not name.startswith("vpn041") else "17-byte header (spec 041)")

    stream = streamFigures(quick)
    tls = stream["tls (TLSMemoryBIOProtocol)"]
    tcp = stream["tcp"]
    for name, r in stream.items():
        if name.startswith("sframe"):
            results[f"{name} bulk 64 KiB writes (MB/s)"] = figure(r["bulk MB/s"], "MB/s", tls["bulk MB/s"],
                                                                  "Twisted TLS", goal=">= 1.0x")
            results[f"{name} bulk vs TCP (MB/s)"] = figure(r["bulk MB/s"], "MB/s", tcp["bulk MB/s"], "plaintext TCP")
            results[f"{name} small writes (/s)"] = figure(r["small writes/s"], "writes/s", tls["small writes/s"],
                                                          "Twisted TLS")
    results.update(peerFigures(results, quick, repeats))
    results.update(floorFigures(results, n, repeats))
    return results


def floorFigures(results, n, repeats):
    """
    The floor of sudp's receive path: a C receiver (benchmarks/climit.py,
    C{recvmmsg} and one EVP open per packet, no protocol) fed by the same
    sender, without and with GSO, each beside sudp's figure of the same
    case; none, said loudly, where it cannot be built.
    """
    import climit

    try:
        climit.build()
    except climit.BuildError as e:
        print(f"\nC RECEIVER FLOOR NOT MEASURED: {e}\n", file=sys.stderr, flush=True)
        return {}
    out = {}
    for size in (64, 1200):
        for suite in ("chacha20-poly1305", "aes-256-gcm"):
            for gso in (False, True):
                runs = [climit.oneWayLimit(size, n, suite, gso=gso)[:4] for _ in range(repeats)]
                case = f"one-way {size} B, {suite}" + (", GSO sender" if gso else "")
                rate, cpu = median([r[0] for r in runs]), median([r[2] for r in runs])
                out[f"C receiver floor, {case} (msg/s)"] = figure(rate, "msg/s", bound=bound(runs, n))
                out[f"C receiver floor, receiver CPU per message, {case} (us)"] = figure(cpu, "us")
                mine = (f"one-way {size} B, GSO sender, sudp with GRO, {suite} (msg/s)" if gso
                        else f"one-way {size} B, {suite} (msg/s)")
                myCpu = (f"receiver CPU per message, GSO sender, {suite}, {size} B (us)" if gso
                         else f"receiver CPU per message, one-way {size} B, {suite} (us)")
                out[f"sudp vs the C receiver floor, {case} (msg/s)"] = figure(
                    results[mine]["value"], "msg/s", rate, "C receiver floor", goal=">= 0.67x")
                out[f"sudp vs the C receiver floor, receiver CPU per message, {case} (us)"] = figure(
                    results[myCpu]["value"], "us", cpu, "C receiver floor", higherIsBetter=False, goal="<= 1.5x")
    return out


def peerFigures(results, quick, repeats):
    """
    The peers a user would pick instead (benchmarks/peers.py: asyncio and
    uvloop UDP, aioquic, Twisted TLS), measured now, each beside sudp's
    figure of the same case as its ratio; none if the C{bench} extra is not
    installed (said loudly).
    """
    import peers

    try:
        peers.require("quic-count:uvloop")
    except peers.Missing as e:
        print(f"\nPEERS NOT MEASURED: {e}\n", file=sys.stderr, flush=True)
        return {}
    measured = peers.run(quick, repeats)
    suite = Config().suites[0].name  # what a default server runs on this CPU
    sframe = next(k for k in results if k.startswith(f"sframe {suite} bulk 64 KiB"))
    ours = {
        "one-way": lambda size: f"one-way {size} B, {suite} (msg/s)",
        "cpu": lambda size: f"receiver CPU per message, one-way {size} B, {suite} (us)",
        "echo": lambda size: f"echo {size} B, 64 in flight, {suite} (rt/s)",
    }
    out = {}
    for name, f in measured.items():
        out[name] = f
        mine = None
        for size in (64, 1200):
            if name.startswith(f"one-way {size} B, "):
                mine = ours["one-way"](size)
            elif name.startswith(f"receiver CPU per message, one-way {size} B, "):
                mine = ours["cpu"](size)
            elif name.startswith(f"echo {size} B, "):
                mine = ours["echo"](size)
        if name.startswith("bulk "):
            mine = sframe
        elif name == "aioquic handshakes per second (16 concurrent clients)":
            mine = "handshakes per second (16 concurrent clients)"
        elif name == "aioquic server CPU per handshake (process, loopback)":
            mine = "server CPU per handshake (process, loopback)"
        elif name == "aioquic server CPU per handshake (QuicConnection only)":
            mine = "server CPU per handshake (engine only)"
        if mine is None or mine not in results:
            continue
        goal = None
        if "aioquic DATAGRAM" in name and name.startswith("one-way"):
            goal = ">= 30x"
        elif name.startswith("aioquic handshakes"):
            goal = ">= 10x"
        out[f"sudp ({suite}) vs {name}"] = figure(
            results[mine]["value"], f["unit"], f["value"], name, higherIsBetter=f["unit"] != "us", goal=goal)
    return out


def printTable(results, out=sys.stdout):
    out.write(f"{'figure':66} {'value':>12} {'baseline':>12} {'ratio':>7}  {'goal':9} bound by\n")
    for name, f in results.items():
        base = f"{f['baseline']:12.1f}" if "baseline" in f else " " * 12
        ratio = f"{f['ratio']:7.2f}" if f.get("ratio") is not None else " " * 7
        out.write(f"{name:66} {f['value']:12.1f} {base} {ratio}  {f.get('goal', ''):9} {f.get('bound by', '')}\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description="the sudp benchmark suite (loopback)")
    parser.add_argument("--quick", action="store_true", help="tiny counts: a smoke run of a few seconds")
    parser.add_argument("--repeats", type=int, help="repeats per case (default 3, quick 1)")
    parser.add_argument("--json", default=os.path.join(HERE, "results", "latest.json"))
    args = parser.parse_args(argv)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    started = time.time()
    host = machine()
    print(f"measuring sudp from {DATA_PATH['sudp']}: {DATA_PATH['data path']}")
    print("on " + ", ".join(f"{k} {v}" for k, v in host.items() if v is not None), flush=True)
    results = run(args.quick, args.repeats)
    printTable(results)
    with open(args.json, "w") as f:
        json.dump({"took seconds": time.time() - started, "quick": args.quick, "data path": DATA_PATH,
                   "machine": host, "figures": results}, f, indent=2)
    print(f"\nwrote {args.json} ({time.time() - started:.0f} s)")
    return results


if __name__ == "__main__":
    main()
