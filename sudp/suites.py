# -*- test-case-name: sudp_test.test_suites -*-
"""
Cipher suites: L{ICipherSuite} implementations and the registry by name. ::

  name                 id  library        nonce (24/12 bytes)            limits (RFC 9001 6.6)
  chacha20-poly1305     1  cryptography   0^32 | seq64                   2^62 sealed, 2^36 forgeries
  aes-256-gcm           2  cryptography   0^32 | seq64                   2^23 sealed, 2^52 forgeries
  xchacha20-poly1305    3  PyNaCl         0^128 | seq64                  2^62 sealed, 2^36 forgeries
  xsalsa20-poly1305     4  PyNaCl         header(13) | 0^88              2^62 sealed, 2^36 forgeries

The data path uses C{cryptography}'s AEAD objects, created once per key and
reused for every packet (about 1 microsecond a packet, against 6-11 for
PyNaCl's bindings), so the default suites are those two, ordered by the
hardware (L{defaultSuites}). XSalsa20-Poly1305
is NaCl's C{crypto_secretbox}, the construction the UDP whitepaper names; it has no
associated data, so its nonce is the packet header itself: any change to
the header changes the nonce and the tag fails.

Applications add suites without touching sudp: an object providing
C{twisted.plugin.IPlugin} and L{ICipherSuite} in any C{twisted/plugins/}
module on C{sys.path} is found by name (see docs/ciphersuites.md and
examples/thirdparty_suite/).
"""

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from nacl import bindings as _nacl
from nacl.exceptions import CryptoError
from zope.interface import implementer

from sudp.errors import MalformedPacket
from sudp.interfaces import IAEAD, ICipherSuite, IPacketCipher
from sudp.registry import SuiteRegistry
from sudp.speedups import nativeCipher

_NONCE96 = struct.Struct(">4xQ").pack
_NONCE192 = struct.Struct(">16xQ").pack
_HEADER_PAD = bytes(11)


# -- the two shapes of packet cipher ---------------------------------------


@implementer(IPacketCipher)
class _CryptographyPacketCipher:
    """
    A reused C{cryptography} AEAD object; nonce = 32 zero bits | seq64.
    The hot path: one struct pack and one call per packet.
    """

    __slots__ = ("_encrypt", "_decrypt")

    def __init__(self, aead):
        self._encrypt = aead.encrypt
        self._decrypt = aead.decrypt

    def seal(self, sequence, header, plaintext):
        return self._encrypt(_NONCE96(sequence), plaintext, header)

    def open(self, sequence, header, ciphertext):
        try:
            return self._decrypt(_NONCE96(sequence), ciphertext, header)
        except InvalidTag:
            raise MalformedPacket("bad-tag") from None


@implementer(IPacketCipher)
class _XChaCha20PacketCipher:
    """
    libsodium's XChaCha20-Poly1305; nonce = 128 zero bits | seq64, header as AAD.
    """

    __slots__ = ("_key",)

    def __init__(self, key):
        self._key = bytes(key)

    def seal(self, sequence, header, plaintext):
        return _nacl.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, header, _NONCE192(sequence), self._key)

    def open(self, sequence, header, ciphertext):
        try:
            return _nacl.crypto_aead_xchacha20poly1305_ietf_decrypt(
                ciphertext, header, _NONCE192(sequence), self._key
            )
        except CryptoError:
            raise MalformedPacket("bad-tag") from None


@implementer(IPacketCipher)
class _SecretBoxPacketCipher:
    """
    NaCl secretbox; nonce = the 13-byte header | 88 zero bits. The header
    carries the sequence number, so the nonce is unique per key, and it is
    authenticated through the nonce: any change makes the tag fail.
    """

    __slots__ = ("_key",)

    def __init__(self, key):
        self._key = bytes(key)

    def seal(self, sequence, header, plaintext):
        return _nacl.crypto_secretbox(plaintext, header + _HEADER_PAD, self._key)

    def open(self, sequence, header, ciphertext):
        try:
            return _nacl.crypto_secretbox_open(ciphertext, header + _HEADER_PAD, self._key)
        except CryptoError:
            raise MalformedPacket("bad-tag") from None


# -- explicit-nonce primitives (IAEAD) ----------------------------------------


@implementer(IAEAD)
class _CryptographyAEAD:
    __slots__ = ("_aead",)

    def __init__(self, aead):
        self._aead = aead

    def encrypt(self, nonce, plaintext, aad):
        return self._aead.encrypt(nonce, plaintext, aad)

    def decrypt(self, nonce, ciphertext, aad):
        try:
            return self._aead.decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise MalformedPacket("bad-tag") from None


@implementer(IAEAD)
class _XChaCha20Poly1305AEAD:
    __slots__ = ("_key",)

    def __init__(self, key):
        self._key = bytes(key)

    def encrypt(self, nonce, plaintext, aad):
        return _nacl.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, aad, nonce, self._key)

    def decrypt(self, nonce, ciphertext, aad):
        try:
            return _nacl.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, aad, nonce, self._key)
        except CryptoError:
            raise MalformedPacket("bad-tag") from None


