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
import stat

from cryptography.exceptions import InternalError, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from sudp.errors import KeyFileError, PublicKeyFormatError, errorText

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
        key = _loadPrivatePEM(data, name)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            kind = type(key).__name__.replace("_", "").replace("PrivateKey", "")
            raise KeyFileError(
                f"{name}: holds a {kind or 'non-Ed25519'} key, expected an Ed25519 key"
            )
        return cls(key.private_bytes_raw())


def _loadPrivatePEM(data, name, publicPrefixes=(ED25519_PREFIX,)):
    """
    Parse an unencrypted PEM private key of any type, for the C{fromPEM} of
    L{Identity} and of L{sudp.rsakeys.RSAIdentity}.

    @param name: the file name used in error messages.
    @param publicPrefixes: the public key text prefixes recognised as "a
        .pub line given where a private key belongs".
    @return: the C{cryptography} private key object.
    @raise KeyFileError: naming C{name}, if C{data} holds a public key, is
        encrypted, or is not a private key at all.
    """
    if b"PUBLIC KEY" in data and b"PRIVATE KEY" not in data:
        raise KeyFileError(f"{name}: holds a public key, not a private key")
    if data.lstrip().startswith(tuple(prefix.encode() for prefix in publicPrefixes)):
        raise KeyFileError(
            f"{name}: holds a public key (the .pub line), not a private key"
        )
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise KeyFileError(
            f"{name}: the private key is encrypted; sudp needs an unencrypted key"
        ) from None
    except (ValueError, UnsupportedAlgorithm, InternalError) as e:
        # InternalError: OpenSSL refuses a key of the wrong length for its algorithm
        raise KeyFileError(
            f"{name}: not a valid private key file (truncated or corrupt PEM: {e})"
        ) from None


def _checkPrivateMode(path, fd=None):
    """
    @param fd: the open file's descriptor (its mode is checked, not the
        path's, so a directory or a swapped file cannot pass for the key).
    """
    if os.name != "posix":
        return
    mode = stat.S_IMODE(os.fstat(fd).st_mode if fd is not None else os.stat(path).st_mode)
    if mode & 0o077:
        raise KeyFileError(
            f"{path}: permissions {mode:04o} are too open; a private key must not "
            f"be readable by group or others (run: chmod 600 {path})"
        )


