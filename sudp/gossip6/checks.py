# -*- test-case-name: sudp_test.gossip6.test_checks -*-
"""
The discard rules of the Gossip-6 spec, cheapest first (docs/gossip6.md, "Checks"):

  1. sizes (the decoders), and on UDP the stateless cookie before anything
  2. freshness: T older than now - tMax, or later than now + clockSkew
  3. address: the peer named in m is not one of ours
  4. reuse: this m (its SHA3-256) was accepted before, while still fresh
  5. trust: the sender's RSA key is not in the trusted keys
  6. proof of work: scrypt(m) >= k
  7. signature: RSA-PSS over SHA3-256(m) does not verify

Each refusal is a reason string, counted by the engine as a drop.
"""

import hashlib
import heapq
import ipaddress
import socket
from collections import OrderedDict

from sudp.gossip6.proof import meetsTarget
from sudp.gossip6.wire import sameAddress

WILDCARDS = ("", "0.0.0.0", "::")


def isOurs(peer, ours):
    """
    @param peer: the C{(host, port)} a message names as its receiver.
    @param ours: C{(host, port)} pairs we answer to; a wildcard host (the
        socket is bound to every address) matches any address with that port.
    """
    for host, port in ours:
        if host in WILDCARDS:
            if peer[1] == port and isLocalAddress(peer[0]):
                return True
        elif sameAddress(peer, (host, port)):
            return True
    return False


_local = set()  # addresses found to be this host's (a few; junk is never cached)


def isLocalAddress(text):
    """
    @return: True if C{text} is an IP address of this host: one a socket
        can be bound to (the kernel refuses any other with EADDRNOTAVAIL).
    """
    if text in _local:
        return True
    try:
        ip = ipaddress.ip_address(text)
        with socket.socket(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((str(ip), 0))
    except (ValueError, OSError):
        return False
    if len(_local) < 1024:
        _local.add(text)
    return True


class ReuseRecord:
    """
    The proofs of work accepted while still fresh, by the SHA3-256 of m;
    each is forgotten once its message is too old to be accepted anyway.
    Bounded: when full, L{full} says so and the caller refuses. Only a
    proof whose signature verified is recorded there, so strangers cannot
    fill it.

    Proofs that were valid but whose signature failed are kept apart, in a
    record of the same size that forgets its oldest entry when full (it
    never refuses anyone): a replay of one is refused without evaluating
    its proof again, while it is remembered.
    """

    def __init__(self, capacity):
        self.capacity = capacity
        self._expires = {}
        self._heap = []  # (expiry, digest): the next to expire first, whatever order they came in
        self._failed = OrderedDict()  # digest -> expiry, oldest first

    def _purge(self, now):
        heap, expires = self._heap, self._expires
        while heap and heap[0][0] < now:
            when, digest = heapq.heappop(heap)
            if expires.get(digest) == when:
                del expires[digest]

    def seen(self, digest, now):
        """
        @return: True if C{digest} was recorded (accepted, or refused for its
            signature) and has not expired.
        """
        self._purge(now)
        if digest in self._expires:
            return True
        expires = self._failed.get(digest)
        return expires is not None and expires >= now

    def addFailed(self, digest, expires):
        """
        Remember until C{expires} a valid proof whose signature failed,
        forgetting the oldest such proof if there is no room.
        """
        self._failed[digest] = expires
        self._failed.move_to_end(digest)
        while len(self._failed) > self.capacity:
            self._failed.popitem(last=False)

    def failedCount(self):
        """
        @return: how many refused proofs are remembered.
        """
        return len(self._failed)

    def full(self, now):
        """
        @return: True if no more proofs can be recorded now.
        """
        self._purge(now)
        return len(self._expires) >= self.capacity

    def add(self, digest, expires):
        """
        Record C{digest} until C{expires}.
        """
        self._expires[digest] = expires
        heapq.heappush(self._heap, (expires, digest))

    def __len__(self):
        return len(self._expires)


def trustStore(trustedKeys):
    """
    @return: the trusted L{sudp.rsakeys.RSAPublicKey}s by their DER
        SubjectPublicKeyInfo, as a received m names its sender's key.
    """
    return {key.der: key for key in trustedKeys}


def messageDigest(signed):
    """
    @return: SHA3-256(m): what is signed, and what identifies a proof.
    """
    return hashlib.sha3_256(signed.raw).digest()


def checkSigned(signed, now, ours, trusted, config, reuse=None):
    """
    Apply rules 2-8 to a received m|s.

    A server (C{reuse} given) records m once its signature verifies, so
    only trusted keys' proofs take room in the record; a valid proof with a
    bad signature goes to the record's separate, self-evicting memory of
    refused proofs, so that replaying it does not make the server evaluate
    it again (while it is remembered).

    @param ours: the C{(host, port)} pairs this side answers to.
    @param trusted: a mapping of DER SubjectPublicKeyInfo to the trusted
        L{sudp.rsakeys.RSAPublicKey}.
    @param reuse: a L{ReuseRecord} (a server), or None.
    @return: C{(reason, None)} for a refusal, else C{(None, key)} with the
        sender's verified key.
    """
    m = signed.message
    if now - m.timestamp > config.tMax:
        return "stale-timestamp", None
    if m.timestamp - now > config.clockSkew:
        return "future-timestamp", None
    if not isOurs(m.peer, ours):
        return "wrong-address", None
    if reuse is not None:
        digest = messageDigest(signed)
        if reuse.seen(digest, now):
            return "reused-proof", None
        if reuse.full(now):
            return "reuse-record-full", None
    key = trusted.get(m.rsaKey)
    if key is None:
        return "untrusted-key", None
    if not meetsTarget(signed.raw, config):
        return "weak-proof", None
    if not key.verify(signed.signature, signed.raw):
        if reuse is not None:
            reuse.addFailed(digest, m.timestamp + config.tMax)
        return "bad-signature", None
    if reuse is not None:
        reuse.add(digest, m.timestamp + config.tMax)
    return None, key

