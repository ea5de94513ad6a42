# -*- test-case-name: sudp_test.udp.test_batching -*-
"""
UDP GSO and GRO, and the fallbacks where the kernel refuses them, over real
sockets on 127.0.0.1.
"""

import errno
import os
import socket

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import serverFromString
from twisted.trial import unittest

from sudp import speedups
from sudp.errors import ConfigurationError
from sudp.udp import batching

from sudp_test.integration import RecorderFactory, SUDPIntegrationMixin
from sudp_test.waiting import sleep

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

class SocketOptionTests(SUDPIntegrationMixin, unittest.TestCase):
    @defer.inlineCallbacks
    def test_recvBufferAndBatch(self):
        """
        recvBuffer sets the socket's SO_RCVBUF (Linux reports twice what was
        asked, up to its cap); recvBatch sets the datagrams per read; bad
        values are errors when the string is parsed.
        """
        port = yield self.listen(options=":recvBuffer=262144:recvBatch=8")
        sock = port._port.socket
        self.assertGreaterEqual(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF), 262144)
        self.assertEqual(port._port.batch, 8)
        client = yield self.connect(":recvBatch=8")
        self.assertEqual(client.transport._adapter.transport.batch, 4)  # clients take at most 4
        for bad in (":recvBatch=0", ":recvBatch=2000", ":recvBuffer=-1"):
            self.assertRaises(ConfigurationError, serverFromString, reactor, self.serverString(bad))

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

class PurePythonGROPortTests(GROPortTests):
    """
    The same, without the C speedups: one C{recvmsg} per read.
    """

    def setUp(self):
        self.patch(speedups, "batchedIO", False)

class BatchCollect(protocol.DatagramProtocol):
    def __init__(self):
        self.groups = []

    def batchReceived(self, groups):
        self.groups.append(groups)

    def datagramReceived(self, data, addr):  # pragma: no cover - must not be called
        raise AssertionError("a batchReceived protocol gets whole reads")

def senders(count, family=socket.AF_INET):
    socks = [socket.socket(family, socket.SOCK_DGRAM) for _ in range(count)]
    for s in socks:
        s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
    return socks

