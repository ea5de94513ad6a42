# -*- test-case-name: sudp_test.udp.test_adapters -*-
"""
Thin Twisted adapters around the sudp/1 engines.

They move datagrams between a UDP port and an engine, run the engine's
timers through C{IReactorTime}, and turn engine events into calls on the
application's protocols. They hold no protocol logic.
"""

import errno
import socket

from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from sudp.engine import drain
from sudp.eventlog import ConnectionLog
from sudp.udp.overflow import OverflowWatch
from sudp.udp.batching import senderFor
from sudp.offthread import runOffThread
from sudp.work import WorkNeeded
from sudp.udp.events import (
    ClientRefused,
    DeliveryFailed,
    HandshakeFailure,
    MessageReceived,
    SessionEnded,
    SessionOpened,
    ServerKeyAnnounced,
)
from sudp.udp.transport import SessionTransport, lostReason, udpAddress

OVERFLOW_LOG_INTERVAL = 60.0  # seconds between two receive-buffer warnings of one port
_SEND_DROPS = (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS, errno.ECONNREFUSED, errno.EMSGSIZE)


class EngineAdapter(DatagramProtocol):
    """
    What server and client adapters share: output, events, timers.
    """

    log = Logger()
    noisy = False

    def __init__(self, engine, factory, reactor):
        self.engine = engine
        self.factory = factory
        self.reactor = reactor
        self._call = None
        self._callAt = None
        self._flushing = False
        self._readAt = None  # the time of the read being handled, if one is
        self._sender = None
        self.sendErrors = 0
        self._overflow = None
        self._overflowLoggedAt = None
        # each session's transport: the engine holds no Twisted object
        self._transports = {}

    # -- the socket's receive buffer -----------------------------------------

    def startProtocol(self):
        """
        The port listens: watch its receive buffer for overflows.
        """
        sock = getattr(self.transport, "socket", None)
        if sock is not None:
            self._overflow = OverflowWatch(self.reactor, sock, self.engine.config.overflowCheckInterval,
                                           self._receiveBufferOverflowed)
            self._overflow.start()

    def stopProtocol(self):
        if self._overflow is not None:
            self._overflow.stop()

    def checkReceiveBuffer(self):
        """
        Read the kernel's drop count at once (L{OverflowWatch.check}); the
        adapter also does every C{overflowCheckInterval} seconds.

        @return: the datagrams dropped since the port opened, or None if
            the system does not say.
        """
        return None if self._overflow is None else self._overflow.check()

    def _receiveBufferOverflowed(self, new, total):
        """
        The kernel dropped C{new} more datagrams at this port: count them as
        C{receive-buffer-overflow}, and log it (at most once a minute).
        """
        self.engine.drops["receive-buffer-overflow"] += new
        session = getattr(self.engine, "session", None)  # a client's socket is its session's
        if session is not None:
            session.stats["kernelDrops"] = session.stats.get("kernelDrops", 0) + new
        now = self.reactor.seconds()
        if self._overflowLoggedAt is not None and now - self._overflowLoggedAt < OVERFLOW_LOG_INTERVAL:
            return
        self._overflowLoggedAt = now
        size = self.transport.socket.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self.log.warn(
            "sudp: UDP port {port}: the kernel dropped {new} datagrams ({total} since the port opened): its "
            "receive buffer ({size} bytes) overflowed, and those messages are lost. The application reads "
            "slower than they come: raise recvBuffer= (e.g. recvBuffer=4194304, within net.core.rmem_max), "
            "send in smaller bursts, or use sframe: for request/response over a stream",
            port=self.transport.getHost().port, new=new, total=total, size=size,
        )

    # -- output --------------------------------------------------------------

    def _gsoSender(self):
        self._sender = senderFor(self._sender, self.transport.socket, self.engine.config.gso)
        return self._sender

    def _sendFailed(self, count, error, addr):
        """
        Count lost datagrams; warn unless the loss is UDP's ordinary kind.
        """
        # UDP is lossy: a full buffer or an ICMP error loses datagrams
        if error.errno not in _SEND_DROPS:
            self.log.warn("sudp: send to {addr} failed: {error}", addr=addr, error=error)
        self.sendErrors += count

    def flush(self):
        """
        Send what the engine has queued, deliver its events, and reschedule
        its timer. Re-entrant calls (a protocol writing from dataReceived)
        return at once; the outer loop picks up their output.
        """
        if self._flushing:
            return
        self._flushing = True
        try:
            drain(self.engine, self._sendAll, self._handle)
        finally:
            self._flushing = False
        self._schedule()

    def feed(self, groups):
        """
        Hand one read, C{(datagrams, addr)} runs, to the engine, then flush
        once. Writes the application makes meanwhile (the engine calls its
        protocol directly: L{sudp.udp.delivery}) wait for that flush, so
        replies to a read leave together (one C{sendmmsg}, GSO batches).
        """
        receive = self.engine.receiveDatagrams

        def handle(now):
            for datagrams, addr in groups:
                receive(datagrams, addr, now)

        self._read(handle)
        self.flush()

    def _read(self, handle):
        """
        Run C{handle(now)} as one read: until it returns, flushes wait (the
        caller flushes after it) and writes are sealed at the read's time.

        @return: what C{handle} returns.
        """
        now = self._readAt = self.reactor.seconds()
        held, self._flushing = self._flushing, True
        try:
            return handle(now)
        finally:
            self._flushing = held
            self._readAt = None

    def readFrom(self, receiver):
        """
        Called by L{sudp.udp.batching.GROPort} for each batched read:
        C{receiver} (its C{sudp._speedups.Receiver}) reads once, straight
        into the engine (L{sudp.udp.datapath.BatchReceiver.receiveRead}),
        then one flush, as L{feed} does.

        @return: C{(datagrams, bytes)} read; C{(0, 0)} when none was
            waiting (and nothing is flushed).
        @raise OSError: if the read fails.
        """
        got = self._read(lambda now: self.engine.receiveRead(receiver, now))
        if got[0]:
            self.flush()
        return got

    def _sendAll(self, out):
        """
        Send C{(datagram, addr)} pairs: runs to one address as GSO batches,
        everything in as few system calls as the kernel and the speedups
        allow (L{GSOSender.sendAll}); order to each address is kept.
        """
        transport = self.transport
        if transport is None:  # the port has stopped
            return
        sender = self._sender
        if sender is None or sender.sock is not transport.socket:
            sender = self._gsoSender()
        failed, error = sender.sendAll(out)
        if failed:
            self._sendFailed(failed, error, out[0][1] if len(out) == 1 else "several peers")

    def _handle(self, event):
        if type(event) is MessageReceived:
            transport = self._transports.get(event.session)
            # after loseConnection nothing more is read, as with Twisted's TCP
            if transport is not None and transport.protocol is not None and not transport.disconnecting:
                try:
                    transport.protocol.dataReceived(event.message)
                except Exception:
                    self._dataReceivedFailed(transport, Failure())
        elif type(event) is DeliveryFailed:
            transport = self._transports.get(event.session)
            if transport is not None:
                self._dataReceivedFailed(transport, Failure(event.error))
        elif type(event) is SessionOpened:
            self._opened(event.session)
        elif type(event) is SessionEnded:
            self._ended(event.session, event.reason)
        elif type(event) is HandshakeFailure:
            self._handshakeFailed(event.error)
        elif type(event) is WorkNeeded:
            self._solve(event.job)
        elif type(event) is ClientRefused:
            self._refused(event)
        elif type(event) is ServerKeyAnnounced:
            self._nextServerKey(event)

    def _dataReceivedFailed(self, transport, failure):
        """
        The application protocol raised in C{dataReceived}: log it and close
        its session.
        """
        self.log.failure("sudp: application protocol failed in dataReceived; closing its session", failure)
        transport.loseConnection()

    def _nextServerKey(self, event):  # pragma: no cover - client only
        pass

    def _refused(self, event):  # pragma: no cover - server only
        pass

    def _solve(self, job):
        """
        Run work the handshake asked for (L{sudp.work}) in the reactor's
        thread pool: the reactor goes on meanwhile, and the engine hears
        when it is done.
        """
        def done(job, now):
            self.engine.workDone(job, now)
            self.flush()

        def failed(job, now):
            self.engine.workFailed(job, now)
            self.flush()

        runOffThread(self.reactor, job, done, failed, "sudp")

    def _bind(self, session):
        """
        Build the application protocol for a new session.

        @return: the protocol, or None if the factory refused.
        """
        addr = udpAddress(session.peerAddr)
        try:
            protocol = self.factory.buildProtocol(addr)
        except Exception:
            self.log.failure("sudp: the application factory failed in buildProtocol")
            protocol = None
        if protocol is None:
            return None
        transport = SessionTransport(self, session)
        transport.protocol = protocol
        self._transports[session] = transport
        protocol.makeConnection(transport)
        return protocol

    def _ended(self, session, reason):
        transport = self._transports.pop(session, None)
        if transport is None:
            return
        transport.connected = False
        self.engine.deliverTo(session, None)
        if transport.protocol is not None:
            try:
                transport.protocol.connectionLost(Failure(lostReason(reason)))
            except Exception:
                self.log.failure("sudp: application protocol failed in connectionLost")

    def _handshakeFailed(self, error):  # pragma: no cover - client only
        pass

    # -- timers --------------------------------------------------------------

    def _schedule(self):
        when = self.engine.nextDeadline()
        call = self._call
        if when is None:
            if call is not None and call.active():
                call.cancel()
            self._call = None
            return
        if call is not None and call.active() and self._callAt <= when:
            return
        delay = max(0.0, when - self.reactor.seconds())
        if call is not None and call.active():
            call.reset(delay)
        else:
            self._call = self.reactor.callLater(delay, self._onTimer)
        self._callAt = when

    def _onTimer(self):
        self._call = None
        self.engine.handleTimer(self.reactor.seconds())
        self.flush()

    def _stopTimer(self):
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    # -- application side ----------------------------------------------------

    def sendMessage(self, session, message):
        """
        Called by L{SessionTransport.write}. Inside a read (a protocol
        answering in C{dataReceived}) the message waits for that read's
        flush, and shares its time.
        """
        now = self._readAt
        if now is not None:
            self.engine.sendMessage(session, message, now)
            return
        self.engine.sendMessage(session, message, self.reactor.seconds())
        self.flush()

    def sendMessages(self, session, messages):
        """
        Called by L{SessionTransport.writeMessages}: seal them all, then send
        them in one flush (GSO batches where the kernel allows).
        """
        try:
            self.engine.sendMessages(session, messages, self.reactor.seconds())
        finally:
            self.flush()

    def closeSession(self, session):
        """
        Called by L{SessionTransport.loseConnection}.
        """
        self.engine.closeSession(session, self.reactor.seconds())
        self.flush()

    def getHost(self):
        return self.transport.getHost()


