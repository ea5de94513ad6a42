# -*- test-case-name: sudp_test.udp.test_receivestate -*-
"""
L{sudp.udp.receivestate}: the session states and roles, and the receive
state the C data path reads (its contract with L{sudp.udp.session}).
"""

from twisted.trial import unittest

from sudp.errors import MalformedPacket
from sudp.speedups import native
from sudp.udp import receivestate as RS
from sudp.udp.events import MessageReceived
from sudp.udp.receivestate import KeyEpoch, ReceiveState, Role, SessionState
from sudp.udp.session import Session

from sudp_test.enginehelpers import CLIENT_ADDR, connectedPair, serverSessionOf, takeOutbox

class StatesTests(unittest.TestCase):
    def test_members(self):
        """
        States and roles are enum members: code compares them with C{is};
        they read as (and equal) their names, as logs and older callers
        expect.
        """
        self.assertEqual([s.value for s in SessionState], ["pending", "confirming", "open", "closed"])
        self.assertEqual([r.value for r in Role], ["client", "server"])
        self.assertIs(SessionState("open"), SessionState.OPEN)
        self.assertEqual(SessionState.OPEN, "open")
        self.assertEqual((str(Role.CLIENT), f"{SessionState.CLOSED}"), ("client", "closed"))

    def test_sessionUsesThem(self):
        """
        An open pair: each side's state is the OPEN member, each role its member.
        """
        _, server, client = connectedPair()
        session = serverSessionOf(server, client)
        self.assertIs(session.state, SessionState.OPEN)
        self.assertIs(client.session.state, SessionState.OPEN)
        self.assertIs(session.role, Role.SERVER)
        self.assertIs(client.session.role, Role.CLIENT)

class ContractTests(unittest.TestCase):
    """
    The names the C data path reads are the receive state's, and the
    session keeps those values there only.
    """

    def test_pythonSide(self):
        """
        L{ReceiveState} has exactly the fields of the contract; each
        L{KeyEpoch} has the epoch fields; a L{Session} holds its receive
        state in the slot the contract names.
        """
        self.assertEqual(ReceiveState.__slots__, RS.RECEIVE_STATE_FIELDS)
        self.assertTrue(set(RS.EPOCH_FIELDS) <= set(KeyEpoch.__slots__))
        self.assertIn(RS.SESSION_FIELD, Session.__slots__)

    def test_cSide(self):
        """
        The C module exports the names it reads, built from the very
        strings it reads them by: they are the Python contract's.
        """
        if native is None:
            raise unittest.SkipTest("the C speedups are not built here")
        self.assertEqual(native.SESSION_FIELD, RS.SESSION_FIELD)
        self.assertEqual(native.RECEIVE_STATE_FIELDS, RS.RECEIVE_STATE_FIELDS)
        self.assertEqual(native.EPOCH_FIELDS, RS.EPOCH_FIELDS)

    def test_oneHome(self):
        """
        The session's C{state}, C{peerAddr}, C{probe}, C{epochs} and
        C{lastRecv} are its receive state's, read and written; its
        C{stats} and C{minimumPacket} are the same values.
        """
        net, server, client = connectedPair()
        session = serverSessionOf(server, client)
        rx = session.receiveState
        for name in ("state", "peerAddr", "probe", "epochs", "lastRecv"):
            self.assertNotIn(name, Session.__slots__)
            self.assertIs(getattr(session, name), getattr(rx, name))
        self.assertIs(session.stats, rx.stats)
        self.assertEqual(session.minimumPacket, rx.minimumPacket)
        session.lastRecv = 5.0
        self.assertEqual(rx.lastRecv, 5.0)
        net.now += 1
        client.sendMessage(client.session, b"x", net.now)
        net.pump()
        self.assertEqual(rx.lastRecv, net.now)
        session.close(net.now)
        self.assertIs(rx.state, SessionState.CLOSED)
        self.assertEqual(rx.epochs, [None, None])

    def test_cReadsOnlyTheReceiveState(self):
        """
        The C data path delivers for an object that has nothing but a
        receive state: it reads no other attribute of the session.
        """
        if native is None:
            raise unittest.SkipTest("the C speedups are not built here")
        net, server, client = connectedPair()
        session = serverSessionOf(server, client)

        class Bare:
            __slots__ = (RS.SESSION_FIELD,)

        bare = Bare()
        bare.receiveState = session.receiveState
        path = native.DataPath({session.localIndex: bare}, MessageReceived, MalformedPacket,
                               SessionState.OPEN, server.config.maxDatagramSize)
        for i in range(3):
            client.sendMessage(client.session, b"m%d" % i, net.now)
        datagrams = [d for d, _ in takeOutbox(client)]
        events = []
        self.assertEqual(path.run(datagrams, 0, CLIENT_ADDR, net.now + 2, events), 3)
        self.assertEqual([(e.session, e.message) for e in events], [(bare, b"m0"), (bare, b"m1"), (bare, b"m2")])
        self.assertEqual((session.stats["received"], session.lastRecv), (3, net.now + 2))
