# -*- test-case-name: sudp_test.udp.test_batching -*-
"""
Batched UDP I/O where the kernel offers it, with automatic fallback.

  - GSO (send): consecutive datagrams of one size to one address go out in a
    single C{sendmsg} with C{UDP_SEGMENT}; the kernel cuts them apart.
  - GRO (receive): with C{UDP_GRO} set, the kernel hands over several
    datagrams of one flow in one read, with their segment size in a control
    message; L{GROPort} cuts them apart before the protocol sees them.

With the C speedups (L{sudp.speedups}), reads take up to a batch of
datagrams (or GRO reads) per C{recvmmsg} call, and datagrams to many
addresses leave in one C{sendmmsg} call.

Both are Linux features (GSO since 4.18, GRO since 5.0). Where a socket
option or a segmented send is refused, sudp falls back to one system call per
datagram for that socket and says so once in the log.
"""

import errno
import os
import socket
import struct

from twisted.internet import udp
from twisted.logger import Logger

from sudp import speedups

SOL_UDP = getattr(socket, "SOL_UDP", 17)
UDP_SEGMENT = 103
UDP_GRO = 104
MAX_SEGMENTS = 64  # the kernel's UDP_MAX_SEGMENTS
MAX_GSO_BYTES = 65507
GRO_SLOTS = 8  # recvmmsg slots with GRO: measured best at 4-8 (1.3 against 1.5 us a datagram at 32)
_SEGMENT = struct.Struct("=H")
_GRO_SIZE = struct.Struct("=i")
_GRO_CMSG_SPACE = socket.CMSG_SPACE(4) if hasattr(socket, "CMSG_SPACE") else 0
_READ_DONE = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)
_FALLBACK_ERRORS = (errno.EIO, errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP, errno.ENOTSUP)

log = Logger()


def enableGRO(sock):
    """
    @return: True if the kernel accepted C{UDP_GRO} on C{sock}.
    """
    try:
        sock.setsockopt(SOL_UDP, UDP_GRO, 1)
    except (OSError, AttributeError):
        return False
    return True


def splitSegments(data, ancdata):
    """
    @return: the datagrams in one GRO read: C{data} cut at the segment size
        the kernel reported (the last one may be shorter), or C{[data]}.
    """
    for level, kind, value in ancdata:
        if level == SOL_UDP and kind == UDP_GRO and len(value) >= 4:
            size = _GRO_SIZE.unpack(value[:4])[0]  # an int in host byte order
            if 0 < size < len(data):
                return [data[i : i + size] for i in range(0, len(data), size)]
    return [data]


