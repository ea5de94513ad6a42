# -*- test-case-name: sudp_test.stream.test_frames -*-
"""
sframe frames (the peer-to-peer spec's), sans-IO.

A frame is a 16-byte header, the payload, and a trailer::

  LENGTH u32 | CODE u32 | SEQ u32 | CHECKSUM u32 (= LENGTH ^ CODE ^ SEQ)
  payload (LENGTH bytes)
  trailer: 8-byte MAC (aes-256-ctr-sha256 suite) or 16-byte AEAD tag

all integers big-endian. Sequence numbers start at 1 and wrap from
2**32 - 1 back to 1 (0 is never used). L{FrameWriter} and L{FrameReader} hold
the framing rules (header, checksum, sequence, limits, splitting, partial
input); a L{IStreamCipher} holds the cryptography. The reader checks each
header as soon as its 16 bytes are in, before the payload arrives, and
hands out a payload only after its frame has been verified. Keys rotate in
band (docs/sframe.md section 7.4, L{sudp.stream.rekey}): the writer sends a
REKEY frame last under its old keys; the reader follows it, never returns it.
"""

import hashlib
import hmac
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from zope.interface import Attribute, Interface, implementer

from sudp.errors import SUDPError
from sudp.stream.rekey import CHACHA20_LIMITS, CTR_LIMITS, EPOCH, GCM_LIMITS

HEADER = struct.Struct(">IIII")
HEADER_SIZE = 16
MAX_SEQUENCE = 0xFFFFFFFF
DEFAULT_MAX_PAYLOAD = 65536  # per-frame costs dominate below this (benchmarks/bench_stream.py)

CODE_DATA = 0
# codes sframe keeps for itself; applications may use any other
CODE_CONFIRM = 0xFFFFFF00
CODE_ACCEPT = 0xFFFFFF01
CODE_CLOSE = 0xFFFFFF02
CODE_KEEPALIVE = 0xFFFFFF03  # empty; sent when quiet, ignored on receipt
CODE_REKEY = 0xFFFFFF04  # u64 epoch: the last frame under the old keys
RESERVED_CODES = range(0xFFFFFF00, 0x100000000)


class FrameError(SUDPError):
    """
    The stream broke a framing or integrity rule; the connection ends.

    @ivar reason: C{"bad-checksum"}, C{"bad-sequence"}, C{"frame-too-large"},
        C{"bad-mac"}, C{"bad-rekey"} or C{"key-exhausted"} (docs/sframe.md 7.4).
    """

    def __init__(self, reason, detail=""):
        self.reason = reason
        self.detail = detail
        SUDPError.__init__(self, f"{reason}: {detail}" if detail else reason)


def nextSequence(seq):
    """
    @return: the sequence number after C{seq}: 1, 2, ... 2**32-1, 1, ...
    """
    return 1 if seq >= MAX_SEQUENCE else seq + 1


class IStreamCipher(Interface):
    """
    One direction of a stream suite: turns plaintext frames into wire bytes
    and back. Stateful: frames go through it in order.
    """

    trailerSize = Attribute("Bytes after the payload on the wire (MAC or tag).")
    limits = Attribute("The L{sudp.stream.rekey.UsageLimits} of one key.")

    def sealFrame(header, payload):
        """
        @return: the frame's wire bytes.
        """

    def openHeader(wire):
        """
        @param wire: the frame's first 16 bytes as received.
        @return: the 16 plaintext header bytes (not yet authenticated).
        """

    def openBody(header, wire):
        """
        @param wire: the payload and trailer as received.
        @return: the verified payload.
        @raise FrameError: (C{"bad-mac"}) if the frame does not verify.
        """


@implementer(IStreamCipher)
class CTRChainCipher:
    """
    The peer-to-peer spec: AES-256-CTR over header, payload and MAC as one continuous
    keystream per direction; MAC = first 8 bytes of SHA-256 over header and
    payload, the hash state carried from frame to frame. Our one change
    (docs/sframe.md 10.1): the chain starts from a secret MAC key from the handshake,
    so nobody without the key can compute a MAC.
    """

    trailerSize = 8
    limits = CTR_LIMITS

    def __init__(self, key, iv, macKey, encrypt):
        cipher = Cipher(algorithms.AES(bytes(key)), modes.CTR(bytes(iv)))
        self._ctr = (cipher.encryptor() if encrypt else cipher.decryptor()).update
        self._chain = hashlib.sha256(bytes(macKey))

    def _mac(self, header, payload):
        self._chain.update(header)
        self._chain.update(payload)
        return self._chain.copy().digest()[:8]

    def sealFrame(self, header, payload):
        return self._ctr(header + payload + self._mac(header, payload))

    def openHeader(self, wire):
        return self._ctr(wire)

    def openBody(self, header, wire):
        plain = self._ctr(wire)
        payload, mac = plain[:-8], plain[-8:]
        if not hmac.compare_digest(self._mac(header, payload), mac):
            raise FrameError("bad-mac", "frame MAC does not verify")
        return payload


