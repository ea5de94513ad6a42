# -*- test-case-name: sudp_test.test_offthread -*-
"""
The Twisted side of L{sudp.work}: run an engine's L{sudp.work.IWork} in the
reactor's thread pool and tell the engine when it is done. Both transport
adapters (datagrams and streams) use this one function.
"""

from twisted.internet import threads
from twisted.logger import Logger

from sudp.work import WorkCancelled

_log = Logger()


def runOffThread(reactor, job, done, failed, what="sudp"):
    """
    Run C{job.run()} in C{reactor}'s thread pool; the reactor goes on
    meanwhile.

    @param done: called with C{(job, now)} in the reactor thread once it ran.
    @param failed: called with C{(job, now)} if it raised; a failure other
        than L{WorkCancelled} is logged first, naming C{what}.
    @return: the Deferred of the run (already handled).
    """
    def ran(_):
        done(job, reactor.seconds())

    def broke(f):
        if not f.check(WorkCancelled):
            _log.failure("{what}: work asked for by the handshake failed", f, what=what)
        failed(job, reactor.seconds())

    d = threads.deferToThreadPool(reactor, reactor.getThreadPool(), job.run)
    d.addCallbacks(ran, broke)
    return d
