# -*- test-case-name: sudp_test.vpn041.test_dataplane -*-
"""
The vpn041 UDP data plane (docs/vpn041.md, "Data plane"), sans-IO. ::

  datagram = sessionId (1) | nonce (16, a random GUID per packet) | payload

  okm    = HKDF-SHA-256(IKM = sessionKey, salt = nonce, info = LABEL, L = 48)
  key    = okm[0:32]   (AES-256)     iv = okm[32:48]
  LABEL  = "vpn041 packet client-to-gateway" or "vpn041 packet gateway-to-client"

The label names the packet's direction (a departure from the spec, which
derives from (session key, nonce) alone: docs/vpn041.md): both sides derive
the same key and IV for a given packet, but a datagram never opens in the
other direction, so one sent back towards its sender is refused.

With C{useEncryption}, the payload is AES-256-CBC with PKCS#7 padding
under (key, iv): the spec's "AES" with a decryption that can fail, and
what .NET's AES (the spec's existing tryEncryptAesKey) does by default.
Every packet has its own key and IV, never reused. Without it the
payload is the plaintext. The authenticated variant (an option, not the
spec's) appends a 16-byte AES-256-GCM tag over header and payload,
under the same derived key, with iv[:12] as the GCM nonce.
"""

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sudp.errors import MalformedPacket, SUDPError

HEADER_SIZE = 17
NONCE_SIZE = 16
KEY_SIZE = 32
TAG_SIZE = 16
BLOCK = 16
CLIENT = "client"
GATEWAY = "gateway"
# the per-packet derivation's label, by the direction the packet travels
PACKET_LABELS = {CLIENT: b"vpn041 packet client-to-gateway", GATEWAY: b"vpn041 packet gateway-to-client"}
PEER = {CLIENT: GATEWAY, GATEWAY: CLIENT}
ETHERNET_MTU = 1500
IP_UDP_HEADERS = {4: 20 + 8, 6: 40 + 8}


class DecryptFailure(SUDPError):
    """
    A data-plane payload that does not decrypt (bad length or padding), or,
    in the authenticated variant, whose tag does not verify.
    """


def packetKey(sessionKey, nonce, sender):
    """
    @param sender: who sent the packet, L{CLIENT} or L{GATEWAY}: the
        derivation's label names the direction.
    @return: C{(key, iv)}: the AES-256 key and the 16-byte IV of the packet
        with this nonce, by HKDF-SHA-256 (HMAC) from the session key.
    """
    okm = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE + BLOCK, salt=bytes(nonce), info=PACKET_LABELS[sender]
               ).derive(bytes(sessionKey))
    return okm[:KEY_SIZE], okm[KEY_SIZE:]


def overhead(useEncryption, authenticated, payloadSize):
    """
    @return: the bytes a datagram adds to a payload of C{payloadSize}.
    """
    extra = HEADER_SIZE + (TAG_SIZE if authenticated else 0)
    if useEncryption and not authenticated:
        extra += BLOCK - payloadSize % BLOCK  # PKCS#7 always adds 1-16 bytes
    return extra


def maxPayload(useEncryption, authenticated, family=4, mtu=ETHERNET_MTU):
    """
    @return: the largest payload whose datagram fits an IP packet of C{mtu}
        bytes (IPv4 or IPv6, no options).
    """
    room = mtu - IP_UDP_HEADERS[family] - HEADER_SIZE
    if authenticated:
        return room - TAG_SIZE
    if useEncryption:
        return room // BLOCK * BLOCK - 1  # the padding is at least one byte
    return room


def parseHeader(datagram):
    """
    @return: C{(sessionId, nonce, body)}.
    @raise MalformedPacket: if the datagram is shorter than the header.
    """
    if len(datagram) < HEADER_SIZE:
        raise MalformedPacket("truncated", f"a vpn041 datagram has a {HEADER_SIZE}-byte header")
    return datagram[0], bytes(datagram[1:HEADER_SIZE]), bytes(datagram[HEADER_SIZE:])


class PacketCodec:
    """
    Seals and opens one session's datagrams, on one side: it seals what
    C{role} sends and opens what its peer sends.

    @ivar maxPayload: the largest payload L{seal} takes.
    @ivar role: L{CLIENT} or L{GATEWAY}.
    """

    def __init__(self, sessionId, sessionKey, useEncryption, authenticated=False, family=4, random=os.urandom,
                 role=CLIENT):
        if role not in PEER:
            raise ValueError(f"a vpn041 codec's role is {CLIENT!r} or {GATEWAY!r}, not {role!r}")
        if not 1 <= sessionId <= 255:
            raise ValueError("a vpn041 session id is 1 to 255 (0 is the server's)")
        if len(sessionKey) != KEY_SIZE:
            raise ValueError("a vpn041 session key is 32 bytes")
        self.sessionId = sessionId
        self._key = bytes(sessionKey)
        self.useEncryption = useEncryption
        self.authenticated = authenticated
        self.random = random
        self.role = role
        self.maxPayload = maxPayload(useEncryption, authenticated, family)

    def seal(self, payload, nonce=None):
        """
        @return: the datagram carrying C{payload}, with a fresh random nonce
            unless C{nonce} is given (test vectors).
        @raise ValueError: if C{payload} is over L{maxPayload}.
        """
        if len(payload) > self.maxPayload:
            raise ValueError(f"a vpn041 payload is at most {self.maxPayload} bytes, not {len(payload)}")
        nonce = self.random(NONCE_SIZE) if nonce is None else bytes(nonce)
        header = bytes([self.sessionId]) + nonce
        if not (self.useEncryption or self.authenticated):
            return header + bytes(payload)  # the plaintext mode uses no key
        key, iv = packetKey(self._key, nonce, self.role)
        if self.authenticated:
            if self.useEncryption:
                return header + AESGCM(key).encrypt(iv[:12], bytes(payload), header)
            return header + bytes(payload) + AESGCM(key).encrypt(iv[:12], b"", header + bytes(payload))
        padder = padding.PKCS7(128).padder()
        padded = padder.update(bytes(payload)) + padder.finalize()
        encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        return header + encryptor.update(padded) + encryptor.finalize()

    def open(self, nonce, body):
        """
        @return: the payload of a datagram of this session from the peer.
        @raise DecryptFailure: if it does not decrypt (or authenticate).
        """
        header = bytes([self.sessionId]) + nonce
        if self.authenticated:
            key, iv = packetKey(self._key, nonce, PEER[self.role])
            try:
                if self.useEncryption:
                    return AESGCM(key).decrypt(iv[:12], body, header)
                if len(body) < TAG_SIZE:
                    raise InvalidTag()
                AESGCM(key).decrypt(iv[:12], body[-TAG_SIZE:], header + body[:-TAG_SIZE])
                return body[:-TAG_SIZE]
            except InvalidTag:
                raise DecryptFailure("the datagram's tag does not verify") from None
        if not self.useEncryption:
            return body
        if not body or len(body) % BLOCK:
            raise DecryptFailure(f"an AES-CBC payload is a positive multiple of 16 bytes, not {len(body)}")
        key, iv = packetKey(self._key, nonce, PEER[self.role])
        decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(body) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        try:
            return unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            raise DecryptFailure("the AES-CBC payload's padding is invalid") from None