def _readPrivateKeyFile(path):
    """
    Read a private key file for L{loadIdentity} and its RSA twin, after
    checking its permissions (L{_checkPrivateMode}).

    @return: the file's bytes (at most 64 KiB).
    @raise KeyFileError: naming the file if it is missing, too open,
        unreadable or empty.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:  # a directory fails here, before its mode is looked at
            _checkPrivateMode(path, f.fileno())
            data = f.read(1 << 16)
    except KeyFileError:  # too open: a ValueError, not to be wrapped again below
        raise
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file") from None
    except IsADirectoryError:
        raise KeyFileError(f"{path}: is a directory, not a key file") from None
    except PermissionError:
        raise KeyFileError(f"{path}: cannot read the key file (permission denied)") from None
    except (OSError, ValueError) as e:  # a path through a file, too long, a loop, a NUL byte
        raise KeyFileError(f"{path!r}: cannot read the key file ({errorText(e)})") from None
    if not data.strip():
        raise KeyFileError(f"{path}: the key file is empty")
    return data


def loadIdentity(path):
    """
    Load an Ed25519 identity from a private key file.

    @raise KeyFileError: if the file is missing, too open, or not an Ed25519
        private key; the message names the file.
    """
    path = os.fspath(path)
    return Identity.fromPEM(_readPrivateKeyFile(path), name=path)


def saveIdentity(identity, path, force=False, comment=""):
    """
    Write C{identity} to C{path} (mode 0600) and its public key to
    C{path + ".pub"}.

    @raise KeyFileError: if C{path} exists and C{force} is false.
    """
    return _writeKeyFiles(
        path, identity.toPEM(), identity.publicKey.toText(), force=force, comment=comment
    )


def _writeKeyFiles(path, pem, publicText, force=False, comment=""):
    """
    Write a private key file (mode 0600, never over an existing file unless
    C{force}) and its C{.pub} line (UTF-8: C{publicText}, a space and
    C{comment} if there is one), for L{saveIdentity} and its RSA twin.

    @return: C{path}.
    @raise KeyFileError: naming the file, if C{comment} is not one line, if
        C{path} exists and C{force} is false, or if it cannot be written.
    """
    path = os.fspath(path)
    if any(c in comment for c in "\r\n\x00"):
        raise KeyFileError(f"{path}: a key comment is one line of text")
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyFileError(
            f"{path}: already exists; refusing to overwrite (use --force)"
        ) from None
    except OSError as e:
        raise KeyFileError(f"{path}: cannot write the key file ({e.strerror})") from None
    with os.fdopen(fd, "wb") as f:
        if os.name == "posix":
            os.fchmod(f.fileno(), 0o600)
        f.write(pem)
    line = publicText + (f" {comment}" if comment else "") + "\n"
    with open(path + ".pub", "w", encoding="utf-8") as f:
        f.write(line)
    return path


def loadOrCreateIdentity(path):
    """
    Load the identity at C{path}, creating it (0600) if the file does not exist.

    @return: a 2-tuple C{(identity, created)}.
    """
    return _loadOrCreate(path, Identity.generate, saveIdentity, loadIdentity)


def _loadOrCreate(path, generate, save, load):
    """
    L{loadOrCreateIdentity}, for the key type that C{generate}, C{save}
    and C{load} handle (and its RSA twin).
    """
    if not os.path.exists(os.fspath(path)):
        identity = generate()
        save(identity, path)
        return identity, True
    return load(path), False


def loadPublicKey(path):
    """
    Load a public key from a C{.pub} file (its first non-comment line).

    @raise KeyFileError: naming the file if it does not hold a public key.
    """
    return _loadPublicKeyFile(path, PublicKey.fromText, loadIdentity)


def _loadPublicKeyFile(path, fromText, loadPrivate):
    """
    Read a public key from a C{.pub} file, its first line that is neither
    blank nor a comment, parsed by C{fromText}; or, from a private key file,
    C{loadPrivate(path).publicKey}. For L{loadPublicKey} and its RSA twin.

    @raise KeyFileError: naming the file (and line) if it holds no valid key.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 16)
    except (OSError, ValueError) as e:
        raise KeyFileError(f"{path!r}: cannot read ({errorText(e)})") from None
    if b"PRIVATE KEY" in data:
        return loadPrivate(path).publicKey
    for number, line in enumerate(data.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith(b"#"):
            try:
                return fromText(line.split()[0])
            except Exception as e:
                raise KeyFileError(f"{path}:{number}: {e}") from None
    raise KeyFileError(f"{path}: holds no public key")


def parseAuthorizedKeys(text, name="<authorized keys>"):
    """
    Parse an authorized keys file: one public key per line in the text form,
    then an optional comment; blank lines and lines starting with C{#} are
    ignored.

    @return: a dict mapping each L{PublicKey} to its comment.
    @raise KeyFileError: naming the file and line of the first bad entry.
    """
    return _parseKeyLines(text, name, PublicKey)


def _parseKeyLines(text, name, keyClass):
    """
    Parse a keys file (authorized keys, trusted keys): one public key per
    line in the text form C{keyClass.fromText} reads, then an optional
    comment; blank lines and lines starting with C{#} are ignored.

    @return: a dict mapping each key to its comment (the last comment of a
        repeated key).
    @raise KeyFileError: naming the file and line of the first bad entry.
    """
    keys = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyText, comment = (line.split(None, 1) + [""])[:2]
        try:
            keys[keyClass.fromText(keyText)] = comment.strip()
        except PublicKeyFormatError as e:
            raise KeyFileError(f"{name}:{number}: {e}") from None
    return keys


def loadAuthorizedKeys(path):
    """
    Load an authorized keys file; see L{parseAuthorizedKeys}.
    """
    path = os.fspath(path)
    return parseAuthorizedKeys(_readKeyListFile(path, "authorized keys"), name=path)


def _readKeyListFile(path, what):
    """
    Read a keys file as UTF-8 text, for L{loadAuthorizedKeys} and its RSA
    twin.

    @param what: what the file is, for error messages (C{"authorized keys"}).
    @raise KeyFileError: naming the file if it is missing or unreadable.
    """
    path = os.fspath(path)
    try:
        with open(path, "r", encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such {what} file") from None
    except (OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
        raise KeyFileError(f"{path!r}: cannot read {what} ({errorText(e)})") from None


def identityForEndpoint(path, create, load, loadOrCreate, keygen):
    """
    The key file an endpoint names (a handshake plug-in's C{loadIdentity}).

    @param load: C{path -> identity}; C{loadOrCreate}: C{path -> (identity, created)}.
    @param keygen: the command that makes such a key, for the message.
    @raise KeyFileError: for a missing file (without C{create}), saying how
        to make one.
    """
    if create:
        return loadOrCreate(path)[0]
    if not os.path.lexists(path):
        raise KeyFileError(f"{path}: no such key file; create it with `{keygen} {path}`, "
                           "or add createKey=true to the endpoint string")
    return load(path)
