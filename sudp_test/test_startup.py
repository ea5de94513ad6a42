# -*- test-case-name: sudp_test.test_startup -*-
"""
Tests for L{sudp.startup}: C{twist sudp} and C{twist vpn041} that cannot
start say why in one line C{Error: ...} on standard error, with no
traceback, and exit non-zero within 2 seconds (real C{twist} processes on
127.0.0.1, each bounded by a timeout).
"""

import importlib.util
import io
import os
import socket
import subprocess
import sys
import time

from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial import unittest

from sudp.keys import Identity, saveIdentity
from sudp.startup import EX_CONFIG, EX_UNAVAILABLE, exitIfListenFails, listenFailure, oneLine

from sudp_test.paths import ROOT

def _makeCerts():
    spec = importlib.util.spec_from_file_location(
        "vpn041_make_certs", os.path.join(ROOT, "examples", "vpn041", "make_certs.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

class _Reactor(Clock):
    """
    A clock that records what a failed listen does to the reactor.
    """

    running = True

    def __init__(self):
        Clock.__init__(self)
        self.triggers = []
        self.stopped = False

    def addSystemEventTrigger(self, phase, event, f, *args):
        self.triggers.append((phase, event, f, args))

    def stop(self):
        self.stopped = True

class UnitTests(unittest.TestCase):
    def test_oneLine(self):
        self.assertEqual(oneLine("a\nb\r\n  c\t"), "a b c")

    def test_listenFailureMessages(self):
        """
        Address in use, no permission and a foreign address each get a hint.
        """
        for errno, hint in ((98, "choose another port"), (13, "above 1023"), (99, "--interface")):
            error = CannotListenError("127.0.0.1", 9, OSError(errno, os.strerror(errno)))
            text = listenFailure(Failure(error), "UDP port 9")
            self.assertIn("cannot listen on UDP port 9", text)
            self.assertIn(hint, text)
            self.assertNotIn("\n", text)

    def test_exitIfListenFails(self):
        """
        A failed listen writes one line, stops the reactor and ends the
        process (69) after shutdown; a listen that works does nothing.
        """
        reactor, out = _Reactor(), io.StringIO()
        exits = []
        d = defer.fail(CannotListenError("", 9, OSError(98, "Address already in use")))
        exitIfListenFails(d, reactor, "UDP port 9", exitProcess=exits.append, stderr=out)
        self.assertEqual(out.getvalue().count("\n"), 1)
        self.assertTrue(out.getvalue().startswith("Error: cannot listen on UDP port 9"))
        self.assertTrue(reactor.stopped)
        [(phase, event, f, args)] = reactor.triggers
        self.assertEqual((phase, event), ("after", "shutdown"))
        f(*args)
        self.assertEqual(exits, [int(EX_UNAVAILABLE)])
        reactor, out = _Reactor(), io.StringIO()
        exitIfListenFails(defer.succeed("port"), reactor, "UDP port 9", exitProcess=exits.append, stderr=out)
        self.assertEqual((out.getvalue(), reactor.stopped, reactor.triggers), ("", False, []))

class _TwistMixin:
    """
    Runs C{twist} in a subprocess from the checkout and checks its failure.
    """

    timeout = 120

    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, data, mode=0o600):
        path = self.path(name)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
        return path

    def assertFailsFast(self, args, status, *fragments):
        """
        C{twist ARGS} exits with C{status} within 2 s, with exactly one line
        on standard error, C{Error: ...} holding every fragment, and no
        traceback.
        """
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "twisted", *args], cwd=ROOT, capture_output=True,
                                text=True, timeout=30)
        took = time.monotonic() - started
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertTrue(lines[0].startswith("Error: "), lines[0])
        for fragment in fragments:
            self.assertIn(fragment, lines[0])
        self.assertNotIn("Traceback", result.stdout + result.stderr)
        self.assertEqual(result.returncode, status, result.stderr)
        self.assertLess(took, 2.0 + 1.5)  # 2 s, plus the interpreter's start on a loaded machine
        return lines[0]

    def busyPort(self, kind=socket.SOCK_DGRAM):
        """
        @return: a port on 127.0.0.1 that a socket of C{kind} holds.
        """
        s = socket.socket(socket.AF_INET, kind)
        self.addCleanup(s.close)
        s.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            s.listen(1)
        return s.getsockname()[1]

