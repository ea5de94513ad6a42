# -*- test-case-name: sudp_test.peer.test_node -*-
"""
Tests for L{sudp.peer.node}.
"""

import hashlib
import logging
import json
import os

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from sudp.errors import MessageTooLarge
from sudp.keys import Identity
from sudp.peer.framing import COMPRESSED, overhead, PADDED, PEER_VERSION
from sudp.peer.netinfo import interfaceMTU
from sudp.peer.knownpeers import formatAddress, KnownPeers, parseAddress, PeerKeyChanged
from sudp.peer.node import PROTOCOL_VERSION
from sudp.udp import packets as P
from sudp.udp.config import Config

from sudp_test.natrelay import NATRelay
from sudp_test.peer.helpers import LOCAL, PeerNet, isOpen, messages, waitUntil
from sudp_test.waiting import sleep

DATA_TYPES = (P.DATA, P.DATA | 1)

CONTROL_TYPES = (P.CONTROL, P.CONTROL | 1)

IPV4_UDP = 28

def seeded(text):
    """
    @return: an L{Identity} made from C{text} (the same on every run).
    """
    return Identity(hashlib.sha256(text.encode()).digest())

def canonical(addr):
    return parseAddress(formatAddress(addr))

def datagramsFrom(node, sender, types=DATA_TYPES):
    """
    @return: the datagrams of the given types C{node} received from C{sender}.
    """
    return [data for data, addr in node.incoming if addr == sender.addr and data[0] in types]

def openSessions(node, other):
    """
    @return: the sessions of C{node} with C{other} that opened and are open
        now, whichever side started them.
    """
    return [s for s in node.opened if s.state == "open" and canonical(s.peerAddr) == other.addr]

def openDatagram(session, datagram):
    """
    Decrypt a DATA datagram received on C{session} with its keys: the peer
    message (version, flags, body) as it was on the wire.
    """
    typeByte, _, seq = P.DATA_HEADER.unpack_from(datagram)
    epoch = session.epochs[typeByte & 1]
    keys = epoch.keys
    cipher = session.suite.newCipher(keys.c2s if session.role == "server" else keys.s2c)
    return cipher.open(seq, datagram[: P.DATA_HEADER_SIZE], datagram[P.DATA_HEADER_SIZE :])

def peerErrors(records):
    """
    @return: the text of the error-level records of peer mode's logger.
    """
    return [r.getMessage() for r in records if r.levelno >= logging.ERROR and r.name.startswith("sudp.peer")]

