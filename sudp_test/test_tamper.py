"""
Exhaustive tamper and replay tests of the sudp/1 engines (issue 7, point 2).

Sans-IO: the engines are driven in memory (L{sudp_test.enginehelpers}), with
no sockets, no reactor and no timed assertions. Every test runs once per
cipher suite registered when this module is imported (L{SUITE_NAMES}: the
four of docs/protocol.md section 3.1).

 1. L{ProtectedTamperMixin}: every single bit of a captured DATA packet and
    of a captured CONTROL packet (a KEEPALIVE), in each direction, under
    epoch 0 and under epoch 1 while epoch 0 is in its grace period, with
    C{ordering=window} and C{ordering=strict}, is flipped and handed to the
    receiving engine through C{receiveDatagram}, through
    C{receiveDatagrams([one])} (the C data path), through
    C{receiveDatagram} from a foreign address, and all at once in one
    C{receiveDatagrams} batch followed by the genuine packet, which is then
    accepted exactly once (1,616 bits per test, 25,856 flipped datagrams
    handed in per suite).
 2. L{HandshakeTamperMixin}: every single bit of HELLO, COOKIE,
    HANDSHAKE_INIT, HANDSHAKE_RESP, the client's CONFIRM (with CLIENT_AUTH)
    and the server's KEEPALIVE answer is flipped, each in a fresh handshake.
    The handshakes are deterministic (fixed identities, cookie key and
    engine randomness), so the genuine session is known byte for byte and
    any session that opens is compared with it. Exhaustive for every suite,
    no sampling: 512 + 232 + 472 + 976 + 1,048 + 408 = 3,648 handshakes per
    suite, about 1.5 s per suite.
 3. L{ReplayMixin}: every DATA packet of a session, both ways, is replayed
    within the window, after the window has moved past it, across a rekey
    (old epoch in its grace period, old epoch retired, its key phase slot
    reused by a later epoch, new epoch) and after the session closed, with
    C{ordering=window} and C{ordering=strict}, through both entry points
    (27,732 replays per suite and ordering).
 4. L{NonceUniquenessMixin}: a long lossy, reordering, replaying run with
    many rekeys in which every (key, nonce) a sealing side uses is recorded
    (L{RecordingSuite}) and none is used twice. Parts 1, 2 and 3 also run on
    L{RecordingSuite} (which hands every call on to the suite's own packet
    ciphers, so the C data path still opens with them) and check the same
    of every (key, nonce) they seal.

The whole module runs in 10 to 13 s (measured wall time, Python 3.11),
with or without the C speedups (C{SUDP_NO_SPEEDUPS=1}).

The outcome every tampered or replayed datagram must have is computed by
L{expectedFate}, a transcription of the receive rules of docs/protocol.md
(sections 4, 5, 6.3, 7.2, 7.3, 10.5, 10.6 and 15.1) applied to the
receiver's observable state, not by asking the code under test.
"""

import hashlib
import itertools
import random
import socket
import struct
from collections import Counter

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from twisted.trial import unittest

from sudp.errors import BadServerSignature, HandshakeFailed, HandshakeTimeout
from sudp.keys import Identity
from sudp.suites import getSuite, suiteNames
from sudp.udp import packets as P
from sudp.udp import records as R
from sudp.udp.client import ESTABLISHED, FAILED, HELLO_SENT, INIT_SENT, ClientEngine
from sudp.udp.config import Config
from sudp.udp.events import ClientRefused, HandshakeFailure, MessageReceived, SessionEnded, SessionOpened
from sudp.udp.reset import resetSize
from sudp.udp.server import ServerEngine

from sudp_test.enginehelpers import (
    isResetFor,
    CLIENT_ADDR,
    SERVER_ADDR,
    START,
    Network,
    clientState,
    connect,
    newServer,
    serverSessionOf,
    serverState,
    takeOutbox,
)

# Read once, at import: a suite another test module registers while the
# tests run (test_suites registers one with an integrity limit of 10) is
# not one of the protocol's and is left out.
SUITE_NAMES = tuple(suiteNames())
SPEC_SUITES = {"chacha20-poly1305": 1, "aes-256-gcm": 2, "xchacha20-poly1305": 3, "xsalsa20-poly1305": 4}

PROTECTED = frozenset((0x18, 0x19, 0x1A, 0x1B))
# G6_INIT and G6_RESP are gossip6's (protocol.md section 4): assigned, but
# not received by a sudp/1 engine, so they fall to unexpected-type below
TYPES = frozenset((P.HELLO, P.COOKIE, P.HANDSHAKE_INIT, P.HANDSHAKE_RESP, P.PLUGIN_INIT, P.PLUGIN_RESP,
                   P.HANDSHAKE_REFUSED, P.STATELESS_RESET)) | PROTECTED
REPLY_COOKIE = "reply:COOKIE"  # a HELLO: answered statelessly with a COOKIE, not dropped
PASSES = "passes"  # gets past every drop check of the receiver's first step
OTHER_ADDR = ("127.0.0.1", 40001)  # not the client's address
INJECT_AT = START + 0.25  # tampered handshake packets arrive before any retransmission

# Fixed, so every handshake of part 2 is the same byte for byte.
SERVER_IDENTITY = Identity(hashlib.sha256(b"test_tamper server identity").digest())
CLIENT_IDENTITY = Identity(hashlib.sha256(b"test_tamper client identity").digest())
COOKIE_MASTER = hashlib.sha256(b"test_tamper cookie master key").digest()

# What the tests did, for the record (see the module docstring).
COUNTS = Counter()


def flip(data, bit):
    """
    @return: C{data} with bit C{bit} (0 = the low bit of the first byte) inverted.
    """
    out = bytearray(data)
    out[bit >> 3] ^= 1 << (bit & 7)
    return bytes(out)


def deterministicRandom(label):
    """
    @return: a C{random(n)} for an engine: a SHA-256 counter stream of
        C{label}, so that engines given the same label draw the same bytes.
    """
    counter = itertools.count()
    buffer = bytearray()

    def draw(n):
        while len(buffer) < n:
            buffer.extend(hashlib.sha256(label + next(counter).to_bytes(8, "big")).digest())
        out = bytes(buffer[:n])
        del buffer[:n]
        return out

    return draw


def messagesOf(events):
    return [e.message for e in events if isinstance(e, MessageReceived)]


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


def sessionsOf(engine):
    if isinstance(engine, ServerEngine):
        return dict(engine.sessions)
    return {} if engine.session is None else {engine.session.localIndex: engine.session}


def failureCounts(engine):
    """
    @return: C{{(index, slot): failures}}: the forgery counters, the one
        thing a datagram that does not authenticate may change.
    """
    return {
        (index, slot): ep.failures
        for index, session in sessionsOf(engine).items()
        for slot, ep in enumerate(session.epochs)
        if ep is not None
    }


