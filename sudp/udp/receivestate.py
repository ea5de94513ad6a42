# -*- test-case-name: sudp_test.udp.test_receivestate -*-
"""
What the receive path reads of a session: its state, its key epochs and
its validated address, in one object.

This is the contract between L{sudp.udp.session} and the C data path
(C{sudp/_speedups.c}, C{DataPath}): for a DATA datagram the C loop looks
the session up in its engine's index -> session dict, reads the session's
C{receiveState} (L{SESSION_FIELD}) and from there only the names of
L{RECEIVE_STATE_FIELDS}, and of each L{KeyEpoch} in C{epochs} only those of
L{EPOCH_FIELDS}. It writes C{lastRecv}, counts C{stats["received"]}, and
hands each message to C{sink} when there is one and no event is pending
(L{sudp.udp.delivery.Delivery.deliver}).
The C module exports the names it uses (C{RECEIVE_STATE_FIELDS},
C{EPOCH_FIELDS}, C{SESSION_FIELD}) and sudp_test.udp.test_receivestate holds
both sides to them.

A session keeps these values here and nowhere else (its C{state},
C{peerAddr}, C{probe}, C{epochs} and C{lastRecv} are properties over this
object), so the C loop never sees a stale copy.
"""

import enum

from sudp.udp.replay import Window
from sudp.udp.timers import NEVER


class _Named(str, enum.Enum):
    """
    An enum member that reads as its name in logs and compares equal to it
    (code compares members with C{is}).
    """

    def __str__(self):
        return self.value

    __format__ = str.__format__


class SessionState(_Named):
    """
    Where a L{sudp.udp.session.Session} is in its life.
    """

    PENDING = "pending"  # server: RESP sent, waiting for the client's CONFIRM
    CONFIRMING = "confirming"  # client: keys derived, waiting for the server's first packet
    OPEN = "open"
    CLOSED = "closed"


class Role(_Named):
    """
    Which end of the session this side is.
    """

    CLIENT = "client"
    SERVER = "server"


SESSION_FIELD = "receiveState"
RECEIVE_STATE_FIELDS = ("state", "peerAddr", "probe", "minimumPacket", "stats", "epochs", "lastRecv", "sink")
EPOCH_FIELDS = ("heard", "opener", "window")


class ReceiveState:
    """
    The receive-side state of one session (see the module's docstring: the
    C data path reads exactly these).

    @ivar state: the session's L{SessionState}; the C loop takes only
        C{OPEN} sessions.
    @ivar peerAddr: the validated address of the peer; the C loop takes
        only datagrams from it.
    @ivar probe: the L{sudp.udp.path.PathProbe} of an address being
        validated, or None; the C loop takes only sessions without one.
    @ivar minimumPacket: the shortest protected packet the suite allows.
    @ivar stats: the session's counters (a dict); the C loop adds to
        C{"received"}.
    @ivar epochs: the two key epoch slots, a list of two L{KeyEpoch} or
        None, by key phase bit.
    @ivar lastRecv: when the last authenticated packet arrived.
    @ivar sink: a callable given each message in place of a
        L{sudp.udp.events.MessageReceived} event, or None (set by
        L{sudp.udp.delivery.Delivery.deliverTo}).
    """

    __slots__ = RECEIVE_STATE_FIELDS

    def __init__(self, state, peerAddr, minimumPacket, stats, firstEpoch, now):
        self.state = state
        self.peerAddr = peerAddr
        self.probe = None
        self.minimumPacket = minimumPacket
        self.stats = stats
        self.epochs = [firstEpoch, None]
        self.lastRecv = now
        self.sink = None


class KeyEpoch:
    """
    One direction pair of keys with its own sequence numbers and replay
    window. The C data path reads L{EPOCH_FIELDS} of it: C{heard},
    C{opener} and C{window}.
    """

    __slots__ = (
        "number", "keys", "suite", "role", "sealer", "opener", "window", "sendSeq",
        "created", "failures", "retireAt", "heard",
    )

    def __init__(self, keys, role, suite, config, now):
        self.number = keys.epoch
        self.keys = keys
        self.suite = suite
        self.role = role
        # the keyed cipher objects are made on first use and may be given back
        # for room (sudp.udp.ciphercache); the keys stay in self.keys
        self.sealer = self.opener = None
        self.window = Window(config.replayWindow, config.ordering == "strict")
        self.sendSeq = 0
        self.created = now
        self.failures = 0
        self.retireAt = NEVER
        self.heard = False  # has an authenticated packet arrived under this epoch?

    def makeCiphers(self):
        """
        Make this epoch's sealing and opening objects from its keys.
        """
        keys = self.keys
        send, recv = (keys.c2s, keys.s2c) if self.role is Role.CLIENT else (keys.s2c, keys.c2s)
        self.sealer = self.suite.newCipher(send)
        self.opener = self.suite.newCipher(recv)

    def wipe(self):
        """
        Overwrite the keys and drop the cipher objects: this epoch can never
        seal or open again.
        """
        self.keys.wipe()
        self.sealer = self.opener = None
        self.suite = None
