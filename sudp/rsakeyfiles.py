# -*- test-case-name: sudp_test.gossip6.test_config, sudp_test.gossip6.test_handshake, sudp_test.test_tap -*-
"""
RSA key files for gossip6 (the rules of L{sudp.keyfiles}, as for Ed25519
keys): an identity's PKCS#8 PEM file and its C{.pub} line, public key
files, trusted keys files, and files of either kind of key.
"""

import os

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

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
from sudp.keys import ED25519_PREFIX, Identity, PublicKey
from sudp.rsaidentity import RSAIdentity
from sudp.rsakeys import KEY_PREFIXES, RSA_PREFIX, RSAPublicKey, keyKind, keyText, withArticle


def loadRSAIdentity(path):
    """
    Load an RSA identity from a private key file.

    @raise KeyFileError: if the file is missing, readable by group or others
        (the message says C{chmod 600}), empty, or not an acceptable RSA
        private key; the message names the file.
    """
    path = os.fspath(path)
    return RSAIdentity.fromPEM(readPrivateKeyFile(path), name=path)


def saveRSAIdentity(identity, path, force=False, comment=""):
    """
    Write C{identity} to C{path} (PKCS#8 PEM, mode 0600) and its public key
    to C{path + ".pub"} (UTF-8: the text form, a space and C{comment} if
    there is one).

    @return: C{path}.
    @raise KeyFileError: if C{path} exists and C{force} is false, if
        C{comment} is more than one line, or if the file cannot be written.
    """
    return writeKeyFiles(
        path, identity.toPEM(), identity.publicKey.toText(), force=force, comment=comment
    )


def loadOrCreateRSAIdentity(path):
    """
    Load the RSA identity at C{path}, creating one of L{DEFAULT_RSA_BITS}
    (0600) if the file does not exist.

    @return: a 2-tuple C{(identity, created)}.
    """
    return loadOrCreate(path, RSAIdentity.generate, saveRSAIdentity, loadRSAIdentity)


def loadRSAPublicKey(path):
    """
    Load an RSA public key from a C{.pub} file (its first line that is
    neither blank nor a C{#} comment), or the public half of an RSA private
    key file (with the checks of L{loadRSAIdentity}).

    @raise KeyFileError: naming the file (and the line) if it does not hold an
        acceptable RSA public key.
    """
    return loadPublicKeyFile(path, RSAPublicKey.fromText, loadRSAIdentity)


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
    return parseKeyLines(text, name, RSAPublicKey)


def loadTrustedKeys(path):
    """
    Load a trusted keys file (UTF-8); see L{parseTrustedKeys}.

    @raise KeyFileError: naming the file if it is missing, unreadable, not
        UTF-8, or has a bad line.
    """
    path = os.fspath(path)
    return parseTrustedKeys(readKeyListFile(path, "trusted keys"), name=path)


def loadAnyIdentity(path):
    """
    Load an Ed25519 or an RSA identity from a private key file, deciding by
    the type of the key in the PEM.

    @return: a L{sudp.keys.Identity} or an L{RSAIdentity}.
    @raise KeyFileError: as L{loadRSAIdentity}, naming the type found if it
        is neither.
    """
    path = os.fspath(path)
    key = loadPrivatePEM(readPrivateKeyFile(path), path, KEY_PREFIXES)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return Identity(key.private_bytes_raw())
    if isinstance(key, rsa.RSAPrivateKey):
        return RSAIdentity._fromPrivateKey(key, path)
    raise KeyFileError(
        f"{path}: holds {withArticle(keyKind(key))} private key, expected an Ed25519 or an RSA key"
    )


def parseAnyPublicKey(text):
    """
    Parse the text form of an Ed25519 (C{ed25519-...}) or an RSA (C{rsa-...})
    public key, deciding by the prefix.

    @return: a L{sudp.keys.PublicKey} or an L{RSAPublicKey}.
    @raise PublicKeyFormatError: if C{text} is neither.
    """
    stripped = keyText(text)
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
    return loadPublicKeyFile(path, parseAnyPublicKey, loadAnyIdentity)
