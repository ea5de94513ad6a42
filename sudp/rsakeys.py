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
import os

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

from sudp.errors import KeyFileError, PublicKeyFormatError
from sudp.keys import (
    ED25519_PREFIX,
    Identity,
    PublicKey,
    deriveSecret,
    _loadOrCreate,
    _loadPrivatePEM,
    _loadPublicKeyFile,
    _parseKeyLines,
    _readKeyListFile,
    _readPrivateKeyFile,
    _writeKeyFiles,
)

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
_ANY_PREFIXES = (RSA_PREFIX, ED25519_PREFIX)


def isRSAKeySize(bits):
    """
    @return: True if C{bits} is a key size sudp makes: an C{int} from
        L{MIN_RSA_BITS} to L{MAX_RSA_BITS}, a multiple of 256.
    """
    return (isinstance(bits, int) and not isinstance(bits, bool)
            and MIN_RSA_BITS <= bits <= MAX_RSA_BITS and bits % 256 == 0)


def _pss():
    return padding.PSS(mgf=padding.MGF1(hashes.SHA3_256()), salt_length=PSS_SALT_LENGTH)


def _kind(key):
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


def _an(word):
    return ("an " if word[:1].upper() in "AEIOURX" else "a ") + word


def _rsaProblem(publicKey):
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


def _keyText(text):
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
            raise PublicKeyFormatError(f"{_an(_kind(key))} key, expected an RSA public key")
        problem = _rsaProblem(key)
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
                f"holds {_an(_kind(key))} public key, expected an RSA key"
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
        text = _keyText(text)
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
            self._key.verify(bytes(signature), data, _pss(), algorithm)
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
            raise ValueError(f"{_an(_kind(key))} key, expected an RSA private key")
        problem = _rsaProblem(key.public_key())
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
        return self._key.sign(data, _pss(), hashes.SHA3_256())

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
        return self._key.sign(bytes(digest), _pss(), utils.Prehashed(hashes.SHA3_256()))

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
        key = _loadPrivatePEM(data, name, _ANY_PREFIXES)
        return cls._fromPrivateKey(key, name)

    @classmethod
    def _fromPrivateKey(cls, key, name):
        if not isinstance(key, rsa.RSAPrivateKey):
            raise KeyFileError(
                f"{name}: holds {_an(_kind(key))} private key, expected an RSA key"
            )
        problem = _rsaProblem(key.public_key())
        if problem:
            raise KeyFileError(f"{name}: {problem}")
        return cls(key)

    def __repr__(self):
        """
        @return: C{<RSAIdentity 3072 bits SHA256:...>} (public information only).
        """
        return f"<RSAIdentity {self.bits} bits {self.publicKey.fingerprint()}>"


def loadRSAIdentity(path):
    """
    Load an RSA identity from a private key file.

    @raise KeyFileError: if the file is missing, readable by group or others
        (the message says C{chmod 600}), empty, or not an acceptable RSA
        private key; the message names the file.
    """
    path = os.fspath(path)
    return RSAIdentity.fromPEM(_readPrivateKeyFile(path), name=path)


def saveRSAIdentity(identity, path, force=False, comment=""):
    """
    Write C{identity} to C{path} (PKCS#8 PEM, mode 0600) and its public key
    to C{path + ".pub"} (UTF-8: the text form, a space and C{comment} if
    there is one).

    @return: C{path}.
    @raise KeyFileError: if C{path} exists and C{force} is false, if
        C{comment} is more than one line, or if the file cannot be written.
    """
    return _writeKeyFiles(
        path, identity.toPEM(), identity.publicKey.toText(), force=force, comment=comment
    )


def loadOrCreateRSAIdentity(path):
    """
    Load the RSA identity at C{path}, creating one of L{DEFAULT_RSA_BITS}
    (0600) if the file does not exist.

    @return: a 2-tuple C{(identity, created)}.
    """
    return _loadOrCreate(path, RSAIdentity.generate, saveRSAIdentity, loadRSAIdentity)


def loadRSAPublicKey(path):
    """
    Load an RSA public key from a C{.pub} file (its first line that is
    neither blank nor a C{#} comment), or the public half of an RSA private
    key file (with the checks of L{loadRSAIdentity}).

    @raise KeyFileError: naming the file (and the line) if it does not hold an
        acceptable RSA public key.
    """
    return _loadPublicKeyFile(path, RSAPublicKey.fromText, loadRSAIdentity)


def parseTrustedKeys(text, name="<trusted keys>"):
    """
    Parse a trusted keys file: one RSA public key per line in the text form,
    then optional whitespace and a comment; blank lines and lines starting
    with C{#} are ignored (the same rules as
    L{sudp.keys.parseAuthorizedKeys}).

    @return: a dict mapping each L{RSAPublicKey} to its comment (C{""} if
        none; the last comment of a repeated key).
    @raise KeyFileError: naming C{name} and the line number of the first bad
        line (C{FILE:LINE: ...}).
    """
    return _parseKeyLines(text, name, RSAPublicKey)


def loadTrustedKeys(path):
    """
    Load a trusted keys file (UTF-8); see L{parseTrustedKeys}.

    @raise KeyFileError: naming the file if it is missing, unreadable, not
        UTF-8, or has a bad line.
    """
    path = os.fspath(path)
    return parseTrustedKeys(_readKeyListFile(path, "trusted keys"), name=path)


def loadAnyIdentity(path):
    """
    Load an Ed25519 or an RSA identity from a private key file, deciding by
    the type of the key in the PEM.

    @return: a L{sudp.keys.Identity} or an L{RSAIdentity}.
    @raise KeyFileError: as L{loadRSAIdentity}, naming the type found if it
        is neither.
    """
    path = os.fspath(path)
    key = _loadPrivatePEM(_readPrivateKeyFile(path), path, _ANY_PREFIXES)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return Identity(key.private_bytes_raw())
    if isinstance(key, rsa.RSAPrivateKey):
        return RSAIdentity._fromPrivateKey(key, path)
    raise KeyFileError(
        f"{path}: holds {_an(_kind(key))} private key, expected an Ed25519 or an RSA key"
    )


def parseAnyPublicKey(text):
    """
    Parse the text form of an Ed25519 (C{ed25519-...}) or an RSA (C{rsa-...})
    public key, deciding by the prefix.

    @return: a L{sudp.keys.PublicKey} or an L{RSAPublicKey}.
    @raise PublicKeyFormatError: if C{text} is neither.
    """
    stripped = _keyText(text)
    if stripped.startswith(RSA_PREFIX):
        return RSAPublicKey.fromText(stripped)
    if stripped.startswith(ED25519_PREFIX):
        return PublicKey.fromText(stripped)
    kind = stripped.split("-", 1)[0] if "-" in stripped else stripped[:16]
    raise PublicKeyFormatError(
        f"expected a public key of the form {ED25519_PREFIX}<...> or "
        f"{RSA_PREFIX}<...>, got {kind!r}..."
    )


def loadAnyPublicKey(path):
    """
    Load an Ed25519 or RSA public key from a C{.pub} file (its first line
    that is neither blank nor a comment) or from a private key file of
    either type (with the checks of L{loadAnyIdentity}).

    @return: a L{sudp.keys.PublicKey} or an L{RSAPublicKey}.
    @raise KeyFileError: naming the file (and line).
    """
    return _loadPublicKeyFile(path, parseAnyPublicKey, loadAnyIdentity)
