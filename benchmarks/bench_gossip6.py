"""
gossip6's cost figures: what one handshake message costs whoever makes it,
against what each kind of attempt costs the server that refuses (or accepts)
it, in the same process.

Attacker (a sender): one valid m|s is 2**difficulty scrypt evaluations on
average plus one RSA sign; measured as ProofJob.run() (which signs) over
the repeats, beside the expected figure from one evaluation's time.

Server (a UDP gossip6 server engine, rate limits lifted so that every attempt
reaches the gossip6 checks): the time of receiveDatagram() for a G6_INIT
refused by
  - the cookie (bad-cookie: before any gossip6 check),
  - a cheap rule (stale-timestamp, wrong-address, untrusted-key: no scrypt,
    no RSA),
  - the proof of work (weak-proof: one scrypt),
  - the signature (bad-signature: one scrypt and one RSA verify),
and, for an accepted INIT, the checks plus the server's own proof of work
and signature (ProofJob.run) and its G6_RESP (workDone).

The scrypt and RSA operations of each kind are counted in a separate,
untimed pass (the functions wrapped); the timed passes run unwrapped.
What the attacker must spend to make each kind of attempt is in the
"attacker" column: nothing for junk, for a replayed or re-addressed
message, for a message naming a key that is not trusted, or for one that
names a trusted public key (public keys are not secret) with a nonce that
misses the target; 2**difficulty scrypt evaluations (no private key) for
a message with a valid proof and a bad signature -- sent again, it is
refused as reused-proof at the cost of a lookup, since the server records
every proof it has found valid; a trusted private key and
2**difficulty evaluations and a sign for an accepted one.

    python benchmarks/bench_gossip6.py                     # N=1024 r=8 p=1, difficulty 6
    python benchmarks/bench_gossip6.py --difficulty 10 --scrypt-n 16384 --repeats 3
    python benchmarks/bench_gossip6.py --json out.json

Timing belongs here, never in assertions: the test suite runs this with
tiny settings only to check that it works (sudp_test.gossip6.test_udp).
"""

import argparse
import json
import os
import statistics
import sys
import time
from contextlib import contextmanager

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sudp.gossip6 import proof as proof_  # noqa: E402
from sudp.gossip6.checks import ReuseRecord  # noqa: E402
from sudp.gossip6.config import Gossip6Config  # noqa: E402
from sudp.gossip6.proof import ProofJob, meetsTarget  # noqa: E402
from sudp.gossip6.udp import gossip6ServerEngine  # noqa: E402
from sudp.gossip6.wire import Gossip6Init, Message, Signed  # noqa: E402
from sudp.rsaidentity import RSAIdentity
from sudp.rsakeys import RSAPublicKey  # noqa: E402
from sudp.udp import packets as P  # noqa: E402
from sudp.udp.config import Config  # noqa: E402
from sudp.work import WorkNeeded  # noqa: E402
from sudp.udp.keyschedule import Ephemeral  # noqa: E402

SERVER_ADDR = ("127.0.0.1", 9000)
CLIENT_ADDR = ("127.0.0.1", 40000)
NOW = 1_000_000.0
# every attempt must reach the gossip6 checks: no rate limit, room for every pending handshake
OPEN_LIMITS = Config(suites=Config().suites, handshakesPerSecond=1e9, handshakeBurst=10**9,
                     maxPendingHandshakes=10**6, maxSessions=10**6)


@contextmanager
def counting():
    """
    Count scrypt evaluations (L{sudp.gossip6.proof.proofValue}), RSA
    verifications and RSA signatures while the block runs.

    @return: (as the context value) a dict C{{"scrypt", "verify", "sign"}}
        of counts, updated live.
    """
    counts = {"scrypt": 0, "verify": 0, "sign": 0}
    saved = proof_.proofValue, RSAPublicKey.verify, RSAIdentity.sign

    def proofValue(raw, config):
        counts["scrypt"] += 1
        return saved[0](raw, config)

    def verify(self, signature, data):
        counts["verify"] += 1
        return saved[1](self, signature, data)

    def sign(self, data):
        counts["sign"] += 1
        return saved[2](self, data)

    proof_.proofValue, RSAPublicKey.verify, RSAIdentity.sign = proofValue, verify, sign
    try:
        yield counts
    finally:
        proof_.proofValue, RSAPublicKey.verify, RSAIdentity.sign = saved


def _perCall(fn, repeats, budget=0.02):
    """
    @return: the median seconds one call of C{fn()} takes, over C{repeats}
        batches each long enough (C{budget} seconds) to time.
    """
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    n = max(1, int(budget / once))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - start) / n)
    return statistics.median(samples)