def openPair(config):
    """
    A server (fixed identity and cookie key, requiring the fixed client
    identity) and a client with an open session.

    @return: C{(network, server, client)}.
    """
    server = newServer(config, SERVER_IDENTITY, cookieSecret=COOKIE_MASTER,
                       authorizedKeys=[CLIENT_IDENTITY.publicKey])
    net = Network(server, START)
    client = connect(net, CLIENT_ADDR, config, CLIENT_IDENTITY)
    assert [type(e) for w, e in net.events] == [SessionOpened, SessionOpened], net.events
    net.events = []
    return net, server, client


# -- the rules of docs/protocol.md, transcribed -------------------------------


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


def isLowOrder(public):
    """
    Section 3: an X25519 key whose exchange gives all zeros.
    """
    try:
        secret = X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(bytes(public)))
    except ValueError:
        return True
    return not any(secret)


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


def retransmissions(config, sentAt, expiresAt):
    """
    Section 14.1: when a handshake packet first sent at C{sentAt} is resent
    before the handshake expires at C{expiresAt}.
    """
    times = []
    interval = config.retransmitInitial
    when = sentAt + interval
    while when < expiresAt:
        times.append(when)
        interval = min(interval * 2, config.retransmitMax)
        when += interval
    return times


# -- recording every nonce a sealing side uses ----------------------------------


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


def _forEverySuite(mixin, variants=({},)):
    """
    Make one L{unittest.TestCase} of C{mixin} per registered suite (and per
    variant: class attributes, with a C{tag} for the name).
    """
    for name in SUITE_NAMES:
        for variant in variants:
            attrs = dict(variant)
            tag = attrs.pop("tag", "")
            clsName = mixin.__name__.replace("Mixin", "Tests") + "_" + name.replace("-", "_") + tag
            attrs.update(suiteName=name, __module__=__name__,
                         __doc__=f"{mixin.__doc__.strip()}\n\n    Suite {name}{tag.replace('_', ', ')}.\n")
            globals()[clsName] = type(clsName, (mixin, SuiteTestCase), attrs)


class SuiteListTests(unittest.TestCase):
    def test_everySpecSuiteCovered(self):
        """
        The suites every test below runs for include all four of
        docs/protocol.md section 3.1, under their wire ids.
        """
        self.assertLessEqual(set(SPEC_SUITES), set(SUITE_NAMES))
        for name, suiteId in SPEC_SUITES.items():
            self.assertEqual(getSuite(name).suiteId, suiteId)


# -- part 1: every bit of DATA and CONTROL packets --------------------------------


