"""
Benchmark servers, one per process, for benchmarks/run.py.

    python benchmarks/servers.py MODE

MODE is udp-count, udp-echo (plaintext Twisted UDP), sudp-count or
sudp-echo (sudp/1 through its endpoint), the sudp ones optionally with
":SUITE" to serve one cipher suite only. The server binds 127.0.0.1 on a
free port, prints one line of JSON ({"port": ..., "key": ...}) and serves.
Each line "reset" on standard input zeroes the counters (answer: {}); each
line "stats" is answered with one line of JSON:
datagrams received, time of the first and last, messages delivered, RSS
bytes, CPU seconds used, and for sudp the engine's counters.
"""

import json
import os
import resource
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet import protocol, reactor, stdio  # noqa: E402
from twisted.protocols.basic import LineReceiver  # noqa: E402

from sudp.keys import Identity, saveIdentity  # noqa: E402
from sudp.suites import getSuite  # noqa: E402
from sudp.udp.adapters import ServerAdapter  # noqa: E402
from sudp.udp.config import Config  # noqa: E402
from sudp.udp.endpoints import SUDPServerEndpoint  # noqa: E402

RECV_BUFFER = 4 << 20  # the same receive buffer for every server: bursts are not lost to it
STATS = {"datagrams": 0, "first": None, "last": None, "messages": 0}


def seen(count=1):
    now = time.perf_counter()
    if STATS["first"] is None:
        STATS["first"] = now
    STATS["last"] = now
    STATS["datagrams"] += count


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


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
            STATS.update(datagrams=0, first=None, last=None, messages=0)
            self.sendLine(b"{}")
        elif line.strip() == b"stats":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            out = dict(STATS, rss=rss(), cpu=usage.ru_utime + usage.ru_stime)
            engine = getattr(self.port, "engine", None)
            if engine is not None:
                out["engine"] = engine.stats()
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
        original(self, datagrams, addr)

    ServerAdapter.datagramsReceived = counted
    batch = ServerAdapter.batchReceived

    def countedBatch(self, groups):
        seen(sum(len(datagrams) for datagrams, _ in groups))
        batch(self, groups)

    ServerAdapter.batchReceived = countedBatch
    ServerAdapter.datagramReceived = lambda self, data, addr: counted(self, (data,), addr)
    if mode.startswith("udp-"):
        port = reactor.listenUDP(0, PlainCount() if mode == "udp-count" else PlainEcho(), interface="127.0.0.1")
        port.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
        info = {"port": port.getHost().port}
    else:
        identity = Identity.generate()
        keyFile = os.path.join(tempfile.mkdtemp(), "bench.key")
        saveIdentity(identity, keyFile)
        # capacity is measured from one load-generating address, so its
        # per-source handshake limit is lifted here
        config = Config(maxSessions=100000, maxPendingHandshakes=100000, idleTimeout=600, keepaliveInterval=300,
                        handshakesPerSecond=1e9, handshakeBurst=10**9, recvBuffer=RECV_BUFFER,
                        **({"suites": (getSuite(suite),)} if suite else {}))
        endpoint = SUDPServerEndpoint(reactor, 0, identity, config, interface="127.0.0.1")
        factory = protocol.Factory.forProtocol(Count if mode == "sudp-count" else Echo)
        port = []
        endpoint.listen(factory).addCallback(port.append)
        port = port[0]
        info = {"port": port.getHost().port, "key": identity.publicKey.toText()}
    stdio.StandardIO(Commands(port))
    print(json.dumps(info), flush=True)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1])
