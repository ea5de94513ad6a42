"""
Tests for L{sudp.udp.client}: how a client's handshake fails, fast and
precisely (issue 15 point 3): a port where nothing listens, a server that
never answers, a server that restarted, suites the server refuses.
"""

from twisted.trial import unittest

from sudp.errors import HandshakeTimeout, ServerUnreachable
from sudp.keys import Identity
from sudp.udp.client import ClientEngine, ClientState
from sudp.udp.config import Config
from sudp.udp.events import HandshakeFailure

from sudp_test.enginehelpers import CLIENT_ADDR, SERVER_ADDR, START, connectedPair, takeOutbox


def newClient(config=None):
    client = ClientEngine(Identity.generate().publicKey, SERVER_ADDR, config or Config())
    client.start(START)
    takeOutbox(client)
    return client


def failures(engine):
    return [e.error for e in engine.events if isinstance(e, HandshakeFailure)]


class UnreachableTests(unittest.SynchronousTestCase):
    def test_portUnreachableFailsTheHandshake(self):
        """
        An ICMP port unreachable before any answer fails the handshake at
        once with ServerUnreachable, naming the address and what to check.
        """
        client = newClient()
        client.portUnreachable(START + 0.01)
        [error] = failures(client)
        self.assertIsInstance(error, ServerUnreachable)
        text = str(error)
        self.assertIn("127.0.0.1:9000", text)
        self.assertIn("nothing listens", text)
        self.assertIn("firewall", text)
        self.assertIsNone(client.nextDeadline())

    def test_unreachableIgnoredOnceTheServerAnswered(self):
        """
        After the server has answered (here: an open session), an ICMP
        error, which anyone on the path can forge, ends nothing; it is
        counted.
        """
        net, server, client = connectedPair()
        client.events.clear()
        client.portUnreachable(net.now)
        self.assertEqual(failures(client), [])
        self.assertEqual(client.drops["port-unreachable"], 1)
        self.assertEqual(client.session.state, "open")

    def test_timeoutSaysWhatToCheck(self):
        """
        A handshake that times out with no answer at all says so, with the
        address and what to check (the landed code said "state hello-sent").
        """
        client = newClient(Config(handshakeTimeout=2))
        client.onTimer(START + 2)
        [error] = failures(client)
        self.assertIsInstance(error, HandshakeTimeout)
        text = str(error)
        self.assertIn("127.0.0.1:9000", text)
        self.assertIn("no answer", text)
        self.assertNotIn("hello-sent", text)


class RefusedSuitesTests(unittest.SynchronousTestCase):
    """
    A client offering only suites the server refuses is told so, by a
    refusal the server signs (the landed code let it time out, unable to
    tell this from loss).
    """

    def pair(self):
        from sudp.suites import AES256GCM, XSALSA20POLY1305
        from sudp_test.enginehelpers import Network, connect, newServer

        server = newServer(Config(suites=(AES256GCM, XSALSA20POLY1305)))
        net = Network(server)
        return net, server

    def test_refusalNamesTheSuites(self):
        from sudp.errors import NoCommonSuite
        from sudp_test.enginehelpers import connect

        net, server = self.pair()
        client = connect(net)  # offers chacha20-poly1305 only
        [error] = [e.error for w, e in net.events if isinstance(e, HandshakeFailure)]
        self.assertIsInstance(error, NoCommonSuite)
        self.assertIn("chacha20-poly1305", str(error))
        self.assertIn("aes-256-gcm, xsalsa20-poly1305", str(error))
        self.assertEqual(client.state, ClientState.FAILED)
        self.assertEqual(server.counters["refusals-sent"], 1)
        self.assertEqual(server.drops["no-common-suite"], 1)
        # the refusal is smaller than the INIT it answers: no amplification
        inits = [d for src, dst, d in net.sent if d[0] == 0x13]
        refusals = [d for src, dst, d in net.sent if d[0] == 0x17]
        self.assertLess(len(refusals[0]), len(inits[0]))

    def test_forgedRefusalIgnored(self):
        """
        A refusal not signed by the pinned key (or for another INIT, or
        another index) is dropped and counted; the handshake goes on.
        """
        from sudp.udp import packets as P
        from sudp_test.enginehelpers import Network, newServer

        net = Network(newServer())
        client = net.add(ClientEngine(net.server.identity.publicKey, SERVER_ADDR, Config()))
        client.start(net.now)
        net.pump(drop=lambda data, src, dst: data[0] == 0x14)  # no RESP: the client waits in init-sent
        self.assertEqual(client.state, ClientState.INIT_SENT)
        forger = Identity.generate()
        refused = P.HandshakeRefused(client.handshakeIndex, [2])
        refused.signature = forger.sign(b"anything")
        client.receiveDatagram(refused.encode(), SERVER_ADDR, net.now)
        wrongIndex = P.HandshakeRefused(client.handshakeIndex ^ 1, [2], bytes(64))
        client.receiveDatagram(wrongIndex.encode(), SERVER_ADDR, net.now)
        self.assertEqual(client.drops["bad-refusal"], 1)
        self.assertEqual(client.drops["unexpected-refusal"], 1)
        self.assertEqual(client.state, ClientState.INIT_SENT)
        self.assertEqual(failures(client), [])

    def test_decodeRejectsJunk(self):
        from sudp.errors import MalformedPacket
        from sudp.udp import packets as P

        good = P.HandshakeRefused(7, [1, 2], bytes(64)).encode()
        self.assertEqual(P.HandshakeRefused.decode(good).suites, (1, 2))
        for bad in (good[:5], good[:-1], good + b"\0", P.HandshakeRefused(0, [1], bytes(64)).encode(),
                    P.HandshakeRefused(7, [], bytes(64)).encode(), P.HandshakeRefused(7, range(1, 18), bytes(64)).encode()):
            self.assertRaises(MalformedPacket, P.HandshakeRefused.decode, bad)


