# -*- test-case-name: sudp_test.udp.test_adapters -*-
"""
A C{twist sudp} server in a child process for integration tests: started on
a free port, its printed client endpoint string read back, stopped (and
waited for) at cleanup.
"""

import os
import sys

from twisted.internet import defer, protocol

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENDPOINT_PREFIX = "sudp:host="


class _Output(protocol.ProcessProtocol):
    def __init__(self):
        self.out = b""
        self.err = b""
        self.ended = defer.Deferred()
        self._waiters = []

    def outReceived(self, data):
        self.out += data
        self._check()

    def errReceived(self, data):
        self.err += data

    def _check(self):
        for needle, d in list(self._waiters):
            line = completeLine(self.out, needle)
            if line is not None:
                self._waiters.remove((needle, d))
                d.callback(line)

    def waitLine(self, needle):
        d = defer.Deferred()
        self._waiters.append((needle, d))
        self._check()
        return d

    def processEnded(self, reason):
        for _, d in self._waiters:
            d.errback(reason)
        self._waiters = []
        self.ended.callback(reason.value.exitCode)


def completeLine(output, needle):
    """
    @return: the text from C{needle} to the end of its line in C{output}
        (bytes) once that line is complete, else None.
    """
    at = output.find(needle)
    if at < 0:
        return None
    end = output.find(b"\n", at)
    if end < 0:
        return None
    return output[at:end].decode().strip()


@defer.inlineCallbacks
def startTwistSudp(reactor, testCase, directory, *extra, timeout=20):
    """
    Start C{twist sudp --port 0 --interface 127.0.0.1} with a key in
    C{directory} (created there) and C{extra} arguments; stop it at the
    test's cleanup.

    @return: a L{Deferred} firing with C{(endpoint string, process
        transport)}: the client endpoint string the server printed.
    """
    proto = _Output()
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    key = os.path.join(directory, "server.key")
    process = reactor.spawnProcess(
        proto, sys.executable,
        [sys.executable, "-m", "twisted", "--log-format=text", "sudp", "--port", "0",
         "--interface", "127.0.0.1", "--key", key, *extra],
        env=env, path=directory,
    )

    def stop():
        if not proto.ended.called:
            process.signalProcess("TERM")
        return proto.ended

    testCase.addCleanup(stop)
    line = yield proto.waitLine(ENDPOINT_PREFIX.encode()).addTimeout(timeout, reactor)
    return line, process
