# -*- test-case-name: sudp_test.peer.test_blocking -*-
"""
Tests for L{sudp.peer.blocking}.

Peer mode (L{sudp.peer}): symmetric sudp/1 peers on one UDP socket with the
feature set of py-vault-udp (seed 002). Real sockets on 127.0.0.1, except
where a point is about pure functions (the framing, the known-peers file).

  1. one port per node; peers added and removed at run time, several on one
     IP; send to one or to all; the tie-break when both sides start at once
  2. trust: pinned keys, unknown peers refused, trust on first use, key
     changes refused loudly; the known-peers file parser
  3. key lifetime and refresh on sudp/1 rekeying: exactly-once delivery,
     replay protection across epochs, cleanup on timers, handshake retries
  4. compression, padding, per-peer rate limits, MTU accounting; Framing
     robustness (hypothesis)
  5. stats
  6. the blocking facade (PeerSocket), in a subprocess
  7. protocol versioning
"""

import json
import os
import sys

from twisted.internet import defer, protocol, reactor, task
from twisted.trial import unittest

from sudp.peer import blocking
from sudp.peer.netinfo import interfaceMTU

from sudp_test.paths import ROOT
from sudp.peer.knownpeers import KnownPeers

from sudp_test.peer.helpers import LOCAL, PeerNet, isOpen, messages, waitUntil

# the start of every script below: PeerSocket, and waitFor(predicate, timeout)
# polling until the predicate holds (True) or the timeout passes (False)
SCRIPT_PRELUDE = r'''
import json, os, threading, time
from sudp.peer.blocking import PeerSocket


def waitFor(predicate, timeout=15):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True

'''

THREE_PEERS = SCRIPT_PRELUDE + r'''
names = "abc"
received = {n: [] for n in names}
result = {}
with PeerSocket(recv_port=0, interface="127.0.0.1") as a, \
        PeerSocket(recv_port=0, interface="127.0.0.1") as b, \
        PeerSocket(recv_port=0, interface="127.0.0.1", compress=True) as c:
    socks = dict(zip(names, (a, b, c)))
    addrs = {n: ("127.0.0.1", s.port) for n, s in socks.items()}
    nameOf = {s.port: n for n, s in socks.items()}
    for n, s in socks.items():
        s.on_receive(lambda data, addr, n=n: received[n].append([nameOf.get(addr[1], repr(addr)), data.decode()]))
        for m in names:
            if m != n:
                s.add_peer(addrs[m], socks[m].public_key)  # pins its key
    result["opened"] = waitFor(lambda: all(p["state"] == "open" for s in socks.values()
                                           for p in s.get_stats()["peers"].values()))
    a.send_data("a to b", addrs["b"])
    a.send_data("a to all")
    b.send_data(b"b to all")
    c.send_data("c to a", addrs["a"])
    threads = [threading.Thread(target=lambda t=t: [a.send_data("thread %d msg %d" % (t, k), addrs["b"])
                                                   for k in range(10)]) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result["delivered"] = waitFor(lambda: len(received["a"]) >= 2 and len(received["b"]) >= 42
                                  and len(received["c"]) >= 2)
    time.sleep(0.2)  # room for a duplicate to show up
    result["peers"] = {n: sorted(nameOf[port] for _, port in s.get_peers()) for n, s in socks.items()}
    result["by_ip"] = {n: sorted(nameOf[port] for _, port in s.get_peers_by_ip("127.0.0.1")) for n, s in socks.items()}
    result["by_other_ip"] = a.get_peers_by_ip("127.0.0.2")
    result["has_peer"] = [a.has_peer(addrs["b"]), a.has_peer(addrs["c"]), a.has_peer(("127.0.0.1", 9))]
    result["stats"] = {n: s.get_stats() for n, s in socks.items()}
    result["names"] = {n: "127.0.0.1:%d" % s.port for n, s in socks.items()}
    result["reactor_thread_daemon"] = [t.daemon for t in threading.enumerate() if t.name == "sudp-reactor"]
result["stopped"] = [s._stopped for s in socks.values()]
a.stop()  # again: harmless
result["received"] = received
print(json.dumps(result))
'''

