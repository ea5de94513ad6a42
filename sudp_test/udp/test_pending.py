# -*- test-case-name: sudp_test.udp.test_pending -*-
"""
Tests for L{sudp.udp.pending} and the server's defence of its pending
handshakes: fair eviction by source prefix, and the rate limit per prefix.
"""

import os
import random

from twisted.trial import unittest

from sudp.udp import packets as P
from sudp.udp.client import ClientState
from sudp.udp.config import Config
from sudp.udp.events import ClientRefused, SessionOpened
from sudp.udp.pending import PendingSlots

from sudp_test.enginehelpers import connect, getCookie, makeInit, Network, newServer, takeOutbox

class PendingSlotsTests(unittest.TestCase):
    def test_counts(self):
        slots = PendingSlots(3)
        a, b, c = object(), object(), object()
        slots.add(a, "p")
        slots.add(b, "p")
        slots.add(c, "q")
        self.assertEqual((len(slots), slots.held("p"), slots.held("q"), slots.held("r")), (3, 2, 1, 0))
        self.assertTrue(slots.full())
        self.assertIn(a, slots)
        slots.remove(a)
        slots.remove(a)  # twice: nothing
        self.assertEqual((len(slots), slots.held("p")), (2, 1))
        self.assertNotIn(a, slots)
        self.assertFalse(slots.full())

    def test_victimIsOldestOfRichest(self):
        """
        A newcomer takes the oldest slot of a prefix holding the most, if
        that prefix holds at least two more than the newcomer's; never
        otherwise (one more is not enough: such sources would churn).
        """
        slots = PendingSlots(7)
        entries = {}
        for name, prefix in (("p1", "p"), ("q1", "q"), ("p2", "p"), ("p3", "p"), ("q2", "q"), ("r1", "r"),
                             ("p4", "p")):
            entries[name] = object()
            slots.add(entries[name], prefix)
        # p holds 4, q 2, r 1
        self.assertIs(slots.victimFor("new"), entries["p1"])
        self.assertIs(slots.victimFor("q"), entries["p1"])
        self.assertIs(slots.victimFor("r"), entries["p1"])
        self.assertIsNone(slots.victimFor("p"))
        slots.remove(entries["p1"])
        slots.remove(entries["p2"])  # p and q now hold 2, r 1
        self.assertIsNone(slots.victimFor("r"))
        self.assertIsNone(slots.victimFor("q"))
        self.assertIn(slots.victimFor("new"), (entries["p3"], entries["q1"]))

    def test_mostTracksRemovals(self):
        """
        The count of the richest prefix follows additions and removals in
        any order (checked against a plain recount).
        """
        rng = random.Random(7)
        slots = PendingSlots(50)
        live = []
        for _ in range(5000):
            if live and rng.random() < 0.45:
                slots.remove(live.pop(rng.randrange(len(live))))
            else:
                entry = object()
                slots.add(entry, rng.randrange(8))
                live.append(entry)
            counts = [slots.held(p) for p in range(8)]
            richest = max(counts)
            for prefix in range(8):
                victim = slots.victimFor(prefix)
                if richest < counts[prefix] + 2:
                    self.assertIsNone(victim)
                else:
                    self.assertIsNotNone(victim)
                    self.assertEqual(counts[slots._prefixOf[victim]], richest)
        self.assertEqual(len(slots), len(live))

class Attacker:
    """
    A cookie-proven source that sends INITs with random ephemerals (no
    X25519 work) and never confirms.
    """

    def __init__(self, server, addr, now):
        self.server = server
        self.addr = addr
        self.timestamp, self.cookie = getCookie(server, addr, now)
        self.sent = 0

    def send(self, now, count):
        for _ in range(count):
            self.server.receiveDatagram(
                makeInit(self.timestamp, self.cookie, senderIndex=random.randrange(1, 2**32)), self.addr, now)
            self.sent += 1
        return takeOutbox(self.server)

