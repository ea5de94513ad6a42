# -*- test-case-name: sudp_test.stream.test_endpoints, sudp_test.stream.test_frames, sudp_test.stream.test_protocol, sudp_test.stream.test_rekey -*-
"""
Helpers shared by several test modules (moved from test_frames, test_sframe_adversarial).
"""

import hashlib

from hypothesis import HealthCheck, settings
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer

from sudp.stream.handshake import AEAD_FRAMES, GCM_FRAMES, SEED003

ALL_SUITES = (SEED003, AEAD_FRAMES, GCM_FRAMES)

TRANSCRIPT = hashlib.sha256(b"test_frames transcript").digest()

SECRET = hashlib.sha256(b"test_frames secret").digest()

def pattern(seed, size):
    """
    @return: C{size} bytes that differ from those of any other seed.
    """
    out, counter = [], 0
    while sum(map(len, out)) < size:
        out.append(hashlib.sha256(b"%s %d" % (seed, counter)).digest())
        counter += 1
    return b"".join(out)[:size]

BOUNDED = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

class MemoryRecorder(Protocol):
    """
    Records what the application sees, in order.
    """

    def __init__(self):
        self.events = []
        self.made = False
        self.lost = None

    def connectionMade(self):
        self.made = True

    def dataReceived(self, data):
        self.events.append(("data", data))

    def connectionLost(self, reason):
        self.lost = reason
        self.events.append(("lost", reason))

    def received(self):
        return b"".join(d for kind, d in self.events if kind == "data")

class MemoryRecorderFactory(Factory):
    protocol = MemoryRecorder

    def __init__(self):
        self.built = []

    def buildProtocol(self, addr):
        p = Factory.buildProtocol(self, addr)
        self.built.append(p)
        return p

@implementer(IPushProducer)
class PushProducer:
    def __init__(self):
        self.calls = []

    def pauseProducing(self):
        self.calls.append("pause")

    def resumeProducing(self):
        self.calls.append("resume")

    def stopProducing(self):
        self.calls.append("stop")
