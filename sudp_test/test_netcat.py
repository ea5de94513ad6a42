# -*- test-case-name: sudp_test.test_netcat -*-
"""
Tests for L{sudp.netcat}.
"""

import io
import os
import signal
import sys

from twisted.internet import defer, protocol, reactor, task
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.python.failure import Failure
from twisted.trial import unittest

from sudp import cli, netcat
from sudp.keys import Identity, saveIdentity
from sudp.netcat import CLOSE_GRACE, LineSender, Netcat, QuietPeriod
from sudp.tap import Echo

from sudp_test.helpers import BOUND, ended, spawn
from sudp_test.serverprocess import startTwistSudp
from sudp_test.waiting import waiter

waitUntil = waiter(BOUND)

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
        key = identity.publicKey.toText()
        return f"sudp:host=127.0.0.1:port={port.getHost().port}:serverKey={key}"

class QuietPeriodTests(unittest.TestCase):
    """
    L{QuietPeriod}: after C{start}, C{close} once C{wait} seconds pass with
    no message (each message starting the wait again), and C{maxWait}
    seconds after C{start} at the latest.
    """

    def setUp(self):
        self.clock = task.Clock()
        self.closed = []

    def quiet(self, wait=1.0, maxWait=30.0):
        def close():
            self.closed.append(self.clock.seconds())

        return QuietPeriod(self.clock, wait, maxWait, close)

    def test_closesAfterWait(self):
        """
        With no message, C{close} is called C{wait} seconds after C{start},
        not before, and once.
        """
        quiet = self.quiet(wait=1.0)
        self.clock.advance(5)
        quiet.start()
        self.clock.advance(0.999)
        self.assertEqual(self.closed, [])
        self.clock.advance(0.001)
        self.assertEqual(self.closed, [6.0])
        self.clock.advance(60)
        self.assertEqual(self.closed, [6.0])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_messageRestartsWait(self):
        """
        Each message received during the quiet period starts the wait again:
        C{close} comes C{wait} seconds after the last one.
        """
        quiet = self.quiet(wait=1.0)
        quiet.start()
        for _ in range(5):
            self.clock.advance(0.9)
            quiet.messageReceived()
        self.assertEqual(self.closed, [])
        self.clock.advance(0.999)
        self.assertEqual(self.closed, [])
        self.clock.advance(0.001)
        self.assertEqual(len(self.closed), 1)
        self.assertAlmostEqual(self.closed[0], 5 * 0.9 + 1.0)

    def test_messagesBeforeStart(self):
        """
        Messages before the end of input start no timer.
        """
        quiet = self.quiet()
        quiet.messageReceived()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        quiet.start()
        self.clock.advance(1.0)
        self.assertEqual(self.closed, [1.0])

    def test_maxWait(self):
        """
        Messages that keep coming do not hold the session open past
        C{maxWait} seconds after C{start}.
        """
        quiet = self.quiet(wait=1.0, maxWait=3.0)
        quiet.start()
        for _ in range(20):
            self.clock.advance(0.5)
            quiet.messageReceived()
        self.assertEqual(self.closed, [3.0])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_waitEqualsMaxWait(self):
        """
        Both timers due at once: C{close} is called once.
        """
        quiet = self.quiet(wait=2.0, maxWait=2.0)
        quiet.start()
        self.clock.advance(2.0)
        self.assertEqual(self.closed, [2.0])

    def test_waitZero(self):
        """
        C{wait} 0 closes at once, with no timer left.
        """
        self.quiet(wait=0).start()
        self.assertEqual(self.closed, [0.0])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_startTwice(self):
        """
        A second C{start} neither restarts the wait nor closes twice.
        """
        quiet = self.quiet(wait=1.0)
        quiet.start()
        self.clock.advance(0.5)
        quiet.start()
        self.clock.advance(0.5)
        self.assertEqual(self.closed, [1.0])
        quiet.start()
        self.assertEqual(self.closed, [1.0])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_cancel(self):
        """
        After C{cancel}, C{close} is never called, and no timer is left.
        """
        quiet = self.quiet()
        quiet.start()
        quiet.cancel()
        quiet.messageReceived()
        quiet.start()
        self.clock.advance(60)
        self.assertEqual(self.closed, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_invalid(self):
        """
        A negative C{wait}, or a C{wait} longer than C{maxWait}, is refused.
        """
        self.assertRaises(ValueError, self.quiet, wait=-1)
        self.assertRaises(ValueError, self.quiet, wait=2, maxWait=1)

class FakeKey:
    """
    A peer key with a fingerprint.
    """

    def fingerprint(self):
        return "SHA256:fake"

class FakeTransport:
    """
    A session's transport: records messages written; C{loseConnection} ends
    the session (C{connectionLost} with L{ConnectionDone}) unless C{hangs}.
    """

    peerPublicKey = FakeKey()
    suite = "fake-suite"

    def __init__(self, protocol, hangs=False):
        self.protocol = protocol
        self.hangs = hangs
        self.written = []
        self.closes = 0
        self.connected = True

    def write(self, data):
        self.written.append(data)

    def loseConnection(self):
        self.closes += 1
        if not self.hangs:
            self.end(ConnectionDone())

    def end(self, reason):
        """
        The session ends for C{reason}.
        """
        if self.connected:
            self.connected = False
            self.protocol.connectionLost(Failure(reason))

class FakeEndpoint:
    """
    A client endpoint: C{connect} returns C{self.connecting}, which
    L{succeed} fires with a protocol on a L{FakeTransport}.
    """

    def __init__(self, hangs=False):
        self.hangs = hangs
        self.cancelled = False
        self.connecting = defer.Deferred(lambda d: setattr(self, "cancelled", True))
        self.protocol = None

    def connect(self, factory):
        self.factory = factory
        return self.connecting

    def succeed(self):
        """
        The handshake succeeds.

        @return: the session's protocol.
        """
        self.protocol = self.factory.buildProtocol(None)
        self.protocol.makeConnection(FakeTransport(self.protocol, self.hangs))
        self.connecting.callback(self.protocol)
        return self.protocol

class NetcatTests(unittest.TestCase):
    """
    L{Netcat} on a L{task.Clock} with a fake endpoint: the quiet period after
    end of input, the exit statuses, interrupts.
    """

    def setUp(self):
        self.clock = task.Clock()
        self.out = io.BytesIO()
        self.err = io.StringIO()
        self.inputs = []
        self.statuses = []

    def start(self, wait=1.0, maxWait=30.0, hangs=False):
        """
        Start a L{Netcat} on a fake endpoint.

        @return: C{(netcat, endpoint)}.
        """
        endpoint = FakeEndpoint(hangs)
        nc = Netcat(self.clock, endpoint, self.out, self.err, wait, maxWait)
        nc.start(self.inputs.append).addCallback(self.statuses.append)
        return nc, endpoint

    def test_replyAfterEndOfInput(self):
        """
        A reply that arrives after end of input is printed; the session
        closes C{wait} seconds after the last reply, and the status is 0.
        """
        nc, endpoint = self.start(wait=1.0)
        session = endpoint.succeed()
        self.assertIn("connected, server key SHA256:fake, suite fake-suite", self.err.getvalue())
        [sender] = self.inputs
        self.assertIsInstance(sender, LineSender)
        sender.dataReceived(b"one\ntwo\r\n")
        sender.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(session.transport.written, [b"one", b"two"])
        self.clock.advance(0.6)
        session.dataReceived(b"one")
        self.clock.advance(0.6)
        session.dataReceived(b"two")
        self.clock.advance(0.9)
        self.assertEqual((self.statuses, session.transport.closes), ([], 0))
        self.clock.advance(0.1)
        self.assertEqual((self.statuses, session.transport.closes), ([0], 1))
        self.assertEqual(self.out.getvalue(), b"one\ntwo\n")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_waitZero(self):
        """
        With C{wait} 0, end of input closes the session at once.
        """
        nc, endpoint = self.start(wait=0)
        session = endpoint.succeed()
        self.inputs[0].connectionLost(Failure(ConnectionDone()))
        self.assertEqual((self.statuses, session.transport.closes), ([0], 1))

    def test_closeHangs(self):
        """
        A session that does not end when closed after the quiet period is
        given up L{CLOSE_GRACE} seconds later, status 0.
        """
        nc, endpoint = self.start(wait=1.0, hangs=True)
        endpoint.succeed()
        self.inputs[0].connectionLost(Failure(ConnectionDone()))
        self.clock.advance(1.0)
        self.assertEqual(endpoint.protocol.transport.closes, 1)
        self.clock.advance(CLOSE_GRACE - 0.5)
        self.assertEqual(self.statuses, [])
        self.clock.advance(0.5)
        self.assertEqual(self.statuses, [0])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_serverCloses(self):
        """
        The server closing the session (before end of input) ends the run
        with status 0.
        """
        nc, endpoint = self.start()
        session = endpoint.succeed()
        session.transport.end(ConnectionDone())
        self.assertEqual(self.statuses, [0])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_sessionLost(self):
        """
        A session lost (not closed) ends the run with status 1 and says why,
        also during the quiet period.
        """
        nc, endpoint = self.start()
        session = endpoint.succeed()
        self.inputs[0].connectionLost(Failure(ConnectionDone()))
        session.transport.end(ConnectionLost("no answer"))
        self.assertEqual(self.statuses, [1])
        self.assertIn("sudp connect: session ended: ", self.err.getvalue())
        self.assertIn("no answer", self.err.getvalue())
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_connectFails(self):
        """
        A failed connection or handshake ends the run with status 1 and
        says why, and reads no input.
        """
        nc, endpoint = self.start()
        endpoint.connecting.errback(ConnectionLost("handshake refused"))
        self.assertEqual(self.statuses, [1])
        self.assertIn("sudp connect: ", self.err.getvalue())
        self.assertIn("handshake refused", self.err.getvalue())
        self.assertEqual(self.inputs, [])

    def test_sessionWithoutKey(self):
        """
        A session whose transport cannot say who the server is ends the run
        with status 1 and says why, instead of hanging.
        """
        nc, endpoint = self.start()
        endpoint.protocol = endpoint.factory.buildProtocol(None)
        endpoint.protocol.makeConnection(object())
        endpoint.connecting.callback(endpoint.protocol)
        self.assertEqual(self.statuses, [1])
        self.assertIn("peerPublicKey", self.err.getvalue())

    def test_badEndpointString(self):
        """
        An endpoint string that does not parse ends the run with status 1
        and says why.
        """
        nc = Netcat(self.clock, "sudp:host=127.0.0.1", self.out, self.err)
        nc.start().addCallback(self.statuses.append)
        self.assertEqual(self.statuses, [1])
        self.assertTrue(self.err.getvalue().startswith("sudp connect: "), self.err.getvalue())

    def test_interruptConnected(self):
        """
        SIGINT on a connected client closes the session, status 130.
        """
        nc, endpoint = self.start()
        session = endpoint.succeed()
        nc.interrupt(signal.SIGINT)
        self.assertEqual((self.statuses, session.transport.closes), ([130], 1))
        self.assertEqual(self.err.getvalue().count("\n"), 1)  # only "connected"

    def test_interruptQuietPeriod(self):
        """
        SIGINT during the quiet period closes the session, status 130.
        """
        nc, endpoint = self.start()
        session = endpoint.succeed()
        self.inputs[0].connectionLost(Failure(ConnectionDone()))
        self.clock.advance(0.5)
        nc.interrupt(signal.SIGINT)
        self.assertEqual((self.statuses, session.transport.closes), ([130], 1))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_terminate(self):
        """
        SIGTERM closes the session, status 143.
        """
        nc, endpoint = self.start()
        endpoint.succeed()
        nc.interrupt(signal.SIGTERM)
        self.assertEqual(self.statuses, [143])

    def test_interruptHandshake(self):
        """
        SIGINT during the handshake cancels it, status 130, with no error
        message.
        """
        nc, endpoint = self.start()
        nc.interrupt(signal.SIGINT)
        self.assertTrue(endpoint.cancelled)
        self.assertEqual(self.statuses, [130])
        self.assertEqual(self.err.getvalue(), "")
        self.assertEqual(self.inputs, [])

    def test_interruptTwice(self):
        """
        A second SIGINT, while the close of the session hangs, ends the run
        at once.
        """
        nc, endpoint = self.start(hangs=True)
        endpoint.succeed()
        nc.interrupt(signal.SIGINT)
        self.assertEqual(self.statuses, [])
        nc.interrupt(signal.SIGINT)
        self.assertEqual(self.statuses, [130])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        nc.interrupt(signal.SIGINT)
        self.assertEqual(self.statuses, [130])

    def test_interruptHangs(self):
        """
        After one SIGINT, a close that hangs is given up L{CLOSE_GRACE}
        seconds later, status 130.
        """
        nc, endpoint = self.start(hangs=True)
        endpoint.succeed()
        nc.interrupt(signal.SIGINT)
        self.clock.advance(CLOSE_GRACE)
        self.assertEqual(self.statuses, [130])

class NetcatEchoTests(EchoServerMixin, unittest.TestCase):
    """
    L{Netcat} against a real sudp echo server in this process.
    """

    timeout = BOUND

    @defer.inlineCallbacks
    def test_hundredLines(self):
        """
        100 lines in and end of input at once: all 100 echoes are printed
        before the quiet period closes the session, status 0.
        """
        endpoint = yield self.listenEcho()
        out, err = io.BytesIO(), io.StringIO()
        nc = Netcat(reactor, endpoint, out, err, wait=0.5)

        def feed(sender):
            sender.dataReceived(b"".join(b"%d\n" % i for i in range(1, 101)))
            sender.connectionLost(Failure(ConnectionDone()))

        status = yield nc.start(feed).addTimeout(BOUND, reactor)
        self.assertEqual(status, 0, err.getvalue())
        lines = sorted(out.getvalue().split(), key=int)
        self.assertEqual(lines, [b"%d" % i for i in range(1, 101)])

class CommandLineTests(unittest.TestCase):
    """
    C{sudp connect}'s options and help, and C{sudp}'s exit statuses.
    """

    def sudp(self, *argv):
        """
        Run the C{sudp} command in this process.

        @return: C{(status, stdout, stderr)}; a usage error's status is the
            C{SystemExit} code.
        """
        out, err = io.StringIO(), io.StringIO()
        self.patch(sys, "stdout", out)
        self.patch(sys, "stderr", err)
        try:
            status = cli.main(list(argv), out=out, err=err)
        except SystemExit as e:
            status = e.code
        return status, out.getvalue(), err.getvalue()

    def test_waitOptions(self):
        """
        C{--wait} and C{--max-wait} reach L{netcat.runNetcat}; their defaults
        are 1 and 30 seconds.
        """
        calls = []
        self.patch(netcat, "runNetcat", lambda endpoint, **kw: calls.append((endpoint, kw)) or 0)
        self.assertEqual(self.sudp("connect", "EP")[0], 0)
        self.assertEqual(self.sudp("connect", "--wait", "2.5", "--max-wait", "4", "EP")[0], 0)
        self.assertEqual(self.sudp("connect", "--wait", "0", "EP")[0], 0)
        self.assertEqual([kw for _, kw in calls], [
            {"timeout": 10.0, "wait": 1.0, "maxWait": 30.0},
            {"timeout": 10.0, "wait": 2.5, "maxWait": 4.0},
            {"timeout": 10.0, "wait": 0.0, "maxWait": 30.0},
        ])

    def test_badWait(self):
        """
        A negative, infinite or non-numeric C{--wait}, or one longer than
        C{--max-wait}, is a usage error: status 2, saying why.
        """
        for argv, why in [
            (["--wait", "-1"], "seconds must be 0 or more"),
            (["--wait", "inf"], "seconds must be 0 or more"),
            (["--wait", "soon"], "not a number of seconds"),
            (["--max-wait", "-0.5"], "seconds must be 0 or more"),
            (["--wait", "5", "--max-wait", "2"], "--wait 5 is longer than --max-wait 2"),
        ]:
            status, out, err = self.sudp("connect", *argv, "EP")
            self.assertEqual(status, 2, argv)
            self.assertIn(why, err)

    def test_keyboardInterrupt(self):
        """
        A KeyboardInterrupt that reaches the command (a SIGINT before the
        reactor runs) is status 130, without a traceback.
        """
        def interrupted(endpoint, **kw):
            raise KeyboardInterrupt()

        self.patch(netcat, "runNetcat", interrupted)
        self.assertEqual(self.sudp("connect", "EP"), (130, "", ""))

    def test_connectHelp(self):
        """
        C{sudp connect --help} documents the quiet period and the exit
        statuses.
        """
        status, out, err = self.sudp("connect", "--help")
        self.assertEqual(status, 0)
        for text in ["--wait SECONDS", "--max-wait SECONDS", "quiet period",
                     "the wait starts again at each message", "--wait 0 closes\nat once",
                     "exit status:", "130  interrupted (SIGINT, Ctrl-C)",
                     "143  terminated (SIGTERM)"]:
            self.assertIn(text, out)

    def test_help(self):
        """
        C{sudp --help} lists C{--version} and every exit status.
        """
        status, out, err = self.sudp("--help")
        self.assertEqual(status, 0)
        for text in ["--version", "exit status:", "\n  0 ", "\n  1 ", "\n  2 ", "\n  70 ",
                     "\n  130 ", "\n  143 "]:
            self.assertIn(text, out)

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

    @defer.inlineCallbacks
    def test_waitZero(self):
        """
        C{sudp connect --wait 0} closes at the end of input and exits 0.
        """
        endpoint = yield self.listenEcho()
        child = spawn(self, "-m", "sudp", "connect", "--wait", "0", endpoint)
        child.transport.closeStdin()
        code = yield ended(child)
        self.assertEqual(code, 0, child.err)
        self.assertIn(b"connected", child.err)

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
        yield self.signalConnected("INT", 130)

    @defer.inlineCallbacks
    def signalConnected(self, signal, expected):
        """
        Send C{signal} to a connected client, its input still open, and
        check it exits C{expected} quietly.
        """
        endpoint = yield self.listenEcho()
        child = spawn(self, "-m", "sudp", "connect", endpoint)
        child.transport.write(b"ping\n")
        yield waitUntil(lambda: b"ping\n" in child.out, "the echo of ping")
        child.transport.signalProcess(signal)
        code = yield ended(child)
        self.assertEqual(code, expected, child.err)
        self.assertQuiet(child)

    @defer.inlineCallbacks
    def test_sigtermConnected(self):
        """
        SIGTERM to a connected client: exit 143, no traceback.
        """
        yield self.signalConnected("TERM", 143)

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
