"""
Servers of the peers sudp is compared with, one per process, for
benchmarks/peers.py (and benchmarks/run.py): the same control protocol as
benchmarks/servers.py.

    python benchmarks/peerservers.py MODE[:LOOP]

MODE is one of:

  - asyncio-udp-count, asyncio-udp-echo: plaintext UDP through an asyncio
    DatagramProtocol on the default event loop, counting (or echoing) each
    datagram as a message;
  - uvloop-udp-count, uvloop-udp-echo: the same protocol on uvloop;
  - quic-count: an aioquic server (asyncio) that accepts DATAGRAM frames
    (RFC 9221, max_datagram_frame_size set) and counts each as a message;
  - quic-echo: the same, sending each DATAGRAM frame back;
  - quic-stream: an aioquic stream sink: messages and bytes are the stream
    bytes it received (messages=bytes);
  - tls-count, tls-echo: Twisted TLS over TCP (listenSSL, the reactor and
    TLSMemoryBIOProtocol a Twisted user gets), counting or echoing records
    framed with a 4-byte length prefix (Int32StringReceiver): a message is a
    record, bytes the records' payload bytes, datagrams the reads.

The aioquic modes run on asyncio's default event loop; ":uvloop" after the
mode (quic-count:uvloop) runs them on uvloop instead (":asyncio" is the
default). The TLS and QUIC servers use a self-signed ECDSA P-256
certificate for "localhost" and 127.0.0.1 (the common choice for TLS and
QUIC), made at start with `cryptography` in a temporary directory removed
at exit. aioquic and uvloop come from the `bench` extra
(`pip install .[bench]`).

The server binds 127.0.0.1 on a free port, its UDP socket with the 4 MiB
receive buffer of servers.py (RECV_BUFFER), and prints one line of JSON:
{"port": ..., "peer": what it runs (library and version), "loop": the
event loop, "cert": the certificate's PEM path for a client to verify
(TLS, QUIC)}. Each line "reset" on standard input zeroes the counters
(answer: {}); each line "stats" is answered with one line of JSON:
datagrams (UDP datagrams read; for TLS the reads of the TCP socket), first
and last (time.perf_counter(), CLOCK_MONOTONIC, of the first and last
receive), messages, bytes (message payload bytes), handshakes (QUIC and
TLS handshakes completed), cpu (process CPU seconds), rss (bytes). The
server exits when standard input closes.
"""

import asyncio
import datetime
import ipaddress
import json
import os
import shutil
import socket
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serverstats import STATS, reset, seen, stats  # noqa: E402  (this script's folder)

RECV_BUFFER = 4 << 20  # as benchmarks/servers.py: bursts are not lost to the receive buffer
ALPN = "sudp-bench"
# QUIC packets up to a 1,500-byte MTU (aioquic's default is 1,200, which a
# 1,200-byte DATAGRAM frame does not fit: aioquic would hold it forever)
MAX_DATAGRAM_SIZE = 1472
MODES = ("asyncio-udp-count", "asyncio-udp-echo", "uvloop-udp-count", "uvloop-udp-echo",
         "quic-count", "quic-echo", "quic-stream", "tls-count", "tls-echo")


def answer(line):
    """
    @return: the answer to one control line, or None for an unknown one.
    """
    line = line.strip()
    if line == b"reset":
        reset()
        return {}
    if line == b"stats":
        return stats()
    return None


def reply(out):
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


def boundSocket(kind=socket.SOCK_DGRAM):
    sock = socket.socket(socket.AF_INET, kind)
    if kind == socket.SOCK_DGRAM:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
    sock.bind(("127.0.0.1", 0))
    return sock


