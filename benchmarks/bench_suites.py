"""
Per-packet cost of each cipher suite through ICipherSuite, beside the raw
library call it wraps, in the same process.

Raw baseline: the library's own call on a reused keyed object (cryptography)
or with the key (PyNaCl), the nonce built inline with a struct pack, as any
caller must. Suite: IPacketCipher.seal/open with the sequence number and
13-byte header. Reported: median microseconds per packet over repeats, and
the suite layer's overhead in percent (goal: at most 20 %).
"""

import argparse
import json
import os
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305  # noqa: E402
from nacl import bindings  # noqa: E402

from sudp.suites import getSuite  # noqa: E402
from sudp.udp.packets import DATA, encodeDataHeader  # noqa: E402

N96 = struct.Struct(">4xQ").pack
N192 = struct.Struct(">16xQ").pack
PAD = bytes(11)


def rawCalls(name, key):
    """
    @return: (seal(i, header, pt), open(i, header, sealed)) making the raw
        library call for suite C{name}.
    """
    if name in ("chacha20-poly1305", "aes-256-gcm"):
        aead = (ChaCha20Poly1305 if name == "chacha20-poly1305" else AESGCM)(key)
        enc, dec = aead.encrypt, aead.decrypt
        return (lambda i, hd, pt: enc(N96(i), pt, hd)), (lambda i, hd, ct: dec(N96(i), ct, hd))
    if name == "xchacha20-poly1305":
        enc = bindings.crypto_aead_xchacha20poly1305_ietf_encrypt
        dec = bindings.crypto_aead_xchacha20poly1305_ietf_decrypt
        return (lambda i, hd, pt: enc(pt, hd, N192(i), key)), (lambda i, hd, ct: dec(ct, hd, N192(i), key))
    if name == "xsalsa20-poly1305":
        enc, dec = bindings.crypto_secretbox, bindings.crypto_secretbox_open
        return (lambda i, hd, pt: enc(pt, hd + PAD, key)), (lambda i, hd, ct: dec(ct, hd + PAD, key))
    raise KeyError(name)


def timeit(fn, items, repeats):
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        for i, hd, data in items:
            fn(i, hd, data)
        samples.append((time.perf_counter() - t) / len(items) * 1e6)
    return statistics.median(samples)


def run(size, packets, repeats):
    rows = []
    payload = os.urandom(size)
    headers = [(i, encodeDataHeader(DATA, 7, i)) for i in range(packets)]
    for name in ("chacha20-poly1305", "aes-256-gcm", "xchacha20-poly1305", "xsalsa20-poly1305"):
        suite = getSuite(name)
        key = os.urandom(suite.keySize)
        cipher = suite.newCipher(key)
        rawSeal, rawOpen = rawCalls(name, key)
        plain = [(i, hd, payload) for i, hd in headers]
        sealed = [(i, hd, cipher.seal(i, hd, payload)) for i, hd in headers]
        assert all(rawOpen(i, hd, ct) == payload for i, hd, ct in sealed[:10])
        row = {"suite": name, "size": size}
        row["seal raw"] = timeit(rawSeal, plain, repeats)
        row["seal suite"] = timeit(cipher.seal, plain, repeats)
        row["open raw"] = timeit(rawOpen, sealed, repeats)
        row["open suite"] = timeit(cipher.open, sealed, repeats)
        row["overhead bytes"] = len(sealed[0][2]) - size + 13
        rows.append(row)
    return rows


def main():
    parser = argparse.ArgumentParser(description="per-suite seal/open cost vs the raw library call")
    parser.add_argument("--packets", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json")
    args = parser.parse_args()
    allRows = []
    print(f"median of {args.repeats} runs of {args.packets} packets; us per packet")
    print(f"{'suite':20} {'size':>5} {'seal raw':>9} {'suite':>7} {'+%':>6} {'open raw':>9} {'suite':>7} {'+%':>6} {'bytes':>6}")
    for size in (64, 1200):
        for r in run(size, args.packets, args.repeats):
            allRows.append(r)
            ps = (r["seal suite"] / r["seal raw"] - 1) * 100
            po = (r["open suite"] / r["open raw"] - 1) * 100
            print(f"{r['suite']:20} {size:5} {r['seal raw']:9.2f} {r['seal suite']:7.2f} {ps:6.1f} "
                  f"{r['open raw']:9.2f} {r['open suite']:7.2f} {po:6.1f} {r['overhead bytes']:6}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(allRows, f, indent=2)


if __name__ == "__main__":
    main()
