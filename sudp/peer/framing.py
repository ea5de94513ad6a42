# -*- test-case-name: sudp_test.peer.test_framing -*-
"""
The peer message inside a sudp/1 DATA packet (docs/peers.md, "Wire")::

  u8 version (1) | u8 flags | body
  flags: bit 0 the body is zstd-compressed; bit 1 the message is padded:
         then body = u16 length | payload | zero bytes to the padded size

Compression (the C{zstandard} package) is used per message, and only
when it makes the message smaller. Padding makes every datagram of a node
the same size (traffic analysis). And the MTU: every layer's overhead is
accounted for, so that a message that cannot fit in one datagram is a
clear L{MessageTooLarge} before anything is sent.
"""

import struct

from sudp.errors import ConfigurationError, MalformedPacket, MessageTooLarge
from sudp.udp.packets import DATA_HEADER_SIZE

PEER_VERSION = 1
COMPRESSED = 0x01
PADDED = 0x02
KNOWN_FLAGS = COMPRESSED | PADDED
HEADER_SIZE = 2
LENGTH_SIZE = 2
TAG_SIZE = 16  # every sudp/1 suite
IP_UDP = {4: 20 + 8, 6: 40 + 8}
_U16 = struct.Struct(">H")


class UnknownVersion(MalformedPacket):
    """
    A peer's message carries a peer-protocol version this node does not speak.
    """

    def __init__(self, version):
        MalformedPacket.__init__(self, "unknown-version", f"peer protocol version {version}, this node speaks "
                                                          f"{PEER_VERSION}")
        self.version = version


def overhead(family=4, padded=False):
    """
    @return: bytes every layer adds to a message: IP and UDP headers,
        sudp/1's header and tag, the peer header (and length, if padded).
    """
    return IP_UDP[family] + DATA_HEADER_SIZE + TAG_SIZE + HEADER_SIZE + (LENGTH_SIZE if padded else 0)


class Framing:
    """
    Encodes and decodes one node's peer messages.

    @ivar maxMessage: the largest message that fits, after compression (a
        message that compresses well may be longer).
    @ivar maxDecompressed: the largest message a compressed one may expand to.
    @ivar padTo: the peer-message size every padded message is brought to.
    """

    def __init__(self, mtu, family=4, compress=False, pad=False, compressionLevel=3, maxDecompressed=65536):
        self.mtu = mtu
        self.pad = pad
        self.maxMessage = mtu - overhead(family, pad)
        if self.maxMessage < 1:
            raise ValueError(f"an MTU of {mtu} leaves no room for a message")
        self.padTo = self.maxMessage + HEADER_SIZE + LENGTH_SIZE
        self.datagramSize = mtu - IP_UDP[family]
        self._compressor = self._decompressor = None
        if compress:
            zstandard = _zstandard()
            if zstandard is None:
                raise ConfigurationError("compress=True needs txsudp's peer extra (zstandard): "
                                         "pip install 'txsudp[peer]'")
            self._compressor = zstandard.ZstdCompressor(level=compressionLevel)
            self._decompressor = zstandard.ZstdDecompressor()
        self.compressionLevel = compressionLevel
        self.maxDecompressed = maxDecompressed

    def encode(self, message):
        """
        @return: the DATA plaintext carrying C{message}.
        @raise MessageTooLarge: if it cannot fit one datagram.
        """
        flags, body = 0, bytes(message)
        if len(body) > self.maxDecompressed:  # no receiver would expand it
            raise MessageTooLarge(len(body), self.maxDecompressed)
        if self._compressor is not None and body:
            packed = self._compressor.compress(body)
            if len(packed) < len(body):
                flags, body = COMPRESSED, packed
        if len(body) > self.maxMessage:
            raise MessageTooLarge(len(body), self.maxMessage)
        if self.pad:
            body = _U16.pack(len(body)) + body
            body += bytes(self.padTo - HEADER_SIZE - len(body))
            flags |= PADDED
        return bytes([PEER_VERSION, flags]) + body

    def decode(self, plaintext):
        """
        @return: the message.
        @raise UnknownVersion: for another peer-protocol version.
        @raise MalformedPacket: for anything else that does not decode.
        """
        if len(plaintext) < HEADER_SIZE:
            raise MalformedPacket("truncated", "a peer message has a 2-byte header")
        version, flags = plaintext[0], plaintext[1]
        if version != PEER_VERSION:
            raise UnknownVersion(version)
        if flags & ~KNOWN_FLAGS:
            raise MalformedPacket("bad-flags", f"unknown peer message flags 0x{flags:02x}")
        body = plaintext[HEADER_SIZE:]
        if flags & PADDED:
            if len(body) < LENGTH_SIZE:
                raise MalformedPacket("truncated", "a padded peer message has a length")
            (size,) = _U16.unpack_from(body)
            if size > len(body) - LENGTH_SIZE:
                raise MalformedPacket("truncated", "the padded length runs past the message")
            body = body[LENGTH_SIZE : LENGTH_SIZE + size]
        if flags & COMPRESSED:
            zstandard = _zstandard()
            if zstandard is None:
                raise MalformedPacket("compression-unsupported",
                                      "a compressed message, and zstandard is not installed (txsudp[peer])")
            if self._decompressor is None:
                self._decompressor = zstandard.ZstdDecompressor()

            try:
                size = zstandard.frame_content_size(body)
                if size < 0 or size > self.maxDecompressed:  # unknown, or a bomb
                    raise MalformedPacket("bad-compression", f"a compressed message of {size} bytes")
                return self._decompressor.decompress(body, max_output_size=self.maxDecompressed)
            except zstandard.ZstdError as e:
                raise MalformedPacket("bad-compression", str(e)) from None
        return body


def _zstandard():
    """
    @return: the C{zstandard} module, or None if it is not installed.
    """
    try:
        import zstandard
    except ImportError:
        return None
    return zstandard
