# -*- test-case-name: sudp_test.gossip6.test_checks, sudp_test.test_rsakeys, sudp_test.test_tap -*-
"""
L{RSAIdentity}: an RSA key pair of gossip6 (its public half is a
L{sudp.rsakeys.RSAPublicKey}): signing with RSA-PSS and SHA3-256, secrets
derived from it, and its PEM form.
"""

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa, utils

from sudp.errors import KeyFileError
from sudp.keyfiles import loadPrivatePEM
from sudp.keys import deriveSecret
from sudp.rsakeys import (
    DEFAULT_RSA_BITS,
    DIGEST_SIZE,
    KEY_PREFIXES,
    MAX_RSA_BITS,
    MIN_RSA_BITS,
    RSA_PUBLIC_EXPONENT,
    RSAPublicKey,
    isRSAKeySize,
    keyKind,
    pssPadding,
    rsaProblem,
    withArticle,
)


class RSAIdentity:
    """
    An RSA private key (2048 to 4096 bits, exponent 65537) with its public key.

    @ivar publicKey: the L{RSAPublicKey}.
    """

    def __init__(self, key):
        """
        @param key: a C{cryptography} RSA private key.
        @raise ValueError: if C{key} is not an RSA private key sudp accepts.
        """
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{withArticle(keyKind(key))} key, expected an RSA private key")
        problem = rsaProblem(key.public_key())
        if problem:
            raise ValueError(problem)
        self._key = key
        self.publicKey = RSAPublicKey(key.public_key())

    @property
    def bits(self):
        """
        The size of the modulus in bits.
        """
        return self.publicKey.bits

    def deriveSecret(self, label):
        """
        A secret of this key's own for one purpose, the same every time the
        key is loaded: HKDF-SHA-256 of the private key's PKCS#8 DER form,
        with C{label} as info (L{sudp.keys.deriveSecret}).

        @return: 32 bytes.
        """
        der = self._key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
        return deriveSecret(der, label)

    @property
    def signatureSize(self):
        """
        The length of every signature L{sign} makes: C{ceil(bits / 8)} bytes.
        """
        return self.publicKey.signatureSize

    @classmethod
    def generate(cls, bits=DEFAULT_RSA_BITS):
        """
        @param bits: the key size: 2048 to 4096, a multiple of 256 (2048,
            2304, ..., 3072, ..., 4096).
        @return: a new random identity, public exponent 65537.
        @raise ValueError: for any other C{bits}.
        """
        if not isRSAKeySize(bits):
            raise ValueError(
                f"an RSA key size is {MIN_RSA_BITS} to {MAX_RSA_BITS} bits, a multiple "
                f"of 256 (such as 2048, 3072, 4096), not {bits!r}"
            )
        return cls(rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=bits))

    def sign(self, data):
        """
        Sign C{data} with RSA-PSS: SHA3-256 as the message digest, MGF1 with
        SHA3-256, a 32-byte salt. What is signed (PSS-encoded) is the digest
        SHA3-256(C{data}): this computes exactly
        C{key.sign(data, PSS(mgf=MGF1(SHA3_256()), salt_length=32), SHA3_256())},
        which hashes C{data} once; so it is the protocol's "sign the digest
        SHA3-256(m)" when given C{m} itself. Do not pass the digest here
        (that would sign SHA3-256(SHA3-256(m))); use L{signDigest} for that.

        @return: the signature, L{signatureSize} bytes (randomised: two
            signatures of the same data differ).
        """
        return self._key.sign(data, pssPadding(), hashes.SHA3_256())

    def signDigest(self, digest):
        """
        Like L{sign}, given the 32-byte digest SHA3-256(m) instead of m:
        C{signDigest(hashlib.sha3_256(m).digest())} is a signature of C{m}
        that L{RSAPublicKey.verify} accepts (for a transcript hash kept
        incrementally).

        @raise ValueError: if C{digest} is not 32 bytes.
        """
        if not isinstance(digest, (bytes, bytearray, memoryview)) or len(digest) != DIGEST_SIZE:
            raise ValueError(f"a SHA3-256 digest is {DIGEST_SIZE} bytes")
        return self._key.sign(bytes(digest), pssPadding(), utils.Prehashed(hashes.SHA3_256()))

    def toPEM(self):
        """
        @return: the private key as unencrypted PKCS#8 PEM bytes.
        """
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def fromPEM(cls, data, name="<key>"):
        """
        Parse an unencrypted PEM private key (PKCS#8, as L{toPEM} writes; the
        older PKCS#1 C{BEGIN RSA PRIVATE KEY} form is read too).

        @param name: the file name used in error messages.
        @raise KeyFileError: naming C{name}, if C{data} is encrypted, a public
            key, corrupt, not an RSA key (the message names the type found),
            or an RSA key outside 2048 to 4096 bits or with an exponent other
            than 65537.
        """
        if isinstance(data, str):
            data = data.encode("utf-8", "replace")
        key = loadPrivatePEM(data, name, KEY_PREFIXES)
        return cls._fromPrivateKey(key, name)

    @classmethod
    def _fromPrivateKey(cls, key, name):
        if not isinstance(key, rsa.RSAPrivateKey):
            raise KeyFileError(
                f"{name}: holds {withArticle(keyKind(key))} private key, expected an RSA key"
            )
        problem = rsaProblem(key.public_key())
        if problem:
            raise KeyFileError(f"{name}: {problem}")
        return cls(key)

    def __repr__(self):
        """
        @return: C{<RSAIdentity 3072 bits SHA256:...>} (public information only).
        """
        return f"<RSAIdentity {self.bits} bits {self.publicKey.fingerprint()}>"
