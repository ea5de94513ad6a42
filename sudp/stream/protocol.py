# -*- test-case-name: sudp_test.stream.test_protocol -*-
"""
L{SFrameProtocol}: sframe between a stream transport (TCP, UNIX, TLS, ...)
and an application protocol, in the shape of C{twisted.protocols.tls}.

The protocol logic is the sans-IO L{sudp.stream.connection.StreamConnection};
this wrapper moves bytes in and out, runs its one timer, and hands its
events to the application protocol, the client's ready Deferred and the
connection log. The application protocol sees only verified bytes and is
connected only once the key exchange is done. Flow control passes through:
producers the application registers are registered on the stream below,
and pausing the wrapper pauses reading from it.
"""

from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IPushProducer, ITransport
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface, implementer

from sudp.offthread import runOffThread
from sudp.stream.connection import StreamConnection
from sudp.stream.events import CloseStream, DataReceived, Ended, FrameReceived, Opened, SFrameClosed
from sudp.stream.frames import CODE_DATA
from sudp.work import WorkNeeded


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


class SFrameDone(SFrameClosed, ConnectionDone):
    """
    A clean close by either side.
    """


class SFrameLost(SFrameClosed, ConnectionLost):
    """
    Any other end: integrity failure, slow peer, protocol error...
    """


def _failure(closed):
    """
    @return: a Failure of the Twisted kind of the engine's L{SFrameClosed}.
    """
    return Failure((SFrameDone if closed.clean else SFrameLost)(closed.reason, closed.detail))