CALL_FROM_CALLBACK = SCRIPT_PRELUDE + r'''
a = PeerSocket(recv_port=0, interface="127.0.0.1")
b = PeerSocket(recv_port=0, interface="127.0.0.1")
outcome, echoes = {}, []


def echo(data, addr):  # seed 002's echo server: answer from the receive callback
    try:
        b.send_data(b"echo: " + data, addr)
        outcome["echo"] = "sent"
    except RuntimeError as e:
        outcome["echo"] = "RuntimeError: %s" % e


a.on_receive(lambda data, addr: echoes.append(data.decode()))
b.on_receive(echo)
a.add_peer(("127.0.0.1", b.port), b.public_key)
b.add_peer(("127.0.0.1", a.port), a.public_key)
opened = waitFor(lambda: all(p["state"] == "open" for s in (a, b) for p in s.get_stats()["peers"].values()), 10)
a.send_data(b"ping")
answered = waitFor(lambda: "echo" in outcome, 3)
if outcome.get("echo") == "sent":
    waitFor(lambda: echoes, 3)
print(json.dumps({"opened": opened, "outcome": outcome.get("echo", "hung"), "echoes": echoes}), flush=True)
if answered:
    a.stop()
    b.stop()
os._exit(0)  # a hung reactor thread would block a normal exit's stop()
'''

# a program whose Twisted reactor runs in a thread of its own (as crochet
# runs it): the socket uses that reactor, from the main thread
COEXIST = SCRIPT_PRELUDE + r"""
from twisted.internet import reactor
runner = threading.Thread(target=reactor.run, kwargs={"installSignalHandlers": False}, daemon=True)
runner.start()
waitFor(lambda: reactor.running, 5)
import sudp.peer.blocking as blocking
a = PeerSocket(recv_port=0, interface="127.0.0.1", tofu=True)
b = PeerSocket(recv_port=0, interface="127.0.0.1", tofu=True)
got = []
b.on_receive(lambda data, addr: got.append(data.decode()))
a.add_peer(("127.0.0.1", b.port))
b.add_peer(("127.0.0.1", a.port))
a.send_data("over the program's reactor")
ok = waitFor(lambda: got, 5)
result = {"got": got, "same": a.reactor is reactor, "private": blocking.reactorThread() is not None,
          "stopped": [a.stop(), b.stop()], "running": reactor.running}
reactor.callFromThread(reactor.stop)
runner.join(5)
print(json.dumps(result))
"""


# py-vault-udp's own names and habits
SEED_API = SCRIPT_PRELUDE + r"""
import threading
from sudp.peer.blocking import UDPSocketClass
result = {}
a = UDPSocketClass(recv_port=0, interface="127.0.0.1", tofu=True, lifetime=120,
                   config={"idleTimeout": 30, "keepaliveInterval": 5}, compress=True, compression_level=19)
b = UDPSocketClass(recv_port=0, interface="127.0.0.1", tofu=True)
names = {b.port: "b"}
signal, raw = [], []
a.udp_recv_data.connect(lambda text, addr: signal.append([text, names.get(addr[1])]))
a.on_receive(lambda data, addr: raw.append(repr(data)[2:-1]))
a.add_peer(("127.0.0.1", b.port))
b.add_peer(("127.0.0.1", a.port))
b.udp_send_data.emit("hello")
b.send_data(b"caf\xc3\xa9 \xff", ("127.0.0.1", a.port))
waitFor(lambda: len(signal) == 2, 10)
result["signal"], result["bytes"] = list(signal), list(raw)
lifetimes = [a.lifetime]
a.lifetime = 60
lifetimes.append(a.lifetime)
result["lifetime"] = lifetimes
result["idleTimeout"] = a.node.config.idleTimeout
result["compression"] = a.node.framing.compressionLevel == 19
old = b.port
moved = b.update_recv_port(0)
b.send_data("from the new port")
result["moved"] = moved != old and waitFor(lambda: len(signal) == 3, 10) and signal[2]
# (still b: a peer is found by its session, which followed b to its new port)
result["stopped"] = [a.stop(timeout=5), b.stop(timeout=5)]
result["threads_after_stop"] = [t.name for t in threading.enumerate() if t.name == "sudp-reactor"]
with UDPSocketClass(recv_port=0, interface="127.0.0.1") as c:
    result["again"] = c.get_stats()["peer_count"] == 0
print(json.dumps(result))
"""


class _Addressed:
    def __init__(self, addr):
        self.addr = addr


class _Collect(protocol.ProcessProtocol):
    def __init__(self):
        self.out, self.err = [], []
        self.done = defer.Deferred()
        self.ended = False

    def outReceived(self, data):
        self.out.append(data)

    def errReceived(self, data):
        self.err.append(data)

    def processEnded(self, reason):
        self.ended = True
        self.done.callback((b"".join(self.out).decode(), b"".join(self.err).decode(), reason.value.exitCode))