class ExhaustionTests(unittest.TestCase):
    """
    Many cookie-proven sources that never confirm cannot keep new clients
    from getting a pending slot.
    """

    def attack(self, config, attackerAddrs, clientAddrs, rate=20, seconds=6.0, step=0.25):
        """
        Attackers send INITs at C{rate} a second each while the clients
        connect one after another.

        @return: the server and, per client, the seconds it took to open
            (None if it never did).
        """
        server = newServer(config)
        net = Network(server)
        start = net.now
        attackers = [Attacker(server, addr, start) for addr in attackerAddrs]
        results = {}
        clients = list(clientAddrs)
        current = None
        t = 0.0
        while t < seconds:
            for a in attackers:
                a.send(net.now, int(rate * step))
            if current is None and clients:
                addr = clients.pop(0)
                current = (addr, connect(net, addr), net.now)
            net.advance(step)
            t += step
            if current is not None:
                addr, client, began = current
                if client.state == ClientState.ESTABLISHED:
                    results[addr] = net.now - began
                    current = None
                elif net.now - began > 3.0:
                    results[addr] = None
                    current = None
        return server, results

    def test_manyAddressesCannotExhaust(self):
        """
        100 cookie-proven IPv4 sources, each at the highest rate it is
        allowed, never confirming, fill every pending slot; 10 of 10 new
        clients still connect, each within 3 s (on the landed code before
        fair eviction: 1 to 3 of 10).
        """
        attackers = [(f"10.0.{i // 250}.{i % 250 + 1}", 5000) for i in range(100)]
        clients = [(f"192.0.2.{i + 1}", 6000) for i in range(10)]
        server, results = self.attack(Config(), attackers, clients, seconds=12.0)
        self.assertEqual(len(results), 10, results)
        self.assertEqual([a for a, took in results.items() if took is None or took > 3.0], [], results)
        self.assertGreaterEqual(server.pendingCount, Config().maxPendingHandshakes - 1)  # full, less the last client
        self.assertGreater(server.counters["pending-evicted"], 0)

    def test_ipv6SlashSixtyFourIsOneSource(self):
        """
        One host with a /64 (every INIT from another address of it) counts
        as one source: its rate and its share of pending slots are one
        source's, and other clients connect.
        """
        config = Config(maxPendingHandshakes=50)
        attackers = [(f"2001:db8:0:1::{i:x}", 5000) for i in range(1, 201)]
        clients = [(f"2001:db8:0:{i + 2}::1", 6000) for i in range(5)]
        server, results = self.attack(config, attackers, clients, seconds=6.0)
        self.assertEqual(len(results), 5, results)
        self.assertEqual([a for a, took in results.items() if took is None or took > 3.0], [], results)
        # 200 addresses of one /64 sent 200 x 5 INITs a step; one bucket allowed them
        self.assertGreater(server.drops["rate-limited"], 10000)
        self.assertLessEqual(server.counters["handshakes"], 20 + 20 * 6 + 5 + 5)

    def test_prefixConfigurable(self):
        """
        handshakePrefixV4 groups IPv4 sources (here per /24), and
        handshakePrefixV6=128 counts each IPv6 address on its own.
        """
        server = newServer(Config(handshakePrefixV4=24, handshakeBurst=2, handshakesPerSecond=0.001))
        net = Network(server)
        for host in ("10.1.1.1", "10.1.1.2", "10.1.1.3", "10.1.2.1"):
            Attacker(server, (host, 1), net.now).send(net.now, 1)
        self.assertEqual(server.drops["rate-limited"], 1)
        server = newServer(Config(handshakePrefixV6=128, handshakeBurst=1, handshakesPerSecond=0.001))
        for host in ("2001:db8::1", "2001:db8::2", "2001:db8::1"):
            Attacker(server, (host, 1), net.now).send(net.now, 1)
        self.assertEqual(server.drops["rate-limited"], 1)

    def test_refusalsReported(self):
        """
        Each refused cookie-proven client is reported (for the log) with
        its address and reason.
        """
        server = newServer(Config(maxPendingHandshakes=1, handshakeBurst=1, handshakesPerSecond=0.001))
        net = Network(server)
        a = Attacker(server, ("10.0.0.1", 1), net.now)
        a.send(net.now, 2)
        Attacker(server, ("10.0.0.1", 2), net.now).send(net.now, 1)
        refused = [(e.addr, e.reason) for e in server.events if isinstance(e, ClientRefused)]
        self.assertEqual(refused, [(("10.0.0.1", 1), "rate-limited"), (("10.0.0.1", 2), "rate-limited")])

class ResendTests(unittest.TestCase):
    def test_unpaddedInitDrawsNoResend(self):
        """
        A captured INIT without padding, replayed (with a victim's source)
        while its session is pending, draws no RESP: nothing larger than it
        goes back (on the landed code: 122 bytes for every 59).
        """
        server = newServer()
        net = Network(server)
        ts, cookie = getCookie(server, ("10.0.0.9", 7), net.now)
        init = P.HandshakeInit(0x01020304, ts, cookie, os.urandom(32), (1,)).encode()
        server.receiveDatagram(init, ("10.0.0.9", 7), net.now)
        [(resp, _)] = takeOutbox(server)
        sent = received = 0
        for i in range(20):
            server.receiveDatagram(init, ("10.0.0.9", 7), net.now + i * 0.1)
            sent += len(init)
            received += sum(len(d) for d, _ in takeOutbox(server))
        self.assertLess(len(init), len(resp))
        self.assertEqual(received, 0)
        self.assertEqual(server.drops["init-too-short-for-resend"], 20)

    def test_clientHandshakeNeverAmplifies(self):
        """
        A real client's handshake, with its INIT replayed 20 times at the
        pending server: every reply is at most as large as the packet that
        drew it.
        """
        server = newServer()
        net = Network(server)
        client = net.add(
            __import__("sudp.udp.client", fromlist=["ClientEngine"]).ClientEngine(
                server.identity.publicKey, ("127.0.0.1", 9000), Config()),
            ("127.0.0.1", 40000),
        )
        client.start(net.now)
        net.pump(drop=lambda data, src, dst: data[0] == P.CONTROL)
        [init] = [d for src, dst, d in net.sent if d[0] == P.HANDSHAKE_INIT]
        [hello] = [d for src, dst, d in net.sent if d[0] == P.HELLO]
        [cookie] = [d for src, dst, d in net.sent if d[0] == P.COOKIE]
        [resp] = [d for src, dst, d in net.sent if d[0] == P.HANDSHAKE_RESP]
        self.assertLessEqual(len(cookie), len(hello))
        self.assertLessEqual(len(resp), len(init))
        for i in range(20):
            server.receiveDatagram(init, ("127.0.0.1", 40000), net.now)
            for data, _ in takeOutbox(server):
                self.assertLessEqual(len(data), len(init))
        self.assertEqual(server.counters["resp-retransmitted"], 20)
        self.assertEqual(len(net.take("server", SessionOpened)), 0)
