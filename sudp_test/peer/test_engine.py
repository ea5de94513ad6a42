# -*- test-case-name: sudp_test.peer.test_engine -*-
"""
Tests for L{sudp.peer.engine}: peer mode's logic without a reactor or a
socket (L{sudp_test.peer.mesh}): bootstrap by trust on first use, the
trust model under the stranger and address-takeover attacks, peers found
by session across NAT rebinding, and sessions replaced with backoff.
"""

import logging

from twisted.trial import unittest
from zope.interface.verify import verifyObject

from sudp.engine import IDatagramEngine
from sudp.errors import BadServerSignature
from sudp.keys import Identity
from sudp.peer.engine import PeerEngine, PeerKeyUnknown
from sudp.peer.events import (
    PeerConnected,
    PeerDisconnected,
    PeerHandshakeFailed,
    PeerKeyPinned,
    PeerRefused,
)
from sudp.peer.knownpeers import KnownPeers
from sudp.udp import packets as P
from sudp.udp.client import ClientEngine
from sudp.udp.config import Config

from sudp_test.peer.mesh import Mesh, isOpen


def sessionPair(a, b):
    """
    @return: the session A keeps with B and the one B keeps with A, checked
        to be the two ends of one session.
    """
    sa, sb = a.peers[b.addr].session, b.peers[a.addr].session
    assert sa is not None and sb is not None
    assert (sa.localIndex, sa.remoteIndex) == (sb.remoteIndex, sb.localIndex), "two different sessions"
    return sa, sb


class ContractTests(unittest.SynchronousTestCase):
    def test_engineContract(self):
        """
        The peer engine is an engine like the others: a driver needs
        nothing else.
        """
        engine = PeerEngine(Identity.generate(), KnownPeers())
        self.assertTrue(verifyObject(IDatagramEngine, engine))
        self.assertIsNone(engine.nextDeadline())
        self.assertEqual((engine.datagramsToSend(), engine.nextEvents()), ([], []))