# seed 002's quick start, with trust on first use on every node: N sockets
# that know only each other's addresses add each other at once; how long
# until every node got a message from every other
TOFU_MESH = SCRIPT_PRELUDE + r"""
import sys
count = int(sys.argv[1])
socks = [PeerSocket(recv_port=0, interface="127.0.0.1", tofu=True) for _ in range(count)]
received = [set() for _ in socks]
for i, s in enumerate(socks):
    s.on_receive(lambda data, addr, i=i: received[i].add(addr[1]))
start = time.monotonic()
for s in socks:
    for o in socks:
        if o is not s:
            s.add_peer(("127.0.0.1", o.port))
added = time.monotonic()
def everyoneHeard():
    for s in socks:
        s.send_data("hi")
    return all(len(r) == count - 1 for r in received)
ok = waitFor(lambda: everyoneHeard() or time.sleep(0.05), timeout=10)
elapsed = time.monotonic() - added
stats = [s.get_stats() for s in socks]
for s in socks:
    s.stop()
print(json.dumps({"ok": ok, "seconds": elapsed, "states": [sorted(p["state"] for p in st["peers"].values())
                                                           for st in stats]}))
"""

# add_peer with no key and trust on first use off: it must say so at once
NO_KEY = SCRIPT_PRELUDE + r"""
s = PeerSocket(recv_port=0, interface="127.0.0.1")
try:
    s.add_peer(("127.0.0.1", 9))
    outcome = "nothing"
except Exception as e:
    outcome = type(e).__name__ + ": " + str(e)
s.stop()
print(json.dumps({"outcome": outcome}))
"""

# a node waiting for a peer that does not answer, with a message queued:
# the process's CPU time over two seconds of waiting
IDLE_CPU = SCRIPT_PRELUDE + r"""
s = PeerSocket(recv_port=0, interface="127.0.0.1", tofu=True)
s.add_peer(("127.0.0.1", 9))
s.send_data("waiting for you")
# and two nodes with an idle session between them
a = PeerSocket(recv_port=0, interface="127.0.0.1", tofu=True)
b = PeerSocket(recv_port=0, interface="127.0.0.1", tofu=True)
a.add_peer(("127.0.0.1", b.port))
b.add_peer(("127.0.0.1", a.port))
opened = waitFor(lambda: a.get_stats()["peers"]["127.0.0.1:%d" % b.port]["state"] == "open", 5)
time.sleep(0.5)
before = time.process_time()
time.sleep(2.0)
used = time.process_time() - before
for x in (s, a, b):
    x.stop()
print(json.dumps({"cpu": used, "opened": opened}))
"""

# a node with trust on first use and one friend; a stranger that adds it
# (also trusting on first use) must not be trusted, and the refusal must
# reach a plain program's logging
STRANGER = SCRIPT_PRELUDE + r"""
import logging
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append([record.name, record.levelname, record.getMessage()])
logging.basicConfig(level=logging.DEBUG, handlers=[Keep()])
known = os.path.abspath("known_peers")
node = PeerSocket(recv_port=0, interface="127.0.0.1", tofu=True, known_peers=known)
stranger = PeerSocket(recv_port=0, interface="127.0.0.1", tofu=True)
got = []
stranger.on_receive(lambda data, addr: got.append(data))
errors = []
node.on_error(lambda event: errors.append([event.reason, event.text()]))
stranger.add_peer(("127.0.0.1", node.port), node.public_key)  # it knows the node's key: it can connect
time.sleep(1.5)
node.send_data("broadcast")
time.sleep(0.5)
result = {"peers": node.get_peers(), "stranger_got": len(got),
          "known": open(known).read() if os.path.exists(known) else "",
          "records": [r for r in records if r[0].startswith("sudp.peer")], "errors": errors}
node.stop(); stranger.stop()
print(json.dumps(result))
"""


