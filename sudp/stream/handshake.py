# -*- test-case-name: sudp_test.stream.test_handshake -*-
"""
Key establishment for sframe: the sudp/1 handshake (L{sudp.udp.handshake}) over
the stream, without the cookie (the stream already proved the address). ::

  client -> server   u16 length | HANDSHAKE_INIT (timestamp 0, cookie zero)
  server -> client   u16 length | HANDSHAKE_RESP
  client -> server   first frame, CODE_CONFIRM: empty, or the 96-byte client proof
  server -> client   first frame, CODE_ACCEPT (or CODE_CLOSE with a reason)

The suite ids in INIT and RESP name stream suites (C{STREAM_SUITES}: 1 =
aes-256-ctr-sha256, the peer-to-peer spec's; 2 = chacha20-poly1305 and 3 = aes-256-gcm,
an AEAD per frame). Frame
keys: prk = HKDF-Extract(th, dh); block = HKDF-Expand(prk, "sudp/1 sframe",
160); the client writes with the top half, the server with the bottom half,
each half being AES key (32) | CTR IV (16) | MAC chain key (32).

The transcript hash and the signatures use sframe's own labels
(L{sudp.udp.keyschedule.SFRAME_LABELS}: "sframe/1 handshake\\0", "sframe/1
server signature\\0", "sframe/1 client signature\\0"), so nothing signed
for sudp/1 over UDP verifies here, nor the reverse.
"""

import hashlib
import hmac
import os
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from zope.interface import implementer

from sudp.errors import ConfigurationError, HandshakeFailed, MalformedPacket
from sudp.interfaces import IStreamKeyExchange, IStreamSuite
from sudp.registry import SuiteRegistry
from sudp.udp.handshake import answerInit, checkAnswer, chooseSuite, clientProof, randomIndex
from sudp.stream.frames import DEFAULT_MAX_PAYLOAD, AEADFrameCipher, CTRChainCipher
from sudp.stream.rekey import DEFAULT_REKEY_AFTER_FRAMES, DEFAULT_REKEY_AFTER_TIME, keyChains
from sudp.udp import packets as P
from sudp.udp.keyschedule import SFRAME_LABELS, Ephemeral

STREAM_LABEL = b"sudp/1 sframe"
_LEN = struct.Struct(">H")
MAX_HANDSHAKE_MESSAGE = 1024
MIN_FRAME_PAYLOAD = 128


@implementer(IStreamSuite)
class StreamSuite:
    """
    A stream suite: how each direction's frames are protected.
    """

    keySize = 32  # what the shared handshake derives its epoch keys with

    def __init__(self, name, suiteId, makeCipher):
        self.name = name
        self.suiteId = suiteId
        self._make = makeCipher

    def cipher(self, half, encrypt):
        """
        @param half: 80 bytes: key | iv | MAC key.
        """
        return self._make(half, encrypt)

    def __repr__(self):
        return f"<stream suite {self.name}>"


streamRegistry = SuiteRegistry(IStreamSuite, "sframe suite")
registerStreamSuite = streamRegistry.register
parseStreamSuites = streamRegistry.parseList
STREAM_SUITES = streamRegistry.byName

SEED003 = registerStreamSuite(StreamSuite(
    "aes-256-ctr-sha256", 1, lambda h, enc: CTRChainCipher(h[:32], h[32:48], h[48:80], enc)
))
AEAD_FRAMES = registerStreamSuite(
    StreamSuite("chacha20-poly1305", 2, lambda h, enc: AEADFrameCipher(h[:32], enc))
)
GCM_FRAMES = registerStreamSuite(
    StreamSuite("aes-256-gcm", 3, lambda h, enc: AEADFrameCipher(h[:32], enc, AESGCM))
)


