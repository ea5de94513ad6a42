# -*- test-case-name: sudp_test.test_lossyrelay -*-
"""
Tests of lossyrelay.

Integration tests of sudp/1 over a lossy link: real UDP sockets on 127.0.0.1,
with a L{sudp_test.lossyrelay.LossyRelay} between the client and the server
that drops, duplicates, reorders and delays datagrams with a fixed seed.

sudp does not retransmit application data, so messages may be lost; what
must hold is the contract of the transport: the handshake completes (by
retransmission), no message is ever delivered twice or altered, every
delivered message is one that was sent, rekeys complete, and the session
stays up until the test closes it.

The figures of each test (retransmissions, messages lost and delivered,
rekeys, relay counters, drops by reason) go to the test log
(C{_trial_temp/test.log}).
"""

import random
import struct
from collections import Counter

from twisted.internet import defer, reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.trial import unittest

from sudp_test.lossyrelay import (
    CLIENT_TO_SERVER,
    DIRECTIONS,
    HOLD,
    Impairment,
    LATER,
    LossyRelay,
    NOW,
    SERVER_TO_CLIENT,
)
from sudp_test.udp.helpers import SEED, log, waitUntilLossy
from sudp_test.waiting import sleep

class _Sink(DatagramProtocol):
    """
    The far end of a relay test: records each datagram and answers it with
    C{b"R" + datagram}.
    """

    noisy = False

    def __init__(self, reply=True):
        self.got = []
        self.reply = reply

    def datagramReceived(self, data, addr):
        """
        Record the datagram; answer it if C{reply} is set.
        """
        self.got.append(data)
        if self.reply:
            self.transport.write(b"R" + data, addr)

