# -*- test-case-name: sudp_test.gossip6.test_wire -*-
"""
Tests for L{sudp.gossip6.wire}.
"""

from dataclasses import replace

from hypothesis import given, strategies as st
from twisted.trial import unittest

from sudp.errors import MalformedPacket
from sudp.gossip6 import checks as checks_
from sudp.gossip6.stream import Gossip6StreamSetup
from sudp.gossip6.udp import gossip6ClientEngine, gossip6ServerEngine
from sudp.gossip6.wire import (
    decodeStreamMessage,
    encodeStreamMessage,
    G6_INIT,
    G6_RESP,
    Gossip6Init,
    Gossip6Resp,
    Message,
    Signed,
)
from sudp.udp.client import ESTABLISHED
from sudp.work import WorkNeeded

from sudp_test.enginehelpers import START, takeOutbox
from sudp_test.gossip6.helpers import FUZZ, G, KEYS, SUITES, _Genuine, mutations

class LargestMessageTests(unittest.TestCase):
    """
    The largest messages the rules allow (RSA-4096 keys, IPv6 peers) pass
    every size limit: a UDP datagram, a stream handshake message.
    """

    S6, C6 = ("::1", 9000), ("::1", 40000)

    def test_udpRSA4096IPv6(self):
        """
        Between RSA-4096 identities over IPv6 the UDP handshake completes;
        G6_INIT and G6_RESP fit in maxDatagramSize.
        """
        big = KEYS.big4096
        server = gossip6ServerEngine(big, [big.publicKey], SUITES, replace(G, localAddresses=(self.S6,)))
        client = gossip6ClientEngine(big, [big.publicKey], self.S6, SUITES, replace(G, localAddresses=(self.C6,)))
        client.start(START)
        sizes = {}
        for _ in range(10):
            for engine in (client, server):
                events, engine.events = engine.events, []
                for event in events:
                    if isinstance(event, WorkNeeded):
                        event.job.run()
                        engine.workDone(event.job, START)
            for data, _ in takeOutbox(client):
                sizes.setdefault(data[0], len(data))
                server.receiveDatagram(data, self.C6, START)
            for data, _ in takeOutbox(server):
                sizes.setdefault(data[0], len(data))
                client.receiveDatagram(data, self.S6, START)
        self.assertEqual((client.state, server.openCount, dict(server.drops), dict(client.drops)),
                         (ESTABLISHED, 1, {}, {}))
        self.assertGreater(sizes[G6_INIT], 1100)
        self.assertLessEqual(max(sizes[G6_INIT], sizes[G6_RESP]), SUITES.maxDatagramSize)
        self.assertEqual(client.session.peerKey, big.publicKey)

    def test_streamRSA4096IPv6(self):
        """
        Between RSA-4096 identities over IPv6 the sframe key exchange
        completes (each message some 1,140 bytes) and both sides agree.
        """
        big = KEYS.big4096
        clientSetup = Gossip6StreamSetup([big.publicKey], G)
        serverSetup = Gossip6StreamSetup([big.publicKey], G)
        client = clientSetup.keyExchange(big, isClient=True)
        client.connected(self.C6, self.S6)
        server = serverSetup.keyExchange(big, isClient=False)
        server.connected(self.S6, self.C6)
        need = client.start(START).work
        need.job.run()
        init = client.workDone(need.job, START).toSend
        self.assertGreater(len(init), 1100)
        need = server.receive(init, START).work
        need.job.run()
        step = server.workDone(need.job, START)
        serverDone, resp = step.established, step.toSend
        clientDone = client.receive(resp, START).established
        self.assertEqual(clientDone.transcript, serverDone.transcript)
        self.assertEqual((clientDone.peerKey, serverDone.peerKey), (big.publicKey, big.publicKey))

def decoders():
    """
    @return: C{(name, decoder, genuine kind)} for every gossip6 decoder.
    """
    return [
        ("Message.decode", Message.decode, "message"),
        ("Signed.decode", Signed.decode, "signed"),
        ("Gossip6Init.decode", Gossip6Init.decode, "init"),
        ("Gossip6Resp.decode", Gossip6Resp.decode, "resp"),
        ("decodeStreamMessage(G6_INIT)", lambda d: decodeStreamMessage(G6_INIT, d), "streamInit"),
        ("decodeStreamMessage(G6_RESP)", lambda d: decodeStreamMessage(G6_RESP, d), "streamResp"),
    ]

anyBytes = st.one_of(
    st.binary(max_size=1200),
    st.builds(lambda t, rest: bytes([t]) + rest, st.sampled_from([G6_INIT, G6_RESP]), st.binary(max_size=1200)),
)

