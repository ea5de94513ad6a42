# -*- test-case-name: sudp_test.gossip6.test_udp -*-
"""
Tests for L{sudp.gossip6.udp}.
"""

import random
from dataclasses import replace

from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from sudp.errors import ClientNotAuthorized
from sudp.gossip6 import checks as checks_
from sudp.gossip6.config import Gossip6Config
from sudp.gossip6.handshake import Gossip6Handshake
from sudp.gossip6.udp import gossip6ClientEngine, Gossip6Refused, gossip6ServerEngine
from sudp.gossip6.wire import Gossip6Init, Gossip6Resp, Signed
from sudp.keys import Identity
from sudp.udp import packets as P, records as R
from sudp.udp.client import ClientState, CONFIRM_SENT, FAILED
from sudp.udp.config import Config
from sudp.udp.events import ClientRefused, HandshakeFailure, MessageReceived, SessionOpened
from sudp.udp.handshake import clientProof
from sudp.udp.server import ServerEngine
from sudp.work import WorkNeeded

from sudp_test.enginehelpers import (
    CLIENT_ADDR as C,
    clientState,
    dropsDuring,
    SERVER_ADDR as S,
    serverState,
    START,
    takeOutbox,
)
from sudp_test.gossip6.helpers import (
    C2,
    C3,
    CLIENT_ID,
    COOKIE_SECRET,
    FUZZ,
    G,
    KEYS,
    REFUSALS,
    RESP_INDEX,
    RulesMixin,
    SERVER_ID,
    SUITES,
    T0,
    _Genuine,
    clientAwaitingResp,
    initFor,
    mutations,
    respFor,
    solved,
    udpServer,
)

SERVER = ("127.0.0.1", 9000)

CLIENT = ("127.0.0.1", 40000)

CHEAP = Gossip6Config(difficulty=3, scryptN=16)

NOW = 1_764_500_000.0

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

