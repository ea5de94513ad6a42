# -*- test-case-name: sudp_test.gossip6.test_config -*-
"""
The options of a gossip6 endpoint (docs/gossip6.md, "Options").
"""

import math
from dataclasses import dataclass

from sudp.errors import ConfigurationError

MAX_DIFFICULTY = 24  # 2**24 scrypt evaluations on average: beyond any sane handshake


@dataclass(frozen=True)
class Gossip6Config:
    """
    @ivar tMax: seconds a handshake message stays fresh (the Gossip-6 spec's t_max):
        one whose timestamp T is older than now - tMax is refused.
    @ivar clockSkew: seconds a timestamp may lie in the future (the peers'
        clocks differ); one further ahead is refused.
    @ivar scryptN: scrypt's cost parameter N (a power of two).
    @ivar scryptR: scrypt's block size r.
    @ivar scryptP: scrypt's parallelism p.
    @ivar difficulty: leading zero bits the scrypt output must have: the
        spec's k is 2**(256 - difficulty). Each extra bit doubles the work.
    @ivar localAddresses: C{(host, port)} pairs a peer may name as ours
        (a server behind NAT names the address its peers see); empty: the
        socket's own address (any of this host's addresses if it is bound to
        all of them).
    @ivar maxReuseRecords: proofs of work remembered (each accepted at most
        once while fresh); when full, new handshakes are refused until old
        records expire.
    """

    tMax: float = 60.0
    clockSkew: float = 5.0
    scryptN: int = 1024
    scryptR: int = 8
    scryptP: int = 1
    difficulty: int = 6
    localAddresses: tuple = ()
    maxReuseRecords: int = 65536

    def __post_init__(self):
        def need(ok, message):
            if not ok:
                raise ConfigurationError(f"gossip6: {message}")

        need(math.isfinite(self.tMax) and self.tMax > 0, f"tMax must be positive seconds, not {self.tMax}")
        need(math.isfinite(self.clockSkew) and self.clockSkew >= 0,
             f"clockSkew must be 0 or more seconds, not {self.clockSkew}")
        n = self.scryptN
        need(isinstance(n, int) and 2 <= n <= 2**20 and n & (n - 1) == 0,
             f"scryptN must be a power of two from 2 to 2**20, not {n}")
        need(isinstance(self.scryptR, int) and 1 <= self.scryptR <= 32, f"scryptR must be 1 to 32, not {self.scryptR}")
        need(isinstance(self.scryptP, int) and 1 <= self.scryptP <= 16, f"scryptP must be 1 to 16, not {self.scryptP}")
        need(self.scryptMemory <= 2**30, "scrypt would need more than 1 GiB (128 * N * r * p bytes)")
        need(isinstance(self.difficulty, int) and 0 <= self.difficulty <= MAX_DIFFICULTY,
             f"difficulty must be 0 to {MAX_DIFFICULTY} bits, not {self.difficulty}")
        need(1 <= self.maxReuseRecords <= 2**24, f"maxReuseRecords must be 1 to 2**24, not {self.maxReuseRecords}")
        for addr in self.localAddresses:
            need(isinstance(addr, tuple) and len(addr) == 2 and isinstance(addr[1], int) and 0 < addr[1] < 65536,
                 f"localAddresses holds (host, port) pairs, not {addr!r}")

    @property
    def scryptMemory(self):
        """
        Bytes one scrypt evaluation needs.
        """
        return 128 * self.scryptN * self.scryptR * self.scryptP

    @property
    def target(self):
        """
        The spec's k: a proof is valid when scrypt(m) < k, as a 256-bit
        big-endian number.
        """
        return 1 << (256 - self.difficulty)


def parseLocalAddresses(text):
    """
    @param text: C{"host:port,host:port"}, IPv6 hosts in brackets
        (C{"[::1]:9000"}).
    @return: a tuple of C{(host, port)}.
    @raise ConfigurationError: if an entry is not a numeric address and port.
    """
    from sudp.addresses import parseAddress

    out = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            out.append(parseAddress(item))
        except ValueError:
            raise ConfigurationError(f"gossip6: localAddresses entry {item!r} is not IP:PORT") from None
    return tuple(out)


# -- endpoint strings -----------------------------------------------------------

OPTION_NAMES = ("tMax", "clockSkew", "scryptN", "scryptR", "scryptP", "difficulty", "localAddresses",
                "maxReuseRecords", "trustedKeys")


def gossip6FromOptions(options, what, serverKey=None):
    """
    Take gossip6's options (L{OPTION_NAMES}) out of an endpoint string's.

    @param what: C{"sudp server"}, C{"sframe client"}...: for messages.
    @param serverKey: a client's C{serverKey=} text, if given: an
        C{rsa-...} key (or a C{.pub} file) trusted alone, instead of or
        beside C{trustedKeys=}.
    @return: C{(Gossip6Config, trusted keys)}.
    @raise ConfigurationError: on a bad or missing value.
    """
    from sudp import options as options_
    from sudp.errors import SUDPError
    from sudp.rsakeyfiles import loadRSAPublicKey, loadTrustedKeys
    from sudp.rsakeys import RSAPublicKey

    trustedFile = options.pop("trustedKeys", None)
    local = options.pop("localAddresses", None)
    config = options_.configFromOptions(Gossip6Config, options, None, f"{what} (gossip6)")
    if local is not None:
        from dataclasses import replace

        config = replace(config, localAddresses=parseLocalAddresses(local))
    trusted = []
    try:
        if trustedFile is not None:
            trusted.extend(loadTrustedKeys(trustedFile))
        if serverKey is not None:
            trusted.append(RSAPublicKey.fromText(serverKey) if serverKey.startswith("rsa-")
                           else loadRSAPublicKey(serverKey))
    except SUDPError as e:
        raise ConfigurationError(f"{what} (gossip6): {e}") from None
    if not trusted:
        raise ConfigurationError(
            f"{what} (gossip6): give trustedKeys=FILE (the peers' RSA keys, one per line)"
            + (" or serverKey=rsa-..." if what.endswith("client") else ""))
    return config, trusted
