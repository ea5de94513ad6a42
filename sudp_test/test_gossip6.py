"""
gossip6 as a handshake of the sudp engines and endpoints: the sessions it
opens (messages, rekeys signed with RSA), the asynchronous proof of work
(retransmissions while solving, expiry, shutdown), configuration errors,
and `twist sudp --handshake gossip6`.

The discard rules, their order and costs, fuzzing and the endpoint
integration are in test_gossip6_rules; the vectors in test_gossip6_vectors.
"""

import os
from dataclasses import replace

from twisted.internet import defer, reactor
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.trial import unittest

from sudp.udp.client import ClientState
from sudp.errors import ConfigurationError
from sudp.gossip6.config import Gossip6Config, parseLocalAddresses
from sudp.gossip6.udp import gossip6ClientEngine, gossip6ServerEngine
from sudp.rsaidentity import RSAIdentity
from sudp.rsakeyfiles import saveRSAIdentity
from sudp.udp.config import Config
from sudp.errors import ClientNotAuthorized
from sudp.udp.handshake import clientProof
from sudp.keys import Identity
from sudp.udp import records as R
from sudp.udp.events import ClientRefused, HandshakeFailure, MessageReceived, SessionOpened
from sudp.work import WorkNeeded
from sudp_test import test_udp_integration
from sudp_test.test_udp_integration import RecorderFactory, SUDPIntegrationMixin

SERVER = ("127.0.0.1", 9000)
CLIENT = ("127.0.0.1", 40000)
CHEAP = Gossip6Config(difficulty=3, scryptN=16)
NOW = 1_764_500_000.0

SERVER_ID = RSAIdentity.generate(2048)
CLIENT_ID = RSAIdentity.generate(2048)


class Pair:
    """
    A gossip6 server and client engine joined in memory; proofs are solved
    when L{pump} finds them, unless L{hold} keeps them back.
    """

    def __init__(self, config=None, serverConfig=Config(), clientConfig=Config()):
        config = config or CHEAP
        self.now = NOW
        self.server = gossip6ServerEngine(SERVER_ID, [CLIENT_ID.publicKey], replace(serverConfig),
                                          replace(config, localAddresses=(SERVER,)))
        self.client = gossip6ClientEngine(CLIENT_ID, [SERVER_ID.publicKey], SERVER, replace(clientConfig),
                                          replace(config, localAddresses=(CLIENT,)))
        self.hold = False
        self.held = []
        self.events = {"server": [], "client": []}

    def _proofs(self, engine):
        keep = []
        for e in engine.events:
            if type(e) is WorkNeeded:
                if self.hold:
                    self.held.append((engine, e.job))
                else:
                    e.job.run()
                    engine.workDone(e.job, self.now)
            else:
                keep.append(e)
        engine.events = keep

    def pump(self):
        for _ in range(20):
            moved = False
            for name, engine in (("client", self.client), ("server", self.server)):
                self._proofs(engine)
                self.events[name] += engine.events
                engine.events = []
            out, self.client.outbox = self.client.outbox, []
            for data, _ in out:
                moved = True
                self.server.receiveDatagram(data, CLIENT, self.now)
            out, self.server.outbox = self.server.outbox, []
            for data, _ in out:
                moved = True
                self.client.receiveDatagram(data, SERVER, self.now)
            if not moved and not any(e.events for e in (self.client, self.server)):
                return

    def advance(self, seconds):
        self.now += seconds
        self.client.onTimer(self.now)
        self.server.onTimer(self.now)
        self.pump()

    def messages(self, name):
        return [e.message for e in self.events[name] if type(e) is MessageReceived]


