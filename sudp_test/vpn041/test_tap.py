# -*- test-case-name: sudp_test.vpn041.test_tap -*-
"""
Tests for L{sudp.vpn041.tap}.
"""

import os

from twisted.internet import defer
from twisted.logger import LogLevel
from twisted.trial import unittest

from sudp.vpn041.settings import AppSettings, Limits

from sudp_test.vpn041.helpers import BAD_SETTINGS, GATEWAY_NS, LogCapture, SubprocessMixin

class GatewayStartTests(SubprocessMixin, unittest.TestCase):
    """
    What the gateway says and refuses when it starts.
    """

    @defer.inlineCallbacks
    def test_noIntegrityWarning(self):
        """
        The gateway of the seed's data plane logs a warning that UDP has no
        integrity protection when it starts listening, whatever
        useEncryption says; the authenticated variant does not.
        """
        for useEncryption in (True, False):
            logs = LogCapture(self)
            yield self.startGateway(AppSettings(useEncryption, "Tls13"))
            warnings = logs.select(GATEWAY_NS, LogLevel.warn)
            self.assertEqual(len(warnings), 1, warnings)
            self.assertIn("NO INTEGRITY", warnings[0])
        logs = LogCapture(self)
        yield self.startGateway(AppSettings(True, "Tls13"), authenticated=True)
        self.assertEqual(logs.select(GATEWAY_NS, LogLevel.warn), [])

    def test_twistLimitOptions(self):
        """
        twist vpn041's limit options reach the gateway (defaults otherwise);
        a bad value is a usage error naming it.
        """
        from twisted.python.usage import UsageError

        from sudp.vpn041.tap import Options, makeService

        appsettings = self.certs.appSettings("twist-limits.json", {"appSettings": {"useEncryption": True,
                                                                                   "encryptionType": "Tls13"}})
        base = ["--appsettings", appsettings, "--cert", self.certs.gateway[0], "--key", self.certs.gateway[1],
                "--ca", self.certs.ca]
        options = Options()
        options.parseOptions(base)
        gateway = makeService(options).gateway
        self.assertEqual((gateway.limits, gateway.natPorts), (Limits(), False))
        options = Options()
        options.parseOptions(base + ["--handshake-timeout", "3", "--max-connections", "100",
                                     "--max-connections-per-source", "4", "--max-nonces", "64",
                                     "--nonce-lifetime", "5", "--nat"])
        gateway = makeService(options).gateway
        self.assertEqual(gateway.limits, Limits(maxNonces=64, nonceLifetime=5.0, handshakeTimeout=3.0,
                                                maxConnections=100, maxConnectionsPerSource=4))
        self.assertTrue(gateway.natPorts)
        error = self.assertRaises(UsageError, Options().parseOptions, base + ["--max-nonces", "0"])
        self.assertIn("maxNonces", str(error))

    @defer.inlineCallbacks
    def test_twistBadAppSettings(self):
        """
        twist vpn041 with a bad appsettings file (an unknown key, a wrong
        type, a missing file, a non-flat document) exits non-zero with a
        message naming the file.
        """
        cases = [self.certs.appSettings("twist-unknown.json", BAD_SETTINGS["unknown-key"][0]),
                 self.certs.appSettings("twist-yes.json", BAD_SETTINGS["useEncryption-yes"][0]),
                 os.path.join(self.certs.dir, "twist-missing.json"),
                 self.certs.appSettings("twist-object.json", BAD_SETTINGS["encryptionType-object"][0])]
        processes = [self.spawn(*self.twistArgs(path)) for path in cases]
        statuses = yield defer.gatherResults([pp.ended for pp in processes])
        for path, pp, status in zip(cases, processes, statuses):
            output = (pp.out + pp.err).decode()
            self.assertNotEqual(status, 0, output)
            self.assertIn(path, output)
            self.assertNotIn("Traceback", output)

class EndToEndTests(SubprocessMixin, unittest.TestCase):
    """
    twist vpn041 and sudp vpn041, each in a subprocess.
    """

    @defer.inlineCallbacks
    def endToEnd(self, authenticated):
        appsettings = self.certs.appSettings(f"e2e-{authenticated}.json", {
            "appSettings": {"useEncryption": True, "encryptionType": "Tls13"}})
        extra = ["--authenticated"] if authenticated else []
        gateway = self.spawn(*self.twistArgs(appsettings, *extra))
        yield gateway.waitOut(b"largest payload", "twist vpn041 listening")
        text = (gateway.out + gateway.err).decode()
        line = [ln for ln in text.splitlines() if "on TCP port" in ln][0]
        authPort = int(line.split("on TCP port ")[1].split(";")[0])
        self.assertEqual("NO INTEGRITY" in text, not authenticated, text)

        client = self.spawn(*self.clientArgs(appsettings, authPort, *extra))
        client.transport.write(b"hello gateway\nsecond push\n")
        yield client.waitOut(b"hello gateway\nsecond push\n", "the two echoes")
        client.transport.closeStdin()  # end of input ends the session
        status = yield client.ended
        self.assertEqual(status, 0, client.err)
        self.assertEqual(client.out, b"hello gateway\nsecond push\n")
        yield gateway.waitOut(b"for O=vpn041 test,CN=alice", "the session in the gateway's log")
        gateway.transport.signalProcess("TERM")
        yield gateway.ended

    def test_echo(self):
        """
        twist vpn041 (default echo app, seed data plane) logs the
        no-integrity warning; sudp vpn041 authenticates, sends two stdin
        lines as pushes and prints the two echoed pushes, then exits 0 at
        end of input.
        """
        return self.endToEnd(False)

    def test_echoAuthenticated(self):
        """
        The same with --authenticated on both sides, and no warning.
        """
        return self.endToEnd(True)
