"""
The zope.interface contracts of sudp.
"""

from zope.interface import Attribute, Interface


class ICipherSuite(Interface):
    """
    An AEAD cipher suite, the only code in sudp that touches keys and nonces.

    An implementer guarantees:
      - C{keySize} bytes of key; C{newCipher(key)} returns an L{IPacketCipher}
        that keeps the keyed AEAD object for the life of the key;
      - the nonce of a packet is built from its 64-bit sequence number (and
        possibly the rest of its header, which contains it), so distinct
        sequence numbers give distinct nonces; the session never reuses a
        sequence number under a key;
      - C{tagSize} bytes of overhead per packet;
      - C{open()} fails closed: on any authentication failure it raises
        L{sudp.errors.MalformedPacket} with reason C{"bad-tag"} and returns no
        plaintext;
      - usage limits, per RFC 9001 section 6.6: at most C{confidentialityLimit}
        packets are sealed and at most C{integrityLimit} failed opens are
        tolerated under one key, after which the session rekeys or closes.
    """

    name = Attribute("The registered name, e.g. C{'chacha20-poly1305'}.")
    suiteId = Attribute(
        "The one-byte wire identifier: 1-127 for suites shipped with sudp, "
        "128-255 for third-party suites."
    )
    keySize = Attribute("Key length in bytes.")
    nonceSize = Attribute("Nonce length in bytes of the underlying AEAD.")
    tagSize = Attribute("Bytes added to each sealed packet.")
    confidentialityLimit = Attribute("Packets that may be sealed under one key.")
    integrityLimit = Attribute("Failed opens tolerated under one key.")

    def packetNonce(sequence, header):
        """
        @return: the C{nonceSize}-byte nonce of the packet with this sequence
            number and 13-byte header; distinct for distinct sequence numbers.
        """

    def newAEAD(key):
        """
        @return: an L{IAEAD}: the raw primitive with explicit nonces, as
            published test vectors use it.
        """

    def newCipher(key):
        """
        @param key: C{keySize} bytes from the key schedule.
        @return: an L{IPacketCipher} bound to C{key}: C{newAEAD(key)} with
            C{packetNonce}, possibly specialised for speed.
        """


class IAEAD(Interface):
    """
    An AEAD primitive under one key, with explicit nonces.
    """

    def encrypt(nonce, plaintext, aad):
        """
        @return: the sealed bytes (ciphertext and tag, in the primitive's
            published layout).
        """

    def decrypt(nonce, ciphertext, aad):
        """
        @return: the plaintext.
        @raise sudp.errors.MalformedPacket: (reason C{"bad-tag"}) if it does
            not authenticate.
        """


class IPacketCipher(Interface):
    """
    One direction's AEAD under one key.
    """

    def seal(sequence, header, plaintext):
        """
        @param sequence: the packet's 64-bit sequence number (the nonce).
        @param header: bytes authenticated but not encrypted.
        @return: ciphertext followed by the tag.
        """

    def open(sequence, header, ciphertext):
        """
        @return: the plaintext.
        @raise sudp.errors.MalformedPacket: (reason C{"bad-tag"}) if the packet
            does not authenticate.
        """


class ISUDPTransport(Interface):
    """
    What a sudp session transport offers beyond C{twisted.internet.interfaces.ITransport}.
    """

    maxMessageSize = Attribute(
        "The largest message C{write()} accepts, in bytes; a larger one raises "
        "L{sudp.errors.MessageTooLarge}."
    )
    peerPublicKey = Attribute(
        "The peer's verified L{sudp.keys.PublicKey}: the server's key on a "
        "client; on a server, the client's key if it authenticated, else None."
    )
    suite = Attribute("The name of the negotiated cipher suite.")

    def writeMessages(messages):
        """
        Send each message as one datagram, as a burst (UDP GSO where the
        kernel allows).
        """


class IStreamSuite(Interface):
    """
    An sframe stream suite: how each direction's frames are protected.

    An implementer guarantees: a unique C{name}, a C{suiteId} (1-127 are
    sudp's, 128-255 are for third parties), and C{cipher()} returning a fresh,
    stateful L{sudp.stream.frames.IStreamCipher} per direction whose
    C{openBody} fails closed with C{FrameError("bad-mac")}. Register one
    with C{sudp.stream.handshake.registerStreamSuite}, or ship it as a
    Twisted plugin providing this interface.
    """

    name = Attribute("The registered name, e.g. C{'aes-256-ctr-sha256'}.")
    suiteId = Attribute("The one-byte wire identifier (1-255).")
    keySize = Attribute("32: the handshake's epoch key size (the frame keys come from their own block).")

    def cipher(half, encrypt):
        """
        @param half: this direction's 80 bytes of the frame key block: key (32),
            IV (16), MAC key (32); use what the construction needs.
        @param encrypt: True for the sending side.
        @return: an L{sudp.stream.frames.IStreamCipher}.
        """
