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
hands out a payload only after its frame has been verified.
"""

import hashlib
import hmac
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from zope.interface import Attribute, Interface, implementer

from sudp.errors import SUDPError

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
RESERVED_CODES = range(0xFFFFFF00, 0x100000000)


class FrameError(SUDPError):
    """
    The stream broke a framing or integrity rule; the connection ends.

    @ivar reason: C{"bad-checksum"}, C{"bad-sequence"}, C{"frame-too-large"}
        or C{"bad-mac"}.
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
    frames in this direction (it does not wrap when SEQ does).
    """

    trailerSize = 16
    _nonce = struct.Struct(">4xQ").pack

    def __init__(self, key, encrypt, aead=ChaCha20Poly1305):
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


class FrameWriter:
    """
    Builds frames: splits a payload larger than C{maxPayload} into several.
    """

    def __init__(self, cipher, maxPayload=DEFAULT_MAX_PAYLOAD, firstSequence=1):
        self.cipher = cipher
        self.maxPayload = maxPayload
        self.sequence = firstSequence
        self.framesSent = 0

    def frame(self, code, payload):
        """
        @return: the wire bytes of one frame (C{payload} must fit).
        """
        seq = self.sequence
        self.sequence = nextSequence(seq)
        self.framesSent += 1
        length = len(payload)
        return self.cipher.sealFrame(HEADER.pack(length, code, seq, length ^ code ^ seq), payload)

    def frames(self, code, data):
        """
        @return: the wire bytes of C{data} as one or more frames of C{code}.
        """
        size = self.maxPayload
        if len(data) <= size:
            return self.frame(code, data)
        view = memoryview(data)  # the ciphers take views: no copy per chunk
        return b"".join(self.frame(code, view[i : i + size]) for i in range(0, len(data), size))


class FrameReader:
    """
    Takes stream bytes in any pieces and returns verified frames.

    @ivar midFrame: True while a frame has started but not completed.
    """

    def __init__(self, cipher, maxPayload=DEFAULT_MAX_PAYLOAD, firstSequence=1):
        self.cipher = cipher
        self.maxPayload = maxPayload
        self.expected = firstSequence
        self._buffer = b""  # bytes of a frame not yet complete
        self._header = None  # (plaintext header, length, code) once the header is in
        self.failed = None

    @property
    def midFrame(self):
        return self._header is not None or len(self._buffer) > 0

    def feed(self, data):
        """
        @return: C{(frames, error)}: the frames verified from what has arrived,
            as C{(code, payload)} in order, and None or the L{FrameError} that
            ends the stream (after those frames). After an error, everything
            is refused.
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
                    self._header = (header, length, code)
                header, length, code = self._header
                need = length + trailer
                if end - pos < need:
                    break
                payload = cipher.openBody(header, view[pos : pos + need])
                pos += need
                self._header = None
                self.expected = nextSequence(self.expected)
                frames.append((code, payload))
        except FrameError as e:
            self.failed = e
            self._buffer = b""
            self._header = None
            return frames, e
        self._buffer = bytes(view[pos:]) if pos < end else b""
        return frames, None
