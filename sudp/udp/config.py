# -*- test-case-name: sudp_test.gossip6.test_udp, sudp_test.peer.test_node, sudp_test.test_handshakes -*-
"""
Every limit and timer of sudp/1, in one validated object.
"""

from dataclasses import dataclass, fields, replace

from sudp.errors import ConfigurationError
from sudp.suites import defaultSuites

# 1500-byte MTU less a 40-byte IPv6 header and an 8-byte UDP header.
DEFAULT_MAX_DATAGRAM = 1452
MAX_UDP_PAYLOAD = 65507


@dataclass(frozen=True)
class Config:
    """
    Options of a sudp/1 client or server. Times are seconds.

    @ivar suites: the cipher suites in preference order (a client offers them
        in this order; a server picks its most preferred one the client
        offers, or ChaCha20-Poly1305 when the client offers it first). By
        default both built-in AEADs, AES-256-GCM first on a CPU with AES
        instructions and ChaCha20-Poly1305 first on one without
        (L{sudp.suites.defaultSuites}).
    @ivar maxDatagramSize: the largest datagram sent or accepted; the largest
        application message is this less the 29 bytes of overhead.
    @ivar replayWindow: packets remembered below the highest sequence number.
    @ivar ordering: C{"window"} (accept reordered packets inside the window) or
        C{"strict"} (the UDP whitepaper: only a sequence number greater than every one
        before is accepted).
    @ivar rekeyAfterTime: age of a key epoch at which the client rekeys (the
        server asks for it C{rekeyAfterTime + 10} seconds in).
    @ivar rekeyAfterMessages: packets sent under one key before a rekey; a
        session uses the smaller of this and half its suite's
        confidentiality limit (so AES-256-GCM rekeys every 2**22 packets).
    @ivar cipherCache: how many key epochs may hold their keyed cipher objects
        (about 4.8 KB of OpenSSL state each) at once; others re-make theirs
        on their next packet (about 1 µs). Raise it for servers with more
        sessions active at the same moment.
    @ivar handshakesPerSecond: handshakes one (cookie-proven) source address
        may start per second on average, and C{handshakeBurst} at once; the
        rest are dropped as C{rate-limited} (WireGuard allows 20 a second).
    @ivar handshakePrefixV4: the prefix length (bits) by which IPv4 sources
        are counted for the handshake rate and the fair share of pending
        handshakes: 32 counts each address on its own.
    @ivar handshakePrefixV6: the same for IPv6: 64 by default, since one
        host usually holds a whole /64.
    @ivar pathValidationTimeout: how long a server waits for the answer to
        a path challenge from a client's new address before it gives up
        (the session stays on its validated address).
    @ivar revealKey: (server, sudp/1's handshake) answer a HELLO that asks
        for the server's public key with a COOKIE carrying it (protocol.md
        5.7), so that a client trusting on first use can learn it. Off by
        default; peer mode turns it on.
    @ivar followPeer: (client) let the session follow its server to a new
        address once that address is validated, as a server follows its
        client (protocol.md 10.8). Off by default (a server's address does
        not move); peer mode turns it on, since either side of a peer
        session may sit behind a NAT that rebinds.
    @ivar overflowCheckInterval: seconds between two reads of the kernel's
        count of datagrams it dropped at the socket because its receive
        buffer was full (counted as C{receive-buffer-overflow} and logged);
        0: never.
    @ivar resetsPerSecond: stateless resets (protocol.md 10.9) a server
        sends per second in all on average, and C{resetBurst} at once; 0
        sends none.
    @ivar rekeysPerSecond: rekeys a server answers per session and second
        on average, and C{rekeyBurst} at once; a request past the limit is
        ignored (counted as C{rekey-rate-limited}) and the client's
        retransmission tries again later. Each answer costs the server an
        X25519 exchange and a signature.
    @ivar gso: send bursts to one peer with UDP GSO where the kernel allows.
    @ivar gro: receive with UDP GRO where the kernel allows.
    @ivar recvBuffer: the socket's receive buffer (C{SO_RCVBUF}) in bytes;
        0 keeps the system's default. Raise it for bursty traffic (the
        kernel caps it at C{net.core.rmem_max}).
    @ivar recvBatch: with the C speedups, datagrams taken per C{recvmmsg}
        call on a server's socket; clients take at most 4. Each costs a
        buffer of C{maxDatagramSize}; with GRO each buffer is 64 KiB and
        holds up to 64 datagrams, and at most 8 are used.
    @ivar rejectAfterMessages: packets under one key after which nothing more is
        sent with it (the session closes if no rekey happened); a session uses
        the smaller of this and its suite's confidentiality limit.
    """

    suites: tuple = defaultSuites()
    maxDatagramSize: int = DEFAULT_MAX_DATAGRAM
    replayWindow: int = 2048
    ordering: str = "window"
    rekeyAfterTime: float = 300.0
    rekeyAfterMessages: int = 2**32
    rejectAfterMessages: int = 2**60
    rekeyRetransmit: float = 1.0
    oldKeyGrace: float = 5.0
    keepaliveInterval: float = 15.0
    idleTimeout: float = 60.0
    handshakeTimeout: float = 10.0
    retransmitInitial: float = 0.5
    retransmitMax: float = 4.0
    maxSessions: int = 10000
    maxPendingHandshakes: int = 1000
    cookieRotation: int = 120
    gso: bool = True
    gro: bool = True
    recvBatch: int = 32
    recvBuffer: int = 0
    cipherCache: int = 1024
    handshakesPerSecond: float = 20.0
    handshakeBurst: int = 20
    handshakePrefixV4: int = 32
    handshakePrefixV6: int = 64
    pathValidationTimeout: float = 3.0
    revealKey: bool = False
    followPeer: bool = False
    rekeysPerSecond: float = 1.0
    rekeyBurst: int = 10
    resetsPerSecond: float = 1000.0
    resetBurst: int = 1000
    overflowCheckInterval: float = 1.0

    def __post_init__(self):
        self.validate()

    @property
    def maxMessageSize(self):
        """
        The largest application message: one message is one datagram.
        """
        from sudp.udp.packets import DATA_HEADER_SIZE

        return self.maxDatagramSize - DATA_HEADER_SIZE - max(s.tagSize for s in self.suites)

    def validate(self):
        def need(ok, message):
            if not ok:
                raise ConfigurationError(message)

        need(len(self.suites) >= 1, "at least one cipher suite")
        need(
            200 <= self.maxDatagramSize <= MAX_UDP_PAYLOAD,
            f"maxDatagramSize must be 200 to {MAX_UDP_PAYLOAD}, not {self.maxDatagramSize}",
        )
        need(
            1024 <= self.replayWindow <= 2**20,
            f"replayWindow must be 1024 to {2**20}, not {self.replayWindow}",
        )
        need(0 <= self.recvBuffer <= 2**30, f"recvBuffer must be 0 to {2**30}, not {self.recvBuffer}")
        need(1 <= self.recvBatch <= 1024, f"recvBatch must be 1 to 1024, not {self.recvBatch}")
        need(self.ordering in ("window", "strict"), f"ordering is 'window' or 'strict', not {self.ordering!r}")
        need(self.rekeyAfterMessages >= 1, "rekeyAfterMessages must be at least 1")
        need(
            self.rekeyAfterMessages < self.rejectAfterMessages <= 2**64,
            "rejectAfterMessages must be above rekeyAfterMessages and at most 2**64",
        )
        for name in (
            "rekeyAfterTime",
            "rekeyRetransmit",
            "oldKeyGrace",
            "keepaliveInterval",
            "idleTimeout",
            "handshakeTimeout",
            "retransmitInitial",
            "retransmitMax",
            "pathValidationTimeout",
            "rekeysPerSecond",
        ):
            need(getattr(self, name) > 0, f"{name} must be positive")
        need(
            self.keepaliveInterval < self.idleTimeout,
            "keepaliveInterval must be shorter than idleTimeout",
        )
        need(self.maxSessions >= 1, "maxSessions must be at least 1")
        need(self.maxPendingHandshakes >= 1, "maxPendingHandshakes must be at least 1")
        need(self.cookieRotation >= 10, "cookieRotation must be at least 10 seconds")
        need(self.cipherCache >= 1, "cipherCache must be at least 1")
        need(self.handshakesPerSecond > 0, "handshakesPerSecond must be positive")
        need(self.handshakeBurst >= 1, "handshakeBurst must be at least 1")
        need(self.rekeyBurst >= 1, "rekeyBurst must be at least 1")
        need(self.resetsPerSecond >= 0, "resetsPerSecond must be 0 (no stateless resets) or more")
        need(self.resetBurst >= 1, "resetBurst must be at least 1")
        need(0 <= self.overflowCheckInterval <= 3600, "overflowCheckInterval must be 0 (never) to 3600 seconds")
        need(8 <= self.handshakePrefixV4 <= 32, f"handshakePrefixV4 must be 8 to 32, not {self.handshakePrefixV4}")
        need(16 <= self.handshakePrefixV6 <= 128,
             f"handshakePrefixV6 must be 16 to 128, not {self.handshakePrefixV6}")

    def replace(self, **changes):
        """
        @return: a copy with C{changes}, validated.
        """
        return replace(self, **changes)


OPTION_NAMES = {f.name for f in fields(Config)}