def _weak(identity, peer, config):
    """
    @return: a signed m (of C{identity}, to C{peer}) whose proof misses the target.
    """
    message = Message(Ephemeral(os.urandom(32)).public, identity.publicKey.der, int(NOW), peer)
    while True:
        message.nonce = os.urandom(16)
        raw = message.encode()
        if not meetsTarget(raw, config):
            return Signed(message, raw, identity.sign(raw))


def measure(difficulty=6, scryptN=1024, scryptR=8, scryptP=1, repeats=5, bits=3072):
    """
    Measure the attacker's cost of one valid gossip6 message against the
    server's cost per attempt of each kind.

    @param repeats: proofs solved (the attacker's figure) and timed batches
        per server figure.
    @param bits: the RSA key size of both sides.
    @return: a dict: C{"config"}; C{"primitives"} (seconds of one scrypt
        evaluation, RSA sign, RSA verify); C{"attacker"} (C{expectedEvaluations},
        C{meanEvaluations}, C{seconds} per valid message as measured,
        C{expectedSeconds}); C{"server"}: for each kind of attempt (in the
        order of the checks), C{{"scrypt", "verify", "sign", "seconds",
        "attackerSeconds"}}: operations and seconds per attempt, and what
        the attacker spent to make it (for C{"accepted"}, means over the
        repeats, and C{"expectedScrypt"}).
    """
    config = Gossip6Config(difficulty=difficulty, scryptN=scryptN, scryptR=scryptR, scryptP=scryptP,
                           localAddresses=(SERVER_ADDR,))
    serverId, clientId, stranger = (RSAIdentity.generate(bits) for _ in range(3))
    sample = os.urandom(400)
    signature = clientId.sign(sample)
    primitives = {
        "scrypt": _perCall(lambda: proof_.proofValue(sample, config), repeats),
        "sign": _perCall(lambda: clientId.sign(sample), repeats),
        "verify": _perCall(lambda: clientId.publicKey.verify(signature, sample), repeats),
    }

    # the attacker (a trusted sender): solve and sign `repeats` messages
    genuine, attempts, seconds = [], [], []
    for _ in range(max(1, repeats)):
        job = ProofJob(clientId, Ephemeral(os.urandom(32)).public, SERVER_ADDR, int(NOW), config, os.urandom)
        start = time.perf_counter()
        genuine.append(job.run())
        seconds.append(time.perf_counter() - start)
        attempts.append(job.attempts)
    attacker = {
        "expectedEvaluations": 2**difficulty,
        "meanEvaluations": statistics.mean(attempts),
        "seconds": statistics.mean(seconds),
        "expectedSeconds": 2**difficulty * primitives["scrypt"] + primitives["sign"],
    }

    server = gossip6ServerEngine(serverId, [clientId.publicKey], OPEN_LIMITS, config)
    server.receiveDatagram(P.encodeHello(b"N" * 8), CLIENT_ADDR, NOW)
    [(reply, _)] = server.datagramsToSend()
    _, cookieTime, cookie = P.decodeCookie(reply)

    def init(signed, goodCookie=True):
        return Gossip6Init(0x01020304, cookieTime, cookie if goodCookie else bytes(16), signed).encode()

    def rebuilt(base, signer, **changes):
        m = base.message
        fields = dict(dhe=m.dhe, rsaKey=m.rsaKey, timestamp=m.timestamp, peer=m.peer, nonce=m.nonce)
        fields.update(changes)
        message = Message(**fields)
        raw = message.encode()
        return Signed(message, raw, signer.sign(raw))

    # a valid proof of its own (the server records every valid proof it sees), signed by a stranger
    spare = ProofJob(clientId, Ephemeral(os.urandom(32)).public, SERVER_ADDR, int(NOW), config, os.urandom).run()
    solvedBadSignature = Signed(spare.message, spare.raw, stranger.sign(spare.raw))
    proofCost = 2**difficulty * primitives["scrypt"]
    kinds = [
        ("bad-cookie", init(genuine[0], goodCookie=False), 0.0),
        ("stale-timestamp", init(rebuilt(genuine[0], clientId, timestamp=int(NOW) - 3600)), 0.0),
        ("wrong-address", init(rebuilt(genuine[0], clientId, peer=("192.0.2.1", 9000))), 0.0),
        ("untrusted-key", init(rebuilt(genuine[0], stranger, rsaKey=stranger.publicKey.der)), 0.0),
        ("weak-proof", init(_weak(clientId, SERVER_ADDR, config)), 0.0),
        ("bad-signature", init(solvedBadSignature), proofCost),
    ]
    results = {}
    for name, datagram, attackerSeconds in kinds:
        if name == "weak-proof" and difficulty == 0:
            continue  # every m meets a target of 2**256

        def attempt(datagram=datagram, fresh=name == "bad-signature"):
            if fresh:  # its valid proof is recorded: each timed call starts with an empty record
                server.reuse = ReuseRecord(config.maxReuseRecords)
            server.receiveDatagram(datagram, CLIENT_ADDR, NOW)

        with counting() as counts:
            attempt()
        assert server.drops[name] >= 1, (name, dict(server.drops))
        results[name] = dict(counts, seconds=_perCall(attempt, repeats), attackerSeconds=attackerSeconds)
    # the same message again: its proof was recorded, the server stops at the record
    replay = init(solvedBadSignature)
    with counting() as counts:
        server.receiveDatagram(replay, CLIENT_ADDR, NOW)
    assert server.drops["reused-proof"] >= 1, dict(server.drops)
    results["bad-signature, replayed"] = dict(counts, attackerSeconds=0.0, seconds=_perCall(
        lambda: server.receiveDatagram(replay, CLIENT_ADDR, NOW), repeats))

    # accepted: the checks, the server's own proof and signature, its RESP
    def accept(signed):
        server.receiveDatagram(init(signed), CLIENT_ADDR, NOW)
        [event] = [e for e in server.nextEvents() if type(e) is WorkNeeded]
        assert type(event) is WorkNeeded, event
        event.job.run()
        server.workDone(event.job, NOW)
        server.datagramsToSend()
        return event.job.attempts

    accepted = []
    with counting() as counts:
        for signed in genuine:
            start = time.perf_counter()
            accept(signed)
            accepted.append(time.perf_counter() - start)
    perAccept = {k: v / len(genuine) for k, v in counts.items()}
    results["accepted"] = dict(perAccept, seconds=statistics.mean(accepted), attackerSeconds=attacker["seconds"],
                               expectedScrypt=1 + 2**difficulty)
    return {
        "config": {"difficulty": difficulty, "scryptN": scryptN, "scryptR": scryptR, "scryptP": scryptP,
                   "scryptMemory": config.scryptMemory, "rsaBits": bits, "repeats": repeats},
        "primitives": primitives,
        "attacker": attacker,
        "server": results,
    }


