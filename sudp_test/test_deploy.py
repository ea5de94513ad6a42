# -*- test-case-name: sudp_test.test_deploy -*-
"""
The deployment recipes of docs/deployment.md hold: the systemd unit in
examples/deploy/ is one systemd accepts and runs C{twist sudp} with options
it accepts, the container image's command line parses, and an sframe
listener adopts a socket passed by systemd's socket activation.
"""

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import clientFromString
from twisted.trial import unittest

from sudp.keys import Identity, saveIdentity
from sudp.tap import Options

from sudp_test.paths import ROOT

DEPLOY = os.path.join(ROOT, "examples", "deploy")

def unitSettings(path):
    """
    @return: the C{Name=value} lines of a unit file, as a dict of lists.
    """
    settings = {}
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            name, _, value = line.partition("=")
            settings.setdefault(name, []).append(value)
    return settings

def twistSudpArguments(argv):
    """
    @return: the arguments after C{sudp} in a C{twist ... sudp ...} command
        line, parsed by C{twist sudp}'s own options.
    """
    options = Options()
    options.parseOptions(argv[argv.index("sudp") + 1:])
    return options

class SystemdUnitTests(unittest.TestCase):
    unit = os.path.join(DEPLOY, "sudp.service")

    def test_execStart(self):
        """
        The unit is C{Type=notify} (sudp sends READY=1), runs C{twist sudp}
        with text logs, and with options C{twist sudp} accepts.
        """
        settings = unitSettings(self.unit)
        self.assertEqual(settings["Type"], ["notify"])
        [execStart] = settings["ExecStart"]
        argv = shlex.split(execStart)
        self.assertTrue(argv[0].endswith("/twist"), argv)
        self.assertIn("--log-format=text", argv[:argv.index("sudp")])
        options = twistSudpArguments(argv)
        self.assertEqual(options["port"], 9000)
        self.assertTrue(options["key"].startswith(settings["WorkingDirectory"][0]))
        self.assertIn("AF_UNIX", settings["RestrictAddressFamilies"][0])  # NOTIFY_SOCKET is one

    def test_systemdVerifies(self):
        """
        C{systemd-analyze verify} finds nothing to say about the unit (its
        C{twist} path replaced by one that exists here).
        """
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            raise unittest.SkipTest("systemd-analyze is not installed")
        directory = self.mktemp()
        os.makedirs(directory)
        copy = os.path.join(directory, "sudp.service")
        with open(self.unit, encoding="utf-8") as f:
            text = f.read().replace("/opt/sudp/bin/twist", sys.executable)
        with open(copy, "w", encoding="utf-8") as f:
            f.write(text)
        result = subprocess.run([analyze, "verify", copy], capture_output=True, text=True, timeout=60)
        self.assertEqual((result.returncode, result.stdout + result.stderr), (0, ""))

class ContainerTests(unittest.TestCase):
    def test_command(self):
        """
        The image runs C{twist sudp} with text logs, on the UDP port it
        exposes, with its key in the volume.
        """
        instructions = {}
        for line in open(os.path.join(DEPLOY, "Dockerfile"), encoding="utf-8"):
            word, _, rest = line.strip().partition(" ")
            if word in ("ENTRYPOINT", "CMD", "EXPOSE", "VOLUME"):
                instructions[word] = rest
        argv = json.loads(instructions["ENTRYPOINT"]) + json.loads(instructions["CMD"])
        self.assertEqual(argv[:3], ["twist", "--log-format=text", "sudp"])
        options = twistSudpArguments(argv)
        self.assertEqual(instructions["EXPOSE"], f"{options['port']}/udp")
        [volume] = json.loads(instructions["VOLUME"])
        self.assertEqual(os.path.dirname(options["key"]), volume)

class Echoed(protocol.Protocol):
    def __init__(self):
        self.received = b""
        self.done = defer.Deferred()

    def dataReceived(self, data):
        self.received += data
        if self.received.endswith(b"\n"):
            self.done.callback(self.received)

class SocketActivationTests(unittest.TestCase):
    """
    What systemd does for a C{.socket} unit: bind and listen, then start the
    service with the socket as descriptor 3 and C{LISTEN_FDS=1},
    C{LISTEN_PID} its own pid.
    """

    @defer.inlineCallbacks
    def test_sframeListener(self):
        """
        C{--listen 'sframe:endpoint=systemd\\:domain=INET\\:index=0'} serves
        sframe on the inherited socket.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        identity = Identity.generate()
        key = os.path.join(directory, "server.key")
        saveIdentity(identity, key)
        listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listening.bind(("127.0.0.1", 0))
        listening.listen(16)
        port = listening.getsockname()[1]

        # The socket becomes descriptor 3 of the process that runs the
        # server, whose pid is then LISTEN_PID: a launcher that execs it.
        launcher = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.environ['LISTEN_PID'] = str(os.getpid()); "
                    "os.execv(sys.argv[2], sys.argv[2:])")
        env = dict(os.environ, LISTEN_FDS="1", LISTEN_FDNAMES="sudp.socket",
                   PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        process = subprocess.Popen(
            [sys.executable, "-c", launcher, str(listening.fileno()),
             sys.executable, "-m", "twisted", "--log-format=text", "sudp", "--port", "0", "--interface",
             "127.0.0.1", "--key", key, "--listen", r"sframe:endpoint=systemd\:domain=INET\:index=0"],
            cwd=directory, env=env, pass_fds=(listening.fileno(),),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        listening.close()

        def stop():
            process.kill()
            process.wait()

        self.addCleanup(stop)
        endpoint = clientFromString(
            reactor, f"sframe:serverKey={identity.publicKey.toText()}:endpoint=tcp\\:127.0.0.1\\:{port}")
        client = yield endpoint.connect(protocol.Factory.forProtocol(Echoed)).addTimeout(30, reactor)
        client.transport.write(b"activated\n")
        echoed = yield client.done.addTimeout(30, reactor)
        self.assertEqual(echoed, b"activated\n")
        client.transport.loseConnection()