class ProtectedTamperMixin:
    """
    Every single-bit flip of real DATA and CONTROL packets is rejected
    through both receive entry points, with the reason docs/protocol.md
    gives, changing nothing but the forgery counter; the genuine packet is
    then accepted exactly once.
    """

    ordering = "window"
    message = b"x" * 40  # a 69-byte DATA packet: over 64 bytes, see test_epochOneInGrace

    def setUp(self):
        self.seals = []
        self.config = Config(suites=(RecordingSuite(getSuite(self.suiteName), self.seals),),
                             ordering=self.ordering)
        self.net, self.server, self.client = openPair(self.config)
        self.serverSession = serverSessionOf(self.server, self.client)
        self.fates = Counter()

    def tearDown(self):
        self.assertNoNonceReuse(self.seals)

    def directions(self):
        """
        @return: C{(sender engine, send(message), sending session, receiver
            engine, source address)} for client to server and server to client.
        """
        client, server, session = self.client, self.server, self.serverSession
        return [
            (client, lambda m: client.sendMessage(client.session, m, self.net.now), client.session, server, CLIENT_ADDR),
            (server, lambda m: server.sendMessage(session, m, self.net.now), session, client, SERVER_ADDR),
        ]

    def capture(self, sender, send, session, receiver, src):
        """
        Send six messages, deliver all but the third (so the receiver's
        window has a hole), then seal a DATA and a KEEPALIVE CONTROL packet
        and return them undelivered.
        """
        sent = []
        for i in range(6):
            send(b"m%d" % i)
            [(packet, _)] = takeOutbox(sender)
            sent.append(packet)
        for packet in sent[:2] + sent[3:]:
            receiver.receiveDatagram(packet, src, self.net.now)
        self.assertEqual(messagesOf(receiver.events), [b"m0", b"m1", b"m3", b"m4", b"m5"])
        receiver.events = []
        send(self.message)
        [(data, _)] = takeOutbox(sender)
        session._sendControl(R.encodeRecord(R.KEEPALIVE), self.net.now)  # what the keepalive timer sends
        [(control, _)] = takeOutbox(sender)
        self.assertEqual((data[0] & 0xFE, control[0] & 0xFE, len(data), len(control)), (0x18, 0x1A, 69, 32))
        return data, control

    def assertRejected(self, engine, data, src, fate, entry, what):
        """
        Hand C{data} to C{engine} through C{entry} and check that it had
        exactly the fate C{fate}, reported no event and changed no state
        but, for a C{bad-tag}, the forgery counter of the epoch it chose.
        """
        now = self.net.now
        before = stateOf(engine)
        failures = failureCounts(engine)
        drops = Counter(engine.drops)
        if entry == "receiveDatagram":
            engine.receiveDatagram(data, src, now)
        else:
            engine.receiveDatagrams([data], src, now)
        if fate == REPLY_COOKIE:
            self.assertEqual(added(engine, drops), Counter(), what)
            [(reply, dst)] = takeOutbox(engine)
            self.assertEqual((dst, len(reply), reply[:9]), (src, 29, bytes([P.COOKIE]) + data[1:9]), what)
        else:
            self.assertEqual(added(engine, drops), Counter({fate: 1}), what)
            out = takeOutbox(engine)
            if fate == "unknown-session" and isinstance(engine, ServerEngine) and out:
                # section 10.9: the one answer, a smaller stateless reset
                [(reset, dst)] = out
                self.assertTrue(isResetFor(reset, data) and dst == src, what)
            else:
                self.assertEqual(out, [], what)
        self.assertEqual(engine.events, [], what)
        self.assertEqual(stateOf(engine), before, what)
        if fate == "bad-tag":
            _, index, _ = P.DATA_HEADER.unpack_from(data)
            failures[index, data[0] & 1] += 1
        self.assertEqual(failureCounts(engine), failures, what)

    def assertEveryFlipRejected(self, engine, packet, src, message):
        """
        Flip every bit of C{packet} (for C{engine}, from C{src}) and check
        each is rejected as L{expectedFate} says, one at a time through
        C{receiveDatagram}, then through C{receiveDatagrams} (the C data
        path), then through C{receiveDatagram} from another address (which
        must not become the peer's), then all in one C{receiveDatagrams}
        batch ending with the genuine packet, which is accepted (delivering
        C{message}, if a DATA packet); a second copy of it is then a replay.
        """
        self.net.now += 0.25  # later than anything accepted: lastRecv would show
        now = self.net.now
        bits = range(len(packet) * 8)
        fates = [expectedFate(engine, flip(packet, bit), src, now) for bit in bits]
        self.assertNotIn(PASSES, fates)
        for entry, addr in (("receiveDatagram", src), ("receiveDatagrams", src), ("receiveDatagram", OTHER_ADDR)):
            for bit, fate in zip(bits, fates):
                what = f"{self.suiteName}: bit {bit} of {packet.hex()} via {entry} from {addr}: expected {fate}"
                self.assertRejected(engine, flip(packet, bit), addr, fate, entry, what)
        self.fates.update(fates)
        COUNTS["part 1: bits flipped", self.suiteName] += 4 * len(fates)

        # all at once, the genuine packet last
        drops = Counter(engine.drops)
        failures = sum(failureCounts(engine).values())
        engine.receiveDatagrams([flip(packet, bit) for bit in bits] + [packet], src, now)
        self.assertEqual(added(engine, drops), Counter(f for f in fates if f != REPLY_COOKIE))
        self.assertEqual(sum(failureCounts(engine).values()) - failures, fates.count("bad-tag"))
        replies = takeOutbox(engine)
        resets = [r for r, dst in replies if r[0] == P.STATELESS_RESET]
        cookies = [r for r, dst in replies if r[0] == P.COOKIE]
        self.assertEqual(len(cookies), fates.count(REPLY_COOKIE))
        expectedResets = fates.count("unknown-session") if isinstance(engine, ServerEngine) else 0
        self.assertEqual(len(resets), expectedResets)
        self.assertTrue(all(isResetFor(r, packet) for r in resets))
        self.assertEqual(len(replies), len(cookies) + len(resets))
        self.assertEqual(messagesOf(engine.events), [] if message is None else [message])
        self.assertNotIn(SessionEnded, [type(e) for e in engine.events])
        engine.events = []
        typeByte, index, seq = P.DATA_HEADER.unpack_from(packet)
        session = sessionsOf(engine)[index]
        self.assertFalse(windowPasses(session.epochs[typeByte & 1], seq, self.config))
        self.assertEqual(session.lastRecv, now)
        self.assertRejected(engine, packet, src, "replay", "receiveDatagram", "the genuine packet again")

    def test_epochZero(self):
        """
        Under epoch 0 (no rekey yet), each bit of a 69-byte DATA and a
        32-byte CONTROL packet, each way, flipped, is rejected: a flip in
        the version nibble as C{wrong-version}, one making an unassigned
        type as C{unknown-type}, DATA turned STATELESS_RESET as
        C{unexpected-type} (server) or C{bad-reset} (client: no token),
        CONTROL turned COOKIE as C{unexpected-type}
        (server) or C{oversized} (client, a COOKIE is 29 bytes), the key
        phase bit as C{no-key} (phase 1 has no key), the receiver index as
        C{unknown-session}, a sequence number turned into one already
        accepted as C{replay} (with C{ordering=strict} also one below the
        highest that was lost), anything else as C{bad-tag}.
        """
        for sender, send, session, receiver, src in self.directions():
            data, control = self.capture(sender, send, session, receiver, src)
            self.assertEveryFlipRejected(receiver, data, src, self.message)
            self.assertEveryFlipRejected(receiver, control, src, None)
        self.assertEqual(set(self.fates), {
            "wrong-version", "unknown-type", "unexpected-type", "oversized", "no-key",
            "unknown-session", "replay", "bad-tag", "bad-reset",
        })

    def test_epochOneInGrace(self):
        """
        After a rekey, while epoch 0 is still held in its grace period, each
        bit of epoch-1 DATA and CONTROL packets (key phase 1), flipped, is
        rejected: the key phase flip now selects epoch 0, whose window has
        seen those sequence numbers (C{replay}), and a phase-1 DATA packet
        of 64 bytes or more with bit 3 flipped becomes a valid HELLO, which
        the server answers with a COOKIE as it must (section 5.1) without
        keeping state or counting a drop; a phase-1 CONTROL turned into an
        INIT is C{truncated}. No flip is C{no-key} now: both key phases
        have keys.
        """
        for sender, send, session, receiver, src in self.directions():
            data, control = self.capture(sender, send, session, receiver, src)
            receiver.receiveDatagrams([data, control], src, self.net.now)
            self.assertEqual(messagesOf(receiver.events), [self.message])
            receiver.events = []
        self.client.session._startRekey(self.net.now)
        self.net.pump()
        self.assertEqual([e for w, e in self.net.events], [])
        for s in (self.client.session, self.serverSession):
            self.assertEqual(s.sendEpoch.number, 1)
            self.assertEqual([ep.number for ep in s.epochs], [0, 1])
        for sender, send, session, receiver, src in self.directions():
            data, control = self.capture(sender, send, session, receiver, src)
            self.assertEqual((data[0], control[0]), (0x19, 0x1B))
            self.assertEveryFlipRejected(receiver, data, src, self.message)
            self.assertEveryFlipRejected(receiver, control, src, None)
        for s in (self.client.session, self.serverSession):
            self.assertEqual([ep.number for ep in s.epochs], [0, 1])
            self.assertLess(s.epochs[0].retireAt, float("inf"))  # in its grace period
        self.assertEqual(set(self.fates), {
            "wrong-version", "unknown-type", "unexpected-type", "truncated", REPLY_COOKIE,
            "unknown-session", "replay", "bad-tag",
        })


_forEverySuite(ProtectedTamperMixin, ({}, {"ordering": "strict", "tag": "_strict"}))


# -- part 2: every bit of every handshake message ------------------------------------


HANDSHAKE_FIELDS = {
    # message: (sent by the client?, first byte, [(field, start, end)])
    "hello": (True, P.HELLO, [("type", 0, 1), ("nonce", 1, 9), ("padding", 9, 64)]),
    "cookie": (False, P.COOKIE, [("type", 0, 1), ("nonce", 1, 9), ("timestamp", 9, 13), ("cookie", 13, 29)]),
    "init": (True, P.HANDSHAKE_INIT, [
        ("type", 0, 1), ("sender index", 1, 5), ("timestamp", 5, 9), ("cookie", 9, 25),
        ("ephemeral", 25, 57), ("count", 57, 58), ("suites", 58, 59), ("padding", 59, 122)]),
    "resp": (False, P.HANDSHAKE_RESP, [
        ("type", 0, 1), ("receiver index", 1, 5), ("sender index", 5, 9), ("suite", 9, 10),
        ("ephemeral", 10, 42), ("confirmation", 42, 58), ("signature", 58, 122)]),
    "confirm": (True, 0x1A, [("type", 0, 1), ("receiver index", 1, 5), ("sequence", 5, 13), ("sealed", 13, 131)]),
    "keepalive": (False, 0x1A, [("type", 0, 1), ("receiver index", 1, 5), ("sequence", 5, 13), ("sealed", 13, 51)]),
}

