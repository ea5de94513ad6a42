# -*- test-case-name: sudp_test.udp.test_sendstate -*-
"""
L{sudp.udp.sendstate}: the send half of the C data path
(C{DataPath.send}, C{DataPath.sendMany}) seals the common case and leaves
every other one to L{sudp.udp.session.Session.sendMessage}, writing
exactly what that would. The differential traces of
sudp_test.udp.test_datapath send through both as well.
"""

import struct

from twisted.trial import unittest

from sudp.errors import MessageTooLarge, SessionClosed
from sudp.speedups import native, nativeCipher
from sudp.suites import getSuite
from sudp.udp import sendstate as SS
from sudp.udp.config import Config
from sudp.udp.events import MessageReceived
from sudp.udp.receivestate import KeyEpoch, ReceiveState
from sudp.udp.session import Session

from sudp_test.enginehelpers import (
    CLIENT_ADDR, connectedPair, pythonConfig, seededPair, serverSessionOf, sessionState, START, takeOutbox,
)

OTHER_ADDR = ("127.0.0.1", 40001)
HEADER = struct.Struct(">BIQ")

class ContractTests(unittest.TestCase):
    """
    The C send half reads and writes the names of the contract, and they
    are the session's.
    """

    def test_pythonSide(self):
        """
        Every session field of the contract is a slot of L{Session}, every
        epoch field one of L{KeyEpoch}; what it reads of the receive state
        is the receive state's.
        """
        self.assertTrue(set(SS.SEND_SESSION_FIELDS) <= set(Session.__slots__))
        self.assertTrue(set(SS.SEND_EPOCH_FIELDS) <= set(KeyEpoch.__slots__))
        self.assertTrue({"state", "probe", "peerAddr", "stats"} <= set(ReceiveState.__slots__))

    def test_cSide(self):
        """
        The C module exports the names it uses, built from the very strings
        it reads them by.
        """
        if native is None:
            raise unittest.SkipTest("the C speedups are not built here")
        self.assertEqual(native.SEND_SESSION_FIELDS, SS.SEND_SESSION_FIELDS)
        self.assertEqual(native.SEND_EPOCH_FIELDS, SS.SEND_EPOCH_FIELDS)


