# -*- test-case-name: sudp_test.test_engine -*-
"""
Tests for L{sudp.engine}: the engine contract the datagram engines keep,
and the drain loop their drivers share.
"""

from twisted.trial import unittest
from zope.interface.verify import verifyObject

from sudp.engine import drain, IDatagramEngine
from sudp.udp.events import MessageReceived

from sudp_test.enginehelpers import CLIENT_ADDR, connectedPair, SERVER_ADDR

class ContractTests(unittest.SynchronousTestCase):
    def test_bothEnginesProvideIt(self):
        net, server, client = connectedPair()
        self.assertTrue(verifyObject(IDatagramEngine, server))
        self.assertTrue(verifyObject(IDatagramEngine, client))

    def test_pullTakesOnce(self):
        """
        datagramsToSend and nextEvents give each datagram and event once, in
        order, and leave nothing behind.
        """
        net, server, client = connectedPair()
        client.sendMessage(client.session, b"one", net.now)
        client.sendMessage(client.session, b"two", net.now)
        out = client.datagramsToSend()
        self.assertEqual([dst for _, dst in out], [SERVER_ADDR, SERVER_ADDR])
        self.assertEqual(client.datagramsToSend(), [])
        server.receiveDatagrams([d for d, _ in out], CLIENT_ADDR, net.now)
        self.assertEqual([e.message for e in server.nextEvents()], [b"one", b"two"])
        self.assertEqual(server.nextEvents(), [])

    def test_handleTimer(self):
        """
        handleTimer at nextDeadline runs what is due (here a keepalive).
        """
        net, server, client = connectedPair()
        deadline = client.nextDeadline()
        self.assertIsNotNone(deadline)
        client.handleTimer(deadline)
        self.assertNotEqual(client.datagramsToSend(), [])

    def test_drainHandlesWhatHandlingQueues(self):
        """
        drain sends and handles until both queues are empty, also what an
        event handler queues meanwhile.
        """
        net, server, client = connectedPair()
        client.sendMessage(client.session, b"ping", net.now)
        server.receiveDatagrams([d for d, _ in client.datagramsToSend()], CLIENT_ADDR, net.now)
        sent, handled = [], []

        def handle(event):
            handled.append(event)
            if isinstance(event, MessageReceived):
                server.sendMessage(event.session, b"pong", net.now)  # queues a datagram while draining

        drain(server, sent.append, handle)
        self.assertEqual([type(e) for e in handled], [MessageReceived])
        self.assertEqual(len(sent), 1)
        self.assertEqual(server.datagramsToSend(), [])

def twistedObjectsIn(obj, depth=2, seen=None):
    """
    @return: the names of attributes of C{obj} (and of the objects, dicts
        and lists it holds, C{depth} levels down) whose class comes from
        Twisted or that are a transport or a protocol (sudp's own
        SessionTransport included).
    """
    seen = set() if seen is None else seen
    if id(obj) in seen or depth < 0:
        return []
    seen.add(id(obj))
    found = []
    if isinstance(obj, dict):
        children = list(obj.values())
    elif isinstance(obj, (list, tuple, set)):
        children = list(obj)
    else:
        names = list(getattr(obj, "__dict__", {}))
        for cls in type(obj).__mro__:
            names += [n for n in getattr(cls, "__slots__", ()) if hasattr(obj, n)]
        children = [getattr(obj, n) for n in names]
    from twisted.internet.interfaces import IProtocol, ITransport

    for child in children:
        if (type(child).__module__.startswith("twisted.") or ITransport.providedBy(child)
                or IProtocol.providedBy(child)):
            found.append(f"{type(obj).__name__} holds {type(child).__module__}.{type(child).__name__}")
        elif type(child).__module__.startswith("sudp") or isinstance(child, (dict, list, tuple, set)):
            found += twistedObjectsIn(child, depth - 1, seen)
    return found

class WalkerTests(unittest.SynchronousTestCase):
    def test_findsTwistedObjects(self):
        """
        The walk below sees a Twisted object two levels down.
        """
        from twisted.internet.task import Clock

        class Holder:
            pass

        outer, inner = Holder(), Holder()
        outer.sessions = {1: inner}
        inner.call = Clock().callLater(1, lambda: None)
        self.assertEqual(twistedObjectsIn(outer, 3), ["Holder holds twisted.internet.base.DelayedCall"])
        from sudp.udp.transport import SessionTransport

        inner.call = None
        inner.transport = SessionTransport(None, None)
        self.assertEqual(twistedObjectsIn(outer, 3), ["Holder holds sudp.udp.transport.SessionTransport"])

class NoTwistedObjectTests(unittest.TestCase):
    """
    Engines hold no Twisted object: over real sockets, after a session
    opened and carried a message, neither engine nor any of its sessions
    refers to a transport, a protocol or a delayed call.
    """

    timeout = 20

    def test_realSession(self):
        import os

        from twisted.internet import defer, protocol, reactor
        from twisted.internet.endpoints import clientFromString, serverFromString

        from sudp.keys import Identity, saveIdentity
        from sudp.tap import Echo

        got = defer.Deferred()

        class FirstMessage(protocol.Protocol):
            def dataReceived(self, data):
                if not got.called:
                    got.callback(data)

        directory = self.mktemp()
        os.makedirs(directory)
        key = os.path.join(directory, "server.key")
        identity = Identity.generate()
        saveIdentity(identity, key)

        @defer.inlineCallbacks
        def run():
            port = yield serverFromString(reactor, f"sudp:0:key={key}:interface=127.0.0.1").listen(
                protocol.Factory.forProtocol(Echo))
            self.addCleanup(port.stopListening)
            client = yield clientFromString(
                reactor, f"sudp:host=127.0.0.1:port={port.getHost().port}:serverKey={identity.publicKey.toText()}"
            ).connect(protocol.Factory.forProtocol(FirstMessage))
            self.addCleanup(client.transport.loseConnection)
            client.transport.write(b"ping")
            self.assertEqual((yield got.addTimeout(5, reactor)), b"ping")
            self.assertEqual(twistedObjectsIn(port.engine), [])
            self.assertEqual(twistedObjectsIn(client.transport._adapter.engine), [])

        return run()
