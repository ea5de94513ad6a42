"""
L{SFrameProtocol}: sframe between a stream transport (TCP, UNIX, TLS, ...)
and an application protocol, in the shape of C{twisted.protocols.tls}.

The application protocol sees only verified bytes and is connected only once
the key exchange is done. Flow control passes through: producers the
application registers are registered on the stream below, and pausing the
wrapper pauses reading from it.
"""

from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IPushProducer, ITransport
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface, implementer

from sudp.errors import ClientNotAuthorized, HandshakeFailed, HandshakeTimeout, SUDPError
from sudp.offthread import runOffThread
from sudp.udp.handshake import checkClientProof
from sudp.udp.keyschedule import SFRAME_LABELS
from sudp.stream.frames import (
    CODE_ACCEPT,
    CODE_CLOSE,
    CODE_CONFIRM,
    CODE_DATA,
    CODE_KEEPALIVE,
    RESERVED_CODES,
    FrameReader,
    FrameWriter,
)
from sudp.stream.handshake import ClientKeyExchange, ServerKeyExchange
from sudp.work import WorkNeeded

HANDSHAKE, CONFIRMING, OPEN, CLOSED = "handshake", "confirming", "open", "closed"


class ISFrameTransport(Interface):
    """
    What an sframe transport offers beyond C{ITransport}.
    """

    peerPublicKey = Attribute("The peer's verified key (the server's; a client's if it proved one).")
    suite = Attribute("The name of the negotiated stream suite.")

    def writeFrame(code, data):
        """
        Send C{data} in frames with the application's CODE (0 to 0xFFFFFEFF).
        """


class IFrameReceiver(Interface):
    """
    Optional: a protocol providing this gets each frame's CODE.
    """

    def frameReceived(code, payload):
        """
        One verified frame. Without this interface a protocol gets
        C{dataReceived(payload)} for every frame.
        """


class SFrameClosed(SUDPError):
    """
    Why an sframe connection ended. C{reason} is one of C{"closed"},
    C{"closed-by-peer"}, C{"bad-mac"}, C{"bad-checksum"}, C{"bad-sequence"},
    C{"frame-too-large"}, C{"slow-peer"}, C{"protocol-error"},
    C{"not-authorized"}, C{"application-error"}, C{"connection-lost"}.
    """

    def __init__(self, reason, detail=""):
        self.reason = reason
        self.detail = detail
        SUDPError.__init__(self, f"{reason}: {detail}" if detail else reason)


class SFrameDone(SFrameClosed, ConnectionDone):
    """
    A clean close by either side.
    """


class SFrameLost(SFrameClosed, ConnectionLost):
    """
    Any other end: integrity failure, slow peer, protocol error...
    """