class SendHalfTests(unittest.TestCase):
    """
    What goes through C, what goes through Python, and that both write the
    same.
    """

    if native is None or nativeCipher is None:
        skip = "the C speedups with the native cipher are not built here"

    def setUp(self):
        self.pythonCalls = []
        original = Session.sendMessage

        def counted(session, message, now):
            self.pythonCalls.append(message)
            return original(session, message, now)

        self.patch(Session, "sendMessage", counted)

    def pair(self, config=None):
        net, server, client = connectedPair(config or Config())
        takeOutbox(server)
        takeOutbox(client)
        return net, server, client

    def test_commonCaseInC(self):
        """
        An open session with the native cipher seals every message in C,
        one at a time and as a burst: no call to the session's
        C{sendMessage}; the packets carry consecutive sequence numbers
        from 0, go to the peer's address and open at the peer in order;
        the counters and C{lastSend} are written as the session would.
        """
        net, server, client = self.pair()
        session = client.session
        self.assertIs(type(session.sendEpoch.sealer), nativeCipher)
        first = session.sendEpoch.sendSeq  # after the client's CONFIRM
        sent = session.stats["sent"]
        for i in range(10):
            client.sendMessage(session, b"one %d" % i, net.now + 1)
        client.sendMessages(session, [b"burst %d" % i for i in range(90)], net.now + 2)
        self.assertEqual(self.pythonCalls, [])
        out = takeOutbox(client)
        self.assertEqual({addr for _, addr in out}, {session.peerAddr})
        self.assertEqual([HEADER.unpack_from(d)[2] for d, _ in out], list(range(first, first + 100)))
        self.assertEqual({HEADER.unpack_from(d)[:2] for d, _ in out}, {(0x18, session.remoteIndex)})
        self.assertEqual((session.sendEpoch.sendSeq, session.stats["sent"], session.lastSend),
                         (first + 100, sent + 100, net.now + 2))
        for data, _ in out:
            server.receiveDatagram(data, CLIENT_ADDR, net.now + 2)
        got = [e.message for e in server.nextEvents() if isinstance(e, MessageReceived)]
        self.assertEqual(got, [b"one %d" % i for i in range(10)] + [b"burst %d" % i for i in range(90)])

    def twins(self, config):
        """
        Two identical pairs from one seed, C{(server, client)} each; the
        second seals with C{cryptography} through L{Session.sendMessage}
        only.
        """
        fast = seededPair(7, config)
        slow = seededPair(7, pythonConfig(config))
        slow[0]._fast = slow[1]._fast = None
        return fast, slow

    def test_rekeyByCountGoesThroughPython(self):
        """
        The packet whose count starts a rekey, and those after it until the
        new key is in use, go through the session's C{sendMessage}: the
        rekey starts and every packet is sealed in order, each sequence
        number once.
        """
        net, server, client = self.pair(Config(rekeyAfterMessages=30))
        session = client.session
        first = session.sendEpoch.sendSeq
        client.sendMessages(session, [b"m%d" % i for i in range(100)], net.now)
        # sequence numbers up to 28 in C; 29 reaches the count and starts the rekey
        self.assertEqual(self.pythonCalls, [b"m%d" % i for i in range(29 - first, 100)])
        self.assertIsNotNone(session.rekey)
        seqs = [HEADER.unpack_from(d)[2] for d, _ in takeOutbox(client)]
        self.assertEqual(seqs, list(range(first, first + 101)))  # the rekey's CONTROL among them

    def test_keyLimitGoesThroughPython(self):
        """
        Near the key's usage limit the session's own path decides: it
        sends the last packet the limit allows, then refuses; a burst stops
        there with those before it queued.
        """
        net, server, client = self.pair(Config(rekeyAfterMessages=40, rejectAfterMessages=50))
        session = client.session
        first = session.sendEpoch.sendSeq
        session.rekey = object()  # a rekey that never completes
        try:
            self.assertRaises(SessionClosed, client.sendMessages, session, [b"m%d" % i for i in range(60)], net.now)
        finally:
            session.rekey = None
        seqs = [HEADER.unpack_from(d)[2] for d, _ in takeOutbox(client)]
        self.assertEqual(seqs, list(range(first, 50)))
        # from sequence 39 (the rekey count) on, Python: it seals up to 49, then refuses
        self.assertEqual(self.pythonCalls, [b"m%d" % i for i in range(39 - first, 51 - first)])

    def test_tooLargeRaises(self):
        """
        A message over C{maxMessageSize} goes to Python, which raises
        L{MessageTooLarge}; in a burst, those before it are queued and
        nothing after it.
        """
        net, server, client = self.pair()
        session = client.session
        big = b"x" * (session.maxMessageSize + 1)
        first, sent = session.sendEpoch.sendSeq, session.stats["sent"]
        self.assertRaises(MessageTooLarge, client.sendMessage, session, big, net.now)
        self.assertRaises(MessageTooLarge, client.sendMessages, session, [b"a", b"b", big, b"c"], net.now)
        self.assertEqual([HEADER.unpack_from(d)[2] for d, _ in takeOutbox(client)], [first, first + 1])
        self.assertEqual(session.stats["sent"], sent + 2)

    def test_notOpenRaises(self):
        """
        After the session closes, a send raises L{SessionClosed} from the
        Python path, in C's stead.
        """
        net, server, client = self.pair()
        session = client.session
        session.close(net.now)
        takeOutbox(client)
        self.assertRaises(SessionClosed, client.sendMessage, session, b"late", net.now)
        self.assertRaises(SessionClosed, client.sendMessages, session, [b"late"], net.now)
        self.assertEqual(takeOutbox(client), [])

    def test_addressBeingValidated(self):
        """
        While a server validates a client's new address, each reply also
        goes there (within its budget): that is the Python path's, and the
        datagrams are the same as a twin's that never touches C.
        """
        (server, client), (twinServer, twinClient) = self.twins(Config())
        for s, c in ((server, client), (twinServer, twinClient)):
            c.sendMessage(c.session, b"moved", START)
            [(data, _)] = takeOutbox(c)
            s.receiveDatagram(data, OTHER_ADDR, START)
            self.assertIsNotNone(serverSessionOf(s, c).probe)
            takeOutbox(s)
        del self.pythonCalls[:]
        session, twin = serverSessionOf(server, client), serverSessionOf(twinServer, twinClient)
        server.sendMessage(session, b"reply", START)
        twinServer.sendMessage(twin, b"reply", START)
        self.assertEqual(self.pythonCalls, [b"reply", b"reply"])
        out = takeOutbox(server)
        self.assertEqual([a for _, a in out], [CLIENT_ADDR, OTHER_ADDR])
        self.assertEqual(out, takeOutbox(twinServer))

    def test_pluginSuiteKeepsPython(self):
        """
        A suite whose cipher is not the native one (a plugin's) seals
        through the session's path.
        """
        net, server, client = self.pair(pythonConfig(Config(suites=(getSuite("chacha20-poly1305"),))))
        client.sendMessages(client.session, [b"a", b"b"], net.now)
        client.sendMessage(client.session, b"c", net.now)
        self.assertEqual(self.pythonCalls, [b"a", b"b", b"c"])
        self.assertEqual(len(takeOutbox(client)), 3)

    def test_sameAsPython(self):
        """
        Under each built-in suite, both roles: the same messages through C
        and through the session alone give byte-identical datagrams and the
        same session state, across a rekey started by count.
        """
        for suite in ("chacha20-poly1305", "aes-256-gcm"):
            config = Config(rekeyAfterMessages=45, suites=(getSuite(suite),))
            (server, client), (twinServer, twinClient) = self.twins(config)
            sides = ((client, client.session, twinClient, twinClient.session),
                     (server, serverSessionOf(server, client), twinServer, serverSessionOf(twinServer, twinClient)))
            for engine, session, twinEngine, twin in sides:
                for i in range(60):
                    payload = bytes([i]) * (i * 7 % 300)
                    if i % 3:
                        engine.sendMessage(session, payload, START + i)
                        twinEngine.sendMessage(twin, payload, START + i)
                    else:
                        engine.sendMessages(session, [payload, payload[:5]], START + i)
                        twinEngine.sendMessage(twin, payload, START + i)
                        twinEngine.sendMessage(twin, payload[:5], START + i)
                self.assertEqual(takeOutbox(engine), takeOutbox(twinEngine))
                self.assertEqual(sessionState(session), sessionState(twin))
                self.assertGreater(session.stats["rekeysStarted"], 0)

    def test_badArguments(self):
        """
        Wrong arguments are typed errors, and change nothing.
        """
        net, server, client = self.pair()
        session, fast = client.session, client._fast
        self.assertRaises(TypeError, fast.send, session, b"x", net.now)
        self.assertRaises(TypeError, fast.send, session, b"x", net.now, ())
        self.assertRaises(TypeError, fast.sendMany, session, {b"x"}, 0, net.now, [])
        self.assertRaises(AttributeError, fast.send, None, b"x", net.now, [])
        first = session.sendEpoch.sendSeq
        self.assertFalse(fast.send(session, bytearray(b"x"), net.now, []))  # not bytes: the Python path's
        self.assertEqual(session.sendEpoch.sendSeq, first)

    def test_slotsFollowTheType(self):
        """
        The C code reads slots at their offsets only for the type it found
        them on: a session of a subclass whose C{maxMessageSize} is a
        property gets the property's value (here, a limit the message is
        over goes to Python, which raises; one within it is sealed in C),
        and the base class's sessions before and after it are sealed in C.
        """
        net, server, client = self.pair()
        session = client.session
        client.sendMessage(session, b"before", net.now)

        class Narrow(Session):
            __slots__ = ()
            maxMessageSize = property(lambda self: 3)

        session.__class__ = Narrow
        try:
            self.assertRaises(MessageTooLarge, client.sendMessage, session, b"four", net.now)
            client.sendMessage(session, b"ok", net.now)
        finally:
            session.__class__ = Session
        client.sendMessage(session, b"after", net.now)
        self.assertEqual(self.pythonCalls, [b"four"])
        self.assertEqual(len(takeOutbox(client)), 3)
