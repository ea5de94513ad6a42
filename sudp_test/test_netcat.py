"""
Tests for C{sudp connect} (L{sudp.netcat}) run as the command it is: C{python
-m sudp connect} in a child process, against a C{twist sudp} echo server or an
echo server in this process, on 127.0.0.1 and ephemeral ports. Every wait is
bounded and every child process is ended (and waited for) at cleanup.
"""

import os
import sys

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import serverFromString
from twisted.trial import unittest

from sudp.keys import Identity, saveIdentity
from sudp.tap import Echo

from sudp_test.serverprocess import startTwistSudp
from sudp_test.waiting import waiter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOUND = 30  # seconds: a bound on a hang, never a speed requirement

waitUntil = waiter(BOUND)


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
    reactor.spawnProcess(child, sys.executable, [sys.executable, *argv], env=childEnv(), path=directory)

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


class EchoServerMixin:
    """
    A sudp echo server in this process on 127.0.0.1 and an ephemeral port.
    """

    @defer.inlineCallbacks
    def listenEcho(self):
        """
        @return: a L{Deferred} firing with the client endpoint string of a new
            echo server, stopped at cleanup.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        keyFile = os.path.join(directory, "server.key")
        identity = Identity.generate()
        saveIdentity(identity, keyFile)
        port = yield serverFromString(reactor, f"sudp:0:key={keyFile}:interface=127.0.0.1").listen(
            protocol.Factory.forProtocol(Echo)
        )
        self.addCleanup(port.stopListening)
        return f"sudp:host=127.0.0.1:port={port.getHost().port}:serverKey={identity.publicKey.toText()}"


class EndOfInputTests(EchoServerMixin, unittest.TestCase):
    """
    End of input does not cut the replies off: C{sudp connect} waits a quiet
    period for them.
    """

    timeout = 2 * BOUND

    @defer.inlineCallbacks
    def test_seq100(self):
        """
        C{seq 1 100 | sudp connect EP} against C{twist sudp}'s echo server
        prints the 100 lines echoed, and exits 0.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        endpoint, _ = yield startTwistSudp(reactor, self, directory)
        child = spawn(self, "-m", "sudp", "connect", endpoint)
        child.transport.write(b"".join(b"%d\n" % i for i in range(1, 101)))
        child.transport.closeStdin()
        code = yield ended(child)
        lines = child.out.decode().splitlines()
        self.assertEqual(len(lines), 100, child.err)
        self.assertEqual(sorted(lines, key=int), [str(i) for i in range(1, 101)])
        self.assertEqual(code, 0, child.err)


class InterruptTests(EchoServerMixin, unittest.TestCase):
    """
    Ctrl-C (SIGINT) ends C{sudp connect} with exit status 130 and no
    traceback.
    """

    timeout = 2 * BOUND

    def assertQuiet(self, child):
        """
        C{child} wrote no traceback and no unhandled error.
        """
        self.assertNotIn(b"Traceback", child.err)
        self.assertNotIn(b"Unhandled error", child.err)

    @defer.inlineCallbacks
    def test_sigintConnected(self):
        """
        SIGINT to a connected client, its input still open: exit 130, no
        traceback, no unhandled error.
        """
        endpoint = yield self.listenEcho()
        child = spawn(self, "-m", "sudp", "connect", endpoint)
        child.transport.write(b"ping\n")
        yield waitUntil(lambda: b"ping\n" in child.out, "the echo of ping")
        child.transport.signalProcess("INT")
        code = yield ended(child)
        self.assertEqual(code, 130, child.err)
        self.assertQuiet(child)

    @defer.inlineCallbacks
    def test_sigintHandshake(self):
        """
        SIGINT to a client still waiting for a server's handshake answer:
        exit 130, no traceback.
        """
        silent = _Silent()
        port = reactor.listenUDP(0, silent, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        key = Identity.generate().publicKey.toText()
        endpoint = f"sudp:host=127.0.0.1:port={port.getHost().port}:serverKey={key}"
        child = spawn(self, "-m", "sudp", "connect", "--timeout", "60", endpoint)
        yield waitUntil(lambda: silent.datagrams, "the client's first handshake datagram")
        child.transport.signalProcess("INT")
        code = yield ended(child)
        self.assertEqual(code, 130, child.err)
        self.assertQuiet(child)


class _Silent(protocol.DatagramProtocol):
    """
    A UDP port that takes datagrams and never answers.
    """

    def __init__(self):
        self.datagrams = []

    def datagramReceived(self, data, addr):
        self.datagrams.append(data)


class VersionTests(unittest.TestCase):
    """
    C{sudp --version}, C{twist sudp --version} and C{twist vpn041 --version}
    report sudp's version.
    """

    timeout = 2 * BOUND

    @defer.inlineCallbacks
    def test_sudpVersion(self):
        """
        C{sudp --version} prints C{sudp VERSION} and exits 0.
        """
        import sudp

        child = spawn(self, "-m", "sudp", "--version")
        code = yield ended(child)
        self.assertEqual((code, child.out), (0, f"sudp {sudp.__version__}\n".encode()), child.err)

    @defer.inlineCallbacks
    def assertTwistVersion(self, plugin):
        """
        C{twist PLUGIN --version} prints sudp's version and Twisted's, and
        exits 0.
        """
        import twisted

        import sudp

        child = spawn(self, "-m", "twisted", plugin, "--version")
        code = yield ended(child)
        expected = f"sudp {sudp.__version__} (Twisted {twisted.__version__})\n".encode()
        self.assertEqual((code, child.out), (0, expected), child.err)

    def test_twistSudpVersion(self):
        """
        C{twist sudp --version} reports sudp's version, not only Twisted's.
        """
        return self.assertTwistVersion("sudp")

    def test_twistVpn041Version(self):
        """
        C{twist vpn041 --version} reports sudp's version, not only Twisted's.
        """
        return self.assertTwistVersion("vpn041")

