"""
Benchmark servers, one per process, for benchmarks/run.py.

    python benchmarks/servers.py MODE

MODE is udp-count, udp-echo (plaintext Twisted UDP), sudp-count or
sudp-echo (sudp/1 through its endpoint), the sudp ones optionally with
":SUITE" to serve one cipher suite only; sudp-echo-limited is sudp-echo with
the default per-address handshake limits (stress/flood.py). The server
binds 127.0.0.1 on a free port, prints one line of JSON ({"port": ...,
"key": ..., "dataPath": the data path it runs}) and serves.
Each line "reset" on standard input zeroes the counters (answer: {}); each
line "stats" is answered with one line of JSON:
datagrams received, time of the first and last, messages delivered, RSS
bytes, CPU seconds used, and for sudp the engine's counters and the sizes of
its containers. A line "watch HOST:PORT" (answer: {}) counts the datagrams
read from that address by first byte, reported in "stats" as "watched".
"""

import json
import os
import shutil
import socket
import sys
import tempfile

# the sudp that benchmarks/run.py measures (benchmarks/environment.py), else the checkout's
sys.path.insert(0, os.environ.get("SUDP_BENCH_HOME") or os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet import protocol, reactor, stdio  # noqa: E402
from twisted.protocols.basic import LineReceiver  # noqa: E402

from serverstats import STATS, reset, seen, stats  # noqa: E402  (this script's folder)
from sudp import speedups  # noqa: E402
from sudp.keys import Identity, saveIdentity  # noqa: E402
from sudp.suites import getSuite  # noqa: E402
from sudp.udp.adapters import ServerAdapter  # noqa: E402
from sudp.udp.config import Config  # noqa: E402
from sudp.udp.endpoints import SUDPServerEndpoint  # noqa: E402

RECV_BUFFER = 4 << 20  # the same receive buffer for every server: bursts are not lost to it
WATCHED = {}  # (host, port) -> {first byte: datagrams read}, for "watch"


def watch(datagrams, addr):
    counts = WATCHED.get(addr)
    if counts is not None:
        for d in datagrams:
            key = d[0] if d else -1
            counts[key] = counts.get(key, 0) + 1


def containers(engine):
    """
    The sizes of what a server engine keeps (stress/flood.py checks that
    junk adds nothing to them).
    """
    return {"sessions": len(engine.sessions), "byEphemeral": len(engine.byEphemeral),
            "limiter": len(engine.limiter), "timers": len(engine.timers),
            "cookieSecrets": len(engine.cookies._cache), "ciphers": len(engine.ciphers)}


class PlainCount(protocol.DatagramProtocol):
    def datagramReceived(self, data, addr):
        seen()


class PlainEcho(protocol.DatagramProtocol):
    def datagramReceived(self, data, addr):
        seen()
        self.transport.write(data, addr)


class Count(protocol.Protocol):
    def dataReceived(self, data):
        STATS["messages"] += 1


class Echo(protocol.Protocol):
    def dataReceived(self, data):
        STATS["messages"] += 1
        self.transport.write(data)


class Commands(LineReceiver):
    delimiter = b"\n"

    def __init__(self, port):
        self.port = port

    def lineReceived(self, line):
        if line.strip() == b"reset":
            reset()
            for addr in WATCHED:
                WATCHED[addr] = {}
            self.sendLine(b"{}")
        elif line.startswith(b"watch "):
            host, _, port = line[6:].strip().decode().rpartition(":")
            WATCHED[(host, int(port))] = {}
            # watching needs each datagram's bytes: reads go through
            # batchReceived (counted below) from now on, not readFrom
            ServerAdapter.readFrom = None
            self.sendLine(b"{}")
        elif line.strip() == b"stats":
            out = stats()
            engine = getattr(self.port, "engine", None)
            if engine is not None:
                out["engine"] = engine.stats()
                out["containers"] = containers(engine)
            if WATCHED:
                out["watched"] = {f"{h}:{p}": {str(k): n for k, n in c.items()} for (h, p), c in WATCHED.items()}
            self.sendLine(json.dumps(out).encode())

    def connectionLost(self, reason):
        if reactor.running:
            reactor.stop()


def main(mode):
    # MODE[:SUITE] runs a sudp server with that one cipher suite
    mode, _, suite = mode.partition(":")
    original = ServerAdapter.datagramsReceived

    def counted(self, datagrams, addr):
        seen(len(datagrams))
        if WATCHED:
            watch(datagrams, addr)
        original(self, datagrams, addr)

    ServerAdapter.datagramsReceived = counted
    batch = ServerAdapter.batchReceived

    def countedBatch(self, groups):
        seen(sum(len(datagrams) for datagrams, _ in groups))
        if WATCHED:
            for datagrams, addr in groups:
                watch(datagrams, addr)
        batch(self, groups)

    ServerAdapter.batchReceived = countedBatch
    readFrom = ServerAdapter.readFrom

    def countedRead(self, receiver):
        got = readFrom(self, receiver)
        if got[0]:
            seen(got[0])
        return got

    ServerAdapter.readFrom = countedRead
    ServerAdapter.datagramReceived = lambda self, data, addr: counted(self, (data,), addr)
    keyDir = None
    if mode.startswith("udp-"):
        port = reactor.listenUDP(0, PlainCount() if mode == "udp-count" else PlainEcho(), interface="127.0.0.1")
        port.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
        info = {"port": port.getHost().port}
    else:
        identity = Identity.generate()
        keyDir = tempfile.mkdtemp()
        saveIdentity(identity, os.path.join(keyDir, "bench.key"))
        # capacity is measured from one load-generating address, so its
        # per-source handshake limit is lifted here (but for sudp-echo-limited)
        limits = {} if mode == "sudp-echo-limited" else {"handshakesPerSecond": 1e9, "handshakeBurst": 10**9}
        config = Config(maxSessions=100000, maxPendingHandshakes=100000, idleTimeout=600, keepaliveInterval=300,
                        recvBuffer=RECV_BUFFER, **limits,
                        **({"suites": (getSuite(suite),)} if suite else {}))
        endpoint = SUDPServerEndpoint(reactor, 0, identity, config, interface="127.0.0.1")
        factory = protocol.Factory.forProtocol(Count if mode == "sudp-count" else Echo)
        port = []
        endpoint.listen(factory).addCallback(port.append)
        port = port[0]
        info = {"port": port.getHost().port, "key": identity.publicKey.toText()}
    info["dataPath"] = speedups.describe()
    stdio.StandardIO(Commands(port))
    print(json.dumps(info), flush=True)
    try:
        reactor.run()
    finally:
        if keyDir is not None:  # the key pair is not left behind in /tmp
            shutil.rmtree(keyDir, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1])
