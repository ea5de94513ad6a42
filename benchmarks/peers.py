"""
The peers a user would pick instead of sudp, measured with run.py's load
generators where the protocol allows: aioquic (QUIC DATAGRAM frames one-way
and echo, a stream bulk transfer, handshakes), plaintext UDP on asyncio's
default event loop and on uvloop, and Twisted TLS over TCP.

    python benchmarks/peers.py [--quick] [--repeats N] [--json FILE]

Servers run in their own process (benchmarks/peerservers.py, the control
protocol of benchmarks/servers.py); load comes from blocking loops in this
process, as in run.py. The peers come from the `bench` extra
(`pip install .[bench]`: aioquic, uvloop); a case whose peer is missing
raises L{Missing}.

What each load generator does:

  - plaintext UDP one-way (asyncio, uvloop): run.py's L{run.blast}, the
    sender of its own one-way cases (sendmmsg batches of 64 with the
    speedups), at an asyncio DatagramProtocol.
  - QUIC one-way: the handshake is done with aioquic's sans-IO
    C{QuicConnection} in this process; then C{count} DATAGRAM packets are
    built before the clock starts (one C{send_datagram_frame} and one
    C{datagrams_to_send} each: one frame per packet) and sent with the same
    L{run.blast} as sudp's one-way case, and the server is left to drain.
    aioquic will not build them with its own congestion control: NewReno's
    initial window is 10 full-sized packets' bytes (14,720 B here) and
    never opens without ACKs (measured: after 176 packets of a 64-byte
    frame, C{datagrams_to_send} returns nothing; CUBIC, 148), and its pacer
    lets a packet go only when the clock has moved. So the load connection
    uses a congestion controller with an unbounded window, registered
    through aioquic's public C{register_congestion_control}
    (L{UnboundedWindow}), and advances the clock it gives
    C{datagrams_to_send} by 1 us per packet. Everything else is aioquic's
    own: packet protection, packet numbers (2 bytes, as aioquic always
    sends them), the server's receive path and its ACKs (which this sender
    does not read, as sudp's one-way sender reads nothing). sudp's sender
    has no congestion control either: both are blasts measured at the
    receiver. A run of more than 32,767 consecutive lost packets would
    desynchronise the server's packet-number decoding; the delivered count
    is reported, never assumed.
  - QUIC echo and stream: an ordinary aioquic client (NewReno, its pacer
    and timers honoured: L{QuicClient.poll}); the stream transfer queues
    the whole payload at once, as aioquic's asyncio stream writer does (it
    has no backpressure).
  - QUIC handshakes: sans-IO clients on one socket, demultiplexed by
    connection ID, 16 in progress at a time, each verifying the server's
    certificate (as a client must); and, as run.py's
    serverCpuPerHandshake, the time spent in the server's C{QuicConnection}
    alone, in process.
  - TLS: the standard library's C{ssl} over a blocking socket, verifying
    the certificate; one-way records are built before the clock starts and
    written with C{sendall} (TCP's flow control then paces the sender, so
    the side that bounded the run is the one whose CPU was busier).

Both QUIC ends allow packets of 1,472 bytes (a 1,500-byte MTU): at aioquic's
default of 1,200, a 1,200-byte DATAGRAM frame fits no packet and aioquic
holds it forever, silently.

Rates are measured at the receiver, from the first send to the last
receive (perf_counter, CLOCK_MONOTONIC, one clock for every process), and
CPU per message is the server process's.
"""

import argparse
import json
import os
import select
import socket
import ssl
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# run.py's server driver, sender and helpers (it chooses the sudp it measures: benchmarks/environment.py)
from run import (  # noqa: E402
    Server, blast, bound, drained, figure, keepInFlight, median, plainEchoClient, printTable, readAll)

try:
    import aioquic
    from aioquic.buffer import Buffer
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.congestion.base import QuicCongestionControl, register_congestion_control
    from aioquic.quic.connection import QuicConnection
    from aioquic.quic import events as quicEvents
    from aioquic.quic.packet import pull_quic_header

    ConnectionIdIssued = quicEvents.ConnectionIdIssued
    DatagramFrameReceived = quicEvents.DatagramFrameReceived
    HandshakeCompleted = quicEvents.HandshakeCompleted
except ImportError:  # the bench extra is not installed
    aioquic = None

try:
    import uvloop
except ImportError:
    uvloop = None

from peerservers import ALPN, MAX_DATAGRAM_SIZE, makeCertificate  # noqa: E402