class EngineTests(unittest.TestCase):
    def test_handshakeAndMessages(self):
        """
        Both sides prove and sign; the session opens with each side holding
        the other's RSA key as its peer key, and messages flow both ways
        over AES-256-GCM.
        """
        pair = Pair()
        pair.client.start(pair.now)
        pair.pump()
        self.assertEqual(pair.client.state, ClientState.ESTABLISHED)
        [opened] = [e for e in pair.events["server"] if type(e) is SessionOpened]
        session = opened.session
        self.assertEqual(session.peerKey, CLIENT_ID.publicKey)
        self.assertEqual(pair.client.session.peerKey, SERVER_ID.publicKey)
        self.assertEqual(session.suite.name, "aes-256-gcm")
        pair.client.sendMessage(pair.client.session, b"from alice", pair.now)
        pair.server.sendMessage(session, b"from bob", pair.now)
        pair.pump()
        self.assertEqual(pair.messages("server"), [b"from alice"])
        self.assertEqual(pair.messages("client"), [b"from bob"])
        self.assertEqual(pair.server.stats()["proofs-started"], 1)
        self.assertEqual(pair.server.drops, {})
        self.assertEqual(pair.client.drops, {})

    def test_rekeysSignedWithRSA(self):
        """
        Rekeys by count work in gossip6 sessions: the server's
        REKEY_RESPONSE carries an RSA-PSS signature (420 bytes of record),
        the client verifies it with the server's RSA key, and no message is
        lost or repeated across five rekeys.
        """
        config = Config(rekeyAfterMessages=20)
        pair = Pair(serverConfig=config, clientConfig=config)
        pair.client.start(pair.now)
        pair.pump()
        sent = []
        for i in range(110):
            sent.append(b"m%d" % i)
            pair.client.sendMessage(pair.client.session, sent[-1], pair.now)
            pair.pump()
        self.assertEqual(pair.messages("server"), sent)
        self.assertGreaterEqual(pair.client.session.stats["rekeys"], 5)
        self.assertEqual(pair.client.drops, {})

    def test_forgedRekeyResponseRefused(self):
        """
        A REKEY_RESPONSE whose RSA signature does not verify closes the
        client's session (bad-rekey-signature), as in sudp/1.
        """
        pair = Pair()
        pair.client.start(pair.now)
        pair.pump()
        session = pair.client.session
        original = SERVER_ID.sign
        self.patch(SERVER_ID, "sign", lambda data: bytes(len(original(data))))
        session._startRekey(pair.now)
        pair.pump()
        self.assertEqual(pair.client.drops["bad-rekey-signature"], 1)
        self.assertEqual(session.state, "closed")

    def test_clientAuthRefused(self):
        """
        A gossip6 client whose CONFIRM also carries a CLIENT_AUTH record (an
        Ed25519 key and a valid signature of the transcript) cannot replace
        its verified RSA identity: the server refuses the session
        (not-authorized). On the landed code the session opened with the
        Ed25519 key as the client's identity.
        """
        pair = Pair()
        other = Identity.generate()
        confirming = pair.client._confirming

        def withProof(opening, now):
            proof = R.encodeRecord(R.CLIENT_AUTH, clientProof(other, opening.keys.transcript))
            opening.confirm = proof + opening.confirm
            return confirming(opening, now)

        pair.client._confirming = withProof
        pair.client.start(pair.now)
        pair.pump()
        self.assertEqual([e for e in pair.events["server"] if type(e) is SessionOpened], [])
        [refused] = [e for e in pair.events["server"] if type(e) is ClientRefused]
        self.assertIn("not-authorized", refused.reason)
        [failure] = [e for e in pair.events["client"] if type(e) is HandshakeFailure]
        self.assertIsInstance(failure.error, ClientNotAuthorized)

    def test_rekeysRateLimited(self):
        """
        A client that rekeys as fast as the server answers gets at most
        rekeyBurst + rekeysPerSecond x time RSA signatures (on the landed
        code, one for every request: 40 in 2 s here).
        """
        pair = Pair()
        pair.client.start(pair.now)
        pair.pump()
        signatures = []
        original = SERVER_ID.sign
        self.patch(SERVER_ID, "sign", lambda data: signatures.append(1) or original(data))
        session = pair.client.session
        start = pair.now
        for _ in range(40):
            if session.rekey is None:
                session._startRekey(pair.now)
            pair.pump()
            pair.advance(0.05)
        config = Config()
        self.assertLessEqual(len(signatures), config.rekeyBurst + config.rekeysPerSecond * (pair.now - start) + 1)
        self.assertGreater(pair.server.drops["rekey-rate-limited"], 0)
        self.assertEqual(session.state, "open")

    def serverSolving(self, pair):
        """
        Run the handshake up to the server's proof, and hold that proof.

        @return: the server's L{ProofJob}.
        """
        pair.hold = True
        pair.client.start(pair.now)
        pair.pump()
        [(engine, job)] = pair.held
        self.assertIs(engine, pair.client)
        job.run()
        pair.client.workDone(job, pair.now)
        pair.held = []
        pair.pump()
        [(engine, job)] = pair.held
        self.assertIs(engine, pair.server)
        self.assertEqual(pair.server.stats()["pending"], 1)
        return job

    def test_retransmissionWhileSolving(self):
        """
        While the server is proving its answer, the client's retransmitted
        G6_INIT is counted (init-while-solving), costs no new work and is
        not dropped; the one answer then opens the session.
        """
        pair = Pair()
        job = self.serverSolving(pair)
        pair.advance(0.6)  # the client retransmits its INIT
        self.assertEqual(pair.server.counters["init-while-solving"], 1)
        self.assertEqual(pair.server.counters["proofs-started"], 1)
        self.assertEqual(pair.server.drops, {})
        pair.hold = False
        job.run()
        pair.server.workDone(job, pair.now)
        pair.pump()
        self.assertEqual(pair.client.state, ClientState.ESTABLISHED)
        self.assertEqual(pair.server.stats()["sessions"], 1)

    def test_solvingExpires(self):
        """
        A server proof not ready within handshakeTimeout ends that handshake
        (handshake-expired), frees its pending slot and is cancelled; a late
        workDone does nothing.
        """
        pair = Pair(serverConfig=Config(handshakeTimeout=2))
        job = self.serverSolving(pair)
        pair.now += 2.5
        pair.server.onTimer(pair.now)
        self.assertEqual(pair.server.stats()["pending"], 0)
        self.assertEqual(pair.server.drops["handshake-expired"], 1)
        self.assertTrue(job.cancelled)
        pair.server.workDone(job, pair.now)
        self.assertEqual(pair.server.outbox, [])
        self.assertEqual(pair.server.sessions, {})
        self.assertEqual(pair.server.byEphemeral, {})

    def test_shutdownCancelsProofs(self):
        """
        Shutting the server down cancels the proofs it is making and frees
        their slots.
        """
        pair = Pair()
        job = self.serverSolving(pair)
        pair.server.shutdown(pair.now)
        self.assertTrue(job.cancelled)
        self.assertEqual(pair.server.stats()["pending"], 0)
        self.assertEqual(pair.server.byEphemeral, {})