@dataclass(frozen=True)
class StreamConfig:
    """
    Options of an sframe endpoint. Times are seconds.

    @ivar suites: stream suites in preference order; the first is the peer-to-peer spec's
        AES-256-CTR with the chained SHA-256 MAC.
    @ivar maxFramePayload: the largest payload in one frame, sent or accepted;
        larger writes are split.
    @ivar frameTimeout: how long a started frame may take to complete before
        the peer is declared slow.
    @ivar handshakeTimeout: how long the key exchange may take.
    @ivar idleTimeout: a connection on which nothing arrives for this long
        is closed (C{idle-timeout}); both sides send a KEEPALIVE frame when
        they have sent nothing for C{keepaliveInterval}, so a live peer is
        never idle. A peer that does not read what it is sent is paused
        (nothing more is read from it), and so is idle too.
    @ivar keepaliveInterval: see C{idleTimeout}; shorter than it.
    @ivar maxConnections: (listeners) connections open at once; 0 (the
        default) takes the process's descriptor limit less 64, at most
        10,000. When full, a new connection takes the place of the oldest
        connection of the source holding the most, if that source holds
        at least two more than the newcomer's; else it is refused
        (C{listener-full}).
    @ivar maxConnectionsPerSource: (listeners) connections one source
        prefix may hold; more are refused (C{too-many-from-source}).
    @ivar handshakesPerSecond: (listeners) connections one source prefix
        may start per second on average, and C{handshakeBurst} at once;
        more are closed before any handshake work (C{rate-limited}).
    @ivar handshakePrefixV4: (listeners) the IPv4 prefix length a source
        is counted by (32: each address).
    @ivar handshakePrefixV6: (listeners) the IPv6 prefix length a source
        is counted by (64: one host's usual share).
    @ivar rekeyAfterTime: each side rotates the keys it writes with this
        often (docs/sframe.md section 7.4).
    @ivar rekeyAfterFrames: and after this many frames under one key, 1 to
        2**32 - 2; whatever it says, a key never goes past its suite's usage
        limits (section 10.5).
    """

    suites: tuple = (SEED003, AEAD_FRAMES, GCM_FRAMES)
    maxFramePayload: int = DEFAULT_MAX_PAYLOAD
    frameTimeout: float = 30.0
    handshakeTimeout: float = 10.0
    idleTimeout: float = 300.0
    keepaliveInterval: float = 60.0
    maxConnections: int = 0
    maxConnectionsPerSource: int = 64
    handshakesPerSecond: float = 20.0
    handshakeBurst: int = 20
    handshakePrefixV4: int = 32
    handshakePrefixV6: int = 64
    rekeyAfterTime: float = DEFAULT_REKEY_AFTER_TIME
    rekeyAfterFrames: int = DEFAULT_REKEY_AFTER_FRAMES

    def __post_init__(self):
        if not self.suites:
            raise ConfigurationError("sframe: at least one suite")
        if not MIN_FRAME_PAYLOAD <= self.maxFramePayload <= 2**24:
            raise ConfigurationError(
                f"sframe: maxFramePayload must be {MIN_FRAME_PAYLOAD} to 16777216 "
                "(a CONFIRM with a client proof is 96 bytes in one frame)"
            )
        if not (self.frameTimeout > 0 and self.handshakeTimeout > 0 and self.idleTimeout > 0
                and self.keepaliveInterval > 0 and self.handshakesPerSecond > 0):  # NaN too
            raise ConfigurationError("sframe: timeouts and rates must be positive")
        if not self.keepaliveInterval < self.idleTimeout:
            raise ConfigurationError("sframe: keepaliveInterval must be shorter than idleTimeout")
        if self.maxConnections < 0 or self.maxConnectionsPerSource < 1 or self.handshakeBurst < 1:
            raise ConfigurationError("sframe: maxConnections >= 0 (0: from the descriptor limit), "
                                     "maxConnectionsPerSource >= 1, handshakeBurst >= 1")
        if not (8 <= self.handshakePrefixV4 <= 32 and 16 <= self.handshakePrefixV6 <= 128):
            raise ConfigurationError("sframe: handshakePrefixV4 is 8-32 and handshakePrefixV6 16-128")
        if not (self.rekeyAfterTime > 0 and 1 <= self.rekeyAfterFrames <= 2**32 - 2):  # NaN too
            raise ConfigurationError(
                "sframe: rekeyAfterTime must be positive and rekeyAfterFrames 1 to 2**32 - 2")