UNBOUNDED = "sudp-bench-unbounded"
UDP_MODES = ("asyncio-udp-count", "uvloop-udp-count")
ECHO_MODES = ("asyncio-udp-echo", "uvloop-udp-echo", "quic-echo", "tls-echo")


class Missing(Exception):
    """
    A peer library is not installed (pip install .[bench]).
    """


def require(mode):
    if (mode.startswith("quic") or ":uvloop" in mode) and aioquic is None:
        raise Missing("aioquic is not installed: pip install .[bench]")
    if (mode.startswith("uvloop") or ":uvloop" in mode) and uvloop is None:
        raise Missing("uvloop is not installed: pip install .[bench]")


class PeerServer(Server):
    """
    A peer's server in its own process: benchmarks/peerservers.py MODE,
    driven with L{Server}'s commands.
    """

    def __init__(self, mode):
        require(mode)
        Server.__init__(self, mode, script="peerservers.py")
        self.peer = self.info["peer"]


def busiest(serverCpu, clientCpu, elapsed):
    """
    Which side bounded a flow-controlled transfer (TCP, a QUIC stream): the
    one whose process was busier over the run.
    """
    return "receiver" if serverCpu >= clientCpu else "sender"


# -- QUIC ------------------------------------------------------------------------------


if aioquic is not None:

    class UnboundedWindow(QuicCongestionControl):
        """
        A congestion controller whose window never closes, for the
        pre-built one-way blast only (see the module docstring): bytes in
        flight are still counted, as aioquic's own controllers count them.
        """

        def __init__(self, *, max_datagram_size):
            super().__init__(max_datagram_size=max_datagram_size)
            self.congestion_window = 1 << 60

        def on_packet_acked(self, *, now, packet):
            self.bytes_in_flight -= packet.sent_bytes

        def on_packet_sent(self, *, packet):
            self.bytes_in_flight += packet.sent_bytes

        def on_packets_expired(self, *, packets):
            for packet in packets:
                self.bytes_in_flight -= packet.sent_bytes

        def on_packets_lost(self, *, now, packets):
            for packet in packets:
                self.bytes_in_flight -= packet.sent_bytes

        def on_persistent_congestion(self):
            pass

        def on_rtt_measurement(self, *, now, rtt):
            pass

    register_congestion_control(UNBOUNDED, UnboundedWindow)


def clientConfiguration(server, congestion="reno"):
    configuration = QuicConfiguration(is_client=True, alpn_protocols=[ALPN], max_datagram_frame_size=65536,
                                      max_datagram_size=MAX_DATAGRAM_SIZE, server_name="localhost",
                                      congestion_control_algorithm=congestion, idle_timeout=600.0)
    configuration.load_verify_locations(server.cert)  # the server's self-signed certificate
    return configuration


class QuicClient:
    """
    One aioquic client connection (sans IO) on its own connected blocking
    UDP socket, its timers honoured.
    """

    def __init__(self, server, congestion="reno"):
        self.addr = server.addr
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.connect(server.addr)
        self.conn = QuicConnection(configuration=clientConfiguration(server, congestion))
        self.conn.connect(server.addr, now=time.monotonic())
        self.flush()

    def flush(self, now=None):
        send = self.sock.send
        for data, _ in self.conn.datagrams_to_send(now=time.monotonic() if now is None else now):
            send(data)

    def poll(self, timeout):
        """
        Wait up to C{timeout} seconds (less if the connection's timer is
        due sooner) for datagrams; feed all that are there, fire a due
        timer, send what is due.

        @return: (datagrams read, the connection's events)
        """
        now = time.monotonic()
        timer = self.conn.get_timer()
        wait = timeout if timer is None else max(0.0, min(timeout, timer - now))
        ready, _, _ = select.select([self.sock], [], [], wait)
        now = time.monotonic()
        read = 0
        for data in readAll(self.sock) if ready else ():
            self.conn.receive_datagram(data, self.addr, now=now)
            read += 1
        timer = self.conn.get_timer()
        if timer is not None and timer <= now:
            self.conn.handle_timer(now=now)
        self.flush(now)
        return read, list(iter(self.conn.next_event, None))

    def handshake(self, timeout=10):
        """
        Complete the handshake, then read until the connection is quiet
        (HANDSHAKE_DONE and the server's first ACKs are in).
        """
        deadline = time.monotonic() + timeout
        while not any(type(e) is HandshakeCompleted for e in self.poll(0.5)[1]):
            if time.monotonic() > deadline:
                raise RuntimeError("QUIC handshake timed out")
        quiet = time.monotonic() + 1.0
        while self.poll(0.05)[0] and time.monotonic() < quiet:
            pass

    def prebuild(self, payload, count):
        """
        @return: C{count} QUIC packets of one DATAGRAM frame each, built with
            the clock advanced 1 us a packet (the pacer; see the module
            docstring).
        """
        now = time.monotonic()
        packets = []
        send, build = self.conn.send_datagram_frame, self.conn.datagrams_to_send
        for _ in range(count):
            send(payload)
            now += 1e-6
            out = build(now=now)
            if len(out) != 1:
                raise RuntimeError(f"aioquic built {len(out)} packets for one DATAGRAM frame "
                                   f"after {len(packets)}")
            packets.append(out[0][0])
        return packets

    def close(self):
        self.sock.close()


