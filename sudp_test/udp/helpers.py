# -*- test-case-name: sudp_test.test_lossyrelay, sudp_test.test_suites, sudp_test.udp.test_adapters, sudp_test.udp.test_ciphercache, sudp_test.udp.test_client, sudp_test.udp.test_control, sudp_test.udp.test_cookie, sudp_test.udp.test_packets, sudp_test.udp.test_replay, sudp_test.udp.test_server, sudp_test.udp.test_session, sudp_test.udp.test_sudp1 -*-
"""
Helpers shared by several test modules (moved from test_lossy, test_tamper, test_udp_badinput, test_udp_engine, test_udp_fuzz).
"""

import hashlib
import os
import socket
import struct
from collections import Counter

from hypothesis import HealthCheck, settings, strategies as st
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial import unittest

from sudp.keys import Identity
from sudp.suites import suiteNames
from sudp.udp import packets as P
from sudp.udp.client import ClientEngine, HELLO_SENT, INIT_SENT
from sudp.udp.config import Config
from sudp.udp.events import ClientRefused, MessageReceived
from sudp.udp.server import ServerEngine

from sudp_test.enginehelpers import (
    clientState,
    dropsDuring,
    isResetFor,
    Network,
    SERVER_ADDR,
    serverSessionOf,
    serverState,
    START,
    takeOutbox,
)
from sudp_test.waiting import waiter

log = Logger()

SEED = 20240607

waitUntilLossy = waiter(timeout=15.0, interval=0.02)

# Read once, at import: a suite another test module registers while the
# tests run (test_suites registers one with an integrity limit of 10) is
# not one of the protocol's and is left out.
SUITE_NAMES = tuple(suiteNames())

PROTECTED = frozenset((0x18, 0x19, 0x1A, 0x1B))

# G6_INIT and G6_RESP are gossip6's (protocol.md section 4): assigned, but
# not received by a sudp/1 engine, so they fall to unexpected-type below
TYPES = frozenset((P.HELLO, P.COOKIE, P.HANDSHAKE_INIT, P.HANDSHAKE_RESP, P.PLUGIN_INIT, P.PLUGIN_RESP,
                   P.HANDSHAKE_REFUSED, P.STATELESS_RESET)) | PROTECTED

REPLY_COOKIE = "reply:COOKIE"  # a HELLO: answered statelessly with a COOKIE, not dropped

PASSES = "passes"  # gets past every drop check of the receiver's first step

# Fixed, so every handshake of part 2 is the same byte for byte.
SERVER_IDENTITY = Identity(hashlib.sha256(b"test_tamper server identity").digest())

CLIENT_IDENTITY = Identity(hashlib.sha256(b"test_tamper client identity").digest())

COOKIE_MASTER = hashlib.sha256(b"test_tamper cookie master key").digest()

# What the tests did, for the record (see the module docstring).
COUNTS = Counter()

def added(engine, before):
    """
    @return: the drops C{engine} counted since C{before} (a Counter copy).
    """
    now = Counter(engine.drops)
    now.subtract(before)
    return +now

def stateOf(engine):
    """
    The L{serverState} or L{clientState} of C{engine}.
    """
    return serverState(engine) if isinstance(engine, ServerEngine) else clientState(engine)

