# -*- test-case-name: sudp_test.udp.test_overflow -*-
"""
Datagrams the kernel drops because a socket's receive buffer is full.

UDP loses them silently: an application that sends a burst of requests
over C{sudp:} and reads the answers slower than they come sees some never
arrive, and nothing says why. The kernel counts them per socket (Linux:
C{SO_MEMINFO}, the same count as the C{drops} column of C{/proc/net/udp});
an L{OverflowWatch} reads that count now and then and reports every rise,
so that the loss is counted in the engine's drops and logged.
"""

import socket
import struct

SO_MEMINFO = getattr(socket, "SO_MEMINFO", 55)  # Linux 4.6+
_MEMINFO_DROPS = 8  # SK_MEMINFO_DROPS
_MEMINFO = struct.Struct("=9I")


def kernelDrops(sock):
    """
    @return: how many datagrams the kernel dropped at C{sock} so far, or
        None where the system does not say.
    """
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, _MEMINFO.size)
    except (OSError, ValueError):
        return None
    if len(raw) < _MEMINFO.size:
        return None
    return _MEMINFO.unpack(raw)[_MEMINFO_DROPS]


class OverflowWatch:
    """
    Reads a socket's kernel drop count every C{interval} seconds and calls
    C{onOverflow(new, total)} when it rose.
    """

    def __init__(self, reactor, sock, interval, onOverflow):
        """
        @param reactor: an C{IReactorTime}.
        @param interval: seconds between reads; 0: never read.
        """
        self.reactor = reactor
        self.sock = sock
        self.interval = interval
        self.onOverflow = onOverflow
        self._base = None
        self._seen = 0
        self._call = None

    def start(self):
        """
        Begin: what the kernel dropped before now does not count.
        """
        self._base = kernelDrops(self.sock)
        if self._base is not None and self.interval > 0:
            self._call = self.reactor.callLater(self.interval, self._tick)

    def _tick(self):
        self._call = None
        self.check()
        if self._base is not None:
            self._call = self.reactor.callLater(self.interval, self._tick)

    def check(self):
        """
        Read the count now, and report a rise.

        @return: the datagrams dropped since L{start}, or None if unknown.
        """
        if self._base is None:
            return None
        drops = kernelDrops(self.sock)
        if drops is None:
            return None
        total = drops - self._base
        if total > self._seen:
            new, self._seen = total - self._seen, total
            self.onOverflow(new, total)
        return total

    def stop(self):
        """
        Stop reading.
        """
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self._base = None
