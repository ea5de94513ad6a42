# -*- test-case-name: sudp_test.test_keys -*-
"""
Key files, handled like OpenSSH handles its keys.

An identity is an Ed25519 key pair. On disk:

  - the private key is a PKCS#8 PEM file (C{-----BEGIN PRIVATE KEY-----}),
    written with mode 0600 and refused on load when group or others can read it;
  - the public key is one line of text, C{ed25519-<43 base64url characters>},
    the only text form sudp uses (endpoint strings, C{.pub} files, authorized
    keys files, log lines), optionally followed by a comment.

A fingerprint is C{SHA256:} and the unpadded base64 of the SHA-256 of the 32
raw public key bytes, the way C{ssh-keygen -l} prints one.
"""

import base64
import binascii
import hashlib
import os


from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from sudp.errors import KeyFileError, PublicKeyFormatError
from sudp.keyfiles import (
    loadOrCreate,
    loadPrivatePEM,
    loadPublicKeyFile,
    parseKeyLines,
    readKeyListFile,
    readPrivateKeyFile,
    writeKeyFiles,
)

ED25519_PREFIX = "ed25519-"
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
_ENCODED_SIZE = 43  # base64url of 32 bytes without padding


class PublicKey:
    """
    An Ed25519 public key.

    @ivar raw: the 32 raw key bytes.
    """

    __slots__ = ("raw", "_verifyKey")

    def __init__(self, raw):
        if not isinstance(raw, (bytes, bytearray)) or len(raw) != PUBLIC_KEY_SIZE:
            raise PublicKeyFormatError(
                f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes"
            )
        self.raw = bytes(raw)
        self._verifyKey = VerifyKey(self.raw)

    @classmethod
    def fromText(cls, text):
        """
        Parse the text form C{ed25519-<base64url>}.

        @raise PublicKeyFormatError: if C{text} is not a valid public key.
        """
        if isinstance(text, bytes):
            try:
                text = text.decode("ascii")
            except UnicodeDecodeError:
                raise PublicKeyFormatError("a public key is ASCII text") from None
        text = text.strip()
        if not text.startswith(ED25519_PREFIX):
            kind = text.split("-", 1)[0] if "-" in text else text[:16]
            raise PublicKeyFormatError(
                f"expected a public key of the form {ED25519_PREFIX}<43 base64url "
                f"characters>, got {kind!r}..."
            )
        body = text[len(ED25519_PREFIX):]
        if len(body) != _ENCODED_SIZE:
            raise PublicKeyFormatError(
                f"an {ED25519_PREFIX} key has {_ENCODED_SIZE} characters after the "
                f"prefix, this one has {len(body)} (truncated or pasted wrong?)"
            )
        try:
            raw = base64.urlsafe_b64decode(body + "=")
        except (binascii.Error, ValueError):
            raise PublicKeyFormatError("the key is not valid base64url") from None
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != body:
            raise PublicKeyFormatError("the key is not canonical base64url")
        return cls(raw)

    def toText(self):
        """
        @return: the one text form of this key, C{ed25519-<base64url>}.
        """
        return ED25519_PREFIX + base64.urlsafe_b64encode(self.raw).rstrip(b"=").decode(
            "ascii"
        )

    def fingerprint(self):
        """
        @return: C{SHA256:<base64>}, as C{ssh-keygen -l} prints it.
        """
        digest = hashlib.sha256(self.raw).digest()
        return "SHA256:" + base64.b64encode(digest).rstrip(b"=").decode("ascii")

    def verify(self, signature, message):
        """
        @return: C{True} if C{signature} is this key's signature of C{message}.
        """
        try:
            self._verifyKey.verify(message, signature)
        except (BadSignatureError, ValueError, TypeError):
            return False
        return True

    def __eq__(self, other):
        if not isinstance(other, PublicKey):
            return NotImplemented
        return self.raw == other.raw

    def __hash__(self):
        return hash(self.raw)

    def __repr__(self):
        return f"<PublicKey {self.toText()}>"

    __str__ = toText


