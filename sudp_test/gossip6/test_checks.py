# -*- test-case-name: sudp_test.gossip6.test_checks -*-
"""
Tests for L{sudp.gossip6.checks}.

gossip6 (seed 004) against bad handshake messages: every discard rule of the
seed enforced on the server (the UDP engine and the sframe key exchange) and,
where the seed gives the rule to Alice too, on the client, each with the
exact reason and no state kept; the order of the checks, shown by counting
scrypt evaluations and RSA operations (cheap rules first, the UDP handshake
behind the stateless cookie, rate and pending limits before any scrypt);
the cost figures of benchmarks/bench_gossip6.py; property tests of every
gossip6 decoder and of both engines; and the endpoints over real sockets on
127.0.0.1 (trusted and untrusted clients, a server behind "NAT").

Proofs are cheap here (difficulty 4, scrypt N=64) except in one
integration test at the default parameters.
"""

from collections import Counter
from dataclasses import replace

from twisted.trial import unittest

from sudp.gossip6 import checks as checks_, proof as proof_, stream as stream_, udp as udp_
from sudp.gossip6.udp import Gossip6Refused
from sudp.gossip6.wire import encodeStreamMessage, G6_INIT, Gossip6Init, Signed
from sudp.rsaidentity import RSAIdentity
from sudp.rsakeys import RSAPublicKey
from sudp.stream.handshake import framed

from sudp_test.enginehelpers import (
    CLIENT_ADDR as C,
    dropsDuring,
    getCookie,
    SERVER_ADDR as S,
    START,
    takeOutbox,
)
from sudp_test.gossip6.helpers import (
    C2,
    C3,
    G,
    KEYS,
    SUITES,
    T0,
    clientAwaitingResp,
    initFor,
    rebuilt,
    respFor,
    solved,
    streamServer,
    tamperedNonce,
    udpServer,
    weak,
)

