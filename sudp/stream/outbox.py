# -*- test-case-name: sudp_test.stream.test_connection -*-
"""
L{StreamOutbox}: what one sframe connection writes, in order, sans-IO; with
write coalescing: application writes made before the next flush (one
reactor turn, for the Twisted wrapper) go out together, in as few frames
as C{maxFramePayload} allows (streams carry bytes, not messages), and a
full frame's worth goes at once.
"""

from sudp.stream.frames import CODE_DATA, CODE_KEEPALIVE, FrameError


class StreamOutbox:
    """
    The bytes a L{sudp.stream.connection.StreamConnection} has to write.

    @ivar writer: the connection's L{sudp.stream.frames.FrameWriter}, once
        its keys are set.
    @ivar flushAt: when the coalesced writes are due, or None.
    @ivar lastSend: when frames were last sent (control frames aside).
    @ivar failed: None, or the L{sudp.stream.frames.FrameError}
        (C{key-exhausted}) after which the writer writes nothing more.
    """

    def __init__(self, maxFramePayload):
        self.maxFramePayload = maxFramePayload
        self.writer = None
        self.flushAt = None
        self.lastSend = 0.0
        self.failed = None
        self._out = []
        self._pending = []
        self._pendingSize = 0

    def take(self):
        """
        @return: everything to write since the last call, as one bytes.
        """
        out = self._out
        if not out:
            return b""
        self._out = []
        return out[0] if len(out) == 1 else b"".join(out)

    def raw(self, data):
        """
        Write C{data} as it is (a handshake message).
        """
        self._out.append(data)

    def control(self, code, payload=b""):
        """
        Write one control frame (CONFIRM, ACCEPT, CLOSE).
        """
        self._seal(None, self.writer.frame, code, payload)

    def keepalive(self, now):
        """
        Write a KEEPALIVE frame.
        """
        self._seal(now, self.writer.frame, CODE_KEEPALIVE, b"")

    def rekey(self, now):
        """
        Rotate the keys by time: write the REKEY frame.
        """
        self._seal(now, self.writer.rekey, now)

    def _seal(self, now, make, *args):
        """
        Write what C{make(*args)} builds (counted as sending at C{now},
        unless None); once the writer has failed, nothing.
        """
        if self.failed is not None:
            return
        try:
            wire = make(*args)
        except FrameError as e:  # key-exhausted: the keys cannot go on
            self.failed = e
            self.clear()
            return
        if now is not None:
            self.lastSend = now
        self._out.append(wire)

    def queue(self, data, now):
        """
        Queue application bytes, due at C{now} (or at once if a frame's
        worth is queued).

        @return: True if they were written at once.
        """
        self._pending.append(data if type(data) is bytes else bytes(data))
        size = self._pendingSize = self._pendingSize + len(data)
        if size >= self.maxFramePayload:
            self.flush(now)
            return True
        if self.flushAt is None:
            self.flushAt = now
        return False

    def frames(self, code, data, now):
        """
        Write C{data} in frames of C{code}, after the queued bytes.
        """
        self.flush(now)
        self._seal(now, self.writer.frames, code, data)

    def flush(self, now):
        """
        Write the queued bytes now.
        """
        self.flushAt = None
        if self._pending:
            data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self.clear()
            self._seal(now, self.writer.frames, CODE_DATA, data)

    def clear(self):
        """
        Drop the queued bytes.
        """
        self._pending = []
        self._pendingSize = 0
        self.flushAt = None