class UDPServerRuleTests(RulesMixin, unittest.TestCase):
    """
    The rules on the UDP server engine (G6_INIT behind a valid cookie), and
    the reuse record.
    """

    ours = S

    @property
    def sender(self):
        return KEYS.client

    def assertServerRefuses(self, server, datagram, reason, addr=C, now=START, pending=0):
        """
        Hand C{datagram} to C{server}: exactly C{reason} is counted, nothing
        sent or reported, no state kept (sessions, pending handshakes,
        timers, counters). The reuse record gains nothing, except for a
        bad signature: a proof found valid is recorded before the signature
        is checked, so that it is never evaluated twice (checks.checkSigned).
        """
        digest = checks_.messageDigest(Gossip6Init.decode(datagram).signed)
        recorded = server.handshake.reuse.seen(digest, now)
        before = serverState(server), len(server.handshake.reuse), list(server.events)
        drops = dropsDuring(server, lambda: server.receiveDatagram(datagram, addr, now))
        self.assertEqual(drops, {reason: 1})
        self.assertEqual(takeOutbox(server), [])
        added = server.events[len(before[2]):]
        if reason in REFUSALS:  # a gossip6 refusal of a cookie-proven client is reported, for the log
            self.assertEqual([(type(e), e.addr, e.reason) for e in added], [(ClientRefused, addr, reason)])
        else:
            self.assertEqual(added, [])
        self.assertEqual(server.events[:len(before[2])], before[2])
        self.assertEqual(serverState(server), before[0])
        proofRecorded = reason == "bad-signature"  # remembered apart, not in the record
        self.assertEqual(len(server.handshake.reuse), before[1])
        self.assertEqual(server.handshake.reuse.seen(digest, now), recorded or proofRecorded)
        self.assertEqual(server.pendingCount, pending)

    def refuse(self, signed, reason, now=START, local=(S,)):
        server = udpServer(local)
        self.assertServerRefuses(server, initFor(server, signed, C, now), reason, C, now)
        # a valid proof with a bad signature is remembered apart, never in the record
        self.assertEqual((server.sessions, server.byEphemeral, len(server.handshake.reuse), server.handshake.reuse.failedCount()),
                         ({}, {}, 0, int(reason == "bad-signature")))

    def accept(self, signed, now=START, local=(S,), server=None, addr=C, complete=True):
        """
        C{signed} in a G6_INIT is accepted: the server asks for its own
        proof, holds one pending handshake and records the proof; with
        C{complete}, its G6_RESP names C{addr} and passes the client's rules.

        @return: the server.
        """
        server = server or udpServer(local)
        pending = server.pendingCount
        drops = dropsDuring(server, lambda: server.receiveDatagram(initFor(server, signed, addr, now), addr, now))
        self.assertEqual(drops, {})
        [event] = [e for e in server.events if not isinstance(e, ClientRefused)]  # earlier refusals aside
        server.events = []
        self.assertIsInstance(event, WorkNeeded)
        self.assertEqual(server.pendingCount, pending + 1)
        self.assertTrue(server.handshake.reuse.seen(checks_.messageDigest(signed), now))
        self.assertLessEqual(len(server.handshake.reuse), server.handshake.gossip6.maxReuseRecords)
        if complete:
            event.job.run()
            server.workDone(event.job, now)
            [(resp, dst)] = takeOutbox(server)
            self.assertEqual(dst, addr)
            answer = Gossip6Resp.decode(resp).signed
            self.assertEqual(answer.message.peer, addr)
            self.assertEqual(checks_.checkSigned(answer, now, [addr], {KEYS.server.publicKey.der: KEYS.server.publicKey},
                                                 G), (None, KEYS.server.publicKey))
            self.assertEqual(server.pendingCount, pending + 1)
        return server

    def test_wildcardBindingNamesOnlyThisHost(self):
        """
        A server bound to every address (interface="", the default) answers
        to "any of this host's addresses" (Gossip6Config.localAddresses):
        it accepts m naming 127.0.0.1 with its port, and refuses m naming
        192.0.2.1 (TEST-NET-1, no address of this host) with its port as
        wrong-address -- else a message made for another host that listens
        on the same port is accepted here, which the address rule is for.
        """
        handshake = Gossip6Handshake([KEYS.client.publicKey], G)
        server = ServerEngine(KEYS.server, SUITES, handshake=handshake.datagramServer(KEYS.server))
        server.bound(("0.0.0.0", S[1]))
        self.assertEqual(server.handshake.localAddresses, (("0.0.0.0", S[1]),))
        self.accept(self.make(peer=("127.0.0.1", S[1])), server=server, complete=False)
        server = ServerEngine(KEYS.server, SUITES, handshake=handshake.datagramServer(KEYS.server))
        server.bound(("0.0.0.0", S[1]))
        self.assertServerRefuses(server, initFor(server, self.make(peer=("192.0.2.1", S[1]))), "wrong-address")

    def test_reusedProof(self):
        """
        The same m|s is accepted once. While its handshake lives, the same m
        from another address is no new handshake, before the gossip6 checks:
        with another sender index it is dropped (sudp/1's
        duplicate-ephemeral), with the same one it is taken for a
        retransmission (the pending RESP sent again, nothing new kept). Once
        that handshake is gone, the same m with a new cookie from a new
        address is refused as reused-proof.
        """
        signed = self.make()
        server = self.accept(signed)
        self.assertServerRefuses(server, initFor(server, signed, C2, START + 1, senderIndex=99), "duplicate-ephemeral",
                                 C2, START + 1, pending=1)
        sessions, records = dict(server.sessions), len(server.handshake.reuse)
        drops = dropsDuring(server, lambda: server.receiveDatagram(initFor(server, signed, C2, START + 1), C2, START + 1))
        self.assertEqual((drops, server.events, server.counters["resp-retransmitted"]), ({}, [], 1))
        [(resp, dst)] = takeOutbox(server)
        self.assertEqual((dst, Gossip6Resp.decode(resp).signed.message.peer), (C2, C))  # still names the first address
        self.assertEqual((server.sessions, len(server.handshake.reuse), server.pendingCount), (sessions, records, 1))
        later = START + server.config.handshakeTimeout + 1
        self.assertEqual(dropsDuring(server, lambda: server.onTimer(later)), {"handshake-expired": 1})
        self.assertEqual((server.pendingCount, server.sessions, server.byEphemeral), (0, {}, {}))
        self.assertServerRefuses(server, initFor(server, signed, C2, later), "reused-proof", C2, later)
        self.assertServerRefuses(server, initFor(server, signed, C, later), "reused-proof", C, later)

    def test_reusedProofAfterTMaxIsStale(self):
        """
        After tMax the same m is refused as stale-timestamp, and its record
        is forgotten (the next fresh handshake leaves one record).
        """
        signed = self.make()
        server = self.accept(signed)
        later = START + G.tMax + 1
        server.onTimer(later)
        self.assertServerRefuses(server, initFor(server, signed, C2, later), "stale-timestamp", C2, later)
        self.accept(self.make(int(later)), later, server=server, complete=False)
        self.assertEqual(len(server.handshake.reuse), 1)

    def test_badSignaturesCannotFillTheRecord(self):
        """
        Valid proofs under a trusted key's name with bad signatures (anyone
        who knows the public key can make them) take no room in the record
        of accepted proofs: with maxReuseRecords=2 and four of them refused,
        a genuine client is still accepted (on the landed code it was
        refused as reuse-record-full). A replay of a refused one is refused
        without evaluating its proof again.
        """
        server = udpServer(gossip6=replace(G, maxReuseRecords=2))
        forged = []
        for i in range(4):
            genuine = solved(KEYS.client, S)
            forged.append(Signed(genuine.message, genuine.raw, KEYS.other.sign(genuine.raw)))
            self.assertServerRefuses(server, initFor(server, forged[-1], ("127.0.0.9", 41000 + i)),
                                     "bad-signature", ("127.0.0.9", 41000 + i))
        self.assertEqual((len(server.handshake.reuse), server.handshake.reuse.failedCount()), (0, 2))
        self.assertServerRefuses(server, initFor(server, forged[-1], C2), "reused-proof", C2)
        self.accept(self.make(), server=server, complete=False)

    def test_reuseRecordFull(self):
        """
        With maxReuseRecords=3, three fresh handshakes are accepted and the
        fourth, while all three records are fresh, is refused as
        reuse-record-full; once they expire, a new one is accepted.
        """
        server = udpServer(gossip6=replace(G, maxReuseRecords=3))
        for i in range(3):
            self.accept(self.make(), server=server, addr=("127.0.0.1", 41000 + i), complete=False)
        self.assertServerRefuses(server, initFor(server, self.make(), C2), "reuse-record-full", C2, pending=3)
        later = START + G.tMax + 1
        server.onTimer(later)
        self.assertEqual(server.pendingCount, 0)
        self.accept(self.make(int(later)), later, server=server, complete=False)
        self.assertEqual(len(server.handshake.reuse), 1)

    def test_reuseRecordBounded(self):
        """
        Ten rounds of maxReuseRecords handshakes, tMax apart: the record
        never holds more than its bound (memory does not grow).
        """
        bound = 4
        server = udpServer(gossip6=replace(G, maxReuseRecords=bound))
        for round_ in range(10):
            now = START + round_ * (G.tMax + 1)
            server.onTimer(now)
            for i in range(bound):
                self.accept(self.make(int(now)), now, server=server, addr=("127.0.0.1", 41000 + i), complete=False)
            self.assertLessEqual(len(server.handshake.reuse), bound)
            self.assertLessEqual(len(server.handshake.reuse._heap), bound)
            self.assertLessEqual(len(server.handshake.reuse._expires), bound)

    def test_reuseRecordFreesExpiredRecords(self):
        """
        Records are forgotten when they expire, whatever the order they
        were made in: with maxReuseRecords=2, a record of a message 59 s old
        (expiring in 1 s) made after one of a message made now, has expired
        2 s later, so a new handshake then fits (not reuse-record-full).
        """
        server = udpServer(gossip6=replace(G, maxReuseRecords=2))
        self.accept(self.make(T0), server=server, complete=False)
        self.accept(self.make(T0 - 59), server=server, addr=C2, complete=False)
        later = START + 2
        self.accept(self.make(int(later)), later, server=server, addr=C3, complete=False)

