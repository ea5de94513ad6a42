"""
The pending-handshake exhaustion attack of issue 14 against a sudp/1 server
in its own process, with default limits (1,000 pending handshakes, 20
handshakes a second per source): 100 cookie-proven attacker addresses
(127.0.1.1-100) send HANDSHAKE_INITs with random ephemerals at the rate one
source is allowed and never confirm, for a few seconds; meanwhile 10 new
clients (127.0.2.1-10) connect one after another, each with a 3 s
handshake timeout.

Reported: the server's CPU (process CPU time over wall time, from
/proc/PID/stat), handshakes answered a second, pending handshakes evicted,
clients refused, and each new client's connect time. Prints a table and
writes benchmarks/results/exhaustion.json.

    python benchmarks/bench_exhaustion.py [--seconds 5] [--json PATH]

The same script with --serve is the server (one line of JSON with its port
and key, then one line of JSON stats per "stats" line on standard input).
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

ATTACKERS = [f"127.0.1.{n}" for n in range(1, 101)]
NEWCOMERS = [f"127.0.2.{n}" for n in range(1, 11)]
CONNECT_TIMEOUT = 3.0


def serve():
    """
    A sudp/1 echo server with default limits on 127.0.0.1.
    """
    from twisted.internet import protocol, reactor, stdio
    from twisted.protocols.basic import LineReceiver

    from sudp.tap import Echo
    from sudp.udp.config import Config
    from sudp_test.attackers import listenServer

    class Commands(LineReceiver):
        delimiter = b"\n"

        def __init__(self, port):
            self.port = port

        def lineReceived(self, line):
            if line.strip() == b"stats":
                self.sendLine(json.dumps(self.port.engine.stats()).encode())

        def connectionLost(self, reason):
            if reactor.running:
                reactor.stop()

    def listening(result):
        port, identity = result
        stdio.StandardIO(Commands(port))
        info = {"port": port.getHost().port, "key": identity.publicKey.toText()}
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()

    listenServer(reactor, protocol.Factory.forProtocol(Echo), Config()).addCallback(listening)
    reactor.run()


class ServerProcess:
    """
    The --serve server in a child process.
    """

    def __init__(self):
        env = dict(os.environ, PYTHONPATH=ROOT)
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
        info = json.loads(self.proc.stdout.readline())
        self.addr = ("127.0.0.1", info["port"])
        self.key = info["key"]

    def stats(self):
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def cpuSeconds(self):
        """
        User plus system CPU seconds the server used so far.
        """
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def attack(reactor, server, seconds):
    """
    Run the flood for C{seconds} (at least until the clients are done).

    @return: a L{Deferred} firing with the figures.
    """
    from twisted.internet import defer, task

    from sudp.keys import PublicKey
    from sudp.udp.config import Config
    from sudp.udp.endpoints import SUDPClientEndpoint
    from sudp_test.attackers import InitFlood, connectOneByOne

    @defer.inlineCallbacks
    def run():
        config = Config()
        before, cpu0, start = server.stats(), server.cpuSeconds(), time.monotonic()
        flood = InitFlood(reactor, server.addr, ATTACKERS, rate=config.handshakesPerSecond)
        flood.start()
        waited = 0.0
        while flood.resps < config.maxPendingHandshakes and waited < seconds:
            yield task.deferLater(reactor, 0.05, lambda: None)
            waited += 0.05
        filledAfter = time.monotonic() - start
        key = PublicKey.fromText(server.key)
        endpoints = [SUDPClientEndpoint(reactor, server.addr[0], server.addr[1], key,
                                        Config(handshakeTimeout=CONNECT_TIMEOUT), bindAddress=host)
                     for host in NEWCOMERS]
        clients = yield connectOneByOne(reactor, endpoints)
        rest = seconds - (time.monotonic() - start)
        if rest > 0:
            yield task.deferLater(reactor, rest, lambda: None)
        wall, cpu1, after = time.monotonic() - start, server.cpuSeconds(), server.stats()
        yield flood.stop()
        drops = after.get("drops", {})
        return {
            "seconds": round(wall, 3),
            "attackers": len(ATTACKERS),
            "attackerInitsSent": flood.initsSent,
            "attackerRespsReceived": flood.resps,
            "slotsFilledAfter": (round(filledAfter, 3)
                                 if flood.resps >= config.maxPendingHandshakes else None),
            "serverCpu": round((cpu1 - cpu0) / wall, 3),
            "handshakesPerSecond": round(
                (after.get("handshakes", 0) - before.get("handshakes", 0)) / wall, 1),
            "evictions": after.get("pending-evicted", 0),
            "refused": {k: v for k, v in drops.items()
                        if k in ("too-many-pending", "rate-limited", "server-full")},
            "clientsConnected": sum(1 for s, _ in clients if s is not None),
            "clients": [{"source": host, "seconds": None if s is None else round(s, 4), "error": e}
                        for host, (s, e) in zip(NEWCOMERS, clients)],
        }

    return run()


def table(figures):
    rows = [
        ("run time", f"{figures['seconds']:.1f} s"),
        ("attacker INITs sent / RESPs received",
         f"{figures['attackerInitsSent']} / {figures['attackerRespsReceived']}"),
        ("all pending slots held after", "never" if figures["slotsFilledAfter"] is None
         else f"{figures['slotsFilledAfter']:.2f} s"),
        ("server CPU (CPU time / wall time)", f"{figures['serverCpu']:.0%}"),
        ("handshakes answered", f"{figures['handshakesPerSecond']:.0f}/s"),
        ("pending handshakes evicted", str(figures["evictions"])),
        ("refused", ", ".join(f"{k} {v}" for k, v in figures["refused"].items()) or "0"),
        ("new clients connected", f"{figures['clientsConnected']} of {len(figures['clients'])}"),
    ]
    for c in figures["clients"]:
        outcome = f"failed: {c['error']}" if c["seconds"] is None else f"{c['seconds'] * 1000:.1f} ms"
        rows.append((f"  client {c['source']}", outcome))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=5.0, help="how long the flood runs (default 5)")
    parser.add_argument("--json", default=os.path.join(HERE, "results", "exhaustion.json"),
                        help="where to write the figures (default benchmarks/results/exhaustion.json)")
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return
    from twisted.internet import task

    server = ServerProcess()
    out = []
    try:
        task.react(lambda reactor: attack(reactor, server, args.seconds).addCallback(out.append))
    except SystemExit as e:
        if e.code:
            raise
    finally:
        server.close()
    figures = out[0]
    print(table(figures))
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(figures, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