@implementer(ITransport, IPushProducer, ISFrameTransport)
class SFrameProtocol(Protocol):
    """
    @ivar wrappedProtocol: the application protocol.
    @ivar engine: the connection's L{StreamConnection}.
    """

    log = Logger()

    def __init__(self, factory, wrappedProtocol):
        self.factory = factory
        self.wrappedProtocol = wrappedProtocol
        self.engine = StreamConnection(factory.keyExchanges(), factory.config, factory.isClient,
                                       factory.authorizedKeys)
        self._reactor = factory.reactor
        self._coded = IFrameReceiver.providedBy(wrappedProtocol)
        self._call = self._callAt = None
        self._appFailed = False  # nothing more goes to an application that raised
        self._backpressure = None  # our producer on the stream, while the application has none
        self.disconnected = False

    peerPublicKey = property(lambda self: self.engine.peerKey, doc="The peer's verified key, or None.")
    suite = property(lambda self: self.engine.suite, doc="The stream suite's name.")
    disconnecting = property(lambda self: self.engine.closing, doc="True once closing.")

    # -- the engine ---------------------------------------------------------------

    def _pump(self):
        """
        Write what the engine has to send and act on its events, until it
        has nothing more; then set the timer for its next deadline.
        """
        engine = self.engine
        while True:
            data = engine.dataToSend()
            if data:
                self.transport.write(data)
            events = engine.nextEvents()
            if not events:
                break
            for event in events:
                self._handlers[type(event)](self, event)
        self._schedule()

    def _schedule(self):
        """
        Have the timer run at the engine's next deadline. A timer already
        set for no later stays (it may run early: nothing is due then, and
        it is set again), so that moving deadlines cost no reactor calls.
        """
        when = self.engine.nextDeadline()
        call = self._call
        if call is not None and call.active():
            if when is not None and self._callAt <= when:
                return
            call.cancel()
        self._call, self._callAt = None, when
        if when is not None:
            self._call = self._reactor.callLater(max(0.0, when - self._reactor.seconds()), self._onTimer)

    def _onTimer(self):
        self._call = None
        # the timer was set for _callAt: that moment has come (whatever the float rounding)
        self.engine.handleTimer(max(self._reactor.seconds(), self._callAt))
        self._pump()



    def _opened(self, event):
        log = self.factory.connectionLog
        if log is not None:
            log.opened(self._peer(), _fingerprint(event.peerKey), event.suite)
        # a peer that does not read is paused, not buffered for: the stream's
        # full write buffer pauses our reading until it drains
        self._backpressure = _Backpressure(self)
        self.transport.registerProducer(self._backpressure, True)
        self.wrappedProtocol.makeConnection(self)
        ready = self.factory.takeReady()
        if ready is not None:
            ready.callback(self.wrappedProtocol)

    def _received(self, event):
        if self._appFailed:
            return
        if type(event) is DataReceived:
            code, payload = CODE_DATA, event.data
        else:
            code, payload = event.code, event.payload
        try:
            if self._coded:
                self.wrappedProtocol.frameReceived(code, payload)
            else:
                self.wrappedProtocol.dataReceived(payload)
        except Exception:  # the application's code: it is disconnected, not the reactor
            self.log.failure("sframe: the application protocol failed; closing")
            self._appFailed = True
            self.engine.applicationFailed(self._reactor.seconds())

    def _closeStream(self, event):
        if event.abort:
            self.transport.abortConnection()
        else:
            self.transport.loseConnection()

    def _ended(self, event):
        log, closed = self.factory.connectionLog, event.reason
        if event.handshakeError is None:
            if log is not None:
                log.ended(self._peer(), closed.reason, _fingerprint(self.peerPublicKey), self.suite)
            try:
                self.wrappedProtocol.connectionLost(_failure(closed))
            except Exception:  # the application's code
                self.log.failure("sframe: the application protocol failed in connectionLost")
            return
        if event.refused and log is not None:
            log.refused(self._peer(), closed.describe(), _fingerprint(self.peerPublicKey))
        ready = self.factory.takeReady()
        if ready is not None:
            ready.errback(event.handshakeError)

    def _work(self, event):
        runOffThread(self._reactor, event.job, self._workDone, self._workFailed, "sframe")

    def _workDone(self, job, now):
        self.engine.workDone(job, now)
        self._pump()

    def _workFailed(self, job, now):
        self.engine.workFailed(job, now)
        self._pump()

    _handlers = {Opened: _opened, DataReceived: _received, FrameReceived: _received,
                 CloseStream: _closeStream, Ended: _ended, WorkNeeded: _work}

    def _peer(self):
        return self.engine.peerAddr or ("?", 0)

    # -- the stream below ---------------------------------------------------------

    def connectionMade(self):
        self.engine.start(self._reactor.seconds(), _address(self.transport.getHost()),
                          _address(self.transport.getPeer()))
        self._pump()

    def dataReceived(self, data):
        self.engine.receiveData(data, self._reactor.seconds())
        self._pump()

    def connectionLost(self, reason):
        self.disconnected = True
        self.engine.connectionLost(self._reactor.seconds(), reason.check(ConnectionDone) is not None,
                                   str(reason.value))
        self._pump()

    # -- the application above: ITransport ----------------------------------------

    def write(self, data):
        """
        Queue C{data}. Writes made in one reactor turn go out together, in as
        few frames as C{maxFramePayload} allows (streams carry bytes, not
        messages); a full frame's worth goes out at once.
        """
        now = self._reactor.seconds()
        # bytes that only wait for a timer due this turn (many small writes): that is all
        if self.engine.sendData(data, now) or self._call is None or self._callAt > now:
            self._pump()

    def writeSequence(self, data):
        self.write(b"".join(data))

    def writeFrame(self, code, data):
        """
        Send C{data} in frames of the application's C{code}, after any
        queued bytes.
        """
        self.engine.writeFrame(code, data, self._reactor.seconds())
        self._pump()

    def loseConnection(self):
        self.engine.close(self._reactor.seconds())
        self._pump()

    def abortConnection(self):
        self.engine.abort(self._reactor.seconds())
        self._pump()

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
        self.engine.pauseReading(self._reactor.seconds())
        self._schedule()
        self.transport.pauseProducing()

    def resumeProducing(self):
        self.engine.resumeReading(self._reactor.seconds())
        self._schedule()
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


def _address(address):
    """
    @return: C{(host, port)} of a Twisted IP address, or None for other kinds.
    """
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    return None if host is None or port is None else (host, port)


def _fingerprint(key):
    return None if key is None else key.fingerprint()


class SFrameFactory(Factory):
    """
    Wraps an application factory: every connection it builds is framed.
    """

    protocol = SFrameProtocol
    noisy = False

    def __init__(self, wrappedFactory, config, reactor, keyExchanges, authorizedKeys=None, ready=None,
                 isClient=False):
        """
        @param keyExchanges: called with no argument for each connection:
            returns a fresh L{sudp.interfaces.IStreamKeyExchange} (sudp/1's
            L{sudp.stream.handshake.ClientKeyExchange} or
            L{sudp.stream.handshake.ServerKeyExchange}, or another
            handshake's).
        @param authorizedKeys: (a server) the client keys let in, or None
            for any client.
        @param ready: (a client) a Deferred fired with the application
            protocol once the connection is open, or failed with why not.
        @param isClient: which side this is.
        """
        self.wrappedFactory = wrappedFactory
        self.config = config
        self.reactor = reactor
        self.keyExchanges = keyExchanges
        self.isClient = isClient
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