class ReceiverTests(unittest.TestCase):
    """
    C{recvmmsg} reads (sudp._speedups.Receiver) over real sockets.
    """

    if not speedups.batchedIO:
        skip = "recvmmsg batching needs the C speedups on Linux"

    def setUp(self):
        self.rx = receiver()
        self.rx.setblocking(False)
        self.addCleanup(self.rx.close)
        self.tx = senders(3)
        for s in self.tx:
            self.addCleanup(s.close)

    def test_groupsByAddress(self):
        """
        One read takes up to C{count} datagrams from many senders: each run
        from one address is one group, in order, with the bytes counted.
        """
        reader = speedups.native.Receiver(self.rx.fileno(), 16, 2048)
        sent = []
        for i in range(12):
            s = self.tx[(i // 2) % 3]  # runs of two from each sender
            data = os.urandom(10 + i)
            s.sendto(data, self.rx.getsockname())
            sent.append((data, s.getsockname()))
        groups, size = reader.read()
        self.assertEqual(size, sum(len(d) for d, _ in sent))
        self.assertEqual(len(groups), 6)
        flat = [(d, addr) for datagrams, addr in groups for d in datagrams]
        self.assertEqual(flat, sent)
        self.assertEqual(reader.read(), ([], 0))

    def test_countBoundsARead(self):
        """
        A read takes at most C{count} datagrams; the rest wait for the next.
        """
        reader = speedups.native.Receiver(self.rx.fileno(), 4, 2048)
        for i in range(10):
            self.tx[0].sendto(b"%d" % i, self.rx.getsockname())
        reads = []
        while True:
            groups, _ = reader.read()
            if not groups:
                break
            reads.append([d for datagrams, _ in groups for d in datagrams])
        self.assertEqual([len(r) for r in reads], [4, 4, 2])
        self.assertEqual(sum(reads, []), [b"%d" % i for i in range(10)])

    def test_truncatesToBuffer(self):
        """
        A datagram longer than the buffer arrives cut to the buffer's size
        (as with recvfrom), so the engine sees it as oversized; an empty
        datagram arrives empty.
        """
        reader = speedups.native.Receiver(self.rx.fileno(), 4, 100)
        self.tx[0].sendto(b"x" * 500, self.rx.getsockname())
        self.tx[0].sendto(b"", self.rx.getsockname())
        [(datagrams, _)], size = reader.read()
        self.assertEqual(datagrams, [b"x" * 100, b""])
        self.assertEqual(size, 100)

    def test_gro(self):
        """
        With UDP_GRO on, a GSO burst comes in one slot and is cut at its
        segment size, the shorter last datagram included.
        """
        self.assertTrue(batching.enableGRO(self.rx))
        reader = speedups.native.Receiver(self.rx.fileno(), 4, 65535)
        packets = [os.urandom(300) for _ in range(20)] + [os.urandom(7)]
        batching.GSOSender(self.tx[0]).send(packets, self.rx.getsockname())
        got = []
        for _ in range(10):
            groups, _ = reader.read()
            got += [d for datagrams, _ in groups for d in datagrams]
        self.assertEqual(got, packets)

    def test_ipv6(self):
        """
        IPv6 sources come as (host, port), as Twisted gives them.
        """
        try:
            rx = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            rx.bind(("::1", 0))
            [tx] = senders(1, socket.AF_INET6)
        except OSError:
            raise unittest.SkipTest("no IPv6 loopback here")
        self.addCleanup(rx.close)
        self.addCleanup(tx.close)
        tx.sendto(b"six", rx.getsockname()[:2])
        reader = speedups.native.Receiver(rx.fileno(), 4, 100)
        for _ in range(100):
            groups, _ = reader.read()
            if groups:
                break
        self.assertEqual(groups, [([b"six"], tx.getsockname()[:2])])

    def test_errors(self):
        """
        Bad sizes are ValueErrors; a closed descriptor is an OSError.
        """
        Receiver = speedups.native.Receiver
        self.assertRaises(ValueError, Receiver, self.rx.fileno(), 0, 100)
        self.assertRaises(ValueError, Receiver, self.rx.fileno(), 2000, 100)
        self.assertRaises(ValueError, Receiver, self.rx.fileno(), 4, 70000)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        reader = Receiver(s.fileno(), 4, 100)
        s.close()
        self.assertRaises(OSError, reader.read)

SO_NO_CHECK = getattr(socket, "SO_NO_CHECK", 11)

class SendAllTests(unittest.TestCase):
    """
    L{batching.GSOSender.sendAll}: one C{sendmmsg} per 64 messages with the
    speedups, GSO runs included; else a send per run.
    """

    def setUp(self):
        self.rxs = [receiver() for _ in range(3)]
        for rx in self.rxs:
            self.addCleanup(rx.close)
        self.tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(self.tx.close)

    def test_manyAddresses(self):
        """
        Datagrams to several addresses, interleaved, in one call (more than
        one sendmmsg's worth): each receiver gets its own, in order.
        """
        items, expected = [], {i: [] for i in range(3)}
        for n in range(150):
            data = os.urandom(20 + n % 50)
            items.append((data, self.rxs[n % 3].getsockname()))
            expected[n % 3].append(data)
        self.assertEqual(batching.GSOSender(self.tx).sendAll(items), (0, None))
        for i, rx in enumerate(self.rxs):
            self.assertEqual(readAll(rx, 50), expected[i])

    def test_runsAndSingles(self):
        """
        Runs to one address (GSO batches of one size, a shorter one last)
        mixed with singles to others: everything arrives intact, in order
        per address.
        """
        a, b = self.rxs[0].getsockname(), self.rxs[1].getsockname()
        run1 = [os.urandom(100) for _ in range(70)] + [os.urandom(30)]
        run2 = [os.urandom(500) for _ in range(5)]
        items = [(d, a) for d in run1] + [(b"single", b)] + [(d, a) for d in run2] + [(b"", b)]
        self.assertEqual(batching.GSOSender(self.tx).sendAll(items), (0, None))
        self.assertEqual(readAll(self.rxs[0], len(run1) + len(run2)), run1 + run2)
        self.assertEqual(readAll(self.rxs[1], 2), [b"single", b""])

    def test_kernelRefusesGSO(self):
        """
        A socket without UDP checksums (SO_NO_CHECK) makes the kernel refuse
        segmented sends (EINVAL): the sender turns GSO off and sends the
        rest one by one; nothing is lost.
        """
        try:
            self.tx.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
        except OSError:
            raise unittest.SkipTest("SO_NO_CHECK is not available here")
        addr = self.rxs[0].getsockname()
        packets = [os.urandom(64) for _ in range(10)]
        sender = batching.GSOSender(self.tx)
        self.assertEqual(sender.sendAll([(p, addr) for p in packets]), (0, None))
        self.assertFalse(sender.gso)
        self.assertEqual(sender.sendAll([(p, addr) for p in packets]), (0, None))
        self.assertEqual(readAll(self.rxs[0], 20), packets + packets)

    def test_refusedDatagramIsCounted(self):
        """
        A datagram the kernel refuses (too large for UDP) is counted and
        skipped; the ones around it go out.
        """
        addr = self.rxs[0].getsockname()
        sender = batching.GSOSender(self.tx, enabled=False)
        failed, error = sender.sendAll([(b"a", addr), (b"x" * 70000, addr), (b"b", addr)])
        self.assertEqual(failed, 1)
        self.assertEqual(error.errno, errno.EMSGSIZE)
        self.assertEqual(readAll(self.rxs[0], 2), [b"a", b"b"])

    def test_badAddress(self):
        """
        An address that is not numeric, or a datagram that is not bytes, is
        a clear error and nothing is sent.
        """
        if not speedups.batchedIO:
            raise unittest.SkipTest("the pure-Python path resolves names like sendto")
        sendAll = batching.GSOSender(self.tx).sendAll
        self.assertRaises(ValueError, sendAll, [(b"a", ("not-an-ip", 9))])
        self.assertRaises(TypeError, sendAll, [(b"a", "127.0.0.1")])
        self.assertRaises(TypeError, sendAll, [(b"a", self.rxs[0].getsockname()), ("text", ("127.0.0.1", 9))])
        self.assertRaises(OverflowError, sendAll, [(b"a", ("127.0.0.1", 70000))])
        self.rxs[0].setblocking(False)
        self.assertRaises(BlockingIOError, self.rxs[0].recv, 10)

class PurePythonSendAllTests(SendAllTests):
    def setUp(self):
        SendAllTests.setUp(self)
        self.patch(speedups, "batchedIO", False)

class BatchReceivedTests(unittest.TestCase):
    if not speedups.batchedIO:
        skip = "recvmmsg batching needs the C speedups on Linux"

    @defer.inlineCallbacks
    def test_wholeReads(self):
        """
        A protocol with batchReceived gets each read whole: runs from
        several addresses in one call.
        """
        proto = BatchCollect()
        port = batching.listenUDP(reactor, 0, proto, "127.0.0.1", 2048, gro=False, batch=64)
        self.addCleanup(port.stopListening)
        tx = senders(4)
        for s in tx:
            self.addCleanup(s.close)
        for i in range(40):
            tx[i % 4].sendto(b"%d" % i, ("127.0.0.1", port.getHost().port))
        for _ in range(50):
            if sum(len(d) for g in proto.groups for d, _ in g) >= 40:
                break
            yield sleep(0.02)
        got = [(d, addr) for g in proto.groups for datagrams, addr in g for d in datagrams]
        self.assertEqual(got, [(b"%d" % i, tx[i % 4].getsockname()) for i in range(40)])
        self.assertLess(len(proto.groups), 40)  # several datagrams per read


class ReadFromCollect(protocol.DatagramProtocol):
    """
    A protocol that reads each batch itself (as sudp's adapters do).
    """

    def __init__(self, failFirst=False):
        self.reads = []
        self.failFirst = failFirst

    def readFrom(self, receiver):
        groups, size = receiver.read()
        if self.failFirst:
            self.failFirst = False
            raise ValueError("the first read fails")
        if groups:
            self.reads.append(groups)
        return sum(len(d) for d, _ in groups), size

    def datagramReceived(self, data, addr):  # pragma: no cover - must not be called
        raise AssertionError("a readFrom protocol reads for itself")


class ReadFromTests(unittest.TestCase):
    if not speedups.batchedIO:
        skip = "recvmmsg batching needs the C speedups on Linux"

    @defer.inlineCallbacks
    def deliver(self, proto, count, expected=None):
        expected = count if expected is None else expected
        port = batching.listenUDP(reactor, 0, proto, "127.0.0.1", 2048, gro=False, batch=8)
        self.addCleanup(port.stopListening)
        [tx] = senders(1)
        self.addCleanup(tx.close)
        for i in range(count):
            tx.sendto(b"%d" % i, ("127.0.0.1", port.getHost().port))
        for _ in range(50):
            if sum(len(d) for g in proto.reads for d, _ in g) >= expected:
                break
            yield sleep(0.02)
        return [d for g in proto.reads for datagrams, _ in g for d in datagrams]

    @defer.inlineCallbacks
    def test_readsThroughTheProtocol(self):
        """
        A protocol with readFrom is handed the port's receiver for each
        read, until it reports none waiting.
        """
        proto = ReadFromCollect()
        got = yield self.deliver(proto, 30)
        self.assertEqual(got, [b"%d" % i for i in range(30)])
        self.assertGreater(len(proto.reads), 3)  # at most 8 per read

    @defer.inlineCallbacks
    def test_failureLogged(self):
        """
        A readFrom that raises is logged (its read, 8 datagrams, is spent);
        the port reads on at the next readiness, and nothing else is lost.
        """
        proto = ReadFromCollect(failFirst=True)
        got = yield self.deliver(proto, 20, expected=12)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.assertEqual(got, [b"%d" % i for i in range(8, 20)])