class BlockingTests(PeerNet, unittest.TestCase):
    timeout = 45

    def runScript(self, source, limit=30):
        """
        Run C{source} as a Python script in a subprocess (killed after
        C{limit} seconds).

        @return: a Deferred firing with (stdout, stderr, exit code).
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "script.py")
        with open(path, "w") as f:
            f.write(source)
        collect = _Collect()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
        process = reactor.spawnProcess(collect, sys.executable, [sys.executable, path], env=env, path=directory)
        killer = reactor.callLater(limit, process.signalProcess, "KILL")

        def cleanup():
            if killer.active():
                killer.cancel()
            if not collect.ended:
                process.signalProcess("KILL")
                return collect.done

        self.addCleanup(cleanup)
        return collect.done

    @defer.inlineCallbacks
    def test_threePeersInOneProcess(self):
        """
        Three PeerSockets in one plain Python process (recv_port=0 on
        127.0.0.1, the reactor in its daemon thread) pin each other's keys,
        send to one and to all, and from four threads at once; each gets
        exactly its messages; peers, peers by IP, has-peer and get_stats()
        report what happened; the context manager stops all three.
        """
        out, err, code = yield self.runScript(THREE_PEERS)
        self.assertEqual(code, 0, err)
        result = json.loads(out)
        self.assertTrue(result["opened"], result)
        self.assertTrue(result["delivered"], result)
        got = {n: sorted(map(tuple, messages)) for n, messages in result["received"].items()}
        threads = [("a", "thread %d msg %d" % (t, k)) for t in range(4) for k in range(10)]
        self.assertEqual(got["a"], sorted([("b", "b to all"), ("c", "c to a")]))
        self.assertEqual(got["b"], sorted([("a", "a to b"), ("a", "a to all")] + threads))
        self.assertEqual(got["c"], sorted([("a", "a to all"), ("b", "b to all")]))
        self.assertEqual(result["peers"], {"a": ["b", "c"], "b": ["a", "c"], "c": ["a", "b"]})
        self.assertEqual(result["by_ip"], result["peers"])
        self.assertEqual(result["by_other_ip"], [])
        self.assertEqual(result["has_peer"], [True, True, False])
        self.assertEqual(result["reactor_thread_daemon"], [True])
        self.assertEqual(result["stopped"], [True, True, True])
        names = result["names"]
        for n, stats in result["stats"].items():
            self.assertEqual(stats["protocol_version"], "sudp/1 peer v1")
            self.assertEqual(stats["mtu"], interfaceMTU())
            self.assertEqual(stats["peer_count"], 2)
            for peer in stats["peers"].values():
                self.assertEqual(peer["state"], "open")
                self.assertEqual(peer["dropped"], {})
        a = result["stats"]["a"]["peers"]
        self.assertEqual((a[names["b"]]["sent"], a[names["b"]]["received"]), (42, 1))
        self.assertEqual((a[names["c"]]["sent"], a[names["c"]]["received"]), (1, 1))
        b = result["stats"]["b"]["peers"]
        self.assertEqual((b[names["a"]]["sent"], b[names["a"]]["received"]), (1, 42))
        self.assertEqual(b[names["c"]]["sent"], 1)

    @defer.inlineCallbacks
    def test_seedQuickStartTwoNodes(self):
        """
        Two sockets that know only each other's addresses, with trust on
        first use on both (py-vault-udp's quick start), exchange messages
        within 1 s of add_peer; one session each.
        """
        out, err, code = yield self.runScript(TOFU_MESH.replace("int(sys.argv[1])", "2"))
        self.assertEqual(code, 0, err)
        result = json.loads(out)
        self.assertTrue(result["ok"], result)
        self.assertLess(result["seconds"], 1.0)
        self.assertEqual(result["states"], [["open"], ["open"]])

    @defer.inlineCallbacks
    def test_seedQuickStartFiveNodes(self):
        out, err, code = yield self.runScript(TOFU_MESH.replace("int(sys.argv[1])", "5"))
        self.assertEqual(code, 0, err)
        result = json.loads(out)
        self.assertTrue(result["ok"], result)
        self.assertLess(result["seconds"], 1.0)
        self.assertEqual(result["states"], [["open"] * 4] * 5)

    @defer.inlineCallbacks
    def test_addPeerWithoutAnyKeySaysWhatToDo(self):
        """
        The landed add_peer with no key and no trust on first use did
        nothing and said nothing.
        """
        out, err, code = yield self.runScript(NO_KEY)
        self.assertEqual(code, 0, err)
        outcome = json.loads(out)["outcome"]
        self.assertTrue(outcome.startswith("PeerKeyUnknown"), outcome)
        for hint in ("key=", "tofu=True", "known peers"):
            self.assertIn(hint, outcome)

    @defer.inlineCallbacks
    def test_waitingUsesNoCPU(self):
        """
        The landed node spun 90-100 % of a core while a message waited for
        a peer it could not reach.
        """
        out, err, code = yield self.runScript(IDLE_CPU)
        self.assertEqual(code, 0, err)
        result = json.loads(out)
        self.assertTrue(result["opened"])
        self.assertLess(result["cpu"], 0.1)  # of 2 s waiting: under 5 % of a core

    @defer.inlineCallbacks
    def test_strangerRefusedAndLogged(self):
        """
        The landed node pinned any host that completed a handshake, added it
        and sent it every broadcast; and its log lines went only to
        Twisted's logger.
        """
        out, err, code = yield self.runScript(STRANGER)
        self.assertEqual(code, 0, err)
        result = json.loads(out)
        self.assertEqual(result["peers"], [])
        self.assertEqual(result["stranger_got"], 0)
        self.assertEqual(result["known"], "")
        stranger = [r for r in result["records"] if "stranger" in r[2]]
        self.assertTrue(stranger, result["records"])
        self.assertEqual(stranger[0][:2], ["sudp.peer", "WARNING"])
        self.assertEqual(result["errors"][0][0], "stranger")  # and the error callback heard of it
        self.assertEqual(result["errors"][0][1], stranger[0][2][len("sudp peer: "):])

    @defer.inlineCallbacks
    def test_insideRunningReactor(self):
        """
        The landed PeerSocket raised when a reactor already ran in the
        process. Now it uses that reactor (here, trial's): made and used
        from the reactor thread, its calls run at once; no thread of its
        own is started; it talks to a PeerNode of the same reactor.
        """
        yield task.deferLater(reactor, 0, lambda: None)  # from here on, inside the running reactor
        self.assertTrue(reactor.running)
        sock = blocking.PeerSocket(recv_port=0, interface=LOCAL, tofu=True)
        self.addCleanup(sock.stop)
        self.assertIsNone(blocking.reactorThread())
        self.assertIs(sock.reactor, reactor)
        node = self.makeNode(known=KnownPeers(tofu=True))
        got = []
        sock.on_receive(lambda data, addr: got.append((data, addr)))
        sock.add_peer(node.addr)
        node.addPeer((LOCAL, sock.port))
        yield waitUntil(lambda: isOpen(node, _Addressed((LOCAL, sock.port))), "the session")
        node.send(b"to the socket")
        sock.send_data("to the node")
        yield waitUntil(lambda: got and messages(node), "a message each way")
        self.assertEqual(got, [(b"to the socket", node.addr)])
        self.assertEqual(messages(node), [b"to the node"])
        self.assertTrue(sock.stop())

    @defer.inlineCallbacks
    def test_reactorRunningInAnotherThread(self):
        """
        With Twisted's reactor running in a thread of the program's (as
        crochet does), a socket made in the main thread uses it, and
        stopping the sockets leaves it running.
        """
        out, err, code = yield self.runScript(COEXIST)
        self.assertEqual(code, 0, err)
        result = json.loads(out)
        self.assertEqual(result, {"got": ["over the program's reactor"], "same": True, "private": False,
                                  "stopped": [True, True], "running": True})

    @defer.inlineCallbacks
    def test_seedAPI(self):
        """
        py-vault-udp's API where it fits: UDPSocketClass, the udp_recv_data
        and udp_send_data signals (text in, text or bytes out), lifetime,
        config as a dict, compression level, stop(timeout) that ends the
        reactor thread, a socket made again after that, update_recv_port.
        """
        out, err, code = yield self.runScript(SEED_API)
        self.assertEqual(code, 0, err)
        result = json.loads(out)
        self.assertEqual(result["signal"], [["hello", "b"], ["caf\u00e9 \udcff", "b"]])
        self.assertEqual(result["bytes"], ["hello", "caf\\xc3\\xa9 \\xff"])
        self.assertEqual(result["lifetime"], [120, 60])
        self.assertEqual(result["idleTimeout"], 30)
        self.assertEqual(result["compression"], True)
        self.assertEqual(result["stopped"], [True, True])
        self.assertEqual(result["threads_after_stop"], [])
        self.assertTrue(result["again"], result)
        self.assertEqual(result["moved"], ["from the new port", "b"])

    @defer.inlineCallbacks
    def test_callFromReceiveCallback(self):
        """
        Calling a PeerSocket method from an on_receive callback (that is,
        from inside the running reactor: seed 002's echo server) must raise
        the documented RuntimeError, or work; it must not hang the process.
        """
        out, err, code = yield self.runScript(CALL_FROM_CALLBACK, limit=25)
        self.assertEqual(code, 0, err)
        result = json.loads(out)
        self.assertTrue(result["opened"], result)
        self.assertNotEqual(result["outcome"], "hung",
                            "send_data from the receive callback never returned: the reactor thread is blocked "
                            "for good (blockingCallFromThread from the reactor thread)")
        if result["outcome"] == "sent":
            self.assertEqual(result["echoes"], ["echo: ping"])
        else:
            self.assertTrue(result["outcome"].startswith("RuntimeError"), result)