class MeshTests(PeerNet, unittest.TestCase):
    @defer.inlineCallbacks
    def test_manyPeersOnOneIP(self):
        """
        A node on one UDP port adds three peers on the same IP (different
        ports) at run time; lists them, by IP, and answers has-peer; sends to
        one and to all (each gets exactly its messages, from the node's one
        port); a peer removed at run time gets nothing more and is no longer
        listed (sending to it is a KeyError); peers added later, and the
        removed one added back, get messages again.
        """
        a = self.makeNode()
        b, c, d = self.makeNode(), self.makeNode(retryInterval=60), self.makeNode()
        for other in (b, c, d):
            yield self.link(a, other)
        self.assertEqual(sorted(a.getPeers()), sorted([b.addr, c.addr, d.addr]))
        self.assertEqual(sorted(a.getPeersByIP(LOCAL)), sorted([b.addr, c.addr, d.addr]))
        self.assertEqual(len({port for _, port in a.getPeersByIP(LOCAL)}), 3)
        self.assertEqual(a.getPeersByIP("127.0.0.2"), [])
        self.assertTrue(a.hasPeer(c.addr))
        self.assertTrue(a.hasPeer((LOCAL, c.addr[1])))
        self.assertFalse(a.hasPeer((LOCAL, self.freePort())))
        self.assertEqual(a.stats()["peer_count"], 3)

        a.send(b"to c only", c.addr)
        a.send(b"to all")
        yield waitUntil(lambda: len(messages(c)) == 2 and len(messages(b)) == 1 and len(messages(d)) == 1,
                        "the messages to one and to all")
        self.assertEqual(messages(b), [b"to all"])
        self.assertEqual(messages(c), [b"to c only", b"to all"])
        self.assertEqual(messages(d), [b"to all"])
        for other in (b, c, d):
            # one socket: every datagram, handshake and data, came from a's one port
            self.assertEqual({addr for _, addr in other.incoming}, {a.addr})
            self.assertEqual({addr for _, addr in other.received}, {a.addr})
        b.send(b"reply from b", a.addr)  # b knows a now (its session opened)
        yield waitUntil(lambda: messages(a) == [b"reply from b"], "b's reply")
        self.assertEqual(a.received, [(b"reply from b", b.addr)])

        a.removePeer(c.addr)
        self.assertFalse(a.hasPeer(c.addr))
        self.assertEqual(sorted(a.getPeers()), sorted([b.addr, d.addr]))
        self.assertEqual(sorted(a.getPeersByIP(LOCAL)), sorted([b.addr, d.addr]))
        self.assertRaises(KeyError, a.send, b"nobody", c.addr)
        dataToC = len(datagramsFrom(c, a))
        a.send(b"after removal")
        yield waitUntil(lambda: len(messages(b)) == 2 and len(messages(d)) == 2, "the broadcast after removal")
        self.assertEqual(len(datagramsFrom(c, a)), dataToC)  # nothing was sent to c
        self.assertEqual(messages(c), [b"to c only", b"to all"])

        e = self.makeNode()
        yield self.link(a, e)  # a peer added at run time
        a.send(b"to b, d and e")
        yield waitUntil(lambda: messages(e) == [b"to b, d and e"] and len(messages(d)) == 3, "the new peer")
        self.assertEqual(messages(b)[-1], b"to b, d and e")
        self.assertEqual(a.stats()["peer_count"], 3)

    @defer.inlineCallbacks
    def test_simultaneousStartKeepsOneSession(self):
        """
        Eight pairs (fixed keys, both key orders, both call orders) add each
        other in the same reactor turn and send at once. Each ends with
        exactly one open session for the other, and both nodes hold the two
        ends of the same handshake (same transcript, crossed indexes, one
        client and one server): the one started by the smaller public key.
        The duplicate opened at both nodes and is closed at both (after its
        grace). The messages sent before either session opened arrive exactly
        once, and so do the ones sent after.
        """
        pairs, calls = [], []
        for i in range(8):
            lo, hi = sorted((seeded(f"tie-break {i} x"), seeded(f"tie-break {i} y")), key=lambda k: k.publicKey.raw)
            firstSmaller, aFirst = (i // 2) % 2 == 0, i % 2 == 0
            first, second = (lo, hi) if firstSmaller else (hi, lo)
            a, b = (first, second) if aFirst else (second, first)
            pairs.append((self.makeNode(a), self.makeNode(b)))
            calls.append(aFirst)
        orders = set()
        for (a, b), aFirst in zip(pairs, calls):
            first, second = (a, b) if aFirst else (b, a)
            first.addPeer(second.addr, second.key)
            second.addPeer(first.addr, first.key)
            a.send(b"early from a")
            b.send(b"early from b")
            orders.add((aFirst, first.key.raw < second.key.raw))
        self.assertEqual(len(orders), 4)  # the first caller had the smaller key, and the larger, each call order

        def settled(x, y):
            peer = x.peers.get(y.addr)
            return (len(openSessions(x, y)) == 1 and peer is not None and peer.session is not None
                    and not peer.retiring)

        yield waitUntil(lambda: all(settled(a, b) and settled(b, a) for a, b in pairs),
                        "exactly one session per pair, duplicates retired", timeout=15)
        for a, b in pairs:
            sa, sb = a.peers[b.addr].session, b.peers[a.addr].session
            self.assertEqual(openSessions(a, b), [sa])
            self.assertEqual(openSessions(b, a), [sb])
            self.assertEqual(sa.handshakeTranscript, sb.handshakeTranscript)
            self.assertEqual((sa.localIndex, sa.remoteIndex), (sb.remoteIndex, sb.localIndex))
            self.assertEqual({sa.role, sb.role}, {"client", "server"})
            starter = a if sa.role == "client" else b
            self.assertEqual(starter.key.raw, min(a.key.raw, b.key.raw))
            # both started: two sessions opened at each node; the other one is closed at both ends
            self.assertEqual(len(a.opened), 2)
            self.assertEqual(len(b.opened), 2)
            (da,) = [s for s in a.opened if s is not sa]
            (db,) = [s for s in b.opened if s is not sb]
            self.assertEqual(da.handshakeTranscript, db.handshakeTranscript)
            self.assertEqual((da.state, db.state), ("closed", "closed"))
            self.assertEqual(da.epochs, [None, None])  # its keys are wiped
            self.assertIn("duplicate session", (da.closeText, db.closeText))
            self.assertEqual(messages(a), [b"early from b"])
            self.assertEqual(messages(b), [b"early from a"])
            self.assertEqual(a.stats()["drops"].get("no-peer", 0) + b.stats()["drops"].get("no-peer", 0), 0)
        for a, b in pairs:
            a.send(b"later from a")
            b.send(b"later from b")
        yield waitUntil(lambda: all(len(messages(a)) == 2 and len(messages(b)) == 2 for a, b in pairs),
                        "the later messages")
        for a, b in pairs:
            self.assertEqual(messages(a), [b"early from b", b"later from b"])
            self.assertEqual(messages(b), [b"early from a", b"later from a"])
            self.assertEqual(len(a.opened) + len(b.opened), 4)  # no new session since

    @defer.inlineCallbacks
    def test_oneSideStarts(self):
        """
        When only one side adds the other (four pairs), exactly one session
        opens at each end (one handshake, no duplicate), the passive side
        lists the peer that reached it, and adding the peer on the passive
        side afterwards starts no second session.
        """
        pairs = [(self.makeNode(seeded(f"one side {i} a")), self.makeNode(seeded(f"one side {i} b")))
                 for i in range(4)]
        yield defer.gatherResults([self.link(a, b) for a, b in pairs])
        for a, b in pairs:
            self.assertEqual(len(a.opened), 1)
            self.assertEqual(len(b.opened), 1)
            self.assertEqual(a.opened[0].handshakeTranscript, b.opened[0].handshakeTranscript)
            self.assertEqual((a.opened[0].role, b.opened[0].role), ("client", "server"))
            self.assertEqual(b.getPeers(), [a.addr])
            self.assertTrue(b.hasPeer(a.addr))
            b.addPeer(a.addr)  # its key is pinned already; a session exists
            self.assertIsNone(b.peers[a.addr].engine)
            a.send(b"a to b")
            b.send(b"b to a")
        yield waitUntil(lambda: all(messages(a) == [b"b to a"] and messages(b) == [b"a to b"] for a, b in pairs),
                        "one message each way")
        for a, b in pairs:
            self.assertEqual(len(a.opened) + len(b.opened), 2)

    @defer.inlineCallbacks
    def test_overIPv6(self):
        """
        Two nodes on ::1 connect and exchange messages; the sender's address
        reaches the application as an IPv6 (host, port).
        """
        a, b = self.makeNode(local="::1"), self.makeNode(local="::1")
        yield self.link(a, b)
        a.send(b"a to b")
        b.send(b"b to a")
        yield waitUntil(lambda: messages(a) == [b"b to a"] and messages(b) == [b"a to b"], "one message each way")
        self.assertEqual(b.received[0][1][:2], a.addr)

    @defer.inlineCallbacks
    def test_largestMessageOverIPv6(self):
        """
        The landed node counted an IPv4 header whatever the family: its
        largest message on ::1 made a 1,520-byte packet at an MTU of 1500.
        On an IPv6 interface the 40-byte header is counted: the largest
        message is 1,421 bytes and its datagram 1,452 (1,500 with IPv6 and
        UDP); one byte more raises MessageTooLarge.
        """
        a, b = self.makeNode(local="::1", mtu=1500), self.makeNode(local="::1", mtu=1500)
        yield self.link(a, b)
        self.assertEqual(a.stats()["max_message"], 1500 - overhead(6))
        self.assertEqual(a.stats()["max_message"], 1421)
        self.assertRaises(MessageTooLarge, a.send, os.urandom(1422))
        largest = os.urandom(1421)
        a.send(largest)
        yield waitUntil(lambda: messages(b) == [largest], "the largest message")
        self.assertEqual([len(d) + 48 for d in datagramsFrom(b, a)], [1500])

class RebindingTests(PeerNet, unittest.TestCase):
    @defer.inlineCallbacks
    def test_natRebindingMidStream(self):
        """
        B sits behind a NAT (an in-process relay) that rebinds in the middle
        of a stream: the landed node looked peers up by the session's
        current address, so after the rebinding every message from B was
        dropped as no-peer. Now the session follows B once its new address
        answered a path challenge, whichever node started the session kept,
        and no message is lost: B speaks first from its new mapping (a NAT
        makes one for an outgoing packet), then each side sends only after
        the last message arrived.
        """
        a, b = self.makeNode(), self.makeNode()
        relay = NATRelay(reactor, a.addr)
        relay.listen()
        self.addCleanup(relay.stop)
        outside = relay.upstreamAddress  # B as A sees it
        a.addPeer(outside, b.key)
        b.addPeer(relay.address, a.key)
        yield waitUntil(lambda: a.peers[outside].session is not None and b.peers[relay.address].session is not None,
                        "the session through the NAT")
        sent = {"a": [], "b": []}

        def exchange(i):
            b.send(b"b %d" % i, relay.address)
            sent["a"].append(b"b %d" % i)
            yield waitUntil(lambda: messages(a) == sent["a"], f"b's message {i}")
            a.send(b"a %d" % i, outside)
            sent["b"].append(b"a %d" % i)
            yield waitUntil(lambda: messages(b) == sent["b"], f"a's message {i}")

        for i in range(10):
            yield from exchange(i)
        yield relay.rebind()
        for i in range(10, 20):
            yield from exchange(i)
        described = a.stats()["peers"][formatAddress(outside)]
        self.assertEqual(described["address"], formatAddress(relay.upstreamAddress))
        self.assertEqual(described["received"], 20)
        self.assertEqual(a.stats()["drops"].get("no-peer", 0), 0)
        self.assertEqual(a.getPeers(), [outside])


class TrustTests(PeerNet, unittest.TestCase):
    @defer.inlineCallbacks
    def test_unknownPeerRefused(self):
        """
        By default a peer is trusted only with its pinned key: a node whose
        key the receiver never pinned starts a session; the receiver closes
        it as not authorized, counts it (stranger), delivers nothing
        and does not add the peer; the refused node learns why.
        """
        b = self.makeNode()
        c = self.makeNode()
        c.addPeer(b.addr, b.key)  # c knows b; b knows nothing of c
        c.send(b"let me in")
        yield waitUntil(lambda: b.stats()["drops"].get("stranger", 0) >= 1, "the refusal")
        yield waitUntil(lambda: any(s.closeReason == "not-authorized" for s in c.ended)
                        or c.peers[b.addr].dropped["handshake-failed"], "c to learn of the refusal")
        self.assertEqual(b.getPeers(), [])
        self.assertFalse(b.hasPeer(c.addr))
        self.assertEqual(b.received, [])
        self.assertEqual(openSessions(b, c), [])
        self.assertTrue(all(s.state == "closed" and s.closeReason == "not-authorized" for s in b.opened))
        self.assertEqual(len(b.knownPeers), 0)  # nothing pinned

    @defer.inlineCallbacks
    def test_keyChangeRefusedLoudly(self):
        """
        A pinned peer (from a known-peers file) that proves another key is
        refused loudly, like OpenSSH: an error naming the address and both
        fingerprints, PeerKeyChanged, no session, counted; the pin and the
        file stay as they were. Pinning another key by hand raises
        PeerKeyChanged; starting a session to the impostor fails (it cannot
        sign for the pinned key).
        """
        logs = self.captureLogs()
        genuine = Identity.generate()
        c = self.makeNode()  # the impostor at the pinned address
        path = os.path.abspath(self.mktemp())
        text = f"# known peers\n\n{formatAddress(c.addr)} {genuine.publicKey.toText()} the genuine peer\n"
        with open(path, "w") as f:
            f.write(text)
        b = self.makeNode(known=KnownPeers(path), retryInterval=0.2)
        self.assertEqual(b.knownPeers.get(c.addr), genuine.publicKey)
        c.addPeer(b.addr, b.key)
        yield waitUntil(lambda: peerErrors(logs), "the error log")
        error = peerErrors(logs)[0]
        self.assertIn("HAS CHANGED", error)
        self.assertIn(formatAddress(c.addr), error)
        self.assertIn(genuine.publicKey.fingerprint(), error)
        self.assertIn(c.key.fingerprint(), error)
        self.assertGreaterEqual(b.stats()["drops"]["key-changed"], 1)
        self.assertEqual(openSessions(b, c), [])
        self.assertEqual(b.getPeers(), [])
        self.assertEqual(b.knownPeers.get(c.addr), genuine.publicKey)
        with open(path) as f:
            self.assertEqual(f.read(), text)

        e = self.assertRaises(PeerKeyChanged, b.addPeer, c.addr, c.key)
        self.assertIn(genuine.publicKey.fingerprint(), str(e))
        self.assertIn(c.key.fingerprint(), str(e))
        self.assertRaises(PeerKeyChanged, b.knownPeers.pin, c.addr, c.key)

        b.addPeer(c.addr)  # the pinned key: c cannot prove it
        yield waitUntil(lambda: b.peers[c.addr].dropped["handshake-failed"] >= 1, "b's handshake to fail")
        self.assertIsNone(b.peers[c.addr].session)
        self.assertEqual(openSessions(b, c), [])
        self.assertEqual(b.received, [])

    @defer.inlineCallbacks
    def test_trustOnFirstUse(self):
        """
        Trust on first use is explicit (KnownPeers(path, tofu=True)): the
        first key of a peer the node added by address is pinned, appended to
        the file (read back by a new KnownPeers) and its messages delivered;
        a node with another key at the same address later is refused loudly
        and the file keeps the first key. Without tofu the same peer would
        be refused.
        """
        logs = self.captureLogs()
        path = os.path.abspath(self.mktemp())
        b = self.makeNode(known=KnownPeers(path, tofu=True))
        c = self.makeNode()
        b.addPeer(c.addr)  # by address only
        c.addPeer(b.addr, b.key)
        c.send(b"first contact")
        yield waitUntil(lambda: messages(b) == [b"first contact"], "the first message")
        self.assertEqual(b.knownPeers.get(c.addr), c.key)
        with open(path) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines, [f"{formatAddress(c.addr)} {c.key.toText()} trusted on first use"])
        self.assertEqual(KnownPeers(path).get(c.addr), c.key)
        self.assertFalse(KnownPeers(path).tofu)

        port = c.addr[1]
        c.stop()
        yield c.listening.stopListening()
        impostor = self.makeNode(port=port)
        self.assertEqual(impostor.addr, c.addr)
        impostor.addPeer(b.addr, b.key)
        impostor.send(b"i am c")
        changed = lambda: [e for e in peerErrors(logs) if "HAS CHANGED" in e]  # noqa: E731
        yield waitUntil(changed, "the key change error")
        self.assertIn(c.key.fingerprint(), changed()[0])
        self.assertIn(impostor.key.fingerprint(), changed()[0])
        self.assertEqual(messages(b), [b"first contact"])
        self.assertEqual(b.knownPeers.get(c.addr), c.key)
        with open(path) as f:
            self.assertEqual(f.read().splitlines(), lines)

