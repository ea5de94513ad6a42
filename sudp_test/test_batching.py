"""
UDP GSO and GRO, and the fallbacks where the kernel refuses them, over real
sockets on 127.0.0.1.
"""

import errno
import os
import socket

from twisted.internet import defer, protocol, reactor
from twisted.trial import unittest

from sudp.udp import batching
from sudp_test.test_udp_integration import RecorderFactory, SUDPIntegrationMixin, sleep


def receiver():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    return sock


def readAll(sock, count):
    return [sock.recv(65535) for _ in range(count)]


class Refusing:
    """
    A socket whose segmented sends the kernel refuses.
    """

    def __init__(self, sock):
        self.sock = sock
        self.sendmsgCalls = 0

    def sendmsg(self, *args):
        self.sendmsgCalls += 1
        raise OSError(errno.EIO, "GSO not supported here")

    def sendto(self, data, addr):
        return self.sock.sendto(data, addr)


class GSOSenderTests(unittest.TestCase):
    def setUp(self):
        self.rx = receiver()
        self.addCleanup(self.rx.close)
        self.tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(self.tx.close)
        self.addr = self.rx.getsockname()

    def test_batches(self):
        """
        Datagrams of one size go out in segmented sends of at most 64, a
        shorter one ends a batch, and the receiver gets every datagram intact
        and in order.
        """
        packets = [os.urandom(100) for _ in range(150)] + [os.urandom(40)] + [os.urandom(300) for _ in range(3)]
        sender = batching.GSOSender(self.tx)
        sender.send(packets, self.addr)
        self.assertEqual(readAll(self.rx, len(packets)), packets)
        # 150 x 100 B + one 40 B: batches of 64, 64, 23 (with the 40 B last); then 3 x 300 B
        self.assertEqual(sender.batches, 4)
        self.assertEqual(sender.singles, 0)
        self.assertTrue(sender.gso)

    def test_sizeLimit(self):
        """
        A batch never exceeds what one UDP datagram may carry (65,507 bytes).
        """
        packets = [os.urandom(1400) for _ in range(60)]
        sender = batching.GSOSender(self.tx)
        sender.send(packets, self.addr)
        self.assertEqual(readAll(self.rx, 60), packets)
        self.assertEqual(sender.batches, 2)  # 46 x 1400 = 64,400 fits; 47 does not

    def test_fallback(self):
        """
        Where the kernel refuses segmented sends, the sender turns GSO off
        and sends each datagram by itself; nothing is lost.
        """
        refusing = Refusing(self.tx)
        sender = batching.GSOSender(refusing)
        packets = [os.urandom(64) for _ in range(10)]
        sender.send(packets, self.addr)
        sender.send(packets, self.addr)
        self.assertEqual(readAll(self.rx, 20), packets + packets)
        self.assertFalse(sender.gso)
        self.assertEqual(refusing.sendmsgCalls, 1)
        self.assertEqual(sender.singles, 20)

    def test_disabled(self):
        """
        gso=False sends one datagram per call.
        """
        sender = batching.GSOSender(self.tx, enabled=False)
        packets = [os.urandom(64) for _ in range(5)]
        sender.send(packets, self.addr)
        self.assertEqual(readAll(self.rx, 5), packets)
        self.assertEqual((sender.batches, sender.singles), (0, 5))


class Collect(protocol.DatagramProtocol):
    def __init__(self, batched):
        self.got = []
        self.reads = 0
        if batched:
            self.datagramsReceived = self._batch

    def datagramReceived(self, data, addr):
        self.got.append(data)

    def _batch(self, datagrams, addr):
        self.reads += 1
        self.got.extend(datagrams)


class GROPortTests(unittest.TestCase):
    @defer.inlineCallbacks
    def receive(self, batched, gro=True):
        proto = Collect(batched)
        port = batching.listenUDP(reactor, 0, proto, "127.0.0.1", 2048, gro=gro)
        self.addCleanup(port.stopListening)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(tx.close)
        packets = [os.urandom(200) for _ in range(40)] + [os.urandom(50)]
        batching.GSOSender(tx).send(packets, ("127.0.0.1", port.getHost().port))
        for _ in range(50):
            if len(proto.got) >= len(packets):
                break
            yield sleep(0.02)
        self.assertEqual(proto.got, packets)
        return port, proto

    @defer.inlineCallbacks
    def test_groSplits(self):
        """
        With GRO the kernel hands over a GSO burst in one read; the port cuts
        it at the segment size and a batching protocol gets it as one list.
        """
        port, proto = yield self.receive(batched=True)
        self.assertTrue(port.gro)
        self.assertLess(proto.reads, 5)

    @defer.inlineCallbacks
    def test_groPerDatagram(self):
        """
        A protocol without datagramsReceived gets one call per datagram.
        """
        port, proto = yield self.receive(batched=False)
        self.assertTrue(port.gro)

    @defer.inlineCallbacks
    def test_groRefused(self):
        """
        Where the kernel refuses UDP_GRO (or gro=False) the port reads one
        datagram at a time, and everything still arrives.
        """
        original = batching.enableGRO
        batching.enableGRO = lambda sock: False
        self.addCleanup(setattr, batching, "enableGRO", original)
        port, proto = yield self.receive(batched=True)
        self.assertFalse(port.gro)
        port, proto = yield self.receive(batched=True, gro=False)
        self.assertFalse(port.gro)

    def test_splitSegments(self):
        """
        A read is cut at the reported segment size; without the control
        message it is one datagram.
        """
        import struct

        cmsg = [(batching.SOL_UDP, batching.UDP_GRO, struct.pack("=i", 3))]
        self.assertEqual(batching.splitSegments(b"abcdefgh", cmsg), [b"abc", b"def", b"gh"])
        self.assertEqual(batching.splitSegments(b"abcdefgh", []), [b"abcdefgh"])
        self.assertEqual(batching.splitSegments(b"ab", cmsg), [b"ab"])


class SessionBatchingTests(SUDPIntegrationMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def burst(self, options, count):
        factory = RecorderFactory()
        yield self.listen(factory, options)
        client = yield self.connect(options)
        server = yield factory.built
        messages = [b"%05d" % i + os.urandom(59) for i in range(count)]
        server.transport.writeMessages(messages)
        got = yield client.waitFor(count)
        self.assertEqual(got, messages)
        client.transport.writeMessages(messages[:100])
        got = yield server.waitFor(100)
        self.assertEqual(got, messages[:100])
        return server

    @defer.inlineCallbacks
    def test_burstWithGSOAndGRO(self):
        """
        writeMessages sends a 300-message burst as GSO batches (a handful of
        system calls), the client's GRO port splits them, and every message
        arrives once, in order.
        """
        server = yield self.burst("", 300)
        sender = server.transport._adapter._sender
        self.assertTrue(sender.gso)
        self.assertLessEqual(sender.batches, 10)
        self.assertTrue(self.port._port.gro)

    @defer.inlineCallbacks
    def test_burstWithoutBatching(self):
        """
        With gso=false and gro=false a burst goes one datagram per call and
        still arrives whole. (It is 100 messages: 300 single datagrams sent
        back to back overflow a default socket receive buffer, which is the
        loss GSO and GRO avoid.)
        """
        server = yield self.burst(":gso=false:gro=false", 100)
        sender = server.transport._adapter._sender
        self.assertFalse(sender.gso)
        self.assertEqual(sender.batches, 0)
        self.assertFalse(getattr(self.port._port, "gro", False))