GENUINE = "genuine"


def sessionParameters(session, client):
    """
    What both sides of one session must agree on, from the client's view.
    """
    ep = session.epochs[0]
    indexes = (session.localIndex, session.remoteIndex) if client else (session.remoteIndex, session.localIndex)
    return (session.suite.suiteId,) + indexes + (
        session.handshakeTranscript, bytes(ep.keys.c2s), bytes(ep.keys.s2c), session.state)


class Handshake:
    """
    One deterministic handshake between fresh engines (fixed identities,
    cookie key and randomness, started at L{START}), optionally with the
    first packet of one kind replaced by a tampered copy, then run with
    every timer until C{handshakeTimeout} + 1 s.
    """

    def __init__(self, clientConfig, serverConfig, seals):
        self.seals = seals
        self.seals.clear()
        self.server = ServerEngine(SERVER_IDENTITY, serverConfig, authorizedKeys=[CLIENT_IDENTITY.publicKey],
                                   cookieSecret=COOKIE_MASTER, random=deterministicRandom(b"server"))
        self.net = Network(self.server, START)
        self.client = self.net.add(ClientEngine(SERVER_IDENTITY.publicKey, SERVER_ADDR, clientConfig,
                                                identity=CLIENT_IDENTITY, random=deterministicRandom(b"client")))
        self.captured = []

    def start(self, message=None):
        """
        Start the handshake; if C{message} is given, the first packet of
        that kind is taken off the wire (into L{captured}) and the exchange
        stalls there.
        """
        if message is not None:
            fromClient, first, _ = HANDSHAKE_FIELDS[message]
            src = CLIENT_ADDR if fromClient else SERVER_ADDR

            def take(data, s, dst):
                if not self.captured and s == src and data[0] == first:
                    self.captured.append((data, dst))
                    return True
                return False

            self.net.drop = take
        self.client.start(self.net.now)
        self.net.pump()
        self.net.drop = lambda data, src, dst: False

    def finish(self):
        self.net.advance(self.client.config.handshakeTimeout + 1)
        return self


