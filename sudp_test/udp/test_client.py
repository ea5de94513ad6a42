# -*- test-case-name: sudp_test.udp.test_client -*-
"""
Tests for L{sudp.udp.client}.

Tests for L{sudp.udp.client}: how a client's handshake fails, fast and
precisely: a port where nothing listens, a server that
never answers, a server that restarted, suites the server refuses.

Adversarial tests of the sudp/1 engines, driven without a reactor or sockets:
every kind of bad input to the server (and the client), each shown to be
dropped with the exact reason counted, nothing raised, no reply sent and no
state changed; statelessness before a cookie; no amplification; state that
moves only after authentication; limits; and nonce uniqueness across rekeys.
"""

from twisted.trial import unittest

from sudp.errors import BadServerSignature, HandshakeFailed, HandshakeTimeout, ServerUnreachable
from sudp.keys import Identity
from sudp.udp import packets as P
from sudp.udp.client import ClientEngine, ClientState
from sudp.udp.config import Config
from sudp.udp.events import HandshakeFailure, SessionOpened

from sudp_test.enginehelpers import (
    CLIENT_ADDR,
    connectedPair,
    Network,
    newServer,
    SERVER_ADDR,
    serverSessionOf,
    START,
    takeOutbox,
)
from sudp_test.udp.helpers import EngineTestCase, flip

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
        from sudp.suites import CHACHA20POLY1305

        client = connect(net, config=Config(suites=(CHACHA20POLY1305,)))  # offers chacha20-poly1305 only
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

class ClientHandshakeTests(EngineTestCase):
    """
    A HANDSHAKE_RESP that does not prove the expected server key.
    """

    def setUp(self):
        self.server = newServer()
        self.net = Network(self.server)
        self.client = self.net.add(
            ClientEngine(self.server.identity.publicKey, SERVER_ADDR), CLIENT_ADDR
        )
        self.client.start(self.net.now)
        self.net.pump(drop=lambda data, src, dst: data[0] == P.HANDSHAKE_RESP)
        [self.resp] = [d for s, dst, d in self.net.sent if d[0] == P.HANDSHAKE_RESP]
        self.assertEqual(self.client.state, ClientState.INIT_SENT)

    def assertFails(self, data, errorType):
        self.client.receiveDatagram(data, SERVER_ADDR, self.net.now)
        [failure] = self.client.events
        self.assertIsInstance(failure, HandshakeFailure)
        self.assertIsInstance(failure.error, errorType)
        self.assertEqual(self.client.state, ClientState.FAILED)
        self.assertIsNone(self.client.session)
        self.assertIsNone(self.client.nextDeadline())
        # the genuine RESP can no longer open anything
        self.client.events = []
        self.assertClientDrops(self.client, self.resp, "unexpected-resp")
        return failure.error

    def test_respBadSignature(self):
        """
        A HANDSHAKE_RESP whose signature has a flipped bit fails the client
        with L{BadServerSignature}, reported as a L{HandshakeFailure}.
        """
        signatureBit = (P.HANDSHAKE_RESP_SIZE - 64) * 8 + 3
        error = self.assertFails(flip(self.resp, signatureBit), BadServerSignature)
        self.assertIn(self.server.identity.publicKey.toText(), str(error))

    def test_respTamperedTranscript(self):
        """
        A HANDSHAKE_RESP with its server ephemeral, index or suite altered no
        longer matches its signature: L{BadServerSignature}.
        """
        self.assertFails(flip(self.resp, 12 * 8), BadServerSignature)

    def test_respZeroSignature(self):
        """
        An all-zero signature fails with L{BadServerSignature}.
        """
        self.assertFails(self.resp[:-64] + bytes(64), BadServerSignature)

    def test_respBadConfirmation(self):
        """
        A HANDSHAKE_RESP whose key confirmation (outside the signed prefix)
        is altered fails the handshake.
        """
        self.assertFails(flip(self.resp, P.RESP_PREFIX_SIZE * 8), HandshakeFailed)

    def test_wrongServerKey(self):
        """
        A client that expects another server key fails with
        L{BadServerSignature}; no session opens on either side.
        """
        other = Identity.generate().publicKey
        net, server, client = connectedPair(serverKey=other)
        [failure] = net.take(CLIENT_ADDR, HandshakeFailure)
        self.assertIsInstance(failure.error, BadServerSignature)
        self.assertIn(other.toText(), str(failure.error))
        self.assertEqual(net.take("server", SessionOpened), [])
        self.assertEqual(client.state, ClientState.FAILED)
        self.assertEqual(server.openCount, 0)

    def test_genuineRespAfterJunk(self):
        """
        Junk and malformed RESPs are dropped with their reasons without
        failing the handshake, which the genuine RESP then completes.
        """
        c = self.client
        self.assertClientDrops(c, b"", "empty")
        self.assertClientDrops(c, self.resp[:-1], "truncated")
        self.assertClientDrops(c, self.resp + b"\0", "oversized")
        self.assertClientDrops(c, bytes([0x24]) + self.resp[1:], "wrong-version")
        self.assertClientDrops(c, bytes([0x10]) + self.resp[1:], "unknown-type")
        self.assertClientDrops(c, bytes([0x16]) + self.resp[1:], "unexpected-type")  # gossip6's RESP
        self.assertClientDrops(c, P.encodeHello(b"12345678"), "unexpected-type")
        self.assertClientDrops(c, flip(self.resp, 8), "unexpected-resp")  # receiver index
        zeroSender = self.resp[:5] + bytes(4) + self.resp[9:]
        self.assertClientDrops(c, zeroSender, "bad-field")
        self.assertClientDrops(c, P.encodeCookie(c._nonce, 1, bytes(16)), "unexpected-cookie")
        self.assertClientDrops(c, P.encodeDataHeader(0x18, 1, 0) + bytes(16), "no-session")
        c.receiveDatagram(self.resp, SERVER_ADDR, self.net.now)
        self.net.pump()
        self.assertEqual(len(self.net.take(CLIENT_ADDR, SessionOpened)), 1)
        self.assertEqual(len(self.net.take("server", SessionOpened)), 1)