class CheckOrderTests(unittest.TestCase):
    """
    What each refusal costs, counted: scrypt evaluations
    (L{sudp.gossip6.proof.proofValue}), proof checks (C{meetsTarget}), RSA
    verifications and signatures, and calls of the gossip6 checks at all.
    """

    def setUp(self):
        self.counts = Counter()
        counts = self.counts

        def counted(name, real):
            def wrapper(*args, **kwargs):
                counts[name] += 1
                return real(*args, **kwargs)
            return wrapper

        self.patch(proof_, "proofValue", counted("scrypt", proof_.proofValue))
        self.patch(checks_, "meetsTarget", counted("proofCheck", checks_.meetsTarget))
        self.patch(RSAPublicKey, "verify", counted("verify", RSAPublicKey.verify))
        self.patch(RSAPublicKey, "verifyDigest", counted("verify", RSAPublicKey.verifyDigest))
        self.patch(RSAIdentity, "sign", counted("sign", RSAIdentity.sign))
        self.patch(udp_, "checkSigned", counted("checks", udp_.checkSigned))
        self.patch(stream_, "checkSigned", counted("checks", stream_.checkSigned))

    def cost(self, server, datagram, reason, addr=C, now=START):
        """
        @return: the operations C{server} spent refusing C{datagram} as C{reason}.
        """
        self.counts.clear()
        drops = dropsDuring(server, lambda: server.receiveDatagram(datagram, addr, now))
        self.assertEqual(drops, {reason: 1})
        self.assertEqual(takeOutbox(server), [])
        return {k: v for k, v in self.counts.items() if v}

    def test_sizeCostsNothing(self):
        """
        A G6_INIT refused by its sizes (truncated m|s, a bad signature length,
        an oversized datagram) never reaches the gossip6 checks.
        """
        server = udpServer()
        good = initFor(server, solved(KEYS.client, S))
        badLength = bytearray(good)
        sigLengthAt = 25 + 2 + (good[25] << 8 | good[26])
        badLength[sigLengthAt:sigLengthAt + 2] = (100).to_bytes(2, "big")
        for datagram, reason in ((good[:-1], "truncated"), (good + b"\0", "oversized"),
                                 (bytes(badLength), "bad-field"), (good + bytes(1500), "oversized")):
            self.assertEqual(self.cost(server, datagram, reason), {})

    def test_freshnessCostsNoScryptNoRSA(self):
        """
        A stale or future T is refused without a scrypt evaluation or an RSA verify.
        """
        server = udpServer()
        for timestamp, reason in ((T0 - 61, "stale-timestamp"), (T0 + 6, "future-timestamp")):
            datagram = initFor(server, solved(KEYS.client, S, timestamp))
            self.assertEqual(self.cost(server, datagram, reason), {"checks": 1})

    def test_addressCostsNoScryptNoRSA(self):
        """
        m naming another address is refused without scrypt or RSA.
        """
        server = udpServer()
        datagram = initFor(server, solved(KEYS.client, ("127.0.0.2", S[1])))
        self.assertEqual(self.cost(server, datagram, "wrong-address"), {"checks": 1})

    def test_reuseCostsNoScryptNoRSA(self):
        """
        A reused proof, and any message while the record is full, are
        refused without scrypt or RSA.
        """
        server = udpServer(gossip6=replace(G, maxReuseRecords=1))
        signed = solved(KEYS.client, S)
        server.receiveDatagram(initFor(server, signed), C, START)
        [event] = server.events
        server.events = []
        event.job.cancel()
        server.workFailed(event.job, START)  # the handshake gone, its record kept
        self.assertEqual(server.pendingCount, 0)
        self.assertEqual(self.cost(server, initFor(server, signed, C2), "reused-proof", C2), {"checks": 1})
        fresh = initFor(server, solved(KEYS.client, S), C2)
        self.assertEqual(self.cost(server, fresh, "reuse-record-full", C2), {"checks": 1})

    def test_trustCostsNoScryptNoRSA(self):
        """
        A message by an untrusted key (with a valid proof and signature) is
        refused without scrypt or RSA.
        """
        server = udpServer()
        datagram = initFor(server, solved(KEYS.stranger, S))
        self.assertEqual(self.cost(server, datagram, "untrusted-key"), {"checks": 1})

    def test_weakProofCostsOneScrypt(self):
        """
        A weak proof costs the server one scrypt evaluation and no RSA verify.
        """
        server = udpServer()
        datagram = initFor(server, weak(KEYS.client, S))
        self.assertEqual(self.cost(server, datagram, "weak-proof"), {"checks": 1, "proofCheck": 1, "scrypt": 1})

    def test_badSignatureCostsOneScryptOneVerify(self):
        """
        A valid proof with a bad signature costs one scrypt and one RSA verify.
        """
        server = udpServer()
        genuine = solved(KEYS.client, S)
        datagram = initFor(server, Signed(genuine.message, genuine.raw, KEYS.other.sign(genuine.raw)))
        self.assertEqual(self.cost(server, datagram, "bad-signature"),
                         {"checks": 1, "proofCheck": 1, "scrypt": 1, "verify": 1})

    def test_acceptedCost(self):
        """
        An accepted INIT costs one scrypt and one RSA verify on receipt; the
        server's own proof costs its attempts in scrypt and one RSA sign.
        """
        server = udpServer()
        datagram = initFor(server, solved(KEYS.client, S))
        self.counts.clear()
        server.receiveDatagram(datagram, C, START)
        self.assertEqual(dict(self.counts), {"checks": 1, "proofCheck": 1, "scrypt": 1, "verify": 1})
        [event] = server.events
        self.counts.clear()
        event.job.run()
        server.workDone(event.job, START)
        self.assertEqual(dict(self.counts), {"scrypt": event.job.attempts, "sign": 1})
        self.assertEqual(server.counters["proof-attempts"], event.job.attempts)

    def test_badCookieCostsNothing(self):
        """
        A G6_INIT with a genuine m|s but a bad cookie (zeros, another
        address's, or expired) never reaches the gossip6 checks: no SHA3,
        no scrypt, no RSA, no record.
        """
        server = udpServer()
        signed = solved(KEYS.client, S)
        timestamp, cookie = getCookie(server, C, START)
        cases = [
            (Gossip6Init(1, timestamp, bytes(16), signed).encode(), C, START, "bad-cookie"),
            (Gossip6Init(1, timestamp, cookie, signed).encode(), C2, START, "bad-cookie"),
            (Gossip6Init(1, timestamp, cookie, signed).encode(), C, START + 1000, "expired-cookie"),
        ]
        for datagram, addr, now, reason in cases:
            self.assertEqual(self.cost(server, datagram, reason, addr, now), {})
        self.assertEqual((len(server.handshake.reuse), server.pendingCount), (0, 0))

    def test_rateLimitBeforeScrypt(self):
        """
        Beyond its handshake rate, a (cookie-proven) address's genuine INITs
        are refused as rate-limited before any gossip6 check.
        """
        server = udpServer(config=replace(SUITES, handshakesPerSecond=0.001, handshakeBurst=1))
        server.receiveDatagram(initFor(server, solved(KEYS.client, S)), C, START)
        self.assertEqual(server.pendingCount, 1)
        datagram = initFor(server, solved(KEYS.client, S), C2)  # same host, another port
        self.assertEqual(self.cost(server, datagram, "rate-limited", C2), {})

    def test_pendingLimitsBeforeScrypt(self):
        """
        With maxPendingHandshakes (then maxSessions) reached, a genuine INIT
        from another port of the same address (too-many-pending: that
        address holds as many slots as any, so fair eviction does not apply)
        or from another address (server-full) is refused before any gossip6
        check.
        """
        for config, reason, source in ((replace(SUITES, maxPendingHandshakes=1), "too-many-pending", C2),
                                       (replace(SUITES, maxSessions=1), "server-full", C3)):
            server = udpServer(config=config)
            server.receiveDatagram(initFor(server, solved(KEYS.client, S)), C, START)
            self.assertEqual(server.pendingCount, 1)
            datagram = initFor(server, solved(KEYS.client, S), source)
            self.assertEqual(self.cost(server, datagram, reason, source), {})
            self.assertEqual(server.pendingCount, 1)

    def test_fairEvictionOfSolving(self):
        """
        A handshake whose answer is being proven holds a slot like any
        pending one: a newcomer from a source holding two fewer slots takes
        the oldest (the proof is cancelled, counted as pending-evicted).
        """
        server = udpServer(config=replace(SUITES, maxPendingHandshakes=2))
        server.receiveDatagram(initFor(server, solved(KEYS.client, S)), C, START)
        server.receiveDatagram(initFor(server, solved(KEYS.client, S), C2), C2, START)
        first, second = server.events
        server.events = []
        server.receiveDatagram(initFor(server, solved(KEYS.client, S), C3), C3, START)
        self.assertEqual(server.drops["pending-evicted"], 1)
        self.assertEqual(server.pendingCount, 2)
        self.assertTrue(first.job.context.done)
        self.assertFalse(second.job.context.done)

    def test_firstBrokenRuleCounted(self):
        """
        A message breaking every rule is refused by the first in the order
        (freshness, address, reuse, trust, proof, signature); mending each in
        turn (a proof used before standing in for the reuse rule) reveals
        the next, and only at the proof does scrypt run, only
        at the signature RSA.
        """
        server = udpServer()
        stranger, client = KEYS.stranger, KEYS.client
        genuine = solved(client, S)
        used = solved(client, S)
        server.receiveDatagram(initFor(server, used), C, START)
        [event] = server.events
        server.events = []
        server.workFailed(event.job, START)  # that handshake gone, its proof recorded
        everything = rebuilt(weak(stranger, ("127.0.0.2", 1), T0 - 100), KEYS.other)
        steps = [
            (everything, "stale-timestamp", {"checks": 1}),
            (rebuilt(everything, KEYS.other, timestamp=T0), "wrong-address", {"checks": 1}),
            (used, "reused-proof", {"checks": 1}),
            (rebuilt(everything, KEYS.other, timestamp=T0, peer=S), "untrusted-key", {"checks": 1}),
            (tamperedNonce(genuine, KEYS.other), "weak-proof", {"checks": 1, "proofCheck": 1, "scrypt": 1}),
            (Signed(genuine.message, genuine.raw, KEYS.other.sign(genuine.raw)), "bad-signature",
             {"checks": 1, "proofCheck": 1, "scrypt": 1, "verify": 1}),
        ]
        for signed, reason, cost in steps:
            self.assertEqual(self.cost(server, initFor(server, signed, C2), reason, C2), cost, reason)

    def test_clientCheapRefusalsCostNoScrypt(self):
        """
        The client's checks run in the same order: a stale or misaddressed
        G6_RESP costs it no scrypt and no RSA verify, a weak proof one scrypt.
        """
        for signed, cost in ((solved(KEYS.server, C, T0 - 61), {"checks": 1}),
                             (solved(KEYS.server, C2), {"checks": 1}),
                             (weak(KEYS.server, C), {"checks": 1, "proofCheck": 1, "scrypt": 1})):
            client, init = clientAwaitingResp()
            self.counts.clear()
            client.receiveDatagram(respFor(init, signed), S, START)
            self.assertEqual(dict(self.counts), cost)

    def test_streamServerCheapRefusalsCostNoScrypt(self):
        """
        The sframe server's checks run in the same order: stale, misaddressed
        and untrusted messages cost no scrypt and no RSA verify.
        """
        for signed, reason in ((solved(KEYS.client, S, T0 - 61), "stale-timestamp"),
                               (solved(KEYS.client, C2), "wrong-address"),
                               (solved(KEYS.stranger, S), "untrusted-key")):
            _, kx = streamServer()
            self.counts.clear()
            e = self.assertRaises(Gossip6Refused, kx.receive, framed(encodeStreamMessage(G6_INIT, signed)), START)
            self.assertEqual((e.reason, dict(self.counts)), (reason, {"checks": 1}))