def quicOneWay(mode, size, count):
    with PeerServer(mode) as server:
        client = QuicClient(server, UNBOUNDED)
        try:
            client.handshake()
            packets = client.prebuild(os.urandom(size), count)
            server.command("reset")
            cpuBefore = server.stats()["cpu"]
            start = time.perf_counter()
            sending = blast(client.sock, packets, server.addr)
            stats = drained(server)
        finally:
            client.close()
    return stats, start, cpuBefore, sending


def quicEcho(mode, size, inFlight, seconds):
    with PeerServer(mode) as server:
        client = QuicClient(server)
        try:
            client.handshake()
            payload = os.urandom(size)

            def sendSome(count):
                for _ in range(count):
                    client.conn.send_datagram_frame(payload)
                client.flush()

            def receiveSome():
                deadline = time.monotonic() + 1.0
                got = 0
                while not got:  # a timer may end a poll with no datagram
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return 0
                    got = sum(type(e) is DatagramFrameReceived for e in client.poll(left)[1])
                return got

            return keepInFlight(sendSome, receiveSome, inFlight, seconds)
        finally:
            client.close()


def streamRate(megabytes, mode="quic-stream", timeout=120):
    """
    A bulk transfer of C{megabytes} MiB on one QUIC stream (aioquic at both
    ends, NewReno), or through Twisted TLS (C{mode="tls-count"}: records of
    64 KiB, so the count of records is small and the bytes are the figure).

    @return: (MiB per second, as bench_stream.py's "MB/s"; bytes delivered;
        server CPU microseconds per MiB; the side that bounded it)
    """
    total = megabytes << 20
    with PeerServer(mode) as server:
        if mode == "tls-count":
            chunk = struct.pack(">I", 65536) + os.urandom(65536)
            sock = tlsConnect(server)
            try:
                server.command("reset")
                cpuBefore, clientBefore = server.stats()["cpu"], time.process_time()
                start = time.perf_counter()
                for _ in range(total // 65536):
                    sock.sendall(chunk)
                stats = drained(server)
                clientCpu = time.process_time() - clientBefore
            finally:
                sock.close()
        else:
            client = QuicClient(server)
            try:
                client.handshake()
                data = os.urandom(total)
                streamId = client.conn.get_next_available_stream_id()
                server.command("reset")
                cpuBefore, clientBefore = server.stats()["cpu"], time.process_time()
                start = time.perf_counter()
                client.conn.send_stream_data(streamId, data, end_stream=True)
                client.flush()
                deadline, look = time.monotonic() + timeout, 0.0
                while time.monotonic() < deadline:
                    client.poll(0.05)
                    if time.monotonic() > look:  # ask the server now and then
                        look = time.monotonic() + 0.1
                        stats = server.stats()
                        if stats["bytes"] >= total:
                            break
                else:
                    raise RuntimeError(f"QUIC stream: {stats['bytes']} of {total} bytes in {timeout} s")
                clientCpu = time.process_time() - clientBefore
            finally:
                client.close()
    delivered = stats["bytes"]
    elapsed = stats["last"] - start
    serverCpu = stats["cpu"] - cpuBefore
    return (delivered / (1 << 20) / elapsed, delivered, serverCpu / (delivered / (1 << 20)) * 1e6,
            busiest(serverCpu, clientCpu, elapsed))


class HandshakeClients:
    """
    Many aioquic client connections on one UDP socket, demultiplexed by the
    destination connection ID of what the server sends.
    """

    def __init__(self, server):
        self.server = server
        self.configuration = clientConfiguration(server)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.connect(server.addr)
        self.byCid, self.conns, self.nextLook = {}, [], 0.0
        self.cidLength = self.configuration.connection_id_length

    def flush(self, conn, now):
        for data, _ in conn.datagrams_to_send(now=now):
            self.sock.send(data)

    def begin(self):
        conn = QuicConnection(configuration=self.configuration)
        now = time.monotonic()
        conn.connect(self.server.addr, now=now)
        self.byCid[conn.host_cid] = conn
        self.conns.append(conn)
        self.flush(conn, now)

    def pump(self, wait):
        """
        Wait up to C{wait} seconds for datagrams; feed each to its
        connection; fire the due timers of every connection (looked at
        every 5 ms at most); send what is due.

        @return: the (connection, event) pairs that came out.
        """
        ready, _, _ = select.select([self.sock], [], [], wait)
        now = time.monotonic()
        touched = set()
        for data in readAll(self.sock) if ready else ():
            header = pull_quic_header(Buffer(data=data), host_cid_length=self.cidLength)
            conn = self.byCid.get(header.destination_cid)
            if conn is not None:
                conn.receive_datagram(data, self.server.addr, now=now)
                touched.add(conn)
        if now >= self.nextLook:
            self.nextLook = now + 0.005
            for conn in self.conns:
                timer = conn.get_timer()
                if timer is not None and timer <= now:
                    conn.handle_timer(now=now)
                    touched.add(conn)
        out = []
        for conn in touched:
            self.flush(conn, now)
            for event in iter(conn.next_event, None):
                if type(event) is ConnectionIdIssued:
                    self.byCid[event.connection_id] = conn
                out.append((conn, event))
        return out

    def handshakes(self, count, concurrent=16, timeout=30):
        """
        Open C{count} connections, C{concurrent} handshakes at a time (a
        handshake ends when the client's completes: it may send); the
        opened ones stay and keep being served (their ACKs).

        @return: the seconds it took.
        """
        started, opened = 0, 0
        start = time.perf_counter()
        while started < min(concurrent, count):
            self.begin()
            started += 1
        deadline = time.monotonic() + timeout
        while opened < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"QUIC handshakes: {opened} of {count} opened in {timeout} s")
            for conn, event in self.pump(0.005):
                if type(event) is HandshakeCompleted:
                    opened += 1
                    if started < count:
                        self.begin()
                        started += 1
        return time.perf_counter() - start

    def serve(self, done, timeout=10):
        """
        Keep serving the connections until C{done()} is true.
        """
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeError("QUIC handshakes: the server did not finish them")
            end = time.monotonic() + 0.05
            while time.monotonic() < end:
                self.pump(0.005)

    def close(self):
        self.sock.close()


