# -*- test-case-name: sudp_test.gossip6.test_checks, sudp_test.gossip6.test_vectors, sudp_test.test_work -*-
"""
The scrypt proof of work of the Gossip-6 spec (docs/gossip6.md, "Proof of work"). ::

  proof(m) = scrypt(password = m, salt = "gossip6 proof of work",
                    N, r, p, dkLen = 32)
  valid    : proof(m), read as a 256-bit big-endian number, < k = 2**(256 - difficulty)

A prover varies the 16-byte nonce at the end of m (8 random bytes, then a
64-bit counter) until the proof is valid: 2**difficulty evaluations on
average. A verifier evaluates scrypt once. C{hashlib.scrypt} is OpenSSL's
and releases the GIL, so L{ProofJob.run} runs in a worker thread while
the reactor goes on.
"""

import hashlib

from zope.interface import implementer

from sudp.gossip6.wire import NONCE_SIZE, Message, Signed
from sudp.work import IWork, WorkCancelled

SALT = b"gossip6 proof of work"
_SLACK = 1 << 20  # OpenSSL's scrypt wants a little more than 128 * N * r * p


def proofValue(raw, config):
    """
    @param raw: the bytes of m.
    @return: the 32-byte scrypt output for C{raw}.
    """
    return hashlib.scrypt(bytes(raw), salt=SALT, n=config.scryptN, r=config.scryptR, p=config.scryptP,
                          maxmem=config.scryptMemory + _SLACK, dklen=32)


def meetsTarget(raw, config):
    """
    @return: True if C{raw} (m) carries a valid proof: scrypt(m) < k.
    """
    return int.from_bytes(proofValue(raw, config), "big") < config.target


@implementer(IWork)
class ProofJob:
    """
    Build, prove and sign one handshake message m. L{run} is CPU work
    only, safe to run in a thread; everything else stays with the engine.

    @ivar signed: the L{Signed} m|s once solved, else None.
    @ivar attempts: scrypt evaluations the solution took.
    @ivar context: whatever the engine attaches to find its handshake again.
    """

    def __init__(self, identity, dhe, peer, timestamp, config, random, context=None):
        self.identity = identity
        self.message = Message(dhe, identity.publicKey.der, timestamp, peer)
        self.config = config
        self._start = int.from_bytes(random(8), "big")
        self._salt = random(8)
        self.context = context
        self.signed = None
        self.attempts = 0
        self.cancelled = False

    def cancel(self):
        """
        Stop a run in progress (its thread gives up at the next attempt).
        """
        self.cancelled = True

    def run(self):
        """
        Find a nonce whose m meets the target, then sign m.

        @return: the L{Signed} m|s.
        @raise WorkCancelled: if L{cancel} was called meanwhile.
        """
        prefix = self.message.prefix()
        counter = self._start
        while True:
            if self.cancelled:
                raise WorkCancelled()
            nonce = self._salt + (counter & 0xFFFFFFFFFFFFFFFF).to_bytes(NONCE_SIZE - 8, "big")
            raw = prefix + nonce
            self.attempts += 1
            if meetsTarget(raw, self.config):
                break
            counter += 1
        self.message.nonce = nonce
        self.signed = Signed(self.message, raw, self.identity.sign(raw))
        return self.signed
