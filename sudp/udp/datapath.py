# -*- test-case-name: sudp_test.udp.test_datapath -*-
"""
The receive loop over a batch of datagrams from one address, shared by the
server and client engines.

With the C speedups (L{sudp.speedups}), a C{sudp._speedups.DataPath} runs
the common case, DATA packets of open sessions from their known address,
fresh and authentic, and stops at the first datagram that is anything
else; that one goes through the engine's own C{receiveDatagram} (which
counts drops, follows rebinding peers, opens sessions, rekeys), and the C
loop resumes after it. So the protocol's logic has one home, and the
order of datagrams, and of the events they cause, is kept. What the C loop
reads of a session is its receive state (L{sudp.udp.receivestate}).

A driver that reads its socket with the C{Receiver} of the speedups hands
each read whole to L{BatchReceiver.receiveRead}: the same loop then runs
over the read buffer itself, with no bytes object per datagram and no
Python call per read but the engine's own for what is not the common case.
"""

from sudp.errors import MalformedPacket
from sudp.speedups import native
from sudp.udp.events import DeliveryFailed, MessageReceived
from sudp.udp.receivestate import SessionState


def fastPath(sessions, maxDatagram):
    """
    @param sessions: the engine's index -> L{sudp.udp.session.Session} dict
        (read on every call, so it may change between calls).
    @return: a C data path over C{sessions}, or None without the speedups.
    """
    if native is None:
        return None
    return native.DataPath(sessions, MessageReceived, MalformedPacket, SessionState.OPEN, maxDatagram, DeliveryFailed)


class BatchReceiver:
    """
    The engines' C{receiveDatagrams} (a mixin of the server and client
    engines, over their C{_fast} from L{fastPath}, None without the
    speedups, as L{sudp.engine.EngineOutput} has it, and their own
    C{receiveDatagram}).
    """

    def receiveDatagrams(self, datagrams, addr, now):
        """
        Handle several datagrams from C{addr} (a list or tuple of bytes: a
        GRO or C{recvmmsg} read), in order: the common case (DATA of an
        open session) in one C loop where the speedups are built,
        everything else through C{receiveDatagram}.
        """
        fast = self._fast
        if fast is None:
            receiveOne = self.receiveDatagram
            for data in datagrams:
                receiveOne(data, addr, now)
            return
        i, n = 0, len(datagrams)
        while i < n:
            i = fast.run(datagrams, i, addr, now, self.events)
            if i < n:
                self.receiveDatagram(datagrams[i], addr, now)
                i += 1

    def receiveRead(self, receiver, now):
        """
        Handle one batched read of C{receiver} (a C{sudp._speedups.Receiver},
        which a driver built over its socket: the engine itself reads
        nothing else) as L{receiveDatagrams} handles each run of it: with
        the C data path, in one C call that opens the common case straight
        from the read buffer and hands everything else, in order, to
        C{receiveDatagram}.

        @return: C{(datagrams, bytes)} read; C{(0, 0)} when none was
            waiting.
        @raise OSError: if the read fails.
        """
        fast = self._fast
        if fast is not None:
            return receiver.readInto(fast, self.receiveDatagram, self, now)
        groups, size = receiver.read()
        count = 0
        for datagrams, addr in groups:
            self.receiveDatagrams(datagrams, addr, now)
            count += len(datagrams)
        return count, size