def specCookie(addr, timestamp, rotation, master=COOKIE_MASTER):
    """
    The cookie of section 6.2, from its formula.
    """
    secret = hashlib.blake2b((timestamp // rotation).to_bytes(8, "big"), key=master,
                             digest_size=32, person=b"sudp1-cookiekey").digest()
    data = socket.inet_pton(socket.AF_INET, addr[0]) + struct.pack(">HI", addr[1], timestamp)
    return hashlib.blake2b(data, key=secret, digest_size=16, person=b"sudp1-cookie").digest()

def cookieVerdict(addr, timestamp, cookie, now, rotation):
    """
    Section 6.3: C{"expired-cookie"}, C{"bad-cookie"} or None (accepted),
    for a server whose cookie master key is L{COOKIE_MASTER}.
    """
    current = int(now) & 0xFFFFFFFF
    age = (current - timestamp) & 0xFFFFFFFF
    if age > 2 * rotation or timestamp // rotation < current // rotation - 1:
        return "expired-cookie"
    if bytes(cookie) != specCookie(addr, timestamp, rotation):
        return "bad-cookie"
    return None

def windowPasses(ep, seq, config, cache=None):
    """
    Section 10.6 on the epoch's window as it is now.
    """
    state = None if cache is None else cache.get(id(ep))
    if state is None:
        state = ep.window.state()
        if cache is not None:
            cache[id(ep)] = state
    highest, bits = state
    if highest < 0 or seq > highest:
        return True
    if config.ordering == "strict":
        return False
    offset = highest - seq
    if offset >= config.replayWindow:
        return False
    return not (bits >> offset) & 1

def _length(size, expected):
    return "truncated" if size < expected else "oversized"

def expectedFate(engine, data, addr, now, cache=None):
    """
    What docs/protocol.md has C{engine} do with datagram C{data} from
    C{addr} at C{now}, given that a protected packet among them does not
    authenticate (it is tampered with, or replayed):

      - a drop reason (sections 4, 5, 6.2, 6.3, 7.3, 10.5, 15.1);
      - L{REPLY_COOKIE} for a HELLO a server answers (section 5.1);
      - L{PASSES} for a handshake packet that gets past every drop check
        of its first processing step (a COOKIE or RESP the client waits
        for, an INIT whose cookie is good).

    The client's expected nonce and index are read from the engine.
    """
    isServer = isinstance(engine, ServerEngine)
    size = len(data)
    if size > engine.config.maxDatagramSize:
        return "oversized"
    if size == 0:
        return "empty"
    t = data[0]
    if t >> 4 != 1:
        return "wrong-version"
    if t not in TYPES:
        return "unknown-type"
    if t in PROTECTED:
        return _protectedFate(engine, isServer, data, cache)
    if isServer:
        if t == P.HELLO:
            return "truncated" if size < P.HELLO_SIZE else REPLY_COOKIE
        if t == P.HANDSHAKE_INIT:
            return _initFate(engine, data, addr, now)
        return "unexpected-type"
    if t == P.COOKIE:
        if size != 29:
            return _length(size, 29)
        if engine.state is not HELLO_SENT or data[1:9] != engine._nonce:
            return "unexpected-cookie"
        return PASSES
    if t == P.HANDSHAKE_RESP:
        if size != 122:
            return _length(size, 122)
        receiver, sender = struct.unpack_from(">II", data, 1)
        if receiver == 0 or sender == 0:
            return "bad-field"  # the implementation's reason; section 7.3 just says "decode"
        if engine.state is not INIT_SENT or receiver != engine._index:
            return "unexpected-resp"
        return PASSES
    if t == P.STATELESS_RESET:
        # section 10.9: only a packet ending in the session's token resets it,
        # and a tampered packet never ends in it
        return "bad-reset"
    if t == P.HANDSHAKE_REFUSED:
        return _refusedFate(engine, data)
    return "unexpected-type"

def _refusedFate(engine, data):
    """
    Section 7.5: a client's fate for a HANDSHAKE_REFUSED that is not the
    server's signed refusal of its INIT.
    """
    size = len(data)
    if size < 6:
        return "truncated"
    index, count = struct.unpack_from(">IB", data, 1)
    if index == 0 or not 1 <= count <= 16:
        return "bad-field"
    if size != 6 + count + 64:
        return _length(size, 6 + count + 64)
    if engine.state is not INIT_SENT or index != engine._index:
        return "unexpected-refusal"
    return "bad-refusal"

def _protectedFate(engine, isServer, data, cache):
    size = len(data)
    if isServer:
        if size < 13:
            return "truncated"
        typeByte, index, seq = P.DATA_HEADER.unpack_from(data)
        session = engine.sessions.get(index)
        if session is None:
            return "unknown-session"
        if size < 13 + session.suite.tagSize:
            return "truncated"
    else:
        session = engine.session
        if session is None:
            return "no-session"
        if size < 13 + session.suite.tagSize:
            return "truncated"
        typeByte, index, seq = P.DATA_HEADER.unpack_from(data)
        if index != session.localIndex:
            return "unknown-session"
    ep = session.epochs[typeByte & 1]
    if ep is None or session.state == "closed":
        return "no-key"
    if not windowPasses(ep, seq, session.config, cache):
        return "replay"
    return "bad-tag"

def _initFate(engine, data, addr, now):
    size = len(data)
    if size < 59:
        return "truncated"
    count = data[57]
    if not 1 <= count <= 16:
        return "bad-field"
    if size < 58 + count:
        return "truncated"
    if any(data[58 + count:]):  # section 5.3: the padding is zero bytes
        return "bad-padding"
    sender, timestamp = struct.unpack_from(">II", data, 1)
    if sender == 0:
        return "bad-field"
    return cookieVerdict(addr, timestamp, data[9:25], now, engine.config.cookieRotation) or PASSES

class _RecordingCipher:
    __slots__ = ("key", "inner", "suite")

    def __init__(self, key, inner, suite):
        self.key = key
        self.inner = inner
        self.suite = suite

    def seal(self, sequence, header, plaintext):
        # packetNonce also checks (xsalsa20-poly1305) that the header
        # carries this sequence number
        self.suite.seals.append((self.key, self.suite.inner.packetNonce(sequence, header)))
        return self.inner.seal(sequence, header, plaintext)

    def open(self, sequence, header, ciphertext):
        plaintext = self.inner.open(sequence, header, ciphertext)
        self.suite.opens.append((self.key, self.suite.inner.packetNonce(sequence, header)))
        return plaintext

class RecordingSuite:
    """
    A registered suite whose packet ciphers record C{(key, nonce)} for every
    seal, and for every open that authenticates, with the nonce the suite
    really uses (C{packetNonce}: 0^32|seq, 0^128|seq or the header).
    """

    def __init__(self, inner, seals=None, opens=None):
        self.inner = inner
        for name in ("name", "suiteId", "keySize", "tagSize", "nonceSize",
                     "confidentialityLimit", "integrityLimit"):
            setattr(self, name, getattr(inner, name))
        self.seals = [] if seals is None else seals
        self.opens = [] if opens is None else opens
        self.keys = set()

    def newCipher(self, key):
        key = bytes(key)  # the session wipes its bytearray later
        self.keys.add(key)
        return _RecordingCipher(key, self.inner.newCipher(key), self)

    def packetNonce(self, sequence, header):
        return self.inner.packetNonce(sequence, header)

    def newAEAD(self, key):
        return self.inner.newAEAD(key)

class SuiteTestCase(unittest.TestCase):
    """
    Assertions shared by the tests below.
    """

    suiteName = None

    def assertNoNonceReuse(self, seals):
        """
        No (key, nonce) pair in C{seals} occurs twice.
        """
        repeated = [pair for pair, n in Counter(seals).items() if n > 1]
        self.assertEqual(repeated, [], f"{len(repeated)} (key, nonce) pairs sealed more than once")

def _forEverySuite(namespace, mixin, variants=({},)):
    """
    Make one L{unittest.TestCase} of C{mixin} in C{namespace} (a test module's
    globals) per registered suite (and per
    variant: class attributes, with a C{tag} for the name).
    """
    for name in SUITE_NAMES:
        for variant in variants:
            attrs = dict(variant)
            tag = attrs.pop("tag", "")
            clsName = mixin.__name__.replace("Mixin", "Tests") + "_" + name.replace("-", "_") + tag
            attrs.update(suiteName=name, __module__=namespace["__name__"],
                         __doc__=f"{mixin.__doc__.strip()}\n\n    Suite {name}{tag.replace('_', ', ')}.\n")
            namespace[clsName] = type(clsName, (mixin, SuiteTestCase), attrs)

OTHER_ADDR = ("127.0.0.1", 40001)

# X25519 public keys that give a low-order (all-zero) shared secret: the
# points of order 1, 2, 4 and 8 and their non-canonical encodings (u >= p),
# and each again with the ignored top bit set.
_P25519 = 2**255 - 19

_LOW_ORDER = [
    0,
    1,
    325606250916557431795983626356110631294008115727848805560023387167927233504,
    39382357235489614581723060781553021112529911719440698176882885853963445705823,
    _P25519 - 1,
    _P25519,
    _P25519 + 1,
]

LOW_ORDER_KEYS = [u.to_bytes(32, "little") for u in _LOW_ORDER] + [
    (u | 1 << 255).to_bytes(32, "little") for u in _LOW_ORDER[:4]
]

# drop reasons that refuse a cookie-proven client, reported as ClientRefused
REFUSALS = {"rate-limited", "too-many-pending", "server-full", "no-common-suite"}

def flip(data, bit):
    """
    @return: C{data} with bit C{bit} (0 = the low bit of the first byte) inverted.
    """
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)