@implementer(IStreamCipher)
class AEADFrameCipher:
    """
    The alternative suites: an AEAD per frame (ChaCha20-Poly1305 or
    AES-256-GCM). The header travels in the clear as associated data; the
    payload is sealed with a 16-byte tag; the nonce is a 64-bit count of
    frames under this key (it does not wrap when SEQ does).
    """

    trailerSize = 16
    _nonce = struct.Struct(">4xQ").pack

    def __init__(self, key, encrypt, aead=ChaCha20Poly1305, limits=None):
        """
        @param limits: the L{sudp.stream.rekey.UsageLimits} of one key; by
            default those of C{aead} (ChaCha20-Poly1305 or AES-GCM).
        """
        self.limits = limits or {ChaCha20Poly1305: CHACHA20_LIMITS, AESGCM: GCM_LIMITS}[aead]
        aead = aead(bytes(key))
        self._op = aead.encrypt if encrypt else aead.decrypt
        self._count = 0

    def sealFrame(self, header, payload):
        nonce = self._nonce(self._count)
        self._count += 1
        return header + self._op(nonce, payload, header)

    def openHeader(self, wire):
        return bytes(wire)

    def openBody(self, header, wire):
        nonce = self._nonce(self._count)
        self._count += 1
        try:
            return self._op(nonce, wire, header)
        except InvalidTag:
            raise FrameError("bad-mac", "frame tag does not verify") from None


_UNLIMITED = 2**256  # a budget no connection uses up


class FrameWriter:
    """
    Builds frames: splits a payload larger than C{maxPayload} into several,
    and rotates keys (docs/sframe.md section 7.4).

    @ivar epoch: the epoch of the keys in use (0: those of the key exchange).
    @ivar rekeyAt: when the next rotation by time is due (in the units of
        C{now}), or None: then call L{rekey}. A rotation by count does not
        move it, so no key is older than C{rekeyAfterTime}.
    @ivar failed: None, or the L{FrameError} after which every call raises.
    """

    def __init__(self, cipher, maxPayload=DEFAULT_MAX_PAYLOAD, firstSequence=1, keys=None,
                 rekeyAfterFrames=None, rekeyAfterTime=None, now=None):
        """
        @param cipher: the L{IStreamCipher} of the first keys.
        @param keys: the L{sudp.stream.rekey.KeyChain} of the keys after
            them, or None: then the writer never rotates, and refuses the
            frame that would take C{cipher} past its usage limits.
        @param rekeyAfterFrames: rotate after this many frames under one
            key (the REKEY not counted); None: only at the suite's limits.
        @param rekeyAfterTime: rotate this long after C{now}, and after each
            L{rekey} (see L{rekeyAt}); None: never by time.
        @param now: the current time, for C{rekeyAfterTime}.
        """
        self.maxPayload = maxPayload
        self.sequence = firstSequence
        self.framesSent = 0
        self.epoch = 0
        self.failed = None
        self._keys = keys
        self._soft = rekeyAfterFrames if keys is not None else None
        self._interval = rekeyAfterTime if keys is not None else None
        self.rekeyAt = None if self._interval is None or now is None else now + self._interval
        self._use(cipher)

    def _use(self, cipher):
        """Seal the next frames with C{cipher}, keeping room for its last, the REKEY."""
        self.cipher = cipher
        limits = cipher.limits
        self._overhead = limits.overhead
        self._framesLeft = limits.frames - 1
        blocks = limits.blocks
        self._keyBlocks = _UNLIMITED if blocks is None else blocks - limits.cost(EPOCH.size)
        self._blocksLeft = self._keyBlocks
        self._softLeft = _UNLIMITED if self._soft is None else self._soft

    def frame(self, code, payload):
        """
        @return: the wire bytes of one frame (C{payload} must fit), after a
            REKEY frame if the keys rotate first.
        @raise FrameError: C{key-exhausted} if the keys would go past their
            limits and cannot rotate.
        """
        if self.failed is not None:
            raise FrameError(self.failed.reason, self.failed.detail)
        length = len(payload)
        cost = ((length + self._overhead + 15) >> 4) + 1
        rotated = b""
        if self._framesLeft < 1 or self._blocksLeft < cost or self._softLeft < 1:
            if cost > self._keyBlocks:
                self._exhausted(f"a {length}-byte frame is more than one key may protect")
            rotated = self._rotate()
        self._framesLeft -= 1
        self._blocksLeft -= cost
        self._softLeft -= 1
        wire = self._seal(code, payload, length)
        return rotated + wire if rotated else wire

    def _seal(self, code, payload, length):
        seq = self.sequence
        self.sequence = nextSequence(seq)
        self.framesSent += 1
        return self.cipher.sealFrame(HEADER.pack(length, code, seq, length ^ code ^ seq), payload)

    def frames(self, code, data):
        """
        @return: the wire bytes of C{data} as one or more frames of C{code}
            (with REKEY frames where the keys rotate).
        """
        size = self.maxPayload
        if len(data) <= size:
            return self.frame(code, data)
        view = memoryview(data)  # the ciphers take views: no copy per chunk
        return b"".join(self.frame(code, view[i : i + size]) for i in range(0, len(data), size))

    def rekey(self, now):
        """
        Rotate now (by time: once C{now} reaches L{rekeyAt}; never first).

        @return: the REKEY frame's wire bytes.
        @raise FrameError: C{key-exhausted} if there is no key chain.
        """
        if self.failed is not None:
            raise FrameError(self.failed.reason, self.failed.detail)
        if self._keys is None:
            raise FrameError("key-exhausted", "no key chain: these keys cannot rotate")
        wire = self._rotate()
        if self._interval is not None:
            self.rekeyAt = now + self._interval
        return wire

    def _rotate(self):
        """
        @return: the REKEY frame, under the keys in use; then switch to the next.
        """
        if self._keys is None:
            self._exhausted("the keys are at their usage limits and there is no key chain")
        wire = self._seal(CODE_REKEY, EPOCH.pack(self._keys.epoch + 1), EPOCH.size)
        self._use(self._keys.next())
        self.epoch = self._keys.epoch
        return wire

    def _exhausted(self, detail):
        self.failed = FrameError("key-exhausted", detail)
        raise FrameError("key-exhausted", detail)