class UDPClientRuleTests(RulesMixin, unittest.TestCase):
    """
    The rules the seed gives Alice, on the UDP client engine (the server's
    m'|s' in a G6_RESP answering the client's INIT). No reuse rule: the
    seed gives it to the server only.
    """

    ours = C

    @property
    def sender(self):
        return KEYS.server

    def refuse(self, signed, reason, now=START, local=(C,)):
        client, init = clientAwaitingResp(local)
        drops = dropsDuring(client, lambda: client.receiveDatagram(respFor(init, signed), S, now))
        self.assertEqual(drops, {reason: 1})
        [event] = client.events
        self.assertIsInstance(event, HandshakeFailure)
        self.assertIsInstance(event.error, Gossip6Refused)
        self.assertEqual(event.error.reason, reason)
        self.assertEqual((client.state, client.session, takeOutbox(client)), (FAILED, None, []))
        self.assertIsNone(client.nextDeadline())

    def accept(self, signed, now=START, local=(C,)):
        client, init = clientAwaitingResp(local)
        drops = dropsDuring(client, lambda: client.receiveDatagram(respFor(init, signed), S, now))
        self.assertEqual(drops, {})
        self.assertEqual(client.events, [])
        self.assertEqual(client.state, CONFIRM_SENT)
        self.assertEqual(client.session.peerKey, KEYS.server.publicKey)
        self.assertEqual(len(takeOutbox(client)), 1)  # the CONFIRM

    def test_unexpectedIndex(self):
        """
        A G6_RESP for another receiver index is dropped as unexpected-resp
        before any gossip6 check, and the handshake goes on.
        """
        client, init = clientAwaitingResp()
        before = clientState(client)
        resp = Gossip6Resp(init.senderIndex ^ 1, RESP_INDEX, self.make()).encode()
        self.assertEqual(dropsDuring(client, lambda: client.receiveDatagram(resp, S, START)), {"unexpected-resp": 1})
        self.assertEqual((clientState(client), client.events), (before, []))

FEW = settings(FUZZ, max_examples=60)

