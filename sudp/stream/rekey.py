# -*- test-case-name: sudp_test.stream.test_rekey -*-
"""
sframe key rotation (docs/sframe.md section 7.4): each direction's chain of
keys after the first, and each stream suite's usage limits (section 10.5).

Each direction rotates on its own, in band: the writer sends a REKEY frame
as the last frame under its old keys and switches; the reader switches on
that verified frame. Epoch 0 uses the frame keys of section 5; epoch n >= 1
the keys of a chain of secrets, one per direction::

  prk          = HKDF-Extract(th, dh)                            (section 5)
  secret_1     = HKDF-Expand(prk,      "sframe/1 rekey c2s secret", 32)
  keys_n       = HKDF-Expand(secret_n, "sframe/1 rekey c2s keys",   80)
  secret_n+1   = HKDF-Expand(secret_n, "sframe/1 rekey c2s next",   32)

(C{s2c} in place of C{c2s} for the other direction); C{keys_n} is split as
a section-5 half. A L{KeyChain} holds only the next secret: once it has
moved on, the keys of past epochs cannot be derived from it.
"""

import hashlib
import hmac
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

SECRET_SIZE = 32
HALF_SIZE = 80  # a section-5 half: key | CTR IV | MAC key, whatever the suite uses of it
EPOCH = struct.Struct(">Q")  # the REKEY payload: the epoch of the keys that follow

LABELS = {
    direction: {purpose: b"sframe/1 rekey %s %s" % (direction.encode(), purpose.encode())
                for purpose in ("secret", "keys", "next")}
    for direction in ("c2s", "s2c")
}

DEFAULT_REKEY_AFTER_FRAMES = 2**20
DEFAULT_REKEY_AFTER_TIME = 300.0


class UsageLimits:
    """
    The most one key may protect in one direction.

    @ivar frames: frames under one key, its REKEY frame included.
    @ivar blocks: 16-byte cipher blocks under one key (each frame counts
        L{cost}), or None for no limit.
    @ivar overhead: bytes of a frame that pass through the block cipher
        besides its payload (suite 1: header and MAC, 24; suite 3: none).
    """

    def __init__(self, frames, blocks=None, overhead=0):
        self.frames = frames
        self.blocks = blocks
        self.overhead = overhead

    def cost(self, length):
        """
        @return: the blocks a frame of C{length} payload bytes counts: those
            its enciphered bytes can touch, C{ceil((overhead + length) / 16)},
            and one more (suite 1: the block it may share with its
            neighbour; suite 3: the tag's).
        """
        return ((length + self.overhead + 15) >> 4) + 1

    def __eq__(self, other):
        if not isinstance(other, UsageLimits):
            return NotImplemented
        return self._key() == other._key()

    def _key(self):
        return (self.frames, self.blocks, self.overhead)

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return f"UsageLimits(frames={self.frames}, blocks={self.blocks}, overhead={self.overhead})"


# AES-256 in CTR mode (suites 1 and 3): sigma blocks under one key are told
# from random with advantage about sigma^2 / 2^129; 2^35 blocks keep it at
# 2^-59, inside the 2^-57 of RFC 8446 section 5.5 and RFC 9001 section 6.6
# (whose GCM limit, 2^23 packets of 2^16 bytes, is 2^35 blocks too). Suite 1
# also never shows a SEQ twice under one key (2^32 - 1 frames).
CTR_LIMITS = UsageLimits(frames=2**32 - 1, blocks=2**35, overhead=24)
GCM_LIMITS = UsageLimits(frames=2**64, blocks=2**35, overhead=0)
# ChaCha20-Poly1305: no confidentiality limit below 2^62 messages (RFC 9001
# section 6.6); the nonce's u64 frame count bounds it.
CHACHA20_LIMITS = UsageLimits(frames=2**64)


def _expand(key, label, length):
    return HKDFExpand(algorithm=hashes.SHA256(), length=length, info=label).derive(key)


def _wipe(secret):
    """
    Overwrite a secret held in a bytearray (Python cannot promise more: the
    copies inside C{cryptography}'s objects go with the objects).
    """
    secret[:] = bytes(len(secret))


class KeyChain:
    """
    One direction's keys after the first, for one side (writing or reading).

    @ivar epoch: the epoch of the last keys handed out (0: none yet, the
        stream runs on the section-5 keys).
    """

    def __init__(self, suite, secret, direction, encrypt):
        """
        @param secret: C{secret_1} of this direction (32 bytes).
        @param direction: C{"c2s"} or C{"s2c"}.
        """
        self.suite = suite
        self.direction = direction
        self.encrypt = encrypt
        self.epoch = 0
        self._labels = LABELS[direction]
        self._secret = bytearray(secret)

    def next(self):
        """
        Move to the next epoch: derive its keys and the secret after it,
        and wipe the secret they came from.

        @return: the new epoch's L{sudp.stream.frames.IStreamCipher}.
        """
        half = bytearray(_expand(self._secret, self._labels["keys"], HALF_SIZE))
        following = bytearray(_expand(self._secret, self._labels["next"], SECRET_SIZE))
        _wipe(self._secret)
        self._secret = following
        self.epoch += 1
        try:
            return self.suite.cipher(half, self.encrypt)
        finally:
            _wipe(half)

    def __repr__(self):
        return f"<KeyChain {self.suite.name} {self.direction} epoch {self.epoch}>"


def keyChains(suite, transcript, secret, isClient):
    """
    @param transcript: C{th}; C{secret}: the X25519 result C{dh} (section 5).
    @return: C{(writeKeys, readKeys)}: this side's L{KeyChain}s, for the
        direction it writes and the one it reads.
    """
    prk = bytearray(hmac.new(transcript, bytes(secret), hashlib.sha256).digest())
    try:
        c2s, s2c = (_expand(prk, LABELS[d]["secret"], SECRET_SIZE) for d in ("c2s", "s2c"))
    finally:
        _wipe(prk)
    if isClient:
        return KeyChain(suite, c2s, "c2s", True), KeyChain(suite, s2c, "s2c", False)
    return KeyChain(suite, s2c, "s2c", True), KeyChain(suite, c2s, "c2s", False)