class TwistSUDPTests(_TwistMixin, unittest.TestCase):
    def key(self):
        path = self.path("server.key")
        if not os.path.exists(path):
            saveIdentity(Identity.generate(), path)
        return path

    def sudp(self, *extra):
        return ["sudp", "--interface", "127.0.0.1", "--port", "0", "--key", self.key(), *extra]

    def test_portInUse(self):
        """
        A UDP port another socket holds (the landed code logged a traceback
        and kept running, serving nothing).
        """
        port = self.busyPort()
        args = ["sudp", "--interface", "127.0.0.1", "--port", str(port), "--key", self.key()]
        self.assertFailsFast(args, EX_UNAVAILABLE, f"UDP port {port}", "in use", "choose another port")

    def test_listenPortInUse(self):
        """
        A --listen stream port another socket holds.
        """
        port = self.busyPort(socket.SOCK_STREAM)
        self.assertFailsFast(self.sudp("--listen", f"sframe:endpoint=tcp\\:{port}\\:interface=127.0.0.1"),
                             EX_UNAVAILABLE, "cannot listen on --listen sframe:", "in use")

    def test_badKeyFiles(self):
        """
        A corrupt key, a key readable by others, a directory, an unwritable
        place for a new key: the file is named, with what to do.
        """
        corrupt = self.write("corrupt.key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        tooOpen = self.path("open.key")
        saveIdentity(Identity.generate(), tooOpen)
        os.chmod(tooOpen, 0o644)
        directory = self.path("dir.key")
        os.makedirs(directory)
        cases = [
            (corrupt, ("corrupt.key", "not a valid private key")),
            (tooOpen, ("open.key", "chmod 600")),
            (directory, ("dir.key", "is a directory")),
            (self.path("nowhere/new.key"), ("new.key", "cannot write")),
        ]
        for path, fragments in cases:
            self.assertFailsFast(["sudp", "--port", "0", "--interface", "127.0.0.1", "--key", path],
                                 EX_CONFIG, *fragments)

    def test_badAuthorizedKeys(self):
        bad = self.write("authorized", b"ed25519-notakey\n")
        self.assertFailsFast(self.sudp("--authorized-keys", bad), EX_CONFIG, "authorized")
        self.assertFailsFast(self.sudp("--authorized-keys", self.path("missing")), EX_CONFIG, "missing")

    def test_badTrustedKeys(self):
        bad = self.write("trusted", b"rsa-notakey\n")
        self.assertFailsFast(["sudp", "--interface", "127.0.0.1", "--port", "0", "--handshake", "gossip6",
                              "--key", self.path("rsa.key"), "--trusted-keys", bad], EX_CONFIG, "trusted")

    def test_badListen(self):
        self.assertFailsFast(self.sudp("--listen", "sframe:endpoint=nosuch\\:1"), EX_CONFIG, "--listen")
        self.assertFailsFast(self.sudp("--listen", "sframe:bogus=1:endpoint=tcp\\:0"), EX_CONFIG, "--listen")

class TwistVPN041Tests(_TwistMixin, unittest.TestCase):
    def setUp(self):
        _TwistMixin.setUp(self)
        makeCerts = _makeCerts()
        ca = makeCerts.makeCA(self.dir)
        self.cert, self.certKey = makeCerts.makeCertificate(self.dir, "gateway", ca, server=True)
        self.ca = self.path("ca.pem")
        self.settings = self.write("appsettings.json", b'{"appSettings": {"useEncryption": true, "encryptionType": "Tls13"}}')

    def vpn041(self, cert=None, key=None, ca=None, auth=0, port=0):
        return ["vpn041", "--appsettings", self.settings, "--cert", cert or self.cert,
                "--key", key or self.certKey, "--ca", ca or self.ca, "--interface", "127.0.0.1",
                "--auth-port", str(auth), "--port", str(port)]

    def test_badCertificates(self):
        """
        A corrupt certificate, key or CA, and a missing one (the landed
        code printed a traceback).
        """
        junk = self.write("junk.pem", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
        for args in (self.vpn041(cert=junk), self.vpn041(key=junk), self.vpn041(ca=junk),
                     self.vpn041(ca=self.path("missing.pem"))):
            self.assertFailsFast(args, EX_CONFIG, "vpn041")

    def test_portsInUse(self):
        """
        The auth (TCP) port or the data (UDP) port held by another socket.
        """
        self.assertFailsFast(self.vpn041(auth=self.busyPort(socket.SOCK_STREAM)), EX_UNAVAILABLE,
                             "cannot listen", "in use")
        self.assertFailsFast(self.vpn041(port=self.busyPort()), EX_UNAVAILABLE, "cannot listen", "in use")
