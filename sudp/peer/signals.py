# -*- test-case-name: sudp_test.peer.test_signals -*-
"""
L{Signal}: the small signal object py-vault-udp's users connect to
(C{socket.udp_recv_data.connect(handler)}, in the manner of PySignal):
C{connect}, C{disconnect} and C{emit}.
"""

import logging

log = logging.getLogger("sudp.peer")


class Signal:
    """
    A list of callables (slots) called in order with what is emitted. A
    slot that raises is logged (the C{sudp.peer} logger) and the others
    still run. Slots are held by strong references (PySignal holds methods
    weakly): disconnect what should go away.

    @ivar name: what the signal is, for log lines.
    """

    def __init__(self, name):
        self.name = name
        self._slots = []

    def connect(self, slot):
        """
        Call C{slot} on every L{emit} (once, however often it is connected).
        """
        if not callable(slot):
            raise TypeError(f"{self.name}.connect() takes a callable, not {type(slot).__name__}")
        if slot not in self._slots:
            self._slots.append(slot)

    def disconnect(self, slot=None):
        """
        Stop calling C{slot}; without one, every slot. A slot that is not
        connected is ignored.
        """
        if slot is None:
            del self._slots[:]
        elif slot in self._slots:
            self._slots.remove(slot)

    def emit(self, *args, **kwargs):
        """
        Call every slot with C{args} and C{kwargs}.
        """
        for slot in list(self._slots):
            try:
                slot(*args, **kwargs)
            except Exception:
                log.exception("sudp peer: a slot of %s raised", self.name)

    def __len__(self):
        return len(self._slots)
