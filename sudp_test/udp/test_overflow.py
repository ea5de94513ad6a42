# -*- test-case-name: sudp_test.udp.test_overflow -*-
"""
Tests for L{sudp.udp.overflow}: datagrams the kernel drops at a full
receive buffer are counted and logged (the landed code lost them silently:
an AMP application on C{sudp:} saw 52 of 1,000 calls in a burst never
return, and nothing said why).
"""

import os
import socket
import struct

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest

from sudp.keys import Identity, saveIdentity
from sudp.udp.overflow import kernelDrops, OverflowWatch

from sudp_test.waiting import waitUntil

def overflowedSocket(count=500):
    """
    @return: a socket with a small receive buffer that the kernel dropped
        datagrams at, and the sender used.
    """
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    receiver.bind(("127.0.0.1", 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(count):
        sender.sendto(b"x" * 1000, receiver.getsockname())
    return receiver, sender

class KernelDropsTests(unittest.TestCase):
    def test_countsWhatTheKernelDropped(self):
        receiver, sender = overflowedSocket()
        self.addCleanup(receiver.close)
        self.addCleanup(sender.close)
        drops = kernelDrops(receiver)
        if drops is None:
            raise unittest.SkipTest("this system does not report socket drops (SO_MEMINFO)")
        self.assertGreater(drops, 0)
        self.assertLess(drops, 500)

    def test_unknownIsNone(self):
        class NoMeminfo:
            def getsockopt(self, *args):
                raise OSError(92, "Protocol not available")

        self.assertIsNone(kernelDrops(NoMeminfo()))

class FakeSocket:
    def __init__(self):
        self.drops = 7  # dropped before the watch started: not counted

    def getsockopt(self, level, name, size):
        return struct.pack("=9I", 0, 0, 0, 0, 0, 0, 0, 0, self.drops)

class OverflowWatchTests(unittest.TestCase):
    def test_reportsEachRise(self):
        clock, sock, seen = Clock(), FakeSocket(), []
        watch = OverflowWatch(clock, sock, 1.0, lambda new, total: seen.append((new, total)))
        watch.start()
        clock.advance(1)
        self.assertEqual(seen, [])
        sock.drops += 5
        clock.advance(1)
        sock.drops += 2
        clock.advance(1)
        clock.advance(1)
        self.assertEqual(seen, [(5, 5), (2, 7)])
        self.assertEqual(watch.check(), 7)
        watch.stop()
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_zeroIntervalNeverPolls(self):
        clock, sock, seen = Clock(), FakeSocket(), []
        watch = OverflowWatch(clock, sock, 0, lambda new, total: seen.append(new))
        watch.start()
        self.assertEqual(clock.getDelayedCalls(), [])
        sock.drops += 3
        self.assertEqual(watch.check(), 3)  # still readable on demand
        self.assertEqual(seen, [3])

class _Burst(protocol.Protocol):
    def dataReceived(self, data):
        # the client asked: answer with a burst larger than its receive buffer, all at once
        for i in range(300):
            self.transport.write(b"%04d" % i + b"y" * 1000)

class _Count(protocol.Protocol):
    def __init__(self):
        self.count = 0

    def dataReceived(self, data):
        self.count += 1

class SessionOverflowTests(unittest.TestCase):
    """
    Over real sockets: a client whose receive buffer overflows counts it,
    shows it in its session's stats, and logs what to do.
    """

    timeout = 30

    @defer.inlineCallbacks
    def test_clientOverflowCountedAndLogged(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            known = kernelDrops(probe) is not None
        if not known:
            raise unittest.SkipTest("this system does not report socket drops (SO_MEMINFO)")
        warnings = []

        def observe(event):
            if "receive buffer" in (event.get("log_format") or ""):
                warnings.append(formatEvent(event))

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        directory = self.mktemp()
        os.makedirs(directory)
        key = os.path.join(directory, "server.key")
        identity = Identity.generate()
        saveIdentity(identity, key)
        port = yield serverFromString(reactor, f"sudp:0:key={key}:interface=127.0.0.1").listen(
            protocol.Factory.forProtocol(_Burst))
        self.addCleanup(port.stopListening)
        client = yield clientFromString(
            reactor, f"sudp:host=127.0.0.1:port={port.getHost().port}:serverKey={identity.publicKey.toText()}"
                     f":recvBuffer=4096:overflowCheckInterval=0.2").connect(protocol.Factory.forProtocol(_Count))
        self.addCleanup(client.transport.loseConnection)
        client.transport.write(b"go")
        yield waitUntil(lambda: client.transport.stats.get("kernelDrops", 0) > 0, "the overflow to be seen")
        lost = client.transport.stats["kernelDrops"]
        self.assertLessEqual(client.count + lost, 300)
        self.assertGreater(lost, 0)
        [warning] = warnings
        self.assertIn("overflowed", warning)
        self.assertIn("recvBuffer=", warning)
