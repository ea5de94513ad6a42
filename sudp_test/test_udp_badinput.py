"""
Adversarial tests of the sudp/1 engines, driven without a reactor or sockets:
every kind of bad input to the server (and the client), each shown to be
dropped with the exact reason counted, nothing raised, no reply sent and no
state changed; statelessness before a cookie; no amplification; state that
moves only after authentication; limits; and nonce uniqueness across rekeys.
"""

import os
import struct
from collections import Counter

from twisted.trial import unittest

from sudp.errors import BadServerSignature, HandshakeFailed, MessageTooLarge
from sudp.keys import Identity
from sudp.udp import packets as P
from sudp.udp import records as R
from sudp.udp.client import ClientEngine, ClientState
from sudp.udp.config import Config
from sudp.udp.cookie import CookieFactory
from sudp.udp.events import ClientRefused, HandshakeFailure, MessageReceived, SessionEnded, SessionOpened

from sudp_test.enginehelpers import (
    CLIENT_ADDR,
    SERVER_ADDR,
    START,
    Network,
    clientState,
    connect,
    connectedPair,
    containerSizes,
    isResetFor,
    dropsDuring,
    getCookie,
    makeInit,
    newServer,
    serverSessionOf,
    serverState,
    takeOutbox,
)

OTHER_ADDR = ("127.0.0.1", 40001)
MAX = Config().maxDatagramSize  # 1452

# X25519 public keys that give a low-order (all-zero) shared secret: the
# points of order 1, 2, 4 and 8 and their non-canonical encodings (u >= p),
# and each again with the ignored top bit set.
_P25519 = 2**255 - 19
_LOW_ORDER = [
    0,
    1,
    325606250916557431795983626356110631294008115727848805560023387167927233504,
    39382357235489614581723060781553021112529911719440698176882885853963445705823,
    _P25519 - 1,
    _P25519,
    _P25519 + 1,
]
LOW_ORDER_KEYS = [u.to_bytes(32, "little") for u in _LOW_ORDER] + [
    (u | 1 << 255).to_bytes(32, "little") for u in _LOW_ORDER[:4]
]

# drop reasons that refuse a cookie-proven client, reported as ClientRefused
REFUSALS = {"rate-limited", "too-many-pending", "server-full", "no-common-suite"}


def flip(data, bit):
    """
    @return: C{data} with bit C{bit} (0 = the low bit of the first byte) inverted.
    """
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def messages(events):
    """
    @return: the messages in a list of C{(who, event)}.
    """
    return [e.message for w, e in events if isinstance(e, MessageReceived)]


def endings(events):
    """
    @return: sorted C{(isClient, reason)} of the SessionEnded events in a
        list of C{(who, event)}.
    """
    return sorted(
        (w != "server", e.reason.reason) for w, e in events if isinstance(e, SessionEnded)
    )


def header(data):
    """
    @return: C{(typeByte, receiverIndex, sequence)} of a DATA/CONTROL packet.
    """
    return P.DATA_HEADER.unpack_from(data)


class EngineTestCase(unittest.TestCase):
    """
    Assertions shared by the tests below.
    """

    def assertServerDrops(self, server, data, addr, reasons, now=START):
        """
        Hand C{data} to C{server} from C{addr} and assert that exactly
        C{reasons} (a reason string or a dict of counts) were counted,
        nothing was sent, nothing was reported and no state changed.
        """
        if isinstance(reasons, str):
            reasons = {reasons: 1}
        before = serverState(server)
        events = list(server.events)
        drops = dropsDuring(server, lambda: server.receiveDatagram(data, addr, now))
        self.assertEqual(drops, reasons, f"input {bytes(data[:48]).hex()}... of {len(data)} bytes")
        out = takeOutbox(server)
        if "unknown-session" in reasons and out:
            # the one answer to junk for a session it does not know: a stateless reset, smaller
            [(reset, dst)] = out
            self.assertTrue(isResetFor(reset, data), reset.hex())
            self.assertEqual(dst, addr)
        elif "no-common-suite" in reasons and out:
            [(refusal, dst)] = out  # signed, never longer than the INIT
            self.assertEqual((refusal[0], dst), (P.HANDSHAKE_REFUSED, addr))
            self.assertLessEqual(len(refusal), len(data))
        else:
            self.assertEqual(out, [])
        # a refused (cookie-proven) client is reported, for the server's log
        added = server.events[len(events):]
        self.assertEqual([(e.addr, e.reason) for e in added if isinstance(e, ClientRefused)],
                         [(addr, r) for r in reasons if r in REFUSALS])
        self.assertEqual(server.events[:len(events)], events)
        self.assertEqual([e for e in added if not isinstance(e, ClientRefused)], [])
        self.assertEqual(serverState(server), before)

    def assertClientDrops(self, client, data, reasons, now=START, addr=SERVER_ADDR):
        """
        Like L{assertServerDrops}, for a client engine.
        """
        if isinstance(reasons, str):
            reasons = {reasons: 1}
        before = clientState(client)
        events = list(client.events)
        drops = dropsDuring(client, lambda: client.receiveDatagram(data, addr, now))
        self.assertEqual(drops, reasons, f"input {bytes(data[:48]).hex()}... of {len(data)} bytes")
        self.assertEqual(takeOutbox(client), [])
        self.assertEqual(client.events, events)
        self.assertEqual(clientState(client), before)

    def assertWorks(self, net, client, server=None):
        """
        The session between C{client} and the server still carries messages
        both ways.
        """
        server = server or net.server
        session = serverSessionOf(server, client)
        tag = os.urandom(8)
        client.sendMessage(client.session, b"ping " + tag, net.now)
        events = net.pump()
        self.assertIn(b"ping " + tag, messages(events))
        server.sendMessage(session, b"pong " + tag, net.now)
        events = net.pump()
        self.assertIn(b"pong " + tag, messages(events))

    def capturedData(self, net, client, message=b"m" * 16, deliverFirst=4):
        """
        Deliver C{deliverFirst} messages from C{client}, then seal one more
        and return it undelivered with its sequence number.
        """
        for i in range(deliverFirst):
            client.sendMessage(client.session, b"before %d" % i, net.now)
        net.pump()
        net.take("server", MessageReceived)
        client.sendMessage(client.session, message, net.now)
        [(packet, dst)] = takeOutbox(client)
        self.assertEqual(dst, SERVER_ADDR)
        return packet, header(packet)[2]