ipv4 = st.ip_addresses(v=4).map(str)

ipv6 = st.ip_addresses(v=6).map(str)

ports = st.integers(0, 0xFFFF)

u32 = st.integers(0, 0xFFFFFFFF)

index = st.integers(1, 0xFFFFFFFF)

rsaKeys = st.one_of(st.binary(min_size=1, max_size=1024),
                    st.sampled_from(["client", "big3072", "big4096"]).map(lambda n: getattr(KEYS, n).publicKey.der))

messages = st.builds(
    Message, st.binary(min_size=32, max_size=32), rsaKeys, st.integers(0, 2**64 - 1),
    st.tuples(st.one_of(ipv4, ipv6), ports), st.binary(min_size=16, max_size=16),
)

signatures = st.integers(256, 512).flatmap(lambda n: st.binary(min_size=n, max_size=n))

signeds = st.builds(lambda m, s: Signed(m, m.encode(), s), messages, signatures)

def onlyMalformed(testCase, name, decoder, data):
    try:
        decoder(data)
    except MalformedPacket as e:
        testCase.assertTrue(e.reason, name)
    except Exception as e:  # pragma: no cover - the failure being tested for
        testCase.fail(f"{name} raised {type(e).__name__}: {e} on {data[:64].hex()}... ({len(data)} bytes)")

def sameMessage(testCase, a, b):
    testCase.assertEqual((a.dhe, a.rsaKey, a.timestamp, a.nonce), (b.dhe, b.rsaKey, b.timestamp, b.nonce))
    testCase.assertEqual(a.peer[1], b.peer[1])
    testCase.assertTrue(checks_.sameAddress(a.peer, b.peer), (a.peer, b.peer))

class DecoderFuzzTests(unittest.TestCase):
    """
    Every gossip6 decoder raises only MalformedPacket, on arbitrary bytes
    and on mutated genuine messages; every encoding round-trips.
    """

    @FUZZ
    @given(anyBytes)
    def test_arbitraryBytes(self, data):
        """
        Every decoder, on arbitrary bytes (and on bytes starting with a
        gossip6 type byte), returns or raises MalformedPacket.
        """
        for name, decoder, _ in decoders():
            onlyMalformed(self, name, decoder, data)

    @FUZZ
    @given(st.data())
    def test_mutatedGenuine(self, data):
        """
        Every decoder, on mutations of its own genuine messages (IPv4 and
        IPv6 peers), returns or raises MalformedPacket.
        """
        genuine = _Genuine.get()
        for name, decoder, kind in decoders():
            onlyMalformed(self, name, decoder, data.draw(mutations(genuine[kind]), label=name))

    @FUZZ
    @given(messages)
    def test_messageRoundTrip(self, message):
        """
        m round-trips for every field: any ephemeral, key (arbitrary bytes
        of 1 to 1024, and real RSA-2048/3072/4096 keys), timestamp, IPv4 or
        IPv6 peer, port and nonce.
        """
        raw = message.encode()
        back = Message.decode(raw)
        sameMessage(self, back, message)
        self.assertEqual(back.encode(), raw)
        self.assertEqual(back.prefix() + back.nonce, raw)

    @FUZZ
    @given(signeds, index, u32, st.binary(min_size=16, max_size=16), index)
    def test_packetsRoundTrip(self, signed, sender, timestamp, cookie, receiver):
        """
        m|s, G6_INIT, G6_RESP and both stream messages round-trip (signature
        sizes 256 to 512 bytes, every index and cookie).
        """
        back = Signed.decode(signed.encode())
        self.assertEqual((back.raw, back.signature), (signed.raw, signed.signature))
        sameMessage(self, back.message, signed.message)
        init = Gossip6Init.decode(Gossip6Init(sender, timestamp, cookie, signed).encode())
        self.assertEqual((init.senderIndex, init.timestamp, init.cookie, init.signed.raw, init.signed.signature),
                         (sender, timestamp, cookie, signed.raw, signed.signature))
        self.assertEqual(init.ephemeral, signed.message.dhe)
        resp = Gossip6Resp.decode(Gossip6Resp(receiver, sender, signed).encode())
        self.assertEqual((resp.receiverIndex, resp.senderIndex, resp.signed.raw, resp.signed.signature),
                         (receiver, sender, signed.raw, signed.signature))
        for t in (G6_INIT, G6_RESP):
            back = decodeStreamMessage(t, encodeStreamMessage(t, signed))
            self.assertEqual((back.raw, back.signature), (signed.raw, signed.signature))
