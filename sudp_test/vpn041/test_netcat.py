# -*- test-case-name: sudp_test.vpn041.test_netcat -*-
"""
Tests for L{sudp.vpn041.netcat}.
"""

from twisted.internet import defer, protocol
from twisted.trial import unittest

from sudp.vpn041.settings import AppSettings

from sudp_test.vpn041.helpers import (
    BAD_SETTINGS,
    RecorderFactory,
    SIXTEEN,
    SubprocessMixin,
    flipPadding,
    waitUntil,
)

class TamperBack(protocol.Protocol):
    """
    A gateway application that answers every push with a datagram of its
    session whose padding is broken, sent from the gateway's own socket.
    """

    def dataReceived(self, data):
        session = self.transport
        bad = flipPadding(session.seal(SIXTEEN))
        session.gateway.sendDatagram(bad, session.pushAddress)

class CommandLineFatalTests(SubprocessMixin, unittest.TestCase):
    """
    The command-line client's failure rule.
    """

    @defer.inlineCallbacks
    def test_sudpVpn041ExitsOnTamperedDatagram(self):
        """
        sudp vpn041 (a subprocess) sends a push; the gateway answers with a
        datagram whose padding is broken: the client prints one critical
        line and exits at once with status 70, and the gateway sees the
        session end.
        """
        gatewayFactory = RecorderFactory(TamperBack)
        gateway = yield self.startGateway(AppSettings(True, "Tls13"), gatewayFactory)
        appsettings = self.certs.appSettings("cli-fatal.json", {"appSettings": {"useEncryption": True,
                                                                                "encryptionType": "Tls13"}})
        pp = self.spawn(*self.clientArgs(appsettings, gateway.authPort.getHost().port))
        pp.transport.write(b"hello\n")  # stdin stays open: only the fatal failure ends the client
        status = yield pp.ended
        self.assertEqual(status, 70, pp.err)
        text = pp.err.decode()
        critical = [line for line in text.splitlines() if "critical" in line]
        self.assertEqual(len(critical), 1, text)
        self.assertIn("does not decrypt", critical[0])
        self.assertEqual(pp.out, b"")
        yield waitUntil(lambda: not gateway.sessions, "the gateway ends the session")
        self.assertEqual(gatewayFactory.protocols[0].transport.ended, "auth-connection-closed")

class CommandLineSessionEndTests(SubprocessMixin, unittest.TestCase):
    """
    The command-line client when the gateway ends its session.
    """

    @defer.inlineCallbacks
    def test_gatewayEndsSession(self):
        """
        sudp vpn041 (a subprocess, its input still open) whose session the
        gateway ends prints why (the gateway's reason, sent inside TLS
        before it closes) and exits 1 (it used to exit 0 in silence).
        """
        gatewayFactory = RecorderFactory()
        gateway = yield self.startGateway(AppSettings(True, "Tls13"), gatewayFactory)
        appsettings = self.certs.appSettings("cli-end.json", {"appSettings": {"useEncryption": True,
                                                                              "encryptionType": "Tls13"}})
        pp = self.spawn(*self.clientArgs(appsettings, gateway.authPort.getHost().port))
        pp.transport.write(b"hello\n")
        yield waitUntil(lambda: gatewayFactory.protocols and gatewayFactory.protocols[0].messages, "the push")
        gatewayFactory.protocols[0].transport.loseConnection()
        status = yield pp.ended
        self.assertEqual(status, 1, pp.err)
        self.assertIn(b"the gateway ended the session (closed)", pp.err)
        self.assertNotIn(b"Traceback", pp.err)

class CommandLineInterruptTests(SubprocessMixin, unittest.TestCase):
    """
    The command-line client interrupted: the exit statuses of C{sudp --help}.
    """

    @defer.inlineCallbacks
    def assertInterrupted(self, signal, status):
        """
        sudp vpn041 (a subprocess) with a session, its input still open, sent
        C{signal}, exits with C{status}, without a traceback, and the
        gateway sees the session end.
        """
        from sudp.tap import Echo

        gateway = yield self.startGateway(AppSettings(True, "Tls13"), protocol.Factory.forProtocol(Echo))
        appsettings = self.certs.appSettings("cli-interrupt.json", {"appSettings": {"useEncryption": True,
                                                                                    "encryptionType": "Tls13"}})
        pp = self.spawn(*self.clientArgs(appsettings, gateway.authPort.getHost().port))
        pp.transport.write(b"hello\n")
        yield waitUntil(lambda: b"hello\n" in pp.out, "the echo of hello")
        pp.transport.signalProcess(signal)
        code = yield pp.ended
        self.assertEqual(code, status, pp.err)
        self.assertNotIn(b"Traceback", pp.err)
        self.assertNotIn(b"Unhandled error", pp.err)
        yield waitUntil(lambda: not gateway.sessions, "the gateway ends the session")

    def test_sigint(self):
        """
        Ctrl-C (SIGINT): status 130.
        """
        return self.assertInterrupted("INT", 130)

    def test_sigterm(self):
        """
        SIGTERM: status 143.
        """
        return self.assertInterrupted("TERM", 143)

class CommandLineAuthTests(SubprocessMixin, unittest.TestCase):
    """
    The command-line client when it cannot start a session.
    """

    @defer.inlineCallbacks
    def test_sudpVpn041AuthFails(self):
        """
        sudp vpn041 with useEncryption true against a gateway with false
        exits 1 with the gateway's reason; with a bad appsettings file
        (an unknown key; an encryptionType that is a list) it exits 1 with
        a message naming the file, without a traceback.
        """
        gateway = yield self.startGateway(AppSettings(False, "Tls13"))
        port = gateway.authPort.getHost().port
        good = self.certs.appSettings("cli-true.json", {"appSettings": {"useEncryption": True,
                                                                       "encryptionType": "Tls13"}})
        unknown = self.certs.appSettings("cli-unknown.json", BAD_SETTINGS["unknown-key"][0])
        listed = self.certs.appSettings("cli-list.json", BAD_SETTINGS["encryptionType-list"][0])
        processes = [self.spawn(*self.clientArgs(path, port)) for path in (good, unknown, listed)]
        statuses = yield defer.gatherResults([pp.ended for pp in processes])
        errors = [pp.err.decode() for pp in processes]
        self.assertEqual(statuses[0], 1, errors[0])
        self.assertIn("useEncryption=False", errors[0])
        self.assertEqual(gateway.sessions, {})
        for path, status, error in zip((unknown, listed), statuses[1:], errors[1:]):
            self.assertNotIn("Traceback", error)
            self.assertEqual(status, 1, error)
            self.assertIn(path, error)
