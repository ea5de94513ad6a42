"""
Batched UDP I/O where the kernel offers it, with automatic fallback.

  - GSO (send): consecutive datagrams of one size to one address go out in a
    single C{sendmsg} with C{UDP_SEGMENT}; the kernel cuts them apart.
  - GRO (receive): with C{UDP_GRO} set, the kernel hands over several
    datagrams of one flow in one read, with their segment size in a control
    message; L{GROPort} cuts them apart before the protocol sees them.

Both are Linux features (GSO since 4.18, GRO since 5.0). Where a socket
option or a segmented send is refused, sudp falls back to one system call per
datagram for that socket and says so once in the log.
"""

import errno
import socket
import struct

from twisted.internet import udp
from twisted.logger import Logger

SOL_UDP = getattr(socket, "SOL_UDP", 17)
UDP_SEGMENT = 103
UDP_GRO = 104
MAX_SEGMENTS = 64  # the kernel's UDP_MAX_SEGMENTS
MAX_GSO_BYTES = 65507
_SEGMENT = struct.Struct("=H")
_GRO_SIZE = struct.Struct("=i")
_GRO_CMSG_SPACE = socket.CMSG_SPACE(4) if hasattr(socket, "CMSG_SPACE") else 0
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
                    self.gso = False
                    log.info("sudp: UDP GSO refused ({error}); sending one datagram per call", error=e)
                    for p in packets[i:]:
                        self.sock.sendto(p, addr)
                    self.singles += n - i
                    return
            i = j


class GROPort(udp.Port):
    """
    A Twisted UDP port that asks for GRO and splits what it reads: a
    protocol with C{datagramsReceived(datagrams, addr)} gets each read as one
    list, any other one C{datagramReceived} per datagram. Falls back to plain
    reads where the kernel refuses the option.

    @ivar gro: True if the kernel accepted C{UDP_GRO}.
    """

    gro = False
    wantGRO = True

    def _bindSocket(self):
        udp.Port._bindSocket(self)
        self.gro = self.wantGRO and _GRO_CMSG_SPACE and enableGRO(self.socket)
        if self.gro:
            # a GRO read can hold up to 64 KiB of datagrams
            self.maxPacketSize = max(self.maxPacketSize, 65535)

    def doRead(self):
        if not self.gro:
            return udp.Port.doRead(self)
        read = 0
        recvmsg = self.socket.recvmsg
        protocol = self.protocol
        # a protocol with datagramsReceived(list, addr) gets a GRO read whole
        batch = getattr(protocol, "datagramsReceived", None)
        while read < self.maxThroughput:
            try:
                data, ancdata, flags, addr = recvmsg(self.maxPacketSize, _GRO_CMSG_SPACE)
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR, errno.ECONNREFUSED):
                    return
                raise
            read += len(data)
            if self.addressFamily == socket.AF_INET6:
                addr = addr[:2]
            datagrams = splitSegments(data, ancdata) if ancdata else (data,)
            try:
                if batch is not None:
                    batch(datagrams, addr)
                else:
                    for datagram in datagrams:
                        protocol.datagramReceived(datagram, addr)
            except BaseException:
                log.failure("sudp: datagram handling failed")


def listenUDP(reactor, port, protocol, interface="", maxPacketSize=8192, gro=True):
    """
    Like C{reactor.listenUDP}, with GRO where available (C{gro=False}: never).

    @return: the listening L{GROPort}.
    """
    p = GROPort(port, protocol, interface, maxPacketSize, reactor)
    p.wantGRO = gro
    p.startListening()
    return p
