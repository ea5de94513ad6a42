# -*- test-case-name: sudp_test.stream.test_handshake, sudp_test.test_cli, sudp_test.udp.test_handshakes, sudp_test.test_keys, sudp_test.test_netcat, sudp_test.test_offthread, sudp_test.test_parsers, sudp_test.test_rsakeys, sudp_test.test_work, sudp_test.udp.test_control, sudp_test.udp.test_rekey -*-
"""
Helpers shared by several test modules (moved from test_fuzz_more, test_handshakes, test_netcat, test_rsakeys, test_work).
"""

import os
import sys

from cryptography.hazmat.primitives import serialization as S
from hypothesis import HealthCheck, settings
from twisted.internet import defer, protocol, reactor
from zope.interface import implementer

from sudp.rsaidentity import RSAIdentity
from sudp.work import IWork, WorkCancelled

from sudp_test.paths import ROOT

MODERATE = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)

FEWER = settings(MODERATE, max_examples=200)

RSA = RSAIdentity.generate(2048)

BOUND = 30  # seconds: a bound on a hang, never a speed requirement

def childEnv():
    """
    @return: the environment of a child process that imports sudp from this
        tree.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env

class Child(protocol.ProcessProtocol):
    """
    A child process's output, collected; C{ended} fires with its exit code
    (or, killed by a signal, the negated signal number).
    """

    def __init__(self):
        self.out = b""
        self.err = b""
        self.ended = defer.Deferred()

    def outReceived(self, data):
        self.out += data

    def errReceived(self, data):
        self.err += data

    def processEnded(self, reason):
        code = reason.value.exitCode
        if code is None:
            code = -reason.value.signal
        self.ended.callback(code)

def spawn(testCase, *argv):
    """
    Start C{python *argv} with sudp from this tree, in a temporary directory;
    kill it, and wait for it, at the test's cleanup if it is still running.

    @return: its L{Child}.
    """
    child = Child()
    directory = testCase.mktemp()
    os.makedirs(directory)
    reactor.spawnProcess(child, sys.executable, [sys.executable, *argv], env=childEnv(),
                         path=directory)

    def stop():
        if not child.ended.called:
            child.transport.signalProcess("KILL")
            return child.ended

    testCase.addCleanup(stop)
    return child

def ended(child):
    """
    @return: a L{Deferred} firing with C{child}'s exit code, failing after
        L{BOUND} seconds.
    """
    return child.ended.addTimeout(BOUND, reactor)

# Made once: two 3072-bit identities (the default size) and a 2048-bit one.
A = RSAIdentity.generate()

SMALL = RSAIdentity.generate(2048)

def pkcs8(key, encryption=None):
    """
    @return: C{key} as PKCS#8 PEM, unencrypted or with C{encryption}.
    """
    return key.private_bytes(S.Encoding.PEM, S.PrivateFormat.PKCS8,
                             encryption or S.NoEncryption())

@implementer(IWork)
class _Job:
    def __init__(self, error=None):
        self.error = error
        self.ran = 0

    def run(self):
        self.ran += 1
        if self.error is not None:
            raise self.error

    def cancel(self):
        self.error = WorkCancelled()
