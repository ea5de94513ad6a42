# -*- test-case-name: sudp_test.test_rsakeys -*-
"""
RSA key material for gossip6, handled like the Ed25519 keys of L{sudp.keys}.

An RSA identity is an RSA key pair of 2048 to 4096 bits with public
exponent 65537. On disk:

  - the private key is a PKCS#8 PEM file (C{-----BEGIN PRIVATE KEY-----}),
    written with mode 0600 and refused on load when group or others can read
    it (the same rules as L{sudp.keys.loadIdentity});
  - the public key is one line of text, C{rsa-} and the unpadded base64url of
    the DER SubjectPublicKeyInfo, the only text form sudp uses for it
    (C{.pub} files, trusted keys files, log lines), optionally followed by a
    comment.

A fingerprint is C{SHA256:} and the unpadded base64 of the SHA-256 of the DER
SubjectPublicKeyInfo, the way C{ssh-keygen -l} prints one (and what
C{openssl pkey -pubout -outform DER | openssl dgst -sha256 -binary | base64}
prints, with its C{=} removed).

Signatures are RSA-PSS with SHA3-256 as the message digest and as the MGF1
digest, and a salt of 32 bytes (the digest length); a signature is
L{RSAPublicKey.signatureSize} bytes (C{ceil(bits / 8)}).

Constants: L{RSA_PREFIX} (C{"rsa-"}), L{MIN_RSA_BITS} and L{MAX_RSA_BITS}
(2048 and 4096, the sizes accepted anywhere), L{DEFAULT_RSA_BITS} (3072, what
L{RSAIdentity.generate} and C{sudp keygen --type rsa} make),
L{RSA_PUBLIC_EXPONENT} (65537, the only exponent accepted),
L{PSS_SALT_LENGTH} (32) and L{DIGEST_SIZE} (32, the SHA3-256 digest length).
"""

import base64
import binascii
import hashlib

from cryptography.exceptions import InternalError, InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import (
    dh,
    dsa,
    ec,
    ed448,
    ed25519,
    padding,
    rsa,
    utils,
    x448,
    x25519,
)

from sudp.errors import PublicKeyFormatError
from sudp.keys import ED25519_PREFIX

RSA_PREFIX = "rsa-"
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 4096
DEFAULT_RSA_BITS = 3072
RSA_PUBLIC_EXPONENT = 65537
DIGEST_SIZE = 32  # SHA3-256
PSS_SALT_LENGTH = DIGEST_SIZE

# A 4096-bit key's SubjectPublicKeyInfo is 550 bytes (734 base64url
# characters); anything much longer is refused before it is decoded.
_MAX_DER_SIZE = 1024
_MAX_TEXT_SIZE = (_MAX_DER_SIZE * 4 + 2) // 3
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
KEY_PREFIXES = (RSA_PREFIX, ED25519_PREFIX)


def isRSAKeySize(bits):
    """
    @return: True if C{bits} is a key size sudp makes: an C{int} from
        L{MIN_RSA_BITS} to L{MAX_RSA_BITS}, a multiple of 256.
    """
    return (isinstance(bits, int) and not isinstance(bits, bool)
            and MIN_RSA_BITS <= bits <= MAX_RSA_BITS and bits % 256 == 0)


def pssPadding():
    return padding.PSS(mgf=padding.MGF1(hashes.SHA3_256()), salt_length=PSS_SALT_LENGTH)


def keyKind(key):
    """
    @return: the name of the type of a C{cryptography} key, in words
        (C{"Ed25519"}, C{"EC (secp256r1)"}, ...).
    """
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "RSA"
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "Ed25519"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return f"EC ({key.curve.name})"
    for name, types in (
        ("Ed448", (ed448.Ed448PrivateKey, ed448.Ed448PublicKey)),
        ("X25519", (x25519.X25519PrivateKey, x25519.X25519PublicKey)),
        ("X448", (x448.X448PrivateKey, x448.X448PublicKey)),
        ("DSA", (dsa.DSAPrivateKey, dsa.DSAPublicKey)),
        ("DH", (dh.DHPrivateKey, dh.DHPublicKey)),
    ):
        if isinstance(key, types):
            return name
    return type(key).__name__.replace("PrivateKey", "").replace("PublicKey", "") or "unknown"


def withArticle(word):
    return ("an " if word[:1].upper() in "AEIOURX" else "a ") + word


