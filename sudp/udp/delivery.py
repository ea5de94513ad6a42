# -*- test-case-name: sudp_test.udp.test_delivery -*-
"""
Where a sudp/1 engine hands authenticated messages: to the session's sink,
or as events.

A driver that gives a session a sink (C{engine.deliverTo(session, sink)};
the Twisted adapter gives its protocol's C{dataReceived}) has each message
handed to C{sink(message)} as it is authenticated, whenever no event is
pending; with an event pending, messages queue behind it as
L{sudp.udp.events.MessageReceived} events, so the order of messages and
events is the same either way. The C data path (L{sudp.udp.datapath})
follows the same rule, so the common case costs no event object and no
dispatch per message.
"""

from sudp.udp.events import DeliveryFailed, MessageReceived


class Delivery:
    """
    The engine's half of delivery (a mixin of the server and client
    engines, over their C{events} list).
    """

    def deliver(self, session, message):
        """
        Hand on one authenticated message of C{session} (see the module's
        docstring). A sink that raises an C{Exception} leaves the message
        delivered and a L{DeliveryFailed} event carrying the exception.
        """
        sink = session.receiveState.sink
        if sink is None or self.events:
            self.events.append(MessageReceived(session, message))
            return
        try:
            sink(message)
        except Exception as e:
            self.events.append(DeliveryFailed(session, message, e))

    def deliverTo(self, session, sink):
        """
        Hand C{session}'s messages to C{sink(message)} from now on (None:
        as events again).
        """
        session.receiveState.sink = sink