def deriveSecret(keyMaterial, label):
    """
    @return: 32 bytes of HKDF-SHA-256 (RFC 5869) of C{keyMaterial}, with no
        salt and C{label} as info.
    """
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(bytes(keyMaterial))


class Identity:
    """
    An Ed25519 private key with its public key.

    Signing uses PyNaCl (faster for Ed25519 than the OpenSSL path); storage uses
    C{cryptography}'s PKCS#8 serialisation.
    """

    def __init__(self, seed):
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        self._signingKey = SigningKey(bytes(seed))
        self.publicKey = PublicKey(bytes(self._signingKey.verify_key))

    @classmethod
    def generate(cls):
        """
        @return: a new random identity.
        """
        return cls(bytes(SigningKey.generate()))

    def sign(self, message):
        """
        @return: the 64-byte Ed25519 signature of C{message}.
        """
        return self._signingKey.sign(message).signature

    def deriveSecret(self, label):
        """
        A secret of this key's own for one purpose, the same every time the
        key is loaded (a restarted server knows it): HKDF-SHA-256 of the
        32-byte private seed, no salt, with C{label} as info.

        @param label: bytes naming the protocol and purpose.
        @return: 32 bytes.
        """
        return deriveSecret(bytes(self._signingKey), label)

    def toPEM(self):
        """
        @return: the private key as unencrypted PKCS#8 PEM bytes.
        """
        key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(self._signingKey))
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def fromPEM(cls, data, name="<key>"):
        """
        Parse a PKCS#8 PEM private key.

        @param name: the file name used in error messages.
        @raise KeyFileError: if C{data} is not an Ed25519 private key.
        """
        key = loadPrivatePEM(data, name, (ED25519_PREFIX,))
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            kind = type(key).__name__.replace("_", "").replace("PrivateKey", "")
            raise KeyFileError(
                f"{name}: holds a {kind or 'non-Ed25519'} key, expected an Ed25519 key"
            )
        return cls(key.private_bytes_raw())





def loadIdentity(path):
    """
    Load an Ed25519 identity from a private key file.

    @raise KeyFileError: if the file is missing, too open, or not an Ed25519
        private key; the message names the file.
    """
    path = os.fspath(path)
    return Identity.fromPEM(readPrivateKeyFile(path), name=path)


def saveIdentity(identity, path, force=False, comment=""):
    """
    Write C{identity} to C{path} (mode 0600) and its public key to
    C{path + ".pub"}.

    @raise KeyFileError: if C{path} exists and C{force} is false.
    """
    return writeKeyFiles(
        path, identity.toPEM(), identity.publicKey.toText(), force=force, comment=comment
    )



def loadOrCreateIdentity(path):
    """
    Load the identity at C{path}, creating it (0600) if the file does not exist.

    @return: a 2-tuple C{(identity, created)}.
    """
    return loadOrCreate(path, Identity.generate, saveIdentity, loadIdentity)



def loadPublicKey(path):
    """
    Load a public key from a C{.pub} file (its first non-comment line).

    @raise KeyFileError: naming the file if it does not hold a public key.
    """
    return loadPublicKeyFile(path, PublicKey.fromText, loadIdentity)



def parseAuthorizedKeys(text, name="<authorized keys>"):
    """
    Parse an authorized keys file: one public key per line in the text form,
    then an optional comment; blank lines and lines starting with C{#} are
    ignored.

    @return: a dict mapping each L{PublicKey} to its comment.
    @raise KeyFileError: naming the file and line of the first bad entry.
    """
    return parseKeyLines(text, name, PublicKey)



def loadAuthorizedKeys(path):
    """
    Load an authorized keys file; see L{parseAuthorizedKeys}.
    """
    path = os.fspath(path)
    return parseAuthorizedKeys(readKeyListFile(path, "authorized keys"), name=path)


