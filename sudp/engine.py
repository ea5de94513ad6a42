# -*- test-case-name: sudp_test.test_engine -*-
"""
The contract every sudp engine keeps (sans-IO, as aioquic's
C{QuicConnection} and h11's C{Connection}): it imports no reactor, holds
no Twisted object, and is driven with the time passed in.

  - feed it: C{receiveDatagrams(datagrams, addr, now)} (or one at a time,
    C{receiveDatagram(data, addr, now)}), C{handleTimer(now)} once
    C{nextDeadline()} has passed, and its API calls (C{send}, C{close}...);
  - pull from it: C{datagramsToSend()}, the C{(datagram, addr)} pairs it
    queued, and C{nextEvents()}, the events it reported
    (L{sudp.udp.events}), each list taken once; then C{nextDeadline()},
    when to call C{handleTimer} next (None: never).

A driver (a Twisted adapter, peer mode, a test helper, a benchmark) calls
these and nothing else; L{drain} is the loop they share.
"""

from zope.interface import Interface


class IDatagramEngine(Interface):
    """
    A sans-IO protocol engine over datagrams (sudp/1 server and client).
    """

    def receiveDatagram(data, addr, now):
        """
        Handle one datagram from C{addr} at time C{now}; never raises on bad
        input (it is dropped and counted).
        """

    def receiveDatagrams(datagrams, addr, now):
        """
        Handle several datagrams from C{addr}, in order.
        """

    def handleTimer(now):
        """
        Run what is due at C{now} (retransmissions, keepalives, timeouts).
        """

    def nextDeadline():
        """
        @return: when L{handleTimer} should next be called, or None.
        """

    def datagramsToSend():
        """
        @return: the C{(datagram, addr)} pairs queued since the last call,
            in order; the queue is then empty.
        """

    def nextEvents():
        """
        @return: the events reported since the last call, in order; the
            list is then empty.
        """


class EngineOutput:
    """
    The pull half of L{IDatagramEngine} for an engine that queues into
    C{self.outbox} and C{self.events}.
    """

    def datagramsToSend(self):
        out = self.outbox
        if not out:
            return []  # never the engine's own list, which it appends to later
        self.outbox = []
        return out

    def nextEvents(self):
        events = self.events
        if not events:
            return []
        self.events = []
        return events

    def handleTimer(self, now):
        self.onTimer(now)


def drain(engine, send, handle):
    """
    Take everything an engine has to give: its datagrams to C{send(pairs)}
    and its events, one by one, to C{handle(event)}, until both are empty
    (handling an event may queue more of either).
    """
    while True:
        out = engine.datagramsToSend()
        if out:
            send(out)
        events = engine.nextEvents()
        if not events:
            return
        for event in events:
            handle(event)