def handshakeRate(count, concurrent=16):
    """
    QUIC handshakes against aioquic's server, C{concurrent} in progress at
    a time (run.py's handshakeRate for sudp: 16).

    @return: (handshakes per second, server process CPU microseconds per
        handshake)
    """
    with PeerServer("quic-echo") as server:
        clients = HandshakeClients(server)
        try:
            server.command("reset")
            before = server.stats()["cpu"]
            elapsed = clients.handshakes(count, concurrent)
            # the server's half ends a round trip later (the client's Finished)
            stats = {}

            def done():
                stats.update(server.stats())
                return stats["handshakes"] >= count

            clients.serve(done)
        finally:
            clients.close()
    return count / elapsed, (stats["cpu"] - before) / count * 1e6


def serverCpuPerHandshake(count):
    """
    In process, as run.py's serverCpuPerHandshake: the time spent inside
    aioquic's server C{QuicConnection} (and its header parse) for one
    handshake, the clients excluded; the certificate is ECDSA P-256, the
    peerservers' kind.

    @return: microseconds per handshake.
    """
    import shutil
    import tempfile

    require("quic")
    directory = tempfile.mkdtemp()
    try:
        certPath, keyPath = makeCertificate(directory)
        serverConfiguration = QuicConfiguration(is_client=False, alpn_protocols=[ALPN], max_datagram_frame_size=65536,
                                                max_datagram_size=MAX_DATAGRAM_SIZE)
        serverConfiguration.load_cert_chain(certPath, keyPath)

        class Cert:
            cert = certPath

        clientConf = clientConfiguration(Cert)  # aioquic reads the file at each verification
        clientAddr, serverAddr = ("127.0.0.1", 40000), ("127.0.0.1", 4433)
        spent, done = 0.0, 0
        now = 1000.0
        for _ in range(count):
            client = QuicConnection(configuration=clientConf)
            client.connect(serverAddr, now=now)
            server = None
            serverDone = clientDone = False
            for _ in range(10):
                now += 0.001
                out = client.datagrams_to_send(now=now)
                for e in iter(client.next_event, None):
                    clientDone |= type(e) is HandshakeCompleted
                t = time.perf_counter()
                for data, _ in out:
                    if server is None:
                        header = pull_quic_header(Buffer(data=data), host_cid_length=8)
                        server = QuicConnection(configuration=serverConfiguration,
                                                original_destination_connection_id=header.destination_cid)
                    server.receive_datagram(data, clientAddr, now=now)
                back = server.datagrams_to_send(now=now)
                for e in iter(server.next_event, None):
                    serverDone |= type(e) is HandshakeCompleted
                spent += time.perf_counter() - t
                for data, _ in back:
                    client.receive_datagram(data, serverAddr, now=now)
                if serverDone and clientDone and not out and not back:
                    break
            done += serverDone
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if done != count:
        raise RuntimeError(f"in-process QUIC handshakes: {done} of {count}")
    return spent / count * 1e6


