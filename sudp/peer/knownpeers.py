# -*- test-case-name: sudp_test.peer.test_knownpeers -*-
"""
The known-peers file (docs/peers.md, "Trust"), in the manner of OpenSSH's
known_hosts: one line per peer::

    HOST:PORT ed25519-KEY [comment]        (IPv6 hosts in brackets: [::1]:9000)

Blank lines and lines starting with C{#} are ignored. By default a peer is
trusted only with its pinned key; with trust on first use a new peer's key
is pinned (and appended to the file) the first time it proves one. A
different key for a pinned peer is always refused, loudly.
"""

import ipaddress
import os

from sudp.addresses import formatAddress, parseAddress
from sudp.errors import KeyFileError, SUDPError, errorText
from sudp.keys import PublicKey, PublicKeyFormatError


class PeerKeyChanged(SUDPError):
    """
    A pinned peer proved a different key: someone may be impersonating it
    (or its key was replaced; then edit the known-peers file).
    """


class PinLimitReached(SUDPError):
    """
    Trust on first use would pin one key more than the known peers may hold.
    """


MAX_PINS = 1024


class KnownPeers:
    """
    Pinned keys by peer address, backed by a file (or none).

    @ivar path: the file, or None (keys kept in memory only).
    @ivar tofu: pin the first key a peer the application added proves
        (L{pinFirstUse}).
    @ivar maxPins: the most keys trust on first use fills the known peers
        up to (the file and explicit pins may hold more).
    """

    def __init__(self, path=None, tofu=False, maxPins=MAX_PINS):
        self.path = path
        self.tofu = tofu
        self.maxPins = maxPins
        self._keys = {}
        if path is not None and os.path.exists(path):
            self._load(path)

    def _load(self, path):
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, ValueError) as e:
            raise KeyFileError(f"{path}: cannot read the known peers ({errorText(e)})") from None
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split(None, 2)
            try:
                addr = parseAddress(fields[0])
                key = PublicKey.fromText(fields[1] if len(fields) > 1 else "")
            except (ValueError, PublicKeyFormatError) as e:
                raise KeyFileError(f"{path}:{number}: not 'HOST:PORT ed25519-KEY [comment]' ({e})") from None
            self._keys[addr] = key

    def get(self, addr):
        """
        @return: the pinned L{PublicKey} of C{addr}, or None.
        """
        return self._keys.get(_canonical(addr))

    def pin(self, addr, key, comment=""):
        """
        Pin C{key} for C{addr} (in memory, and appended to the file).

        @raise PeerKeyChanged: if another key is pinned for C{addr}.
        """
        addr = _canonical(addr)
        known = self._keys.get(addr)
        if known is not None and known != key:
            raise PeerKeyChanged(
                f"THE KEY OF PEER {formatAddress(addr)} HAS CHANGED: pinned {known.fingerprint()}, proven "
                f"{key.fingerprint()}. Someone may be impersonating it. If the peer's key was replaced, "
                f"remove its line from {self.path or 'the known peers'}.")
        if known is None:
            self._keys[addr] = key
            if self.path is not None:
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(f"{formatAddress(addr)} {key.toText()}{' ' + comment if comment else ''}\n")

    def pinFirstUse(self, addr, key):
        """
        Trust on first use: pin C{key}, the first one C{addr} proved (the
        caller checks that the application added C{addr} and that C{tofu}
        is on).

        @raise PinLimitReached: if the known peers hold L{maxPins} keys.
        @raise PeerKeyChanged: if another key is pinned for C{addr}.
        """
        if self.get(addr) is None and len(self._keys) >= self.maxPins:
            raise PinLimitReached(
                f"not trusting {formatAddress(_canonical(addr))} on first use: the known peers hold "
                f"{len(self._keys)} keys, the most trust on first use fills them to (maxPins); pin the key "
                f"yourself, or remove stale lines from {self.path or 'the known peers'}")
        self.pin(addr, key, "trusted on first use")

    def keys(self):
        """
        @return: every pinned key.
        """
        return set(self._keys.values())

    def __len__(self):
        return len(self._keys)


def _canonical(addr):
    try:
        return str(ipaddress.ip_address(addr[0])), addr[1]
    except ValueError:
        return addr[0], addr[1]
