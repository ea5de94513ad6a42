"""
Per-packet cost of the sudp/1 data path, against the raw AEAD call.

Baseline: cryptography's ChaCha20Poly1305.encrypt/decrypt on one reused
object with a fresh 12-byte nonce per packet (what any implementation must
pay). Measured beside it, in the same process: the suite layer (ICipherSuite
seal/open) and the full session path (the engine's sendMessage, as the
Twisted adapter calls it, producing a DATA datagram; ServerEngine's
receiveDatagram authenticating and delivering it, replay window included;
one datagram a call, and reads of 32 through the pure-Python loop and
through the C data path of sudp.speedups when it is built). Each case is repeated and the median reported.
"""

import argparse
import json
import os
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305  # noqa: E402

from sudp.keys import Identity  # noqa: E402
from sudp.suites import DEFAULT_SUITE  # noqa: E402
from sudp.udp.client import ClientEngine  # noqa: E402
from sudp.udp.server import ServerEngine  # noqa: E402

from inmemory import exchange  # noqa: E402  (benchmarks/, this script's folder)

CLIENT = ("127.0.0.1", 40000)
SERVER = ("127.0.0.1", 9000)


def perPacket(fn, n, repeats):
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(n)
        samples.append((time.perf_counter() - t) / n * 1e6)
    return statistics.median(samples)


def session():
    ident = Identity.generate()
    server = ServerEngine(ident)
    client = ClientEngine(ident.publicKey, SERVER)
    client.start(0.0)
    exchange(client, server, CLIENT, SERVER, 0.0, rounds=4)
    return server, client


def run(size, n, repeats):
    payload = os.urandom(size)
    key = os.urandom(32)
    aead = ChaCha20Poly1305(key)
    nonce = struct.Struct(">4xQ").pack
    header = os.urandom(13)

    def rawSeal(n):
        enc = aead.encrypt
        for i in range(n):
            enc(nonce(i), payload, header)

    sealed = [aead.encrypt(nonce(i), payload, header) for i in range(n)]

    def rawOpen(n):
        dec = aead.decrypt
        for i in range(n):
            dec(nonce(i), sealed[i], header)

    cipher = DEFAULT_SUITE.newCipher(key)

    def suiteSeal(n):
        seal = cipher.seal
        for i in range(n):
            seal(i, header, payload)

    def suiteOpen(n):
        open_ = cipher.open
        for i in range(n):
            open_(i, header, sealed[i])

    server, client = session()

    # what a real server does: each read's output and events are handed on
    # and freed (keeping 20,000 of them alive would time page faults, not sudp)
    def sessionSend(n):
        send, live = client.sendMessage, client.session
        take = client.datagramsToSend
        for i in range(n):
            send(live, payload, 1.0)
            if i & 31 == 31:
                take()
        take()

    def sessionReceive(n, batch=None, fast=True):
        send, live = client.sendMessage, client.session
        for _ in range(n):
            send(live, payload, 1.0)
        packets = [d for d, _ in client.datagramsToSend()]
        saved = server._fast
        if not fast:
            server._fast = None
        t = time.perf_counter()
        if batch is None:
            receive = server.receiveDatagram
            events = server.nextEvents
            for i, d in enumerate(packets):
                receive(d, CLIENT, 1.0)
                if i & 31 == 31:
                    events()
        else:
            receive = server.receiveDatagrams
            for i in range(0, n, batch):
                receive(packets[i : i + batch], CLIENT, 1.0)
                server.nextEvents()
        elapsed = time.perf_counter() - t
        server._fast = saved
        server.nextEvents()
        return elapsed

    datagrams = []
    headerStruct = struct.Struct(">BIQ")
    for i in range(n):
        h = headerStruct.pack(0x18, 7, i)
        datagrams.append(h + aead.encrypt(nonce(i), payload, h))

    def floor(n):
        # the least any Python receive path can do: parse the header, build
        # the nonce, slice, open, find the session, hand the message on
        dec, unpack, sessions, out = aead.decrypt, headerStruct.unpack_from, {7: object()}, []
        for i, d in enumerate(datagrams[:n]):
            _, index, seq = unpack(d)
            out.append((sessions.get(index), dec(nonce(seq), d[13:], d[:13])))
            if i & 31 == 31:
                out.clear()

    rows = {}
    rows["seal: raw AEAD"] = perPacket(rawSeal, n, repeats)
    rows["seal: suite layer"] = perPacket(suiteSeal, n, repeats)
    rows["seal: session (DATA datagram)"] = perPacket(sessionSend, n, repeats)
    rows["open: raw AEAD"] = perPacket(rawOpen, n, repeats)
    rows["open: suite layer"] = perPacket(suiteOpen, n, repeats)
    rows["open: server engine, one datagram a call (Python path)"] = statistics.median(
        [sessionReceive(n) / n * 1e6 for _ in range(repeats)])
    rows["open: server engine, reads of 32, pure Python"] = statistics.median(
        [sessionReceive(n, 32, fast=False) / n * 1e6 for _ in range(repeats)])
    if server._fast is not None:
        rows["open: server engine, reads of 32, C data path"] = statistics.median(
            [sessionReceive(n, 32) / n * 1e6 for _ in range(repeats)])
    rows["open: floor of any Python path (parse, open, look up, hand on)"] = perPacket(floor, n, repeats)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--packets", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    results = {}
    for size in (64, 1200):
        rows = run(size, args.packets, args.repeats)
        results[size] = rows
        print(f"\n{size}-byte messages, median of {args.repeats} x {args.packets} packets")
        print(f"{'case':64} {'us/packet':>10} {'x raw':>7}")
        for name, us in rows.items():
            base = rows["seal: raw AEAD"] if name.startswith("seal") else rows["open: raw AEAD"]
            print(f"{name:64} {us:10.2f} {us / base:7.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
