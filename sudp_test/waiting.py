"""
Waiting in integration tests, bounded: C{sleep}, and C{waitUntil} a
condition holds (failing, never hanging, after a generous timeout: a
bound on a hang, never a speed requirement).
"""

from twisted.internet import defer, reactor, task
from twisted.trial import unittest


def sleep(seconds):
    """
    @return: a L{Deferred} that fires after C{seconds}.
    """
    return task.deferLater(reactor, seconds, lambda: None)


@defer.inlineCallbacks
def waitUntil(predicate, what, timeout=15.0, interval=0.01):
    """
    Poll C{predicate()} every C{interval} seconds until it is true.

    @raise unittest.FailTest: naming C{what}, after C{timeout} seconds.
    """
    deadline = reactor.seconds() + timeout
    while not predicate():
        if reactor.seconds() >= deadline:
            raise unittest.FailTest(f"not within {timeout:g} s: {what}")
        yield sleep(interval)


def waiter(timeout, interval=0.01):
    """
    @return: L{waitUntil} with a test module's own bound and interval as
        its defaults.
    """
    def waitUntilBounded(predicate, what, timeout=timeout, interval=interval):
        return waitUntil(predicate, what, timeout, interval)

    return waitUntilBounded
