# -*- test-case-name: sudp_test.stream.test_connection -*-
"""
L{StreamConnection}: one sframe connection, sans-IO (docs/sframe.md). It
holds all of sframe's protocol logic: the key exchange it is given (an
L{sudp.interfaces.IStreamKeyExchange}), CONFIRM / ACCEPT / CLOSE, the
client-proof check, the handshake, slow-peer and idle timeouts, KEEPALIVE,
write coalescing and why the connection ended. It keeps
L{sudp.engine.IStreamEngine}: bytes and the time go in, bytes to write,
events (L{sudp.stream.events}) and the next deadline come out.

States::

  HANDSHAKE --keys--> CONFIRMING --ACCEPT (client) / good CONFIRM (server)--> OPEN
      |                   |                                                    |
      +-------------------+---- any failure, or the stream ends ----------> CLOSED
"""

from zope.interface import implementer

from sudp.engine import IStreamEngine
from sudp.errors import ClientNotAuthorized, HandshakeFailed, HandshakeTimeout
from sudp.stream.confirm import checkConfirm, refusal
from sudp.stream.events import (
    CloseStream, DataReceived, Ended, FrameReceived, Opened, SFrameClosed, StreamState)
from sudp.stream.frames import (
    CODE_ACCEPT, CODE_CLOSE, CODE_CONFIRM, CODE_DATA, CODE_KEEPALIVE, RESERVED_CODES,
    FrameReader, FrameWriter)
from sudp.stream.outbox import StreamOutbox

HANDSHAKE, CONFIRMING, OPEN, CLOSED = StreamState