class GSOSender:
    """
    Sends lists of datagrams on one socket, in GSO batches where possible.

    @ivar gso: True while segmented sends are used.
    @ivar batches: segmented sends made; C{singles}: plain sends made.
    """

    def __init__(self, sock, enabled=True):
        self.sock = sock
        self._family = int(getattr(sock, "family", socket.AF_INET))  # sock.family makes an enum per read
        self.gso = enabled and hasattr(sock, "sendmsg")
        self.batches = 0
        self.singles = 0

    def send(self, packets, addr):
        """
        Send C{packets} (bytes, in order) to C{addr}. Raises C{OSError} like
        C{sendto} for errors other than the ones that turn GSO off.
        """
        if not self.gso or len(packets) < 2:
            for p in packets:
                self.sock.sendto(p, addr)
            self.singles += len(packets)
            return
        i, n = 0, len(packets)
        while i < n:
            # a batch: datagrams of one size, and at most one shorter one last
            size = len(packets[i])
            j, total = i + 1, size
            while j < n and j - i < MAX_SEGMENTS:
                length = len(packets[j])
                if length > size or total + length > MAX_GSO_BYTES:
                    break
                total += length
                j += 1
                if length < size:
                    break
            if j - i == 1:
                self.sock.sendto(packets[i], addr)
                self.singles += 1
            else:
                try:
                    self.sock.sendmsg([b"".join(packets[i:j])], [(SOL_UDP, UDP_SEGMENT, _SEGMENT.pack(size))], 0, addr)
                    self.batches += 1
                except OSError as e:
                    if e.errno not in _FALLBACK_ERRORS:
                        raise
                    self._refused(e)
                    for p in packets[i:]:
                        self.sock.sendto(p, addr)
                    self.singles += n - i
                    return
            i = j

    def sendAll(self, datagrams):
        """
        Send C{datagrams}, a list of C{(bytes, (host, port))} to any
        addresses, in order per address: with the C speedups in one
        C{sendmmsg} per 64 messages, runs to one address as GSO batches; else
        a L{send} per run. A datagram the kernel refuses is lost, as UDP may
        lose it anywhere, and counted.

        @return: C{(failed, error)}: how many were lost, and the first error
            (an C{OSError}) or None.
        """
        if speedups.batchedIO:
            sent, failed, code, refused = speedups.native.sendBatch(
                self.sock.fileno(), self._family, datagrams, self.gso)
            if refused:
                self._refused("the kernel refused a segmented send")
            self.singles += sent  # segments, in system calls shared by up to 64 messages
            return failed, (OSError(code, os.strerror(code)) if code else None)
        failed, error = 0, None
        i, n = 0, len(datagrams)
        while i < n:
            addr = datagrams[i][1]
            j = i + 1
            while j < n and datagrams[j][1] == addr:
                j += 1
            if self.gso and j - i > 1:
                try:
                    self.send([d for d, _ in datagrams[i:j]], addr)
                except OSError as e:  # the run is lost, as UDP may lose it anywhere
                    failed += j - i
                    error = error or e
            else:
                for data, _ in datagrams[i:j]:
                    try:
                        self.sock.sendto(data, addr)
                        self.singles += 1
                    except OSError as e:
                        failed += 1
                        error = error or e
            i = j
        return failed, error

    def _refused(self, error):
        self.gso = False
        log.info("sudp: UDP GSO refused ({error}); sending one datagram per call", error=error)


def senderFor(sender, sock, enabled=True):
    """
    @return: C{sender} if it sends on C{sock}, else a new L{GSOSender} for
        C{sock} (a port that listens again has a new socket).
    """
    if sender is None or sender.sock is not sock:
        sender = GSOSender(sock, enabled)
    return sender