class ClientBadInputTests(EngineTestCase):
    """
    Bad input to a client, before and after its session opens.
    """

    def test_badCookies(self):
        """
        In HELLO_SENT, a COOKIE that is short, long or echoes another nonce is
        dropped; the genuine one then moves the handshake on.
        """
        server = newServer()
        client = ClientEngine(server.identity.publicKey, SERVER_ADDR)
        client.start(START)
        [(hello, _)] = takeOutbox(client)
        server.receiveDatagram(hello, CLIENT_ADDR, START)
        [(cookie, _)] = takeOutbox(server)
        self.assertClientDrops(client, cookie[:-1], "truncated")
        self.assertClientDrops(client, cookie + b"\0", "oversized")
        self.assertClientDrops(client, flip(cookie, 8), "unexpected-cookie")
        self.assertClientDrops(client, b"\x12", "truncated")
        client.receiveDatagram(cookie, SERVER_ADDR, START)
        [(init, _)] = takeOutbox(client)
        self.assertEqual(init[0], P.HANDSHAKE_INIT)
        self.assertClientDrops(client, cookie, "unexpected-cookie")

    def test_badDataToClient(self):
        """
        On an open session the client drops truncated, misaddressed,
        tampered and replayed DATA with the exact reason.
        """
        net, server, client = connectedPair()
        session = serverSessionOf(server, client)
        server.sendMessage(session, b"hello", net.now)
        [(packet, _)] = takeOutbox(server)
        for n in range(1, 29):
            self.assertClientDrops(client, packet[:n], "truncated")
        wrongIndex = P.encodeDataHeader(0x18, client.session.localIndex ^ 1, 9) + packet[13:]
        self.assertClientDrops(client, wrongIndex, "unknown-session")
        for bit in range(13 * 8 + 3, len(packet) * 8, 7):
            self.assertClientDrops(client, flip(packet, bit), "bad-tag")
        client.receiveDatagram(packet, SERVER_ADDR, net.now)
        self.assertEqual([e.message for e in client.events], [b"hello"])
        client.events = []
        self.assertClientDrops(client, packet, "replay")
        self.assertWorks(net, client)

    def test_clientDropsOversizedDatagram(self):
        """
        A client drops a datagram over its maxDatagramSize as C{oversized},
        even an authentic one from a server configured for larger datagrams
        (the adapters read maxDatagramSize + 1 bytes "so oversize is seen").
        """
        net, server, client = connectedPair(
            serverConfig=Config(maxDatagramSize=4000), clientConfig=Config()
        )
        session = serverSessionOf(server, client)
        server.sendMessage(session, b"x" * 2000, net.now)
        [(packet, _)] = takeOutbox(server)
        self.assertGreater(len(packet), client.config.maxDatagramSize)
        self.assertClientDrops(client, packet, "oversized")
        forged = P.encodeDataHeader(0x18, client.session.localIndex, 99) + bytes(2000)
        self.assertClientDrops(client, forged, "oversized")