class BootstrapTests(unittest.SynchronousTestCase):
    """
    py-vault-udp's quick start: nodes that know only each other's
    addresses. With trust on first use on both they connect; without it
    and without a key, adding a peer says at once what to do.
    """

    def test_twoNodesByAddressOnly(self):
        mesh = Mesh()
        a, b = mesh.node(9001, tofu=True), mesh.node(9002, tofu=True)
        a.addPeer(b.addr, mesh.now)
        b.addPeer(a.addr, mesh.now)  # both open at once
        mesh.advance(0.1)
        sa, sb = sessionPair(a, b)
        self.assertEqual((sa.peerKey, sb.peerKey), (b.key, a.key))
        self.assertEqual((a.knownPeers.get(b.addr), b.knownPeers.get(a.addr)), (b.key, a.key))
        self.assertEqual(len(mesh.take(a, PeerKeyPinned)), 1)
        a.send(b"hello b", mesh.now, b.addr)
        b.send(b"hello a", mesh.now)
        mesh.pump()
        self.assertEqual(mesh.messages(b), [(b"hello b", a.addr)])
        self.assertEqual(mesh.messages(a), [(b"hello a", b.addr)])
        # the duplicate closes after its grace; one session stays, the same one
        mesh.advance(5)
        self.assertEqual(sessionPair(a, b), (sa, sb))
        self.assertEqual(len(a.server.sessions) + len(b.server.sessions), 1)

    def test_fiveNodes(self):
        mesh = Mesh()
        nodes = [mesh.node(9000 + i, tofu=True) for i in range(5)]
        for n in nodes:
            for other in nodes:
                if other is not n:
                    n.addPeer(other.addr, mesh.now)
        mesh.advance(0.05)
        for n in nodes:
            n.send(b"from %d" % n.addr[1], mesh.now)
        mesh.advance(3)
        for n in nodes:
            got = sorted(data for data, _ in mesh.messages(n))
            self.assertEqual(got, sorted(b"from %d" % o.addr[1] for o in nodes if o is not n))
            for other in nodes:
                if other is not n:
                    sessionPair(n, other)
        self.assertEqual(sum(len(n.server.sessions) for n in nodes), 10)  # one session per pair

    def test_laterAddConnectsAtOnce(self):
        """
        A adds B before B adds A: B refuses A as a stranger for now (and A
        backs off), but B's own handshake once it adds A opens at once.
        """
        mesh = Mesh()
        a, b = mesh.node(9001, tofu=True), mesh.node(9002, tofu=True)
        a.addPeer(b.addr, mesh.now)
        mesh.advance(0.5)
        self.assertEqual(b.drops["stranger"], 1)
        added = mesh.now
        b.addPeer(a.addr, mesh.now)
        mesh.pump()
        self.assertTrue(isOpen(a, b) and isOpen(b, a))
        self.assertEqual(mesh.now, added)  # no timer needed: within the round trips
        b.send(b"late", mesh.now, a.addr)
        mesh.pump()
        self.assertEqual(mesh.messages(a), [(b"late", b.addr)])

    def test_noKeyNoTofuRaises(self):
        engine = PeerEngine(Identity.generate(), KnownPeers())
        e = self.assertRaises(PeerKeyUnknown, engine.addPeer, ("192.0.2.7", 11000), 0.0)
        for hint in ("192.0.2.7:11000", "key=", "known peers", "tofu=True"):
            self.assertIn(hint, str(e))
        self.assertEqual(engine.peers, {})

    def test_noBusyWaitForAPeerThatDoesNotAnswer(self):
        """
        The landed node counted the retry time of a peer it could not reach
        as its deadline without moving it: a loop of timers at one instant.
        Now each attempt moves the deadline, and the waits grow.
        """
        mesh = Mesh()
        a = mesh.node(9001, tofu=True)
        a.addPeer(("10.0.0.9", 9), mesh.now)
        a.send(b"queued", mesh.now)
        mesh.advance(300)
        self.assertLess(mesh.timerRuns, 150)
        failed = mesh.take(a, PeerHandshakeFailed)
        waits = [e.retryIn for e in failed]
        self.assertEqual(waits[:5], [2.0, 4.0, 8.0, 16.0, 32.0])
        self.assertEqual(max(waits), 60.0)
        self.assertIn("no handshake", str(failed[0].error))
        self.assertGreater(a.nextDeadline(), mesh.now)

    def test_noDeadlineWithoutWork(self):
        mesh = Mesh()
        a, b = mesh.node(9001), mesh.node(9002)
        self.assertIsNone(a.nextDeadline())
        b.knownPeers.pin(a.addr, a.key)
        a.addPeer(b.addr, mesh.now, b.key)
        mesh.advance(1)
        a.removePeer(b.addr, mesh.now)
        mesh.advance(1)
        self.assertIsNone(a.nextDeadline())


class StrangerTests(unittest.SynchronousTestCase):
    """
    The landed node pinned any host that completed a handshake under trust
    on first use, added it as a peer, sent it every broadcast and wrote it
    to the known peers.
    """

    def test_strangerRefused(self):
        mesh = Mesh()
        node = mesh.node(9001, tofu=True)
        friend = mesh.node(9002, tofu=True)
        stranger = mesh.node(6666, tofu=True, host="10.6.6.6")
        node.addPeer(friend.addr, mesh.now)
        friend.addPeer(node.addr, mesh.now)
        stranger.addPeer(node.addr, mesh.now)
        mesh.advance(1)
        self.assertEqual(list(node.peers), [friend.addr])
        self.assertIsNone(node.knownPeers.get(stranger.addr))
        self.assertEqual(len(node.knownPeers), 1)
        self.assertEqual(node.drops["stranger"], 1)
        [refused] = mesh.take(node, PeerRefused)
        self.assertEqual((refused.addr, refused.reason), (stranger.addr, "stranger"))
        node.send(b"broadcast", mesh.now)
        mesh.advance(1)
        self.assertEqual(mesh.messages(stranger), [])
        self.assertEqual(mesh.messages(friend), [(b"broadcast", node.addr)])
        # the stranger keeps trying, with backoff, and keeps being refused
        mesh.advance(60)
        self.assertEqual(list(node.peers), [friend.addr])
        self.assertLessEqual(node.drops["stranger"], 6)
        self.assertNotIn(stranger.addr, node.stats(mesh.now)["peers"])


