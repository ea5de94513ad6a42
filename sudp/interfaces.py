# -*- test-case-name: sudp_test.stream.test_connection, sudp_test.test_handshakes, sudp_test.test_suites -*-
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


class IHandshake(Interface):
    """
    A handshake plug-in (sudp/1's, gossip6's...): one object per endpoint,
    holding what the handshake trusts (pinned or trusted keys, options),
    that gives each transport engine its half. The transports call only
    this contract and the halves' (L{IDatagramServerHandshake},
    L{IDatagramClientHandshake}, C{IStreamKeyExchange}); they know no
    handshake by name. docs/architecture.md, "Handshakes as plug-ins",
    says how to add one.
    """

    name = Attribute("The handshake's name in endpoint strings, e.g. C{'sudp/1'}, C{'gossip6'}.")

    def loadIdentity(path, create=False):
        """
        @return: the identity (private key) this handshake signs with, from
            the key file C{path}; with C{create}, made there first if missing.
        @raise sudp.errors.KeyFileError: if it cannot be loaded (saying how
            to make one).
        """

    def datagramServer(identity):
        """
        @param identity: the server's identity (its engine's: it signs the
            handshake and the rekeys).
        @return: a fresh L{IDatagramServerHandshake} for one
            C{sudp.udp.server.ServerEngine}.
        """

    def datagramClient(identity):
        """
        @param identity: the client's identity, or None if the handshake
            allows an anonymous client.
        @return: a fresh L{IDatagramClientHandshake} for one
            C{sudp.udp.client.ClientEngine}.
        """

    def streamKeyExchange(isClient, identity, streamConfig, random=None):
        """
        @param random: C{n -> n random bytes}; None: C{os.urandom}.
        @return: a fresh C{IStreamKeyExchange} for one sframe connection.
        """


class IDatagramServerHandshake(Interface):
    """
    The server half of a handshake, as C{sudp.udp.server.ServerEngine} uses
    it. The engine answers HELLO with a cookie and admits an INIT (the
    cookie, a replay or retransmission, the rate per source, the pending
    slots) before the half sees it; the half answers through the engine's
    calls: C{openPending} (keys exist, RESP sent), C{awaitWork} (an answer
    that needs off-thread work, L{sudp.work}), C{refuse}, C{queueDatagram},
    C{newIndex}, and its C{identity}, C{config}, C{random}, C{drops} and
    C{counters}.
    """

    initType = Attribute("The type byte of the INIT packet this handshake answers.")
    signatureSize = Attribute("The longest signature the server's rekeys carry (REKEY_RESPONSE), in bytes.")

    def decodeInit(data):
        """
        @return: the INIT, with C{senderIndex}, C{timestamp}, C{cookie} and
            C{ephemeral} (the client's ephemeral public key).
        @raise sudp.errors.MalformedPacket: if it does not decode.
        """

    def answer(engine, init, initBytes, addr, now):
        """
        Answer an admitted INIT (or refuse it, counted).
        """

    def workDone(engine, pending, now):
        """
        The work asked for with C{engine.awaitWork} is done: answer now.

        @param pending: the C{sudp.udp.pending.AwaitingWork}; its C{job}
            and C{context}.
        """

    def workFailed(engine, pending, now):
        """
        The work asked for could not be done (count it).
        """

    def bound(address):
        """
        The server's socket is bound to C{address}, C{(host, port)}.
        """


class IDatagramClientHandshake(Interface):
    """
    The client half of a handshake, as C{sudp.udp.client.ClientEngine} uses
    it: the engine sends HELLO, waits for the cookie, sends the half's INIT
    and retransmits it, then gives the half the answer; the session and
    CONFIRM are the engine's.
    """

    respType = Attribute("The type byte of the answer to this handshake's INIT.")
    signatureSize = Attribute("The longest signature the server's rekeys carry (REKEY_RESPONSE), in bytes.")
    pinned = Attribute("The server keys announced next keys are checked against (may be empty).")

    def start(engine, now):
        """
        @return: an C{sudp.work.IWork} to run off the reactor thread before
            the HELLO (the engine reports it and waits), or None.
        """

    def workFailed(job):
        """
        The work L{start} asked for could not be done.

        @return: the C{sudp.errors.HandshakeFailed} the handshake fails with.
        """

    def makeInit(engine, timestamp, cookie):
        """
        @return: C{(this side's session index, the INIT packet)} carrying
            the server's cookie.
        """

    def decodeResp(data):
        """
        @return: the answer, with C{receiverIndex} and C{senderIndex}.
        @raise sudp.errors.MalformedPacket: if it does not decode.
        """

    def checkResp(engine, resp, respBytes, initBytes, now):
        """
        Check the server's answer to C{initBytes}.

        @return: a C{sudp.udp.sudp1.Opening}: suite, server index, keys, the
            server's verified key, the records to send before CONFIRM.
        @raise sudp.errors.HandshakeFailed: if it does not check out.
        """

    def checkRefusal(refused, initBytes, offered):
        """
        @param refused: a decoded C{HANDSHAKE_REFUSED} for our INIT.
        @return: C{(error, None)} if the server signed it (the engine fails
            with C{error}), or C{(None, drop reason)}.
        """

    def bound(address):
        """
        The client's socket is bound to C{address}, C{(host, port)}.
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


class IStreamKeyExchange(Interface):
    """
    One stream connection's key exchange (sudp/1's, gossip6's, ...), sans-IO:
    what L{sudp.stream.connection.StreamConnection} runs before its frames.

    Every call returns a L{sudp.stream.handshake.KeyExchangeStep}: the bytes
    to write (C{toSend}), work to have done off the reactor thread
    (C{work}, a L{sudp.work.WorkNeeded}), the keys once established
    (C{established}, a L{sudp.stream.handshake.Established}) and the stream
    bytes that came after the last handshake message (C{rest}). A step
    with none of them means: waiting for more bytes.
    """

    def connected(localAddr, peerAddr):
        """
        The stream is up between these addresses, each a C{(host, port)}
        tuple or None (not an IP stream). A key exchange that binds its
        messages to the addresses keeps them.

        @raise sudp.errors.HandshakeFailed: if it cannot run on this stream.
        """

    def start(now):
        """
        Begin (a client sends its first message; a server waits).

        @return: a L{sudp.stream.handshake.KeyExchangeStep}.
        """

    def receive(data, now):
        """
        Take stream bytes, in any pieces.

        @return: a L{sudp.stream.handshake.KeyExchangeStep}.
        @raise sudp.errors.HandshakeFailed: (or a subclass) on a bad message.
        """

    def workDone(job, now):
        """
        The work of a step's C{work} was done (C{job.run()} returned).

        @return: a L{sudp.stream.handshake.KeyExchangeStep}.
        """