def frameKeys(transcript, secret):
    """
    @return: C{(clientHalf, serverHalf)}, 80 bytes each.
    """
    prk = hmac.new(transcript, bytes(secret), hashlib.sha256).digest()
    block = HKDFExpand(algorithm=hashes.SHA256(), length=160, info=STREAM_LABEL).derive(prk)
    return block[:80], block[80:]


class Established:
    """
    The result of a completed key exchange.

    @ivar writer: this side's L{sudp.stream.frames.IStreamCipher} for sending.
    @ivar reader: the one for receiving.
    @ivar writeKeys: the L{sudp.stream.rekey.KeyChain} of the keys after
        C{writer}'s, or None (no rotation); C{readKeys}: after C{reader}'s.
    """

    def __init__(self, suite, transcript, writer, reader, confirm=b""):
        self.suite = suite
        self.transcript = transcript
        self.writer = writer
        self.reader = reader
        self.confirm = confirm
        self.peerKey = None  # a key exchange that verified the peer (gossip6) puts its key here
        self.writeKeys = self.readKeys = None


def _established(answer, isClient):
    """
    Turn a checked or built handshake answer into this side's frame ciphers:
    each side writes with its own half of the frame key block.
    """
    answer.keys.wipe()  # the stream uses its own keys from the same secret
    th = answer.keys.transcript
    clientHalf, serverHalf = frameKeys(th, answer.secret)
    mine, theirs = (clientHalf, serverHalf) if isClient else (serverHalf, clientHalf)
    suite = answer.suite
    done = Established(suite, th, suite.cipher(mine, True), suite.cipher(theirs, False))
    done.writeKeys, done.readKeys = keyChains(suite, th, answer.secret, isClient)
    return done


class KeyExchangeStep:
    """
    What one call of an L{sudp.interfaces.IStreamKeyExchange} gives back.

    @ivar toSend: bytes to write on the stream now (a handshake message).
    @ivar work: a L{sudp.work.WorkNeeded} to have done before it can go on, or None.
    @ivar established: the L{Established} keys once the exchange is done, or None.
    @ivar rest: with C{established}, the stream bytes after the last
        handshake message (the first frames).
    """

    __slots__ = ("toSend", "work", "established", "rest")

    def __init__(self, toSend=b"", work=None, established=None, rest=b""):
        self.toSend = toSend
        self.work = work
        self.established = established
        self.rest = rest

    @property
    def waiting(self):
        """
        True when there is nothing to do until more bytes arrive.
        """
        return not self.toSend and self.work is None and self.established is None

    def __repr__(self):
        return (f"<KeyExchangeStep toSend={len(self.toSend)} work={self.work!r} "
                f"established={self.established is not None} rest={len(self.rest)}>")


class Messages:
    """
    Length-prefixed handshake messages from a byte stream.
    """

    def __init__(self, limit=MAX_HANDSHAKE_MESSAGE):
        self._buffer = b""
        self.limit = limit

    def feed(self, data):
        self._buffer += data
        if len(self._buffer) < 2:
            return None
        (length,) = _LEN.unpack_from(self._buffer)
        if length > self.limit:
            raise HandshakeFailed(f"handshake message of {length} bytes is too long")
        if len(self._buffer) < 2 + length:
            return None
        message, self._buffer = self._buffer[2 : 2 + length], self._buffer[2 + length :]
        return message

    def rest(self):
        rest, self._buffer = self._buffer, b""
        return rest


def framed(packet):
    """
    @return: a handshake message with its u16 length in front.
    """
    return _LEN.pack(len(packet)) + packet