class AddressTakeoverTests(unittest.SynchronousTestCase):
    """
    An attacker tries to have its key pinned for the address of a peer the
    node added (and has no key for yet).
    """

    VICTIM = ("10.0.0.2", 9002)
    MALLORY = ("10.6.6.6", 6666)

    def setUp(self):
        self.mesh = Mesh()
        self.node = self.mesh.node(9001, tofu=True)
        self.node.addPeer(self.VICTIM, self.mesh.now)  # the victim is not up yet
        self.mesh.pump()
        self.mallory = Identity.generate()

    def handshakeWithConfirmFrom(self, confirmSource):
        """
        Mallory runs a handshake from its own address and sends the CONFIRM
        (which carries its key) from C{confirmSource}.
        """
        mesh, node = self.mesh, self.node
        client = ClientEngine(None, node.addr, Config(maxDatagramSize=node.config.maxDatagramSize),
                              identity=self.mallory, learnServerKey=True)
        mesh.raw[self.MALLORY] = lambda data, src: client.receiveDatagram(data, src, mesh.now)
        client.start(mesh.now)
        for _ in range(4):
            for data, dst in client.datagramsToSend():
                source = confirmSource if data[0] & 0xFE == P.CONTROL else self.MALLORY
                mesh.inject(data, source, dst)
            mesh.pump()
        return client

    def assertNotTakenOver(self):
        node = self.node
        self.assertIsNone(node.knownPeers.get(self.VICTIM))
        self.assertIsNone(node.peers[self.VICTIM].session)
        # the real victim comes up and is trusted, with its own key
        victim = self.mesh.node(self.VICTIM[1], tofu=True, host=self.VICTIM[0])
        victim.addPeer(node.addr, self.mesh.now)
        self.mesh.advance(0.1)
        self.assertEqual(node.knownPeers.get(self.VICTIM), victim.key)
        sessionPair(node, victim)

    def test_confirmFromTheVictimsAddress(self):
        """
        The session's address is the INIT's, which the cookie proved:
        Mallory's own, a stranger's.
        """
        self.handshakeWithConfirmFrom(self.VICTIM)
        self.assertEqual(self.node.drops["stranger"], 1)
        [refused] = self.mesh.take(self.node, PeerRefused)
        self.assertEqual(refused.addr, self.MALLORY)
        self.assertNotIn(self.MALLORY, self.node.peers)
        self.assertNotTakenOver()

    def test_wholeHandshakeSpoofed(self):
        """
        A HELLO from the victim's address: the COOKIE goes to the victim,
        and an INIT without it is dropped.
        """
        mesh, node = self.mesh, self.node
        seen = []
        mesh.raw[self.VICTIM] = lambda data, src: seen.append(data)
        mesh.inject(P.encodeHello(b"m" * 8, askKey=True), self.VICTIM, node.addr)
        mesh.pump()
        self.assertEqual([d[0] for d in seen], [P.COOKIE])  # Mallory, off the path, sees nothing
        client = ClientEngine(None, node.addr, Config(), identity=self.mallory, learnServerKey=True)
        client.start(mesh.now)
        client.datagramsToSend()
        client.receiveDatagram(P.encodeCookie(client.helloNonce, 0, b"\0" * 16, node.key.raw), node.addr, mesh.now)
        [(init, _)] = client.datagramsToSend()
        mesh.inject(init, self.VICTIM, node.addr)
        mesh.pump()
        self.assertEqual(node.server.drops["expired-cookie"] + node.server.drops["bad-cookie"], 1)
        self.assertEqual(node.server.sessions, {})
        del mesh.raw[self.VICTIM]
        self.assertNotTakenOver()

    def test_pinnedPeerCannotMoveOntoAnotherAddress(self):
        """
        A trusted peer (Mallory, pinned at its own address) sends its
        authentic packets from the victim's address: the session is not
        moved there without the victim's answer, and its messages stay
        Mallory's.
        """
        mesh, node = self.mesh, self.node
        evil = mesh.node(self.MALLORY[1], host=self.MALLORY[0], identity=self.mallory)
        node.knownPeers.pin(evil.addr, evil.key)
        evil.knownPeers.pin(node.addr, node.key)
        evil.addPeer(node.addr, mesh.now)
        mesh.advance(0.1)
        self.assertTrue(isOpen(node, evil))
        mesh.spoof(evil, self.VICTIM)  # its packets now carry the victim's address
        evil.send(b"I am the victim", mesh.now)
        mesh.advance(10)
        session = node.peers[evil.addr].session
        self.assertEqual(session.peerAddr, evil.addr)
        self.assertGreaterEqual(node.server.drops["path-validation-failed"], 1)
        self.assertEqual(mesh.messages(node), [(b"I am the victim", evil.addr)])  # named for who sent it
        mesh.spoofed.clear()
        self.assertNotTakenOver()


