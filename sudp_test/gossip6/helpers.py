# -*- test-case-name: sudp_test.gossip6.test_checks, sudp_test.gossip6.test_config, sudp_test.gossip6.test_handshake, sudp_test.gossip6.test_keys, sudp_test.gossip6.test_stream, sudp_test.gossip6.test_udp, sudp_test.gossip6.test_wire, sudp_test.test_tap -*-
"""
Helpers shared by several test modules (moved from test_gossip6, test_gossip6_rules).
"""

import os
from dataclasses import replace

from hypothesis import HealthCheck, settings, strategies as st

from sudp.gossip6 import udp as udp_
from sudp.gossip6.config import Gossip6Config
from sudp.gossip6.proof import meetsTarget, ProofJob
from sudp.gossip6.stream import Gossip6StreamSetup
from sudp.gossip6.udp import gossip6ClientEngine, gossip6ServerEngine
from sudp.gossip6.wire import (
    encodeStreamMessage,
    G6_INIT,
    G6_RESP,
    Gossip6Init,
    Gossip6Resp,
    Message,
    NONCE_SIZE,
    Signed,
)
from sudp.rsaidentity import RSAIdentity
from sudp.udp import packets as P
from sudp.udp.config import Config
from sudp.udp.keyschedule import Ephemeral

from sudp_test.enginehelpers import CLIENT_ADDR as C, getCookie, SERVER_ADDR as S, START, takeOutbox

SERVER_ID = RSAIdentity.generate(2048)

CLIENT_ID = RSAIdentity.generate(2048)

G = Gossip6Config(difficulty=4, scryptN=64)  # 16 cheap scrypt evaluations a proof

SUITES = Config(suites=(udp_.SUITE,))

T0 = int(START)

C2 = ("127.0.0.1", 40001)

C3 = ("127.0.0.3", 40002)

RESP_INDEX = 0x0A0B0C0D

class _Keys:
    """
    The RSA identities of the tests, made once (RSA-2048 unless named).
    """

    _made = {}

    def __getattr__(self, name):
        made = self._made
        if name not in made:
            bits = {"big3072": 3072, "big4096": 4096}.get(name, 2048)
            made[name] = RSAIdentity.generate(bits)
        return made[name]

KEYS = _Keys()  # .server, .client, .other (trusted by both sides), .stranger (trusted by none)

def dhe():
    return Ephemeral(os.urandom(32)).public

def solved(identity, peer, timestamp=T0, config=G, ephemeral=None):
    """
    @return: a genuine m|s of C{identity} to C{peer}: proof found, signed.
    """
    job = ProofJob(identity, ephemeral or dhe(), peer, int(timestamp), config, os.urandom)
    return job.run()

def rebuilt(base, signer, **changes):
    """
    @return: C{base} with C{changes} to the fields of m (the nonce kept, so
        the proof is not redone) signed again by C{signer}.
    """
    m = base.message
    fields = dict(dhe=m.dhe, rsaKey=m.rsaKey, timestamp=m.timestamp, peer=m.peer, nonce=m.nonce)
    fields.update(changes)
    message = Message(**fields)
    raw = message.encode()
    return Signed(message, raw, signer.sign(raw))

def weak(identity, peer, timestamp=T0, config=G):
    """
    A signed m whose proof misses the target, by brute force: random nonces
    until scrypt(m) >= k.
    """
    message = Message(dhe(), identity.publicKey.der, timestamp, peer)
    while True:
        message.nonce = os.urandom(NONCE_SIZE)
        raw = message.encode()
        if not meetsTarget(raw, config):
            return Signed(message, raw, identity.sign(raw))

def tamperedNonce(base, signer, config=G):
    """
    A genuine message with its nonce changed until the proof fails, then
    signed again (the signature is good; the proof is not).
    """
    while True:
        candidate = rebuilt(base, signer, nonce=os.urandom(NONCE_SIZE))
        if not meetsTarget(candidate.raw, config):
            return candidate

def flip(data, bit):
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)

def flippedInM(make, proofHolds, config=G):
    """
    A genuine m|s with one bit of m flipped (in the ephemeral key or the
    nonce, fields no other rule looks at) and s unchanged, chosen so that the
    proof still holds or not.

    @param make: builds a genuine m|s.
    @return: C{(genuine, flipped)}.
    """
    while True:
        base = make()
        nonceAt = len(base.raw) - NONCE_SIZE
        for bit in list(range(256)) + list(range(nonceAt * 8, len(base.raw) * 8)):
            raw = flip(base.raw, bit)
            if meetsTarget(raw, config) == proofHolds:
                return base, Signed(Message.decode(raw), raw, base.signature)

def udpServer(local=(S,), gossip6=G, config=None, cookieSecret=None):
    """
    A gossip6 UDP server engine trusting the client and the other key.
    """
    return gossip6ServerEngine(KEYS.server, [KEYS.client.publicKey, KEYS.other.publicKey], config or SUITES,
                               replace(gossip6, localAddresses=tuple(local)), cookieSecret)

