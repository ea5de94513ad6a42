"""
Per-datagram cost of the vpn041 data plane in each mode, beside sudp/1's
cipher suites, in the same process and run (docs/vpn041.md, "Cost").

vpn041: PacketCodec.seal / open (the per-packet HKDF, then AES-CBC with
PKCS#7, AES-GCM, GMAC or nothing), and a session's receive path (the
record of nonces checked and updated around open). sudp/1: IPacketCipher
seal / open of each suite with its sequence number and 13-byte header, as
in bench_suites.py. Reported: median microseconds per datagram over
repeats, and each vpn041 figure as a ratio to sudp/1's default suite
(chacha20-poly1305) at the same size.
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sudp.suites import getSuite  # noqa: E402
from sudp.udp.packets import DATA, encodeDataHeader  # noqa: E402
from sudp.vpn041.dataplane import CLIENT, GATEWAY, PacketCodec, parseHeader  # noqa: E402
from sudp.vpn041.nonces import NonceRecord, makeNonce  # noqa: E402

SUITES = ("chacha20-poly1305", "aes-256-gcm", "xchacha20-poly1305", "xsalsa20-poly1305")
BASELINE = "chacha20-poly1305"
MODES = {"plaintext": (False, False), "aes-256-cbc (the spec's)": (True, False),
         "gmac (authenticated)": (False, True), "aes-256-gcm (authenticated)": (True, True)}


def median(fn, items, repeats):
    """
    @return: the median over C{repeats} runs of microseconds per call of
        C{fn(*item)} over C{items}.
    """
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        for item in items:
            fn(*item)
        samples.append((time.perf_counter() - t) / len(items) * 1e6)
    return statistics.median(samples)


def suiteRows(size, packets, repeats):
    """
    @return: a row per sudp/1 suite: seal and open, microseconds.
    """
    payload = os.urandom(size)
    headers = [(i, encodeDataHeader(DATA, 7, i)) for i in range(packets)]
    rows = []
    for name in SUITES:
        suite = getSuite(name)
        cipher = suite.newCipher(os.urandom(suite.keySize))
        sealed = [(i, hd, cipher.seal(i, hd, payload)) for i, hd in headers]
        rows.append({"name": f"sudp/1 {name}", "size": size, "bytes": len(sealed[0][2]) - size + 13,
                     "seal": median(cipher.seal, [(i, hd, payload) for i, hd in headers], repeats),
                     "open": median(cipher.open, sealed, repeats)})
    return rows


def vpnRows(size, packets, repeats):
    """
    @return: a row per vpn041 mode: seal, open, and the session's receive
        path with the record of nonces, microseconds.
    """
    payload = os.urandom(size)
    key = os.urandom(32)
    rows = []
    for name, (useEncryption, authenticated) in MODES.items():
        sender = PacketCodec(1, key, useEncryption, authenticated, role=CLIENT)
        receiver = PacketCodec(1, key, useEncryption, authenticated, role=GATEWAY)
        nonces = [makeNonce(i / packets) for i in range(packets)]
        datagrams = [sender.seal(payload, nonce) for nonce in nonces]
        opened = [parseHeader(d)[1:] for d in datagrams]
        assert receiver.open(*opened[0]) == payload

        def receive(nonce, body, record=None):
            # a fresh record per run: what a session does for each datagram
            record.check(nonce, 0.5)
            receiver.open(nonce, body)
            record.add(nonce, 0.5)

        def receivePath(repeats=repeats):
            samples = []
            for _ in range(repeats):
                record = NonceRecord(packets + 1, 30.0)
                t = time.perf_counter()
                for nonce, body in opened:
                    receive(nonce, body, record)
                samples.append((time.perf_counter() - t) / len(opened) * 1e6)
            return statistics.median(samples)

        rows.append({"name": f"vpn041 {name}", "size": size, "bytes": len(datagrams[0]) - size,
                     "seal": median(sender.seal, [(payload, n) for n in nonces], repeats),
                     "open": median(receiver.open, opened, repeats),
                     "receive": receivePath()})
    return rows


def main():
    parser = argparse.ArgumentParser(description="vpn041 data-plane cost per datagram beside sudp/1's suites")
    parser.add_argument("--packets", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json")
    args = parser.parse_args()
    allRows = []
    print(f"median of {args.repeats} runs of {args.packets} datagrams; us per datagram; x = ratio to sudp/1 "
          f"{BASELINE} at the same size (same run)")
    print(f"{'data plane':36} {'size':>5} {'seal':>7} {'x':>5} {'open':>7} {'x':>5} {'receive':>8} {'x':>5} "
          f"{'bytes':>6}")
    for size in (64, 1200):
        rows = suiteRows(size, args.packets, args.repeats) + vpnRows(size, args.packets, args.repeats)
        base = next(r for r in rows if r["name"] == f"sudp/1 {BASELINE}")
        for r in rows:
            r["seal ratio"] = r["seal"] / base["seal"]
            r["open ratio"] = r["open"] / base["open"]
            receive = f"{r['receive']:8.2f} {r['receive'] / base['open']:5.2f}" if "receive" in r else f"{'':8} {'':5}"
            if "receive" in r:
                r["receive ratio"] = r["receive"] / base["open"]
            print(f"{r['name']:36} {size:5} {r['seal']:7.2f} {r['seal ratio']:5.2f} {r['open']:7.2f} "
                  f"{r['open ratio']:5.2f} {receive} {r['bytes']:6}")
            allRows.append(r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(allRows, f, indent=2)


if __name__ == "__main__":
    main()