class LearnServerKeyTests(unittest.SynchronousTestCase):
    """
    Trust on first use (protocol.md 5.7): a client that has no key for its
    server asks for it in the HELLO, takes it from the COOKIE, and the RESP
    must then be signed with it.
    """

    def learn(self, revealKey=True):
        from sudp.udp.server import ServerEngine
        from sudp_test.enginehelpers import Network

        server = ServerEngine(Identity.generate(), Config(revealKey=revealKey))
        net = Network(server)
        client = net.add(ClientEngine(None, SERVER_ADDR, Config(), identity=Identity.generate(),
                                      learnServerKey=True))
        client.start(net.now)
        return net, server, client

    def test_learnsTheKey(self):
        net, server, client = self.learn()
        net.pump()
        self.assertEqual(client.state, ClientState.ESTABLISHED)
        self.assertEqual(client.serverKey, server.identity.publicKey)
        self.assertEqual(client.session.peerKey, server.identity.publicKey)
        hello, cookie = net.sent[0][2], net.sent[1][2]
        self.assertEqual((hello[0], hello[9], len(hello)), (P.HELLO, P.ASK_KEY, P.HELLO_SIZE))
        self.assertEqual(P.cookieServerKey(cookie), server.identity.publicKey.raw)
        self.assertLess(len(cookie), len(hello))  # still no amplification
        self.assertEqual(server.counters["keys-revealed"], 1)

    def test_serverRevealsOnlyWhenAsked(self):
        """
        A HELLO that does not ask gets the 29-byte COOKIE, revealKey or not.
        """
        from sudp_test.enginehelpers import newServer

        net = Network(newServer(Config(revealKey=True)))
        [(cookie, _)] = net.toServer(P.encodeHello(b"n" * 8))
        self.assertEqual(len(cookie), P.COOKIE_PACKET_SIZE)
        self.assertIsNone(P.cookieServerKey(cookie))

    def test_serverThatDoesNotReveal(self):
        """
        A server without revealKey answers with a plain COOKIE: the client
        fails at once, saying what to do.
        """
        net, server, client = self.learn(revealKey=False)
        net.pump()
        [error] = [e.error for w, e in net.events if isinstance(e, HandshakeFailure)]
        self.assertIsInstance(error, HandshakeFailed)
        self.assertIn("did not reveal its public key", str(error))
        self.assertIn("pin its key", str(error))
        self.assertIsNone(client.session)

    def test_aKeyTheServerDoesNotHold(self):
        """
        An on-path attacker who rewrites the COOKIE's key gains nothing: the
        RESP is signed by the real server, not by the key the client was
        given, so the handshake fails.
        """
        mallory = Identity.generate()
        net, server, client = self.learn()

        def rewrite(data, src, dst):
            if data[0] == P.COOKIE:
                client.receiveDatagram(data[:P.COOKIE_PACKET_SIZE] + mallory.publicKey.raw, SERVER_ADDR, net.now)
                return True
            return False

        net.pump(drop=rewrite)
        [error] = [e.error for w, e in net.events if isinstance(e, HandshakeFailure)]
        self.assertIsInstance(error, BadServerSignature)
        self.assertEqual(client.serverKey, mallory.publicKey)  # what it was told, and refused
        self.assertIsNone(client.session)

    def test_learnNeedsNoPinnedKey(self):
        self.assertRaises(ValueError, ClientEngine, Identity.generate().publicKey, SERVER_ADDR,
                          learnServerKey=True)
