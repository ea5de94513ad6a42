"""
A bounded junk flood at a sudp/1 server on loopback, with legitimate clients
served at the same time (docs/security.md: spoofed-source floods, state
exhaustion, amplification).

    python stress/flood.py [--quick] [--json FILE] [--seed N] [--rate R]
                               [--clients N] [--messages N] [--ports N]
                               [--hellos N] [--spoofed N] [--forged-inits N] ...

The server runs in its own process: benchmarks/servers.py "sudp-echo"
(through run.py's Server), which lifts the per-address handshake limit. This
process sends it, interleaved in time and paced at --rate junk datagrams a
second, these kinds of junk (one count option per kind):

  hellos            64-byte (and some longer) HELLOs from --ports UDP sockets
                    bound to 127.0.0.1, each on its own port
  spoofed           as root only: HELLOs and forged INITs from random 127/8
                    source addresses and ports, through a raw socket
  forged-inits      INITs at a current timestamp with a forged cookie (random,
                    or a genuine one with one bit flipped): bad-cookie
  stale-inits       INITs with a genuine cookie whose timestamp lies more than
                    2R in the past or in the future: expired-cookie
  wrong-addr-inits  INITs with a genuine, current cookie made for another
                    source port: bad-cookie
  malformed-inits   INITs too short, too long, over the datagram limit, with a
                    suite count of 0 or above 16, with sender index 0
  random-data       DATA/CONTROL with random indexes, sequence numbers, bodies
  live-data         DATA/CONTROL carrying the index of a live session with
                    garbage tags (bad-tag), a sequence number the session has
                    accepted (replay), the other key phase (no-key), or too
                    short (truncated)
  random-bytes      random datagrams of random lengths (empty to oversized)

Meanwhile --clients legitimate clients (sudp.udp.client.ClientEngine on the
socket of run.py's Clients) handshake, starting one by one over the first
half of the junk, and each have --messages messages echoed; the engines
retransmit their handshake packets, and a message not echoed within a
second is sent again, so clients make good what the kernel drops when the
server's socket buffer overflows. --stall S stops the server (SIGSTOP) for
S seconds a third of the way in, to make it overflow.

Stale cookies: a genuine expired cookie takes two to four minutes to get.
The server checks a cookie's age before it recomputes the MAC
(sudp/udp/cookie.py), so a genuine cookie whose timestamp is moved out of
the window is refused the same way, as expired-cookie, before its MAC is
looked at.

Checks (the process exits 1 if one fails):

- every legitimate client opened and had every message echoed;
- the server keeps no state for junk: after the flood, sessions == clients,
  pending == 0, and its containers (sessions, byEphemeral, the rate
  limiter's sources, timers, cookie secrets, cipher objects) hold only what
  the clients account for;
- its memory is flat: RSS after the flood at most RSS before it (after a
  warm-up round) plus MEMORY_PER_CLIENT a client plus MEMORY_SLACK;
- every datagram sent is accounted for: read by the server, or dropped by
  the kernel at the server's full socket buffer (/proc/net/udp);
- what the server read of the junk equals its junk drops plus the cookies it
  sent for junk HELLOs. The legitimate clients' socket is watched
  (servers.py "watch"), so the server says how many datagrams of each type
  it read from them, whatever the kernel dropped: junk read = read - read
  from the clients; junk cookies = cookies sent - client HELLOs read; junk
  drops = all drops but duplicate-ephemeral (a client INIT retransmitted
  after its session opened) and handshake-expired (a timer, no datagram);
  and the client INITs read = handshakes + RESPs resent +
  duplicate-ephemeral;
- the drops by reason are the ones predicted for each junk datagram sent
  (exactly when no junk datagram was lost to the kernel, else at most);
- the junk's source ports got nothing but 29-byte COOKIEs;
- the per-address handshake limit: a second server ("sudp-echo-limited",
  the default handshakesPerSecond and handshakeBurst) gets a burst of INITs
  with valid cookies from one address; handshakeBurst of them (plus what
  the bucket refills while they arrive) are answered, the rest dropped as
  rate-limited, while clients on other loopback addresses (127.0.0.2, ...)
  are served at the same time.
"""

import argparse
import json
import os
import random
import select
import selectors
import signal
import socket
import struct
import sys
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))

from run import Clients, Server  # noqa: E402  (benchmarks/run.py puts the repository on sys.path)
from sudp.errors import SessionClosed  # noqa: E402
from sudp.udp import packets as P  # noqa: E402
from sudp.udp.client import ClientEngine  # noqa: E402
from sudp.udp.config import Config  # noqa: E402
from sudp.udp.reset import MAX_RESET_SIZE  # noqa: E402
from sudp.udp.events import HandshakeFailure, MessageReceived, SessionEnded, SessionOpened  # noqa: E402
from sudp.udp.keyschedule import Ephemeral  # noqa: E402

DEFAULTS = Config()
MAX_DATAGRAM = DEFAULTS.maxDatagramSize  # the benchmark servers keep the default
ROTATION = DEFAULTS.cookieRotation
SUITES = tuple(s.suiteId for s in DEFAULTS.suites)
TAG_SIZE = max(s.tagSize for s in DEFAULTS.suites)
HEADER = P.DATA_HEADER_SIZE
INIT_FIXED = 58  # an INIT is 58 + count bytes
HOST = "127.0.0.1"

KINDS = ("hellos", "spoofed", "forged-inits", "stale-inits", "wrong-addr-inits", "malformed-inits",
         "random-data", "live-data", "random-bytes")
FULL = {"hellos": 8000, "spoofed": 4000, "forged-inits": 2000, "stale-inits": 2000, "wrong-addr-inits": 2000,
        "malformed-inits": 2000, "random-data": 4000, "live-data": 4000, "random-bytes": 4000}
