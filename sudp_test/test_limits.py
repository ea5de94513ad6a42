"""
Every limit hit on purpose over real sockets on 127.0.0.1: each gives its
clear error or counted drop, and the server keeps serving everyone else.

A "bystander" client is connected before each limit is hit and must get
its echo back before, while and after the limit bites.
"""

import os
import socket

from twisted.internet import defer, reactor
from twisted.internet.endpoints import clientFromString
from twisted.trial import unittest

from sudp.errors import HandshakeTimeout, MessageTooLarge
from sudp.stream.protocol import SFrameLost
from sudp.udp.transport import SessionLost
from sudp_test.enginehelpers import makeInit
from sudp_test.test_sframe_integration import SFrameTestMixin
from sudp_test.test_udp_integration import Recorder, RecorderFactory, SUDPIntegrationMixin, sleep

FAST = ":handshakeTimeout=1:retransmitInitial=0.2:retransmitMax=0.4"


class EchoRecorder(Recorder):
    """
    A server-side protocol that records what it is sent and echoes it.
    """

    def dataReceived(self, data):
        Recorder.dataReceived(self, data)
        self.transport.write(data)


class _NoTimers:
    """
    A reactor stand-in for a client that has died: time goes on, timers are
    never run.
    """

    def seconds(self):
        return reactor.seconds()

    def callLater(self, delay, f, *args):
        return _NeverCall()


class _NeverCall:
    def active(self):
        return False

    def cancel(self):
        pass


class BystanderMixin:
    """
    A connected client whose echo proves the server still serves others.
    """

    @defer.inlineCallbacks
    def bystander(self, options=FAST):
        self.by = yield self.connect(options)
        self.pings = 0
        yield self.ping()
        return self.by

    @defer.inlineCallbacks
    def ping(self):
        self.pings += 1
        self.by.transport.write(b"ping %d" % self.pings)
        got = yield self.by.waitFor(self.pings)
        self.assertEqual(got[-1], b"ping %d" % self.pings)