class StreamKeyExchange:
    """
    What every sframe key exchange shares: its side, and the calls it
    answers with nothing (a server's L{start}; L{workDone} where it never
    asks for work).

    @ivar isClient: which side of the stream this is.
    """

    isClient = False

    def connected(self, localAddr, peerAddr):
        """
        The stream is up (sudp/1's key exchange needs nothing from it).
        """

    def start(self, now=None):
        """
        @return: a waiting L{KeyExchangeStep}: the server speaks second.
        """
        return KeyExchangeStep()

    def workDone(self, job, now):
        """
        @raise HandshakeFailed: no work was asked for.
        """
        raise HandshakeFailed("this key exchange asked for no work")


@implementer(IStreamKeyExchange)
class ClientKeyExchange(StreamKeyExchange):
    """
    The client's side: L{start}, then L{receive} until it gives an
    L{Established} (whose C{confirm} is the CONFIRM payload to send).
    """

    isClient = True

    def __init__(self, serverKey, config, identity=None, random=os.urandom):
        self.serverKey = serverKey
        self.config = config
        self.identity = identity
        self.random = random
        self._messages = Messages()

    def start(self, now=None):
        """
        @return: a L{KeyExchangeStep} sending the length-prefixed HANDSHAKE_INIT.
        """
        self._ephemeral = Ephemeral(self.random(32))
        self._init = P.HandshakeInit(
            randomIndex(self.random), 0, bytes(16), self._ephemeral.public, [s.suiteId for s in self.config.suites]
        ).encode()
        return KeyExchangeStep(toSend=framed(self._init))

    def receive(self, data, now=None):
        """
        @return: a L{KeyExchangeStep}: waiting, then C{established} and C{rest}.
        @raise HandshakeFailed: (or a subclass) if the server's answer is bad.
        """
        message = self._messages.feed(data)
        if message is None:
            return KeyExchangeStep()
        try:
            resp = P.HandshakeResp.decode(message)
        except MalformedPacket as e:
            raise HandshakeFailed(f"bad HANDSHAKE_RESP: {e}") from None
        answer = checkAnswer(self.serverKey, self._init, resp, self._ephemeral, self.config.suites, SFRAME_LABELS)
        done = _established(answer, isClient=True)
        done.peerKey = answer.serverKey  # the pinned key that signed (one of several while a server rolls)
        if self.identity is not None:
            done.confirm = clientProof(self.identity, done.transcript, SFRAME_LABELS)
        return KeyExchangeStep(established=done, rest=self._messages.rest())


@implementer(IStreamKeyExchange)
class ServerKeyExchange(StreamKeyExchange):
    """
    The server's side: L{receive} until it gives an L{Established} with
    the bytes to write (the length-prefixed HANDSHAKE_RESP).
    """

    def __init__(self, identity, config, random=os.urandom):
        self.identity = identity
        self.config = config
        self.random = random
        self._messages = Messages()

    def receive(self, data, now=None):
        """
        @return: a L{KeyExchangeStep}: waiting, then C{established}, the
            RESP in C{toSend}, and C{rest}.
        @raise HandshakeFailed: on a malformed INIT or no common suite.
        """
        message = self._messages.feed(data)
        if message is None:
            return KeyExchangeStep()
        try:
            init = P.HandshakeInit.decode(message)
        except MalformedPacket as e:
            raise HandshakeFailed(f"bad HANDSHAKE_INIT: {e}") from None
        if init.timestamp != 0 or any(init.cookie):
            # a sudp/1 (UDP) INIT: never sign it here, so that one protocol's
            # signature cannot serve in the other
            raise HandshakeFailed("not an sframe HANDSHAKE_INIT (timestamp and cookie must be zero)")
        suite = chooseSuite(self.config.suites, init.suites)
        if suite is None:
            raise HandshakeFailed("no sframe suite in common")
        seed = self.random(32)
        answer = answerInit(self.identity, init, message, suite, randomIndex(self.random), seed, SFRAME_LABELS)
        return KeyExchangeStep(framed(answer.resp), established=_established(answer, isClient=False),
                               rest=self._messages.rest())