def rsaProblem(publicKey):
    """
    @param publicKey: a C{cryptography} RSA public key.
    @return: what makes C{publicKey} unacceptable to sudp, in words, or
        C{None} if it is acceptable.
    """
    numbers = publicKey.public_numbers()
    bits = publicKey.key_size
    if bits < MIN_RSA_BITS:
        return (f"an RSA key of {bits} bits is too small; sudp accepts "
                f"{MIN_RSA_BITS} to {MAX_RSA_BITS} bits")
    if bits > MAX_RSA_BITS:
        return (f"an RSA key of {bits} bits is too large; sudp accepts "
                f"{MIN_RSA_BITS} to {MAX_RSA_BITS} bits")
    if numbers.e != RSA_PUBLIC_EXPONENT:
        e = numbers.e if numbers.e < 2**64 else f"a number of {numbers.e.bit_length()} bits"
        return f"the RSA public exponent is {e}; sudp accepts only {RSA_PUBLIC_EXPONENT}"
    if numbers.n % 2 == 0:
        return "the RSA modulus is even, so this is not a valid RSA key"
    return None


def keyText(text):
    """
    @return: a public key's text form as C{str}, stripped.
    @raise PublicKeyFormatError: if it is neither text nor ASCII bytes.
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("ascii")
        except UnicodeDecodeError:
            raise PublicKeyFormatError("a public key is ASCII text") from None
    if not isinstance(text, str):
        raise PublicKeyFormatError("a public key is text")
    return text.strip()


class RSAPublicKey:
    """
    An RSA public key of 2048 to 4096 bits with public exponent 65537.

    Two keys are equal (and hash equal) when their DER forms are.

    @ivar der: the DER SubjectPublicKeyInfo bytes.
    @ivar bits: the size of the modulus in bits.
    """

    __slots__ = ("der", "bits", "_key")

    def __init__(self, key):
        """
        @param key: a C{cryptography} RSA public key.
        @raise PublicKeyFormatError: if C{key} is not an RSA public key sudp
            accepts (size, exponent).
        """
        if not isinstance(key, rsa.RSAPublicKey):
            raise PublicKeyFormatError(f"{withArticle(keyKind(key))} key, expected an RSA public key")
        problem = rsaProblem(key)
        if problem:
            raise PublicKeyFormatError(problem)
        self._key = key
        self.bits = key.key_size
        self.der = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def signatureSize(self):
        """
        The length of every signature by this key: C{ceil(bits / 8)} bytes.
        """
        return (self.bits + 7) // 8

    @classmethod
    def fromDER(cls, der):
        """
        Parse a DER SubjectPublicKeyInfo. Only the canonical encoding of an
        acceptable RSA key is accepted: C{fromDER(der).der == der}.

        @raise PublicKeyFormatError: if C{der} is not such a key.
        """
        if not isinstance(der, (bytes, bytearray, memoryview)):
            raise PublicKeyFormatError("a DER public key is bytes")
        der = bytes(der)
        if len(der) > _MAX_DER_SIZE:
            raise PublicKeyFormatError(
                f"{len(der)} bytes is too long for an RSA public key of at most "
                f"{MAX_RSA_BITS} bits"
            )
        try:
            key = serialization.load_der_public_key(der)
        except (ValueError, TypeError, UnsupportedAlgorithm, InternalError):
            raise PublicKeyFormatError(
                "not a DER SubjectPublicKeyInfo public key (truncated or corrupt?)"
            ) from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise PublicKeyFormatError(
                f"holds {withArticle(keyKind(key))} public key, expected an RSA key"
            )
        result = cls(key)
        if result.der != der:
            raise PublicKeyFormatError(
                "the RSA key is not in the canonical DER SubjectPublicKeyInfo form "
                "(rsaEncryption, minimal encoding, nothing after it)"
            )
        return result

    @classmethod
    def fromText(cls, text):
        """
        Parse the text form C{rsa-<base64url of the DER SubjectPublicKeyInfo>}
        (str or ASCII bytes; whitespace around it is ignored). Only the exact
        text L{toText} writes is accepted: no padding, no other alphabet, no
        non-canonical base64 or DER.

        @raise PublicKeyFormatError: if C{text} is not an acceptable RSA key.
        """
        text = keyText(text)
        if not text.startswith(RSA_PREFIX):
            if text.startswith(ED25519_PREFIX):
                hint = "this is an Ed25519 key, not an RSA key"
            elif text.startswith("ssh-rsa"):
                hint = ("this is an OpenSSH key; sudp's text form is rsa- and the "
                        "base64url of the DER SubjectPublicKeyInfo")
            elif text.startswith("-----"):
                hint = "this is a PEM block; give the .pub line of sudp keygen --type rsa"
            else:
                kind = text.split("-", 1)[0] if "-" in text else text[:16]
                hint = f"got {kind!r}..."
            raise PublicKeyFormatError(
                f"expected an RSA public key of the form {RSA_PREFIX}<base64url of "
                f"the DER SubjectPublicKeyInfo>: {hint}"
            )
        body = text[len(RSA_PREFIX):]
        if not body:
            raise PublicKeyFormatError(f"nothing after {RSA_PREFIX!r}")
        if len(body) > _MAX_TEXT_SIZE:
            raise PublicKeyFormatError(
                f"{len(body)} characters is too long for an RSA public key of at "
                f"most {MAX_RSA_BITS} bits"
            )
        bad = next((c for c in body if c not in _B64URL), None)
        if bad is not None:
            raise PublicKeyFormatError(
                f"the key is not valid unpadded base64url (character {bad!r})"
            )
        if len(body) % 4 == 1:
            raise PublicKeyFormatError(
                "the key is not valid base64url (wrong length: truncated or pasted wrong?)"
            )
        try:
            der = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise PublicKeyFormatError("the key is not valid base64url") from None
        if base64.urlsafe_b64encode(der).rstrip(b"=").decode("ascii") != body:
            raise PublicKeyFormatError("the key is not canonical base64url")
        return cls.fromDER(der)

    def toText(self):
        """
        @return: the one text form of this key, C{rsa-<base64url of der>}
            without padding.
        """
        return RSA_PREFIX + base64.urlsafe_b64encode(self.der).rstrip(b"=").decode("ascii")

    def fingerprint(self):
        """
        @return: C{SHA256:<base64 of SHA-256(der)>} without padding, as
            C{ssh-keygen -l} prints it.
        """
        digest = hashlib.sha256(self.der).digest()
        return "SHA256:" + base64.b64encode(digest).rstrip(b"=").decode("ascii")

    def verify(self, signature, data):
        """
        Check an RSA-PSS signature (SHA3-256, MGF1 with SHA3-256, 32-byte salt)
        of C{data}, that is of the digest SHA3-256(C{data}); see
        L{RSAIdentity.sign}.

        @return: C{True} if C{signature} is this key's signature of C{data};
            C{False} otherwise, including for a signature of the wrong length
            or type. Never raises for a bad signature.
        """
        return self._verified(signature, data, hashes.SHA3_256())

    def _verified(self, signature, data, algorithm):
        """
        L{verify} and L{verifyDigest}: C{data} signed, as C{algorithm} says.
        """
        if not isinstance(signature, (bytes, bytearray, memoryview)) or len(signature) != self.signatureSize:
            return False
        try:
            self._key.verify(bytes(signature), data, pssPadding(), algorithm)
        except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm, InternalError):
            return False
        return True

    def verifyDigest(self, signature, digest):
        """
        Like L{verify}, given the 32-byte digest SHA3-256(data) instead of the
        data: C{verifyDigest(s, hashlib.sha3_256(m).digest()) == verify(s, m)}.

        @return: C{True} if C{signature} is this key's signature of a message
            whose SHA3-256 is C{digest}; C{False} otherwise (also for a
            C{digest} that is not 32 bytes).
        """
        if not isinstance(digest, (bytes, bytearray, memoryview)) or len(digest) != DIGEST_SIZE:
            return False
        return self._verified(signature, bytes(digest), utils.Prehashed(hashes.SHA3_256()))

    def __eq__(self, other):
        if not isinstance(other, RSAPublicKey):
            return NotImplemented
        return self.der == other.der

    def __hash__(self):
        return hash(self.der)

    def __repr__(self):
        """
        @return: C{<RSAPublicKey 3072 bits SHA256:...>} (the text form is
            several hundred characters; L{toText} gives it).
        """
        return f"<RSAPublicKey {self.bits} bits {self.fingerprint()}>"

    __str__ = toText