def makeCertificate(directory):
    """
    A self-signed ECDSA P-256 certificate for localhost and 127.0.0.1.

    @return: (certificate PEM path, private key PEM path)
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    certPath, keyPath = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    with open(certPath, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(keyPath, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return certPath, keyPath


# -- asyncio: plaintext UDP and aioquic ------------------------------------------------


class UDPCount(asyncio.DatagramProtocol):
    def datagram_received(self, data, addr):
        seen()
        STATS["messages"] += 1


class UDPEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        seen()
        STATS["messages"] += 1
        self.transport.sendto(data, addr)


def quicProtocols(mode):
    """
    @return: (the QuicServer subclass that counts datagrams read, the
        connection protocol of C{mode})
    """
    from aioquic.asyncio.protocol import QuicConnectionProtocol
    from aioquic.asyncio.server import QuicServer
    from aioquic.quic import events  # (not the sudp engine's output lists: sudp_test.test_benchmarks)

    DatagramFrameReceived, HandshakeCompleted = events.DatagramFrameReceived, events.HandshakeCompleted
    StreamDataReceived = events.StreamDataReceived

    class CountingServer(QuicServer):
        def datagram_received(self, data, addr):
            seen()
            super().datagram_received(data, addr)

    class Peer(QuicConnectionProtocol):
        def quic_event_received(self, event):
            kind = type(event)
            if kind is DatagramFrameReceived:
                STATS["messages"] += 1
                STATS["bytes"] += len(event.data)
                if mode == "quic-echo":
                    self._quic.send_datagram_frame(event.data)  # sent by the transmit() after these events
            elif kind is StreamDataReceived:
                STATS["messages"] += len(event.data)
                STATS["bytes"] += len(event.data)
            elif kind is HandshakeCompleted:
                STATS["handshakes"] += 1
            else:
                super().quic_event_received(event)

    return CountingServer, Peer


def runAsyncio(mode, loopName):
    """
    Serve an asyncio mode until standard input closes.

    @return: the first line's JSON.
    """
    if loopName == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
        peer = f"uvloop {uvloop.__version__}"
    else:
        loop = asyncio.new_event_loop()
        peer = f"asyncio ({type(loop).__name__})"
    asyncio.set_event_loop(loop)
    sock = boundSocket()
    info = {"port": sock.getsockname()[1], "loop": loopName}
    directory = None
    if mode.endswith("udp-count") or mode.endswith("udp-echo"):
        factory = UDPCount if mode.endswith("count") else UDPEcho
    else:
        import aioquic
        from aioquic.quic.configuration import QuicConfiguration

        directory = tempfile.mkdtemp()
        certPath, keyPath = makeCertificate(directory)
        configuration = QuicConfiguration(is_client=False, alpn_protocols=[ALPN], max_datagram_frame_size=65536,
                                          max_datagram_size=MAX_DATAGRAM_SIZE, idle_timeout=600.0)
        configuration.load_cert_chain(certPath, keyPath)
        server, protocol = quicProtocols(mode)

        def factory():
            return server(configuration=configuration, create_protocol=protocol)

        info["cert"] = certPath
        peer = f"aioquic {aioquic.__version__} on {peer}"
    info["peer"] = peer

    async def serve():
        await loop.create_datagram_endpoint(factory, sock=sock)
        done = loop.create_future()
        fd, pending = sys.stdin.fileno(), bytearray()

        def readable():
            data = os.read(fd, 4096)
            if not data:
                loop.remove_reader(fd)
                done.set_result(None)
                return
            pending.extend(data)
            while b"\n" in pending:
                line, _, rest = bytes(pending).partition(b"\n")
                pending[:] = rest
                out = answer(line)
                if out is not None:
                    reply(out)

        loop.add_reader(fd, readable)
        reply(info)
        await done

    try:
        loop.run_until_complete(serve())
    finally:
        loop.close()
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


# -- Twisted TLS -----------------------------------------------------------------------


def runTLS(mode):
    from twisted.internet import protocol, reactor, ssl, stdio
    from twisted.internet.interfaces import IHandshakeListener
    from zope.interface import implementer
    from twisted.protocols.basic import Int32StringReceiver, LineReceiver
    import twisted

    @implementer(IHandshakeListener)
    class Records(Int32StringReceiver):
        MAX_LENGTH = 1 << 24

        def handshakeCompleted(self):
            STATS["handshakes"] += 1

        def dataReceived(self, data):
            seen()
            Int32StringReceiver.dataReceived(self, data)

        def stringReceived(self, string):
            STATS["messages"] += 1
            STATS["bytes"] += len(string)
            if mode == "tls-echo":
                self.sendString(string)

    class Commands(LineReceiver):
        delimiter = b"\n"

        def lineReceived(self, line):
            out = answer(line)
            if out is not None:
                self.sendLine(json.dumps(out).encode())

        def connectionLost(self, reason):
            if reactor.running:
                reactor.stop()

    directory = tempfile.mkdtemp()
    try:
        certPath, keyPath = makeCertificate(directory)
        with open(certPath) as c, open(keyPath) as k:
            options = ssl.PrivateCertificate.loadPEM(k.read() + c.read()).options()
        port = reactor.listenSSL(0, protocol.Factory.forProtocol(Records), options, interface="127.0.0.1")
        stdio.StandardIO(Commands())
        reply({"port": port.getHost().port, "cert": certPath, "loop": type(reactor).__name__,
               "peer": f"Twisted {twisted.__version__} TLS (pyOpenSSL)"})
        reactor.run()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main(argv):
    mode, _, loopName = argv[0].partition(":")
    loopName = loopName or "asyncio"
    if mode not in MODES or loopName not in ("asyncio", "uvloop"):
        sys.exit(f"peerservers.py: unknown mode {argv[0]!r}; modes: {', '.join(MODES)} (quic ones [:uvloop])")
    if mode.startswith("tls-"):
        runTLS(mode)
    else:
        runAsyncio(mode, "uvloop" if mode.startswith("uvloop-") else loopName)


if __name__ == "__main__":
    main(sys.argv[1:])