class HandshakeTamperMixin:
    """
    Each single-bit flip of each handshake message, in a fresh handshake,
    is dropped (and the retransmission completes the genuine session), or
    fails the handshake, or leaves it unable to complete, exactly as
    docs/protocol.md says; a session that opens is always the genuine one,
    identical on both sides.
    """

    def setUp(self):
        self.seals = []
        suite = RecordingSuite(getSuite(self.suiteName), self.seals)
        self.clientConfig = Config(suites=(suite,))
        # the server accepts every registered suite: a flipped suite id
        # that names another one is a downgrade attempt
        self.serverConfig = Config(suites=tuple(
            suite if name == self.suiteName else RecordingSuite(getSuite(name), self.seals)
            for name in SUITE_NAMES))
        ref = Handshake(self.clientConfig, self.serverConfig, self.seals)
        ref.start()
        ref.finish()
        self.assertEqual([type(e) for w, e in ref.net.events], [SessionOpened, SessionOpened])
        self.assertNoNonceReuse(self.seals)
        self.packets = {}
        for src, dst, data in ref.net.sent:
            for message, (fromClient, first, _) in HANDSHAKE_FIELDS.items():
                if (src == CLIENT_ADDR) == fromClient and data[0] == first:
                    self.packets.setdefault(message, data)
        self.assertEqual({m: len(d) for m, d in self.packets.items()},
                         {"hello": 64, "cookie": 29, "init": 122, "resp": 122, "confirm": 131, "keepalive": 51})
        self.genuine = sessionParameters(ref.client.session, True)
        self.assertEqual(sessionParameters(serverSessionOf(ref.server, ref.client), False), self.genuine)
        self.clientIndex, self.serverIndex = self.genuine[1:3]

    def expectation(self, message, tampered, run):
        """
        Work out from docs/protocol.md what the tampered copy of C{message}
        leads to.

        @return: C{(fate, immediate, outcome, server drops, client drops)}:
            the L{expectedFate} of the tampered packet, the drops its
            receiver counts on taking it, the outcome (L{GENUINE} or the
            error class the client reports) and the drops each engine has
            counted at the end.
        """
        config = self.clientConfig
        genuine = self.packets[message]
        expires = START + config.handshakeTimeout
        resent = retransmissions(config, START, expires)  # every genuine packet is first sent at START
        receiver = run.server if HANDSHAKE_FIELDS[message][0] else run.client
        fate = expectedFate(receiver, tampered, CLIENT_ADDR if receiver is run.server else SERVER_ADDR, INJECT_AT)
        atReceiver = Counter() if fate in (PASSES, REPLY_COOKIE) else Counter({fate: 1})
        dropsAt = (lambda s, c: (s, c)) if receiver is run.server else (lambda s, c: (c, s))
        if fate not in (PASSES, REPLY_COOKIE):
            # dropped (section 15.1); the retransmission (section 14.1),
            # within the same second so with the same cookie, completes it
            other = Counter()
            if fate == "unknown-session" and receiver is run.server and resetSize(len(tampered)):
                # the server answers with a stateless reset (10.9), which the
                # client, holding no token that could match, drops
                other = Counter({"bad-reset": 1})
            return (fate, atReceiver, GENUINE) + dropsAt(atReceiver, other)
        if message == "hello":
            if tampered[1:9] != genuine[1:9]:
                # the COOKIE echoes the wrong nonce: the client drops it (6.2)
                return fate, Counter(), GENUINE, Counter(), Counter({"unexpected-cookie": 1})
            return fate, Counter(), GENUINE, Counter(), Counter()  # the padding is ignored (5.1)
        if message == "cookie":
            # the client copies timestamp and cookie into its INIT without
            # looking at them (6.2) and resends that INIT (14.1); the server
            # refuses each copy (6.3) until the client gives up
            timestamp, = struct.unpack_from(">I", tampered, 9)
            verdicts = [cookieVerdict(CLIENT_ADDR, timestamp, tampered[13:29], now, config.cookieRotation)
                        for now in [INJECT_AT] + retransmissions(config, INJECT_AT, expires)]
            self.assertNotIn(None, verdicts)
            return fate, Counter(), HandshakeTimeout, Counter(verdicts), Counter()
        if message == "init" and fate == REPLY_COOKIE:
            # a type flip made the padded INIT a HELLO (5.1: 64 bytes or more):
            # its COOKIE is not awaited (6.2); the resent INIT completes it
            return fate, Counter(), GENUINE, Counter(), Counter({"unexpected-cookie": 1})
        if message == "init":
            init = P.HandshakeInit.decode(tampered)
            for problem in ("no-common-suite", "bad-ephemeral"):
                if (problem == "no-common-suite"  # 7.2 step 7
                        and not any(s.suiteId in init.suites for s in self.serverConfig.suites)
                        or problem == "bad-ephemeral" and isLowOrder(init.ephemeral)):  # 7.2 step 8
                    # dropped, after the cookie check; the resent INIT completes it.
                    # No common suite is answered with a signed refusal (7.5) if no
                    # longer than the INIT; it signs the tampered INIT, so the
                    # client, checking it against its own, drops it
                    refused = (problem == "no-common-suite"
                               and 6 + len(self.serverConfig.suites) + 64 <= len(tampered))
                    return (fate, Counter({problem: 1}), GENUINE, Counter({problem: 1}),
                            Counter({"bad-refusal": 1} if refused else {}))
            if init.senderIndex != self.clientIndex:
                # the RESP names an index the client does not have (7.3
                # step 2); the client's INIT, resent, reuses the ephemeral
                # key of the pending session under another index (7.2 step
                # 3): no reply, until both sides time out (14.1)
                return (fate, Counter(), HandshakeTimeout,
                        Counter({"duplicate-ephemeral": len(resent), "handshake-expired": 1}),
                        Counter({"unexpected-resp": 1}))
            # the server signs a transcript over the INIT it received, which
            # is not the one the client sent (7.3 step 3)
            return fate, Counter(), BadServerSignature, Counter({"handshake-expired": 1}), Counter()
        if message == "resp":
            if tampered[:42] != genuine[:42] or tampered[58:] != genuine[58:]:
                # the transcript covers the first 42 bytes (8.1), which the
                # signature then signs (8.4, 7.3 step 3)
                return fate, Counter(), BadServerSignature, Counter({"handshake-expired": 1}), Counter()
            # only the key confirmation differs (8.3, 7.3 step 6)
            return fate, Counter(), HandshakeFailed, Counter({"handshake-expired": 1}), Counter()
        raise AssertionError(f"a tampered {message} cannot pass: {fate}")

    def assertTamperedHandshake(self, message, bit):
        """
        Run a handshake with bit C{bit} of the first C{message} flipped and
        check that it ends exactly as L{expectation} says.

        @return: a short label of the outcome, for the tallies.
        """
        run = Handshake(self.clientConfig, self.serverConfig, self.seals)
        run.start(message)
        [(data, dst)] = run.captured
        self.assertEqual(data, self.packets[message])
        tampered = flip(data, bit)
        run.net.now = INJECT_AT  # later than anything received: lastRecv would show
        fate, immediate, outcome, serverDrops, clientDrops = self.expectation(message, tampered, run)
        what = f"{self.suiteName}: {message} bit {bit}: expected {fate}, {getattr(outcome, '__name__', outcome)}"
        receiver = run.server if dst == SERVER_ADDR else run.client
        src = CLIENT_ADDR if dst == SERVER_ADDR else SERVER_ADDR
        before = stateOf(receiver)
        drops = Counter(receiver.drops)
        receiver.receiveDatagram(tampered, src, run.net.now)
        self.assertEqual(added(receiver, drops), immediate, what)
        if immediate:
            # a dropped packet changes nothing and is not answered; a refused
            # (cookie-proven) client is only reported, for the server's log
            reported = [e for e in receiver.events if not isinstance(e, ClientRefused)]
            # (the one exception, section 10.9: a smaller stateless reset for a session it does not know)
            outbox = [(d, a) for d, a in receiver.outbox
                      if not ("unknown-session" in immediate and isResetFor(d, tampered) and a == src)
                      and not ("no-common-suite" in immediate and d[0] == P.HANDSHAKE_REFUSED
                               and len(d) <= len(tampered) and a == src)]
            self.assertEqual((outbox, reported), ([], []), what)
            self.assertEqual([e.reason for e in receiver.events if isinstance(e, ClientRefused)],
                             [r for r in immediate if r in ("rate-limited", "too-many-pending", "server-full",
                                                            "no-common-suite")], what)
            receiver.events = []
            self.assertEqual(stateOf(receiver), before, what)
        run.net.pump()
        run.finish()
        server, client = run.server, run.client
        serverEvents = [e for w, e in run.net.events if w == "server"]
        clientEvents = [e for w, e in run.net.events if w == CLIENT_ADDR]
        self.assertEqual((Counter(server.drops), Counter(client.drops)), (serverDrops, clientDrops), what)
        if outcome == GENUINE:
            self.assertEqual([type(e) for e in serverEvents + clientEvents], [SessionOpened, SessionOpened], what)
            self.assertEqual(client.state, ESTABLISHED, what)
            self.assertEqual(sessionParameters(client.session, True), self.genuine, what)
            [session] = server.sessions.values()
            self.assertEqual(sessionParameters(session, False), self.genuine, what)
            self.assertEqual(session.peerKey, CLIENT_IDENTITY.publicKey, what)
            # named by what the tampered packet caused, not by the genuine side's
            # drop of the server's answer to it (a reset or a refusal)
            caused = list(immediate) or [r for r in serverDrops + clientDrops if r not in ("bad-reset", "bad-refusal")]
            label = "untouched" if not caused else "recovered:" + min(caused)
        else:
            self.assertEqual(serverEvents, [], what)
            [failure] = clientEvents
            self.assertIsInstance(failure, HandshakeFailure, what)
            self.assertIs(type(failure.error), outcome, what)
            self.assertEqual(client.state, FAILED, what)
            self.assertIsNone(client.session, what)
            self.assertEqual((server.sessions, server.byEphemeral, server.pendingCount, server.openCount),
                             ({}, {}, 0, 0), what)
            label = outcome.__name__
        self.assertNoNonceReuse(self.seals)
        return label

    def assertEveryBit(self, message, expected):
        """
        Flip every bit of C{message} in turn; C{expected} maps each field
        to the set of outcome labels its bits must produce (every label
        at least once).
        """
        _, _, fields = HANDSHAKE_FIELDS[message]
        self.assertEqual(fields[-1][2], len(self.packets[message]))
        tallies = {}
        for field, start, end in fields:
            tallies[field] = {self.assertTamperedHandshake(message, bit) for bit in range(start * 8, end * 8)}
        self.maxDiff = None
        self.assertEqual(tallies, expected)
        COUNTS["part 2: handshakes with one bit flipped", self.suiteName, message] += len(self.packets[message]) * 8

    def test_hello(self):
        """
        HELLO (64 bytes, 512 bits): a flip in the first byte is dropped by
        the server (C{unknown-type}; C{unexpected-type} as gossip6's G6_INIT
        on a sudp/1 server; C{bad-field} as an INIT with count 0;
        C{unknown-session} as a phase-1 DATA packet; C{wrong-version}); a
        flip in the nonce comes back in the COOKIE, which the client drops
        (C{unexpected-cookie}); both recover on the client's retransmission
        to the genuine session. A flip in the padding is ignored: the
        genuine session opens with no drop at all.
        """
        self.assertEveryBit("hello", {
            "type": {"recovered:unknown-type", "recovered:unexpected-type", "recovered:bad-field",
                     "recovered:unknown-session", "recovered:wrong-version"},
            "nonce": {"recovered:unexpected-cookie"},
            "padding": {"untouched"},
        })

    def test_cookie(self):
        """
        COOKIE (29 bytes, 232 bits): a flip in the first byte or the nonce
        is dropped by the client and its HELLO, resent, gets the genuine
        session. A flip in the timestamp or the cookie, which the client
        copies without checking, makes every INIT it sends be refused
        (C{expired-cookie} for a timestamp in the future or too old,
        C{bad-cookie} otherwise, as section 6.3 computes it) until the
        handshake times out: the tampered value never completes a handshake.
        """
        self.assertEveryBit("cookie", {
            "type": {"recovered:unexpected-type", "recovered:unknown-type", "recovered:no-session",
                     "recovered:wrong-version"},
            "nonce": {"recovered:unexpected-cookie"},
            "timestamp": {"HandshakeTimeout"},
            "cookie": {"HandshakeTimeout"},
        })

    def test_init(self):
        """
        HANDSHAKE_INIT (122 bytes with its zero padding, 976 bits): flips
        in the type, timestamp, cookie, padding and count are dropped by the
        server (C{unexpected-type}, one flip making it a HANDSHAKE_REFUSED,
        which only servers send; C{unknown-session}, C{wrong-version};
        C{expired-cookie}/C{bad-cookie}; C{bad-padding};
        C{bad-field}), or, as a HELLO, answered with a COOKIE the client
        drops (C{unexpected-cookie}), and the client's retransmission opens
        the genuine session; a count that still fits the padding is a
        transcript the client does not have (C{BadServerSignature}). A flip in the ephemeral key passes the cookie (which does
        not cover it) but the server's signature is over a transcript the
        client does not have: C{BadServerSignature}. A flipped offered
        suite id is C{no-common-suite}, or, if it names another suite the
        server accepts, a downgrade caught by the signature. A flipped
        sender index sends the RESP to an index the client does not have;
        the client's resent INIT then reuses the pending session's
        ephemeral key and is dropped (C{duplicate-ephemeral}) until the
        handshake times out.
        """
        downgrade = {"BadServerSignature" if id ^ (1 << b) in [s.suiteId for s in self.serverConfig.suites]
                     else "recovered:no-common-suite"
                     for id in [getSuite(self.suiteName).suiteId] for b in range(8)}
        self.assertEveryBit("init", {
            "type": {"recovered:unexpected-type", "recovered:unexpected-cookie",
                     "recovered:unknown-session", "recovered:wrong-version"},
            "sender index": {"HandshakeTimeout"},
            "timestamp": {"recovered:expired-cookie", "recovered:bad-cookie"},
            "cookie": {"recovered:bad-cookie"},
            "ephemeral": {"BadServerSignature"},
            "count": {"recovered:bad-field", "BadServerSignature"},
            "suites": downgrade,
            "padding": {"recovered:bad-padding"},
        })

    def test_resp(self):
        """
        HANDSHAKE_RESP (122 bytes, 976 bits): a flip in the type (one turns
        it into gossip6's G6_RESP: C{unexpected-type}; one into a
        STATELESS_RESET, too long to carry the token: C{bad-reset}) or the
        receiver index is dropped by the client, whose resent INIT gets the
        same RESP again and the genuine session. A flip in the sender
        index, suite, ephemeral key (all in the transcript) or signature
        fails the handshake with C{BadServerSignature}; a flip in the key
        confirmation, which the signature does not cover, fails it with
        C{HandshakeFailed} (confirmation mismatch). The server's pending
        session then expires.
        """
        self.assertEveryBit("resp", {
            "type": {"recovered:unknown-type", "recovered:unexpected-type", "recovered:wrong-version",
                     "recovered:bad-reset"},
            "receiver index": {"recovered:unexpected-resp"},
            "sender index": {"BadServerSignature"},
            "suite": {"BadServerSignature"},
            "ephemeral": {"BadServerSignature"},
            "confirmation": {"HandshakeFailed"},
            "signature": {"BadServerSignature"},
        })

    def test_confirm(self):
        """
        The client's CONFIRM (a 131-byte CONTROL packet holding CLIENT_AUTH
        and CONFIRM, 1048 bits): every flip is dropped by the pending
        server session (C{no-key}, C{bad-tag}, C{unknown-type},
        C{unexpected-type}, C{wrong-version}, C{unknown-session}) without
        opening it, and the client's retransmission (resealed under the next
        sequence number) opens the genuine session.
        """
        self.assertEveryBit("confirm", {
            "type": {"recovered:no-key", "recovered:bad-tag", "recovered:unknown-type",
                     "recovered:unexpected-type", "recovered:wrong-version"},
            "receiver index": {"recovered:unknown-session"},
            "sequence": {"recovered:bad-tag"},
            "sealed": {"recovered:bad-tag"},
        })

    def test_keepalive(self):
        """
        The server's KEEPALIVE answer to the CONFIRM, with its RESET_TOKEN (51 bytes, 408 bits),
        which opens the client's session: every flip is dropped by the
        confirming client (C{no-key}, C{bad-tag}, C{unknown-type},
        C{oversized} as a COOKIE, C{wrong-version}, C{unknown-session})
        without opening it; the client resends its CONFIRM, the server
        answers again and the genuine session opens.
        """
        self.assertEveryBit("keepalive", {
            "type": {"recovered:no-key", "recovered:bad-tag", "recovered:unknown-type",
                     "recovered:oversized", "recovered:wrong-version"},
            "receiver index": {"recovered:unknown-session"},
            "sequence": {"recovered:bad-tag"},
            "sealed": {"recovered:bad-tag"},
        })


