# -*- test-case-name: sudp_test.gossip6.test_handshake, sudp_test.stream.test_endpoints, sudp_test.test_examples, sudp_test.test_tap, sudp_test.udp.test_adapters, sudp_test.udp.test_batching, sudp_test.udp.test_endpoints, sudp_test.vpn041.test_client, sudp_test.vpn041.test_gateway, sudp_test.vpn041.test_netcat, sudp_test.vpn041.test_tap -*-
"""
Helpers shared by several test modules (moved from test_limits, test_udp_integration).
"""

import os

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import clientFromString, serverFromString

from sudp.keys import Identity, saveIdentity
from sudp.tap import Echo

FAST = ":handshakeTimeout=1:retransmitInitial=0.2:retransmitMax=0.4"

class BystanderMixin:
    """
    A connected client whose echo proves the server still serves others.
    """

    @defer.inlineCallbacks
    def bystander(self, options=FAST):
        self.by = yield self.connect(options)
        self.pings = 0
        yield self.ping()
        return self.by

    @defer.inlineCallbacks
    def ping(self):
        self.pings += 1
        self.by.transport.write(b"ping %d" % self.pings)
        got = yield self.by.waitFor(self.pings)
        self.assertEqual(got[-1], b"ping %d" % self.pings)

class Recorder(protocol.Protocol):
    """
    Records messages; C{waitFor(n)} fires once n have arrived.
    """

    def __init__(self):
        self.messages = []
        self.lost = defer.Deferred()
        self.reason = None
        self._waiters = []

    def dataReceived(self, data):
        self.messages.append(data)
        for n, d in list(self._waiters):
            if len(self.messages) >= n:
                self._waiters.remove((n, d))
                d.callback(self.messages)

    def waitFor(self, n, timeout=5):
        if len(self.messages) >= n:
            return defer.succeed(self.messages)
        d = defer.Deferred()
        self._waiters.append((n, d))
        return d.addTimeout(timeout, reactor)

    def connectionLost(self, reason):
        self.reason = reason
        self.lost.callback(reason.value)

class EchoRecorder(Recorder):
    """
    A server-side protocol that records what it is sent and echoes it.
    """

    def dataReceived(self, data):
        Recorder.dataReceived(self, data)
        self.transport.write(data)

class RecorderFactory(protocol.Factory):
    def __init__(self, cls=Recorder):
        self.protocols = []
        self.built = defer.Deferred()
        self.cls = cls

    def buildProtocol(self, addr):
        p = self.cls()
        p.factory = self
        p.addr = addr
        self.protocols.append(p)
        if not self.built.called:
            self.built.callback(p)
        return p

@defer.inlineCallbacks
def echoOnce(test, endpoint):
    """
    Connect with the client string C{endpoint}, check that one message comes
    back, and close.

    @return: a L{Deferred} firing with the client protocol, closed.
    """
    client = yield clientFromString(reactor, endpoint).connect(RecorderFactory())
    client.transport.write(b"ping")
    got = yield client.waitFor(1)
    test.assertEqual(got, [b"ping"])
    client.transport.loseConnection()
    yield client.lost
    return client

class SUDPIntegrationMixin:
    timeout = 30

    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.serverKeyFile = os.path.join(self.dir, "server.key")
        self.identity = Identity.generate()
        saveIdentity(self.identity, self.serverKeyFile)

    def serverString(self, options):
        """
        @return: the server endpoint string under test, with C{options}.
        """
        return f"sudp:0:key={self.serverKeyFile}:interface=127.0.0.1{options}"

    def clientString(self, options, key):
        """
        @return: the client endpoint string for the listening server.
        """
        return f"sudp:host=127.0.0.1:port={self.port.getHost().port}:serverKey={key}{options}"

    @defer.inlineCallbacks
    def listen(self, factory=None, options=""):
        factory = factory or protocol.Factory.forProtocol(Echo)
        port = yield serverFromString(reactor, self.serverString(options)).listen(factory)
        self.addCleanup(port.stopListening)
        self.port = port
        return port

    def endpoint(self, options="", serverKey=None):
        key = serverKey or self.identity.publicKey.toText()
        return clientFromString(reactor, self.clientString(options, key))

    @defer.inlineCallbacks
    def connect(self, options="", factory=None):
        client = yield self.endpoint(options).connect(factory or RecorderFactory())
        self.addCleanup(client.transport.loseConnection)
        return client