@implementer(IAEAD)
class _SecretBoxAEAD:
    """
    NaCl C{crypto_secretbox_easy}: tag first, then ciphertext. No associated
    data: C{aad} must be empty.
    """

    __slots__ = ("_key",)

    def __init__(self, key):
        self._key = bytes(key)

    def encrypt(self, nonce, plaintext, aad):
        if aad:
            raise ValueError("xsalsa20-poly1305 (secretbox) takes no associated data")
        return _nacl.crypto_secretbox(plaintext, nonce, self._key)

    def decrypt(self, nonce, ciphertext, aad):
        if aad:
            raise ValueError("xsalsa20-poly1305 (secretbox) takes no associated data")
        try:
            return _nacl.crypto_secretbox_open(ciphertext, nonce, self._key)
        except CryptoError:
            raise MalformedPacket("bad-tag") from None


# -- the suites -------------------------------------------------------------------


class _Suite:
    keySize = 32
    tagSize = 16

    def __repr__(self):
        return f"<cipher suite {self.name} (id {self.suiteId})>"


class _CryptographySuite(_Suite):
    """
    A suite over one of C{cryptography}'s reused AEAD objects; nonce = 32
    zero bits | u64 sequence.
    """

    nonceSize = 12
    aead = None  # the cryptography AEAD class
    algorithm = None  # its name for the native cipher (a subclass keeps it)

    def packetNonce(self, sequence, header):
        return _NONCE96(sequence)

    def newAEAD(self, key):
        return _CryptographyAEAD(self.aead(bytes(key)))

    def newCipher(self, key):
        """
        @return: the native packet cipher (OpenSSL's EVP from C,
            L{sudp.speedups.nativeCipher}) where it is built, else one over
            C{cryptography}'s AEAD object; the two are interchangeable.
        """
        if nativeCipher is not None:
            return nativeCipher(self.algorithm, bytes(key))
        return _CryptographyPacketCipher(self.aead(bytes(key)))


@implementer(ICipherSuite)
class ChaCha20Poly1305Suite(_CryptographySuite):
    """
    IETF ChaCha20-Poly1305 (RFC 8439), the default.
    """

    name = "chacha20-poly1305"
    suiteId = 1
    aead = ChaCha20Poly1305
    algorithm = "chacha20-poly1305"
    confidentialityLimit = 2**62
    integrityLimit = 2**36


@implementer(ICipherSuite)
class AES256GCMSuite(_CryptographySuite):
    """
    AES-256-GCM (NIST SP 800-38D), for hardware with AES instructions.
    """

    name = "aes-256-gcm"
    suiteId = 2
    aead = AESGCM
    algorithm = "aes-256-gcm"
    confidentialityLimit = 2**23
    integrityLimit = 2**52


@implementer(ICipherSuite)
class XChaCha20Poly1305Suite(_Suite):
    """
    XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha), through libsodium.
    """

    name = "xchacha20-poly1305"
    suiteId = 3
    nonceSize = 24
    confidentialityLimit = 2**62
    integrityLimit = 2**36

    def packetNonce(self, sequence, header):
        return _NONCE192(sequence)

    def newAEAD(self, key):
        return _XChaCha20Poly1305AEAD(key)

    def newCipher(self, key):
        return _XChaCha20PacketCipher(key)


@implementer(ICipherSuite)
class XSalsa20Poly1305Suite(_Suite):
    """
    NaCl secretbox (XSalsa20-Poly1305), the construction the UDP whitepaper names.
    The 13-byte packet header, zero-padded to 24 bytes, is the nonce.
    """

    name = "xsalsa20-poly1305"
    suiteId = 4
    nonceSize = 24
    confidentialityLimit = 2**62
    integrityLimit = 2**36

    def packetNonce(self, sequence, header):
        if len(header) != 13 or int.from_bytes(header[5:13], "big") != sequence:
            raise ValueError("xsalsa20-poly1305 packet nonces are built from the 13-byte header")
        return bytes(header) + _HEADER_PAD

    def newAEAD(self, key):
        return _SecretBoxAEAD(key)

    def newCipher(self, key):
        return _SecretBoxPacketCipher(key)


# -- the registry -----------------------------------------------------------------

registry = SuiteRegistry(ICipherSuite, "cipher suite")
registerSuite = registry.register
getSuite = registry.get
suiteNames = registry.names
suiteName = registry.nameOf
parseSuiteList = registry.parseList
loadPluginSuites = registry.loadPlugins


DEFAULT_SUITE = CHACHA20POLY1305 = registerSuite(ChaCha20Poly1305Suite())
AES256GCM = registerSuite(AES256GCMSuite())
XCHACHA20POLY1305 = registerSuite(XChaCha20Poly1305Suite())
XSALSA20POLY1305 = registerSuite(XSalsa20Poly1305Suite())


def defaultSuites(hasAES=None):
    """
    The suites offered and accepted when none are configured, in order of
    preference, as TLS stacks order theirs: AES-256-GCM first where the CPU
    has AES instructions (L{sudp.cpufeatures.hasAESInstructions}), else
    ChaCha20-Poly1305 first; both in either case.

    @param hasAES: True or False to decide for another CPU; None: this one.
    """
    if hasAES is None:
        from sudp.cpufeatures import hasAESInstructions

        hasAES = hasAESInstructions()
    return (AES256GCM, CHACHA20POLY1305) if hasAES else (CHACHA20POLY1305, AES256GCM)