class ServerAdapter(EngineAdapter):
    """
    Serves a L{sudp.udp.server.ServerEngine} on one UDP port; every session
    that opens gets a protocol from the application's factory.

    @ivar connectionLog: the L{ConnectionLog} that reports each refused
        client and each session opened and ended, rate-limited.
    """

    def __init__(self, engine, factory, reactor):
        EngineAdapter.__init__(self, engine, factory, reactor)
        self.connectionLog = ConnectionLog(reactor, transport="udp")

    def datagramReceived(self, data, addr):
        self.feed((((data,), addr),))

    def datagramsReceived(self, datagrams, addr):
        """
        A GRO read: every datagram through the engine, then one flush (so the
        replies go out as GSO batches too).
        """
        self.feed(((datagrams, addr),))

    def batchReceived(self, groups):
        """
        One C{recvmmsg} read, as C{(datagrams, addr)} runs: all through the
        engine, then one flush (replies to many clients in one C{sendmmsg}).
        """
        self.feed(groups)

    def _opened(self, session):
        self.connectionLog.opened(session.peerAddr, _fingerprint(session.peerKey), session.suite.name)
        if self._bind(session) is None:
            self.engine.closeSession(session, self.reactor.seconds(), text="the application refused the session")

    def _ended(self, session, reason):
        self.connectionLog.ended(session.peerAddr, reason.reason, _fingerprint(session.peerKey),
                                 session.suite.name)
        EngineAdapter._ended(self, session, reason)

    def _refused(self, event):
        suite = event.suite.name if event.suite is not None else None
        self.connectionLog.refused(event.addr, event.reason, _fingerprint(event.peerKey), suite)

    def shutdown(self):
        """
        Close every session (telling each client) and stop the timers.
        """
        self.engine.shutdown(self.reactor.seconds())
        self.flush()
        self._stopTimer()
        self.stopProtocol()


def _fingerprint(key):
    """
    @return: C{key}'s fingerprint, or None without a key.
    """
    return None if key is None else key.fingerprint()