HEADER = 25  # G6_INIT: type, sender index, cookie timestamp, cookie

class EngineFuzzTests(unittest.TestCase):
    """
    The engines on arbitrary and mutated handshake datagrams: nothing
    raised, nothing kept for anything but the genuine m|s.
    """

    def server(self):
        return udpServer(cookieSecret=COOKIE_SECRET)

    def assertNoState(self, server, datagram):
        """
        Nothing kept, nothing reported; one drop counted (or, for a datagram
        whose first byte became HELLO's, one stateless COOKIE sent). The one
        exception is a genuine m with a bad signature: its valid proof is
        remembered apart from the record of accepted proofs (not evaluated
        twice while remembered), and nothing else.
        """
        failed = int(server.drops.get("bad-signature", 0) == 1)
        self.assertEqual((server.sessions, server.byEphemeral, server.pendingCount, len(server.handshake.reuse),
                          server.handshake.reuse.failedCount()),
                         ({}, {}, 0, 0, failed), datagram[:64].hex())
        # nothing reported but the refusal of a cookie-proven client, for the log
        self.assertEqual([e for e in server.events if not isinstance(e, ClientRefused)], [])
        self.assertLessEqual(len(server.events), 1)
        if datagram[:1] == bytes([P.HELLO]):
            self.assertEqual(len(server.outbox) + sum(server.drops.values()), 1, dict(server.drops))
        else:
            self.assertEqual(server.outbox, [])
            self.assertEqual(sum(server.drops.values()), 1, dict(server.drops))

    @FUZZ
    @given(st.binary(max_size=1400))
    def test_serverArbitraryInit(self, body):
        """
        A G6_INIT with a valid cookie and arbitrary bytes after it: dropped,
        one reason counted, nothing raised, no state.
        """
        server = self.server()
        datagram = _Genuine.get()["engineInit"][:HEADER] + body
        server.receiveDatagram(datagram, C, START)
        self.assertNoState(server, datagram)

    @FUZZ
    @given(st.data())
    def test_serverMutatedInit(self, data):
        """
        Mutations of a genuine G6_INIT (valid cookie): nothing raised; unless
        the m|s is byte for byte the genuine one, dropped with one reason
        and no state kept.
        """
        genuine = _Genuine.get()["engineInit"]
        datagram = data.draw(mutations([genuine]))
        server = self.server()
        server.receiveDatagram(datagram, C, START)
        if datagram[HEADER:] != genuine[HEADER:]:
            self.assertNoState(server, datagram)

    def client(self):
        """
        A client waiting for its G6_RESP, its randomness fixed (so its
        receiver index is the same every time), and the genuine G6_RESP.
        """
        client, init = clientAwaitingResp(random_=random.Random(4).randbytes)
        genuine = _EngineResp.get(init)
        return client, genuine

    def assertClientSafe(self, client, datagram, genuine, before):
        """
        A RESP that did not decode or was for another index changed nothing;
        one that broke a rule failed the handshake with Gossip6Refused and
        kept no session; only the genuine m|s may be accepted.
        """
        if client.state == FAILED:
            [event] = client.events
            self.assertIsInstance(event.error, Gossip6Refused)
            self.assertEqual(dict(client.drops), {event.error.reason: 1})
            self.assertIsNone(client.session)
        elif client.state == CONFIRM_SENT:
            self.assertEqual(datagram[9:], genuine[9:])
        else:
            self.assertEqual(sum(client.drops.values()), 1, dict(client.drops))
            self.assertEqual((clientState(client), client.events, client.outbox), (before, [], []))

    @FEW
    @given(st.binary(max_size=1400))
    def test_clientArbitraryResp(self, body):
        """
        A G6_RESP for the client's index with arbitrary bytes after it:
        nothing raised; dropped unchanged, or refused with no session.
        """
        client, genuine = self.client()
        before = clientState(client)
        datagram = genuine[:9] + body
        client.receiveDatagram(datagram, S, START)
        self.assertClientSafe(client, datagram, genuine, before)
        self.assertNotEqual(client.state, CONFIRM_SENT)

    @FEW
    @given(st.data())
    def test_clientMutatedResp(self, data):
        """
        Mutations of the genuine G6_RESP: nothing raised; dropped unchanged,
        refused with no session, or (only for the genuine m|s) accepted.
        """
        client, genuine = self.client()
        before = clientState(client)
        datagram = data.draw(mutations([genuine]))
        client.receiveDatagram(datagram, S, START)
        self.assertClientSafe(client, datagram, genuine, before)

class _EngineResp:
    _made = {}

    @classmethod
    def get(cls, init):
        if init.senderIndex not in cls._made:
            cls._made[init.senderIndex] = respFor(init, solved(KEYS.server, C))
        return cls._made[init.senderIndex]
