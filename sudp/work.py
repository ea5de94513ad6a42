# -*- test-case-name: sudp_test.test_work -*-
"""
Work a handshake needs done off the reactor thread, as a generic engine
event: an engine never runs seconds of CPU in a call (a gossip6 proof of
work is the case today). It reports L{WorkNeeded}; whoever drives it runs
C{job.run()} where blocking is allowed (the Twisted adapters: the
reactor's thread pool, L{sudp.offthread.runOffThread}) and then calls the
engine's C{workDone(job, now)}, or C{workFailed(job, now)} if C{run}
raised (L{WorkCancelled} after C{job.cancel()}).

Nothing here knows which handshake asked: the engines and adapters see
only this contract.
"""

from zope.interface import Interface


class IWork(Interface):
    """
    A piece of CPU work an engine asked for; C{run} is safe to call in a
    thread, everything else stays with the engine.
    """

    def run():
        """
        Do the work.

        @raise WorkCancelled: if L{cancel} was called meanwhile.
        """

    def cancel():
        """
        Ask a C{run} in progress to give up (it raises L{WorkCancelled}).
        """


class WorkCancelled(Exception):
    """
    C{cancel()} was called while the work ran.
    """


class WorkNeeded:
    """
    The engine needs C{job} (an L{IWork}) done before it can go on: run
    C{job.run()} off the reactor thread, then call the engine's
    C{workDone(job, now)}; if it raised, C{workFailed(job, now)}.
    """

    __slots__ = ("job",)

    def __init__(self, job):
        self.job = job

    def __repr__(self):
        return f"<WorkNeeded {self.job!r}>"
