# -*- test-case-name: sudp_test.test_eventlog -*-
"""
Connection events for operators: each refused client and each session
opened and ended, as structured C{twisted.logger} events, rate-limited so
that a flood cannot fill the log.

Every event carries C{sudp_event} (C{"refused"}, C{"opened"} or
C{"ended"}), C{address} (C{"host:port"}), C{fingerprint} (the peer's key
fingerprint, or C{None}), C{suite} (or C{None}), C{reason} (or C{None})
and C{transport} (C{"udp"} or C{"sframe"}). When the limit has held events
back, the next event that passes also carries C{suppressed}: how many were
held back since the last one logged.
"""

from twisted.logger import Logger, LogLevel

from sudp.addresses import displayAddress

REFUSED = "refused"
OPENED = "opened"
ENDED = "ended"

_FORMATS = {
    REFUSED: "{transport}: refused {address}: {reason}",
    OPENED: "{transport}: session with {address} opened (key {fingerprint}, suite {suite})",
    ENDED: "{transport}: session with {address} ended: {reason}",
}
_LEVELS = {REFUSED: LogLevel.info, OPENED: LogLevel.info, ENDED: LogLevel.info}


class ConnectionLog:
    """
    A token bucket in front of a C{Logger}: at most C{burst} events at once
    and C{rate} a second on average; the rest are counted, not logged.

    @ivar suppressed: events held back since the last one logged.
    @ivar totalSuppressed: events held back over the log's life.
    """

    def __init__(self, clock, rate=20.0, burst=50, log=None, transport="udp"):
        """
        @param clock: an C{twisted.internet.interfaces.IReactorTime}.
        @param transport: the value of each event's C{transport} field.
        """
        if not rate > 0 or burst < 1:
            raise ValueError("rate > 0 and burst >= 1")
        self.clock = clock
        self.rate = float(rate)
        self.burst = float(burst)
        self.log = log if log is not None else Logger(namespace="sudp.connections")
        self.transport = transport
        self._tokens = self.burst
        self._last = None
        self.suppressed = 0
        self.totalSuppressed = 0

    def _allow(self):
        now = self.clock.seconds()
        if self._last is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def emit(self, kind, addr, fingerprint=None, suite=None, reason=None):
        """
        Log one connection event of C{kind} (L{REFUSED}, L{OPENED} or
        L{ENDED}), unless the rate limit holds it back.

        @return: True if it was logged.
        """
        if not self._allow():
            self.suppressed += 1
            self.totalSuppressed += 1
            return False
        fields = dict(
            sudp_event=kind,
            address=displayAddress(addr) if addr else "?",
            fingerprint=fingerprint,
            suite=suite,
            reason=reason,
            transport=self.transport,
        )
        format = _FORMATS[kind]
        if self.suppressed:
            fields["suppressed"] = self.suppressed
            format += " ({suppressed} more events not logged)"
            self.suppressed = 0
        self.log.emit(_LEVELS[kind], format, **fields)
        return True

    def refused(self, addr, reason, fingerprint=None, suite=None):
        """
        Log a client refused before it had a session.
        """
        return self.emit(REFUSED, addr, fingerprint, suite, reason)

    def opened(self, addr, fingerprint=None, suite=None):
        """
        Log a session that opened.
        """
        return self.emit(OPENED, addr, fingerprint, suite)

    def ended(self, addr, reason, fingerprint=None, suite=None):
        """
        Log a session that ended, and why.
        """
        return self.emit(ENDED, addr, fingerprint, suite, reason)
