"""
The counters every benchmark server keeps (benchmarks/servers.py,
benchmarks/peerservers.py) and its answers to the "reset" and "stats"
control lines: datagrams read, the time of the first and last read
(C{perf_counter}, one monotonic clock for every process), messages
delivered, bytes, handshakes, and the process's RSS and CPU seconds.
"""

import os
import resource
import time

STATS = {}


def reset():
    """
    Zero the counters.
    """
    STATS.update(datagrams=0, first=None, last=None, messages=0, bytes=0, handshakes=0)


def seen(count=1):
    """
    Count C{count} datagrams read now.
    """
    now = time.perf_counter()
    if STATS["first"] is None:
        STATS["first"] = now
    STATS["last"] = now
    STATS["datagrams"] += count


def rss():
    """
    @return: this process's resident set size in bytes (Linux).
    """
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def stats():
    """
    @return: the counters with the process's RSS and CPU seconds.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return dict(STATS, rss=rss(), cpu=usage.ru_utime + usage.ru_stime)


reset()
