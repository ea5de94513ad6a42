# -*- test-case-name: sudp_test.test_examples -*-
"""
The examples work: the echo client against an echo server, the game
server's authority rules, twisted.web over sframe, the peer-mode mesh chat
and the vpn041 gateway and client, over real sockets on 127.0.0.1.
"""

from examples import mesh_chat, sframe_web
from examples.echo_client import main as echoMain
from examples.game_server import GameFactory, MAX_MOVES_PER_SECOND, WORLD
from twisted.internet import defer, reactor
from twisted.internet.task import Clock
from twisted.trial import unittest

from sudp.tap import loadApp

from sudp_test.integration import SUDPIntegrationMixin
from sudp_test.paths import ROOT

class EchoClientExampleTests(SUDPIntegrationMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def test_echoClient(self):
        """
        examples/echo_client.py sends its messages and gets every one back.
        """
        yield self.listen()
        endpoint = f"sudp:host=127.0.0.1:port={self.port.getHost().port}:serverKey={self.identity.publicKey.toText()}"
        received = yield echoMain(reactor, endpoint, "alpha", "beta")
        self.assertEqual(received, [b"alpha", b"beta"])

class GameServerExampleTests(SUDPIntegrationMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        SUDPIntegrationMixin.setUp(self)
        self.clock = Clock()
        self.game = GameFactory(clock=self.clock)
        yield self.listen(self.game)

    @defer.inlineCallbacks
    def player(self):
        client = yield self.connect()
        yield client.waitFor(1)
        return client

    @defer.inlineCallbacks
    def ask(self, client, command):
        n = len(client.messages)
        client.transport.write(command.encode())
        yield client.waitFor(n + 1)
        return client.messages[n].decode()

    def test_loadableAsApp(self):
        """
        twist sudp --app examples.game_server.GameFactory resolves to a factory.
        """
        self.assertIsInstance(loadApp("examples.game_server.GameFactory"), GameFactory)

    @defer.inlineCallbacks
    def test_authority(self):
        """
        The server validates every command even though the channel is
        authenticated: moves of one cell are applied, longer moves, moves into
        walls or other players, junk and floods are rejected.
        """
        alice = yield self.player()
        self.assertTrue(alice.messages[0].startswith(b"welcome"))
        c = WORLD // 2
        self.assertEqual((yield self.ask(alice, "move 1 0")), f"ok {c + 1} {c}")
        self.assertEqual((yield self.ask(alice, "move 5 0")), "rejected one cell per move")
        self.assertEqual((yield self.ask(alice, "move x y")), "rejected move takes two integers")
        self.assertEqual((yield self.ask(alice, "teleport 0 0")), "rejected unknown command 'teleport'")
        bob = yield self.player()  # bob starts at the centre, next to alice
        self.assertEqual((yield self.ask(alice, "move -1 0")), "rejected occupied")
        for _ in range(MAX_MOVES_PER_SECOND - 1):
            self.assertTrue((yield self.ask(alice, "move 0 1")).startswith("ok"))
        self.assertEqual((yield self.ask(alice, "move 0 1")), "rejected too fast")
        self.clock.advance(1.1)
        self.assertTrue((yield self.ask(alice, "move 0 0")).startswith("ok"))
        yield bob.waitFor(2)
        self.assertTrue(any(m.startswith(b"moved ") for m in bob.messages[1:]))

    @defer.inlineCallbacks
    def test_wall(self):
        """
        A move off the edge of the world is rejected.
        """
        alice = yield self.player()
        for _ in range(WORLD // 2):
            reply = yield self.ask(alice, "move 1 0")
            self.clock.advance(0.2)
        self.assertEqual(reply, "rejected wall")

class SFrameWebExampleTests(unittest.TestCase):
    @defer.inlineCallbacks
    def test_serveAndFetch(self):
        """
        examples/sframe_web.py serves its site over sframe and its fetch
        helper gets both pages, byte for byte, with the printed endpoint.
        """
        import os

        key = os.path.join(os.path.abspath(self.mktemp()), "web.key")
        os.makedirs(os.path.dirname(key))
        listening, endpoint = yield sframe_web.serve(reactor, key, 0)
        self.addCleanup(listening.stopListening)
        code, body = yield sframe_web.fetch(reactor, endpoint, "/")
        self.assertEqual((code, body), (200, b"hello over sframe\n"))
        code, body = yield sframe_web.fetch(reactor, endpoint, "/data")
        self.assertEqual((code, body), (200, bytes(range(256)) * 4096))

class MeshChatExampleTests(unittest.TestCase):
    @defer.inlineCallbacks
    def test_demo(self):
        """
        examples/mesh_chat.py's demo: three nodes in one process, each
        greeting the mesh, one writing to a single peer; every message
        arrives where it was sent, once.
        """
        received, stats = yield mesh_chat.demo(reactor, out=None)
        self.assertEqual(received, [["hello from node 1", "hello from node 2"],
                                    ["hello from node 0", "hello from node 2"],
                                    ["hello from node 0", "hello from node 1", "just for node 2"]])
        self.assertEqual(stats["peer_count"], 2)

    def test_missingExtra(self):
        """
        Without the peer extra (zstandard), C{python examples/mesh_chat.py
        --demo} prints one line naming the exact install command and exits
        1, rather than a traceback ending in "No module named zstandard".
        """
        import os
        import subprocess
        import sys

        here = ROOT
        hideZstandard = ("import runpy, sys; sys.modules['zstandard'] = None; "
                         "sys.argv[:] = [sys.argv[1], '--demo']; runpy.run_path(sys.argv[0], run_name='__main__')")
        script = os.path.join("examples", "mesh_chat.py")
        result = subprocess.run([sys.executable, "-c", hideZstandard, script], cwd=here,
                                capture_output=True, text=True, timeout=60)
        self.assertEqual((result.returncode, result.stdout), (1, ""), result.stderr)
        self.assertEqual(result.stderr, mesh_chat.EXTRA_MISSING + "\n")
        self.assertIn("pip install 'txsudp[peer]'", result.stderr)
        self.assertIsNone(mesh_chat.missingExtra())

class Vpn041ExampleTests(unittest.TestCase):
    @defer.inlineCallbacks
    def test_gatewayAndClient(self):
        """
        examples/vpn041: certificates from make_certs.py, the example gateway
        and client: the client authenticates, its pushes are echoed, the
        gateway's greeting arrives.
        """
        import os

        from examples.vpn041 import client as v41client, gateway as v41gateway, make_certs

        certs = os.path.abspath(self.mktemp())
        self.assertEqual(make_certs.main([certs, "alice"]), 0)
        here = ROOT
        settings = os.path.join(here, "examples", "vpn041", "gateway.appsettings.json")
        gateway, ports = yield v41gateway.start(reactor, certs, settings, "0", "0")
        self.addCleanup(gateway.stopListening)
        pushes = yield v41client.run(reactor, certs, "alice", settings, str(ports[0].getHost().port), "0.3")
        welcome = [p for p in pushes if p.startswith("welcome")]
        self.assertEqual(len(welcome), 1, pushes)
        self.assertRegex(welcome[0], r"^welcome, session ([1-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-5]) "
                                     r"\(O=vpn041 test,CN=alice\)$")  # an id drawn at random
        self.assertEqual([p for p in pushes if p.startswith("echo")],
                         [f"echo: hello {i} from alice" for i in range(3)])