_forEverySuite(HandshakeTamperMixin)


# -- part 3: replays --------------------------------------------------------------


class Sent:
    """
    One DATA packet a test sealed, with the epoch it was sealed under.
    """

    __slots__ = ("packet", "epoch", "message", "delivered")

    def __init__(self, packet, epoch, message):
        self.packet = packet
        self.epoch = epoch
        self.message = message
        self.delivered = False


class Direction:
    """
    One direction of the session: who seals, who receives, from where.
    """

    def __init__(self, name, sender, send, senderSession, receiver, receiverSession, src):
        self.name = name
        self.sender = sender
        self.send = send
        self.senderSession = senderSession
        self.receiver = receiver
        self.receiverSession = receiverSession
        self.src = src
        self.sent = []


class ReplayMixin:
    """
    Every DATA packet, both ways, replayed at every stage of a session's
    life is dropped with the reason docs/protocol.md gives and never
    delivered twice, through both receive entry points.
    """

    ordering = "window"
    window = 1024

    def setUp(self):
        self.seals = []
        self.suite = RecordingSuite(getSuite(self.suiteName), self.seals)
        self.config = Config(suites=(self.suite,), ordering=self.ordering, replayWindow=self.window,
                             rekeyAfterTime=100.0)
        self.net, self.server, self.client = openPair(self.config)
        session = serverSessionOf(self.server, self.client)
        client, server = self.client, self.server
        self.directions = [
            Direction("client to server", client, lambda m: client.sendMessage(client.session, m, self.net.now),
                      lambda: client.session, server, lambda: server.sessions.get(session.localIndex),
                      CLIENT_ADDR),
            Direction("server to client", server, lambda m: server.sendMessage(session, m, self.net.now),
                      lambda: session, client, lambda: client.session, SERVER_ADDR),
        ]
        self.rng = random.Random(f"{self.suiteName} {self.ordering}")

    def seal(self, d, n, tag):
        """
        Seal C{n} DATA packets in direction C{d}, undelivered.
        """
        out = []
        for i in range(n):
            message = b"%s %s %d" % (d.name[0].encode(), tag, i)
            epoch = d.senderSession().sendEpoch.number
            d.send(message)
            [(packet, _)] = takeOutbox(d.sender)
            self.assertEqual(packet[0], 0x18 | (epoch & 1))
            out.append(Sent(packet, epoch, message))
        d.sent.extend(out)
        return out

    def deliver(self, d, sents):
        """
        Deliver C{sents} in one C{receiveDatagrams} batch; each is accepted.
        """
        drops = Counter(d.receiver.drops)
        d.receiver.receiveDatagrams([s.packet for s in sents], d.src, self.net.now)
        self.assertEqual(added(d.receiver, drops), Counter())
        self.assertEqual(messagesOf(d.receiver.events), [s.message for s in sents])
        d.receiver.events = []
        for s in sents:
            s.delivered = True

    def assertReplayed(self, d, sents, allowed):
        """
        Replay every packet of C{sents} to its receiver, one at a time
        through C{receiveDatagram}, then all in one C{receiveDatagrams}
        batch: each is dropped with the reason L{expectedFate} gives, which
        must be in C{allowed}; nothing is delivered or sent, and nothing
        changes but the forgery counter (for a C{bad-tag}).

        @return: a Counter of the reasons.
        """
        engine, now = d.receiver, self.net.now
        cache = {}
        fates = [expectedFate(engine, s.packet, d.src, now, cache) for s in sents]
        self.assertLessEqual(set(fates), set(allowed), d.name)
        before = stateOf(engine)
        failures = sum(failureCounts(engine).values())
        for entry in ("receiveDatagram", "receiveDatagrams"):
            if entry == "receiveDatagram":
                for s, fate in zip(sents, fates):
                    drops = Counter(engine.drops)
                    engine.receiveDatagram(s.packet, d.src, now)
                    self.assertEqual(added(engine, drops), Counter({fate: 1}), f"{d.name}: {s.message}")
                    self.assertEqual(engine.events, [], f"{d.name}: {s.message} delivered again")
            else:
                drops = Counter(engine.drops)
                engine.receiveDatagrams([s.packet for s in sents], d.src, now)
                self.assertEqual(added(engine, drops), Counter(fates), d.name)
                self.assertEqual(engine.events, [], d.name)
            # the only answers: stateless resets (10.9) to packets of a session
            # the server no longer knows, each smaller than its packet, within the rate
            out = takeOutbox(engine)
            self.assertLessEqual(len(out), fates.count("unknown-session") if isinstance(engine, ServerEngine) else 0)
            self.assertTrue(all(r[:1] == bytes([P.STATELESS_RESET]) and len(r) <= 41 and a == d.src
                                for r, a in out), d.name)
            self.assertEqual(stateOf(engine), before, d.name)
        self.assertEqual(sum(failureCounts(engine).values()) - failures, 2 * fates.count("bad-tag"))
        COUNTS["part 3: replays", self.suiteName, self.ordering] += 2 * len(sents)
        return Counter(fates)

    def heldEpochs(self):
        return [[None if ep is None else ep.number for ep in s.epochs]
                for s in (self.client.session, serverSessionOf(self.server, self.client))]

    def test_replays(self):
        """
        Replays of DATA packets, both ways:

          - (a) within the window: each packet replayed right after it was
            accepted (delivery shuffled with C{ordering=window}, in order
            with C{strict}), and all of them again later: C{replay}; a
            packet held back and sent late is accepted with
            C{ordering=window} and is a C{replay} with C{strict};
          - (b) after more than C{replayWindow} (1024) later packets: every
            packet so far, including one that was never delivered and is
            now below the window: C{replay};
          - (c) after a rekey (C{_startRekey}), while epoch 0 is in its
            grace period: every epoch-0 packet is a C{replay}, so is every
            epoch-1 packet;
          - (d) once epoch 0 is retired (C{oldKeyGrace} later): epoch-0
            packets are C{no-key}, epoch-1 packets C{replay};
          - (e) after a second rekey started by the client's timer at
            C{rekeyAfterTime}: epoch 2 has taken key phase 0, so epoch-0
            packets are tried under epoch 2 and fail (C{bad-tag}, or
            C{replay} where epoch 2's window says so); epoch-1 packets (in
            grace) and epoch-2 packets are C{replay};
          - (f) once epoch 1 is retired: epoch-1 packets are C{no-key};
          - (g) after the session closed: every packet is
            C{unknown-session} at the server (the session is gone) and
            C{no-key} at the client (its session holds no keys).

        No (key, nonce) is sealed twice over the whole run.
        """
        strict = self.ordering == "strict"
        # (a)
        for d in self.directions:
            batch = self.seal(d, 40, b"a")
            late = batch.pop(7)
            if not strict:
                self.rng.shuffle(batch)
            for i, s in enumerate(batch):
                if i % 2:
                    d.receiver.receiveDatagram(s.packet, d.src, self.net.now)
                else:
                    d.receiver.receiveDatagrams([s.packet], d.src, self.net.now)
                self.assertEqual(messagesOf(d.receiver.events), [s.message])
                d.receiver.events = []
                s.delivered = True
                self.assertEqual(self.assertReplayed(d, [s], {"replay"}), Counter(replay=1))
            if strict:
                self.assertEqual(self.assertReplayed(d, [late], {"replay"}), Counter(replay=1))
            else:
                self.deliver(d, [late])
            self.assertReplayed(d, [s for s in d.sent if s.delivered], {"replay"})
        # (b)
        for d in self.directions:
            withheld = self.seal(d, 1, b"b-withheld")
            self.deliver(d, self.seal(d, self.window + 64, b"b"))
            reasons = self.assertReplayed(d, d.sent, {"replay"})
            self.assertEqual(reasons, Counter(replay=len(d.sent)))
            self.assertFalse(withheld[0].delivered)
        # (c)
        self.client.session._startRekey(self.net.now)
        self.net.pump()
        for d in self.directions:
            self.deliver(d, self.seal(d, 10, b"c"))
        self.assertEqual(self.heldEpochs(), [[0, 1], [0, 1]])
        for d in self.directions:
            self.assertLess(d.receiverSession().epochs[0].retireAt, float("inf"))
            self.assertReplayed(d, [s for s in d.sent if s.epoch == 0], {"replay"})
            self.assertReplayed(d, [s for s in d.sent if s.epoch == 1], {"replay"})
        # (d)
        self.net.advance(self.config.oldKeyGrace + 0.5)
        self.assertEqual(self.heldEpochs(), [[None, 1], [None, 1]])
        for d in self.directions:
            self.assertReplayed(d, [s for s in d.sent if s.epoch == 0], {"no-key"})
            self.assertReplayed(d, [s for s in d.sent if s.epoch == 1], {"replay"})
        # (e): run every timer, a second at a time, until the client's
        # rekey timer has fired and the rekey is done
        while self.client.session.sendEpoch.number < 2:
            self.net.advance(1.0)
        for d in self.directions:
            self.deliver(d, self.seal(d, 10, b"e"))
        self.assertEqual(self.heldEpochs(), [[2, 1], [2, 1]])
        self.assertEqual([e for w, e in self.net.events if not isinstance(e, MessageReceived)], [])
        for d in self.directions:
            reasons = self.assertReplayed(d, [s for s in d.sent if s.epoch == 0], {"bad-tag", "replay"})
            self.assertGreater(reasons["bad-tag"], 0)
            self.assertReplayed(d, [s for s in d.sent if s.epoch == 1], {"replay"})
            self.assertReplayed(d, [s for s in d.sent if s.epoch == 2], {"replay"})
        # (f)
        self.net.advance(self.config.oldKeyGrace + 0.5)
        self.assertEqual(self.heldEpochs(), [[2, None], [2, None]])
        for d in self.directions:
            self.assertReplayed(d, [s for s in d.sent if s.epoch == 1], {"no-key"})
            self.assertReplayed(d, [s for s in d.sent if s.epoch != 1], {"bad-tag", "replay"})
        # (g)
        self.client.closeSession(self.client.session, self.net.now)
        self.net.pump()
        self.assertEqual(self.server.sessions, {})
        for d, reason in zip(self.directions, ("unknown-session", "no-key")):
            self.assertEqual(self.assertReplayed(d, d.sent, {reason}), Counter({reason: len(d.sent)}))
        # every message was delivered exactly once: the replays delivered nothing
        for d in self.directions:
            self.assertEqual(sum(s.delivered for s in d.sent), len(d.sent) - (2 if strict else 1))
        self.assertNoNonceReuse(self.seals)