class ConfigurationTests(unittest.TestCase):
    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.key = os.path.join(self.dir, "rsa.key")
        saveRSAIdentity(SERVER_ID, self.key)
        self.trusted = os.path.join(self.dir, "trusted")
        with open(self.trusted, "w") as f:
            f.write(CLIENT_ID.publicKey.toText() + " a client\n")

    def test_errorsAtParseTime(self):
        """
        gossip6 misconfigurations are ConfigurationErrors when the string is
        parsed: no trusted keys, authorizedKeys or suites with gossip6, an
        unknown handshake, bad values, an Ed25519 key where an RSA one is
        needed.
        """
        base = f"sudp:9000:key={self.key}:handshake=gossip6"
        for bad in (base, base + f":trustedKeys={self.trusted}:authorizedKeys={self.trusted}",
                    base + f":trustedKeys={self.trusted}:suites=aes-256-gcm",
                    f"sudp:9000:key={self.key}:handshake=noise",
                    base + f":trustedKeys={self.trusted}:difficulty=40",
                    base + f":trustedKeys={self.trusted}:scryptN=1000",
                    base + f":trustedKeys={self.trusted}:tMax=-1",
                    base + f":trustedKeys={self.trusted}:localAddresses=nowhere",
                    f"sframe:key={self.key}:handshake=gossip6:endpoint=tcp\\:0"):
            self.assertRaises(ConfigurationError, serverFromString, reactor, bad)
        from sudp.errors import KeyFileError
        from sudp.keys import Identity, saveIdentity

        edKey = os.path.join(self.dir, "ed.key")
        saveIdentity(Identity.generate(), edKey)
        self.assertRaises(KeyFileError, serverFromString, reactor,
                          f"sudp:9000:key={edKey}:handshake=gossip6:trustedKeys={self.trusted}")
        client = f"sudp:host=127.0.0.1:port=9:handshake=gossip6:trustedKeys={self.trusted}"
        self.assertRaises(ConfigurationError, clientFromString, reactor, client)  # no key=

    def test_options(self):
        """
        Every gossip6 option reaches the config; serverKey=rsa-... on a
        client is trusted alone.
        """
        endpoint = serverFromString(
            reactor, f"sudp:9000:key={self.key}:handshake=gossip6:trustedKeys={self.trusted}:tMax=30:"
                     "clockSkew=2:scryptN=2048:scryptR=4:scryptP=2:difficulty=9:maxReuseRecords=100:"
                     "localAddresses=203.0.113.5\\:9000,[2001\\:db8\\:\\:1]\\:9000")
        config = endpoint._handshake.config
        self.assertEqual((config.tMax, config.clockSkew, config.scryptN, config.scryptR, config.scryptP,
                          config.difficulty, config.maxReuseRecords),
                         (30.0, 2.0, 2048, 4, 2, 9, 100))
        self.assertEqual(config.localAddresses, (("203.0.113.5", 9000), ("2001:db8::1", 9000)))
        self.assertEqual(endpoint._handshake.trustedKeys, (CLIENT_ID.publicKey,))
        client = clientFromString(
            reactor, f"sudp:host=127.0.0.1:port=9:handshake=gossip6:key={self.key}:"
                     f"serverKey={SERVER_ID.publicKey.toText()}")
        self.assertEqual(client._handshake.trustedKeys, (SERVER_ID.publicKey,))

    def test_parseLocalAddresses(self):
        """
        localAddresses are IP:PORT pairs, IPv6 in brackets; anything else is refused.
        """
        self.assertEqual(parseLocalAddresses("1.2.3.4:5, [::1]:6"), (("1.2.3.4", 5), ("::1", 6)))
        for bad in ("1.2.3.4", "host:5", "1.2.3.4:0", "1.2.3.4:70000", "[::1]"):
            self.assertRaises(ConfigurationError, parseLocalAddresses, bad)