# -- TLS -------------------------------------------------------------------------------


def tlsConnect(server):
    """
    @return: a blocking TLS socket to the server, its certificate verified.
    """
    context = ssl.create_default_context(cafile=server.cert)
    sock = socket.create_connection(server.addr)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return context.wrap_socket(sock, server_hostname="localhost")


def tlsOneWay(size, count):
    with PeerServer("tls-count") as server:
        sock = tlsConnect(server)
        try:
            records = (struct.pack(">I", size) + os.urandom(size)) * count
            view = memoryview(records)
            server.command("reset")
            cpuBefore = server.stats()["cpu"]
            start = time.perf_counter()
            for i in range(0, len(records), 65536):  # 64 KiB writes
                sock.sendall(view[i : i + 65536])
            sending = time.perf_counter() - start
            stats = drained(server)
        finally:
            sock.close()
    return stats, start, cpuBefore, sending


def tlsEcho(size, inFlight, seconds):
    with PeerServer("tls-echo") as server:
        sock = tlsConnect(server)
        sock.settimeout(1.0)
        try:
            record = struct.pack(">I", size) + os.urandom(size)
            want, pending = len(record), bytearray()

            def sendSome(count):
                sock.sendall(record * count)

            def receiveSome():
                while len(pending) < want:
                    try:
                        data = sock.recv(65536)
                    except (socket.timeout, TimeoutError):
                        return 0
                    if not data:
                        raise RuntimeError("the TLS echo server closed the connection")
                    pending.extend(data)
                got = len(pending) // want
                del pending[:got * want]
                return got

            return keepInFlight(sendSome, receiveSome, inFlight, seconds)
        finally:
            sock.close()


# -- the cases, shaped as run.py's ---------------------------------------------------


def oneWayRate(mode, size, count):
    """
    Send C{count} messages of C{size} bytes one way at a counting peer
    server and measure the rate at which it received them, from the first
    send to the last receive. C{mode}: C{asyncio-udp-count},
    C{uvloop-udp-count} (run.py's blast of plain datagrams), C{quic-count}
    (pre-built DATAGRAM packets, the same blast), C{quic-count:uvloop} (its
    server on uvloop), C{tls-count} (records with a 4-byte length prefix,
    64 KiB writes).

    @return: as run.py's oneWayRate: (messages per second, messages
        received, server CPU microseconds per message, the sender's
        messages per second), so run.py's L{bound} applies.
    """
    require(mode)
    if mode in UDP_MODES:
        with PeerServer(mode) as server:
            packets = [os.urandom(size)] * count
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.connect(server.addr)
            server.command("reset")
            cpuBefore = server.stats()["cpu"]
            start = time.perf_counter()
            sending = blast(sock, packets, server.addr)
            stats = drained(server)
            sock.close()
    elif mode.startswith("quic-count"):
        stats, start, cpuBefore, sending = quicOneWay(mode, size, count)
    elif mode == "tls-count":
        stats, start, cpuBefore, sending = tlsOneWay(size, count)
    else:
        raise ValueError(f"no one-way case for {mode!r}")
    n = stats["messages"]
    cpu = (stats["cpu"] - cpuBefore) / n * 1e6 if n else 0.0
    return n / (stats["last"] - start) if n else 0.0, n, cpu, count / sending