QUICK = {kind: n // 10 for kind, n in FULL.items()}

MEMORY_PER_CLIENT = 8 << 10  # a session costs 2 to 4 KB (benchmarks/run.py: memory per session)
MEMORY_SLACK = 512 << 10  # allocator noise: arenas, freed buffers the allocator keeps
COOKIE_FRESH = 60.0  # use a harvested cookie for this long (it is valid for 120 to 240 s)
RETRY_AFTER = 1.0  # resend a message not echoed after this long
WINDOW = 2  # messages in flight per client
BURST = 64  # junk datagrams per turn of the loop
TYPE_NAMES = {P.HELLO: "HELLO", P.HANDSHAKE_INIT: "INIT", P.DATA: "DATA", P.DATA | 1: "DATA",
              P.CONTROL: "CONTROL", P.CONTROL | 1: "CONTROL"}


def byTypeName(counts):
    """
    @return: C{counts} (first byte -> datagrams) by packet name.
    """
    out = Counter()
    for t, n in counts.items():
        out[TYPE_NAMES.get(t, "0x%02x" % t if t >= 0 else "empty")] += n
    return dict(out)


# -- what the server should do with a datagram ------------------------------------------


def cookieTimeClose(timestamp, now):
    """
    @return: True if a cookie timestamp is close enough to now that the
        server's verdict depends on the MAC (or on the second it reads it).
    """
    current = int(now) & 0xFFFFFFFF
    return ((current - timestamp) & 0xFFFFFFFF) <= 2 * ROTATION + 3600 or ((timestamp - current) & 0xFFFFFFFF) <= 3600


def classify(data, liveIndexes, now):
    """
    What a sudp/1 server does with C{data} from an address it has never
    given a cookie to, by docs/protocol.md sections 4, 5, 6.3, 10.5 and 15
    (written from the specification, not from the server's code).

    @return: "cookie" (answered with a COOKIE), a drop reason, or None when
        the verdict depends on server state (a live session's index, a
        cookie timestamp inside the window): such datagrams are not sent
        as random junk.
    """
    n = len(data)
    if n > MAX_DATAGRAM:
        return "oversized"
    if n == 0:
        return "empty"
    t = data[0]
    if t & 0xFC == P.DATA:  # DATA or CONTROL, either key phase
        if n < HEADER:
            return "truncated"
        if int.from_bytes(data[1:5], "big") in liveIndexes:
            return None
        return "unknown-session"
    if t >> 4 != P.VERSION:
        return "wrong-version"
    if t == P.HELLO:
        return "cookie" if n >= P.HELLO_SIZE else "truncated"
    if t == P.HANDSHAKE_INIT:
        if n < INIT_FIXED + 1:
            return "truncated"
        count = data[INIT_FIXED - 1]
        if not 1 <= count <= P.MAX_OFFERED_SUITES:
            return "bad-field"
        if n < INIT_FIXED + count:
            return "truncated"
        if any(data[INIT_FIXED + count:]):  # the padding is zero bytes
            return "bad-padding"
        if int.from_bytes(data[1:5], "big") == 0:
            return "bad-field"
        if cookieTimeClose(int.from_bytes(data[5:9], "big"), now):
            return None
        return "expired-cookie"
    if t in (P.COOKIE, P.HANDSHAKE_RESP, P.PLUGIN_INIT, P.PLUGIN_RESP, P.HANDSHAKE_REFUSED, P.STATELESS_RESET):
        # valid types a sudp/1 server does not take
        return "unexpected-type"
    return "unknown-type"


def socketQueue(port, host=HOST):
    """
    @return: C{(bytes waiting, datagrams dropped)} of the UDP socket bound to
        C{host:port}, from /proc/net/udp; "drops" counts what the kernel threw
        away because the socket's receive buffer was full. None if not found.
    """
    want = "%08X:%04X" % (struct.unpack("=I", socket.inet_aton(host))[0], port)
    try:
        with open("/proc/net/udp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1] == want:
                    return int(fields[4].split(":")[1], 16), int(fields[-1])
    except OSError:
        pass
    return None


def drain(server, legit=(), quiet=0.25, timeout=20.0):
    """
    Wait until the server has read everything sent to it: its socket's queue
    is empty and its datagram count stands still, while C{legit} clients
    keep answering.

    @return: its last stats.
    """
    port = server.addr[1]
    deadline = time.monotonic() + timeout
    last = None
    while True:
        end = time.monotonic() + quiet
        while time.monotonic() < end:
            for group in legit:
                group.service(time.monotonic())
            time.sleep(0.02)
        stats = server.stats()
        queue = socketQueue(port)
        if (last is not None and stats["datagrams"] == last["datagrams"] and (queue is None or queue[0] == 0)) \
                or time.monotonic() > deadline:
            return stats
        last = stats


# -- the junk ------------------------------------------------------------------------------


class Junk:
    """
    Junk from a pool of UDP sockets on 127.0.0.1 (one port each) and, as
    root, a raw socket with spoofed 127/8 sources.

    @ivar sent: datagrams sent to the server, by kind.
    @ivar expected: datagrams sent, by the outcome predicted for each.
    @ivar replies: what the pool's sockets received: "cookie" or "other".
    """

    def __init__(self, rng, serverAddr, ports, spoof=True):
        self.rng = rng
        self.server = serverAddr
        self.pool, self.selector = [], selectors.DefaultSelector()
        for _ in range(ports):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((HOST, 0))
            s.setblocking(False)
            self.pool.append(s)
            self.selector.register(s, selectors.EVENT_READ)
        self.indexOf = {s: i for i, s in enumerate(self.pool)}
        self.raw, self.rawError = None, None
        if spoof:
            try:
                self.raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
                self.raw.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
            except OSError as e:  # not root: no spoofed sources
                self.rawError = str(e)
        self.cookies = {}  # pool index -> (timestamp, cookie, when received)
        self.sent, self.expected, self.replies = Counter(), Counter(), Counter()
        self.sendErrors = 0
        self.poolCookies = 0  # datagrams sent from the pool that should be answered with a COOKIE
        self.live = lambda: []  # -> [(server index of a live session, sequence numbers it accepted)]
        self.knownIndexes = set()  # every server index a legitimate session got

    def close(self):
        self.selector.close()
        for s in self.pool:
            s.close()
        if self.raw is not None:
            self.raw.close()

    def reset(self):
        self.sent, self.expected, self.replies = Counter(), Counter(), Counter()
        self.sendErrors = self.poolCookies = 0

    # -- sending --

    def send(self, kind):
        """
        Send one datagram of C{kind}.

        @return: False if it cannot be made now (live-data before any session
            is open).
        """
        made = getattr(self, "_" + kind.replace("-", "_"))()
        if made is None:
            return False
        source, data, outcome = made
        try:
            if isinstance(source, int):
                self.pool[source].sendto(data, self.server)
            else:
                self.raw.sendto(_ipv4Udp(source, self.server, data), (self.server[0], 0))
        except OSError:
            self.sendErrors += 1  # never left this host: not counted as sent
            return True
        self.sent[kind] += 1
        self.expected[outcome] += 1
        self.poolCookies += isinstance(source, int) and outcome == "cookie"
        return True

    def harvest(self):
        """
        Read what the server sent the pool (it may only be COOKIEs) and keep
        the newest cookie of each port.
        """
        now = time.monotonic()
        for key, _ in self.selector.select(0):
            s = key.fileobj
            index = self.indexOf[s]
            while True:
                try:
                    data = s.recv(4096)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    continue
                if len(data) == P.COOKIE_PACKET_SIZE and data[0] == P.COOKIE:
                    _, timestamp, cookie = P.decodeCookie(data)
                    self.cookies[index] = (timestamp, cookie, now)
                    self.replies["cookie"] += 1
                elif data[0] == P.STATELESS_RESET and len(data) <= MAX_RESET_SIZE:
                    self.replies["reset"] += 1  # section 10.9: for a DATA/CONTROL packet of no session
                else:
                    self.replies["other"] += 1

    def askCookies(self, timeout=2.0):
        """
        One HELLO from every port of the pool, and wait for their cookies.

        @return: the HELLOs sent.
        """
        for i in range(len(self.pool)):
            try:
                self.pool[i].sendto(P.encodeHello(self.rng.randbytes(8)), self.server)
            except OSError:
                self.sendErrors += 1
                continue
            self.sent["harvest-hellos"] += 1
            self.expected["cookie"] += 1
        deadline = time.monotonic() + timeout
        while len(self.cookies) < len(self.pool) and time.monotonic() < deadline:
            time.sleep(0.01)
            self.harvest()
        return len(self.pool)

    def _fresh(self, exclude=None):
        """
        @return: (pool index, timestamp, cookie) of a port whose cookie is
            fresh, or None.
        """
        now = time.monotonic()
        candidates = [i for i, (_, _, when) in self.cookies.items() if now - when < COOKIE_FRESH and i != exclude]
        if not candidates:
            return None
        i = self.rng.choice(candidates)
        timestamp, cookie, _ = self.cookies[i]
        return i, timestamp, cookie

    def _port(self):
        return self.rng.randrange(len(self.pool))

    def _index(self):
        while True:
            index = self.rng.getrandbits(32)
            if index and index not in self.knownIndexes:
                return index

    def _initBytes(self, timestamp, cookie, sender=None, suites=SUITES):
        return P.HandshakeInit(sender or self._index(), timestamp, cookie, self.rng.randbytes(32), suites).encode()

    # -- the kinds: each returns (source, datagram, predicted outcome) --

    def _hellos(self):
        nonce = self.rng.randbytes(8)
        if self.rng.random() < 0.8:
            data = P.encodeHello(nonce)
        else:  # longer, with junk padding: a server must accept it (section 5.1)
            data = bytes([P.HELLO]) + nonce + self.rng.randbytes(self.rng.randint(P.HELLO_SIZE + 1, MAX_DATAGRAM) - 9)
        return self._port(), data, "cookie"

    def _spoofed(self):
        while True:
            a, b, c = self.rng.randrange(256), self.rng.randrange(256), self.rng.randrange(1, 255)
            if (a, b) != (0, 0):  # not 127.0.0.x: the real sockets live there
                break
        source = (f"127.{a}.{b}.{c}", self.rng.randint(1024, 65535))
        if self.rng.random() < 0.7:
            return source, P.encodeHello(self.rng.randbytes(8)), "cookie"
        return source, self._initBytes(int(time.time()) - 2, self.rng.randbytes(16)), "bad-cookie"

    def _forged_inits(self):
        fresh = self._fresh()
        if fresh is not None and self.rng.random() < 0.5:  # a genuine cookie, one bit flipped
            i, timestamp, cookie = fresh
            bit = self.rng.randrange(128)
            cookie = (int.from_bytes(cookie, "big") ^ (1 << bit)).to_bytes(16, "big")
            return i, self._initBytes(timestamp, cookie), "bad-cookie"
        # a random MAC at a current timestamp (the server's clock is ours, and later)
        return self._port(), self._initBytes(int(time.time()) - 2, self.rng.randbytes(16)), "bad-cookie"

    def _stale_inits(self):
        fresh = self._fresh()
        if fresh is None:
            i, cookie = self._port(), self.rng.randbytes(16)
        else:
            i, _, cookie = fresh
        now = int(time.time())
        if self.rng.random() < 0.75:  # older than 2R
            timestamp = now - 2 * ROTATION - 1 - self.rng.randrange(100000)
        else:  # from the future (the server reads it within a minute)
            timestamp = now + 60 + self.rng.randrange(100000)
        return i, self._initBytes(timestamp & 0xFFFFFFFF, cookie), "expired-cookie"

    def _wrong_addr_inits(self):
        fresh = self._fresh()
        if fresh is None:
            return None
        owner, timestamp, cookie = fresh
        other = self._port()
        while other == owner:
            other = self._port()
        return other, self._initBytes(timestamp, cookie), "bad-cookie"

    def _malformed_inits(self):
        rng = self.rng
        variant = rng.randrange(7)
        now = time.time()
        if variant == 0:  # shorter than the fixed part
            data = bytes([P.HANDSHAKE_INIT]) + rng.randbytes(rng.randint(0, INIT_FIXED - 1))
        elif variant == 1:  # suite count 0
            data = bytearray(self._initBytes(int(now) - 2, rng.randbytes(16)))
            data[INIT_FIXED - 1] = 0
        elif variant == 2:  # suite count above 16, exact length
            count = rng.randint(P.MAX_OFFERED_SUITES + 1, 255)
            data = self._initBytes(int(now) - 2, rng.randbytes(16))[:INIT_FIXED - 1]
            data += bytes([count]) + rng.randbytes(count)
        elif variant == 3:  # shorter than its count says
            count = rng.randint(2, P.MAX_OFFERED_SUITES)
            data = self._initBytes(int(now) - 2, rng.randbytes(16), suites=SUITES[:1] * count)[:-rng.randint(1, count - 1)]
        elif variant == 4:  # longer than its count says
            data = self._initBytes(int(now) - 2, rng.randbytes(16)) + rng.randbytes(rng.randint(1, 300))
        elif variant == 5:  # sender index 0
            data = bytearray(self._initBytes(int(now) - 2, rng.randbytes(16)))
            data[1:5] = bytes(4)
        else:  # over the server's datagram limit
            data = self._initBytes(int(now) - 2, rng.randbytes(16)) + rng.randbytes(MAX_DATAGRAM)
            data = data[:rng.randint(MAX_DATAGRAM + 1, MAX_DATAGRAM + 200)]
        data = bytes(data)
        outcome = classify(data, self.knownIndexes, now)
        assert outcome is not None, data[:60].hex()
        return self._port(), data, outcome

    def _random_data(self):
        rng = self.rng
        t = rng.choice((P.DATA, P.DATA | 1, P.CONTROL, P.CONTROL | 1))
        roll = rng.random()
        if roll < 0.05:
            data = bytes([t]) + rng.randbytes(rng.randint(0, HEADER - 2))
        elif roll < 0.10:
            data = bytes([t]) + rng.randbytes(rng.randint(MAX_DATAGRAM, MAX_DATAGRAM + 100))
        else:
            data = P.encodeDataHeader(t, self._index(), rng.getrandbits(64)) + rng.randbytes(
                rng.randint(0, MAX_DATAGRAM - HEADER))
        return self._port(), data, classify(data, self.knownIndexes, time.time())

    def _live_data(self):
        live = self.live()
        if not live:
            return None
        rng = self.rng
        index, accepted = rng.choice(live)
        roll = rng.random()
        if roll < 0.2 and accepted:  # a sequence number the session accepted: its window refuses it
            t, seq, outcome = rng.choice((P.DATA, P.CONTROL)), rng.choice(accepted), "replay"
        elif roll < 0.35:  # the other key phase: no epoch 1 yet
            t, seq, outcome = rng.choice((P.DATA | 1, P.CONTROL | 1)), rng.getrandbits(64), "no-key"
        elif roll < 0.5:  # shorter than header and tag
            header = P.encodeDataHeader(rng.choice((P.DATA, P.CONTROL)), index, rng.getrandbits(64))
            return self._port(), header + rng.randbytes(rng.randint(0, TAG_SIZE - 1)), "truncated"
        else:  # a fresh sequence number, garbage where the tag is
            t, seq, outcome = rng.choice((P.DATA, P.CONTROL)), rng.randint(1 << 40, 1 << 62), "bad-tag"
        body = rng.randbytes(rng.randint(TAG_SIZE, 300))
        return self._port(), P.encodeDataHeader(t, index, seq) + body, outcome

    def _random_bytes(self):
        rng = self.rng
        while True:
            roll = rng.random()
            if roll < 0.02:
                size = 0
            elif roll < 0.07:
                size = rng.randint(MAX_DATAGRAM + 1, MAX_DATAGRAM + 200)
            elif roll < 0.5:
                size = rng.randint(1, 100)
            else:
                size = rng.randint(1, MAX_DATAGRAM)
            data = rng.randbytes(size)
            if size and rng.random() < 0.5:  # a sudp/1 first byte half the time
                data = bytes([0x10 | rng.randrange(16)]) + data[1:]
            outcome = classify(data, self.knownIndexes, time.time())
            if outcome is not None:
                return self._port(), data, outcome


def _ipv4Udp(source, dest, payload):
    """
    An IPv4 + UDP datagram from C{source} to C{dest} for a raw IP_HDRINCL
    socket (the kernel fills in the IP checksum and id; UDP checksum 0 is "none").
    """
    udp = struct.pack("!HHHH", source[1], dest[1], 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, socket.IPPROTO_UDP, 0,
                     socket.inet_aton(source[0]), socket.inet_aton(dest[0]))
    return ip + udp


# -- the legitimate clients ----------------------------------------------------------------


class Legit:
    """
    C{count} sudp clients on the socket of run.py's L{Clients} (bound to
    C{host}), driven a step at a time: handshakes (with the engines' own
    retransmissions), then C{messages} echoed messages each, resent after
    L{RETRY_AFTER} until echoed.

    @ivar sent: datagrams sent to the server, by first byte.
    """

    def __init__(self, server, count, messages, rng, host=HOST, maxRestarts=3):
        self.server = server
        self.clients = Clients(server)
        if host != HOST:
            self.clients.sock.close()
            self.clients.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.clients.sock.bind((host, 0))
        self.sock = self.clients.sock
        self.sock.setblocking(False)
        self.addr = self.sock.getsockname()
        self.count, self.messages, self.rng = count, messages, rng
        self.maxRestarts = maxRestarts
        self.started = 0
        self.engines = {}  # client number -> its engine
        self.number = {}  # engine -> client number
        self.opened = set()
        self.failed = set()  # handshakes that failed maxRestarts times
        self.ended = set()  # sessions that ended before their messages were echoed
        self.restarts = 0
        self.sent = Counter()
        self.flooding = False  # set while junk is being sent
        self.sentDuringJunk = 0
        self.sendErrors = 0
        self.unrouted = 0
        self.nextMessage = [0] * count
        self.inFlight = [0] * count
        self.echoedBy = [0] * count
        self.pending = {}  # message -> [client, seqs sent, last sent]
        self.echoed = 0
        self.retries = 0
        self.accepted = {}  # client -> sequence numbers the server took (echoed, sent once)
        self.serverIndexes = set()

    def close(self):
        self.sock.close()

    def begin(self, now, k=None):
        if k is None:
            k = self.started
            self.started += 1
        engine = ClientEngine(self.server.key, self.server.addr)
        engine.start(now)
        self.engines[k] = engine
        self.number[engine] = k
        self.clients.byNonce[engine._nonce] = engine
        self._after(engine, now)

    def done(self):
        """
        @return: True when every client has had all its messages echoed, or
            has failed.
        """
        finished = sum(1 for k in self.opened - self.ended if self.echoedBy[k] == self.messages)
        return finished + len(self.failed) + len(self.ended) == self.count

    def live(self):
        return [(self.engines[k].session.remoteIndex, self.accepted.get(k, [])) for k in self.opened - self.ended]

    def _flush(self, engine, out=None):
        for data, _ in engine.datagramsToSend() if out is None else out:
            try:
                self.sock.sendto(data, self.server.addr)
            except BlockingIOError:
                self.sendErrors += 1  # never sent; retransmission or retry makes it good
                continue
            self.sent[data[0]] += 1
            self.sentDuringJunk += self.flooding

    def _after(self, engine, now):
        index = getattr(engine, "_index", None)
        if index:
            self.clients.byIndex[index] = engine
        if engine.session is not None:
            self.serverIndexes.add(engine.session.remoteIndex)
        self._flush(engine)
        events = engine.nextEvents()
        k = self.number[engine]
        for event in events:
            if type(event) is MessageReceived:
                entry = self.pending.pop(bytes(event.message), None)
                if entry is not None:
                    self.echoed += 1
                    self.echoedBy[k] += 1
                    self.inFlight[k] -= 1
                    if len(entry[1]) == 1:
                        self.accepted.setdefault(k, []).append(entry[1][0])
            elif type(event) is SessionOpened:
                self.opened.add(k)
                self.clients.byNonce.pop(engine._nonce, None)
            elif type(event) is SessionEnded:
                self.ended.add(k)
                for message in [m for m, entry in self.pending.items() if entry[0] == k]:
                    del self.pending[message]
            elif type(event) is HandshakeFailure:
                self.clients.byNonce.pop(engine._nonce, None)
                if self.restarts < self.maxRestarts * self.count:
                    self.restarts += 1
                    self.begin(now, k)
                else:
                    self.failed.add(k)

    def _sendMessage(self, k, message, now):
        """
        @return: the DATA packet's sequence number, or None if the session
            has ended.
        """
        engine = self.engines[k]
        try:
            engine.sendMessage(engine.session, message, now)
        except SessionClosed:
            self.ended.add(k)
            return None
        out = engine.datagramsToSend()
        seq = int.from_bytes(out[-1][0][5:13], "big")
        self._flush(engine, out)
        return seq

    def service(self, now):
        """
        Read what the server sent, run due timers, send messages.
        """
        while True:
            try:
                data = self.sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                break
            engine = self.clients._route(data)
            if engine is None:
                self.unrouted += 1  # late copies for finished handshakes
                continue
            engine.receiveDatagrams((data,), self.server.addr, now)
            self._after(engine, now)
        for engine in list(self.engines.values()):
            deadline = engine.nextDeadline()
            if deadline is not None and deadline <= now:
                engine.handleTimer(now)
                self._after(engine, now)
        for k in self.opened:
            while k not in self.ended and self.inFlight[k] < WINDOW and self.nextMessage[k] < self.messages:
                i = self.nextMessage[k]
                message = b"%d/%d/" % (k, i) + self.rng.randbytes(self.rng.randint(8, 200))
                seq = self._sendMessage(k, message, now)
                if seq is not None:
                    self.nextMessage[k] += 1
                    self.pending[message] = [k, [seq], now]
                    self.inFlight[k] += 1
        for message, entry in list(self.pending.items()):
            if now - entry[2] >= RETRY_AFTER and entry[0] not in self.ended:
                seq = self._sendMessage(entry[0], message, now)
                if seq is None:
                    del self.pending[message]
                    continue
                entry[1].append(seq)
                entry[2] = now
                self.retries += 1


# -- the runs ------------------------------------------------------------------------------


class Report:
    def __init__(self):
        self.checks = []

    def check(self, name, ok, detail=""):
        self.checks.append({"name": name, "ok": bool(ok), "detail": detail})
        return ok

    @property
    def ok(self):
        return all(c["ok"] for c in self.checks)


def junkRound(junk, legits, counts, rate, rng, deadline, clientStarts=None, stall=None):
    """
    Send C{counts} junk datagrams of each kind, shuffled together and paced
    at C{rate} a second, while serving the legitimate clients; the clients
    of C{clientStarts} (a Legit) begin spread over the first half. With
    C{stall} (process id, seconds), that process is stopped for so long once
    a third of the junk is sent, so that its socket buffer overflows.

    @return: {"junk": seconds to send the junk, "clients": seconds until
        every client was done}, or None if that took past C{deadline}.
    """
    schedule = [kind for kind in KINDS for _ in range(counts.get(kind, 0))]
    rng.shuffle(schedule)
    total = len(schedule)
    starts = []
    if clientStarts is not None:
        starts = [k * total // (2 * clientStarts.count) for k in range(clientStarts.count)]
    deferred = []
    i = 0
    t0 = time.monotonic()
    times = {}
    for legit in legits:
        legit.flooding = True
    stalled = None
    while True:
        now = time.monotonic()
        if stall and stalled is None and i >= total // 3:
            os.kill(stall[0], signal.SIGSTOP)
            stalled = now
        if stalled and now - stalled >= stall[1]:
            os.kill(stall[0], signal.SIGCONT)
            stalled = False
        while clientStarts is not None and clientStarts.started < clientStarts.count and \
                starts[clientStarts.started] <= i:
            clientStarts.begin(now)
        end = min(total, i + BURST)
        if rate:
            end = min(end, max(i, int((now - t0) * rate)))
        for kind in schedule[i:end]:
            if not junk.send(kind):
                deferred.append(kind)
        i = end
        if i >= total and deferred:
            deferred = [kind for kind in deferred if not junk.send(kind)]
        if i >= total and not deferred and "junk" not in times:
            times["junk"] = time.monotonic() - t0
            for legit in legits:
                legit.flooding = False
        for legit in legits:
            legit.service(now)
        junk.harvest()
        if "clients" not in times and all(legit.done() for legit in legits):
            times["clients"] = time.monotonic() - t0
        if ("junk" in times and "clients" in times) or now > deadline:
            if stalled:
                os.kill(stall[0], signal.SIGCONT)
            return times if len(times) == 2 else None
        if i >= total or (rate and int((time.monotonic() - t0) * rate) <= i):
            select.select([legit.sock for legit in legits], [], [], 0.002)


def subtract(after, before):
    out = Counter(after)
    out.subtract(before)
    return {k: v for k, v in out.items() if v}


def engineCounters(stats):
    """
    @return: a server's counters (cookies-sent, handshakes, ...) and its
        drops, as "drop:REASON", from its stats line.
    """
    engine = stats["engine"]
    out = Counter({k: v for k, v in engine.items() if isinstance(v, int) and k not in ("sessions", "pending")})
    out.update({"drop:" + k: v for k, v in engine["drops"].items()})
    return out


def mainFlood(args, counts, rng, report):
    """
    The flood at a "sudp-echo" server; @return: its figures.
    """
    out = {}
    started = time.monotonic()
    with Server("sudp-echo") as server:
        junk = Junk(rng, server.addr, args.ports, spoof=counts.get("spoofed", 0) > 0)
        warm = legit = None
        try:
            if junk.raw is None and counts.get("spoofed"):
                out["spoofedSkipped"] = f"no raw socket ({junk.rawError}): spoofed sources skipped"
                counts = dict(counts, spoofed=0)
            out["counts"] = counts  # what was asked for, less what cannot be sent here
            # warm-up: a tenth of the junk and two clients that close again, so
            # that the RSS measured next is the server's working size
            junk.askCookies()
            warm = Legit(server, 2, 2, rng)
            junk.live = warm.live
            junk.knownIndexes = warm.serverIndexes
            warmCounts = {kind: max(1, n // 10) for kind, n in counts.items() if n}
            warm.begin(time.monotonic())
            warm.begin(time.monotonic())
            junkRound(junk, [warm], warmCounts, args.rate, rng, time.monotonic() + 30)
            now = time.monotonic()
            for engine in warm.engines.values():
                engine.closeSession(engine.session, now)
                warm._flush(engine)
            drain(server, [warm])
            junk.harvest()

            legit = Legit(server, args.clients, args.messages, rng)
            server.command(f"watch {legit.addr[0]}:{legit.addr[1]}")
            junk.live = legit.live
            junk.knownIndexes = legit.serverIndexes | warm.serverIndexes
            legit.serverIndexes = junk.knownIndexes  # one set: indexes learnt later are avoided too
            server.command("reset")
            before = server.stats()
            queueBefore = socketQueue(server.addr[1])
            junk.reset()
            t0 = time.monotonic()
            stall = (server.proc.pid, args.stall) if args.stall else None
            finished = junkRound(junk, [legit], counts, args.rate, rng, time.monotonic() + args.timeout, legit, stall)
            floodSeconds = time.monotonic() - t0
            after = drain(server, [legit])
            queueAfter = socketQueue(server.addr[1])
            junk.harvest()
        finally:
            if args.stall:
                os.kill(server.proc.pid, signal.SIGCONT)  # never leave it stopped
            junk.close()
            for group in (warm, legit):
                if group is not None:
                    group.close()

    # -- the figures
    read = after["datagrams"]
    watched = after.get("watched", {}).get(f"{legit.addr[0]}:{legit.addr[1]}", {})
    legitRead = Counter({int(k): v for k, v in watched.items()})
    legitReadTotal = sum(legitRead.values())
    junkRead = read - legitReadTotal
    junkSent = sum(junk.sent.values())
    legitSent = sum(legit.sent.values())
    kernelLoss = queueAfter[1] - queueBefore[1] if queueBefore and queueAfter else None
    delta = subtract(engineCounters(after), engineCounters(before))
    drops = {k[len("drop:"):]: v for k, v in delta.items() if k.startswith("drop:")}
    delta = {k: v for k, v in delta.items() if not k.startswith("drop:")}
    legitHellos = legitRead[P.HELLO]
    legitInits = legitRead[P.HANDSHAKE_INIT]
    cookies = delta.get("cookies-sent", 0)
    junkCookies = cookies - legitHellos
    # what the kernel dropped is the adapter's count, not an outcome of the junk the server read
    notJunk = ("duplicate-ephemeral", "handshake-expired", "receive-buffer-overflow")
    junkDrops = {k: v for k, v in drops.items() if k not in notJunk}
    junkAccounted = sum(junkDrops.values()) + junkCookies
    expectedDrops = {k: v for k, v in junk.expected.items() if k != "cookie"}
    junkLost = junkSent - junkRead

    out.update({
        "junkSent": dict(junk.sent), "junkSentTotal": junkSent, "junkSendErrors": junk.sendErrors,
        "legitSent": byTypeName(legit.sent),
        "legitSentTotal": legitSent,
        "serverRead": read, "legitRead": byTypeName(legitRead),
        "legitReadTotal": legitReadTotal, "junkRead": junkRead,
        "kernelLoss": kernelLoss, "junkLostToKernel": junkLost, "legitLostToKernel": legitSent - legitReadTotal,
        "drops": drops, "junkDrops": junkDrops, "expectedJunkOutcomes": dict(junk.expected),
        "cookiesSent": cookies, "junkCookies": junkCookies, "counters": delta,
        "junkReplies": dict(junk.replies), "poolHellos": junk.poolCookies,
        "legit": {"clients": args.clients, "opened": len(legit.opened), "failed": len(legit.failed),
                  "ended": len(legit.ended),
                  "handshakeRestarts": legit.restarts, "messages": args.clients * args.messages,
                  "echoed": legit.echoed, "messageRetries": legit.retries, "sendErrors": legit.sendErrors},
        "after": {"sessions": after["engine"]["sessions"], "pending": after["engine"]["pending"],
                  "containers": after["containers"]},
        "before": {"sessions": before["engine"]["sessions"], "pending": before["engine"]["pending"],
                   "containers": before["containers"]},
        "rss": {"before": before["rss"], "after": after["rss"], "growth": after["rss"] - before["rss"],
                "tolerance": args.clients * MEMORY_PER_CLIENT + MEMORY_SLACK},
        "floodSeconds": floodSeconds, "junkSeconds": finished and finished["junk"],
        "clientsSeconds": finished and finished["clients"], "legitSentDuringJunk": legit.sentDuringJunk,
        "seconds": time.monotonic() - started,
        "serverCpuSeconds": after["cpu"] - before["cpu"],
    })

    # -- the checks
    n = args.clients
    report.check("the junk was sent and every client finished in time", finished is not None,
                 f"{junkSent} junk datagrams in {finished['junk']:.2f} s, clients done after "
                 f"{finished['clients']:.2f} s, {legit.sentDuringJunk} of {legitSent} client datagrams sent "
                 "while the junk was"
                 if finished else f"not within {args.timeout:g} s")
    report.check("every legitimate client opened", len(legit.opened) == n and not legit.ended,
                 f"{len(legit.opened)} of {n} opened, {legit.restarts} handshakes restarted, "
                 f"{len(legit.ended)} sessions ended early")
    report.check("every message was echoed", legit.echoed == n * args.messages,
                 f"{legit.echoed} of {n * args.messages} echoed, {legit.retries} resent "
                 f"({legitSent - legitReadTotal} client datagrams lost to the kernel)")
    # (a client whose handshake was restarted may have left a session behind)
    base = before["engine"]["sessions"]  # 0: the warm-up's clients closed theirs
    sessions = after["engine"]["sessions"] - base
    c0, c1 = before["containers"], after["containers"]
    report.check("no state kept for junk: sessions == clients, pending == 0",
                 n <= sessions <= n + legit.restarts and after["engine"]["pending"] == 0,
                 f"sessions {after['engine']['sessions']} (before the flood {base}), "
                 f"pending {after['engine']['pending']}")
    report.check("no state kept for junk: the engine's containers",
                 c1["sessions"] == after["engine"]["sessions"] + after["engine"]["pending"]
                 and c1["byEphemeral"] == c1["sessions"]
                 and c1["limiter"] <= max(c0["limiter"], 1)
                 and c1["cookieSecrets"] <= 4
                 and c1["ciphers"] <= c1["sessions"]
                 and c1["timers"] <= c0["timers"] + 4 * n,
                 f"before {c0}, after {c1}")
    growth = after["rss"] - before["rss"]
    report.check("memory flat", growth <= out["rss"]["tolerance"],
                 f"RSS {before['rss'] / 2**20:.1f} -> {after['rss'] / 2**20:.1f} MiB "
                 f"({growth / 2**10:+.0f} KiB; allowed {out['rss']['tolerance'] / 2**10:.0f} KiB: "
                 f"{MEMORY_PER_CLIENT >> 10} KiB a client + {MEMORY_SLACK >> 10} KiB)")
    report.check("every datagram sent was read by the server or dropped by the kernel",
                 kernelLoss is not None and junkSent + legitSent == read + kernelLoss,
                 f"sent {junkSent} junk + {legitSent} client = {junkSent + legitSent}; "
                 f"read {read} + kernel drops {kernelLoss}")
    overflow = drops.get("receive-buffer-overflow", 0)
    report.check("the kernel's drops are counted as receive-buffer-overflow, never more",
                 kernelLoss is not None and overflow <= kernelLoss,
                 f"receive-buffer-overflow {overflow}, kernel drops {kernelLoss} (read every second)")
    report.check("junk read == junk drops + cookies sent for junk HELLOs", junkRead == junkAccounted,
                 f"{junkRead} read ({read} - {legitReadTotal} from the clients); "
                 f"{sum(junkDrops.values())} drops + {junkCookies} cookies ({cookies} - {legitHellos} client HELLOs)")
    report.check("client INITs read == handshakes + RESPs resent + duplicate-ephemeral",
                 legitInits == delta.get("handshakes", 0) + delta.get("resp-retransmitted", 0)
                 + drops.get("duplicate-ephemeral", 0),
                 f"{legitInits} INITs; {delta.get('handshakes', 0)} handshakes, "
                 f"{delta.get('resp-retransmitted', 0)} resent, {drops.get('duplicate-ephemeral', 0)} duplicate")
    if junkLost == 0:
        ok = junkDrops == expectedDrops and junkCookies == junk.expected["cookie"]
        how = "exactly"
    else:
        ok = all(v <= expectedDrops.get(k, 0) for k, v in junkDrops.items()) and \
            junkCookies <= junk.expected["cookie"]
        how = f"at most ({junkLost} junk datagrams lost to the kernel)"
    wrong = {k: (junkDrops.get(k, 0), expectedDrops.get(k, 0)) for k in set(junkDrops) | set(expectedDrops)
             if junkDrops.get(k, 0) != expectedDrops.get(k, 0)}
    report.check("junk drops by reason as predicted", ok,
                 f"{how}; (got, predicted) where they differ: {wrong or 'none'}")
    report.check("the junk's source ports got nothing but COOKIEs, one at most for each HELLO, and "
                 "stateless resets, one at most for each DATA/CONTROL of no session",
                 junk.replies["other"] == 0 and junk.replies["cookie"] <= junk.poolCookies
                 and junk.replies["reset"] <= junkDrops.get("unknown-session", 0),
                 f"{junk.replies['cookie']} COOKIEs for {junk.poolCookies} HELLOs from the pool's ports, "
                 f"{junk.replies['reset']} resets for {junkDrops.get('unknown-session', 0)} packets of no session, "
                 f"{junk.replies['other']} other datagrams")
    report.check("no pending handshake expired", drops.get("handshake-expired", 0) <= legit.restarts,
                 f"handshake-expired {drops.get('handshake-expired', 0)}")
    return out


def rateLimit(args, rng, report):
    """
    A burst of valid-cookie INITs from one address at a server with the
    default per-address limit, while clients on other addresses handshake.
    """
    out = {}
    burstSize = DEFAULTS.handshakeBurst + args.burst_extra
    rate = DEFAULTS.handshakesPerSecond
    with Server("sudp-echo-limited") as server:
        flooder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        others = []
        try:
            flooder.bind((HOST, 0))
            flooder.settimeout(2.0)
            cookie = None
            for _ in range(3):
                flooder.sendto(P.encodeHello(os.urandom(8)), server.addr)
                try:
                    data = flooder.recv(4096)
                except socket.timeout:
                    continue
                if len(data) == P.COOKIE_PACKET_SIZE and data[0] == P.COOKIE:
                    cookie = P.decodeCookie(data)[1:]
                    break
            if cookie is None:
                raise RuntimeError("the rate-limit server sent no COOKIE")
            inits = [P.HandshakeInit(rng.randrange(1, 2**32), cookie[0], cookie[1],
                                     Ephemeral(os.urandom(32)).public, SUITES).encode() for _ in range(burstSize)]
            for j in range(args.other_hosts):
                try:
                    others.append(Legit(server, 1, 2, rng, host=f"127.0.0.{2 + j}"))
                except OSError as e:
                    out["otherHostsSkipped"] = str(e)
                    break
            before = server.stats()
            t0 = time.monotonic()
            for group in others:
                group.begin(t0)
            for data in inits:
                flooder.sendto(data, server.addr)
            flooder.setblocking(False)
            resps = 0
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                for group in others:
                    group.service(time.monotonic())
                while True:
                    try:
                        data = flooder.recv(4096)
                    except (BlockingIOError, InterruptedError):
                        break
                    resps += data[0] == P.HANDSHAKE_RESP
                if all(group.done() for group in others):
                    break
                select.select([g.sock for g in others] + [flooder], [], [], 0.01)
            after = drain(server, others, quiet=0.1)
            span = time.monotonic() - t0
            while True:
                try:
                    resps += flooder.recv(4096)[0] == P.HANDSHAKE_RESP
                except (BlockingIOError, InterruptedError):
                    break
        finally:
            flooder.close()
            for group in others:
                group.close()

    delta = subtract(engineCounters(after), engineCounters(before))
    served = sum(len(g.opened) for g in others)
    restarts = sum(g.restarts for g in others)
    accepted = delta.get("handshakes", 0) - served - restarts
    limited = delta.get("drop:rate-limited", 0)
    refill = int(rate * span)
    out.update({"burst": burstSize, "handshakeBurst": DEFAULTS.handshakeBurst, "handshakesPerSecond": rate,
                "accepted": accepted, "rateLimited": limited, "respsReceived": resps, "spanSeconds": span,
                "otherHosts": len(others), "otherHostsServed": served,
                "sessions": after["engine"]["sessions"], "pending": after["engine"]["pending"],
                "containers": after["containers"], "drops": {k[5:]: v for k, v in delta.items() if k[:5] == "drop:"}})
    report.check("rate limit: the burst beyond handshakeBurst was dropped as rate-limited",
                 cookie is not None and DEFAULTS.handshakeBurst <= accepted <= DEFAULTS.handshakeBurst + refill
                 and limited == burstSize - accepted and resps == accepted,
                 f"{burstSize} INITs with a valid cookie from {HOST}: {accepted} answered ({resps} RESPs received; "
                 f"at most {DEFAULTS.handshakeBurst} + {refill} refilled in {span:.2f} s), {limited} rate-limited")
    report.check("rate limit: other addresses served meanwhile",
                 others and served == len(others) and after["engine"]["sessions"] == served
                 and after["engine"]["pending"] == accepted,
                 f"{served} of {len(others)} clients on 127.0.0.2.. opened; sessions {after['engine']['sessions']}, "
                 f"pending {after['engine']['pending']} (the unconfirmed burst)")
    report.check("rate limit: only proven addresses are tracked",
                 after["containers"]["limiter"] == 1 + len(others),
                 f"limiter sources {after['containers']['limiter']}")
    return out


# -- output --------------------------------------------------------------------------------


def summary(result, out=sys.stdout):
    f = result["flood"]
    w = out.write
    w(f"sudp flood on loopback: seed {result['seed']}, {result['seconds']:.1f} s\n\n")
    if "spoofedSkipped" in f:
        w(f"  {f['spoofedSkipped']}\n")
    w("junk sent, by kind:\n")
    for kind in KINDS + ("harvest-hellos",):
        if kind in f["junkSent"]:
            w(f"  {kind:18} {f['junkSent'][kind]:8}\n")
    w(f"  {'total':18} {f['junkSentTotal']:8}  (in {f['floodSeconds']:.2f} s)\n\n")
    w(f"server read {f['serverRead']} datagrams: {f['legitReadTotal']} from the clients, {f['junkRead']} junk; "
      f"kernel dropped {f['kernelLoss']} at its socket\n")
    w("junk outcome           server  predicted\n")
    expected = f["expectedJunkOutcomes"]
    for reason in sorted(set(f["junkDrops"]) | set(expected) - {"cookie"}):
        w(f"  {reason:20} {f['junkDrops'].get(reason, 0):7} {expected.get(reason, 0):10}\n")
    w(f"  {'cookie sent':20} {f['junkCookies']:7} {expected.get('cookie', 0):10}   "
      f"(cookies-sent {f['cookiesSent']}, of which client HELLOs {f['legitRead'].get('HELLO', 0)})\n")
    other = {k: v for k, v in f["drops"].items() if k not in f["junkDrops"]}
    if other:
        w(f"  drops from the clients or timers: {other}\n")
    g = f["legit"]
    w(f"\nclients: {g['opened']} of {g['clients']} opened ({g['handshakeRestarts']} restarted), "
      f"{g['echoed']} of {g['messages']} messages echoed ({g['messageRetries']} resent); "
      f"client datagrams {f['legitSent']}\n")
    w(f"after: sessions {f['after']['sessions']}, pending {f['after']['pending']}, "
      f"containers {f['after']['containers']}\n")
    r = f["rss"]
    w(f"server RSS {r['before'] / 2**20:.2f} -> {r['after'] / 2**20:.2f} MiB "
      f"({r['growth'] / 2**10:+.0f} KiB, allowed {r['tolerance'] / 2**10:.0f} KiB); "
      f"server CPU {f['serverCpuSeconds']:.2f} s\n")
    rl = result.get("rateLimit")
    if rl:
        w(f"\nrate limit: {rl['burst']} INITs with a valid cookie from one address: {rl['accepted']} answered, "
          f"{rl['rateLimited']} rate-limited; {rl['otherHostsServed']} of {rl['otherHosts']} clients on other "
          f"addresses served\n")
    w("\nchecks:\n")
    for c in result["checks"]:
        w(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['name']}: {c['detail']}\n")
    w(f"\n{'all checks passed' if result['ok'] else 'SOME CHECKS FAILED'}\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description="a bounded junk flood at a sudp server on loopback")
    parser.add_argument("--quick", action="store_true", help="a tenth of the junk, 3 messages a client")
    parser.add_argument("--clients", type=int, default=50, help="legitimate clients (default 50)")
    parser.add_argument("--messages", type=int, help="echoed messages per client (default 20, quick 3)")
    parser.add_argument("--ports", type=int, help="junk source ports (default 256, quick 32)")
    parser.add_argument("--rate", type=float, default=20000, help="junk datagrams a second (0: unpaced)")
    parser.add_argument("--seed", type=int, help="seed of the junk (default: random, printed)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds the flood may take")
    parser.add_argument("--stall", type=float, default=0.0,
                        help="stop the server (SIGSTOP) this long a third of the way in, so that its socket "
                             "buffer overflows and the kernel drops datagrams (default 0: no stall)")
    parser.add_argument("--burst-extra", type=int, default=20, help="rate-limit INITs beyond handshakeBurst")
    parser.add_argument("--other-hosts", type=int, default=4, help="clients on 127.0.0.2.. in the rate-limit part")
    parser.add_argument("--json", help="write the figures and checks here")
    for kind in KINDS:
        parser.add_argument("--" + kind, type=int,
                            help=f"junk of this kind (default {FULL[kind]}, quick {QUICK[kind]})")
    args = parser.parse_args(argv)
    # a plain kill runs the finally clauses: no server is left stopped or running
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    counts = {kind: (QUICK if args.quick else FULL)[kind] for kind in KINDS}
    for kind in KINDS:
        value = getattr(args, kind.replace("-", "_"))
        if value is not None:
            counts[kind] = value
    if args.messages is None:
        args.messages = 3 if args.quick else 20
    if args.ports is None:
        args.ports = 32 if args.quick else 256
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    started = time.monotonic()
    report = Report()
    result = {"seed": seed, "quick": args.quick, "counts": counts, "clients": args.clients,
              "messages": args.messages, "ports": args.ports, "rate": args.rate}
    result["flood"] = mainFlood(args, counts, rng, report)
    result["rateLimit"] = rateLimit(args, rng, report)
    result["seconds"] = time.monotonic() - started
    result["checks"] = report.checks
    result["ok"] = report.ok
    summary(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
