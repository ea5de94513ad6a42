"""
A bounded mutation run against the sudp/1 server engine, in memory.

    python stress/mutate.py [--count 1000000] [--seed N] [--quick] [--json FILE]

A real sudp/1 session runs between a L{ServerEngine} and a L{ClientEngine}
(with a client identity, so its CONFIRM carries CLIENT_AUTH), joined in
memory on a virtual clock. Every packet they exchange is captured: HELLO,
COOKIE, INIT, RESP, CONFIRM, DATA both ways, CONTROL keepalives, rekey
requests and responses; from time to time a second, short-lived client runs
a whole handshake from another address, sends a message and closes, so that
fresh handshake packets (with cookies still valid) and CLOSE records are
captured too.

COUNT mutated datagrams are then fed to the server from many source
addresses (random IPv4 and IPv6 ones, and the two clients' own), in batches
through C{server.receiveDatagrams(list, addr, now)} (the C data path where
the speedups are built) and one at a time through C{receiveDatagram}. The
mutations: bit flips, byte substitutions, truncations, extensions (some past
maxDatagramSize), splices of two packets, header and field rewrites (type,
index, sequence number, INIT fields), exact replays of genuine packets,
packets aimed at the live session's index, random bytes and empty datagrams.

Meanwhile the real session keeps going: every N mutated datagrams (a tick:
0.5 s of virtual time) the client sends 1 to 4 genuine messages (half the
time inside a batch of mutated datagrams from its own address, so the C
loop stops at junk and resumes), except for 20 quiet seconds a minute, in
which it sends keepalives; the server sends a message every 25 s (and
keepalives in between); the client rekeys every 30 s; every 10 s a burst
of 40 INITs with a valid cookie and fresh keys hits the rate limiter; time
runs every timer that falls due, so handshakes also expire.

Checked, and reported (exit status 1 if any check fails):

  - no exception escapes the engine;
  - every genuine message is delivered exactly once, in order, both ways;
    the session is still open at both ends and never ended;
  - nothing but a 29-byte COOKIE is sent to an address that has not proven
    itself (no amplification), and every drop reason is a documented one;
  - memory is flat: traced Python memory (tracemalloc, on from the end of
    the warm-up; --no-tracemalloc for the raw rate) and RSS right after
    warm-up against the end (and mid-run, reported), and the server's
    containers (sessions, byEphemeral, timers, rate limiter, cookie
    secrets, cipher cache) stay bounded. The server's cipher cache is set
    to 64 epochs, so that it is full within the warm-up (it holds the
    epochs of closed sessions until pushed out, which would otherwise look
    like growth) and evicts the live session's ciphers all along;
  - the run exercised what it claims (keepalives, rekeys, every packet kind).

The script imports only sudp (not sudp_test). Nothing here is a socket.
"""

import argparse
import gc
import json
import os
import random
import sys
import time
import traceback
import tracemalloc
from collections import Counter, deque

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from sudp import speedups  # noqa: E402
from sudp.keys import Identity  # noqa: E402
from sudp.udp import packets as P  # noqa: E402
from sudp.udp.client import ClientEngine  # noqa: E402
from sudp.udp.config import Config  # noqa: E402
from sudp.udp.events import HandshakeFailure, MessageReceived, SessionEnded, SessionOpened  # noqa: E402
from sudp.udp.reset import MAX_RESET_SIZE  # noqa: E402
from sudp.udp.server import ServerEngine  # noqa: E402
from sudp.udp.session import OPEN  # noqa: E402

SERVER_ADDR = ("198.51.100.7", 9000)
CLIENT_ADDR = ("192.0.2.1", 40000)
HELPER_ADDR = ("192.0.2.2", 40001)
PROVEN = {CLIENT_ADDR, HELPER_ADDR}  # addresses whose handshakes completed (cookies proven)
START = 1_700_000_000.0

TICK_SECONDS = 0.5  # virtual time between two genuine steps
REKEY_AFTER = 30.0  # seconds: several rekeys even in --quick
CLIENT_TALKS, CLIENT_QUIET = 80, 40  # ticks: every minute the client is quiet for 20 s (> keepaliveInterval)
SERVER_EVERY = 50  # ticks between server messages (25 s: the server sends keepalives)
HELPER_EVERY = 60  # ticks between helper handshakes (30 s)
SERVER_CIPHER_CACHE = 64
FLOOD_EVERY, FLOOD_SIZE = 20, 40  # ticks between INIT floods, INITs in one

# section 15.1 of docs/protocol.md, and the reasons counted when an
# authenticated packet closes a session
DOCUMENTED_DROPS = {
    "oversized", "empty", "wrong-version", "unknown-type", "unexpected-type", "truncated",
    "bad-field", "expired-cookie", "bad-cookie", "duplicate-ephemeral", "rate-limited",
    "too-many-pending", "server-full", "no-common-suite", "bad-ephemeral", "unexpected-cookie",
    "unexpected-resp", "no-session", "unknown-session", "no-key", "replay", "bad-tag", "not-open",
    "bad-rekey", "handshake-expired", "wrong-source", "empty-control", "unknown-record",
    "bad-record", "bad-client-signature", "bad-rekey-signature", "init-too-short-for-resend",
    "bad-padding", "pending-evicted", "stale-from-new-address", "path-budget", "path-response-mismatch",
    "path-validation-failed", "path-abandoned", "unexpected-path-challenge", "rekey-rate-limited",
    "bad-reset", "unexpected-refusal", "bad-refusal", "port-unreachable", "bad-next-key",
}