@implementer(ITransport, IPushProducer, ISFrameTransport)
class SFrameProtocol(Protocol):
    """
    @ivar wrappedProtocol: the application protocol.
    """

    log = Logger()

    def __init__(self, factory, wrappedProtocol):
        self.factory = factory
        self.wrappedProtocol = wrappedProtocol
        self._coded = IFrameReceiver.providedBy(wrappedProtocol)
        self.config = factory.config
        self.state = HANDSHAKE
        self.peerPublicKey = None  # the server's (the pinned key it proved) or a client's, once verified
        self.suite = None
        self.disconnecting = False
        self.disconnected = False
        self._ending = None  # the SFrameClosed to report
        self._timer = None
        self._slowTimer = None
        self._flushCall = None
        self._paused = False
        self._pending = []
        self._pendingSize = 0
        self._proving = None  # a proof of work being solved (gossip6)
        self._held = b""  # what arrived meanwhile
        self._idleCall = None
        self._lastRecv = self._lastSend = factory.reactor.seconds()
        self._backpressure = None  # our producer on the stream, while the application has none
        if factory.gossip6 is not None:
            self._kx = factory.gossip6.keyExchange(factory.identity, factory.isClient)
        elif factory.isClient:
            self._kx = ClientKeyExchange(factory.serverKey, self.config, identity=factory.identity)
        else:
            self._kx = ServerKeyExchange(factory.identity, self.config)

    # -- the stream below ---------------------------------------------------------

    def connectionMade(self):
        self._timer = self.factory.reactor.callLater(self.config.handshakeTimeout, self._handshakeTimedOut)
        try:
            self._kx.connected(self.transport)
        except HandshakeFailed as e:
            return self._end(SFrameLost("protocol-error", str(e)), e)
        if self.factory.isClient:
            self._keyExchanged(self._kx.start(self.factory.reactor.seconds()))

    def dataReceived(self, data):
        if self._ending is not None or self.state is CLOSED:
            return
        self._lastRecv = self.factory.reactor.seconds()
        if self.state is HANDSHAKE:
            if self._proving is not None:
                self._held += data  # handled once our proof of work is done
                return
            try:
                result = self._kx.receive(data, self.factory.reactor.seconds())
            except HandshakeFailed as e:
                return self._end(SFrameLost("protocol-error", str(e)), e)
            data = self._keyExchanged(result)
            if not data:
                return
        frames, error = self._reader.feed(data)
        for code, payload in frames:
            self._frame(code, payload)
            if self.state is CLOSED or self._ending is not None:
                return
        if error is not None:
            # everything verified before the bad frame has been delivered
            return self._end(SFrameLost(error.reason, error.detail))
        self._watchSlowPeer(restart=bool(frames))

    def _keyExchanged(self, result):
        """
        Act on what the key exchange returned: bytes to write, a proof of
        work to make first, or the established keys.

        @return: stream bytes that came after the key exchange, to read as frames.
        """
        if result is None:
            return b""
        if isinstance(result, bytes):
            self.transport.write(result)
            return b""
        if type(result) is WorkNeeded:
            self._prove(result.job)
            return b""
        self._established(result)
        return result[-1]

    def _prove(self, job):
        """
        Run work the key exchange asked for (L{sudp.work}) in the reactor's
        thread pool; the connection goes on reading meanwhile.
        """
        self._proving = job
        runOffThread(self.factory.reactor, job, self._proved, self._proofFailed, "sframe")

    def _proved(self, job, now):
        self._proving = None
        if self._ending is not None or self.state is CLOSED:
            return
        held, self._held = self._held, b""
        rest = self._keyExchanged(self._kx.workDone(job, now))
        if rest or held:
            self.dataReceived(rest + held)

    def _proofFailed(self, job, now):
        self._proving = None
        self._end(SFrameLost("protocol-error", "the work the key exchange needed could not be done"))

    def _established(self, result):
        done = result[0]
        c = self.config
        self.suite = done.suite.name
        self._transcript = done.transcript
        self._writer = FrameWriter(done.writer, c.maxFramePayload, keys=done.writeKeys,
                                   now=self.factory.reactor.seconds(),
                                   rekeyAfterFrames=c.rekeyAfterFrames,
                                   rekeyAfterTime=c.rekeyAfterTime)
        self._reader = FrameReader(done.reader, c.maxFramePayload, keys=done.readKeys)
        self.state = CONFIRMING
        if done.peerKey is not None:
            self.peerPublicKey = done.peerKey
        if self.factory.isClient:
            self.transport.write(self._writer.frame(CODE_CONFIRM, done.confirm))
        else:
            self.transport.write(result[1])

    def _frame(self, code, payload):
        if self.state is OPEN:
            if code == CODE_DATA and not self._coded:
                self._deliver(self.wrappedProtocol.dataReceived, payload)
            elif code == CODE_KEEPALIVE:
                pass  # it has refreshed _lastRecv
            elif code == CODE_CLOSE:
                self._ending = SFrameDone("closed-by-peer", payload.decode("utf-8", "replace"))
                self.disconnecting = True  # nothing more is sent after the peer's CLOSE
                self._cancel("_flushCall")
                self._pending = []
                self._cancel("_slowTimer")
                self.transport.loseConnection()
            elif code in RESERVED_CODES:
                self._end(SFrameLost("protocol-error", f"unexpected control frame 0x{code:08x}"))
            elif self._coded:
                self._deliver(self.wrappedProtocol.frameReceived, code, payload)
            else:
                self._deliver(self.wrappedProtocol.dataReceived, payload)
        elif self.factory.isClient:
            if code == CODE_ACCEPT:
                self._open()
            elif code == CODE_CLOSE:
                text = payload.decode("utf-8", "replace")
                error = ClientNotAuthorized(f"the server refused this client: {text}")
                self._end(SFrameLost("not-authorized", text), error)
            else:
                self._end(SFrameLost("protocol-error", "no ACCEPT from the server"))
        else:
            if code != CODE_CONFIRM:
                return self._end(SFrameLost("protocol-error", "the client did not CONFIRM"))
            try:
                if self.peerPublicKey is not None:
                    # the key exchange verified the client already (gossip6):
                    # that identity stays, no other key may replace it
                    if payload:
                        raise ClientNotAuthorized("this handshake authenticated the client; a client proof is refused")
                else:
                    self.peerPublicKey = checkClientProof(
                        payload or None, self._transcript, self.factory.authorizedKeys, SFRAME_LABELS)
            except ClientNotAuthorized as e:
                reason = str(e).encode()[: self.config.maxFramePayload]
                self.transport.write(self._writer.frame(CODE_CLOSE, reason))
                return self._end(SFrameLost("not-authorized", str(e)), flush=True)
            self.transport.write(self._writer.frame(CODE_ACCEPT, b""))
            self._open()

    def _deliver(self, method, *args):
        try:
            method(*args)
        except Exception:
            self.log.failure("sframe: the application protocol failed; closing")
            # nothing more is delivered to it: the frame loop stops on _ending
            self._end(SFrameLost("application-error", "the application protocol raised"))

    def _open(self):
        self._cancel("_timer")
        self.state = OPEN
        log = self.factory.connectionLog
        if log is not None:
            log.opened(_peerTuple(self.transport), _fingerprint(self.peerPublicKey), self.suite)
        # a peer that does not read is paused, not buffered for: the stream's
        # full write buffer pauses our reading until it drains
        self._backpressure = _Backpressure(self)
        self.transport.registerProducer(self._backpressure, True)
        self._scheduleIdle()
        self.wrappedProtocol.makeConnection(self)
        ready = self.factory.takeReady()
        if ready is not None:
            ready.callback(self.wrappedProtocol)

    def _watchSlowPeer(self, restart=False):
        """
        Time each frame from its first byte: a frame that completes restarts
        the clock for the next one, and no clock runs while reading is paused.
        """
        if self._reader.midFrame and not self._paused:
            if restart:
                self._cancel("_slowTimer")
            if self._slowTimer is None:
                self._slowTimer = self.factory.reactor.callLater(self.config.frameTimeout, self._slowPeer)
        else:
            self._cancel("_slowTimer")

    def _scheduleIdle(self):
        c = self.config
        when = min(self._lastRecv + c.idleTimeout, self._lastSend + c.keepaliveInterval,
                   float("inf") if self._writer.rekeyAt is None else self._writer.rekeyAt)
        self._idleCall = self.factory.reactor.callLater(max(0.0, when - self.factory.reactor.seconds()),
                                                        self._idleCheck)

    def _idleCheck(self):
        """
        Close a connection on which nothing arrived for idleTimeout; send a
        KEEPALIVE frame when nothing was sent for keepaliveInterval.
        """
        self._idleCall = None
        if self.state is not OPEN or self._ending is not None or self.disconnecting:
            return
        now = self.factory.reactor.seconds()
        if now - self._lastRecv >= self.config.idleTimeout:
            return self._end(SFrameLost("idle-timeout", f"nothing received for {self.config.idleTimeout:g} s"))
        if self._writer.rekeyAt is not None and now >= self._writer.rekeyAt:
            self._send(self._writer.rekey(now))  # docs/sframe.md section 7.4
        if now - self._lastSend >= self.config.keepaliveInterval:
            self._send(self._writer.frame(CODE_KEEPALIVE, b""))
        self._scheduleIdle()

    def _send(self, data):
        self._lastSend = self.factory.reactor.seconds()
        self.transport.write(data)

    def _slowPeer(self):
        self._slowTimer = None
        self._end(SFrameLost("slow-peer", f"a frame took longer than {self.config.frameTimeout:g} s"))

    def _handshakeTimedOut(self):
        self._timer = None
        error = HandshakeTimeout(f"sframe key exchange not done within {self.config.handshakeTimeout:g} s")
        self._end(SFrameLost("protocol-error", str(error)), error)

    def _end(self, closed, handshakeError=None, flush=False):
        """
        End the connection for C{closed}; a client that never opened fails its
        connect() with C{handshakeError} (or a HandshakeFailed from C{closed}).
        With C{flush}, what was written (a CLOSE frame) goes out first.
        """
        if self._ending is not None:
            return
        self._ending = closed
        if self.state is not OPEN:
            log = self.factory.connectionLog
            if log is not None:
                log.refused(_peerTuple(self.transport), f"{closed.reason}: {closed.detail}" if closed.detail
                            else closed.reason, _fingerprint(self.peerPublicKey))
            self.state = CLOSED
            ready = self.factory.takeReady()
            if ready is not None:
                ready.errback(handshakeError or HandshakeFailed(str(closed)))
        self._cancel("_slowTimer")
        self._cancel("_timer")
        self._cancel("_idleCall")
        if flush:
            self.transport.loseConnection()
        else:
            self.transport.abortConnection()

    def _cancel(self, name):
        call = getattr(self, name)
        if call is not None and call.active():
            call.cancel()
        setattr(self, name, None)

    def connectionLost(self, reason):
        if self._proving is not None:
            self._proving.cancel()
        wasOpen = self.state is OPEN
        self.state = CLOSED
        self.disconnected = True
        self._cancel("_slowTimer")
        self._cancel("_timer")
        self._cancel("_flushCall")
        self._cancel("_idleCall")
        self._pending = []
        ending = self._ending
        if ending is None:
            ending = (SFrameDone("closed") if self.disconnecting and reason.check(ConnectionDone)
                      else SFrameLost("connection-lost", str(reason.value)))
        if wasOpen and self.factory.connectionLog is not None:
            self.factory.connectionLog.ended(_peerTuple(self.transport), ending.reason,
                                             _fingerprint(self.peerPublicKey), self.suite)
        if wasOpen:
            try:
                self.wrappedProtocol.connectionLost(Failure(ending))
            except Exception:
                self.log.failure("sframe: the application protocol failed in connectionLost")
        else:
            ready = self.factory.takeReady()
            if ready is not None:
                ready.errback(HandshakeFailed(f"the connection ended during the sframe key exchange: {ending}"))

    # -- the application above: ITransport ----------------------------------------

    def write(self, data):
        """
        Queue C{data}. Writes made in one reactor turn go out together, in as
        few frames as C{maxFramePayload} allows (streams carry bytes, not
        messages); a full frame's worth goes out at once.
        """
        if self.state is not OPEN or self.disconnecting or not data:
            return
        self._pending.append(data if type(data) is bytes else bytes(data))
        self._pendingSize += len(data)
        if self._pendingSize >= self.config.maxFramePayload:
            self._flushWrites()
        elif self._flushCall is None:
            self._flushCall = self.factory.reactor.callLater(0, self._flushWrites)

    def _flushWrites(self):
        self._cancel("_flushCall")
        if self._pending:
            data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self._pending = []
            self._pendingSize = 0
            self._send(self._writer.frames(CODE_DATA, data))

    def writeSequence(self, data):
        self.write(b"".join(data))

    def writeFrame(self, code, data):
        """
        Send C{data} in frames of the application's C{code}, after any
        queued bytes.
        """
        if code in RESERVED_CODES or not 0 <= code < 2**32:
            raise ValueError(f"frame code 0x{code:x} is reserved for sframe")
        if self.state is OPEN and not self.disconnecting:
            self._flushWrites()
            self._send(self._writer.frames(code, bytes(data)))

    def loseConnection(self):
        if self.disconnecting or self.state is CLOSED:
            return
        if self.state is OPEN:
            self._flushWrites()
            self.transport.write(self._writer.frame(CODE_CLOSE, b""))
        self.disconnecting = True
        self.transport.loseConnection()

    def abortConnection(self):
        self.disconnecting = True
        self.transport.abortConnection()

    def getPeer(self):
        return self.transport.getPeer()

    def getHost(self):
        return self.transport.getHost()

    def registerProducer(self, producer, streaming):
        if self._backpressure is not None:  # the application's producer takes over
            self._backpressure = None
            self.transport.unregisterProducer()
        self.transport.registerProducer(producer, streaming)

    def unregisterProducer(self):
        self.transport.unregisterProducer()

    # -- IPushProducer: the application pauses our reading ---------------------------

    def pauseProducing(self):
        self._paused = True
        self._cancel("_slowTimer")  # our own pause must not make the peer look slow
        self.transport.pauseProducing()

    def resumeProducing(self):
        self._paused = False
        if self.state is OPEN and self._ending is None:
            self._watchSlowPeer(restart=True)
        self.transport.resumeProducing()

    def stopProducing(self):
        self.transport.stopProducing()