def table(figures):
    """
    @return: L{measure}'s figures as a text table.
    """
    c, p, a = figures["config"], figures["primitives"], figures["attacker"]
    lines = [
        f"gossip6 costs: scrypt N={c['scryptN']} r={c['scryptR']} p={c['scryptP']} "
        f"({c['scryptMemory'] // 1024} KiB), difficulty {c['difficulty']}, RSA-{c['rsaBits']}, "
        f"{c['repeats']} repeats",
        f"  one scrypt {p['scrypt'] * 1e3:.3f} ms, RSA sign {p['sign'] * 1e3:.3f} ms, "
        f"RSA verify {p['verify'] * 1e3:.3f} ms",
        f"  attacker, one valid message: {a['meanEvaluations']:.1f} scrypt evaluations "
        f"(expected {a['expectedEvaluations']}) + 1 sign = {a['seconds'] * 1e3:.2f} ms "
        f"(expected {a['expectedSeconds'] * 1e3:.2f} ms)",
        "",
        f"  {'server, per attempt':<26} {'scrypt':>6} {'verify':>6} {'sign':>5} {'server ms':>10} "
        f"{'attacker ms':>12} {'attacker/server':>16}",
    ]
    for name, r in figures["server"].items():
        ratio = r["attackerSeconds"] / r["seconds"] if r["seconds"] else 0.0
        lines.append(
            f"  {name:<26} {r['scrypt']:>6g} {r['verify']:>6g} {r['sign']:>5g} {r['seconds'] * 1e3:>10.4f} "
            f"{r['attackerSeconds'] * 1e3:>12.3f} {ratio:>16.2f}"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--difficulty", type=int, default=Gossip6Config.difficulty)
    parser.add_argument("--scrypt-n", type=int, default=Gossip6Config.scryptN)
    parser.add_argument("--scrypt-r", type=int, default=Gossip6Config.scryptR)
    parser.add_argument("--scrypt-p", type=int, default=Gossip6Config.scryptP)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bits", type=int, default=3072, help="RSA key size")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    figures = measure(args.difficulty, args.scrypt_n, args.scrypt_r, args.scrypt_p, max(1, args.repeats),
                      args.bits)
    print(table(figures))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