def echo(mode, size, inFlight, seconds):
    """
    Keep C{inFlight} messages of C{size} bytes outstanding against a peer's
    echo server (C{asyncio-udp-echo}, C{uvloop-udp-echo}, C{quic-echo},
    C{quic-echo:uvloop}, C{tls-echo}), as run.py's echo.

    @return: (round trips per second, list of round-trip times in seconds)
    """
    require(mode)
    if mode.startswith("quic-echo"):
        return quicEcho(mode, size, inFlight, seconds)
    if mode == "tls-echo":
        return tlsEcho(size, inFlight, seconds)
    if mode not in ("asyncio-udp-echo", "uvloop-udp-echo"):
        raise ValueError(f"no echo case for {mode!r}")
    with PeerServer(mode) as server:
        sock, sendSome, receiveSome = plainEchoClient(server.addr, os.urandom(size))
        try:
            return keepInFlight(sendSome, receiveSome, inFlight, seconds)
        finally:
            sock.close()


# -- the table -------------------------------------------------------------------------


def run(quick=False, repeats=None):
    """
    Every peer case, in run.py's figure format (name: figure dict).
    """
    repeats = repeats or (1 if quick else 3)
    n = 2000 if quick else 50_000
    quicN = 2000 if quick else 20_000  # aioquic builds about 30,000 packets a second: kept short
    echoSeconds = 0.3 if quick else 2.0
    megabytes = 4 if quick else 32
    results = {}
    for size in (64, 1200):
        for name, mode, count in (("asyncio UDP", "asyncio-udp-count", n), ("uvloop UDP", "uvloop-udp-count", n),
                                  ("aioquic DATAGRAM", "quic-count", quicN),
                                  ("Twisted TLS records", "tls-count", n)):
            runs = [oneWayRate(mode, size, count) for _ in range(repeats)]
            results[f"one-way {size} B, {name} (msg/s)"] = figure(median([r[0] for r in runs]), "msg/s",
                                                                   bound=bound(runs))
            results[f"receiver CPU per message, one-way {size} B, {name} (us)"] = figure(
                median([r[2] for r in runs]), "us")
        for name, mode in (("asyncio UDP", "asyncio-udp-echo"), ("uvloop UDP", "uvloop-udp-echo"),
                           ("aioquic DATAGRAM", "quic-echo"), ("Twisted TLS", "tls-echo")):
            results[f"echo {size} B, 64 in flight, {name} (rt/s)"] = figure(
                median([echo(mode, size, 64, echoSeconds)[0] for _ in range(repeats)]), "round trips/s")
    for name, mode in (("aioquic stream", "quic-stream"), ("Twisted TLS 64 KiB records", "tls-count")):
        runs = [streamRate(megabytes, mode) for _ in range(repeats)]
        results[f"bulk {megabytes} MiB, {name} (MB/s)"] = figure(
            median([r[0] for r in runs]), "MB/s", bound=sorted(runs)[len(runs) // 2][3])  # the median run's
        results[f"receiver CPU per MiB, {name} (us)"] = figure(median([r[2] for r in runs]), "us")
    rates, cpus = zip(*[handshakeRate(200 if quick else 1000) for _ in range(repeats)])
    # the server was the limit if it was busy most of the time (the clients share this process's core)
    busy = median(rates) * median(cpus) / 1e6
    side = f"server ({busy:.0%} busy)" if busy >= 0.8 else f"clients (server {busy:.0%} busy)"
    results["aioquic handshakes per second (16 concurrent clients)"] = figure(median(rates), "handshakes/s",
                                                                             bound=side)
    results["aioquic server CPU per handshake (process, loopback)"] = figure(median(cpus), "us")
    results["aioquic server CPU per handshake (QuicConnection only)"] = figure(
        median([serverCpuPerHandshake(30 if quick else 300) for _ in range(repeats)]), "us")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description="the peers sudp is compared with (loopback)")
    parser.add_argument("--quick", action="store_true", help="tiny counts: a smoke run of seconds")
    parser.add_argument("--repeats", type=int, help="repeats per case (default 3, quick 1)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if aioquic is None or uvloop is None:
        sys.exit("benchmarks/peers.py needs the bench extra: pip install .[bench] (aioquic, uvloop)")
    started = time.time()
    print(f"peers: aioquic {aioquic.__version__}, uvloop {uvloop.__version__}, {ssl.OPENSSL_VERSION}", flush=True)
    results = run(args.quick, args.repeats)
    printTable(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"took seconds": time.time() - started, "quick": args.quick, "figures": results}, f, indent=2)
    print(f"\n({time.time() - started:.0f} s)")
    return results


if __name__ == "__main__":
    main()
