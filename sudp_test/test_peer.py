"""
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

import hashlib
import json
import os
import socket
import sys

import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import defer, protocol, reactor, task
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial import unittest

from sudp.errors import KeyFileError, MalformedPacket, MessageTooLarge
from sudp.keys import Identity
from sudp.peer import blocking
from sudp.peer import framing as framingModule
from sudp.peer.framing import (
    COMPRESSED,
    HEADER_SIZE,
    PADDED,
    PEER_VERSION,
    Framing,
    UnknownVersion,
    interfaceMTU,
    overhead,
)
from sudp.peer.knownpeers import KnownPeers, PeerKeyChanged, formatAddress, parseAddress
from sudp.peer.node import PROTOCOL_VERSION, PeerNode, listenPeers
from sudp.peer.peers import nextDeadline
from sudp.udp import packets as P
from sudp.udp.config import Config

from sudp_test.waiting import sleep, waiter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCAL = "127.0.0.1"
DATA_TYPES = (P.DATA, P.DATA | 1)
CONTROL_TYPES = (P.CONTROL, P.CONTROL | 1)
IPV4_UDP = 28


# -- helpers ---------------------------------------------------------------------


waitUntil = waiter(timeout=10.0)


def seeded(text):
    """
    @return: an L{Identity} made from C{text} (the same on every run).
    """
    return Identity(hashlib.sha256(text.encode()).digest())


def canonical(addr):
    return parseAddress(formatAddress(addr))


def messages(node, sender=None):
    """
    @return: the messages C{node} delivered, in order (from C{sender} only).
    """
    return [data for data, addr in node.received if sender is None or addr == sender.addr]


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


def isOpen(node, other):
    peer = node.peers.get(other.addr)
    return peer is not None and peer.session is not None


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


def peerErrors(events):
    """
    @return: the text of the error-level log events of peer mode.
    """
    return [formatEvent(e) for e in events
            if e.get("log_level") == LogLevel.error and e.get("log_namespace", "").startswith("sudp.peer")]


class PeerNet:
    """
    Makes listening nodes on 127.0.0.1 that record what they deliver, the
    datagrams they receive and the sessions that open and end at them, and
    cleans them up (node.stop(), then the port).
    """

    timeout = 30

    def makeNode(self, identity=None, known=None, port=0, local=LOCAL, **kwargs):
        identity = identity or Identity.generate()
        node = PeerNode(reactor, identity, known if known is not None else KnownPeers(), **kwargs)
        node.received = []
        node.incoming = []
        node.opened = []
        node.ended = []
        node.onMessage = lambda data, addr: node.received.append((bytes(data), addr))
        _wrap(node, "datagramReceived", lambda data, addr: node.incoming.append((bytes(data), addr)))
        _wrap(node, "_opened", lambda session, engine: node.opened.append(session))
        _wrap(node, "_ended", lambda session: node.ended.append(session))
        listening = listenPeers(reactor, port, node, local)
        self.addCleanup(listening.stopListening)
        self.addCleanup(node.stop)
        node.listening = listening
        node.addr = (local, listening.getHost().port)
        node.identity_ = identity
        node.key = identity.publicKey
        return node

    def link(self, a, b):
        """
        C{a} adds C{b} (and starts the session); C{b} trusts C{a}'s key but
        does not add it.

        @return: a Deferred that fires once both ends are open.
        """
        b.knownPeers.pin(a.addr, a.key)
        a.addPeer(b.addr, b.key)
        return waitUntil(lambda: isOpen(a, b) and isOpen(b, a), f"a session {a.addr} -> {b.addr}")

    def captureLogs(self):
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        return events

    def freePort(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((LOCAL, 0))
        port = s.getsockname()[1]
        s.close()
        return port

    def rawSocket(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((LOCAL, 0))
        self.addCleanup(s.close)
        return s


def _wrap(node, name, record):
    original = getattr(node, name)

    def wrapped(*args):
        record(*args)
        return original(*args)

    setattr(node, name, wrapped)


# -- 1. one port, many peers; the tie-break ------------------------------------------


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


# -- 2. trust ---------------------------------------------------------------------------


class TrustTests(PeerNet, unittest.TestCase):
    @defer.inlineCallbacks
    def test_unknownPeerRefused(self):
        """
        By default a peer is trusted only with its pinned key: a node whose
        key the receiver never pinned starts a session; the receiver closes
        it as not authorized, counts it (untrusted-peer), delivers nothing
        and does not add the peer; the refused node learns why.
        """
        b = self.makeNode()
        c = self.makeNode()
        c.addPeer(b.addr, b.key)  # c knows b; b knows nothing of c
        c.send(b"let me in")
        yield waitUntil(lambda: b.stats()["drops"].get("untrusted-peer", 0) >= 1, "the refusal")
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
        self.assertGreaterEqual(b.stats()["drops"]["untrusted-peer"], 1)
        self.assertEqual(openSessions(b, c), [])
        self.assertEqual(b.getPeers(), [])
        self.assertEqual(b.knownPeers.get(c.addr), genuine.publicKey)
        with open(path) as f:
            self.assertEqual(f.read(), text)

        e = self.assertRaises(PeerKeyChanged, b.addPeer, c.addr, c.key)
        self.assertIn(genuine.publicKey.fingerprint(), str(e))
        self.assertIn(c.key.fingerprint(), str(e))
        self.assertRaises(PeerKeyChanged, b.knownPeers.check, c.addr, c.key)

        b.addPeer(c.addr)  # the pinned key: c cannot prove it
        yield waitUntil(lambda: b.peers[c.addr].dropped["handshake-failed"] >= 1, "b's handshake to fail")
        self.assertIsNone(b.peers[c.addr].session)
        self.assertEqual(openSessions(b, c), [])
        self.assertEqual(b.received, [])

    @defer.inlineCallbacks
    def test_trustOnFirstUse(self):
        """
        Trust on first use is explicit (KnownPeers(path, tofu=True)): a new
        peer's first key is pinned, appended to the file (read back by a new
        KnownPeers) and its messages delivered; a node with another key at
        the same address later is refused loudly and the file keeps the
        first key. Without tofu the same peer would be refused.
        """
        logs = self.captureLogs()
        path = os.path.abspath(self.mktemp())
        b = self.makeNode(known=KnownPeers(path, tofu=True))
        c = self.makeNode()
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
        yield waitUntil(lambda: peerErrors(logs), "the key change error")
        self.assertIn(c.key.fingerprint(), peerErrors(logs)[0])
        self.assertIn(impostor.key.fingerprint(), peerErrors(logs)[0])
        self.assertEqual(messages(b), [b"first contact"])
        self.assertEqual(b.knownPeers.get(c.addr), c.key)
        with open(path) as f:
            self.assertEqual(f.read().splitlines(), lines)


class KnownPeersFileTests(unittest.SynchronousTestCase):
    def write(self, text):
        path = os.path.abspath(self.mktemp())
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def test_parse(self):
        """
        The file format HOST:PORT ed25519-KEY [comment]: comments and blank
        lines are skipped, comments after the key are allowed, IPv6 hosts
        are in brackets and found in any spelling, CRLF lines work.
        """
        keys = [Identity.generate().publicKey for _ in range(4)]
        path = self.write(
            "# my peers\n"
            "\n"
            f"192.0.2.1:8000 {keys[0].toText()}\n"
            f"   192.0.2.1:8001 {keys[1].toText()} bob's laptop, second port  \n"
            "   # indented comment\n"
            f"[2001:db8::7]:9000 {keys[2].toText()} v6\r\n"
            f"[::1]:9001 {keys[3].toText()}\n")
        known = KnownPeers(path)
        self.assertEqual(len(known), 4)
        self.assertEqual(known.get(("192.0.2.1", 8000)), keys[0])
        self.assertEqual(known.get(("192.0.2.1", 8001)), keys[1])
        self.assertEqual(known.get(("2001:DB8:0:0::7", 9000)), keys[2])
        self.assertEqual(known.get(("::1", 9001)), keys[3])
        self.assertIsNone(known.get(("192.0.2.1", 8002)))
        self.assertEqual(known.keys(), set(keys))
        self.assertFalse(known.tofu)
        self.assertEqual(len(KnownPeers(os.path.abspath(self.mktemp()))), 0)  # a missing file: nothing pinned

    def test_badLines(self):
        """
        Each kind of bad line is refused with KeyFileError naming the file
        and the line number.
        """
        key = Identity.generate().publicKey.toText()
        bad = [
            f"192.0.2.1 {key}",  # no port
            f"peer.example:8000 {key}",  # not a numeric address
            f"192.0.2.1:0 {key}",
            f"192.0.2.1:65536 {key}",
            f"192.0.2.1:http {key}",
            "192.0.2.1:8000",  # no key
            "192.0.2.1:8000 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG",
            f"192.0.2.1:8000 {key[:-1]}",  # truncated key
            f"[2001:db8::zz]:8000 {key}",
        ]
        for line in bad:
            path = self.write(f"# header\n\n192.0.2.9:1 {key}\n{line}\n")
            e = self.assertRaises(KeyFileError, KnownPeers, path)
            self.assertTrue(str(e).startswith(f"{path}:4: "), (line, str(e)))
        path = os.path.abspath(self.mktemp())
        with open(path, "wb") as f:
            f.write(b"# not UTF-8: \xff\xfe\n")
        e = self.assertRaises(KeyFileError, KnownPeers, path)
        self.assertIn(path, str(e))
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        self.assertRaises(KeyFileError, KnownPeers, directory)

    def test_pinAndCheck(self):
        """
        check() trusts the pinned key, refuses an unknown peer without tofu
        (nothing pinned), pins it with tofu (appending to the file in the
        format the parser reads, IPv6 in brackets), and raises PeerKeyChanged
        for another key, naming both fingerprints.
        """
        k1, k2 = Identity.generate().publicKey, Identity.generate().publicKey
        path = os.path.abspath(self.mktemp())
        strict = KnownPeers(path)
        self.assertFalse(strict.check(("192.0.2.1", 1), k1))
        self.assertEqual(len(strict), 0)
        self.assertFalse(os.path.exists(path))
        tofu = KnownPeers(path, tofu=True)
        self.assertTrue(tofu.check(("2001:db8::1", 7), k1))
        self.assertTrue(tofu.check(("2001:db8:0::1", 7), k1))
        e = self.assertRaises(PeerKeyChanged, tofu.check, ("2001:db8::1", 7), k2)
        self.assertIn(k1.fingerprint(), str(e))
        self.assertIn(k2.fingerprint(), str(e))
        self.assertIn("[2001:db8::1]:7", str(e))
        with open(path) as f:
            self.assertEqual(f.read(), f"[2001:db8::1]:7 {k1.toText()} trusted on first use\n")
        self.assertEqual(KnownPeers(path).get(("2001:db8::1", 7)), k1)


# -- 3. key lifetime and refresh ----------------------------------------------------------


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
        self.assertNotIn(session.localIndex, a.server.sessions)
        self.assertEqual(a.server.stats()["sessions"], 0)
        self.assertIsNone(nextDeadline(a.server, a.peers.values(), a.knownPeers))  # nothing left to time
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
        self.assertEqual(a._byIndex, {})
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
        self.assertEqual(b.server.stats()["sessions"], 0)
        self.assertEqual(b.stats()["peers"][formatAddress(a.addr)]["state"], "idle")

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
        self.assertLessEqual(len(a._byIndex), 1)  # only the attempt in progress, if any
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


# -- 4. compression, padding, rate limits, MTU ------------------------------------------------


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


def _mangledFrame(padded, message, where, value):
    """
    @return: a compressed peer message whose zstd frame has one byte changed
        (or is cut), padded or not.
    """
    frame = bytearray(zstandard.ZstdCompressor().compress(message))
    where %= len(frame) + 1
    if where == len(frame):
        frame = frame[: value % len(frame)]
    else:
        frame[where] = value
    if padded:
        return bytes([PEER_VERSION, COMPRESSED | PADDED]) + len(frame).to_bytes(2, "big") + bytes(frame) + bytes(7)
    return bytes([PEER_VERSION, COMPRESSED]) + bytes(frame)


class FramingTests(unittest.SynchronousTestCase):
    MODES = [Framing(1400, compress=c, pad=p) for c in (False, True) for p in (False, True)]

    def test_withoutZstandard(self):
        """
        Without zstandard, compress=True says which install it needs, and a
        compressed message from a peer is a counted drop, not an ImportError.
        """
        from sudp.errors import ConfigurationError, MalformedPacket
        from sudp.peer import framing

        message = Framing(1400, compress=True).encode(b"z" * 500)
        self.patch(framing, "_zstandard", lambda: None)
        e = self.assertRaises(ConfigurationError, Framing, 1400, compress=True)
        self.assertIn("pip install 'txsudp[peer]'", str(e))
        e = self.assertRaises(MalformedPacket, Framing(1400).decode, message)
        self.assertEqual(e.reason, "compression-unsupported")

    def test_interfaceMTU(self):
        """
        interfaceMTU() is the smallest MTU of this host's interfaces but
        loopback (unreadable and implausible values skipped), 1500 where
        none can be read.
        """
        expected = []
        for name in os.listdir("/sys/class/net") if os.path.isdir("/sys/class/net") else []:
            try:
                with open(f"/sys/class/net/{name}/mtu") as f:
                    value = int(f.read())
            except (OSError, ValueError):
                continue
            if name != "lo" and value >= 576:
                expected.append(value)
        self.assertEqual(interfaceMTU(), min(expected, default=1500))

        base = os.path.abspath(self.mktemp())
        for name, value in [("lo", "65536"), ("eth0", "9000"), ("wg0", "1420"), ("bad", "junk"), ("tiny", "68")]:
            os.makedirs(os.path.join(base, name))
            with open(os.path.join(base, name, "mtu"), "w") as f:
                f.write(value + "\n")
        pattern = os.path.join(base, "*", "mtu")
        self.patch(framingModule.glob, "glob",
                   lambda p, real=framingModule.glob.glob: real(pattern) if p == "/sys/class/net/*/mtu" else real(p))
        self.assertEqual(interfaceMTU(), 1420)
        self.patch(framingModule.glob, "glob", lambda p: [])
        self.assertEqual(interfaceMTU(), 1500)

    def test_overheadAndSizes(self):
        """
        Every layer's overhead is accounted for: a Framing's maxMessage is
        the MTU less overhead(); a padded message is always padTo bytes, so
        its datagram fills the MTU exactly; an MTU too small is refused.
        """
        for mtu in (576, 1280, 1400, 1500, 9000):
            for family in (4, 6):
                for pad in (False, True):
                    f = Framing(mtu, family, pad=pad)
                    self.assertEqual(f.maxMessage, mtu - overhead(family, pad))
                    self.assertEqual(f.datagramSize, mtu - (28 if family == 4 else 48))
                    top = f.encode(bytes(f.maxMessage))
                    self.assertEqual(len(top) + 13 + 16, f.datagramSize)
                    if pad:
                        self.assertEqual(len(f.encode(b"")), f.padTo)
        self.assertRaises(ValueError, Framing, 59)
        self.assertEqual(Framing(60).maxMessage, 1)

    @settings(max_examples=400, deadline=None)
    @given(st.one_of(
        st.binary(max_size=1500),
        st.tuples(st.integers(0, 3), st.binary(max_size=300)).map(lambda t: bytes([PEER_VERSION, t[0]]) + t[1]),
        st.tuples(st.booleans(), st.binary(max_size=300), st.integers(0, 2**16), st.integers(0, 255)).map(
            lambda t: _mangledFrame(*t))))
    def test_decodeArbitraryBytes(self, data):
        """
        Decoding arbitrary bytes, bytes with a valid version and flags, and
        compressed messages with a corrupted or cut zstd frame returns bytes
        or raises MalformedPacket, in every mode: nothing else.
        """
        for f in self.MODES:
            try:
                result = f.decode(data)
            except MalformedPacket:
                continue
            self.assertIsInstance(result, bytes)

    @settings(max_examples=200, deadline=None)
    @given(st.one_of(st.binary(max_size=1400),
                     st.tuples(st.binary(min_size=1, max_size=20), st.integers(1, 400)).map(lambda t: t[0] * t[1])))
    def test_roundTrip(self, message):
        """
        For any message, in every mode: encode either raises MessageTooLarge
        (only past maxMessage, after compression) or gives a peer message
        that every mode decodes back to it; padded ones all have one size.
        """
        for f in self.MODES:
            try:
                encoded = f.encode(message)
            except MessageTooLarge as e:
                self.assertGreater(len(message), f.maxMessage)
                self.assertEqual(e.limit, f.maxMessage)
                self.assertGreater(e.size, f.maxMessage)
                continue
            self.assertEqual(encoded[0], PEER_VERSION)
            if f.pad:
                self.assertEqual(len(encoded), f.padTo)
            for g in self.MODES:
                self.assertEqual(g.decode(encoded), message)

    def test_zstdBomb(self):
        """
        A compressed message that would expand past maxDecompressed (64 KiB),
        or does not declare its size, or lies about it, is refused as
        MalformedPacket (bad-compression) without expanding it; one at the
        limit is accepted.
        """
        f = Framing(1400, compress=True)
        head = bytes([PEER_VERSION, COMPRESSED])
        bomb = zstandard.ZstdCompressor().compress(bytes(10**7))
        self.assertLess(len(bomb), 1400)
        e = self.assertRaises(MalformedPacket, f.decode, head + bomb)
        self.assertEqual(e.reason, "bad-compression")
        justOver = zstandard.ZstdCompressor().compress(bytes(65537))
        self.assertEqual(self.assertRaises(MalformedPacket, f.decode, head + justOver).reason, "bad-compression")
        atLimit = zstandard.ZstdCompressor().compress(bytes(65536))
        self.assertEqual(f.decode(head + atLimit), bytes(65536))
        unsized = zstandard.ZstdCompressor(write_content_size=False).compress(bytes(1000))
        self.assertEqual(self.assertRaises(MalformedPacket, f.decode, head + unsized).reason, "bad-compression")
        honest = zstandard.ZstdCompressor().compress(bytes(range(256)) * 4)
        # a 2-byte content size field holds size - 256: make the frame claim 256 bytes, not 1024
        liar = honest.replace((1024 - 256).to_bytes(2, "little"), bytes(2), 1)
        self.assertEqual(zstandard.frame_content_size(liar), 256)
        self.assertEqual(self.assertRaises(MalformedPacket, f.decode, head + liar).reason, "bad-compression")
        padded = Framing(1400, compress=True, pad=True)
        e = self.assertRaises(MalformedPacket, padded.decode, bytes([PEER_VERSION, COMPRESSED | PADDED])
                              + len(bomb).to_bytes(2, "big") + bomb)
        self.assertEqual(e.reason, "bad-compression")

    def test_versionAndFlags(self):
        """
        Another version raises UnknownVersion (a MalformedPacket, reason
        unknown-version, naming both versions); unknown flag bits bad-flags;
        a short message or a padded length past the end truncated.
        """
        f = Framing(1400)
        for version in (0, 2, 255):
            e = self.assertRaises(UnknownVersion, f.decode, bytes([version, 0]) + b"x")
            self.assertIsInstance(e, MalformedPacket)
            self.assertEqual((e.reason, e.version), ("unknown-version", version))
            self.assertIn(f"version {version}", str(e))
            self.assertIn(f"speaks {PEER_VERSION}", str(e))
        for flags in (4, 0x80, 0xFF):
            self.assertEqual(self.assertRaises(MalformedPacket, f.decode, bytes([1, flags])).reason, "bad-flags")
        for data in (b"", b"\x01", bytes([1, PADDED]), bytes([1, PADDED, 0, 5, 1, 2])):
            self.assertEqual(self.assertRaises(MalformedPacket, f.decode, data).reason, "truncated")
        self.assertEqual(len(f.encode(b"")), HEADER_SIZE)  # an empty message is the bare header
        self.assertEqual(f.decode(bytes([PEER_VERSION, 0])), b"")


# -- 5. stats ---------------------------------------------------------------------------


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
        a.addPeer(away)  # no key: no session; its messages wait (256 at most)
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
        self.assertEqual((toAway["state"], toAway["sent"], toAway["received"]), ("idle", 0, 0))
        self.assertEqual(toAway["dropped"], {"queue-full": 2})
        self.assertIsNone(toAway["lastHandshake"])
        self.assertIsNone(toAway["key"])
        ofA = b.stats()["peers"][formatAddress(a.addr)]
        self.assertEqual((ofA["sent"], ofA["received"]), (5, 5))  # the two crafted ones were sealed directly
        json.dumps(stats)  # plain data


# -- 6. the blocking facade ----------------------------------------------------------------


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

    def test_insideRunningReactor(self):
        """
        Making a PeerSocket from inside a running reactor (here, trial's)
        raises the documented RuntimeError (use PeerNode there), and starts
        no reactor thread.
        """
        def attempt():
            self.assertTrue(reactor.running)  # else PeerSocket would start a reactor thread here
            self.assertIsNone(blocking._thread)
            e = self.assertRaises(RuntimeError, blocking.PeerSocket, recv_port=0, interface=LOCAL)
            self.assertIn("PeerNode", str(e))
            self.assertIsNone(blocking._thread)

        return task.deferLater(reactor, 0, attempt)

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


# -- 7. protocol versioning ----------------------------------------------------------------


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