class FrameReader:
    """
    Takes stream bytes in any pieces and returns verified frames; follows
    the writer's REKEY frames itself.

    @ivar midFrame: True while a frame has started but not completed.
    @ivar epoch: the epoch of the keys in use (0: those of the key exchange).
    """

    def __init__(self, cipher, maxPayload=DEFAULT_MAX_PAYLOAD, firstSequence=1, keys=None):
        """
        @param cipher: the L{IStreamCipher} of the first keys.
        @param keys: the L{sudp.stream.rekey.KeyChain} of the keys after
            them, or None: a REKEY frame then ends the stream (C{bad-rekey}).
        """
        self.maxPayload = maxPayload
        self.expected = firstSequence
        self.epoch = 0
        self._keys = keys
        self._started = False  # a frame has been read: a REKEY may come
        self._buffer = b""  # bytes of a frame not yet complete
        self._header = None  # (plaintext header, length, code) once the header is in
        self.failed = None
        self._use(cipher)

    def _use(self, cipher):
        """Read the next frames with C{cipher}, within its limits."""
        self.cipher = cipher
        limits = cipher.limits
        self._overhead = limits.overhead
        self._framesLeft = limits.frames
        self._blocksLeft = _UNLIMITED if limits.blocks is None else limits.blocks

    @property
    def midFrame(self):
        return self._header is not None or len(self._buffer) > 0

    def feed(self, data):
        """
        @return: C{(frames, error)}: the frames verified from what has arrived,
            as C{(code, payload)} in order (REKEY frames are followed, not
            returned), and None or the L{FrameError} that ends the stream
            (after those frames). After an error, everything is refused.
        """
        if self.failed is not None:
            return [], self.failed
        # parse by offset over one view; only a partial frame left at the
        # end is copied (reads usually hold several whole frames)
        buf = self._buffer + data if self._buffer else data
        view = memoryview(buf)
        pos, end = 0, len(buf)
        frames = []
        cipher = self.cipher
        trailer = cipher.trailerSize
        try:
            while True:
                if self._header is None:
                    if end - pos < HEADER_SIZE:
                        break
                    header = cipher.openHeader(view[pos : pos + HEADER_SIZE])
                    pos += HEADER_SIZE
                    length, code, seq, checksum = HEADER.unpack(header)
                    if checksum != length ^ code ^ seq:
                        raise FrameError("bad-checksum", "header checksum does not match")
                    if seq != self.expected:
                        raise FrameError("bad-sequence", f"frame {seq}, expected {self.expected}")
                    if length > self.maxPayload:
                        raise FrameError("frame-too-large", f"{length} bytes, limit {self.maxPayload}")
                    cost = ((length + self._overhead + 15) >> 4) + 1
                    if self._framesLeft < 1 or self._blocksLeft < cost:
                        raise FrameError("key-exhausted", "the peer's keys went past their limits")
                    self._framesLeft -= 1
                    self._blocksLeft -= cost
                    self._header = (header, length, code)
                header, length, code = self._header
                need = length + trailer
                if end - pos < need:
                    break
                payload = cipher.openBody(header, view[pos : pos + need])
                pos += need
                self._header = None
                self.expected = nextSequence(self.expected)
                if code == CODE_REKEY:
                    self._follow(payload)
                    cipher = self.cipher
                    trailer = cipher.trailerSize
                else:
                    frames.append((code, payload))
                self._started = True
        except FrameError as e:
            self.failed = e
            self._buffer = b""
            self._header = None
            return frames, e
        self._buffer = bytes(view[pos:]) if pos < end else b""
        return frames, None

    def _follow(self, payload):
        """A verified REKEY frame: switch to the next epoch's keys."""
        if not self._started:
            raise FrameError("bad-rekey", "a REKEY frame cannot be a direction's first")
        if self._keys is None:
            raise FrameError("bad-rekey", "a REKEY frame, and no keys to rotate to")
        if payload != EPOCH.pack(self._keys.epoch + 1):
            raise FrameError("bad-rekey", f"a REKEY frame not for epoch {self._keys.epoch + 1}")
        self._use(self._keys.next())
        self.epoch = self._keys.epoch