def messages(events):
    """
    @return: the messages in a list of C{(who, event)}.
    """
    return [e.message for w, e in events if isinstance(e, MessageReceived)]

def header(data):
    """
    @return: C{(typeByte, receiverIndex, sequence)} of a DATA/CONTROL packet.
    """
    return P.DATA_HEADER.unpack_from(data)

class EngineTestCase(unittest.TestCase):
    """
    Assertions shared by the tests below.
    """

    def assertServerDrops(self, server, data, addr, reasons, now=START):
        """
        Hand C{data} to C{server} from C{addr} and assert that exactly
        C{reasons} (a reason string or a dict of counts) were counted,
        nothing was sent, nothing was reported and no state changed.
        """
        if isinstance(reasons, str):
            reasons = {reasons: 1}
        before = serverState(server)
        events = list(server.events)
        drops = dropsDuring(server, lambda: server.receiveDatagram(data, addr, now))
        self.assertEqual(drops, reasons, f"input {bytes(data[:48]).hex()}... of {len(data)} bytes")
        out = takeOutbox(server)
        if "unknown-session" in reasons and out:
            # the one answer to junk for a session it does not know: a stateless reset, smaller
            [(reset, dst)] = out
            self.assertTrue(isResetFor(reset, data), reset.hex())
            self.assertEqual(dst, addr)
        elif "no-common-suite" in reasons and out:
            [(refusal, dst)] = out  # signed, never longer than the INIT
            self.assertEqual((refusal[0], dst), (P.HANDSHAKE_REFUSED, addr))
            self.assertLessEqual(len(refusal), len(data))
        else:
            self.assertEqual(out, [])
        # a refused (cookie-proven) client is reported, for the server's log
        added = server.events[len(events):]
        self.assertEqual([(e.addr, e.reason) for e in added if isinstance(e, ClientRefused)],
                         [(addr, r) for r in reasons if r in REFUSALS])
        self.assertEqual(server.events[:len(events)], events)
        self.assertEqual([e for e in added if not isinstance(e, ClientRefused)], [])
        self.assertEqual(serverState(server), before)

    def assertClientDrops(self, client, data, reasons, now=START, addr=SERVER_ADDR):
        """
        Like L{assertServerDrops}, for a client engine.
        """
        if isinstance(reasons, str):
            reasons = {reasons: 1}
        before = clientState(client)
        events = list(client.events)
        drops = dropsDuring(client, lambda: client.receiveDatagram(data, addr, now))
        self.assertEqual(drops, reasons, f"input {bytes(data[:48]).hex()}... of {len(data)} bytes")
        self.assertEqual(takeOutbox(client), [])
        self.assertEqual(client.events, events)
        self.assertEqual(clientState(client), before)

    def assertWorks(self, net, client, server=None):
        """
        The session between C{client} and the server still carries messages
        both ways.
        """
        server = server or net.server
        session = serverSessionOf(server, client)
        tag = os.urandom(8)
        client.sendMessage(client.session, b"ping " + tag, net.now)
        events = net.pump()
        self.assertIn(b"ping " + tag, messages(events))
        server.sendMessage(session, b"pong " + tag, net.now)
        events = net.pump()
        self.assertIn(b"pong " + tag, messages(events))

    def capturedData(self, net, client, message=b"m" * 16, deliverFirst=4):
        """
        Deliver C{deliverFirst} messages from C{client}, then seal one more
        and return it undelivered with its sequence number.
        """
        for i in range(deliverFirst):
            client.sendMessage(client.session, b"before %d" % i, net.now)
        net.pump()
        net.take("server", MessageReceived)
        client.sendMessage(client.session, message, net.now)
        [(packet, dst)] = takeOutbox(client)
        self.assertEqual(dst, SERVER_ADDR)
        return packet, header(packet)[2]

