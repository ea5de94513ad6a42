# -*- test-case-name: sudp_test.test_keys -*-
"""
Key files on disk, for both kinds of key (Ed25519 in L{sudp.keys}, RSA in
L{sudp.rsakeys}): reading a private key file with its permissions checked,
writing a key pair (0600 and a C{.pub} line), public key files, key list
files (authorized keys, trusted keys), and the key file an endpoint names.
"""

import os
import stat

from cryptography.exceptions import InternalError, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from sudp.errors import KeyFileError, PublicKeyFormatError, errorText

def loadPrivatePEM(data, name, publicPrefixes):
    """
    Parse an unencrypted PEM private key of any type, for the C{fromPEM} of
    L{Identity} and of L{sudp.rsaidentity.RSAIdentity}.

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


def checkPrivateMode(path, fd=None):
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


def readPrivateKeyFile(path):
    """
    Read a private key file for L{loadIdentity} and its RSA twin, after
    checking its permissions (L{checkPrivateMode}).

    @return: the file's bytes (at most 64 KiB).
    @raise KeyFileError: naming the file if it is missing, too open,
        unreadable or empty.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:  # a directory fails here, before its mode is looked at
            checkPrivateMode(path, f.fileno())
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


def writeKeyFiles(path, pem, publicText, force=False, comment=""):
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


def loadOrCreate(path, generate, save, load):
    """
    L{loadOrCreateIdentity}, for the key type that C{generate}, C{save}
    and C{load} handle (and its RSA twin).
    """
    if not os.path.exists(os.fspath(path)):
        identity = generate()
        save(identity, path)
        return identity, True
    return load(path), False


def loadPublicKeyFile(path, fromText, loadPrivate):
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


def parseKeyLines(text, name, keyClass):
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


def readKeyListFile(path, what):
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