class RolloverTests(unittest.SynchronousTestCase):
    """
    A client pins a set of server keys, and the server announces the key it
    will use next (the landed code pinned exactly one key, so a server could
    not roll its key without breaking every client at once).
    """

    def roll(self, serverIdentity, pinned, nextIdentity=None):
        from sudp.udp.server import ServerEngine
        from sudp_test.enginehelpers import Network, connect

        net = Network(ServerEngine(serverIdentity, Config(), nextIdentity=nextIdentity))
        client = connect(net, serverKey=tuple(pinned))
        return net, client

    def test_anyPinnedKeyWillDo(self):
        from sudp.udp.events import SessionOpened

        a, b = Identity.generate(), Identity.generate()
        for server in (a, b):
            net, client = self.roll(server, [a.publicKey, b.publicKey])
            self.assertEqual(client.state, ClientState.ESTABLISHED)
            self.assertEqual(client.serverKey, server.publicKey)
            self.assertEqual(client.session.serverKey, server.publicKey)
            self.assertEqual(len(net.take("server", SessionOpened)), 1)

    def test_noPinnedKeySaysWhy(self):
        from sudp.errors import BadServerSignature

        a, b, c = Identity.generate(), Identity.generate(), Identity.generate()
        net, client = self.roll(c, [a.publicKey, b.publicKey])
        [error] = [e.error for w, e in net.events if isinstance(e, HandshakeFailure)]
        self.assertIsInstance(error, BadServerSignature)
        self.assertIn("any of", str(error))
        self.assertIn(a.publicKey.fingerprint(), str(error))
        self.assertIn(b.publicKey.fingerprint(), str(error))
        self.assertIn("new key", str(error))

    def test_nextKeyAnnouncedOnce(self):
        """
        A client that pins only the current key hears of the next one, once,
        with the key the server proved; the rekeys and retransmitted
        CONFIRM answers after repeat nothing.
        """
        from sudp.udp.events import ServerKeyAnnounced

        a, b = Identity.generate(), Identity.generate()
        net, client = self.roll(a, [a.publicKey], nextIdentity=b)
        [event] = net.take(CLIENT_ADDR, ServerKeyAnnounced)
        self.assertEqual((event.key, event.serverKey), (b.publicKey, a.publicKey))
        client.session._sendControl(client._confirm, net.now)  # a CONFIRM again: answered again
        net.pump()
        self.assertEqual(net.take(CLIENT_ADDR, ServerKeyAnnounced), [])

    def test_pinnedNextKeyNotAnnounced(self):
        from sudp.udp.events import ServerKeyAnnounced

        a, b = Identity.generate(), Identity.generate()
        net, client = self.roll(a, [a.publicKey, b.publicKey], nextIdentity=b)
        self.assertEqual(client.state, ClientState.ESTABLISHED)
        self.assertEqual(net.take(CLIENT_ADDR, ServerKeyAnnounced), [])

    def test_unprovenNextKeyDropped(self):
        """
        An announcement whose signature is not the announced key's over
        this session's transcript is dropped and counted, never reported.
        """
        from sudp.udp import records as R
        from sudp.udp.events import ServerKeyAnnounced

        a, b, c = Identity.generate(), Identity.generate(), Identity.generate()
        net, client = self.roll(a, [a.publicKey])
        session = client.session
        forged = b.publicKey.raw + c.sign(b"sudp/1 next server key\0" + session.handshakeTranscript)
        session._control(R.encodeRecord(R.NEXT_SERVER_KEY, forged), net.now)
        otherSession = b.publicKey.raw + b.sign(b"sudp/1 next server key\0" + bytes(32))
        session._control(R.encodeRecord(R.NEXT_SERVER_KEY, otherSession), net.now)
        self.assertEqual(client.drops["bad-next-key"], 2)
        self.assertEqual([e for e in client.events if isinstance(e, ServerKeyAnnounced)], [])