class KeyChangeTests(unittest.SynchronousTestCase):
    def test_impostorRefusedLoudlyBothWays(self):
        """
        Another key at a pinned peer's address: the node's handshake fails
        (the impostor cannot sign for the pinned key) and the impostor's is
        refused, both at ERROR with what to do; nothing is re-pinned.
        """
        mesh = Mesh()
        real = Identity.generate()
        node = mesh.node(9001, tofu=True)
        node.addPeer(("10.0.0.2", 9002), mesh.now, key=real.publicKey)
        impostor = mesh.node(9002, tofu=True, host="10.0.0.2")
        impostor.addPeer(node.addr, mesh.now)
        mesh.advance(1)
        [failed] = mesh.take(node, PeerHandshakeFailed)[:1]
        self.assertIsInstance(failed.error, BadServerSignature)
        self.assertEqual(failed.level, logging.ERROR)
        self.assertIn("DID NOT PROVE ITS PINNED KEY", failed.text())
        refused = mesh.take(node, PeerRefused)
        self.assertEqual({(r.reason, r.level) for r in refused}, {("key-changed", logging.ERROR)})
        self.assertIn("HAS CHANGED", refused[0].text())
        self.assertEqual(node.knownPeers.get(impostor.addr), real.publicKey)
        self.assertIsNone(node.peers[impostor.addr].session)


class PinLimitTests(unittest.SynchronousTestCase):
    def test_pinsCapped(self):
        mesh = Mesh()
        node = mesh.node(9001, known=KnownPeers(tofu=True, maxPins=2))
        others = [mesh.node(9002 + i, tofu=True) for i in range(3)]
        for other in others:
            node.addPeer(other.addr, mesh.now)
            other.addPeer(node.addr, mesh.now)
        mesh.advance(1)
        self.assertEqual(len(node.knownPeers), 2)
        refused = [e for e in mesh.take(node, PeerRefused) if e.reason == "pin-limit"]
        self.assertEqual(len({e.addr for e in refused}), 1)  # the third, each way it tried
        self.assertIn("maxPins", refused[0].detail)
        self.assertEqual(sum(isOpen(node, o) for o in others), 2)