class ServerMalformedTests(EngineTestCase):
    """
    Datagrams that do not parse, handed to a server with one open session.
    """

    def setUp(self):
        self.net, self.server, self.client = connectedPair()

    def test_emptyDatagram(self):
        """
        An empty datagram is dropped as C{empty}.
        """
        self.assertServerDrops(self.server, b"", OTHER_ADDR, "empty")
        self.assertServerDrops(self.server, b"", CLIENT_ADDR, "empty")

    def test_helloTruncated(self):
        """
        A HELLO of 1 to 63 bytes is dropped as C{truncated} and not answered.
        """
        hello = P.encodeHello(b"12345678")
        for n in range(1, P.HELLO_SIZE):
            self.assertServerDrops(self.server, hello[:n], OTHER_ADDR, "truncated")

    def test_helloOversized(self):
        """
        A HELLO over maxDatagramSize is dropped as C{oversized}; one of
        exactly maxDatagramSize is answered.
        """
        hello = P.encodeHello(b"12345678")
        tooLong = hello + bytes(MAX + 1 - len(hello))
        self.assertServerDrops(self.server, tooLong, OTHER_ADDR, "oversized")
        self.server.receiveDatagram(hello + bytes(MAX - len(hello)), OTHER_ADDR, START)
        [(reply, dst)] = takeOutbox(self.server)
        self.assertEqual((len(reply), dst), (P.COOKIE_PACKET_SIZE, OTHER_ADDR))

    def test_cookieToServer(self):
        """
        A COOKIE, of the right size, shorter or longer, is not something a
        server accepts: C{unexpected-type}.
        """
        cookie = P.encodeCookie(b"12345678", int(START), bytes(16))
        for data in (cookie, cookie[:1], cookie[:-1], cookie + b"\0", cookie + bytes(500)):
            self.assertServerDrops(self.server, data, OTHER_ADDR, "unexpected-type")

    def test_respToServer(self):
        """
        A HANDSHAKE_RESP of any size is dropped as C{unexpected-type}.
        """
        resp = P.HandshakeResp(1, 2, 1, bytes(32), bytes(16), bytes(64)).encode()
        for data in (resp, resp[:1], resp[:-1], resp + b"\0"):
            self.assertServerDrops(self.server, data, OTHER_ADDR, "unexpected-type")

    def test_initTruncated(self):
        """
        Every proper prefix of a HANDSHAKE_INIT (with a valid cookie) is
        dropped as C{truncated}, as is one whose suite count promises more
        suites than it carries.
        """
        ts, cookie = getCookie(self.server, OTHER_ADDR, START)
        init = makeInit(ts, cookie, suites=(1, 2, 3))
        for n in range(1, len(init)):
            self.assertServerDrops(self.server, init[:n], OTHER_ADDR, "truncated")
        lying = bytearray(makeInit(ts, cookie, suites=(1,)))
        lying[57] = 2
        self.assertServerDrops(self.server, bytes(lying), OTHER_ADDR, "truncated")

    def test_initBadPadding(self):
        """
        A HANDSHAKE_INIT with bytes after its suite list that are not all
        zero is dropped as C{bad-padding}, wherever the nonzero byte is; one
        longer than maxDatagramSize as C{oversized}. (Zero padding of any
        length is accepted: test_initPadded.)
        """
        ts, cookie = getCookie(self.server, OTHER_ADDR, START)
        init = makeInit(ts, cookie)
        for extra in (1, 2, 100, MAX - len(init)):
            for at in {0, extra // 2, extra - 1}:
                padding = bytearray(extra)
                padding[at] = 1
                self.assertServerDrops(self.server, init + bytes(padding), OTHER_ADDR, "bad-padding")
        tooLong = init + bytes(MAX + 1 - len(init))
        self.assertServerDrops(self.server, tooLong, OTHER_ADDR, "oversized")

    def test_initPadded(self):
        """
        A HANDSHAKE_INIT padded with zero bytes, up to maxDatagramSize, is
        answered.
        """
        for extra in (1, 63, MAX - 59):
            ts, cookie = getCookie(self.server, OTHER_ADDR, START)
            init = makeInit(ts, cookie) + bytes(extra)
            self.server.receiveDatagram(init, OTHER_ADDR, START)
            [(resp, dst)] = takeOutbox(self.server)
            self.assertEqual((resp[0], dst), (P.HANDSHAKE_RESP, OTHER_ADDR))

    def test_initPaddedSize(self):
        """
        L{P.HandshakeInit.decode} gives the INIT's whole length, padding
        included (the server resends a RESP only to an INIT at least
        L{P.HANDSHAKE_RESP_SIZE} long), and the padding is part of the
        INIT's bytes: encoding pads to C{padTo} with zeros.
        """
        self.assertEqual(P.HANDSHAKE_RESP_SIZE, 122)
        ts, cookie = getCookie(self.server, OTHER_ADDR, START)
        bare = makeInit(ts, cookie)
        for extra in (0, 1, P.HANDSHAKE_RESP_SIZE - len(bare), MAX - len(bare)):
            init = P.HandshakeInit.decode(bare + bytes(extra))
            self.assertEqual(init.size, len(bare) + extra)
        padded = P.HandshakeInit.decode(bare).encode(padTo=P.HANDSHAKE_RESP_SIZE)
        self.assertEqual(padded, bare + bytes(P.HANDSHAKE_RESP_SIZE - len(bare)))
        self.assertEqual(P.HandshakeInit.decode(padded).size, P.HANDSHAKE_RESP_SIZE)

    def test_initBadSuiteCount(self):
        """
        A HANDSHAKE_INIT offering 0 or more than 16 suites is dropped as
        C{bad-field}.
        """
        ts, cookie = getCookie(self.server, OTHER_ADDR, START)
        base = bytearray(makeInit(ts, cookie))
        for count in (0, 17, 255):
            data = bytes(base[:57]) + bytes([count]) + bytes(range(1, max(count, 1) + 1))
            self.assertServerDrops(self.server, data, OTHER_ADDR, "bad-field")

    def test_initZeroSenderIndex(self):
        """
        A HANDSHAKE_INIT with sender index 0 (never a session index) is
        dropped as C{bad-field}, cookie or no cookie.
        """
        ts, cookie = getCookie(self.server, OTHER_ADDR, START)
        init = makeInit(ts, cookie, senderIndex=0)
        self.assertServerDrops(self.server, init, OTHER_ADDR, "bad-field")

    def test_initNoCommonSuite(self):
        """
        A HANDSHAKE_INIT with a valid cookie that offers only unknown suites
        is dropped as C{no-common-suite}.
        """
        ts, cookie = getCookie(self.server, OTHER_ADDR, START)
        self.assertServerDrops(
            self.server, makeInit(ts, cookie, suites=(0, 2, 200)), OTHER_ADDR, "no-common-suite"
        )
        # padded as a UDP client pads it: also answered with a signed refusal, no longer than the INIT
        ts, cookie = getCookie(self.server, ("192.0.2.77", 5), START)
        padded = makeInit(ts, cookie, suites=(0, 2, 200))
        padded += bytes(P.HANDSHAKE_RESP_SIZE - len(padded))
        self.server.receiveDatagram(padded, ("192.0.2.77", 5), START)
        [(refusal, dst)] = takeOutbox(self.server)
        self.assertEqual(P.HandshakeRefused.decode(refusal).receiverIndex, 0x01020304)
        self.assertLessEqual(len(refusal), len(padded))

    def test_dataTruncated(self):
        """
        A DATA or CONTROL packet shorter than header plus tag (29 bytes) is
        dropped as C{truncated}, even with the session's real index.
        """
        packet, _ = self.capturedData(self.net, self.client)
        for n in range(1, P.DATA_HEADER_SIZE + 16):
            for t in (0x18, 0x19, 0x1A, 0x1B):
                data = bytes([t]) + packet[1:n]
                self.assertServerDrops(self.server, data, CLIENT_ADDR, "truncated")

    def test_dataTruncatedUnknownIndex(self):
        """
        protocol.md 10.5: the tag size belongs to the session's suite, so the
        receiver index is looked up (C{unknown-session}) before the length is
        checked against header and tag: a 13- to 28-byte DATA packet for an
        index that names no session is C{unknown-session}, and the same for a
        live session's index is C{truncated}.
        """
        for n in range(P.DATA_HEADER_SIZE, P.DATA_HEADER_SIZE + 16):
            data = P.encodeDataHeader(0x18, 0x0BADBAD0, 1) + bytes(n - P.DATA_HEADER_SIZE)
            self.assertServerDrops(self.server, data, OTHER_ADDR, "unknown-session")

    def test_dataOversized(self):
        """
        A DATA packet over maxDatagramSize is dropped as C{oversized} before
        any decryption, from the session's own address too.
        """
        packet, _ = self.capturedData(self.net, self.client)
        tooLong = packet + bytes(MAX + 1 - len(packet))
        self.assertServerDrops(self.server, tooLong, CLIENT_ADDR, "oversized")
        self.assertServerDrops(self.server, packet + bytes(60000), CLIENT_ADDR, "oversized")

    def test_dataPaddedToMaximum(self):
        """
        A captured DATA packet lengthened (still within maxDatagramSize)
        fails its tag: C{bad-tag}.
        """
        packet, _ = self.capturedData(self.net, self.client)
        for extra in (1, 16, MAX - len(packet)):
            self.assertServerDrops(self.server, packet + bytes(extra), CLIENT_ADDR, "bad-tag")
        for cut in (1, 15, 16):
            self.assertServerDrops(self.server, packet[:-cut], CLIENT_ADDR, "bad-tag")

    def test_unknownTypeNibble(self):
        """
        Version 1 with a type nibble that is not assigned (0x10) is
        dropped as C{unknown-type}, at any length; gossip6's INIT and RESP
        (0x15, 0x16) and HANDSHAKE_REFUSED (0x17, server to client) are
        assigned, and a sudp/1 server drops them as C{unexpected-type}.
        """
        for t, reason in ((0x10, "unknown-type"), (0x17, "unexpected-type"),
                          (0x15, "unexpected-type"), (0x16, "unexpected-type")):
            for body in (b"", bytes(63), bytes(200)):
                self.assertServerDrops(self.server, bytes([t]) + body, OTHER_ADDR, reason)

    def test_unknownTypeNibbleInDataRange(self):
        """
        Type nibbles 0xD to 0xF are not assigned (DATA is 0x8/0x9, CONTROL
        0xA/0xB, STATELESS_RESET 0xC, server to client) and must be dropped
        as C{unknown-type}, 0xC as C{unexpected-type}; the server's DATA fast
        path must not take them for DATA or CONTROL.
        """
        index = self.client.session.remoteIndex
        for t in (0x1C, 0x1D, 0x1E, 0x1F):
            for body in (b"", bytes(63), struct.pack(">IQ", index, 99) + bytes(40)):
                self.assertServerDrops(self.server, bytes([t]) + body, CLIENT_ADDR,
                                       "unexpected-type" if t == P.STATELESS_RESET else "unknown-type")

    def test_wrongVersionNibble(self):
        """
        Every version nibble but 1, with every type nibble, is dropped as
        C{wrong-version}, including a real DATA packet relabelled.
        """
        packet, _ = self.capturedData(self.net, self.client)
        for version in range(16):
            if version == 1:
                continue
            for typeNibble in range(16):
                first = bytes([version << 4 | typeNibble])
                for body in (b"", bytes(63), packet[1:]):
                    self.assertServerDrops(self.server, first + body, CLIENT_ADDR, "wrong-version")


class DataAuthenticationTests(EngineTestCase):
    """
    Tampered, forged and replayed DATA packets on an open session.
    """

    def setUp(self):
        self.net, self.server, self.client = connectedPair()
        self.session = serverSessionOf(self.server, self.client)

    def test_flipCiphertextBits(self):
        """
        A captured DATA packet with any one bit of its ciphertext flipped is
        dropped as C{bad-tag}; the original is still accepted afterwards.
        """
        packet, _ = self.capturedData(self.net, self.client)
        for bit in range(P.DATA_HEADER_SIZE * 8, (len(packet) - 16) * 8):
            self.assertServerDrops(self.server, flip(packet, bit), CLIENT_ADDR, "bad-tag")
        self.server.receiveDatagram(packet, CLIENT_ADDR, START)
        self.assertEqual([e.message for e in self.server.events], [b"m" * 16])

    def test_flipTagBits(self):
        """
        A captured DATA packet with any one bit of its 16-byte tag flipped is
        dropped as C{bad-tag}.
        """
        packet, _ = self.capturedData(self.net, self.client)
        for bit in range((len(packet) - 16) * 8, len(packet) * 8):
            self.assertServerDrops(self.server, flip(packet, bit), CLIENT_ADDR, "bad-tag")
        self.assertEqual(self.session.epochs[0].failures, 128)

    def test_flipHeaderBits(self):
        """
        Every bit of the 13 header bytes is covered: a flip in the receiver
        index finds no session, a flip in the sequence number is a replay
        (to a number already seen) or a bad tag (to a new one), and a flip in
        the type byte is the other key phase (no key), CONTROL (bad tag), an
        unassigned type, or another version.
        """
        packet, seq = self.capturedData(self.net, self.client)
        self.assertEqual(seq, 5)  # CONFIRM was 0, then four messages
        for bit in range(P.DATA_HEADER_SIZE * 8):
            self.assertFlipRejected(flip(packet, bit), seq)
        self.server.receiveDatagram(packet, CLIENT_ADDR, START)
        self.assertEqual([e.message for e in self.server.events], [b"m" * 16])

    def assertFlipRejected(self, data, capturedSeq):
        """
        Assert that the tampered packet C{data} is rejected with the reason
        its content calls for, and return that reason.
        """
        expected = self.expectedReason(data, capturedSeq)
        self.assertServerDrops(self.server, data, CLIENT_ADDR, expected)
        return expected

    def expectedReason(self, data, capturedSeq):
        t = data[0]
        if t >> 4 != 1:
            return "wrong-version"
        if t not in P.PACKET_NAMES:
            return "unknown-type"
        if t & 0xFC != P.DATA:
            return "unexpected-type"  # 0x1C: a STATELESS_RESET, which only servers send
        _, index, seq = header(data)
        if index != self.session.localIndex:
            return "unknown-session"
        if t & 1:
            return "no-key"  # no rekey yet: phase 1 has no key
        if seq < capturedSeq:
            return "replay"  # 0..capturedSeq-1 were all delivered
        return "bad-tag"

    def test_everyBitFlipRejected(self):
        """
        Exhaustively: each of the 8 * len bits of one captured DATA packet,
        flipped, gives a datagram that is rejected with the reason its
        position calls for, changes no state and is never delivered; the
        untouched packet is then accepted.
        """
        packet, seq = self.capturedData(self.net, self.client)
        seen = set()
        for bit in range(len(packet) * 8):
            seen.add(self.assertFlipRejected(flip(packet, bit), seq))
        self.assertEqual(
            seen,
            {"wrong-version", "unknown-type", "unexpected-type", "unknown-session", "no-key", "replay", "bad-tag"},
        )
        self.server.receiveDatagram(packet, CLIENT_ADDR, START)
        self.assertEqual([e.message for e in self.server.events], [b"m" * 16])

    def test_replayExactDuplicate(self):
        """
        An accepted DATA packet sent again, byte for byte, is dropped as
        C{replay} and not delivered twice.
        """
        packet, _ = self.capturedData(self.net, self.client)
        self.server.receiveDatagram(packet, CLIENT_ADDR, START)
        self.assertEqual(len(self.server.events), 1)
        self.server.events = []
        self.assertServerDrops(self.server, packet, CLIENT_ADDR, "replay")
        self.assertServerDrops(self.server, packet, OTHER_ADDR, "replay")

    def test_replayWithinWindow(self):
        """
        Inside the window, a reordered packet not seen yet is accepted once,
        and its second copy is a C{replay}.
        """
        packets = []
        for i in range(3):
            self.client.sendMessage(self.client.session, b"%d" % i, START)
            packets.extend(p for p, _ in takeOutbox(self.client))
        a, b, c = packets
        for p in (c, a):
            self.server.receiveDatagram(p, CLIENT_ADDR, START)
        self.assertEqual([e.message for e in self.server.events], [b"2", b"0"])
        self.server.events = []
        for p in (c, a):
            self.assertServerDrops(self.server, p, CLIENT_ADDR, "replay")
        self.server.receiveDatagram(b, CLIENT_ADDR, START)
        self.assertEqual([e.message for e in self.server.events], [b"1"])
        self.server.events = []
        self.assertServerDrops(self.server, b, CLIENT_ADDR, "replay")

    def test_replayBelowWindow(self):
        """
        A packet older than the window (here 1024) is dropped as C{replay}
        whether or not it was ever seen.
        """
        config = Config(replayWindow=1024)
        net, server, client = connectedPair(config)
        client.sendMessage(client.session, b"delivered", net.now)
        net.pump()
        client.sendMessage(client.session, b"never delivered", net.now)
        [(old, _)] = takeOutbox(client)
        for i in range(1100):
            client.sendMessage(client.session, b"%d" % i, net.now)
        events = net.pump()
        self.assertEqual(len(events), 1100)
        session = serverSessionOf(server, client)
        self.assertEqual(session.epochs[0].window.highest - header(old)[2], 1100)
        self.assertServerDrops(server, old, CLIENT_ADDR, "replay")
        first = [d for s, dst, d in net.sent if dst == SERVER_ADDR and d[0] == 0x18][0]
        self.assertServerDrops(server, first, CLIENT_ADDR, "replay")

    def test_strictOrderingDropsReordered(self):
        """
        With C{ordering='strict'} a packet older than the newest accepted one
        is a C{replay} even if it was never seen.
        """
        net, server, client = connectedPair(Config(ordering="strict"))
        client.sendMessage(client.session, b"first", net.now)
        client.sendMessage(client.session, b"second", net.now)
        (first, _), (second, _) = takeOutbox(client)
        server.receiveDatagram(second, CLIENT_ADDR, net.now)
        self.assertEqual([e.message for e in server.events], [b"second"])
        server.events = []
        self.assertServerDrops(server, first, CLIENT_ADDR, "replay")
        self.assertServerDrops(server, second, CLIENT_ADDR, "replay")

    def test_unknownSessionIndex(self):
        """
        A DATA or CONTROL packet for an index the server never gave out is
        dropped as C{unknown-session}.
        """
        packet, _ = self.capturedData(self.net, self.client)
        for index in (0, 1, self.session.localIndex ^ 1, 0xFFFFFFFF):
            for t in (0x18, 0x19, 0x1A, 0x1B):
                data = P.encodeDataHeader(t, index, 1) + packet[P.DATA_HEADER_SIZE:]
                self.assertServerDrops(self.server, data, OTHER_ADDR, "unknown-session")

    def test_forgedPhaseOne(self):
        """
        Before any rekey there is no key for key phase 1: C{no-key}.
        """
        index = self.session.localIndex
        for t in (0x19, 0x1B):
            data = P.encodeDataHeader(t, index, 7) + os.urandom(40)
            self.assertServerDrops(self.server, data, CLIENT_ADDR, "no-key")


class CookieTests(EngineTestCase):
    """
    HANDSHAKE_INIT with cookies that must not be accepted, and one that must.
    """

    def setUp(self):
        self.server = newServer(cookieSecret=b"k" * 32)

    def assertAccepted(self, init, addr, now):
        drops = dropsDuring(self.server, lambda: self.server.receiveDatagram(init, addr, now))
        self.assertEqual(drops, {})
        [(resp, dst)] = takeOutbox(self.server)
        self.assertEqual((resp[0], len(resp), dst), (P.HANDSHAKE_RESP, P.HANDSHAKE_RESP_SIZE, addr))
        self.assertEqual(self.server.pendingCount, 1)
        self.assertEqual(len(self.server.sessions), 1)

    def test_validCookieAccepted(self):
        """
        The control case: the cookie just given to an address opens a
        pending handshake for it.
        """
        ts, cookie = getCookie(self.server, CLIENT_ADDR, START)
        self.assertAccepted(makeInit(ts, cookie), CLIENT_ADDR, START)

    def test_forgedCookie(self):
        """
        Random bytes as the cookie, with a current timestamp, are dropped as
        C{bad-cookie}.
        """
        for _ in range(50):
            init = makeInit(int(START), os.urandom(16))
            self.assertServerDrops(self.server, init, CLIENT_ADDR, "bad-cookie")

    def test_cookieForAnotherIP(self):
        """
        A cookie made for one IP address is C{bad-cookie} from another,
        including the IPv4-mapped IPv6 form of the same address.
        """
        ts, cookie = getCookie(self.server, ("192.0.2.1", 5000), START)
        init = makeInit(ts, cookie)
        for addr in (("192.0.2.2", 5000), ("10.0.0.1", 5000), ("::ffff:192.0.2.1", 5000)):
            self.assertServerDrops(self.server, init, addr, "bad-cookie")
        ts, cookie = getCookie(self.server, ("2001:db8::1", 5000), START)
        init = makeInit(ts, cookie)
        self.assertServerDrops(self.server, init, ("2001:db8::2", 5000), "bad-cookie")

    def test_cookieForAnotherPort(self):
        """
        A cookie made for one port is C{bad-cookie} from another port of the
        same host.
        """
        ts, cookie = getCookie(self.server, ("192.0.2.1", 5000), START)
        init = makeInit(ts, cookie)
        for port in (4999, 5001, 0, 65535):
            self.assertServerDrops(self.server, init, ("192.0.2.1", port), "bad-cookie")

    def test_cookieWithAlteredTimestamp(self):
        """
        A real cookie sent with another timestamp than it was made for is
        C{bad-cookie}: the timestamp is inside the MAC.
        """
        ts, cookie = getCookie(self.server, CLIENT_ADDR, START)
        for other in (ts - 1, ts + 0, ts - 60):
            if other == ts:
                continue
            self.assertServerDrops(self.server, makeInit(other, cookie), CLIENT_ADDR, "bad-cookie")

    def test_expiredCookie(self):
        """
        A cookie presented more than two rotations after it was made is
        C{expired-cookie}.
        """
        ts, cookie = getCookie(self.server, CLIENT_ADDR, START)
        init = makeInit(ts, cookie)
        for later in (241, 300, 10_000):
            self.assertServerDrops(
                self.server, init, CLIENT_ADDR, "expired-cookie", now=START + later
            )

    def test_cookieTwoRotationsBackExpired(self):
        """
        A cookie made in rotation n is refused in rotation n + 2 even if it is
        less than 240 s old.
        """
        rotation = self.server.cookies.rotation
        made = (int(START) // rotation) * rotation + rotation - 1
        ts, cookie = getCookie(self.server, CLIENT_ADDR, made)
        now = made + rotation + 2  # 122 s later, two rotations on
        init = makeInit(ts, cookie)
        self.assertServerDrops(self.server, init, CLIENT_ADDR, "expired-cookie", now=now)

    def test_cookieFromTheFuture(self):
        """
        A correctly made cookie whose timestamp is later than the server's
        clock is C{expired-cookie}.
        """
        factory = CookieFactory(b"k" * 32)
        ts, cookie = factory.make(CLIENT_ADDR[0], CLIENT_ADDR[1], START + 30)
        self.assertServerDrops(self.server, makeInit(ts, cookie), CLIENT_ADDR, "expired-cookie")

    def test_previousRotationAccepted(self):
        """
        A cookie made in the previous rotation, almost two rotations old, is
        still accepted.
        """
        rotation = self.server.cookies.rotation
        made = (int(START) // rotation) * rotation  # first second of rotation n
        ts, cookie = getCookie(self.server, CLIENT_ADDR, made)
        self.assertAccepted(makeInit(ts, cookie), CLIENT_ADDR, made + 2 * rotation - 1)

    def test_cookieFromAnotherServerSecret(self):
        """
        A cookie made by a server with another master secret is
        C{bad-cookie}; one made with the same secret (another worker) is
        accepted.
        """
        ts, cookie = CookieFactory(b"j" * 32).make(CLIENT_ADDR[0], CLIENT_ADDR[1], START)
        self.assertServerDrops(self.server, makeInit(ts, cookie), CLIENT_ADDR, "bad-cookie")
        ts, cookie = CookieFactory(b"k" * 32).make(CLIENT_ADDR[0], CLIENT_ADDR[1], START)
        self.assertAccepted(makeInit(ts, cookie), CLIENT_ADDR, START)

    def test_repeatedInitWhilePending(self):
        """
        A repeated INIT (same ephemeral, same sender index, valid cookie)
        while the handshake is pending gets the same RESP again and makes
        no new session, if it is at least as long as the RESP (an unpadded
        one gets nothing: C{init-too-short-for-resend}); the same ephemeral
        under another sender index is C{duplicate-ephemeral}.
        """
        ts, cookie = getCookie(self.server, CLIENT_ADDR, START)
        eph = os.urandom(32)
        # padded, as clients do
        init = makeInit(ts, cookie, ephemeral=eph) + bytes(P.HANDSHAKE_RESP_SIZE - 59)
        self.assertAccepted(init, CLIENT_ADDR, START)
        [resp] = [s.respBytes for s in self.server.sessions.values()]
        before = serverState(self.server)
        self.server.receiveDatagram(init, CLIENT_ADDR, START + 1)
        self.assertEqual(takeOutbox(self.server), [(resp, CLIENT_ADDR)])
        self.assertEqual(self.server.counters["resp-retransmitted"], 1)
        after = serverState(self.server)
        self.assertEqual(after[:6], before[:6])
        other = makeInit(ts, cookie, ephemeral=eph, senderIndex=0x0A0B0C0D)
        self.assertServerDrops(self.server, other, CLIENT_ADDR, "duplicate-ephemeral")
        # the same INIT without its padding is shorter than the RESP: no resend
        self.assertServerDrops(self.server, init[:59], CLIENT_ADDR, "init-too-short-for-resend")

    def test_replayedInitOfOpenSession(self):
        """
        The INIT of a session that has opened, replayed with its still-valid
        cookie from the same address, is C{duplicate-ephemeral}: no new
        session, no public-key work, no reply.
        """
        net, server, client = connectedPair()
        [init] = [d for s, dst, d in net.sent if d[0] == P.HANDSHAKE_INIT]
        for later in (0, 5, 100):
            self.assertServerDrops(
                server, init, CLIENT_ADDR, "duplicate-ephemeral", now=net.now + later
            )
        self.assertEqual(server.counters["handshakes"], 1)
        # from another address its cookie is no good
        self.assertServerDrops(server, init, OTHER_ADDR, "bad-cookie", now=net.now)

    def test_lowOrderEphemeral(self):
        """
        A HANDSHAKE_INIT with a valid cookie but a low-order or otherwise
        invalid X25519 key is dropped as C{bad-ephemeral}: no session, no
        reply.
        """
        ts, cookie = getCookie(self.server, CLIENT_ADDR, START)
        for key in LOW_ORDER_KEYS:
            self.assertServerDrops(
                self.server, makeInit(ts, cookie, ephemeral=key), CLIENT_ADDR, "bad-ephemeral"
            )
        self.assertEqual(self.server.sessions, {})


class ClientHandshakeTests(EngineTestCase):
    """
    A HANDSHAKE_RESP that does not prove the expected server key.
    """

    def setUp(self):
        self.server = newServer()
        self.net = Network(self.server)
        self.client = self.net.add(
            ClientEngine(self.server.identity.publicKey, SERVER_ADDR), CLIENT_ADDR
        )
        self.client.start(self.net.now)
        self.net.pump(drop=lambda data, src, dst: data[0] == P.HANDSHAKE_RESP)
        [self.resp] = [d for s, dst, d in self.net.sent if d[0] == P.HANDSHAKE_RESP]
        self.assertEqual(self.client.state, ClientState.INIT_SENT)

    def assertFails(self, data, errorType):
        self.client.receiveDatagram(data, SERVER_ADDR, self.net.now)
        [failure] = self.client.events
        self.assertIsInstance(failure, HandshakeFailure)
        self.assertIsInstance(failure.error, errorType)
        self.assertEqual(self.client.state, ClientState.FAILED)
        self.assertIsNone(self.client.session)
        self.assertIsNone(self.client.nextDeadline())
        # the genuine RESP can no longer open anything
        self.client.events = []
        self.assertClientDrops(self.client, self.resp, "unexpected-resp")
        return failure.error

    def test_respBadSignature(self):
        """
        A HANDSHAKE_RESP whose signature has a flipped bit fails the client
        with L{BadServerSignature}, reported as a L{HandshakeFailure}.
        """
        signatureBit = (P.HANDSHAKE_RESP_SIZE - 64) * 8 + 3
        error = self.assertFails(flip(self.resp, signatureBit), BadServerSignature)
        self.assertIn(self.server.identity.publicKey.toText(), str(error))

    def test_respTamperedTranscript(self):
        """
        A HANDSHAKE_RESP with its server ephemeral, index or suite altered no
        longer matches its signature: L{BadServerSignature}.
        """
        self.assertFails(flip(self.resp, 12 * 8), BadServerSignature)

    def test_respZeroSignature(self):
        """
        An all-zero signature fails with L{BadServerSignature}.
        """
        self.assertFails(self.resp[:-64] + bytes(64), BadServerSignature)

    def test_respBadConfirmation(self):
        """
        A HANDSHAKE_RESP whose key confirmation (outside the signed prefix)
        is altered fails the handshake.
        """
        self.assertFails(flip(self.resp, P.RESP_PREFIX_SIZE * 8), HandshakeFailed)

    def test_wrongServerKey(self):
        """
        A client that expects another server key fails with
        L{BadServerSignature}; no session opens on either side.
        """
        other = Identity.generate().publicKey
        net, server, client = connectedPair(serverKey=other)
        [failure] = net.take(CLIENT_ADDR, HandshakeFailure)
        self.assertIsInstance(failure.error, BadServerSignature)
        self.assertIn(other.toText(), str(failure.error))
        self.assertEqual(net.take("server", SessionOpened), [])
        self.assertEqual(client.state, ClientState.FAILED)
        self.assertEqual(server.openCount, 0)

    def test_genuineRespAfterJunk(self):
        """
        Junk and malformed RESPs are dropped with their reasons without
        failing the handshake, which the genuine RESP then completes.
        """
        c = self.client
        self.assertClientDrops(c, b"", "empty")
        self.assertClientDrops(c, self.resp[:-1], "truncated")
        self.assertClientDrops(c, self.resp + b"\0", "oversized")
        self.assertClientDrops(c, bytes([0x24]) + self.resp[1:], "wrong-version")
        self.assertClientDrops(c, bytes([0x10]) + self.resp[1:], "unknown-type")
        self.assertClientDrops(c, bytes([0x16]) + self.resp[1:], "unexpected-type")  # gossip6's RESP
        self.assertClientDrops(c, P.encodeHello(b"12345678"), "unexpected-type")
        self.assertClientDrops(c, flip(self.resp, 8), "unexpected-resp")  # receiver index
        zeroSender = self.resp[:5] + bytes(4) + self.resp[9:]
        self.assertClientDrops(c, zeroSender, "bad-field")
        self.assertClientDrops(c, P.encodeCookie(c._nonce, 1, bytes(16)), "unexpected-cookie")
        self.assertClientDrops(c, P.encodeDataHeader(0x18, 1, 0) + bytes(16), "no-session")
        c.receiveDatagram(self.resp, SERVER_ADDR, self.net.now)
        self.net.pump()
        self.assertEqual(len(self.net.take(CLIENT_ADDR, SessionOpened)), 1)
        self.assertEqual(len(self.net.take("server", SessionOpened)), 1)


class ClientBadInputTests(EngineTestCase):
    """
    Bad input to a client, before and after its session opens.
    """

    def test_badCookies(self):
        """
        In HELLO_SENT, a COOKIE that is short, long or echoes another nonce is
        dropped; the genuine one then moves the handshake on.
        """
        server = newServer()
        client = ClientEngine(server.identity.publicKey, SERVER_ADDR)
        client.start(START)
        [(hello, _)] = takeOutbox(client)
        server.receiveDatagram(hello, CLIENT_ADDR, START)
        [(cookie, _)] = takeOutbox(server)
        self.assertClientDrops(client, cookie[:-1], "truncated")
        self.assertClientDrops(client, cookie + b"\0", "oversized")
        self.assertClientDrops(client, flip(cookie, 8), "unexpected-cookie")
        self.assertClientDrops(client, b"\x12", "truncated")
        client.receiveDatagram(cookie, SERVER_ADDR, START)
        [(init, _)] = takeOutbox(client)
        self.assertEqual(init[0], P.HANDSHAKE_INIT)
        self.assertClientDrops(client, cookie, "unexpected-cookie")

    def test_badDataToClient(self):
        """
        On an open session the client drops truncated, misaddressed,
        tampered and replayed DATA with the exact reason.
        """
        net, server, client = connectedPair()
        session = serverSessionOf(server, client)
        server.sendMessage(session, b"hello", net.now)
        [(packet, _)] = takeOutbox(server)
        for n in range(1, 29):
            self.assertClientDrops(client, packet[:n], "truncated")
        wrongIndex = P.encodeDataHeader(0x18, client.session.localIndex ^ 1, 9) + packet[13:]
        self.assertClientDrops(client, wrongIndex, "unknown-session")
        for bit in range(13 * 8 + 3, len(packet) * 8, 7):
            self.assertClientDrops(client, flip(packet, bit), "bad-tag")
        client.receiveDatagram(packet, SERVER_ADDR, net.now)
        self.assertEqual([e.message for e in client.events], [b"hello"])
        client.events = []
        self.assertClientDrops(client, packet, "replay")
        self.assertWorks(net, client)

    def test_clientDropsOversizedDatagram(self):
        """
        A client drops a datagram over its maxDatagramSize as C{oversized},
        even an authentic one from a server configured for larger datagrams
        (the adapters read maxDatagramSize + 1 bytes "so oversize is seen").
        """
        net, server, client = connectedPair(
            serverConfig=Config(maxDatagramSize=4000), clientConfig=Config()
        )
        session = serverSessionOf(server, client)
        server.sendMessage(session, b"x" * 2000, net.now)
        [(packet, _)] = takeOutbox(server)
        self.assertGreater(len(packet), client.config.maxDatagramSize)
        self.assertClientDrops(client, packet, "oversized")
        forged = P.encodeDataHeader(0x18, client.session.localIndex, 99) + bytes(2000)
        self.assertClientDrops(client, forged, "oversized")


class StatelessnessTests(EngineTestCase):
    """
    Before a valid cookie the server keeps nothing per client.
    """

    def test_noStateBeforeCookie(self):
        """
        Thousands of HELLOs, INITs with forged, misaddressed and expired
        cookies, and DATA for unknown sessions, from thousands of addresses,
        leave no session, no pending handshake and no growth in any of the
        engine's containers.
        """
        secret = b"s" * 32
        server = newServer(cookieSecret=secret)
        other = CookieFactory(secret)
        now = START

        def addr(i):
            return (f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 1024 + i % 60000)

        # everything the flood will send, made up front
        oldCookies = [other.make(*addr(i), now - 1000) for i in range(600)]
        other = None

        def flood(start, count):
            for i in range(start, start + count):
                a = addr(i)
                server.receiveDatagram(P.encodeHello(i.to_bytes(8, "big")), a, now)
                server.receiveDatagram(P.encodeHello(b"x" * 8)[:40], a, now)
                ts, cookie = oldCookies[i % len(oldCookies)]
                server.receiveDatagram(makeInit(int(now), os.urandom(16)), a, now)
                server.receiveDatagram(makeInit(ts, cookie), a, now)
                takeOutbox(server)
            for i in range(start, start + count):
                a = addr(i)
                ts, cookie = getCookie(server, addr(i + 1), now)  # for the neighbour
                server.receiveDatagram(makeInit(ts, cookie), a, now)
                server.receiveDatagram(P.encodeDataHeader(0x18, i + 1, i) + bytes(32), a, now)
                takeOutbox(server)

        flood(0, 5)  # every drop reason and the counters exist from here on
        self.assertEqual(
            set(server.drops), {"truncated", "bad-cookie", "expired-cookie", "unknown-session"}
        )
        sizes = containerSizes(server, server.cookies, server.timers)
        drops = dict(server.drops)
        flood(5, 3000)
        self.assertEqual(server.sessions, {})
        self.assertEqual(server.byEphemeral, {})
        self.assertEqual(server.pendingCount, 0)
        self.assertEqual(server.openCount, 0)
        self.assertIsNone(server.nextDeadline())
        self.assertEqual(containerSizes(server, server.cookies, server.timers), sizes)
        self.assertEqual(
            dict(server.drops),
            {
                "truncated": drops["truncated"] + 3000,
                "bad-cookie": drops["bad-cookie"] + 6000,
                "expired-cookie": drops["expired-cookie"] + 3000,
                "unknown-session": drops["unknown-session"] + 3000,
            },
        )
        self.assertEqual(server.counters["cookies-sent"], 2 * 3005)
        # each DATA for an unknown session drew a stateless reset, within the server's rate
        self.assertEqual(server.counters["resets-sent"], Config().resetBurst)
        self.assertEqual(set(server.counters), {"cookies-sent", "resets-sent"})

    def test_cookieSecretsBoundedOverTime(self):
        """
        As time passes over many cookie rotations, with HELLOs and INITs
        carrying old, current and future timestamps, the server keeps at
        most a few derived secrets.
        """
        server = newServer()
        rotation = server.cookies.rotation
        for step in range(200):
            now = START + step * rotation / 3
            for ts in (0, int(now) - 5 * rotation, int(now), int(now) + 3 * rotation, 2**32 - 1):
                server.receiveDatagram(makeInit(ts, bytes(16)), CLIENT_ADDR, now)
            getCookie(server, CLIENT_ADDR, now)
            self.assertLessEqual(len(server.cookies._cache), 4)
        self.assertEqual(server.sessions, {})
        self.assertEqual(set(server.drops), {"bad-cookie", "expired-cookie"})


class AmplificationTests(EngineTestCase):
    """
    The server never sends more to an unproven address than it received.
    """

    def test_replyNotLongerThanRequest(self):
        """
        For every kind of datagram from an address that has shown no cookie,
        each reply goes back to that address and is no longer than the
        request; only a HELLO of 64 bytes or more gets a 29-byte COOKIE, and
        a DATA or CONTROL packet for no session a smaller stateless reset.
        """
        net, server, client = connectedPair()
        client.sendMessage(client.session, b"x" * 100, net.now)
        net.pump()
        captured = [d for s, dst, d in net.sent]
        ts, cookie = getCookie(server, ("198.51.100.1", 7), net.now)
        requests = [b"", P.encodeHello(b"12345678")]
        requests += [P.encodeHello(b"12345678") + bytes(n) for n in (1, 36, 500, MAX - 64)]
        requests += [P.encodeHello(b"12345678")[:n] for n in (1, 2, 9, 30, 63)]
        requests += [
            makeInit(ts, cookie),
            makeInit(ts, os.urandom(16)),
            makeInit(ts, cookie, suites=range(1, 17)),
        ]
        requests += [bytes([t]) + os.urandom(n) for t in range(256) for n in (0, 28, 63, 120)]
        requests += captured  # the real handshake and data packets, replayed
        replies = expected = 0
        for i, request in enumerate(requests):
            src = ("203.0.113.%d" % (i % 250 + 1), 10000 + i)
            server.receiveDatagram(request, src, net.now)
            out = takeOutbox(server)
            isHello = len(request) >= 64 and request[0] == P.HELLO
            if isHello and len(request) <= MAX:
                expected += 1
                self.assertEqual([(len(d), dst) for d, dst in out], [(P.COOKIE_PACKET_SIZE, src)])
                replies += 1
            elif out and request[0] & 0xFC == P.DATA:
                [(reset, _)] = out  # an unknown session's packet: a smaller stateless reset
                self.assertTrue(isResetFor(reset, request), reset.hex())
            else:
                self.assertEqual(out, [], f"reply to {request[:16].hex()} of {len(request)} bytes")
            for data, dst in out:
                self.assertEqual(dst, src)
                self.assertLessEqual(len(data), len(request))
        self.assertEqual(replies, expected)
        self.assertGreaterEqual(replies, 5)
        self.assertEqual(server.openCount + server.pendingCount, 1)

    def test_shortHelloNoReply(self):
        """
        A HELLO shorter than 64 bytes is not answered at all, and a 64-byte
        one gets 29 bytes.
        """
        server = newServer()
        hello = P.encodeHello(b"abcdefgh")
        self.assertEqual(len(hello), 64)
        for n in range(1, 64):
            server.receiveDatagram(hello[:n], CLIENT_ADDR, START)
            self.assertEqual(takeOutbox(server), [])
        server.receiveDatagram(hello, CLIENT_ADDR, START)
        [(reply, dst)] = takeOutbox(server)
        self.assertEqual((len(reply), dst), (29, CLIENT_ADDR))
        self.assertEqual(P.decodeCookie(reply)[0], b"abcdefgh")


class AddressAndWindowTests(EngineTestCase):
    """
    The replay window and the peer address move only after authentication.
    """

    def test_forgeryMovesNothing(self):
        """
        A forged DATA packet (bad tag) with a high sequence number from a
        new address leaves the peer address and the replay window alone, as
        do a phase-1 forgery and a replay from a new address; the client's
        next real packet (sequence far below the forged one) is accepted.
        """
        net, server, client = connectedPair()
        session = serverSessionOf(server, client)
        window = session.epochs[0].window
        highest = window.highest
        index = session.localIndex
        attacker = ("198.51.100.66", 6666)
        for seq in (highest + 1, 2**40, 2**64 - 1):
            data = P.encodeDataHeader(0x18, index, seq) + os.urandom(48)
            self.assertServerDrops(server, data, attacker, "bad-tag")
            self.assertServerDrops(server, P.encodeDataHeader(0x1A, index, seq) + os.urandom(20),
                                   attacker, "bad-tag")
        phaseOne = P.encodeDataHeader(0x19, index, 2**40) + bytes(40)
        self.assertServerDrops(server, phaseOne, attacker, "no-key")
        confirm = [d for s, dst, d in net.sent if s == CLIENT_ADDR and d[0] == P.CONTROL][0]
        self.assertServerDrops(server, confirm, attacker, "replay")
        self.assertEqual(session.peerAddr, CLIENT_ADDR)
        self.assertEqual(window.highest, highest)
        self.assertWorks(net, client)
        self.assertEqual(session.peerAddr, CLIENT_ADDR)
        self.assertEqual(window.highest, highest + 1)
        self.assertEqual(net.undelivered, [])

    def test_delayedPacketFromElsewhereDoesNotRedirect(self):
        """
        An authentic packet held back by an attacker and delivered late from
        another address (after newer packets) is accepted once, but does not
        move the peer address: only the newest packet may.
        """
        net, server, client = connectedPair()
        session = serverSessionOf(server, client)
        client.sendMessage(client.session, b"held back", net.now)
        [(held, _)] = takeOutbox(client)
        client.sendMessage(client.session, b"newer", net.now)
        net.pump()
        attacker = ("198.51.100.66", 6666)
        server.receiveDatagram(held, attacker, net.now)
        self.assertEqual([e.message for e in server.events], [b"held back"])
        server.events = []
        self.assertEqual(session.peerAddr, CLIENT_ADDR)
        server.sendMessage(session, b"reply", net.now)
        self.assertEqual([dst for _, dst in takeOutbox(server)], [CLIENT_ADDR])

    def test_natRebinding(self):
        """
        An authentic packet from a new source port (NAT rebinding) moves the
        server's peer address, and the server's replies go there.
        """
        net, server, client = connectedPair()
        session = serverSessionOf(server, client)
        newAddr = ("127.0.0.1", 50123)
        forged = P.encodeDataHeader(0x18, session.localIndex, 10**6) + os.urandom(40)
        self.assertServerDrops(server, forged, newAddr, "bad-tag")
        self.assertEqual(session.peerAddr, CLIENT_ADDR)
        net.move(client, newAddr)
        client.sendMessage(client.session, b"from the new port", net.now)
        events = net.pump()
        self.assertEqual([e.message for w, e in events], [b"from the new port"])
        self.assertEqual(session.peerAddr, newAddr)
        server.sendMessage(session, b"reply", net.now)
        [(reply, dst)] = list(server.outbox)
        self.assertEqual(dst, newAddr)
        events = net.pump()
        self.assertEqual([(w, e.message) for w, e in events], [(newAddr, b"reply")])
        self.assertEqual(net.undelivered, [])
        self.assertEqual(client.session.peerAddr, SERVER_ADDR)


    def test_natRebindingDuringRekey(self):
        """
        The client's address changes just after the server has answered its
        REKEY_REQUEST (the answer goes to the old address and is lost). The
        client's later packets, authentic and each the newest so far, come
        from the new address under the old epoch; the server must follow
        them, so that its retransmitted answer reaches the client, the rekey
        completes and the session survives.
        """
        net, server, client = connectedPair(Config(rekeyAfterMessages=2))
        session = serverSessionOf(server, client)
        client.sendMessage(client.session, b"starts a rekey", net.now)
        for data, _ in takeOutbox(client):  # DATA, then the REKEY_REQUEST
            server.receiveDatagram(data, CLIENT_ADDR, net.now)
        self.assertEqual([ep.number for ep in session.epochs], [0, 1])
        newAddr = ("127.0.0.1", 50123)
        net.move(client, newAddr)
        net.pump()  # the REKEY_RESPONSE goes to the old address
        self.assertEqual(len(net.undelivered), 1)
        for i in range(5):
            net.advance(1.0)  # the client retransmits its request
            client.sendMessage(client.session, b"%d" % i, net.now)
            net.pump()
        self.assertEqual(session.peerAddr, newAddr)
        # the stuck rekey completed (and, at 2 messages a key, later ones too)
        self.assertGreaterEqual(client.session.sendEpoch.number, 1)
        self.assertEqual(session.sendEpoch.number, client.session.sendEpoch.number)
        self.assertWorks(net, client)


class LimitTests(EngineTestCase):
    """
    maxPendingHandshakes, maxSessions and maxMessageSize.
    """

    def test_maxPendingHandshakes(self):
        """
        With maxPendingHandshakes=2 and two handshakes waiting, a third INIT
        with a valid cookie is dropped as C{too-many-pending}; the open
        session keeps working.
        """
        server = newServer(Config(maxPendingHandshakes=2))
        net = Network(server)
        first = connect(net, CLIENT_ADDR)
        self.assertEqual(server.openCount, 1)
        noResp = lambda data, src, dst: data[0] == P.HANDSHAKE_RESP  # noqa: E731
        for port in (41000, 41001):
            pending = ClientEngine(server.identity.publicKey, SERVER_ADDR)
            net.add(pending, ("127.0.0.1", port)).start(net.now)
            net.pump(drop=noResp)
        self.assertEqual(server.pendingCount, 2)
        third = net.add(ClientEngine(server.identity.publicKey, SERVER_ADDR), ("127.0.0.1", 41002))
        third.start(net.now)
        self.assertEqual(dropsDuring(server, net.pump), {"too-many-pending": 1})
        lastToThird = [d for s, dst, d in net.sent if dst == ("127.0.0.1", 41002)][-1]
        self.assertEqual(lastToThird[0], P.COOKIE)
        self.assertEqual(server.pendingCount, 2)
        self.assertEqual(third.state, ClientState.INIT_SENT)
        self.assertWorks(net, first)

    def test_maxSessions(self):
        """
        With maxSessions=2 and two open sessions, a third INIT is dropped as
        C{server-full} while both sessions keep working; once one closes,
        the third client's retransmitted INIT gets in.
        """
        server = newServer(Config(maxSessions=2))
        net = Network(server)
        a = connect(net, ("127.0.0.1", 41000))
        b = connect(net, ("127.0.0.1", 41001))
        self.assertEqual(server.openCount, 2)
        c = net.add(ClientEngine(server.identity.publicKey, SERVER_ADDR), ("127.0.0.1", 41002))
        c.start(net.now)
        self.assertEqual(dropsDuring(server, net.pump), {"server-full": 1})
        self.assertEqual(c.state, ClientState.INIT_SENT)
        self.assertWorks(net, a)
        self.assertWorks(net, b)
        a.closeSession(a.session, net.now)
        net.pump()
        self.assertEqual(server.openCount, 1)
        net.advance(0.6)  # c retransmits its INIT
        self.assertEqual(c.state, ClientState.ESTABLISHED)
        self.assertEqual(server.openCount, 2)
        self.assertWorks(net, b)
        self.assertWorks(net, c)

    def test_keyExhaustionClosesWithoutRaising(self):
        """
        A server whose send key reached rejectAfterMessages (its rekey asks
        lost) that then gets the client's REKEY_REQUEST cannot answer: the
        session closes as C{key-exhausted}, reported as SessionEnded, and
        nothing is raised out of receiveDatagram or sealed past the limit.
        """
        config = Config(rekeyAfterMessages=2, rejectAfterMessages=3)
        net, server, client = connectedPair(config)
        session = serverSessionOf(server, client)
        server.sendMessage(session, b"a", net.now)  # seq 1; then the ask, seq 2
        self.assertEqual(session.sendEpoch.sendSeq, 3)
        takeOutbox(server)  # all lost
        client.sendMessage(client.session, b"x", net.now)  # seq 1, then the client's REKEY_REQUEST
        for data, _ in takeOutbox(client):
            server.receiveDatagram(data, CLIENT_ADDR, net.now)
        self.assertEqual(session.state, "closed")
        self.assertEqual(session.closeReason, "key-exhausted")
        seqs = [header(d)[2] for d, dst in takeOutbox(server)]
        self.assertTrue(all(q < 3 for q in seqs), seqs)
        [ended] = [e for e in server.events if isinstance(e, SessionEnded)]
        self.assertEqual(ended.reason.reason, "key-exhausted")
        self.assertEqual(server.sessions, {})

    def test_rekeyAfterOneMessageSettles(self):
        """
        rekeyAfterMessages=1 is a valid setting; an idle session with it
        must still go quiet after its rekeys rather than rekey forever.
        """
        config = Config(rekeyAfterMessages=1, rejectAfterMessages=4)
        server = newServer(config)
        net = Network(server)
        count = [0]

        def drop(data, src, dst):
            count[0] += 1
            return count[0] > 300  # a fuse, so that the test ends

        net.drop = drop
        client = connect(net, CLIENT_ADDR, config)
        self.assertEqual(client.state, ClientState.ESTABLISHED)
        self.assertLess(len(net.sent), 100, f"{len(net.sent)} datagrams, "
                        f"{client.session.stats['rekeys']} rekeys, no application data")

    def test_messageTooLarge(self):
        """
        A message one byte over maxMessageSize raises L{MessageTooLarge}
        with C{size} and C{limit}, on either side, and sends nothing; one of
        exactly maxMessageSize fills a maxDatagramSize datagram.
        """
        net, server, client = connectedPair()
        session = serverSessionOf(server, client)
        limit = Config().maxMessageSize
        self.assertEqual(limit, MAX - 29)
        for send, engine, sess in ((lambda m: client.sendMessage(client.session, m, net.now), client, client.session),
                                   (lambda m: server.sendMessage(session, m, net.now), server, session)):
            seq = sess.sendEpoch.sendSeq
            e = self.assertRaises(MessageTooLarge, send, b"x" * (limit + 1))
            self.assertEqual((e.size, e.limit), (limit + 1, limit))
            e = self.assertRaises(MessageTooLarge, send, b"x" * 65536)
            self.assertEqual((e.size, e.limit), (65536, limit))
            self.assertEqual(engine.outbox, [])
            self.assertEqual(sess.sendEpoch.sendSeq, seq)
            send(b"x" * limit)
            [(data, _)] = takeOutbox(engine)
            self.assertEqual(len(data), MAX)


class _RecordingCipher:
    def __init__(self, key, inner, log, opens):
        self.key = key
        self.inner = inner
        self.log = log
        self.opens = opens

    def seal(self, sequence, header, plaintext):
        self.log.append((self.key, sequence))
        return self.inner.seal(sequence, header, plaintext)

    def open(self, sequence, header, ciphertext):
        plaintext = self.inner.open(sequence, header, ciphertext)
        self.opens.append((self.key, sequence))
        return plaintext


class RecordingSuite:
    """
    The default suite, with every seal and successful open recorded as
    C{(key bytes, sequence number)}.
    """

    def __init__(self, inner):
        self.inner = inner
        for name in ("name", "suiteId", "keySize", "tagSize",
                     "confidentialityLimit", "integrityLimit"):
            setattr(self, name, getattr(inner, name))
        self.seals = []
        self.opens = []
        self.keys = set()

    def newCipher(self, key):
        key = bytes(key)  # the session wipes its bytearray later
        self.keys.add(key)
        return _RecordingCipher(key, self.inner.newCipher(key), self.seals, self.opens)


class NonceTests(EngineTestCase):
    def test_noNonceReuseAcrossRekeys(self):
        """
        Over a session that rekeys many times (rekeyAfterMessages=5), with
        traffic both ways, no (key, sequence number) pair is ever sealed
        twice, by either side, and every message arrives.
        """
        from sudp.suites import DEFAULT_SUITE

        suite = RecordingSuite(DEFAULT_SUITE)
        config = Config(suites=(suite,), rekeyAfterMessages=5)
        net, server, client = connectedPair(config)
        session = serverSessionOf(server, client)
        sent = []
        for i in range(150):
            client.sendMessage(client.session, b"c%d" % i, net.now)
            sent.append(("server", b"c%d" % i))
            if i % 3:
                server.sendMessage(session, b"s%d" % i, net.now)
                sent.append((CLIENT_ADDR, b"s%d" % i))
            if i % 7 == 0:
                net.pump()
            if i % 20 == 0:
                net.advance(6)  # past oldKeyGrace: old epochs retire
        net.pump()
        got = [(w, e.message) for w, e in net.events if isinstance(e, MessageReceived)]
        self.assertEqual(Counter(got), Counter(sent))
        self.assertEqual([e for w, e in net.events if isinstance(e, SessionEnded)], [])
        self.assertGreaterEqual(client.session.stats["rekeys"], 20)
        self.assertGreaterEqual(session.stats["rekeys"], 20)
        self.assertEqual(len(suite.seals), len(set(suite.seals)))
        # every key is distinct: two per epoch (c2s and s2c), each made
        # once per side
        epochs = client.session.sendEpoch.number + 1
        self.assertGreaterEqual(len(suite.keys), 2 * client.session.stats["rekeys"])
        self.assertLessEqual(len(suite.keys), 2 * (epochs + 1))
        self.assertNotIn(bytes(32), suite.keys)
        # sealed and opened pairs match up: nothing opened that was not sealed
        self.assertLessEqual(set(suite.opens), set(suite.seals))

    def test_noNonceReuseWithLoss(self):
        """
        The same with a lossy, reordering link (a fixed pseudo-random third
        of datagrams lost, rekey requests and responses included, and time
        moving so that retransmissions and key retirement run): still no
        (key, sequence number) pair is sealed twice.
        """
        import random

        from sudp.suites import DEFAULT_SUITE

        rng = random.Random(1234)
        suite = RecordingSuite(DEFAULT_SUITE)
        config = Config(suites=(suite,), rekeyAfterMessages=4)
        net, server, client = connectedPair(config)
        session = serverSessionOf(server, client)
        net.drop = lambda data, src, dst: rng.random() < 0.33
        for i in range(300):
            if session.state == "open":
                server.sendMessage(session, b"s%d" % i, net.now)
            client.sendMessage(client.session, b"c%d" % i, net.now)
            # deliver what is queued in a shuffled order
            for engine, src in ((client, CLIENT_ADDR), (server, SERVER_ADDR)):
                out = takeOutbox(engine)
                rng.shuffle(out)
                engine.outbox = out
            net.pump()
            net.advance(rng.choice((0.0, 0.3, 1.1, 2.5)))
        self.assertEqual(client.session.state, "open")
        self.assertGreaterEqual(client.session.stats["rekeys"], 10)
        self.assertEqual(len(suite.seals), len(set(suite.seals)))
        self.assertLessEqual(set(suite.opens), set(suite.seals))
        received = [e.message for w, e in net.events if isinstance(e, MessageReceived)]
        self.assertEqual(len(received), len(set(received)))  # nothing delivered twice


class MaliciousPeerTests(EngineTestCase):
    """
    Input that authenticates but comes from a hostile peer: anyone can run a
    handshake with a server, and a client pins the server's key but need not
    trust its every record. Such input may close the session (protocol.md
    15.2) but must never raise out of an engine or change what it must not.
    """

    def seal(self, session, plaintext, kind=P.CONTROL):
        """
        Seal raw C{plaintext}, well formed or not, under C{session}'s
        current send key, as its own engine would.
        """
        self.assertTrue(session._seal(kind, plaintext, START))

    def pendingPair(self, authorizedKeys=None, identity=None):
        """
        A client whose CONFIRM was lost: its keys exist, the server's
        session is pending.
        """
        server = newServer(authorizedKeys=authorizedKeys)
        net = Network(server)
        client = net.add(ClientEngine(server.identity.publicKey, SERVER_ADDR, identity=identity))
        client.start(net.now)
        net.pump(drop=lambda data, src, dst: src == CLIENT_ADDR and data[0] == P.CONTROL)
        self.assertEqual(client.state, ClientState.CONFIRM_SENT)
        [session] = server.sessions.values()
        self.assertEqual(session.state, "pending")
        return net, server, client, session

    def test_malformedRecordsCloseSession(self):
        """
        An authenticated CONTROL packet with malformed records is counted
        under the record reason and closes the session with code 3, none of
        its records acted on, on either side.
        """
        bad = {
            b"": "empty-control",
            b"\x02\x00": "truncated",
            R.encodeRecord(R.APP_DATA, b"lost") + b"\x01\x00\x09abc": "truncated",
            R.encodeRecord(R.APP_DATA, b"lost") + R.encodeRecord(0x7F): "unknown-record",
            R.encodeRecord(R.KEEPALIVE, b"x"): "bad-record",
            R.encodeRecord(R.CLOSE, b""): "bad-record",
            R.encodeRecord(R.REKEY_REQUEST, bytes(5)): "bad-record",
            R.encodeRecord(R.CLIENT_AUTH, bytes(95)): "bad-record",
        }
        for plaintext, reason in bad.items():
            for fromClient in (True, False):
                net, server, client = connectedPair()
                session = serverSessionOf(server, client)
                sender, receiver = (client.session, server) if fromClient else (session, client)
                self.seal(sender, plaintext)
                events = net.pump()
                self.assertEqual(dict(receiver.drops), {reason: 1}, (plaintext, fromClient))
                self.assertEqual([e for w, e in events if isinstance(e, MessageReceived)], [])
                ended = endings(events)
                self.assertEqual(ended, [(False, "protocol-error"), (True, "protocol-error")])
                self.assertEqual(server.sessions, {})

    def test_closeWithUnknownCodeAndBadText(self):
        """
        A CLOSE with an unknown code and invalid UTF-8 text ends the session
        as C{protocol-error} with the text replaced, and is not answered.
        """
        net, server, client = connectedPair()
        self.seal(client.session, R.encodeRecord(R.CLOSE, bytes([200]) + b"\xff\xfebye"))
        before = len(net.sent)
        net.pump()
        self.assertEqual([src for src, dst, d in net.sent[before:]], [CLIENT_ADDR])  # no answer
        [ended] = net.take("server", SessionEnded)
        self.assertEqual(ended.reason.reason, "protocol-error")
        self.assertEqual(ended.reason.detail, "\ufffd\ufffdbye")
        self.assertEqual(server.sessions, {})
        self.assertEqual(dict(server.drops), {})

    def test_rekeyRequestWithBadKey(self):
        """
        A REKEY_REQUEST for the next epoch carrying a low-order X25519 key,
        or the server's 4-byte form sent by the client, is dropped as
        C{bad-rekey}; no epoch is installed and the session keeps working.
        """
        net, server, client = connectedPair()
        session = serverSessionOf(server, client)
        for key in LOW_ORDER_KEYS[:4]:
            self.seal(client.session, R.encodeRecord(R.REKEY_REQUEST, (1).to_bytes(4, "big") + key))
        self.seal(client.session, R.encodeRecord(R.REKEY_REQUEST, (1).to_bytes(4, "big")))
        net.pump()
        self.assertEqual(dict(server.drops), {"bad-rekey": 5})
        self.assertEqual(session.epochs[1], None)
        self.assertIsNone(session.rekey)
        self.assertWorks(net, client)

    def test_rekeyRequestStaleEpoch(self):
        """
        A REKEY_REQUEST naming any epoch but the next is ignored: no new
        keys, no reply, the session keeps working.
        """
        net, server, client = connectedPair()
        session = serverSessionOf(server, client)
        for epoch in (0, 2, 5, 2**32 - 1):
            value = epoch.to_bytes(4, "big") + os.urandom(32)
            self.seal(client.session, R.encodeRecord(R.REKEY_REQUEST, value))
        before = len(net.sent)
        net.pump()
        self.assertEqual(len(net.sent) - before, 4)  # the four requests; no answers
        self.assertEqual(session.epochs[1], None)
        self.assertEqual(session.sendEpoch.number, 0)
        self.assertWorks(net, client)

    def test_rekeyResponseBadSignature(self):
        """
        A REKEY_RESPONSE to the client's pending rekey that the server key
        did not sign is dropped as C{bad-rekey-signature} and closes the
        session with code 3; the client never switches keys.
        """
        net, server, client = connectedPair()
        session = serverSessionOf(server, client)
        client.session._startRekey(net.now)
        takeOutbox(client)  # the real request is lost
        value = (1).to_bytes(4, "big") + os.urandom(32) + os.urandom(64)
        self.seal(session, R.encodeRecord(R.REKEY_RESPONSE, value))
        events = net.pump()
        self.assertEqual(client.drops["bad-rekey-signature"], 1)
        ended = endings(events)
        self.assertEqual(ended, [(False, "protocol-error"), (True, "protocol-error")])

    def test_rekeyResponseUnsolicited(self):
        """
        A REKEY_RESPONSE when the client has no rekey pending, or for
        another epoch than the pending one, is ignored.
        """
        net, server, client = connectedPair()
        session = serverSessionOf(server, client)
        value = (1).to_bytes(4, "big") + os.urandom(96)
        self.seal(session, R.encodeRecord(R.REKEY_RESPONSE, value))
        net.pump()
        client.session._startRekey(net.now)
        takeOutbox(client)
        value = (7).to_bytes(4, "big") + os.urandom(96)
        self.seal(session, R.encodeRecord(R.REKEY_RESPONSE, value))
        net.pump()
        self.assertEqual(dict(client.drops), {})
        self.assertEqual(client.session.sendEpoch.number, 0)
        self.assertEqual(client.session.state, "open")

    def test_clientAuthAfterOpenIgnored(self):
        """
        Once a session is open, a CLIENT_AUTH with a valid proof for another
        key does not change who the server thinks the client is.
        """
        from sudp.udp.handshake import clientProof

        alice, mallory = Identity.generate(), Identity.generate()
        net, server, client = connectedPair(
            clientIdentity=alice, authorizedKeys=[alice.publicKey, mallory.publicKey]
        )
        session = serverSessionOf(server, client)
        self.assertEqual(session.peerKey, alice.publicKey)
        proof = clientProof(mallory, session.handshakeTranscript)
        self.seal(client.session, R.encodeRecord(R.CLIENT_AUTH, proof) + R.encodeRecord(R.CONFIRM))
        net.pump()
        self.assertEqual(session.peerKey, alice.publicKey)
        self.assertEqual(dict(server.drops), {})
        self.assertWorks(net, client)

    def test_badClientProofs(self):
        """
        With authorized keys, every bad proof in the CONFIRM packet closes
        the pending session as C{not-authorized} (code 2) and the client
        reports L{ClientNotAuthorized}: a key that is not a curve point, an
        all-zero proof, a good key with a random signature, a signature of
        another transcript, a valid proof of an unauthorized key, and none.
        """
        from sudp.errors import ClientNotAuthorized
        from sudp.udp.handshake import clientProof

        alice, mallory = Identity.generate(), Identity.generate()
        notAPoint = bytes([2] + [0] * 30 + [0x80])  # y = 2 (with the sign bit) is off the curve
        proofs = [
            (lambda th: notAPoint + os.urandom(64), "bad-client-signature"),
            (lambda th: bytes(96), "bad-client-signature"),
            (lambda th: alice.publicKey.raw + os.urandom(64), "bad-client-signature"),
            (lambda th: clientProof(alice, os.urandom(32)), "bad-client-signature"),
            (lambda th: clientProof(mallory, th), None),
            (None, None),
        ]
        for make, drop in proofs:
            net, server, client, session = self.pendingPair(authorizedKeys=[alice.publicKey])
            plaintext = R.encodeRecord(R.CONFIRM)
            if make is not None:
                proof = make(session.handshakeTranscript)
                plaintext = R.encodeRecord(R.CLIENT_AUTH, proof) + plaintext
            self.seal(client.session, plaintext)
            net.pump()
            self.assertEqual(dict(server.drops), {drop: 1} if drop else {})
            self.assertEqual(session.state, "closed")
            self.assertEqual(session.closeReason, "not-authorized")
            self.assertEqual(server.openCount + server.pendingCount, 0)
            [failure] = net.take(CLIENT_ADDR, HandshakeFailure)
            self.assertIsInstance(failure.error, ClientNotAuthorized)
            self.assertEqual(net.take("server", SessionOpened), [])

    def test_twoClientAuthRecords(self):
        """
        A CONFIRM carrying two CLIENT_AUTH records, both valid proofs (one
        of an authorized key, one not), in either order, is refused
        (not-authorized): which one counts is never ambiguous. (protocol.md
        said the last counted, the code took the first.)
        """
        from sudp.errors import ClientNotAuthorized
        from sudp.udp.handshake import clientProof

        alice, mallory = Identity.generate(), Identity.generate()
        for first, second in ((alice, mallory), (mallory, alice), (alice, alice)):
            net, server, client, session = self.pendingPair(authorizedKeys=[alice.publicKey])
            th = session.handshakeTranscript
            plaintext = (R.encodeRecord(R.CLIENT_AUTH, clientProof(first, th))
                         + R.encodeRecord(R.CLIENT_AUTH, clientProof(second, th)) + R.encodeRecord(R.CONFIRM))
            self.seal(client.session, plaintext)
            net.pump()
            self.assertEqual(session.state, "closed")
            self.assertEqual(session.closeReason, "not-authorized")
            self.assertIsNone(session.peerKey)
            [failure] = net.take(CLIENT_ADDR, HandshakeFailure)
            self.assertIsInstance(failure.error, ClientNotAuthorized)
            self.assertEqual(net.take("server", SessionOpened), [])

    def test_dataOnPendingSession(self):
        """
        Authenticated DATA before the CONFIRM is dropped as C{not-open} and
        not delivered; the session still opens on the CONFIRM.
        """
        net, server, client, session = self.pendingPair()
        self.seal(client.session, b"too early", kind=P.DATA)
        net.pump()
        self.assertEqual(dict(server.drops), {"not-open": 1})
        self.assertEqual(net.take("server", MessageReceived), [])
        self.seal(client.session, R.encodeRecord(R.CONFIRM))
        net.pump()
        self.assertEqual(session.state, "open")
        self.assertEqual(client.state, ClientState.ESTABLISHED)

    def test_appDataRecordOnPendingSession(self):
        """
        An APP_DATA record on a pending session is not delivered and is
        counted as C{not-open}, like a DATA packet (protocol.md 11.3).
        """
        net, server, client, session = self.pendingPair()
        self.seal(client.session, R.encodeRecord(R.APP_DATA, b"too early"))
        net.pump()
        self.assertEqual(net.take("server", MessageReceived), [])
        self.assertEqual(dict(server.drops), {"not-open": 1})

    def test_confirmWithAppDataOpensThenDelivers(self):
        """
        APP_DATA records in the CONFIRM packet itself, before or after the
        CONFIRM record, are delivered after the session opens (the records
        that open a session are handled first).
        """
        net, server, client, session = self.pendingPair()
        plaintext = (R.encodeRecord(R.APP_DATA, b"one") + R.encodeRecord(R.CONFIRM)
                     + R.encodeRecord(R.APP_DATA, b"two") + R.encodeRecord(0xC3, b"optional"))
        self.seal(client.session, plaintext)
        net.pump()
        self.assertEqual([e.message for e in net.take("server", MessageReceived)], [b"one", b"two"])
        self.assertEqual(session.state, "open")
