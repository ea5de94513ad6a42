"""
Tests for L{sudp.udp.adapters}: the server adapter logs each refused client
and each session opened and ended, rate-limited, over real sockets on
127.0.0.1.
"""

from twisted.internet import defer, protocol, reactor
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from sudp.errors import ClientNotAuthorized
from sudp.keys import Identity
from sudp.tap import Echo
from sudp.udp.config import Config
from sudp.udp.endpoints import SUDPClientEndpoint, SUDPServerEndpoint
from sudp.udp.events import ClientRefused

from sudp_test.waiting import waitUntil


class _Quiet(protocol.Protocol):
    pass


class ConnectionLogTests(unittest.TestCase):
    timeout = 20

    def setUp(self):
        self.logged = []

        def observe(event):
            if "sudp_event" in event:
                self.logged.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        self.identity = Identity.generate()

    @defer.inlineCallbacks
    def listen(self, authorizedKeys=None):
        endpoint = SUDPServerEndpoint(reactor, 0, self.identity, Config(), interface="127.0.0.1",
                                      authorizedKeys=authorizedKeys)
        port = yield endpoint.listen(protocol.Factory.forProtocol(Echo))
        self.addCleanup(port.stopListening)
        return port

    def client(self, port, identity=None):
        return SUDPClientEndpoint(reactor, "127.0.0.1", port.getHost().port, self.identity.publicKey,
                                  Config(), identity=identity)

    def events(self, kind):
        return [e for e in self.logged if e["sudp_event"] == kind]

    @defer.inlineCallbacks
    def test_openedEndedRefused(self):
        """
        A session opened and ended is logged with the client's address, key
        fingerprint, suite and the reason it ended; a client whose key is
        not authorized is logged as refused, with why.
        """
        allowed, stranger = Identity.generate(), Identity.generate()
        port = yield self.listen(authorizedKeys=[allowed.publicKey])
        client = yield self.client(port, allowed).connect(protocol.Factory.forProtocol(_Quiet))
        local = client.transport._adapter.transport.getHost()
        yield waitUntil(lambda: self.events("opened"), "the opened event")
        [opened] = self.events("opened")
        self.assertEqual(opened["address"], f"127.0.0.1:{local.port}")
        self.assertEqual(opened["fingerprint"], allowed.publicKey.fingerprint())
        self.assertEqual(opened["suite"], "chacha20-poly1305")
        self.assertEqual(opened["transport"], "udp")
        client.transport.loseConnection()
        yield waitUntil(lambda: self.events("ended"), "the ended event")
        [ended] = self.events("ended")
        self.assertEqual(ended["reason"], "closed-by-peer")
        self.assertEqual(ended["fingerprint"], allowed.publicKey.fingerprint())
        d = self.client(port, stranger).connect(protocol.Factory.forProtocol(_Quiet))
        yield self.assertFailure(d, ClientNotAuthorized)
        [refused] = self.events("refused")
        self.assertIn("not-authorized", refused["reason"])
        self.assertIn(stranger.publicKey.fingerprint(), refused["reason"])

    @defer.inlineCallbacks
    def test_floodDoesNotFillTheLog(self):
        """
        Thousands of refusals in a moment log at most the log's burst; the
        rest are counted.
        """
        port = yield self.listen()
        adapter = port.adapter
        for i in range(5000):
            adapter.engine.events.append(ClientRefused(("10.0.0.1", i), "rate-limited"))
        adapter.flush()
        refused = self.events("refused")
        self.assertEqual(len(refused), int(adapter.connectionLog.burst))
        self.assertEqual(adapter.connectionLog.suppressed, 5000 - len(refused))