class RebindingTests(unittest.SynchronousTestCase):
    """
    The landed node looked peers up by their session's current address:
    after a NAT rebinding every message was dropped as no-peer.
    """

    def stream(self, starter):
        mesh = Mesh()
        a, b = mesh.node(9001, tofu=True), mesh.node(9002, tofu=True)
        first, second = (a, b) if starter == "a" else (b, a)
        first.addPeer(second.addr, mesh.now)
        mesh.advance(0.1)
        second.addPeer(first.addr, mesh.now)
        mesh.advance(0.1)
        sessionPair(a, b)
        sent = []
        for i in range(100):
            if i == 40:
                # B's NAT: a new port, the old mapping gone. A mapping is made
                # by an outgoing packet, so B speaks first from the new one
                # (what was sent to the old one after it expired is lost to
                # any protocol; nothing is sent to it here)
                mesh.rebind(b, ("192.0.2.77", 40000))
            for sender, receiver in ((b, a), (a, b)):
                message = b"%s %d" % (sender.addr[0].encode(), i) + bytes([sender.addr[1] % 256])
                sender.send(message, mesh.now, receiver.addr)
                mesh.pump()
                sent.append((receiver, message, sender.addr))
            mesh.advance(0.01)
        for node in (a, b):
            got = mesh.messages(node)
            expected = [(m, s) for r, m, s in sent if r is node]
            self.assertEqual(got, expected)
        self.assertEqual(a.drops["no-peer"] + b.drops["no-peer"], 0)
        self.assertEqual(a.stats(mesh.now)["peers"]["10.0.0.1:9002"]["address"], "192.0.2.77:40000")
        self.assertEqual(list(a.peers), [b.addr])  # still named as it was added

    def test_rebindingClientSide(self):
        """
        B started the session kept (it is the client) and rebinds.
        """
        self.stream("b")

    def test_rebindingServerSide(self):
        """
        A started it: B is the server of the session and rebinds, so A's
        client session follows B (followPeer).
        """
        self.stream("a")


class ReplacementTests(unittest.SynchronousTestCase):
    def test_endedSessionReplaced(self):
        """
        A session that ends (here the peer closes it) is replaced by a new
        handshake after the backoff; describe() says what happened.
        """
        mesh = Mesh()
        a, b = mesh.node(9001, tofu=True), mesh.node(9002, tofu=True)
        a.addPeer(b.addr, mesh.now)
        b.addPeer(a.addr, mesh.now)
        mesh.advance(5)
        sa, sb = sessionPair(a, b)
        b.closeSession(sb, mesh.now)
        mesh.pump()
        [ended] = mesh.take(a, PeerDisconnected)
        self.assertEqual((ended.addr, ended.retryIn), (b.addr, 2.0))
        described = a.stats(mesh.now)["peers"]["10.0.0.1:9002"]
        self.assertEqual((described["state"], described["retryIn"], described["disconnects"]), ("waiting", 2.0, 1))
        mesh.advance(2.5)
        sessionPair(a, b)
        self.assertIsNot(a.peers[b.addr].session, sa)
        a.send(b"again", mesh.now, b.addr)
        mesh.pump()
        self.assertEqual(mesh.messages(b), [(b"again", a.addr)])
        self.assertEqual(a.stats(mesh.now)["peers"]["10.0.0.1:9002"]["state"], "open")

    def test_peerGoneThenBack(self):
        """
        A peer that disappears: the session times out, the node retries
        with growing waits, and connects again once the peer is back.
        """
        mesh = Mesh()
        a, b = mesh.node(9001, tofu=True), mesh.node(9002, tofu=True)
        a.addPeer(b.addr, mesh.now)
        b.addPeer(a.addr, mesh.now)
        mesh.advance(5)
        del mesh.nodes[b.addr]  # gone, silently
        mesh.advance(120)
        self.assertEqual(len(mesh.take(a, PeerDisconnected)), 1)
        waits = [e.retryIn for e in mesh.take(a, PeerHandshakeFailed)]
        self.assertEqual(waits[:3], [4.0, 8.0, 16.0])
        mesh.nodes[b.addr] = b  # back, with its old state gone stale too
        mesh.advance(61)
        self.assertTrue(isOpen(a, b))
        a.send(b"back", mesh.now, b.addr)
        mesh.pump()
        self.assertEqual(mesh.messages(b)[-1], (b"back", a.addr))

    def test_connectedEventsOnce(self):
        mesh = Mesh()
        a, b = mesh.node(9001, tofu=True), mesh.node(9002, tofu=True)
        a.addPeer(b.addr, mesh.now)
        b.addPeer(a.addr, mesh.now)
        mesh.advance(5)
        self.assertEqual(len(mesh.take(a, PeerConnected)), 1)
