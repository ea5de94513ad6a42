"""
Stream throughput: sframe against plaintext TCP and Twisted's TLS, in one run.

Each case runs a server and a client in this process over 127.0.0.1:
  - bulk: the client writes MEGABYTES in 64 KiB writes through a pull
    producer (so nothing piles up), and the clock stops when the server has
    read the last byte;
  - small: the client writes COUNT 64-byte writes back to back and the clock
    stops when the server has them all.
Transports: plaintext TCP; TLS 1.3 (twisted.protocols.tls.TLSMemoryBIOProtocol
over pyOpenSSL, AES-256-GCM or ChaCha20 as OpenSSL picks, self-signed
certificate); sframe with the peer-to-peer spec's AES-256-CTR + chained SHA-256; sframe
with ChaCha20-Poly1305 or AES-256-GCM per frame. Medians of the repeats; ratios are against
TCP and TLS measured in this same run.
"""

import argparse
import datetime
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from twisted.internet import defer, protocol, task  # noqa: E402
from twisted.internet.endpoints import (  # noqa: E402
    SSL4ServerEndpoint,
    TCP4ClientEndpoint,
    TCP4ServerEndpoint,
    wrapClientTLS,
)
from twisted.internet.interfaces import IPullProducer  # noqa: E402
from twisted.internet.ssl import Certificate, PrivateCertificate, optionsForClientTLS  # noqa: E402
from zope.interface import implementer  # noqa: E402

from sudp.keys import Identity  # noqa: E402
from sudp.stream.endpoints import SFrameClientEndpoint, SFrameServerEndpoint  # noqa: E402
from sudp.stream.handshake import AEAD_FRAMES, GCM_FRAMES, SEED003, StreamConfig  # noqa: E402

CHUNK = 64 * 1024


def selfSigned():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    keyPem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())
    return PrivateCertificate.loadPEM(keyPem + pem), Certificate.loadPEM(pem)


class Sink(protocol.Protocol):
    def connectionMade(self):
        self.received = 0

    def dataReceived(self, data):
        self.received += len(data)
        if self.received >= self.factory.expect and not self.factory.done.called:
            self.factory.done.callback(time.perf_counter())


@implementer(IPullProducer)
class Chunks:
    def __init__(self, transport, total):
        self.transport = transport
        self.left = total
        self.chunk = os.urandom(CHUNK)

    def resumeProducing(self):
        if self.left <= 0:
            self.transport.unregisterProducer()
            return
        self.transport.write(self.chunk)
        self.left -= CHUNK

    def stopProducing(self):
        self.left = 0


def transports(reactor, cert, trust):
    identity = Identity.generate()
    host = "127.0.0.1"

    def tcp():
        return TCP4ServerEndpoint(reactor, 0, interface=host), lambda port: TCP4ClientEndpoint(reactor, host, port)

    def tls():
        return (
            SSL4ServerEndpoint(reactor, 0, cert.options(), interface=host),
            lambda port: wrapClientTLS(optionsForClientTLS("localhost", trustRoot=trust),
                                       TCP4ClientEndpoint(reactor, host, port)),
        )

    def sframe(suite):
        config = StreamConfig(suites=(suite,))
        return lambda: (
            SFrameServerEndpoint(reactor, TCP4ServerEndpoint(reactor, 0, interface=host), identity, config),
            lambda port: SFrameClientEndpoint(reactor, TCP4ClientEndpoint(reactor, host, port),
                                              identity.publicKey, config),
        )

    return [("tcp", tcp), ("tls (TLSMemoryBIOProtocol)", tls),
            ("sframe aes-256-ctr-sha256", sframe(SEED003)), ("sframe chacha20-poly1305", sframe(AEAD_FRAMES)),
            ("sframe aes-256-gcm", sframe(GCM_FRAMES))]


@defer.inlineCallbacks
def runCase(reactor, makeEndpoints, total, small):
    serverEndpoint, clientFor = makeEndpoints()
    factory = protocol.Factory.forProtocol(Sink)
    factory.expect = total
    factory.done = defer.Deferred()
    port = yield serverEndpoint.listen(factory)
    client = yield clientFor(port.getHost().port).connect(protocol.Factory.forProtocol(protocol.Protocol))
    start = time.perf_counter()
    if small:
        message = os.urandom(64)
        write = client.transport.write
        for _ in range(total // 64):
            write(message)
    else:
        client.transport.registerProducer(Chunks(client.transport, total), False)
    end = yield factory.done
    client.transport.loseConnection()
    yield port.stopListening()
    return end - start


@defer.inlineCallbacks
def main(reactor, args):
    cert, trust = selfSigned()
    results = {}
    for name, make in transports(reactor, cert, trust):
        bulk, small = [], []
        for _ in range(args.repeats):
            bulk.append((yield runCase(reactor, make, args.megabytes * 1024 * 1024, False)))
            small.append((yield runCase(reactor, make, args.count * 64, True)))
        results[name] = {
            "bulk MB/s": args.megabytes / statistics.median(bulk),
            "small writes/s": args.count / statistics.median(small),
        }
    tcp, tls = results["tcp"], results["tls (TLSMemoryBIOProtocol)"]
    print(f"median of {args.repeats}; bulk {args.megabytes} MiB in 64 KiB writes; small {args.count} x 64 B")
    print(f"{'transport':28} {'bulk MB/s':>10} {'xTCP':>6} {'xTLS':>6} {'small/s':>10} {'xTCP':>6} {'xTLS':>6}")
    for name, r in results.items():
        r["bulk x tcp"] = r["bulk MB/s"] / tcp["bulk MB/s"]
        r["bulk x tls"] = r["bulk MB/s"] / tls["bulk MB/s"]
        r["small x tcp"] = r["small writes/s"] / tcp["small writes/s"]
        r["small x tls"] = r["small writes/s"] / tls["small writes/s"]
        print(f"{name:28} {r['bulk MB/s']:10.1f} {r['bulk x tcp']:6.2f} {r['bulk x tls']:6.2f} "
              f"{r['small writes/s']:10.0f} {r['small x tcp']:6.2f} {r['small x tls']:6.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="sframe vs TCP vs TLS throughput")
    parser.add_argument("--megabytes", type=int, default=64)
    parser.add_argument("--count", type=int, default=100000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    task.react(main, [args])