class UDPLimitTests(BystanderMixin, SUDPIntegrationMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def test_maxSessions(self):
        """
        maxSessions=3: the fourth client's handshake is dropped as
        server-full and its connect fails with HandshakeTimeout; when a
        session ends, a new client gets in. The others are served
        throughout.
        """
        yield self.listen(options=FAST + ":maxSessions=3")
        yield self.bystander()
        others = []
        for _ in range(2):
            others.append((yield self.connect(FAST)))
        yield self.assertFailure(self.endpoint(FAST).connect(RecorderFactory()), HandshakeTimeout)
        drops = self.port.engine.stats()["drops"]
        self.assertGreaterEqual(drops.get("server-full", 0), 1)
        yield self.ping()
        others[0].transport.loseConnection()
        yield others[0].lost
        late = yield self.connect(FAST)
        late.transport.write(b"in")
        self.assertEqual((yield late.waitFor(1)), [b"in"])
        yield self.ping()
        self.assertEqual(self.port.engine.stats()["sessions"], 3)

    @defer.inlineCallbacks
    def test_maxPendingHandshakes(self):
        """
        maxPendingHandshakes=2: two handshakes left unconfirmed (INITs with
        valid cookies, never confirmed) fill the table; a real client's
        INIT is dropped as too-many-pending and its connect times out; after
        handshakeTimeout the two expire (handshake-expired) and a client
        connects. The bystander is served throughout.
        """
        yield self.listen(options=FAST + ":maxPendingHandshakes=2")
        yield self.bystander()
        engine = self.port.engine
        held = []
        for i in range(2):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            self.addCleanup(s.close)
            host, port = s.getsockname()
            timestamp, cookie = engine.cookies.make(host, port, reactor.seconds())
            s.sendto(makeInit(timestamp, cookie, senderIndex=100 + i), ("127.0.0.1", self.port.getHost().port))
            held.append(s)
        yield sleep(0.1)
        self.assertEqual(engine.stats()["pending"], 2)
        yield self.assertFailure(self.endpoint(FAST).connect(RecorderFactory()), HandshakeTimeout)
        self.assertGreaterEqual(engine.stats()["drops"].get("too-many-pending", 0), 1)
        yield self.ping()
        for _ in range(30):
            if engine.stats()["pending"] == 0:
                break
            yield sleep(0.1)
        self.assertEqual(engine.stats()["pending"], 0)
        self.assertEqual(engine.stats()["drops"]["handshake-expired"], 2)
        client = yield self.connect(FAST)
        client.transport.write(b"now")
        self.assertEqual((yield client.waitFor(1)), [b"now"])
        yield self.ping()

    @defer.inlineCallbacks
    def test_messageTooLarge(self):
        """
        A message over maxMessageSize raises MessageTooLarge (with the size
        and the limit) before anything is sent, from write and from
        writeMessages; the session goes on, and a message of exactly the
        limit is delivered.
        """
        yield self.listen(options=":maxDatagramSize=1000")
        yield self.bystander(":maxDatagramSize=1000")
        limit = self.by.transport.maxMessageSize
        self.assertEqual(limit, 1000 - 29)
        e = self.assertRaises(MessageTooLarge, self.by.transport.write, b"x" * (limit + 1))
        self.assertEqual((e.size, e.limit), (limit + 1, limit))
        self.assertRaises(MessageTooLarge, self.by.transport.writeMessages, [b"a", b"x" * (limit + 1)])
        exact = os.urandom(limit)
        self.by.transport.write(exact)
        got = yield self.by.waitFor(self.pings + 1)
        self.assertEqual(got[-1], exact)
        self.pings += 1
        yield self.ping()
        self.assertEqual(self.by.transport._session.stats["sent"], self.pings)

    @defer.inlineCallbacks
    def test_idleTimeout(self):
        """
        A client that goes silent without a CLOSE (its socket gone) has its
        server session ended after idleTimeout, with the reason
        idle-timeout; a client that keeps talking (keepalives faster than
        the timeout) is kept.
        """
        factory = RecorderFactory(EchoRecorder)
        yield self.listen(factory, options=":idleTimeout=1:keepaliveInterval=0.3")
        yield self.bystander(":idleTimeout=1:keepaliveInterval=0.3")
        dead = yield self.endpoint(":idleTimeout=30:keepaliveInterval=20").connect(RecorderFactory())
        serverSide = factory.protocols[-1]
        # the client dies: its timers stop and its socket closes, no CLOSE sent
        adapter = dead.transport._adapter
        adapter._onEnd = None
        yield adapter.transport.stopListening()
        adapter._stopTimer()
        adapter.reactor = _NoTimers()  # a dead process schedules nothing more
        reason = yield serverSide.lost
        self.assertIsInstance(reason, SessionLost)
        self.assertEqual(reason.reason, "idle-timeout")
        yield self.ping()
        yield sleep(1.2)  # past the idle timeout: the bystander's keepalives kept it
        yield self.ping()
        self.assertEqual(self.port.engine.stats()["sessions"], 1)

    @defer.inlineCallbacks
    def test_handshakeTimeout(self):
        """
        A client whose server never answers fails with HandshakeTimeout
        after handshakeTimeout, having retransmitted with backoff.
        """
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        self.addCleanup(s.close)
        key = self.identity.publicKey.toText()
        endpoint = clientFromString(
            reactor, f"sudp:host=127.0.0.1:port={s.getsockname()[1]}:serverKey={key}{FAST}")
        start = reactor.seconds()
        yield self.assertFailure(endpoint.connect(RecorderFactory()), HandshakeTimeout)
        self.assertGreaterEqual(reactor.seconds() - start, 1.0)
        s.setblocking(False)
        hellos = 0
        while True:
            try:
                s.recv(2048)
                hellos += 1
            except BlockingIOError:
                break
        self.assertGreaterEqual(hellos, 3)  # 0, 0.2, 0.6 s at least


class SFrameLimitTests(BystanderMixin, SFrameTestMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def test_frameTooLarge(self):
        """
        A peer whose frames are larger than the server's maxFramePayload
        loses its connection with SFrameLost('frame-too-large'), found from
        the header before the payload is buffered; another connection to
        the same server is served throughout.
        """
        factory = RecorderFactory(EchoRecorder)
        yield self.listen(factory, options=":maxFramePayload=1024")
        yield self.bystander(":maxFramePayload=1024")
        big = yield self.connect(":maxFramePayload=65536")
        serverSide = factory.protocols[-1]
        big.transport.write(b"x" * 5000)  # one 5000-byte frame from this client
        reason = yield serverSide.lost
        self.assertIsInstance(reason, SFrameLost)
        self.assertEqual(reason.reason, "frame-too-large")
        yield big.lost
        yield self.ping()
        # the bystander's own large write is split into frames within the
        # limit, and all of it comes back
        payload = os.urandom(5000)
        self.by.transport.write(payload)
        for _ in range(100):
            echoed = b"".join(self.by.messages[self.pings:])
            if len(echoed) >= len(payload):
                break
            yield sleep(0.05)
        self.assertEqual(echoed, payload)
        self.assertGreaterEqual(len(self.by.messages) - self.pings, 5)  # in frames of at most 1024