class KeyRefreshTests(PeerNet, unittest.TestCase):
    @defer.inlineCallbacks
    def test_rekeyExactlyOnceAndReplay(self):
        """
        With a short key lifetime (Config(rekeyAfterTime=0.6)) sessions
        rekey while messages flow both ways: every message before, during
        and after the refreshes is delivered exactly once; both ends count
        the same rekeys; an old epoch is retired on a timer (its slot emptied
        and its keys wiped) at both ends; a captured datagram of the first
        epoch, and one of the current epoch, replayed later, are dropped and
        counted, never delivered.
        """
        config = Config(rekeyAfterTime=0.6, oldKeyGrace=0.1)
        a, b = self.makeNode(config=config), self.makeNode(config=config)
        yield self.link(a, b)
        sa, sb = a.peers[b.addr].session, b.peers[a.addr].session
        first = (sa.epochs[0], sb.epochs[0])
        sent = {"a": [], "b": []}
        retired = set()

        def traffic():
            sent["a"].append(b"a%d" % len(sent["a"]))
            a.send(sent["a"][-1])
            sent["b"].append(b"b%d" % len(sent["b"]))
            b.send(sent["b"][-1])
            for name, s in (("a", sa), ("b", sb)):
                if s.stats["rekeys"] >= 1 and s.epochs.count(None) == 1:
                    retired.add(name)  # the old epoch's slot was emptied by its retirement timer

        loop = task.LoopingCall(traffic)
        loop.start(0.02)
        self.addCleanup(lambda: loop.running and loop.stop())
        yield waitUntil(lambda: sa.stats["rekeys"] >= 3 and retired == {"a", "b"}, "three rekeys", timeout=15)
        loop.stop()
        yield waitUntil(lambda: len(messages(b)) >= len(sent["a"]) and len(messages(a)) >= len(sent["b"]),
                        "every message")
        yield waitUntil(lambda: sa.stats["rekeys"] == sb.stats["rekeys"], "both ends to count the rekeys")
        self.assertEqual(messages(b), sent["a"])
        self.assertEqual(messages(a), sent["b"])
        self.assertIs(a.peers[b.addr].session, sa)  # the same session throughout
        self.assertGreaterEqual(a.stats()["peers"][formatAddress(b.addr)]["rekeys"], 3)
        self.assertEqual(a.stats()["peers"][formatAddress(b.addr)]["rekeys"],
                         b.stats()["peers"][formatAddress(a.addr)]["rekeys"])
        for epoch in first:
            self.assertIsNone(epoch.suite)  # wiped
            self.assertNotIn(epoch, sa.epochs + sb.epochs)

        old = datagramsFrom(b, a)[0]
        self.assertEqual(old[0] & 1, 0)
        a.send(b"probe")
        yield waitUntil(lambda: messages(b)[-1] == b"probe", "the probe")
        recent = datagramsFrom(b, a)[-1]
        dropsBefore = sum(sb.host.drops[r] for r in ("replay", "no-key", "bad-tag"))
        deliveredBefore = len(b.received)
        raw = self.rawSocket()
        raw.sendto(old, b.addr)  # the first epoch's
        raw.sendto(recent, b.addr)  # the current epoch's, delivered already
        yield waitUntil(lambda: sum(sb.host.drops[r] for r in ("replay", "no-key", "bad-tag")) == dropsBefore + 2,
                        "both replays to be dropped")
        self.assertGreaterEqual(sb.host.drops["replay"], 1)
        a.send(b"still fine")
        yield waitUntil(lambda: len(b.received) == deliveredBefore + 1, "a fresh message")
        self.assertEqual(messages(b)[deliveredBefore:], [b"still fine"])
        self.assertEqual(sb.state, "open")

    @defer.inlineCallbacks
    def test_removePeerStartedByThePeer(self):
        """
        Removing a peer that started the session closes it at once and
        forgets it: no peer entry, no server session, the keys wiped, no
        timer for it; the peer is told (its end closes, closed-by-peer).
        """
        a = self.makeNode()
        b = self.makeNode(retryInterval=60)  # b would otherwise start again in 2 s
        yield self.link(b, a)
        session = a.peers[b.addr].session
        self.assertEqual(session.role, "server")
        a.removePeer(b.addr)
        self.assertFalse(a.hasPeer(b.addr))
        self.assertEqual(a.getPeers(), [])
        self.assertEqual(session.state, "closed")
        self.assertEqual(session.epochs, [None, None])
        self.assertNotIn(session.localIndex, a.engine.server.sessions)
        self.assertEqual(a.engine.server.stats()["sessions"], 0)
        self.assertIsNone(a.engine.nextDeadline())  # nothing left to time
        yield waitUntil(lambda: [s.closeReason for s in b.ended] == ["closed-by-peer"], "b's end to close")
        self.assertIsNone(b.peers[a.addr].session)

    @defer.inlineCallbacks
    def test_removePeerThisNodeStarted(self):
        """
        Removing a peer this node started the session with forgets it (no
        peer entry, no client engine, keys wiped) and must tell the peer,
        as stop() promises ("telling each peer"): the peer's end closes
        (closed-by-peer) instead of lingering until its idle timeout.
        """
        a = self.makeNode()
        b = self.makeNode()
        yield self.link(a, b)
        session = a.peers[b.addr].session
        self.assertEqual(session.role, "client")
        a.removePeer(b.addr)
        self.assertFalse(a.hasPeer(b.addr))
        self.assertEqual(session.state, "closed")
        self.assertEqual(session.epochs, [None, None])
        self.assertEqual(a.engine._byIndex, {})
        closesSent = len(datagramsFrom(b, a, CONTROL_TYPES))
        try:
            yield waitUntil(lambda: [s.closeReason for s in b.ended] == ["closed-by-peer"], "b's end to close",
                            timeout=3)
        except unittest.FailTest:
            self.fail(f"a removed b but b's session is still {b.peers[a.addr].session.state}: no CLOSE "
                      f"reached b ({len(datagramsFrom(b, a, CONTROL_TYPES)) - closesSent} CONTROL datagrams "
                      f"after the removal)")

    @defer.inlineCallbacks
    def test_idleSessionExpires(self):
        """
        A peer that vanishes without a word (its socket closed, no CLOSE) is
        cleaned up on a timer: the session closes on its idle timeout.
        """
        config = Config(idleTimeout=1.0, keepaliveInterval=0.3)
        a = self.makeNode(config=config)
        b = self.makeNode(config=config, retryInterval=60)
        yield self.link(a, b)
        yield a.listening.stopListening()  # a vanishes: no CLOSE
        yield waitUntil(lambda: [s.closeReason for s in b.ended] == ["idle-timeout"], "the idle timeout")
        self.assertIsNone(b.peers[a.addr].session)
        self.assertEqual(b.engine.server.stats()["sessions"], 0)
        self.assertEqual(b.stats()["peers"][formatAddress(a.addr)]["state"], "waiting")

    @defer.inlineCallbacks
    def test_failedHandshakeRetried(self):
        """
        A handshake to a peer that is not there yet fails (counted
        handshake-failed; the failed engines are forgotten, not kept) and is
        retried every retryInterval; once the peer listens, the session
        opens and the message queued meanwhile is delivered exactly once.
        """
        config = Config(handshakeTimeout=0.3, retransmitInitial=0.1)
        a = self.makeNode(config=config, retryInterval=0.2)
        later = Identity.generate()
        port = self.freePort()
        a.addPeer((LOCAL, port), later.publicKey)
        a.send(b"queued while the peer was away")
        peer = a.peers[(LOCAL, port)]
        yield waitUntil(lambda: peer.dropped["handshake-failed"] >= 2, "two failed handshakes")
        self.assertLessEqual(len(a.engine._byIndex), 1)  # only the attempt in progress, if any
        self.assertEqual(len(peer.queue), 1)
        self.assertNotEqual(a.stats()["peers"][formatAddress((LOCAL, port))]["state"], "open")
        known = KnownPeers()
        known.pin(a.addr, a.key)
        b = self.makeNode(later, known=known, port=port)
        yield waitUntil(lambda: messages(b) == [b"queued while the peer was away"], "the queued message")
        self.assertEqual(b.received, [(b"queued while the peer was away", a.addr)])
        self.assertEqual(a.stats()["peers"][formatAddress(b.addr)]["state"], "open")
        self.assertEqual(a.stats()["peers"][formatAddress(b.addr)]["sent"], 1)
        self.assertEqual(len(peer.queue), 0)

    @defer.inlineCallbacks
    def test_restartedPeerReplacesStaleSession(self):
        """
        A peer that restarts (crash: no CLOSE) and starts a new session must
        replace its stale one: the messages sent to it afterwards reach it.
        Both sessions were started by the same node, so this is not the
        simultaneous-start tie-break.
        """
        a = self.makeNode()
        b = self.makeNode()
        yield self.link(a, b)
        yield a.listening.stopListening()  # a crashes
        a2 = self.makeNode(a.identity_, port=a.addr[1])
        a2.addPeer(b.addr, b.key)
        yield waitUntil(lambda: isOpen(a2, b) and len(b.opened) == 2, "the restarted peer's session")
        got = lambda: [m for m in messages(a2) if m.startswith(b"to the restarted peer")]  # noqa: E731
        deadline = reactor.seconds() + 5
        while not got() and reactor.seconds() < deadline:
            b.send(b"to the restarted peer")
            yield sleep(0.25)
        self.assertTrue(got(), f"5 s after a restarted, nothing b sent reached it: b kept the stale session "
                               f"(b's session is the new one: {b.peers[a.addr].session is b.opened[1]}; "
                               f"a2's drops {a2.stats()['drops']})")