_forEverySuite(ReplayMixin, ({}, {"ordering": "strict", "tag": "_strict"}))


# -- part 4: nonce uniqueness -----------------------------------------------------


ROUNDS = 2000


class NonceUniquenessMixin:
    """
    No sealing side ever uses a (key, nonce) pair twice, whatever the
    network does.
    """

    def test_longLossyRun(self):
        """
        A long run (L{ROUNDS} rounds) with traffic both ways, rekeys by message
        count (every 9 DATA packets), by time (C{rekeyAfterTime} 20 s) and
        by the server's asking, 30% of datagrams lost (rekey requests,
        their retransmissions and responses included), outboxes
        shuffled, time jumping so that rekey retransmissions, keepalives and
        key retirement run, and old datagrams replayed and bit-flipped
        copies injected at random: every (key, nonce) a sealing side uses
        (the suite's real nonce, recorded by L{RecordingSuite}) is unique,
        every packet that authenticated was sealed by the peer, no
        message is delivered twice or altered, and the session survives.
        """
        rng = random.Random(f"nonces {self.suiteName}")
        seals, opens = [], []
        suite = RecordingSuite(getSuite(self.suiteName), seals, opens)
        config = Config(suites=(suite,), rekeyAfterMessages=9, rekeyAfterTime=20.0)
        net, server, client = openPair(config)
        session = serverSessionOf(server, client)
        wire = []

        def lossy(data, src, dst):
            wire.append((data, src))
            return rng.random() < 0.3

        net.drop = lossy
        sent = {"server": {b"last"}, CLIENT_ADDR: {b"last"}}  # by receiver
        injected = 0
        for i in range(ROUNDS):
            for j in range(rng.randrange(3)):
                message = b"c%d.%d" % (i, j)
                client.sendMessage(client.session, message, net.now)
                sent["server"].add(message)
            for j in range(rng.randrange(3)):
                message = b"s%d.%d" % (i, j)
                server.sendMessage(session, message, net.now)
                sent[CLIENT_ADDR].add(message)
            for engine in (client, server):
                rng.shuffle(engine.outbox)
            net.pump()
            for _ in range(2):
                data, src = rng.choice(wire)
                if rng.random() < 0.5:
                    data = flip(data, rng.randrange(len(data) * 8))
                target = server if src != SERVER_ADDR else client
                target.receiveDatagram(data, src, net.now)
                injected += 1
            net.pump()
            net.advance(rng.choice((0.0, 0.0, 0.3, 1.1, 2.5)))
        # a loss-free end: any rekey in progress completes, and one message
        # each way brings both sides to the same epoch
        net.drop = lambda data, src, dst: False
        net.advance(2)
        client.sendMessage(client.session, b"last", net.now)
        net.pump()
        server.sendMessage(session, b"last", net.now)
        net.pump()
        self.assertEqual((client.session.state, session.state), ("open", "open"))
        self.assertEqual([e for w, e in net.events if isinstance(e, (SessionEnded, HandshakeFailure))], [])
        self.assertGreaterEqual(client.session.stats["rekeys"], 150)
        self.assertGreater(session.stats["rekeysStarted"], 0)  # the server asked, too
        self.assertEqual(client.session.sendEpoch.number, session.sendEpoch.number)
        self.assertNoNonceReuse(seals)
        self.assertLessEqual(set(opens), set(seals))
        self.assertEqual(len(opens), len(set(opens)))  # nothing authenticated twice
        # two keys an epoch, each side making each once or more; none shared
        self.assertEqual(len(suite.keys), 2 * (client.session.sendEpoch.number + 1))
        got = [(w, e.message) for w, e in net.events if isinstance(e, MessageReceived)]
        self.assertEqual(len(got), len(set(got)))
        self.assertEqual([(w, m) for w, m in got if m not in sent[w]], [])
        self.assertGreater(len(got), 2000)
        COUNTS["part 4: packets sealed", self.suiteName] += len(seals)
        COUNTS["part 4: datagrams injected", self.suiteName] += injected
        COUNTS["part 4: rekeys", self.suiteName] += client.session.stats["rekeys"]


_forEverySuite(NonceUniquenessMixin)