class TwistGossip6Tests(SUDPIntegrationMixin, unittest.TestCase):
    """
    `twist sudp --handshake gossip6`.
    """

    timeout = 60
    env = test_udp_integration.CommandLineTests.env
    twistSudp = test_udp_integration.CommandLineTests.twistSudp

    @defer.inlineCallbacks
    def test_twistGossip6(self):
        """
        twist sudp --handshake gossip6 creates an RSA server key, serves a
        client whose key is in --trusted-keys (over UDP and over sframe with
        --listen), and prints client strings to fill in with the client's key.
        """
        clientKey = os.path.join(self.dir, "client_rsa.key")
        saveRSAIdentity(CLIENT_ID, clientKey)
        trusted = os.path.join(self.dir, "clients.txt")
        with open(trusted, "w") as f:
            f.write(CLIENT_ID.publicKey.toText() + "\n")
        serverKey = os.path.join(self.dir, "server_rsa.key")
        # the sframe line comes last: wait for it, the UDP one is printed before
        out, sframe = yield self.twistSudp(
            serverKey, "sframe:handshake=gossip6", "--handshake", "gossip6", "--trusted-keys", trusted,
            "--difficulty", "3", "--listen", "sframe:endpoint=tcp\\:0\\:interface=127.0.0.1")
        self.assertIn("created server key", out)
        [udp] = [ln[ln.index("sudp:host="):].strip() for ln in out.splitlines() if "sudp:host=" in ln]
        self.assertIn(":handshake=gossip6:key=CLIENT_RSA.key:serverKey=rsa-", udp)
        for endpoint in (udp, sframe):
            client = yield clientFromString(
                reactor, endpoint.replace("CLIENT_RSA.key", clientKey) + ":difficulty=3").connect(RecorderFactory())
            client.transport.write(b"ping")
            self.assertEqual((yield client.waitFor(1)), [b"ping"])
            self.assertEqual(client.transport.peerPublicKey.toText(), udp.rpartition("serverKey=")[2])
            client.transport.loseConnection()