class WireTests(PeerNet, unittest.TestCase):
    @defer.inlineCallbacks
    def test_compressionOnlyWhenSmaller(self):
        """
        With compress=True a message is zstd-compressed only when that makes
        it smaller: decrypting the datagrams on the wire with the session's
        keys shows the COMPRESSED flag on the compressible message (and a
        datagram smaller than the message), none on random bytes or a short
        message (datagram = message + 31 bytes). A compressible message
        longer than the MTU allows uncompressed is delivered in one datagram.
        Without compress nothing is compressed.
        """
        a = self.makeNode(compress=True)
        b = self.makeNode()
        plain = self.makeNode()
        yield self.link(a, b)
        yield self.link(plain, b)
        compressible, noise, short = b"peer mode " * 100, os.urandom(1000), b"hi"
        longer = b"z" * (3 * a.framing.maxMessage)
        for m in (compressible, noise, short, longer):
            a.send(m)
        plain.send(compressible)
        yield waitUntil(lambda: len(messages(b, a)) == 4 and len(messages(b, plain)) == 1, "the messages")
        self.assertEqual(messages(b, a), [compressible, noise, short, longer])
        self.assertEqual(messages(b, plain), [compressible])
        wire = datagramsFrom(b, a)
        self.assertEqual(len(wire), 4)
        peerMessages = [openDatagram(b.peers[a.addr].session, d) for d in wire]
        self.assertEqual([m[0] for m in peerMessages], [PEER_VERSION] * 4)
        self.assertEqual([m[1] for m in peerMessages], [COMPRESSED, 0, 0, COMPRESSED])
        self.assertLess(len(wire[0]), len(compressible))
        self.assertEqual(len(wire[1]), len(noise) + 31)
        self.assertEqual(len(wire[2]), len(short) + 31)
        self.assertLessEqual(len(wire[3]), a.framing.datagramSize)
        (plainWire,) = datagramsFrom(b, plain)
        self.assertEqual(openDatagram(b.peers[plain.addr].session, plainWire)[:2], bytes([PEER_VERSION, 0]))
        self.assertEqual(len(plainWire), len(compressible) + 31)

    @defer.inlineCallbacks
    def test_paddingOneSize(self):
        """
        With pad=True every DATA datagram a node sends has one size (the
        MTU less the IP and UDP headers), short or long, compressed or not,
        and every message arrives intact; an unpadded node's datagrams vary.
        """
        padded = self.makeNode(pad=True)
        both = self.makeNode(pad=True, compress=True)
        plain = self.makeNode()
        b = self.makeNode()
        for sender in (padded, both, plain):
            yield self.link(sender, b)
        sent = [b"", b"x", b"a" * 300, os.urandom(padded.framing.maxMessage)]
        for sender in (padded, both, plain):
            for m in sent:
                sender.send(m)
        yield waitUntil(lambda: all(len(messages(b, s)) == 4 for s in (padded, both, plain)), "every message")
        for sender in (padded, both, plain):
            self.assertEqual(messages(b, sender), sent)
        datagramSize = padded.mtu - IPV4_UDP
        self.assertEqual(padded.framing.datagramSize, datagramSize)
        for sender in (padded, both):
            sizes = {len(d) for d in datagramsFrom(b, sender)}
            self.assertEqual(sizes, {datagramSize})
            flags = [openDatagram(b.peers[sender.addr].session, d)[1] for d in datagramsFrom(b, sender)]
            self.assertTrue(all(f & PADDED for f in flags))
        self.assertEqual([f & COMPRESSED for f in
                          [openDatagram(b.peers[both.addr].session, d)[1] for d in datagramsFrom(b, both)]],
                         [0, 0, COMPRESSED, 0])
        self.assertEqual(len({len(d) for d in datagramsFrom(b, plain)}), 4)

    @defer.inlineCallbacks
    def test_rateLimitPerPeer(self):
        """
        A per-peer token bucket on received messages (rateLimit=5: burst 5,
        5 a second): a burst of 40 from one peer is cut, the excess dropped
        and counted rate-limited in that peer's stats; another peer sending
        at the same time is unaffected; after a second the bucket has
        refilled and the first peer's messages are accepted again.
        """
        b = self.makeNode(rateLimit=5)
        a, c = self.makeNode(), self.makeNode()
        yield self.link(a, b)
        yield self.link(c, b)
        burst = [b"burst %d" % i for i in range(40)]
        for m in burst:
            a.send(m)
        for i in range(3):
            c.send(b"calm %d" % i)
        stats = lambda: b.stats()["peers"]  # noqa: E731
        yield waitUntil(lambda: stats()[formatAddress(a.addr)]["received"]
                        + stats()[formatAddress(a.addr)]["dropped"].get("rate-limited", 0) == 40
                        and len(messages(b, c)) == 3, "the burst to be counted")
        fromA = stats()[formatAddress(a.addr)]
        self.assertGreaterEqual(fromA["received"], 5)
        self.assertLess(fromA["received"], 40)
        self.assertEqual(fromA["dropped"], {"rate-limited": 40 - fromA["received"]})
        self.assertEqual(len(set(messages(b, a))), fromA["received"])
        self.assertTrue(set(messages(b, a)) <= set(burst))
        self.assertEqual(messages(b, a)[:5], burst[:5])
        self.assertEqual(messages(b, c), [b"calm 0", b"calm 1", b"calm 2"])
        self.assertEqual(stats()[formatAddress(c.addr)]["dropped"], {})
        yield sleep(1.1)  # at least five tokens back
        a.send(b"after the refill")
        yield waitUntil(lambda: messages(b, a)[-1] == b"after the refill", "the message after the refill")

    @defer.inlineCallbacks
    def test_largestMessageFits(self):
        """
        MTU awareness, for MTUs of 1400 and 576, padded or not, compressing
        or not: the largest message is the MTU less every layer's overhead
        (framing.overhead: IPv4 20 + UDP 8 + sudp/1 header 13 + tag 16 + peer
        header 2, + 2 padded); one byte more raises MessageTooLarge with the
        size and the limit before anything is sent (to any peer); the
        largest is delivered in one datagram of exactly MTU - 28 bytes.
        """
        cases = []
        for mtu in (1400, 576):
            for pad in (False, True):
                for compress in (False, True):
                    a = self.makeNode(mtu=mtu, pad=pad, compress=compress)
                    b = self.makeNode(mtu=mtu, pad=pad, compress=compress)
                    c = self.makeNode(mtu=mtu, pad=pad, compress=compress)
                    cases.append((mtu, pad, compress, a, b, c))
        yield defer.gatherResults([self.link(a, b) for _, _, _, a, b, _ in cases]
                                  + [self.link(a, c) for _, _, _, a, _, c in cases])
        self.assertEqual((overhead(4, False), overhead(4, True)), (59, 61))
        self.assertEqual((overhead(6, False), overhead(6, True)), (79, 81))
        for mtu, pad, compress, a, b, c in cases:
            limit = mtu - overhead(4, pad)
            self.assertEqual(a.framing.maxMessage, limit)
            self.assertEqual(a.stats()["max_message"], limit)
            self.assertEqual(a.stats()["mtu"], mtu)
            e = self.assertRaises(MessageTooLarge, a.send, os.urandom(limit + 1))
            self.assertEqual((e.size, e.limit), (limit + 1, limit))
            self.assertIn(f"{limit + 1} bytes", str(e))
            self.assertIn(f"{limit} bytes", str(e))
            self.assertRaises(MessageTooLarge, a.send, os.urandom(limit + 1), b.addr)
            self.assertEqual([a.peers[x.addr].stats["sent"] for x in (b, c)], [0, 0])
            a.largest = os.urandom(limit)
            a.send(a.largest)
        yield waitUntil(lambda: all(len(messages(b)) == 1 and len(messages(c)) == 1 for *_, b, c in cases),
                        "the largest messages")
        for mtu, pad, compress, a, b, c in cases:
            for x in (b, c):
                self.assertEqual(messages(x), [a.largest], (mtu, pad, compress))
                self.assertEqual([len(d) for d in datagramsFrom(x, a)], [mtu - IPV4_UDP], (mtu, pad, compress))

    @defer.inlineCallbacks
    def test_largestMessageAtMTU1500(self):
        """
        At the common MTU of 1500 (also interfaceMTU()'s fallback) the
        documented largest messages (docs/peers.md: 1,441 bytes, 1,439
        padded; stats()["max_message"]) must be sendable and delivered, and
        with pad=True any message at all.
        """
        problems = []
        nodes = []
        for pad in (False, True):
            a, b = self.makeNode(mtu=1500, pad=pad), self.makeNode(mtu=1500, pad=pad)
            yield self.link(a, b)
            nodes.append((a, b))
            self.assertEqual(a.stats()["max_message"], 1439 if pad else 1441)
            for m in (b"x", os.urandom(a.stats()["max_message"])):
                try:
                    a.send(m)
                except MessageTooLarge as e:
                    problems.append(f"pad={pad}: a {len(m)}-byte message: {e}")
        if problems:
            self.fail("\n".join(problems))
        yield waitUntil(lambda: all(len(messages(b)) == 2 for a, b in nodes), "the messages")

    @defer.inlineCallbacks
    def test_compressedMessageBeyondDecompressionLimit(self):
        """
        A message the receiver cannot accept (a compressible one that would
        expand past the 64 KiB decompression limit) must be refused by
        send() with MessageTooLarge, not sent and silently dropped by the
        peer as bad-compression.
        """
        a, b = self.makeNode(compress=True), self.makeNode(compress=True)
        yield self.link(a, b)
        big = b"\0" * 70000
        try:
            a.send(big)
        except MessageTooLarge as e:
            self.assertEqual(e.size, len(big))
            return
        yield waitUntil(lambda: b.stats()["peers"][formatAddress(a.addr)]["dropped"] or messages(b),
                        "the receiver to act on it")
        self.fail(f"send() accepted a {len(big)}-byte message (counted sent: "
                  f"{a.stats()['peers'][formatAddress(b.addr)]['sent']}); the receiver got "
                  f"{[len(m) for m in messages(b)]} and dropped "
                  f"{b.stats()['peers'][formatAddress(a.addr)]['dropped']}")

