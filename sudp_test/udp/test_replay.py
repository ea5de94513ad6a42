# -*- test-case-name: sudp_test.udp.test_replay -*-
"""
Tests for L{sudp.udp.replay}.
"""

from hypothesis import given, HealthCheck, settings, strategies as st
from twisted.trial import unittest

from sudp.speedups import native
from sudp.udp.replay import ReplayWindow

from sudp_test.udp.helpers import FAST

class ReplayWindowModel:
    """
    The reference: a set of every committed number and the highest.
    """

    def __init__(self, size, strict):
        self.size = size
        self.strict = strict
        self.seen = set()
        self.highest = -1

    def check(self, seq):
        if seq > self.highest:
            return True
        if self.strict:
            return False
        return self.highest - seq < self.size and seq not in self.seen

    def commit(self, seq):
        self.seen.add(seq)
        self.highest = max(self.highest, seq)

class ReplayWindowTests(unittest.TestCase):
    """
    L{ReplayWindow} (pure Python) against L{ReplayWindowModel}; the C
    window runs the same tests below.
    """

    window = ReplayWindow

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.differing_executors])
    @given(
        st.sampled_from([64, 65, 128, 1024]),
        st.booleans(),
        st.lists(
            st.tuples(
                st.one_of(st.integers(-1100, 1100), st.integers(-(2**64), 2**64)),
                st.booleans(),
            ),
            max_size=150,
        ),
    )
    def test_agreesWithModel(self, size, strict, ops):
        """
        Random check/commit sequences (sequence numbers near the highest,
        and far from it): check agrees with the model and changes nothing;
        commit after a passing check keeps the two in step.
        """
        window = self.window(size, strict)
        model = ReplayWindowModel(size, strict)
        for delta, commit in ops:
            seq = min(max(0, model.highest + delta), 2**64 - 1) if abs(delta) <= 1100 else abs(delta) % 2**64
            state = window.state()
            ok = window.check(seq)
            self.assertEqual(ok, model.check(seq), (seq, model.highest))
            self.assertEqual(window.state(), state)
            self.assertEqual(window.check(seq), ok)
            if ok and commit:
                window.commit(seq)
                model.commit(seq)
                self.assertFalse(window.check(seq))
            self.assertEqual(window.highest, model.highest)
            # the state is exactly the model's, seen numbers in the window
            bits = sum(1 << (model.highest - s) for s in model.seen if 0 <= model.highest - s < size)
            self.assertEqual(window.state(), (model.highest, bits))
            if self.window is ReplayWindow:
                # memory stays bounded: the bitmap is trimmed to the window
                # once it reaches twice the window's size
                self.assertLessEqual(window._bits.bit_length(), 2 * size)

    @settings(FAST, suppress_health_check=[HealthCheck.differing_executors])
    @given(st.sampled_from([64, 1024, 2048]), st.permutations(list(range(300))))
    def test_everyNumberOnce(self, size, order):
        """
        Committing every number that passes, in any order: each number is
        accepted at most once, and all are accepted when the window covers
        the whole range.
        """
        window = self.window(size)
        accepted = []
        for seq in order + order:
            if window.check(seq):
                window.commit(seq)
                accepted.append(seq)
        self.assertEqual(len(accepted), len(set(accepted)))
        if size > 300:
            self.assertEqual(sorted(accepted), list(range(300)))

class NativeReplayWindowTests(ReplayWindowTests):
    """
    The C window (L{sudp.speedups}) against the same model and tests.
    """

    window = native.Window if native is not None else None
    if native is None:
        skip = "the C speedups are not built here"

    @FAST
    @given(st.sampled_from([64, 100, 1024]), st.integers(0, 2**64 - 1), st.lists(st.integers(0, 5000), max_size=60))
    def test_farJumps(self, size, base, steps):
        """
        Jumps of any length from any base, up to the top of the 64-bit
        range: the ring forgets what left the window and nothing else.
        """
        window = self.window(size)
        model = ReplayWindowModel(size, False)
        for step in steps:
            seq = min(base + step, 2**64 - 1)
            ok = window.check(seq)
            self.assertEqual(ok, model.check(seq))
            if ok:
                window.commit(seq)
                model.commit(seq)
            bits = sum(1 << (model.highest - s) for s in model.seen if 0 <= model.highest - s < size)
            self.assertEqual(window.state(), (model.highest, bits))

    def test_limits(self):
        """
        Sizes out of range and sequence numbers that are not 64-bit
        unsigned are typed errors, never a wrong answer.
        """
        self.assertRaises(ValueError, self.window, 63)
        self.assertRaises(ValueError, self.window, 2**25)
        window = self.window(64)
        self.assertRaises(OverflowError, window.check, -1)
        self.assertRaises(OverflowError, window.check, 2**64)
        self.assertRaises(TypeError, window.commit, "1")
        self.assertEqual(window.highest, -1)