class _Backpressure:
    """
    Registered on the stream while the application has no producer of its
    own: when the stream's write buffer is full (the peer does not read),
    the stream pauses it, and it pauses reading from the peer, so an
    application that answers what it reads (an echo) is not made to buffer
    without bound.
    """

    def __init__(self, protocol):
        self.protocol = protocol

    def pauseProducing(self):
        self.protocol.pauseProducing()

    def resumeProducing(self):
        self.protocol.resumeProducing()

    def stopProducing(self):
        pass


def _peerTuple(transport):
    peer = transport.getPeer() if transport is not None else None
    return (getattr(peer, "host", "?"), getattr(peer, "port", 0))


def _fingerprint(key):
    return None if key is None else key.fingerprint()


class SFrameFactory(Factory):
    """
    Wraps an application factory: every connection it builds is framed.
    """

    protocol = SFrameProtocol
    noisy = False

    def __init__(self, wrappedFactory, config, reactor, identity=None, serverKey=None,
                 authorizedKeys=None, ready=None, gossip6=None, isClient=None):
        """
        @param gossip6: a L{sudp.gossip6.stream.Gossip6StreamSetup} to run
            the gossip6 key exchange, or None for sudp/1's.
        @param isClient: which side; by default, a client is one given the
            server's key.
        """
        self.wrappedFactory = wrappedFactory
        self.config = config
        self.reactor = reactor
        self.identity = identity
        self.serverKey = serverKey
        self.isClient = serverKey is not None if isClient is None else isClient
        self.gossip6 = gossip6
        self.authorizedKeys = None if authorizedKeys is None else frozenset(authorizedKeys)
        self._ready = ready
        self.connectionLog = None  # a listener's L{sudp.eventlog.ConnectionLog}

    def takeReady(self):
        """
        @return: the Deferred waiting for the (client) handshake, once.
        """
        ready, self._ready = self._ready, None
        return ready

    def startFactory(self):
        self.wrappedFactory.doStart()

    def stopFactory(self):
        self.wrappedFactory.doStop()

    def buildProtocol(self, addr):
        wrapped = self.wrappedFactory.buildProtocol(addr)
        if wrapped is None:
            return None
        return self.protocol(self, wrapped)