class StatsTests(PeerNet, unittest.TestCase):
    @defer.inlineCallbacks
    def test_stats(self):
        """
        stats() (get_stats()) reports the protocol version, the MTU (the
        interfaces' by default), the largest message, the peer count, and
        per peer: state, sent, received, dropped by reason (bad-flags,
        unknown-version, queue-full), rekeys (the same at both ends) and the
        last handshake time, the peer's key fingerprint: all as the test
        did them.
        """
        start = reactor.seconds()
        a = self.makeNode(config=Config(rekeyAfterTime=0.4))
        b, c = self.makeNode(), self.makeNode()
        yield self.link(a, b)
        yield self.link(a, c)
        away = (LOCAL, self.freePort())
        a.addPeer(away, Identity.generate().publicKey)  # nothing there: no session; its messages wait (256 at most)
        for i in range(3):
            a.send(b"to b %d" % i, b.addr)
        a.send(b"to c", c.addr)
        for i in range(2):
            a.send(b"to all %d" % i)
        for i in range(256):
            a.send(b"to away %d" % i, away)
        for i in range(4):
            b.send(b"from b %d" % i, a.addr)
        session = b.peers[a.addr].session
        session.sendMessage(bytes([PEER_VERSION, 0x80]) + b"bad flags", reactor.seconds())
        session.sendMessage(bytes([9, 0]) + b"version 9", reactor.seconds())
        b.send(b"from b last", a.addr)
        yield waitUntil(lambda: len(messages(b)) == 5 and len(messages(c)) == 3 and len(messages(a)) == 5,
                        "the messages")
        sa = a.peers[b.addr].session
        yield waitUntil(lambda: sa.stats["rekeys"] >= 1 and sa.stats["rekeys"] == b.peers[a.addr].session.stats["rekeys"],
                        "a rekey, counted at both ends")
        now = reactor.seconds()
        stats = a.stats()
        self.assertEqual(stats["protocol_version"], PROTOCOL_VERSION)
        self.assertEqual(stats["protocol_version"], "sudp/1 peer v1")
        self.assertEqual(stats["mtu"], interfaceMTU())
        self.assertEqual(stats["max_message"], interfaceMTU() - 59)
        self.assertEqual(stats["peer_count"], 3)
        self.assertEqual(set(stats["peers"]), {formatAddress(x) for x in (b.addr, c.addr, away)})
        toB = stats["peers"][formatAddress(b.addr)]
        self.assertEqual((toB["state"], toB["sent"], toB["received"]), ("open", 5, 5))
        self.assertEqual(toB["dropped"], {"bad-flags": 1, "unknown-version": 1})
        self.assertGreaterEqual(toB["rekeys"], 1)
        self.assertEqual(toB["rekeys"], b.stats()["peers"][formatAddress(a.addr)]["rekeys"])
        self.assertTrue(start <= toB["lastHandshake"] <= now)
        self.assertEqual(toB["key"], b.key.fingerprint())
        toC = stats["peers"][formatAddress(c.addr)]
        self.assertEqual((toC["state"], toC["sent"], toC["received"], toC["dropped"]), ("open", 3, 0, {}))
        self.assertTrue(toB["lastHandshake"] <= toC["lastHandshake"] <= now)
        toAway = stats["peers"][formatAddress(away)]
        self.assertIn(toAway["state"], ("connecting", "waiting"))
        self.assertEqual((toAway["sent"], toAway["received"], toAway["queued"]), (0, 0, 256))
        self.assertEqual(toAway["dropped"], {"queue-full": 2})
        self.assertIsNone(toAway["lastHandshake"])
        self.assertIsNone(toAway["key"])
        ofA = b.stats()["peers"][formatAddress(a.addr)]
        self.assertEqual((ofA["sent"], ofA["received"]), (5, 5))  # the two crafted ones were sealed directly
        json.dumps(stats)  # plain data