def Link(server, clock):
    """
    The in-memory network of L{sudp_test.enginehelpers}, driven by C{clock}.
    """
    return Network(server, clock=clock)

def connectLink(testCase, config=None, serverConfig=None, clientIdentity=None, authorizedKeys=None,
            serverKey=None):
    clock = Clock()
    clock.advance(1_000_000)
    identity = Identity.generate()
    server = ServerEngine(identity, serverConfig or config or Config(), authorizedKeys=authorizedKeys)
    link = Link(server, clock)
    client = link.add(ClientEngine(serverKey or identity.publicKey, SERVER_ADDR, config or Config(),
                                   identity=clientIdentity))
    client.start(link.now)
    link.pump()
    link.identity = identity
    return link, server, client

def serverSession(server):
    [session] = server.sessions.values()
    return session

def exchange(link, server, client, count):
    """
    Send C{count} messages each way (C{c0.0}, C{s0.0}, ...), pumping after each pair.
    """
    s = serverSession(server)
    for i in range(count):
        client.sendMessage(client.session, b"c%d.0" % i, link.now)
        server.sendMessage(s, b"s%d.0" % i, link.now)
        link.pump()

FAST = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

u8 = st.integers(0, 0xFF)

u64 = st.integers(0, 2**64 - 1)

# arbitrary bytes, and bytes that start with a version-1 type byte so that
# the decoders get past the first check more often
anyBytes = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda t, rest: bytes([t]) + rest, st.integers(0x10, 0x1F), st.binary(max_size=300)),
)
