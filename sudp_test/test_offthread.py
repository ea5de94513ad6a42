# -*- test-case-name: sudp_test.test_offthread -*-
"""
Tests for L{sudp.offthread}.

Tests for L{sudp.work} (the generic off-thread work event) and
L{sudp.offthread} (running it from Twisted).
"""

from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from sudp.offthread import runOffThread

from sudp_test.helpers import _Job

class _Pool:
    """
    A thread pool that runs its work at once, in the caller's thread.
    """

    def callInThreadWithCallback(self, onResult, f, *args, **kwargs):
        try:
            result = f(*args, **kwargs)
        except BaseException:
            onResult(False, Failure())
        else:
            onResult(True, result)

class _Reactor:
    now = 42.0

    def getThreadPool(self):
        return _Pool()

    def callFromThread(self, f, *args, **kwargs):
        f(*args, **kwargs)

    def seconds(self):
        return self.now

class RunOffThreadTests(SynchronousTestCase):
    """
    L{runOffThread} runs the job and calls back the engine's side once.
    """

    def run_(self, job):
        calls = []
        runOffThread(_Reactor(), job, lambda j, now: calls.append(("done", j, now)),
                     lambda j, now: calls.append(("failed", j, now)), "test")
        return calls

    def test_done(self):
        job = _Job()
        self.assertEqual(self.run_(job), [("done", job, 42.0)])
        self.assertEqual(job.ran, 1)

    def test_cancelledIsNotLogged(self):
        """
        A cancelled job fails quietly: the engine asked for it to stop.
        """
        job = _Job()
        job.cancel()
        self.assertEqual(self.run_(job), [("failed", job, 42.0)])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_brokenIsLogged(self):
        """
        Any other failure is logged (once) and the engine hears of it.
        """
        job = _Job(ZeroDivisionError())
        self.assertEqual(self.run_(job), [("failed", job, 42.0)])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