def initFor(server, signed, addr=C, now=START, senderIndex=0x01020304):
    """
    @return: a G6_INIT carrying C{signed} with a valid cookie for C{addr} at C{now}.
    """
    timestamp, cookie = getCookie(server, addr, now)
    return Gossip6Init(senderIndex, timestamp, cookie, signed).encode()

def clientAwaitingResp(local=(C,), gossip6=G, now=START, random_=os.urandom):
    """
    A gossip6 UDP client engine that has proven its m, had its cookie and
    sent its G6_INIT.

    @return: C{(client, the INIT it sent)}.
    """
    client = gossip6ClientEngine(KEYS.client, [KEYS.server.publicKey, KEYS.other.publicKey], S, SUITES,
                                 replace(gossip6, localAddresses=tuple(local)), random=random_)
    client.start(now)
    [event] = client.events
    client.events = []
    event.job.run()
    client.workDone(event.job, now)
    [(hello, _)] = takeOutbox(client)
    client.receiveDatagram(P.encodeCookie(P.decodeHello(hello), int(now), bytes(16)), S, now)
    [(init, dst)] = takeOutbox(client)
    assert dst == S
    return client, Gossip6Init.decode(init)

def respFor(init, signed):
    return Gossip6Resp(init.senderIndex, RESP_INDEX, signed).encode()

def streamServer(host=S, peer=C, gossip6=G, setup=None, local=()):
    """
    @return: C{(setup, server key exchange)} on a stream from C{peer} to C{host}.
    """
    setup = setup or Gossip6StreamSetup([KEYS.client.publicKey, KEYS.other.publicKey],
                                        replace(gossip6, localAddresses=tuple(local)))
    kx = setup.keyExchange(KEYS.server, isClient=False)
    kx.connected(host, peer)
    return setup, kx

