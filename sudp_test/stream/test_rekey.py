# -*- test-case-name: sudp_test.stream.test_rekey -*-
"""
Tests for L{sudp.stream.rekey}.
"""

import math

from twisted.trial import unittest

from sudp.stream import rekey as R
from sudp.stream.handshake import SEED003, STREAM_SUITES, StreamConfig

from sudp_test.stream.helpers import SECRET, TRANSCRIPT

class LimitValueTests(unittest.TestCase):
    """
    The limits of docs/sframe.md section 10.5 and where each comes from.
    """

    def test_values(self):
        """
        aes-256-ctr-sha256: 2^32 - 1 frames (no SEQ twice under a key), 2^35
        AES blocks; chacha20-poly1305: 2^64 frames (the nonce's count), no
        block limit; aes-256-gcm: 2^64 frames, 2^35 blocks.
        """
        byName = {name: s.cipher(bytes(80), True).limits for name, s in STREAM_SUITES.items()}
        self.assertEqual(byName["aes-256-ctr-sha256"], R.CTR_LIMITS)
        self.assertEqual(byName["chacha20-poly1305"], R.CHACHA20_LIMITS)
        self.assertEqual(byName["aes-256-gcm"], R.GCM_LIMITS)
        self.assertEqual((R.CTR_LIMITS.frames, R.CTR_LIMITS.blocks), (2**32 - 1, 2**35))
        self.assertEqual((R.CHACHA20_LIMITS.frames, R.CHACHA20_LIMITS.blocks), (2**64, None))
        self.assertEqual((R.GCM_LIMITS.frames, R.GCM_LIMITS.blocks), (2**64, 2**35))

    def test_blockCost(self):
        """
        A suite-1 frame costs the keystream blocks its 24 + LENGTH bytes can
        touch; a suite-3 frame its payload's blocks and the tag's.
        """
        for length in (0, 1, 8, 9, 100, 65536, 2**24):
            self.assertEqual(R.CTR_LIMITS.cost(length), math.ceil((24 + length) / 16) + 1)
            self.assertEqual(R.GCM_LIMITS.cost(length), math.ceil(length / 16) + 1)

    def test_margin(self):
        """
        The AES block limits keep the distinguishing advantage sigma^2 /
        2^129 (sigma blocks under one key) at 2^-59, inside the 2^-57 of
        RFC 8446 and RFC 9001; the default rekeyAfterFrames is far inside
        every frame limit, and at the default frame size inside the block
        limits.
        """
        for limits in (R.CTR_LIMITS, R.GCM_LIMITS):
            self.assertLessEqual(limits.blocks**2 / 2**129, 2**-57)
        config = StreamConfig()
        frames = config.rekeyAfterFrames
        for limits in (R.CTR_LIMITS, R.CHACHA20_LIMITS, R.GCM_LIMITS):
            self.assertLess(frames * 1024, limits.frames)
            if limits.blocks is not None:
                self.assertLess(frames * limits.cost(config.maxFramePayload) * 4, limits.blocks)

class KeyChainTests(unittest.TestCase):
    """
    L{R.KeyChain}: the derivation and what it keeps.
    """

    def test_labels(self):
        """
        Each label names sframe, the rekey, the direction and the purpose,
        and no two are alike (nor like the other sframe labels).
        """
        labels = [R.LABELS[d][p] for d in ("c2s", "s2c") for p in ("secret", "keys", "next")]
        self.assertEqual(labels[0], b"sframe/1 rekey c2s secret")
        self.assertEqual(labels[4], b"sframe/1 rekey s2c keys")
        self.assertEqual(len(set(labels)), 6)
        for label in labels:
            self.assertTrue(label.startswith(b"sframe/1 rekey "))

    def test_wipes(self):
        """
        Moving to the next epoch overwrites the secret it came from; the
        chain's repr shows no secret.
        """
        chain = R.keyChains(SEED003, TRANSCRIPT, SECRET, True)[0]
        held = chain._secret
        self.assertNotEqual(bytes(held), bytes(32))
        chain.next()
        self.assertEqual(bytes(held), bytes(32))
        self.assertNotIn(bytes(chain._secret).hex(), repr(chain))
        self.assertIn("c2s", repr(chain))
