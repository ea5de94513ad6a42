# -*- test-case-name: sudp_test.test_climit -*-
"""
How far the sudp receive path is from a C receiver doing the same decrypts.

    python benchmarks/climit.py [--quick] [--count N]

benchmarks/creceiver.c is a UDP receiver in C (recvmmsg, 32 a call; one
OpenSSL EVP context keyed once, one AEAD open per packet; no replay window,
no sessions: the cost floor of recv + AEAD open, not a protocol). This
module builds it (into benchmarks/results/.build/, again only when the
source is newer), drives it with run.py's control protocol (L{CReceiver},
shaped as run.py's C{Server}) and blasts it with run.py's one-way sender
(C{run.blast}, the same function C{run.oneWayRate} uses) pre-built sudp
DATA packets of a session opened in memory (benchmarks/inmemory.py), the
receiver keyed with that session's client-to-server key
(L{oneWayLimit}). C{plain} mode counts datagrams without crypto, the floor
of plaintext UDP receive in C.
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "creceiver.c")
BUILD = os.path.join(HERE, "results", ".build")
BINARY = os.path.join(BUILD, "creceiver")
SUITES = ("chacha20-poly1305", "aes-256-gcm")

if HERE not in sys.path:
    sys.path.insert(0, HERE)

# run.py picks the sudp measured (benchmarks/environment.py) on import
from run import Server, blast, drained  # noqa: E402
from inmemory import exchange  # noqa: E402

from sudp.keys import Identity  # noqa: E402
from sudp.suites import getSuite  # noqa: E402
from sudp.udp.client import ClientEngine  # noqa: E402
from sudp.udp.config import Config  # noqa: E402
from sudp.udp.server import ServerEngine  # noqa: E402


class BuildError(RuntimeError):
    """
    creceiver.c cannot be built here: the message says why.
    """


class MissingTools(BuildError):
    """
    No C compiler, no OpenSSL headers, or no creceiver.c, to build with.
    """


def build(source=SOURCE, binary=BINARY):
    """
    Compile C{source} to C{binary} unless C{binary} exists and is not older
    than C{source}.

    @return: the path of the binary.
    @raise MissingTools: if gcc, OpenSSL's headers or the source are missing.
    @raise BuildError: if the compile fails otherwise.
    """
    if not os.path.exists(source):
        raise MissingTools(f"{source} not found (a source distribution without it?)")
    if os.path.exists(binary) and os.path.getmtime(binary) >= os.path.getmtime(source):
        return binary
    gcc = shutil.which("gcc")
    if gcc is None:
        raise MissingTools("gcc not found: benchmarks/creceiver.c needs a C compiler "
                           "(apt-get install gcc)")
    os.makedirs(os.path.dirname(binary), exist_ok=True)
    tmp = f"{binary}.{os.getpid()}.tmp"
    result = subprocess.run([gcc, "-O2", "-Wall", "-Wextra", "-o", tmp, source, "-lcrypto"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if "openssl/evp.h" in result.stderr:
            raise MissingTools("OpenSSL headers not found: benchmarks/creceiver.c needs them "
                             "(apt-get install libssl-dev)")
        raise BuildError(f"gcc could not build benchmarks/creceiver.c:\n{result.stderr}")
    os.replace(tmp, binary)
    return binary


class CReceiver(Server):
    """
    benchmarks/creceiver.c in its own process, driven as run.py's
    C{Server} (C{.addr}, C{.command}, C{.stats}, C{.close}, a context
    manager).
    """

    def __init__(self, mode, key=None):
        """
        @param mode: C{"plain"}, C{"chacha20-poly1305"} or C{"aes-256-gcm"}.
        @param key: the 32-byte key that opens the packets (not for plain).
        """
        if (mode == "plain") != (key is None):
            raise ValueError("plain takes no key; the AEAD modes need one")
        self.start([build(), mode] + ([bytes(key).hex()] if key is not None else []), f"creceiver {mode}")


def sealedPackets(suite, size, count):
    """
    Open a sudp/1 session under C{suite} in memory (a client and a server
    engine, benchmarks/inmemory.py) and seal C{count} messages of C{size}
    random bytes from the client, as run.py's C{oneWayRate} builds its
    packets.

    @return: (the DATA packets, the client's send key of their epoch)
    """
    config = Config(suites=(getSuite(suite),))
    identity = Identity.generate()
    server = ServerEngine(identity, config)
    client = ClientEngine(identity.publicKey, ("127.0.0.1", 9000), config)
    client.start(0.0)
    exchange(client, server, ("127.0.0.1", 4000), ("127.0.0.1", 9000), 0.0, rounds=3)
    session = client.session
    epoch = session.sendEpoch
    payload = os.urandom(size)
    packets = []
    for _ in range(count):
        client.sendMessage(session, payload, time.monotonic())
        [(packet, _)] = client.datagramsToSend()
        packets.append(packet)
    if session.sendEpoch is not epoch:
        raise RuntimeError("the session rekeyed while sealing: "
                           "fewer packets, or a higher rekeyAfterMessages")
    return packets, bytes(epoch.keys.c2s)


def oneWayLimit(size, count, suite="plain", key=None, gso=False):
    """
    Blast C{count} pre-built datagrams of C{size} bytes of payload at
    creceiver (run.py's C{blast}, the sender of C{run.oneWayRate}) and
    measure the rate at which it received (C{plain}) or authenticated
    (a suite) them, from the first send to the last receive, as
    C{oneWayRate} does.

    @param suite: C{"plain"} or a suite of L{SUITES}.
    @param key: open the packets with this key instead of the session's
        (a wrong key shows the decrypt is real: no message authenticates).
    @param gso: send in GSO batches of 64 (C{oneWayRate}'s C{gso}); the
        receiver has no GRO, so the kernel splits them before it reads.
    @return: (messages per second, messages, receiver CPU microseconds per
        message, the sender's datagrams per second, datagrams received)
    @raise RuntimeError: if a received datagram did not authenticate
        (unless C{key} was given).
    """
    if suite == "plain":
        packets, right = [os.urandom(size)] * count, None
    else:
        packets, right = sealedPackets(suite, size, count)
    with CReceiver(suite, key if key is not None else right) as receiver:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(("127.0.0.1", 0))
            sock.connect(receiver.addr)
            receiver.command("reset")
            cpuBefore = receiver.stats()["cpu"]
            start = time.perf_counter()  # CLOCK_MONOTONIC, creceiver's clock too
            sending = blast(sock, packets, receiver.addr, gso)
            stats = drained(receiver)
        finally:
            sock.close()
    received = stats["datagrams"]
    n = received if suite == "plain" else stats["messages"]
    if suite != "plain" and key is None and n != received:
        raise RuntimeError(f"{suite}: {received - n} of {received} datagrams received "
                           "did not authenticate")
    cpu = (stats["cpu"] - cpuBefore) / n * 1e6 if n else 0.0
    rate = n / (stats["last"] - start) if n else 0.0
    return rate, n, cpu, count / sending, received


def run(quick=False, count=None, sizes=(64, 1200), gso=False):
    """
    @return: {(mode, size): the figures of L{oneWayLimit}}
    """
    count = count or (20_000 if quick else 200_000)
    out = {}
    for size in sizes:
        for mode in ("plain",) + SUITES:
            out[(mode, size)] = oneWayLimit(size, count, mode, gso=gso)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description="the C floor of sudp's receive path (loopback)")
    parser.add_argument("--quick", action="store_true", help="20,000 datagrams a case")
    parser.add_argument("--count", type=int,
                        help="datagrams a case (default 200,000; quick 20,000)")
    parser.add_argument("--gso", action="store_true",
                        help="run.py's GSO sender (64 segments a send)")
    args = parser.parse_args(argv)
    try:
        build()
    except BuildError as e:
        sys.exit(f"benchmarks/climit.py: {e}")
    count = args.count or (20_000 if args.quick else 200_000)
    results = run(args.quick, count, gso=args.gso)
    title = "C receiver, one-way" + (", GSO sender" if args.gso else "")
    print(f"{title:36} {'msg/s':>10} {'CPU us/msg':>11} {'sent/s':>10}"
          f" {'received':>9}  bound by")
    for (mode, size), (rate, n, cpu, sendRate, received) in results.items():
        # run.py's rule: the receiver if it delivered under 95 % of the send rate or lost datagrams
        bound = "receiver" if rate < 0.95 * sendRate or received < count else "sender"
        print(f"{mode + f' {size} B':36} {rate:10.0f} {cpu:11.3f} {sendRate:10.0f}"
              f" {received:9d}  {bound}")
    return results


if __name__ == "__main__":
    main()