@implementer(IStreamEngine)
class StreamConnection:
    """
    One sframe connection, either side.

    @ivar state: a L{StreamState}.
    @ivar peerKey: the peer's verified key (the server's; a client's if it
        proved one), or None.
    @ivar suite: the negotiated stream suite's name, once keys are set.
    @ivar ending: the L{SFrameClosed} once this side or the peer ended the
        connection, or None.
    @ivar closing: True once no more is sent: the application closed, or
        the peer sent CLOSE.
    @ivar localAddr: this side's C{(host, port)}, or None.
    @ivar peerAddr: the peer's C{(host, port)}, or None.
    @ivar paused: True while the application has paused reading.
    """

    def __init__(self, keyExchange, config, isClient, authorizedKeys=None):
        """
        @param keyExchange: a fresh L{sudp.interfaces.IStreamKeyExchange}.
        @param config: a L{sudp.stream.handshake.StreamConfig}.
        @param authorizedKeys: (a server) the client keys let in, or None: any.
        """
        self.config = config
        self.isClient = isClient
        self.authorizedKeys = authorizedKeys
        self.state = HANDSHAKE
        self.peerKey = self.suite = self.localAddr = self.peerAddr = self.ending = None
        self.closing = self.paused = False
        self._kx = keyExchange
        self._reader = self._transcript = self._handshakeAt = self._slowAt = None
        self._outbox = StreamOutbox(config.maxFramePayload)
        self._events = []
        self._lastRecv = 0.0
        self._work = None  # the job the key exchange waits for
        self._held = b""  # what arrived meanwhile

    def dataToSend(self):
        """
        @return: the bytes to write on the stream, once.
        """
        return self._outbox.take()

    def nextEvents(self):
        """
        @return: the events since the last call, in order, once.
        """
        events, self._events = self._events, []
        return events

    def nextDeadline(self):
        """
        @return: when L{handleTimer} should next run, or None.
        """
        timers = self.timers()
        return min(timers.values()) if timers else None

    def timers(self):
        """
        @return: when each running clock is due, by name: C{"handshake"},
            C{"flush"}, C{"slow-peer"}, C{"idle"}, C{"keepalive"}, C{"rekey"}.
        """
        if self.state is CLOSED:
            return {}
        timers = {name: t for name, t in (("handshake", self._handshakeAt), ("flush", self._outbox.flushAt),
                                          ("slow-peer", self._slowAt)) if t is not None}
        if self._sending():
            c = self.config
            timers["idle"] = self._lastRecv + c.idleTimeout
            timers["keepalive"] = self._outbox.lastSend + c.keepaliveInterval
            if self._outbox.writer.rekeyAt is not None:  # key rotation by time
                timers["rekey"] = self._outbox.writer.rekeyAt
        return timers

    def start(self, now, localAddr=None, peerAddr=None):
        """
        The stream is up between C{localAddr} and C{peerAddr} (C{(host,
        port)} tuples or None): start the key exchange and its clock.
        """
        self.localAddr, self.peerAddr = localAddr, peerAddr
        self._lastRecv = self._outbox.lastSend = now
        self._handshakeAt = now + self.config.handshakeTimeout
        try:
            self._kx.connected(localAddr, peerAddr)
            self._step(self._kx.start(now), now)
        except HandshakeFailed as e:
            self._end(SFrameClosed("protocol-error", str(e)), e)

    def receiveData(self, data, now):
        """
        Bytes from the stream, in any pieces.
        """
        if self.ending is not None or self.state is CLOSED or (self.closing and self.state is not OPEN):
            return  # (one closed before it opened reads nothing more)
        self._lastRecv = now
        if self.state is HANDSHAKE:
            if self._work is not None:
                self._held += data  # read once the work is done
                return
            try:
                data = self._step(self._kx.receive(data, now), now)
            except HandshakeFailed as e:
                return self._end(SFrameClosed("protocol-error", str(e)), e)
            if not data:
                return
        frames, error = self._reader.feed(data)
        for code, payload in frames:
            self._frame(code, payload, now)
            if self.state is CLOSED or self.ending is not None:
                return
        if error is not None:
            # everything verified before the bad frame has been reported
            return self._end(SFrameClosed(error.reason, error.detail))
        self._watchSlowPeer(now, restart=bool(frames))

    def workDone(self, job, now):
        """
        The key exchange's work is done: go on with it.
        """
        if job is not self._work:
            return
        self._work = None
        if self.ending is not None or self.state is CLOSED:
            return
        held, self._held = self._held, b""
        try:
            rest = self._step(self._kx.workDone(job, now), now)
        except HandshakeFailed as e:
            return self._end(SFrameClosed("protocol-error", str(e)), e)
        if rest or held:
            self.receiveData(rest + held, now)

    def workFailed(self, job, now):
        """
        The key exchange's work could not be done: the connection ends.
        """
        if job is self._work:
            self._work = None
            self._end(SFrameClosed("protocol-error", "the work the key exchange needed could not be done"))

    def handleTimer(self, now):
        """
        Run what is due at C{now}: the handshake deadline, coalesced writes,
        the slow-peer clock, idle timeout, KEEPALIVE and key rotation.
        """
        if self.state is CLOSED:
            return
        c = self.config
        if self._handshakeAt is not None and now >= self._handshakeAt:
            error = HandshakeTimeout(f"sframe key exchange not done within {c.handshakeTimeout:g} s")
            return self._end(SFrameClosed("protocol-error", str(error)), error)
        out = self._outbox
        if out.flushAt is not None and now >= out.flushAt:
            out.flush(now)
            self._checkWriter()
        if self._slowAt is not None and now >= self._slowAt:
            return self._end(SFrameClosed("slow-peer", f"a frame took longer than {c.frameTimeout:g} s"))
        if not self._sending():
            return
        if now >= self._lastRecv + c.idleTimeout:
            return self._end(SFrameClosed("idle-timeout", f"nothing received for {c.idleTimeout:g} s"))
        if out.writer.rekeyAt is not None and now >= out.writer.rekeyAt:
            out.rekey(now)  # docs/sframe.md section 7.4
        if now >= out.lastSend + c.keepaliveInterval:
            out.keepalive(now)
        self._checkWriter()

    def connectionLost(self, now, clean=False, detail=""):
        """
        The stream below ended (C{clean}: an orderly close); report the end
        if it was not reported yet.
        """
        if self._work is not None:
            self._work.cancel()
            self._work = None
        if self.state is CLOSED:
            return
        wasOpen = self.state is OPEN
        self._quiet()
        self.state = CLOSED
        ending = self.ending or (SFrameClosed("closed") if self.closing and clean
                                 else SFrameClosed("connection-lost", detail))
        error = None if wasOpen else HandshakeFailed(
            f"the connection ended during the sframe key exchange: {ending}")
        self._events.append(Ended(ending, error))

    # -- the application's calls -----------------------------------------------------

    def sendData(self, data, now):
        """
        Queue application bytes (write coalescing: L{StreamOutbox}; the
        deadline is C{now}, one reactor turn).

        @return: False if they only wait for the timer: nothing new to pull.
        """
        if data and self.state is OPEN and self.ending is None and not self.closing \
                and self._outbox.queue(data, now):
            self._checkWriter()
            return True
        return False

    def writeFrame(self, code, data, now):
        """
        Send C{data} in frames of the application's C{code}, after any
        queued bytes.

        @raise ValueError: for a code sframe keeps, or one out of range.
        """
        if code in RESERVED_CODES or not 0 <= code < 2**32:
            raise ValueError(f"frame code 0x{code:x} is reserved for sframe")
        if self._sending():
            self._outbox.frames(code, bytes(data), now)
            self._checkWriter()

    def close(self, now):
        """
        Close: queued bytes and a CLOSE frame go out (if open), then the
        stream closes.
        """
        if self.closing or self.state is CLOSED:
            return
        self.closing = True
        if self.ending is not None:
            return
        if self.state is OPEN:
            self._outbox.flush(now)
            self._outbox.control(CODE_CLOSE)
            if self._outbox.failed is not None:
                return self._checkWriter()
        self._events.append(CloseStream(False))

    def abort(self, now):
        """
        Close the stream at once, sending nothing more.
        """
        if self.state is CLOSED:
            return
        self.closing = True
        self._outbox.clear()
        self._events.append(CloseStream(True))

    def applicationFailed(self, now):
        """
        The application raised on what it was given: the connection ends.
        """
        self._end(SFrameClosed("application-error", "the application protocol raised"))

    def pauseReading(self, now):
        """
        The application stopped reading: the slow-peer clock stops too.
        """
        self.paused = True
        self._slowAt = None  # our own pause must not make the peer look slow

    def resumeReading(self, now):
        """
        Reading goes on; a frame in progress gets a fresh clock.
        """
        self.paused = False
        if self.state is OPEN and self.ending is None:
            self._watchSlowPeer(now, restart=True)

    # -- inside -------------------------------------------------------------------

    def _sending(self):
        return self.state is OPEN and self.ending is None and not self.closing

    def _step(self, step, now):
        """
        Act on a key exchange's step: bytes to write, work to ask for, or
        the established keys.
        @return: the stream bytes after the key exchange, to read as frames.
        """
        if step.toSend:
            self._outbox.raw(step.toSend)
        if step.work is not None:
            self._work = step.work.job
            self._events.append(step.work)
        done = step.established
        if done is None:
            return b""
        c = self.config
        self.suite = done.suite.name
        self._transcript = done.transcript
        self._outbox.writer = FrameWriter(done.writer, c.maxFramePayload, keys=done.writeKeys, now=now,
                                          rekeyAfterFrames=c.rekeyAfterFrames, rekeyAfterTime=c.rekeyAfterTime)
        self._reader = FrameReader(done.reader, c.maxFramePayload, keys=done.readKeys)
        self.state = CONFIRMING
        if done.peerKey is not None:
            self.peerKey = done.peerKey
        if self.isClient:
            self._outbox.control(CODE_CONFIRM, done.confirm)
        return step.rest

    def _frame(self, code, payload, now):
        if self.state is OPEN:
            if code == CODE_DATA:
                self._events.append(DataReceived(payload))
            elif code == CODE_CLOSE:
                self.ending = SFrameClosed("closed-by-peer", payload.decode("utf-8", "replace"))
                self.closing = True  # nothing more is sent after the peer's CLOSE
                self._quiet()
                self._events.append(CloseStream(False))
            elif code in RESERVED_CODES:
                if code != CODE_KEEPALIVE:  # a KEEPALIVE has refreshed _lastRecv
                    self._end(SFrameClosed("protocol-error", f"unexpected control frame 0x{code:08x}"))
            else:
                self._events.append(FrameReceived(code, payload))
        elif self.isClient:
            refused = refusal(code, payload)
            if refused is None:
                self._open()
            else:
                self._end(*refused)
        else:
            try:
                self.peerKey = checkConfirm(code, payload, self.peerKey, self._transcript, self.authorizedKeys)
            except ClientNotAuthorized as e:
                self._outbox.control(CODE_CLOSE, str(e).encode()[: self.config.maxFramePayload])
                return self._end(SFrameClosed("not-authorized", str(e)), flush=True)
            except HandshakeFailed as e:
                return self._end(SFrameClosed("protocol-error", str(e)))
            self._outbox.control(CODE_ACCEPT)
            self._open()

    def _open(self):
        self._handshakeAt = None
        self.state = OPEN
        self._events.append(Opened(self.peerKey, self.suite))

    def _watchSlowPeer(self, now, restart=False):
        """
        Time each frame from its first byte: a frame that completes restarts
        the clock for the next one, and no clock runs while reading is paused.
        """
        if self._reader.midFrame and not self.paused:
            if restart or self._slowAt is None:
                self._slowAt = now + self.config.frameTimeout
        else:
            self._slowAt = None

    def _checkWriter(self):
        failed = self._outbox.failed
        if failed is not None:
            self._end(SFrameClosed(failed.reason, failed.detail))

    def _quiet(self):
        self._handshakeAt = self._slowAt = None
        self._outbox.clear()

    def _end(self, closed, handshakeError=None, flush=False):
        """
        End the connection for C{closed}: one that never opened is reported
        at once (C{handshakeError} fails a client's connect), an open one
        when its stream has gone. With C{flush}, what was written goes first.
        """
        if self.ending is not None:
            return
        self.ending = closed
        self._quiet()
        if self.state is not OPEN:
            self.state = CLOSED
            self._events.append(Ended(closed, handshakeError or HandshakeFailed(str(closed)), refused=True))
        self._events.append(CloseStream(not flush))