VALID_TYPES = [0x11, 0x12, 0x13, 0x14, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1C]
# X25519 points of small order (all-zero shared secrets), for INIT ephemerals
LOW_ORDER = [
    bytes(32),
    bytes([1]) + bytes(31),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
]
INTERESTING = [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF, 0x11, 0x13, 0x18, 0x1A]

MUTATIONS = [
    # (name, weight)
    ("flip", 14), ("substitute", 12), ("truncate", 10), ("extend", 8), ("splice", 10),
    ("rewrite", 16), ("aimed", 8), ("replay", 8), ("random", 8), ("oversize", 2),
    ("empty", 1), ("duplicate-run", 3),
]


def rss():
    """
    @return: the resident set size of this process in bytes, or None.
    """
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        try:
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        except Exception:
            return None


class Failures:
    """
    The checks that failed, with details; the run goes on after a failure.
    """

    def __init__(self):
        self.items = Counter()
        self.samples = []

    def add(self, check, detail):
        self.items[check] += 1
        if len(self.samples) < 20:
            self.samples.append({"check": check, "detail": detail})


class Driver:
    """
    The two engines, the clock, the corpus of captured packets and the
    mutator.
    """

    def __init__(self, seed, genuineEvery):
        self.rng = random.Random(seed)
        engineRandom = random.Random(seed ^ 0x5EED5EED)
        self.randbytes = engineRandom.randbytes
        self.genuineEvery = genuineEvery
        self.now = START
        self.config = Config(rekeyAfterTime=REKEY_AFTER)
        # a small cipher cache, full early in the warm-up, so its bounded
        # contents do not look like growth, and evictions of the live
        # session's ciphers happen all along
        self.serverConfig = self.config.replace(cipherCache=SERVER_CIPHER_CACHE)
        self.identity = Identity(self.randbytes(32))
        self.server = ServerEngine(self.identity, self.serverConfig, random=self.randbytes)
        self.failures = Failures()
        self.exceptions = []
        self.exceptionCount = 0
        self.corpus = {}  # first byte -> deque of genuine packets already delivered
        self.captured = Counter()  # by label
        self.keepalives = Counter()  # by sender
        self.mutations = Counter()
        self.replies = Counter()  # what the server sent, by kind
        self.fed = 0
        self.fedBatch = 0
        self.fedSingle = 0
        self.batches = 0
        self.engineSeconds = 0.0
        self.mutating = False
        self.closing = False
        # genuine traffic
        self.c2sSent = self.c2sDelivered = 0
        self.s2cSent = self.s2cDelivered = 0
        self.c2sPending = deque()
        self.s2cPending = deque()
        self.helperSent = self.helperDelivered = 0
        self.helperPending = deque()
        self.helpers = 0
        self.liveEnded = []
        self.helper = None
        self.helperSession = None
        self.ticks = 0
        self.addressPool = self._addresses()
        self.maxContainers = Counter()
        # the live session
        self.client = ClientEngine(self.identity.publicKey, SERVER_ADDR, self.config,
                                   identity=Identity(self.randbytes(32)), random=self.randbytes)
        self.client.start(self.now)
        self.handshaking = CLIENT_ADDR
        self.pump()
        self.handshaking = None
        if self.client.session is None or self.client.session.state is not OPEN:
            raise SystemExit("the live session did not open")
        self.liveIndex = self.client.session.remoteIndex
        self.live = self.server.sessions[self.liveIndex]
        if self.live.state is not OPEN:
            raise SystemExit("the live session did not open at the server")

    def _addresses(self):
        rng = self.rng
        pool = []
        for _ in range(3000):
            pool.append((f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                         rng.randrange(1, 65536)))
        for _ in range(1000):
            pool.append((f"2001:db8::{rng.randrange(1 << 16):x}:{rng.randrange(1 << 16):x}",
                         rng.randrange(1, 65536)))
        pool.append((CLIENT_ADDR[0], CLIENT_ADDR[1] + 1))  # the client's host, another port
        pool.append(("::ffff:192.0.2.1", CLIENT_ADDR[1]))
        return pool

    def address(self):
        r = self.rng.random()
        if r < 0.12:
            return CLIENT_ADDR
        if r < 0.22:
            return HELPER_ADDR
        return self.addressPool[self.rng.randrange(len(self.addressPool))]

    # -- moving genuine packets ----------------------------------------------------

    def capture(self, data, label):
        kind = data[0] if data else -1
        q = self.corpus.get(kind)
        if q is None:
            q = self.corpus[kind] = deque(maxlen=32)
            self.kinds = list(self.corpus)
        q.append(data)
        self.captured[label] += 1

    def label(self, data, sender):
        t = data[0]
        if t in (0x1A, 0x1B):
            size = len(data)
            if sender == "client" and self.handshaking and data[5:13] == bytes(8) and t == 0x1A:
                return "CONFIRM"
            if sender == "client" and self.closing:
                return "CLOSE"
            if size == 32:
                self.keepalives[sender] += 1
                return "KEEPALIVE"
            if size == 68:
                return "REKEY_REQUEST"
            if size == 36:
                return "REKEY_ASK"
            if size == 132:
                return "REKEY_RESPONSE"
            return "CONTROL"
        return {0x11: "HELLO", 0x12: "COOKIE", 0x13: "INIT", 0x14: "RESP", 0x18: "DATA",
                0x19: "DATA"}.get(t, "other")

    def toServer(self, datagrams, addr, batch):
        """
        Hand C{datagrams} to the server (all from C{addr}): as one batch
        through receiveDatagrams, or one by one through receiveDatagram.
        """
        server = self.server
        t0 = time.perf_counter()
        try:
            if batch:
                server.receiveDatagrams(datagrams, addr, self.now)
            else:
                for d in datagrams:
                    server.receiveDatagram(d, addr, self.now)
        except Exception as e:
            self.exceptionCount += 1
            if len(self.exceptions) < 10:
                self.exceptions.append({
                    "error": f"{type(e).__name__}: {e}",
                    "traceback": traceback.format_exc(),
                    "path": "receiveDatagrams" if batch else "receiveDatagram",
                    "addr": list(addr),
                    "now": self.now,
                    "datagrams": [d.hex() for d in datagrams[:8]],
                })
        self.engineSeconds += time.perf_counter() - t0
        self.serverEvents()
        self.serverOutput(max(len(d) for d in datagrams))

    def serverEvents(self):
        events = self.server.nextEvents()
        for e in events:
            if isinstance(e, MessageReceived):
                if e.session is self.live:
                    self.expect(self.c2sPending, e.message, "c2s")
                    self.c2sDelivered += 1
                elif e.session is self.helperSession:
                    self.expect(self.helperPending, e.message, "helper")
                    self.helperDelivered += 1
                else:
                    self.failures.add("no-forged-delivery", f"a message on session {e.session.localIndex}")
            elif isinstance(e, SessionOpened):
                if self.mutating or self.handshaking is None:
                    self.failures.add("no-forged-session", f"session {e.session.localIndex} opened by junk")
                elif self.handshaking == HELPER_ADDR:
                    self.helperSession = e.session
            elif isinstance(e, SessionEnded):
                if e.session is self.live:
                    self.liveEnded.append(str(e.reason))
                    self.failures.add("session-undisturbed", f"the live session ended: {e.reason}")

    def expect(self, pending, message, direction):
        if not pending:
            self.failures.add("exactly-once", f"{direction}: unexpected (duplicate?) message {message[:24]!r}")
            return
        wanted = pending.popleft()
        if wanted != message:
            self.failures.add("exactly-once", f"{direction}: got {message[:24]!r}, expected {wanted[:24]!r}")

    def serverOutput(self, largestInput=None):
        """
        @param largestInput: the size of the largest datagram of the input
            that drew this output, if it came from one (a batch: which one
            drew a reset is not known here; sudp_test.udp.test_reset checks each
            reset against its own trigger).
        @return: whether the server had anything to send.
        """
        out = self.server.datagramsToSend()
        for data, dst in out:
            kind = data[0] if data else -1
            if dst not in PROVEN:
                # only a COOKIE, or a stateless reset smaller than the datagram
                # that caused it, may go to an address that has not proven itself
                if kind == P.COOKIE and len(data) == P.COOKIE_PACKET_SIZE:
                    self.replies["cookie"] += 1
                elif (kind == P.STATELESS_RESET and largestInput is not None
                      and len(data) < largestInput and len(data) <= MAX_RESET_SIZE):
                    self.replies["reset"] += 1
                else:
                    self.replies["to-unproven"] += 1
                    self.failures.add("no-amplification", f"{len(data)} bytes (0x{kind:02x}) to {dst}")
                continue
            self.replies[{P.COOKIE: "cookie", P.HANDSHAKE_RESP: "resp"}.get(kind, "protected")] += 1
            if dst == CLIENT_ADDR:
                if not self.mutating:
                    self.capture(data, self.label(data, "server"))
                self.client.receiveDatagram(data, SERVER_ADDR, self.now)
                self.clientEvents()
            elif self.helper is not None:
                if not self.mutating:
                    self.capture(data, self.label(data, "server"))
                self.helper.receiveDatagram(data, SERVER_ADDR, self.now)
                for e in self.helper.nextEvents():
                    if isinstance(e, HandshakeFailure):
                        self.failures.add("helper-handshake", str(e.error))
        return bool(out)

    def clientEvents(self):
        events = self.client.nextEvents()
        for e in events:
            if isinstance(e, MessageReceived):
                self.expect(self.s2cPending, e.message, "s2c")
                self.s2cDelivered += 1
            elif isinstance(e, SessionEnded):
                self.liveEnded.append(str(e.reason))
                self.failures.add("session-undisturbed", f"the live client's session ended: {e.reason}")
            elif isinstance(e, HandshakeFailure):
                self.failures.add("session-undisturbed", f"the live client's handshake failed: {e.error}")

    def pump(self):
        """
        Move genuine packets until both sides are quiet.
        """
        moved = True
        while moved:
            moved = False
            for addr, engine in ((CLIENT_ADDR, self.client), (HELPER_ADDR, self.helper)):
                if engine is None:
                    continue
                out = engine.datagramsToSend()
                for data, dst in out:
                    moved = True
                    self.toServer([data], addr, batch=self.rng.random() < 0.5)
                    self.capture(data, self.label(data, "client"))
            if self.serverOutput():
                moved = True
            self.clientEvents()

    def runTimers(self):
        for engine in (self.server, self.client, self.helper):
            if engine is None:
                continue
            deadline = engine.nextDeadline()
            if deadline is not None and deadline <= self.now:
                engine.handleTimer(self.now)
        self.pump()

    # -- the genuine side of each tick ------------------------------------------------

    def message(self, prefix, n):
        size = self.rng.choice((1, 8, 40, 200, 1000, self.live.maxMessageSize))
        head = b"%s %d " % (prefix, n)
        return (head + self.rng.randbytes(max(0, size - len(head))))[: max(size, len(head))]

    def genuineStep(self, mixed):
        """
        The client sends 1-4 messages (if not in a quiet period); with
        C{mixed}, inside a batch of mutated datagrams from its own address.
        """
        tick = self.ticks
        if tick % (CLIENT_TALKS + CLIENT_QUIET) < CLIENT_TALKS:
            for _ in range(self.rng.randrange(1, 5)):
                self.c2sSent += 1
                m = self.message(b"c2s", self.c2sSent)
                self.c2sPending.append(m)
                self.client.sendMessage(self.client.session, m, self.now)
            out = self.client.datagramsToSend()
            genuine = [d for d, _ in out]
            if mixed:
                self.mutating = True
                junk = [self.mutate() for _ in range(self.rng.randrange(1, 16))]
                self.fed += len(junk)
                self.fedBatch += len(junk)
                # the genuine packets at random places, in their own order
                slots = sorted(self.rng.sample(range(len(junk) + len(genuine)), len(genuine)))
                batch, g, j = [], iter(genuine), iter(junk)
                for i in range(len(junk) + len(genuine)):
                    batch.append(next(g) if slots and i == slots[0] else next(j))
                    if slots and i == slots[0]:
                        slots.pop(0)
                self.toServer(batch, CLIENT_ADDR, batch=True)
                self.batches += 1
                self.mutating = False
            else:
                self.toServer(genuine, CLIENT_ADDR, batch=self.rng.random() < 0.5)
            for d in genuine:
                self.capture(d, self.label(d, "client"))
        if tick % SERVER_EVERY == SERVER_EVERY // 2:
            self.s2cSent += 1
            m = self.message(b"s2c", self.s2cSent)
            self.s2cPending.append(m)
            self.server.sendMessage(self.live, m, self.now)
        self.pump()
        if self.c2sPending or self.s2cPending:
            self.failures.add("exactly-once", f"undelivered: {len(self.c2sPending)} c2s, {len(self.s2cPending)} s2c")
            self.c2sPending.clear()
            self.s2cPending.clear()

    def helperHandshake(self):
        """
        A short-lived second client: a whole handshake from HELPER_ADDR, one
        message, then CLOSE. Refreshes the corpus with handshake packets whose
        cookies are valid now.
        """
        self.helpers += 1
        self.helper = ClientEngine(self.identity.publicKey, SERVER_ADDR, self.config, random=self.randbytes)
        self.helperSession = None
        self.handshaking = HELPER_ADDR
        self.helper.start(self.now)
        self.pump()
        self.handshaking = None
        if self.helper.session is None or self.helper.session.state is not OPEN or self.helperSession is None:
            self.failures.add("helper-handshake", f"helper {self.helpers} did not open")
            self.helper = None
            return
        self.helperSent += 1
        m = self.message(b"helper", self.helperSent)
        self.helperPending.append(m)
        self.helper.sendMessage(self.helper.session, m, self.now)
        self.pump()
        self.closing = True
        self.helper.closeSession(self.helper.session, self.now)
        self.pump()
        self.closing = False
        if self.helperPending:
            self.failures.add("exactly-once", "a helper message was not delivered")
            self.helperPending.clear()
        self.helper.nextEvents()

    def tick(self, mixed, flood=True):
        self.ticks += 1
        self.now += TICK_SECONDS
        self.runTimers()
        if self.ticks % HELPER_EVERY == 1:
            self.helperHandshake()
        if flood and self.ticks % FLOOD_EVERY == FLOOD_EVERY // 2:
            self.initFlood()
        self.genuineStep(mixed)

    def initFlood(self):
        """
        A burst of INITs carrying the helper's still-valid cookie, from the
        helper's address, each with a fresh index and ephemeral key: each
        one the server accepts is a pending session (public-key work), so
        the rate limiter and handshake expiry get their share.
        """
        base = self.corpus.get(P.HANDSHAKE_INIT)
        if not base:
            return
        init = base[-1]  # the latest helper's INIT: its cookie is for HELPER_ADDR
        rng = self.rng
        flood = []
        for _ in range(FLOOD_SIZE):
            b = bytearray(init)
            b[1:5] = (rng.getrandbits(32) | 1).to_bytes(4, "big")
            b[25:57] = rng.randbytes(32)
            flood.append(bytes(b))
        self.mutations["init-flood"] += len(flood)
        self.mutating = True
        self.toServer(flood, HELPER_ADDR, batch=True)
        self.mutating = False
        self.fed += len(flood)
        self.fedBatch += len(flood)
        self.batches += 1

    # -- the mutator ----------------------------------------------------------------

    def pick(self):
        rng = self.rng
        q = self.corpus[self.kinds[rng.randrange(len(self.kinds))]]
        return q[rng.randrange(len(q))]

    def mutate(self):
        rng = self.rng
        r = rng.random() * self._totalWeight
        for name, cumulative in self._cumulative:
            if r < cumulative:
                break
        self.mutations[name] += 1
        if name == "random":
            return rng.randbytes(rng.choice((1, 2, 13, 28, 29, 30, 59, 64, 122, rng.randrange(1, 1500))))
        if name == "empty":
            return b""
        base = self.pick()
        if name == "replay":
            return base
        b = bytearray(base)
        n = len(b)
        if name == "flip":
            for _ in range(rng.randrange(1, 4)):
                if n:
                    b[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif name == "substitute":
            for _ in range(rng.randrange(1, 4)):
                if n:
                    b[rng.randrange(n)] = rng.choice(INTERESTING) if rng.random() < 0.3 else rng.randrange(256)
        elif name == "truncate":
            del b[rng.randrange(n + 1):]
        elif name == "extend":
            extra = rng.randrange(1, 200)
            b += bytes(extra) if rng.random() < 0.3 else rng.randbytes(extra)
        elif name == "oversize":
            b += rng.randbytes(self.config.maxDatagramSize + 1 - n + rng.randrange(0, 100))
        elif name == "splice":
            other = self.pick()
            b = b[: rng.randrange(n + 1)] + other[rng.randrange(len(other) + 1):]
        elif name == "duplicate-run":
            if n:
                i = rng.randrange(n)
                j = min(n, i + rng.randrange(1, 32))
                b[i:i] = b[i:j] * rng.randrange(1, 4)
        elif name == "rewrite":
            self.rewrite(b)
        elif name == "aimed":
            # a protected packet for the live session: any type, nearby or wild
            # sequence numbers, a body of plausible length
            seq = self.client.session.sendEpoch.sendSeq
            seq = rng.choice((seq, seq + 1, seq - 1, seq + rng.randrange(1, 5000), 0, (1 << 64) - 1,
                              rng.getrandbits(64)))
            seq &= (1 << 64) - 1
            t = rng.choice((0x18, 0x19, 0x1A, 0x1B, rng.randrange(256)))
            body = rng.randbytes(rng.choice((0, 15, 16, 17, 19, 35, rng.randrange(0, 1400))))
            index = rng.choice((self.liveIndex, self.liveIndex, self.helperIndex(), self.anyIndex()))
            return P.DATA_HEADER.pack(t, index, seq) + body
        return bytes(b)

    def anyIndex(self):
        """
        @return: the index of some session of the server (pending ones included).
        """
        indexes = list(self.server.sessions)
        return indexes[self.rng.randrange(len(indexes))]

    def helperIndex(self):
        s = self.helper.session if self.helper is not None else None
        return s.remoteIndex if s is not None else self.rng.getrandbits(32)

    def rewrite(self, b):
        """
        Rewrite one header field of C{b} in place, by packet type.
        """
        rng = self.rng
        n = len(b)
        if not n:
            return
        t = b[0]
        choice = rng.random()
        if choice < 0.2 or t not in VALID_TYPES:
            b[0] = rng.choice(VALID_TYPES) if rng.random() < 0.7 else rng.randrange(256)
            return
        if t in (0x18, 0x19, 0x1A, 0x1B):
            if choice < 0.6 and n >= 5:
                index = rng.choice((self.liveIndex, self.helperIndex(), self.anyIndex(), 0, rng.getrandbits(32)))
                b[1:5] = index.to_bytes(4, "big")
            elif n >= 13:
                seq = int.from_bytes(b[5:13], "big")
                seq = rng.choice((0, seq + 1, seq - 1, seq + rng.randrange(2048, 5000), (1 << 64) - 1,
                                  rng.getrandbits(64))) & ((1 << 64) - 1)
                b[5:13] = seq.to_bytes(8, "big")
        elif t == P.HANDSHAKE_INIT and n >= 58:
            field = rng.randrange(6)
            if field == 0:
                b[1:5] = rng.choice((0, rng.getrandbits(32))).to_bytes(4, "big")
            elif field == 1:
                ts = int(self.now) + rng.choice((0, 1, -1, -121, -241, 3600, rng.randrange(-400, 400)))
                b[5:9] = (ts & 0xFFFFFFFF).to_bytes(4, "big")
            elif field == 2:
                b[9:25] = rng.randbytes(16)
            elif field == 3:
                b[25:57] = rng.choice(LOW_ORDER) if rng.random() < 0.5 else rng.randbytes(32)
            elif field == 4:
                b[57] = rng.choice((0, 1, 2, 16, 17, 255, rng.randrange(256)))
            else:
                count = rng.randrange(1, 17)
                b[57:] = bytes([count]) + bytes(rng.choice((1, 2, 3, 4, 0, 99, 255)) for _ in range(count))
        elif t == P.HELLO and n >= 9:
            b[1:9] = rng.randbytes(8)
        else:
            i = rng.randrange(1, n) if n > 1 else 0
            b[i] = rng.randrange(256)

    # -- bookkeeping ------------------------------------------------------------------

    def containers(self):
        s = self.server
        return {
            "sessions": len(s.sessions),
            "byEphemeral": len(s.byEphemeral),
            "pending": s.pendingCount,
            "open": s.openCount,
            "timers": len(s.timers),
            "rateLimiter": len(s.limiter),
            "cookieSecrets": len(getattr(s.cookies, "_cache", ())),
            "cipherCache": len(getattr(s.ciphers, "_held", ())),
            "dropReasons": len(s.drops),
        }

    def sample(self):
        for k, v in self.containers().items():
            if v > self.maxContainers[k]:
                self.maxContainers[k] = v

    def run(self, count, warmup, batchShare, traceMemory, progress):
        """
        Feed C{count} mutated datagrams (after C{warmup} more, not counted in
        the memory figures).
        """
        total = sum(w for _, w in MUTATIONS)
        self._totalWeight = total
        acc, cumulative = 0, []
        for name, w in MUTATIONS:
            acc += w
            cumulative.append((name, acc))
        self._cumulative = cumulative
        self.kinds = list(self.corpus)
        rng = self.rng
        memory = {"tracemalloc": traceMemory}
        target = warmup + count
        fedAtWarmup = None
        startWall = None
        nextProgress = count // 10
        nextTick = self.genuineEvery
        midpoint = None
        while self.fed < target:
            if midpoint is not None and "rssMid" not in memory and self.fed >= midpoint:
                gc.collect()
                if traceMemory:
                    memory["tracedMid"] = tracemalloc.get_traced_memory()[0]
                memory["rssMid"] = rss()
            if fedAtWarmup is None and self.fed >= warmup:
                fedAtWarmup = self.fed
                self.fedBatch = self.fedSingle = self.batches = 0
                self.engineSeconds = 0.0
                gc.collect()
                if traceMemory:
                    tracemalloc.start()
                    memory["tracedStart"] = tracemalloc.get_traced_memory()[0]
                memory["rssStart"] = rss()
                self.containersStart = self.containers()
                target = self.fed + count  # exactly count datagrams after the warm-up (give or take a batch)
                midpoint = self.fed + count // 2
                startWall = time.perf_counter()
            # one group of mutated datagrams from one address
            addr = self.address()
            # batches and single datagrams, in about the shares asked for (by datagrams)
            if self.fedBatch <= batchShare * (self.fedBatch + self.fedSingle):
                size = rng.choice((2, 4, 8, 16, 32, 64, rng.randrange(2, 65)))
                size = min(size, max(1, target - self.fed))
                batch = True
            else:
                size, batch = 1, False
            datagrams = [self.mutate() for _ in range(size)]
            self.mutating = True
            self.toServer(datagrams, addr, batch)
            self.mutating = False
            self.fed += size
            if batch:
                self.fedBatch += size
                self.batches += 1
            else:
                self.fedSingle += size
            if self.fed >= nextTick:
                nextTick += self.genuineEvery
                self.tick(mixed=rng.random() < 0.5)
                self.sample()
                if progress and fedAtWarmup is not None and self.fed - fedAtWarmup >= nextProgress:
                    nextProgress += max(1, count // 10)
                    print(f"  {self.fed - fedAtWarmup:>9,} datagrams, {self.ticks} ticks, "
                          f"t+{self.now - START:.0f} s, {time.perf_counter() - startWall:.1f} s",
                          file=sys.stderr)
        wall = time.perf_counter() - startWall
        # settle: let time run so pending handshakes expire, then one last exchange
        for _ in range(30):
            self.tick(mixed=False, flood=False)
        self.sample()
        gc.collect()
        if traceMemory:
            current, peak = tracemalloc.get_traced_memory()
            memory["tracedEnd"] = current
            memory["tracedPeak"] = peak
            tracemalloc.stop()
        memory["rssEnd"] = rss()
        return wall, memory


def check(report, name, ok, detail=""):
    report["checks"][name] = {"ok": bool(ok), "detail": detail}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=None,
                        help="mutated datagrams to feed (default 1000000; 20000 with --quick)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    parser.add_argument("--quick", action="store_true", help="a short run (20000 datagrams)")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    parser.add_argument("--genuine-every", type=int, default=None,
                        help="mutated datagrams between two genuine steps (default 1000; 100 with --quick)")
    parser.add_argument("--batch-share", type=float, default=0.5,
                        help="share of mutated datagram groups fed as batches (receiveDatagrams)")
    parser.add_argument("--no-tracemalloc", action="store_true",
                        help="do not trace Python allocations (faster; RSS only)")
    parser.add_argument("--traced-limit", type=int, default=1 << 20,
                        help="largest allowed growth of traced memory, bytes (default 1 MiB)")
    parser.add_argument("--rss-limit", type=int, default=16 << 20,
                        help="largest allowed growth of RSS, bytes (default 16 MiB)")
    args = parser.parse_args(argv)

    count = args.count if args.count is not None else (20_000 if args.quick else 1_000_000)
    genuineEvery = args.genuine_every or (100 if args.quick else 1000)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    warmup = max(2000, min(50_000, count // 20))
    traceMemory = not args.no_tracemalloc
    print(f"sudp mutation run: {count} datagrams (+{warmup} warm-up), seed {seed}, "
          f"genuine step every {genuineEvery}; {speedups.describe()}", file=sys.stderr)

    driver = Driver(seed, genuineEvery)
    wall, memory = driver.run(count, warmup, args.batch_share, traceMemory, progress=not args.quick)
    fed = driver.fedBatch + driver.fedSingle
    server, client, live = driver.server, driver.client, driver.live
    end = driver.containers()
    drops = dict(sorted(server.drops.items(), key=lambda kv: -kv[1]))
    report = {
        "count": count,
        "fed": fed,
        "warmup": warmup,
        "seed": seed,
        "quick": args.quick,
        "speedups": speedups.native is not None,
        "dataPath": speedups.describe(),
        "seconds": wall,
        "datagramsPerSecond": fed / wall if wall > 0 else 0.0,
        "engineSeconds": driver.engineSeconds,
        "engineDatagramsPerSecond": fed / driver.engineSeconds if driver.engineSeconds > 0 else 0.0,
        "batched": driver.fedBatch,
        "single": driver.fedSingle,
        "batches": driver.batches,
        "virtualSeconds": driver.now - START,
        "ticks": driver.ticks,
        "exceptions": driver.exceptionCount,
        "exceptionSamples": driver.exceptions,
        "genuine": {
            "clientToServerSent": driver.c2sSent,
            "clientToServerDelivered": driver.c2sDelivered,
            "serverToClientSent": driver.s2cSent,
            "serverToClientDelivered": driver.s2cDelivered,
            "helperSessions": driver.helpers,
            "helperMessagesSent": driver.helperSent,
            "helperMessagesDelivered": driver.helperDelivered,
        },
        "session": {
            "serverState": live.state,
            "clientState": client.session.state if client.session else None,
            "ended": driver.liveEnded,
            "serverRekeys": live.stats["rekeys"],
            "clientRekeys": client.session.stats["rekeys"] if client.session else 0,
            "serverStats": dict(live.stats),
        },
        "captured": dict(sorted(driver.captured.items())),
        "keepalives": dict(driver.keepalives),
        "mutations": dict(sorted(driver.mutations.items())),
        "drops": drops,
        "clientDrops": dict(client.drops),
        "replies": dict(driver.replies),
        "serverCounters": dict(server.counters),
        "memory": memory,
        "containers": {"start": driver.containersStart, "end": end, "max": dict(driver.maxContainers)},
        "failures": dict(driver.failures.items),
        "failureSamples": driver.failures.samples,
        "checks": {},
    }

    # -- the checks ----------------------------------------------------------------
    check(report, "no-exceptions", driver.exceptionCount == 0, f"{driver.exceptionCount} uncaught exceptions")
    g = report["genuine"]
    check(report, "genuine-delivered-exactly-once",
          g["clientToServerSent"] == g["clientToServerDelivered"] > 0
          and g["serverToClientSent"] == g["serverToClientDelivered"] > 0
          and g["helperMessagesSent"] == g["helperMessagesDelivered"]
          and not driver.failures.items["exactly-once"],
          f"c2s {g['clientToServerDelivered']}/{g['clientToServerSent']}, "
          f"s2c {g['serverToClientDelivered']}/{g['serverToClientSent']}, "
          f"{driver.failures.items['exactly-once']} order/duplicate failures")
    check(report, "session-undisturbed",
          live.state is OPEN and client.session is not None and client.session.state is OPEN
          and server.sessions.get(driver.liveIndex) is live and not driver.liveEnded,
          f"server {live.state}, client {report['session']['clientState']}, ended {driver.liveEnded}")
    check(report, "no-forged-effect",
          not driver.failures.items["no-forged-delivery"] and not driver.failures.items["no-forged-session"],
          "no message or session came from a mutated datagram")
    check(report, "no-amplification", not driver.replies["to-unproven"],
          f"{driver.replies['to-unproven']} replies other than a COOKIE or a smaller reset to unproven addresses")
    undocumented = sorted(set(server.drops) - DOCUMENTED_DROPS)
    check(report, "drop-reasons-documented", not undocumented, f"undocumented: {undocumented}")
    check(report, "helpers-ok", not driver.failures.items["helper-handshake"],
          f"{driver.helpers} helper handshakes")
    exercised = {"HELLO", "COOKIE", "INIT", "RESP", "CONFIRM", "DATA", "KEEPALIVE", "REKEY_REQUEST",
                 "REKEY_RESPONSE"}
    missing = sorted(exercised - set(driver.captured))
    check(report, "exercised", not missing and report["session"]["serverRekeys"] >= 1
          and driver.keepalives["client"] >= 1 and driver.keepalives["server"] >= 1
          and all(driver.mutations[name] for name, _ in MUTATIONS),
          f"missing packet kinds {missing}, rekeys {report['session']['serverRekeys']}, "
          f"keepalives {dict(driver.keepalives)}")
    limits = server.config
    bounded = (
        end["sessions"] <= limits.maxPendingHandshakes + 2
        and driver.maxContainers["sessions"] <= limits.maxPendingHandshakes + 2
        and driver.maxContainers["byEphemeral"] <= driver.maxContainers["sessions"]
        and driver.maxContainers["rateLimiter"] <= len(PROVEN)
        and driver.maxContainers["cookieSecrets"] <= 4
        and driver.maxContainers["cipherCache"] <= limits.cipherCache
        and driver.maxContainers["timers"] <= 4 * limits.maxPendingHandshakes
        and driver.maxContainers["dropReasons"] <= len(DOCUMENTED_DROPS)
        and end["pending"] == 0 and end["open"] == 1
    )
    check(report, "containers-bounded", bounded,
          f"max {dict(driver.maxContainers)}; end {end}")
    traced = None
    if traceMemory:
        traced = memory["tracedEnd"] - memory["tracedStart"]
        memory["tracedGrowth"] = traced
    rssGrowth = None
    if memory.get("rssStart") is not None and memory.get("rssEnd") is not None:
        rssGrowth = memory["rssEnd"] - memory["rssStart"]
        memory["rssGrowth"] = rssGrowth
    check(report, "memory-flat",
          (traced is None or traced <= args.traced_limit) and (rssGrowth is None or rssGrowth <= args.rss_limit),
          f"traced growth {traced} B (limit {args.traced_limit}), RSS growth {rssGrowth} B (limit {args.rss_limit})")
    report["ok"] = all(c["ok"] for c in report["checks"].values())

    printSummary(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2, sort_keys=False, default=str)
    return 0 if report["ok"] else 1


def mib(n):
    return "n/a" if n is None else f"{n / (1 << 20):.2f} MiB"


def printSummary(r):
    out = []
    w = out.append
    w(f"sudp mutation run: seed {r['seed']}, {r['dataPath']}")
    w(f"  fed            {r['fed']:,} mutated datagrams ({r['batched']:,} in {r['batches']:,} batches via "
      f"receiveDatagrams, {r['single']:,} via receiveDatagram) + {r['warmup']:,} warm-up")
    w(f"  time           {r['seconds']:.1f} s wall: {r['datagramsPerSecond']:,.0f} datagrams/s "
      f"(engine calls alone: {r['engineDatagramsPerSecond']:,.0f}/s)"
      + (", tracemalloc on" if r["memory"].get("tracemalloc") else ""))
    w(f"  virtual time   {r['virtualSeconds']:.0f} s in {r['ticks']} ticks")
    g = r["genuine"]
    w(f"  genuine        client->server {g['clientToServerDelivered']:,}/{g['clientToServerSent']:,} delivered, "
      f"server->client {g['serverToClientDelivered']}/{g['serverToClientSent']}, "
      f"{g['helperSessions']} helper handshakes ({g['helperMessagesDelivered']}/{g['helperMessagesSent']} messages)")
    s = r["session"]
    w(f"  live session   server {s['serverState']}, client {s['clientState']}, rekeys {s['serverRekeys']} "
      f"(client {s['clientRekeys']}), ended: {s['ended'] or 'never'}")
    w("  captured       " + ", ".join(f"{k} {v}" for k, v in r["captured"].items()))
    w("  mutations      " + ", ".join(f"{k} {v:,}" for k, v in r["mutations"].items()))
    w("  drops by reason:")
    for k, v in r["drops"].items():
        w(f"    {k:<22} {v:>10,}")
    w("  replies        " + ", ".join(f"{k} {v:,}" for k, v in r["replies"].items()))
    w(f"  client drops   {r['clientDrops'] or 'none'}")
    m = r["memory"]
    if m.get("tracemalloc"):
        w(f"  traced memory  start {mib(m['tracedStart'])}, mid {mib(m.get('tracedMid'))}, end {mib(m['tracedEnd'])} "
          f"(growth {m['tracedGrowth']:,} B), peak {mib(m['tracedPeak'])}")
    w(f"  RSS            start {mib(m.get('rssStart'))}, mid {mib(m.get('rssMid'))}, end {mib(m.get('rssEnd'))} "
      f"(growth {mib(m.get('rssGrowth'))})")
    c = r["containers"]
    w("  containers     " + ", ".join(f"{k} {c['start'][k]}->{c['end'][k]} (max {c['max'].get(k, 0)})"
                                      for k in c["end"]))
    w(f"  exceptions     {r['exceptions']}")
    for e in r["exceptionSamples"][:3]:
        w(f"    {e['path']} from {e['addr']}: {e['error']}")
        w("      " + e["traceback"].strip().splitlines()[-2].strip())
    w("  checks:")
    for name, c in r["checks"].items():
        w(f"    {'ok  ' if c['ok'] else 'FAIL'} {name}: {c['detail']}")
    for f in r["failureSamples"][:10]:
        w(f"    - {f['check']}: {f['detail']}")
    w("PASS" if r["ok"] else "FAIL")
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
