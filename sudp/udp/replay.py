# -*- test-case-name: sudp_test.udp.test_replay -*-
"""
Replay protection: a sliding window over 64-bit sequence numbers (RFC 6479
style) or, with C{ordering=strict}, the UDP whitepaper's strictly-greater rule.

L{ReplayWindow.check} never changes state; the session calls
L{ReplayWindow.commit} only after the packet has authenticated.

L{Window} is what sessions use: the C window of L{sudp.speedups} where it
is built (the same contract, a ring of 64-bit words), else L{ReplayWindow}.
"""

from sudp.speedups import native


class ReplayWindow:
    """
    @ivar size: how many sequence numbers below the highest are remembered.
    @ivar highest: the highest committed sequence number, -1 before any.
    """

    __slots__ = ("size", "strict", "highest", "_bits", "_mask", "_trimAt")

    def __init__(self, size=2048, strict=False):
        if size < 64:
            raise ValueError("the replay window is at least 64 packets")
        self.size = size
        self.strict = strict
        self.highest = -1
        self._bits = 0  # bit i set: sequence number (highest - i) seen
        self._mask = (1 << size) - 1
        self._trimAt = 2 * size

    def check(self, sequence):
        """
        @return: True if C{sequence} has not been seen and is not too old.
        """
        highest = self.highest
        if sequence > highest:
            return True
        if self.strict:
            return False
        offset = highest - sequence
        if offset >= self.size:
            return False
        return not (self._bits >> offset) & 1

    def state(self):
        """
        @return: C{(highest, bits)}, bit i set when C{highest - i} has been
            seen (i < size): the same for every implementation, for tests.
        """
        return self.highest, self._bits & self._mask

    def commit(self, sequence):
        """
        Mark C{sequence} as seen. Call only for an authenticated packet that
        passed L{check}.
        """
        shift = sequence - self.highest
        if shift > 0:
            if shift < self.size:
                bits = (self._bits << shift) | 1
                # bits past the window are never read; trim them now and then,
                # not on every packet
                if bits.bit_length() > self._trimAt:
                    bits &= self._mask
                self._bits = bits
            else:
                self._bits = 1
            self.highest = sequence
        else:
            self._bits |= 1 << -shift


Window = native.Window if native is not None else ReplayWindow
