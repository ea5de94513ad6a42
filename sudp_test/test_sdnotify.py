# -*- test-case-name: sudp_test.test_sdnotify -*-
"""
Tests of L{sudp.sdnotify}: the sd_notify datagram protocol over a real
AF_UNIX datagram socket, readiness once every listener is up, and
C{twist sudp} telling a notification socket READY=1 (and nothing when it
cannot listen).
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

from twisted.application import service
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial import unittest

from sudp.sdnotify import notify, NotifyingService

from sudp_test.paths import ROOT

def notificationSocket(testCase, abstract=False):
    """
    @return: C{(socket, NOTIFY_SOCKET value)}: a bound AF_UNIX datagram
        socket, closed at cleanup, as systemd makes one.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    testCase.addCleanup(sock.close)
    if abstract:
        name = f"sudp-test-{os.getpid()}-{id(testCase)}"
        sock.bind("\0" + name)
        value = "@" + name
    else:
        directory = tempfile.mkdtemp(prefix="sudp-notify-")  # short: a socket path has 108 bytes at most
        testCase.addCleanup(shutil.rmtree, directory, True)
        value = os.path.join(directory, "notify")
        sock.bind(value)
    sock.settimeout(20)
    return sock, value

class NotifyTests(unittest.TestCase):
    def test_path(self):
        """
        C{notify} sends its state as one datagram to the socket at the path
        in C{NOTIFY_SOCKET}.
        """
        sock, value = notificationSocket(self)
        self.assertTrue(notify("READY=1\nSTATUS=up", {"NOTIFY_SOCKET": value}))
        self.assertEqual(sock.recv(4096), b"READY=1\nSTATUS=up")

    def test_abstract(self):
        """
        An address starting with C{@} is in the abstract namespace.
        """
        sock, value = notificationSocket(self, abstract=True)
        self.assertTrue(notify("READY=1", {"NOTIFY_SOCKET": value}))
        self.assertEqual(sock.recv(4096), b"READY=1")

    def test_noSocket(self):
        """
        Without C{NOTIFY_SOCKET}, or with an address that is not a UNIX
        socket's, nothing is sent.
        """
        self.assertFalse(notify("READY=1", {}))
        self.assertFalse(notify("READY=1", {"NOTIFY_SOCKET": ""}))
        self.assertFalse(notify("READY=1", {"NOTIFY_SOCKET": "vsock:2:1234"}))

    def test_unreachable(self):
        """
        A socket that is gone is logged, not raised: readiness is advice.
        """
        missing = os.path.join(self.mktemp(), "notify")
        self.assertFalse(notify("READY=1", {"NOTIFY_SOCKET": missing}))
        self.assertEqual(len(self.flushLoggedErrors()), 0)

class Listener(service.Service):
    """
    A child that listens when its Deferred fires, as C{twist sudp}'s do.
    """

    def __init__(self, succeed=True):
        self.port = None
        self.succeed = succeed
        self.listening = defer.Deferred()

    def startService(self):
        service.Service.startService(self)
        self.listening.addCallback(self._listened)
        return self.listening

    def _listened(self, _):
        if self.succeed:
            self.port = object()

class RunningClock(Clock):
    """
    A clock whose reactor is running: C{callWhenRunning} calls at once.
    """

    def callWhenRunning(self, f, *args, **kwargs):
        f(*args, **kwargs)

class NotifyingServiceTests(unittest.TestCase):
    def setUp(self):
        self.sent = []
        self.top = NotifyingService(status="listening", reactor=RunningClock(), notify=self.sent.append)

    def test_readyOnceAllListen(self):
        """
        READY=1 is sent once every child's listen has fired, not before.
        """
        udp, stream = Listener(), Listener()
        udp.setServiceParent(self.top)
        stream.setServiceParent(self.top)
        self.top.startService()
        udp.listening.callback(None)
        self.assertEqual(self.sent, [])
        stream.listening.callback(None)
        self.assertEqual(self.sent, ["READY=1\nSTATUS=listening"])

    def test_notReadyWhenOneFails(self):
        """
        A child whose listen failed (its failure reported, its port unset)
        keeps the service from being ready.
        """
        udp, stream = Listener(), Listener(succeed=False)
        udp.setServiceParent(self.top)
        stream.setServiceParent(self.top)
        self.top.startService()
        udp.listening.callback(None)
        stream.listening.callback(None)
        self.assertEqual(self.sent, [])

    def test_stopping(self):
        """
        Stopping tells systemd STOPPING=1 and stops the children.
        """
        child = Listener()
        child.setServiceParent(self.top)
        self.top.startService()
        child.listening.callback(None)
        self.top.stopService()
        self.assertEqual(self.sent[-1], "STOPPING=1")
        self.assertFalse(child.running)

class TwistSudpTests(unittest.TestCase):
    """
    C{twist sudp} under a notification socket, in a child process.
    """

    def twistSudp(self, value, *extra):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        env = dict(os.environ, NOTIFY_SOCKET=value)
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        process = subprocess.Popen(
            [sys.executable, "-m", "twisted", "--log-format=text", "sudp", "--interface", "127.0.0.1",
             "--key", os.path.join(directory, "server.key"), *extra],
            env=env, cwd=directory, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def stop():
            if process.poll() is None:
                process.kill()
            process.communicate()

        self.addCleanup(stop)
        return process

    def test_ready(self):
        """
        C{twist sudp} sends READY=1 once it listens, and STOPPING=1 when
        told to stop.
        """
        sock, value = notificationSocket(self)
        process = self.twistSudp(value, "--port", "0", "--listen", r"sframe:endpoint=tcp\:0\:interface=127.0.0.1")
        self.assertEqual(sock.recv(4096), b"READY=1\nSTATUS=listening")
        process.send_signal(signal.SIGTERM)
        self.assertEqual(sock.recv(4096), b"STOPPING=1")
        self.assertEqual(process.wait(20), -signal.SIGTERM)  # twist ends by the signal it was sent

    def test_notReadyWhenPortTaken(self):
        """
        A C{twist sudp} that cannot listen exits (status 69) without ever
        telling systemd it is ready.
        """
        sock, value = notificationSocket(self)
        taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        process = self.twistSudp(value, "--port", str(taken.getsockname()[1]))
        self.assertEqual(process.wait(30), 69)
        sock.settimeout(0)
        messages = []
        try:
            while True:
                messages.append(sock.recv(4096))
        except BlockingIOError:
            pass
        self.assertNotIn(b"READY=1", b"".join(messages))