class VersionTests(PeerNet, unittest.TestCase):
    @defer.inlineCallbacks
    def test_unknownVersionRefused(self):
        """
        A peer sending an unknown peer-protocol version (a DATA sealed by its
        session whose message starts with version 2) gets one clear error
        log naming the peer and the versions, is counted unknown-version,
        and nothing is delivered; later ones (versions 2, 3, 255) are counted
        without logging again; the session stays open and valid messages
        still arrive.
        """
        logs = self.captureLogs()
        a, b = self.makeNode(), self.makeNode()
        yield self.link(a, b)
        session = a.peers[b.addr].session
        session.sendMessage(bytes([2, 0]) + b"x", reactor.seconds())
        a.send(b"after v2")  # also sends what the session queued
        stats = lambda: b.stats()["peers"][formatAddress(a.addr)]  # noqa: E731
        yield waitUntil(lambda: messages(b) == [b"after v2"] and stats()["dropped"].get("unknown-version") == 1,
                        "the refusal")
        errors = peerErrors(logs)
        self.assertEqual(len(errors), 1, errors)
        self.assertIn(formatAddress(a.addr), errors[0])
        self.assertIn("version 2", errors[0])
        self.assertIn(f"speaks {PEER_VERSION}", errors[0])
        for version in (2, 3, 255):
            session.sendMessage(bytes([version, 0]) + b"y", reactor.seconds())
        a.send(b"after more")
        yield waitUntil(lambda: messages(b) == [b"after v2", b"after more"]
                        and stats()["dropped"].get("unknown-version") == 4, "the later ones")
        self.assertEqual(len(peerErrors(logs)), 1)
        self.assertEqual(stats()["dropped"], {"unknown-version": 4})
        self.assertEqual(stats()["received"], 2)
        self.assertEqual(stats()["state"], "open")
        self.assertEqual(b.received, [(b"after v2", a.addr), (b"after more", a.addr)])