class RelayTests(unittest.TestCase):
    """
    The relay does what it is configured to do, reproducibly, and leaves
    nothing behind.
    """

    def assertNear(self, value, expected, tolerance):
        """
        C{value} is within C{tolerance} of C{expected}.
        """
        if abs(value - expected) > tolerance:
            self.fail(f"{value} is not within {tolerance} of {expected}")

    def test_decisionRates(self):
        """
        Over 20000 datagrams the seeded decisions match the configured rates
        (drop; duplicate, reorder of those kept; delay of those kept and not
        held), their parameters stay in range, the same seed gives the same
        decisions and another seed other ones.
        """
        imp = Impairment(drop=0.1, duplicate=0.05, reorder=0.1, delay=0.1, reorderDepth=3,
                         reorderDelay=0.05, delayMin=0.001, delayMax=0.03, duplicateDelay=0.02)
        n = 20000
        rng = random.Random(7)
        decisions = [imp.decide(rng) for _ in range(n)]
        again = random.Random(7)
        self.assertEqual(decisions, [imp.decide(again) for _ in range(n)])
        other = random.Random(8)
        self.assertNotEqual(decisions, [imp.decide(other) for _ in range(n)])

        kept = [d for d in decisions if not d.dropped]
        notHeld = [d for d in kept if not d.reordered]
        self.assertNear((n - len(kept)) / n, 0.10, 0.01)
        self.assertNear(sum(d.duplicated for d in kept) / len(kept), 0.05, 0.008)
        self.assertNear(sum(d.reordered for d in kept) / len(kept), 0.10, 0.01)
        self.assertNear(sum(d.delayed for d in notHeld) / len(notHeld), 0.10, 0.01)
        for d in kept:
            original = d.plans[0]
            self.assertIn(original.kind, (NOW, HOLD, LATER))
            if original.kind == HOLD:
                self.assertTrue(1 <= original.depth <= 3)
                self.assertTrue(0.005 <= original.delay <= 0.05)
            elif original.kind == LATER:
                self.assertTrue(0.001 <= original.delay <= 0.03)
            if d.duplicated:
                self.assertEqual(d.plans[1].kind, LATER)
                self.assertTrue(0 <= d.plans[1].delay <= 0.02)
        self.assertEqual(Impairment().decide(random.Random(1)).plans[0].kind, NOW)
        self.assertRaises(ValueError, Impairment, drop=1.5)

    @defer.inlineCallbacks
    def runRelay(self, seed, count=1000):
        """
        Send C{count} numbered datagrams through a relay with C{seed}
        (client to server: 10 % drop, 5 % duplicate, 10 % reorder, 10 %
        delay; server to client: 20 % drop only), answered one for one by the
        far end, and wait until all is through.

        @return: C{(relay, datagrams the server got, datagrams the client got)}.
        """
        server = _Sink()
        serverPort = reactor.listenUDP(0, server, interface="127.0.0.1")
        self.addCleanup(serverPort.stopListening)
        relay = LossyRelay(
            reactor, ("127.0.0.1", serverPort.getHost().port), seed,
            clientToServer=Impairment(drop=0.1, duplicate=0.05, reorder=0.1, delay=0.1),
            serverToClient=Impairment(drop=0.2), record=True,
        )
        relay.listen()
        self.addCleanup(relay.stop)
        client = _Sink(reply=False)
        clientPort = reactor.listenUDP(0, client, interface="127.0.0.1")
        self.addCleanup(clientPort.stopListening)
        for i in range(0, count, 20):
            for j in range(i, min(i + 20, count)):
                clientPort.write(struct.pack("!I", j), relay.address)
            yield sleep(0.003)

        def done():
            c = relay.counters
            return (not relay.pending()
                    and c[CLIENT_TO_SERVER]["received"] == count
                    and len(server.got) == c[CLIENT_TO_SERVER]["forwarded"]
                    and c[SERVER_TO_CLIENT]["received"] == len(server.got)
                    and len(client.got) == c[SERVER_TO_CLIENT]["forwarded"])

        yield waitUntilLossy(done, f"all datagrams through the relay: {relay.summary()}")
        yield relay.stop()
        self.assertEqual(relay.pending(), 0)
        return relay, server.got, client.got

    @defer.inlineCallbacks
    def test_relayOverSockets(self):
        """
        Through real sockets the relay drops, duplicates, reorders and delays
        client-to-server datagrams at about the configured rates, and only
        drops server-to-client ones (each direction has its own settings);
        the counters agree with what the ends received (a duplicate arrives
        twice, a drop never, nothing is altered). A second relay with the
        same seed takes exactly the same decisions and counts the same.
        """
        count = 1000
        relay, atServer, atClient = yield self.runRelay(SEED)
        c2s, s2c = relay.counters[CLIENT_TO_SERVER], relay.counters[SERVER_TO_CLIENT]
        self.assertNear(c2s["dropped"] / count, 0.10, 0.04)
        kept = count - c2s["dropped"]
        self.assertNear(c2s["duplicated"] / kept, 0.05, 0.03)
        self.assertNear(c2s["reordered"] / kept, 0.10, 0.04)
        self.assertNear(c2s["delayed"] / (kept - c2s["reordered"]), 0.10, 0.04)
        self.assertEqual(c2s["forwarded"], kept + c2s["duplicated"])
        self.assertNear(s2c["dropped"] / s2c["received"], 0.20, 0.05)
        for what in ("duplicated", "reordered", "delayed", "discarded", "sendErrors"):
            self.assertEqual(s2c[what], 0, what)

        ids = [struct.unpack("!I", d)[0] for d in atServer]
        seen = Counter(ids)
        self.assertLessEqual(set(seen), set(range(count)))
        self.assertEqual(len(seen), kept)
        self.assertEqual(sum(n - 1 for n in seen.values()), c2s["duplicated"])
        self.assertNotEqual(ids, sorted(ids), "nothing arrived out of order")
        self.assertLessEqual(set(atClient), {b"R" + d for d in atServer})
        self.assertEqual(relay.strangers, 0)

        twin, _, _ = yield self.runRelay(SEED)
        for d in DIRECTIONS:
            self.assertEqual(twin.decisions[d], relay.decisions[d], d)
            self.assertEqual(twin.counters[d], relay.counters[d], d)
        log.info("relay self-test: {summary}", summary=relay.summary())

    @defer.inlineCallbacks
    def test_stopDiscardsPending(self):
        """
        stop() cancels the timers of held and delayed datagrams (counted as
        discarded) and closes the port: nothing is left in the reactor, and
        a second stop() is harmless.
        """
        sink = _Sink(reply=False)
        sinkPort = reactor.listenUDP(0, sink, interface="127.0.0.1")
        self.addCleanup(sinkPort.stopListening)
        relay = LossyRelay(reactor, ("127.0.0.1", sinkPort.getHost().port), 1,
                           Impairment(delay=1.0, delayMin=5, delayMax=10))
        relay.listen()
        sender = _Sink(reply=False)
        senderPort = reactor.listenUDP(0, sender, interface="127.0.0.1")
        self.addCleanup(senderPort.stopListening)
        for i in range(10):
            senderPort.write(b"%d" % i, relay.address)
        yield waitUntilLossy(lambda: relay.counters[CLIENT_TO_SERVER]["received"] == 10, "10 datagrams at the relay")
        self.assertEqual(relay.pending(), 10)
        yield relay.stop()
        yield relay.stop()
        self.assertEqual(relay.pending(), 0)
        self.assertEqual(relay.counters[CLIENT_TO_SERVER]["discarded"], 10)
        self.assertEqual(relay.counters[CLIENT_TO_SERVER]["forwarded"], 0)
        self.assertFalse(relay.port.connected)
        self.assertEqual(sink.got, [])