class GROPort(udp.Port):
    """
    A Twisted UDP port that reads in batches: with the C speedups, up to
    C{batch} datagrams per C{recvmmsg} call; with GRO, each read may hold
    several datagrams of one flow, cut apart at the segment size the kernel
    reports. A protocol with C{readFrom(receiver)} reads each batch itself
    (C{receiver.readInto}, returning C{(datagrams, bytes)}, C{(0, 0)} when
    drained). A protocol with C{batchReceived(groups)} gets each batched
    read whole, as a list of C{(datagrams, addr)}, one per run from one
    address; one with C{datagramsReceived(datagrams, addr)} gets each run
    as one list; any other one C{datagramReceived} per datagram. Falls back to plain reads where the kernel refuses GRO, and
    to one C{recvmsg} per read without the speedups.

    @ivar gro: True if the kernel accepted C{UDP_GRO}.
    @ivar batch: datagrams (or GRO reads) per system call with the speedups.
    """

    gro = False
    wantGRO = True
    batch = 32
    _receiver = None

    def createInternetSocket(self):
        """
        The socket, made dual-stack (IPv4 clients too) when it binds the
        IPv6 wildcard, whatever the system's default.
        """
        s = udp.Port.createInternetSocket(self)
        if self.addressFamily == socket.AF_INET6 and self.interface == "::":
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        return s

    def _bindSocket(self):
        udp.Port._bindSocket(self)
        self.gro = self.wantGRO and _GRO_CMSG_SPACE and enableGRO(self.socket)
        if self.gro:
            # a GRO read can hold up to 64 KiB of datagrams
            self.maxPacketSize = max(self.maxPacketSize, 65535)
        if speedups.batchedIO:
            # a GRO slot holds up to 64 datagrams in 64 KiB; more slots than a
            # few only spread each read over more cache than it fills
            count = min(self.batch, GRO_SLOTS) if self.gro else self.batch
            self._receiver = speedups.native.Receiver(self.socket.fileno(), count, self.maxPacketSize)

    def connectionLost(self, reason=None):
        """
        Close, unless this is the reactor mistaking a connected socket's
        queued ICMP error (poll's POLLERR with nothing to read) for a
        disconnect: then tell the protocol it was refused and read on.
        """
        if not self.disconnecting and self._connectedAddr and self._refusedPending():
            self._refused()
            self.startReading()
            return
        self._receiver = None
        udp.Port.connectionLost(self, reason)

    def _refusedPending(self):
        try:
            return self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED
        except OSError:
            return False

    def _refused(self):
        """
        An ICMP port unreachable came back for what a connected socket sent:
        tell the protocol (an unconnected socket never sees one).
        """
        if self._connectedAddr:
            refused = getattr(self.protocol, "connectionRefused", None)
            if refused is not None:
                try:
                    refused()
                except BaseException:
                    log.failure("sudp: connectionRefused failed")

    def _deliver(self, datagrams, addr):
        protocol = self.protocol
        # a protocol with datagramsReceived(list, addr) gets a batch whole
        batch = getattr(protocol, "datagramsReceived", None)
        try:
            if batch is not None:
                batch(datagrams, addr)
            else:
                for datagram in datagrams:
                    protocol.datagramReceived(datagram, addr)
        except BaseException:
            log.failure("sudp: datagram handling failed")

    def doRead(self):
        if self._receiver is not None:
            return self._readBatches()
        if not self.gro:
            return udp.Port.doRead(self)
        read = 0
        recvmsg = self.socket.recvmsg
        while read < self.maxThroughput:
            try:
                data, ancdata, flags, addr = recvmsg(self.maxPacketSize, _GRO_CMSG_SPACE)
            except OSError as e:
                return self._readFailed(e)
            read += len(data)
            if self.addressFamily == socket.AF_INET6:
                addr = addr[:2]
            self._deliver(splitSegments(data, ancdata) if ancdata else (data,), addr)

    def _readFailed(self, error):
        """
        End a read loop on C{error}: the socket is drained (nothing more to
        read), or an ICMP error was queued on a connected socket (reported
        to the protocol); anything else is raised.
        """
        if error.errno in _READ_DONE:
            return None
        if error.errno == errno.ECONNREFUSED:
            return self._refused()
        raise error

    def _readBatches(self):
        read = 0
        # a protocol with readFrom(receiver) reads each batch itself, from
        # the read buffer (sudp's adapters: no bytes per datagram); one with
        # batchReceived(groups) gets a whole read at once
        pump = getattr(self.protocol, "readFrom", None)
        whole = None if pump is not None else getattr(self.protocol, "batchReceived", None)
        receive = self._receiver.read
        while read < self.maxThroughput and self._receiver is not None:
            if pump is not None:
                try:
                    got, size = pump(self._receiver)
                except OSError as e:
                    return self._readFailed(e)
                except BaseException:
                    # the read's datagrams are spent; the reactor reads again
                    log.failure("sudp: datagram handling failed")
                    return
                if not got:
                    return
                read += size
                continue
            try:
                groups, size = receive()
            except OSError as e:
                return self._readFailed(e)
            if not groups:
                return
            read += size
            if whole is not None:
                try:
                    whole(groups)
                except BaseException:
                    log.failure("sudp: datagram handling failed")
            else:
                for datagrams, addr in groups:
                    self._deliver(datagrams, addr)


def listenUDP(reactor, port, protocol, interface="", maxPacketSize=8192, gro=True, batch=32):
    """
    Like C{reactor.listenUDP}, with GRO where available (C{gro=False}:
    never) and batched reads with the speedups (C{batch} per system call).

    @return: the listening L{GROPort}.
    """
    p = GROPort(port, protocol, interface, maxPacketSize, reactor)
    p.wantGRO = gro
    p.batch = batch
    p.startListening()
    return p
