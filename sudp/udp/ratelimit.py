# -*- test-case-name: sudp_test.udp.test_ratelimit -*-
"""
A per-source token bucket for handshakes, as WireGuard keeps one.

It is consulted only after a cookie has proven the source address, so a
flood of spoofed packets creates no entries. Memory is bounded: at most
C{maxSources} addresses are tracked; when full, the least recently seen is
forgotten (a forgotten address starts again with a full bucket, which is
what an idle one would have anyway).
"""

from collections import OrderedDict


class HandshakeRateLimiter:
    """
    @ivar rate: handshakes per second allowed from one address, on average.
    @ivar burst: handshakes one address may start at once.
    """

    def __init__(self, rate, burst, maxSources=65536):
        if rate <= 0 or burst < 1 or maxSources < 1:
            raise ValueError("rate > 0, burst >= 1 and maxSources >= 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self.maxSources = maxSources
        self._buckets = OrderedDict()  # host -> [tokens, last time]

    def allow(self, host, now):
        """
        Take one token for C{host}.

        @return: True if a handshake from C{host} may proceed now.
        """
        bucket = self._buckets.get(host)
        if bucket is None:
            if len(self._buckets) >= self.maxSources:
                self._buckets.popitem(last=False)
            bucket = self._buckets[host] = [self.burst, now]
        else:
            self._buckets.move_to_end(host)
            tokens = bucket[0] + (now - bucket[1]) * self.rate
            bucket[0] = tokens if tokens < self.burst else self.burst
            bucket[1] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return True
        return False

    def __len__(self):
        return len(self._buckets)
