# -*- test-case-name: sudp_test.udp.test_ciphercache -*-
"""
Tests for L{sudp.udp.ciphercache}.

Functional tests of the sudp/1 engines, driven without a reactor: time comes
from a L{twisted.internet.task.Clock}, datagrams move through an in-memory
link.
"""

from twisted.internet.task import Clock
from twisted.trial import unittest

from sudp.keys import Identity
from sudp.udp.client import ClientEngine
from sudp.udp.config import Config
from sudp.udp.events import MessageReceived
from sudp.udp.server import ServerEngine

from sudp_test.enginehelpers import SERVER_ADDR
from sudp_test.udp.helpers import Link

class CipherCacheTests(unittest.TestCase):
    def test_boundAndCorrect(self):
        """
        With cipherCache=2 and six sessions taking turns, at most two key
        epochs hold cipher objects at any time, the others re-make theirs on
        their next packet, and every message still arrives once, in order.
        """
        clock = Clock()
        identity = Identity.generate()
        config = Config(cipherCache=2, rekeyAfterMessages=7)
        server = ServerEngine(identity, config)
        link = Link(server, clock)
        clients = []
        for i in range(6):
            addr = ("127.0.0.1", 41000 + i)
            client = link.add(ClientEngine(identity.publicKey, SERVER_ADDR, config), addr)
            client.start(link.now)
            link.pump()
            clients.append((addr, client))
        self.assertEqual(server.stats()["sessions"], 6)
        sessions = {s.remoteIndex: s for s in server.sessions.values()}
        sent = {addr: [] for addr, _ in clients}
        for round_ in range(20):
            for addr, client in clients:
                message = b"%s:%d" % (str(addr[1]).encode(), round_)
                client.sendMessage(client.session, message, link.now)
                sent[addr].append(message)
                link.pump()
                self.assertLessEqual(len(server.ciphers), 2)
                reply = sessions[client.session.localIndex]
                server.sendMessage(reply, b"r" + message, link.now)
                link.pump()
        got = [e for w, e in link.events if w == "server" and isinstance(e, MessageReceived)]
        for addr, _ in clients:
            mine = [e.message for e in got if e.message.startswith(str(addr[1]).encode())]
            self.assertEqual(mine, sent[addr])
        for addr, client in clients:
            replies = [e.message for w, e in link.events if w == addr and isinstance(e, MessageReceived)]
            self.assertEqual(replies, [b"r" + m for m in sent[addr]])
        self.assertGreater(server.ciphers.released, 50)
        self.assertEqual(dict(server.drops), {})
