# -*- test-case-name: sudp_test.test_work -*-
"""
Tests for L{sudp.work}.
"""

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from sudp.gossip6.config import Gossip6Config
from sudp.gossip6.proof import ProofJob
from sudp.rsaidentity import RSAIdentity
from sudp.work import IWork, WorkCancelled, WorkNeeded

from sudp_test.helpers import _Job

class WorkNeededTests(SynchronousTestCase):
    def test_carriesTheJob(self):
        job = _Job()
        event = WorkNeeded(job)
        self.assertIs(event.job, job)
        self.assertIn("WorkNeeded", repr(event))

    def test_proofJobIsWork(self):
        """
        gossip6's proof of work is one kind of L{IWork}: the transports see
        nothing else of it.
        """
        job = ProofJob(RSAIdentity.generate(2048), bytes(32), ("127.0.0.1", 1), 0,
                       Gossip6Config(difficulty=1), lambda n: bytes(n))
        verifyObject(IWork, job)
        job.cancel()
        self.assertRaises(WorkCancelled, job.run)