class RulesMixin:
    """
    Seed 004's discard rules, as they apply to whichever side a subclass
    drives: C{sender} makes the messages this side receives, C{ours} is the
    address they must name, C{refuse(signed, reason, now, local)} asserts
    the exact refusal with no state kept, C{accept(signed, now, local)} the
    acceptance.
    """

    def make(self, timestamp=T0, peer=None, identity=None):
        return solved(identity or self.sender, self.ours if peer is None else peer, timestamp)

    def test_genuineAccepted(self):
        """
        A genuine message (fresh, addressed to this side, a trusted key, a
        valid proof, a good signature) is accepted.
        """
        self.accept(self.make())

    def test_weakProofBruteForced(self):
        """
        A message whose scrypt output is >= k (nonces tried until the proof
        fails), signed by the trusted sender: weak-proof.
        """
        self.refuse(weak(self.sender, self.ours), "weak-proof")

    def test_weakProofTamperedNonce(self):
        """
        A genuine message whose nonce was changed and which was signed again:
        the signature is good but the proof no longer holds: weak-proof.
        """
        self.refuse(tamperedNonce(self.make(), self.sender), "weak-proof")

    def test_weakProofOfAnotherConfiguration(self):
        """
        A proof made for an easier target (difficulty 0: any nonce) and
        another scrypt configuration is refused unless it happens to meet
        this side's target: weak-proof.
        """
        while True:
            signed = solved(self.sender, self.ours, config=replace(G, difficulty=0, scryptN=16))
            if not meetsTarget(signed.raw, G):
                break
        self.refuse(signed, "weak-proof")

    def test_untrustedKey(self):
        """
        A message with a valid proof and a valid signature, by a key this
        side does not trust: untrusted-key.
        """
        self.refuse(self.make(identity=KEYS.stranger), "untrusted-key")

    def test_signedByAnotherTrustedKey(self):
        """
        m names the sender's key, but s was made by another key this side
        trusts: bad-signature.
        """
        genuine = self.make()
        self.refuse(Signed(genuine.message, genuine.raw, KEYS.other.sign(genuine.raw)), "bad-signature")

    def test_signatureOfAnotherSize(self):
        """
        s made by an RSA-3072 key (384 bytes) for m naming an RSA-2048 key:
        bad-signature.
        """
        genuine = self.make()
        self.refuse(Signed(genuine.message, genuine.raw, KEYS.big3072.sign(genuine.raw)), "bad-signature")

    def test_flippedBitInSignature(self):
        """
        One bit flipped in s (its first, a middle and its last bit): bad-signature.
        """
        genuine = self.make()
        size = len(genuine.signature) * 8
        for bit in (0, size // 2 + 3, size - 1):
            self.refuse(Signed(genuine.message, genuine.raw, flip(genuine.signature, bit)), "bad-signature")

    def test_flippedBitInMessageProofStillHolds(self):
        """
        One bit of m flipped, s unchanged, where the flipped m still meets
        the target: bad-signature.
        """
        _, flipped = flippedInM(self.make, proofHolds=True)
        self.refuse(flipped, "bad-signature")

    def test_flippedBitInMessageProofBroken(self):
        """
        One bit of m flipped, s unchanged, where the flipped m misses the
        target: weak-proof (the proof is checked before the signature).
        """
        _, flipped = flippedInM(self.make, proofHolds=False)
        self.refuse(flipped, "weak-proof")

    def test_staleTimestamp(self):
        """
        T older than now - tMax (by a second): stale-timestamp.
        """
        self.refuse(self.make(T0 - int(G.tMax) - 1), "stale-timestamp")

    def test_staleByLessThanASecond(self):
        """
        Now - T = tMax + 0.25 s: stale-timestamp (the bound is exact, not
        rounded to whole seconds).
        """
        self.refuse(self.make(T0), "stale-timestamp", now=START + G.tMax + 0.25)

    def test_futureTimestamp(self):
        """
        T more than clockSkew in the future (by a second): future-timestamp.
        """
        self.refuse(self.make(T0 + int(G.clockSkew) + 1), "future-timestamp")

    def test_insideBothBounds(self):
        """
        T exactly tMax old, and T exactly clockSkew ahead, are accepted
        (seed 004: Now - T <= t_max).
        """
        self.accept(self.make(T0 - int(G.tMax)))
        self.accept(self.make(T0 + int(G.clockSkew)))

    def test_otherIP(self):
        """
        m names another IP with our port: wrong-address.
        """
        self.refuse(self.make(peer=("127.0.0.2", self.ours[1])), "wrong-address")

    def test_otherPort(self):
        """
        m names our IP with another port: wrong-address.
        """
        self.refuse(self.make(peer=(self.ours[0], self.ours[1] + 1)), "wrong-address")

    def test_ipv6ForIPv4(self):
        """
        m names an IPv6 address (::1) with our port while we are IPv4:
        wrong-address. The IPv4-mapped form of our own address
        (::ffff:127.0.0.1, however written) is our address: a dual-stack
        peer sees us so, and is accepted.
        """
        self.refuse(self.make(peer=("::1", self.ours[1])), "wrong-address")
        for host in ("::ffff:127.0.0.1", "::ffff:7f00:1"):
            self.accept(self.make(peer=(host, self.ours[1])))

    def test_ipv4ForIPv6(self):
        """
        An IPv6 side (::1) refuses m naming 127.0.0.1 (wrong-address), and
        accepts m naming ::1 written differently (addresses are compared as
        addresses).
        """
        ours = ("::1", self.ours[1])
        self.refuse(self.make(peer=("127.0.0.1", ours[1])), "wrong-address", local=(ours,))
        self.accept(self.make(peer=("0:0:0:0:0:0:0:1", ours[1])), local=(ours,))

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

COOKIE_SECRET = b"k" * 32

class _Genuine:
    """
    Genuine encodings (made once) for the mutation tests: each kind of
    message with IPv4 and IPv6 peers.
    """

    _made = None

    @classmethod
    def get(cls):
        if cls._made is None:
            v4, v6 = solved(KEYS.client, S), solved(KEYS.client, ("::1", 9000))
            server = udpServer(cookieSecret=COOKIE_SECRET)
            cls._made = {
                "message": [v4.raw, v6.raw],
                "signed": [v4.encode(), v6.encode()],
                "init": [initFor(server, v4), Gossip6Init(7, 9, bytes(16), v6).encode()],
                "resp": [Gossip6Resp(1, 2, v4).encode(), Gossip6Resp(3, 4, v6).encode()],
                "streamInit": [encodeStreamMessage(G6_INIT, v4), encodeStreamMessage(G6_INIT, v6)],
                "streamResp": [encodeStreamMessage(G6_RESP, v4), encodeStreamMessage(G6_RESP, v6)],
                "engineInit": initFor(server, v4),
            }
        return cls._made

@st.composite
def mutations(draw, genuine):
    """
    A genuine encoding with one to four edits: bit flips, byte overwrites,
    insertions, deletions, truncation, extension, a length field rewritten.
    """
    data = bytearray(draw(st.sampled_from(genuine)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "extend", "u16"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        elif kind == "truncate":
            del data[at:]
        elif kind == "extend":
            data += draw(st.binary(min_size=1, max_size=64))
        elif kind == "u16" and len(data) >= 2:
            at = min(at, len(data) - 2)
            data[at:at + 2] = draw(st.sampled_from([0, 1, 255, 256, 512, 513, 1024, 1025, 0xFFFF])).to_bytes(2, "big")
    return bytes(data)

REFUSALS = {"stale-timestamp", "future-timestamp", "wrong-address", "reused-proof", "reuse-record-full",
            "untrusted-key", "weak-proof", "bad-signature"}
