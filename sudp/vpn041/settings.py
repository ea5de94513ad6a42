# -*- test-case-name: sudp_test.vpn041.test_settings -*-
"""
The flat C{appSettings} file of spec 041 (docs/vpn041.md, "Configuration"). ::

  {"appSettings": {"useEncryption": true, "encryptionType": "Tls13"}}

C{useEncryption} applies only to the UDP data plane, C{encryptionType}
only to the authentication plane (which is always encrypted and signed:
TLS with certificates on both sides). Both keys are required; an unknown
key or a value of the wrong type is a L{ConfigurationError} at start.
"""

import json
from dataclasses import dataclass

from sudp.errors import ConfigurationError, errorText
from sudp.vpn041.nonces import DEFAULT_MAX_NONCES, DEFAULT_NONCE_LIFETIME

# encryptionType -> (lowest TLS version, highest, TLS 1.3 suites, TLS 1.2 ciphers)
ENCRYPTION_TYPES = {
    "Tls13": ("1.3", "1.3", "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256", None),
    "Tls13Aes256Gcm": ("1.3", "1.3", "TLS_AES_256_GCM_SHA384", None),
    "Tls13ChaCha20Poly1305": ("1.3", "1.3", "TLS_CHACHA20_POLY1305_SHA256", None),
    "Tls12Aes256Gcm": ("1.2", "1.2", None, "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"),
}


@dataclass(frozen=True)
class AppSettings:
    """
    @ivar useEncryption: encrypt the UDP payload (True) or send it as plaintext.
    @ivar encryptionType: the TLS configuration of the authentication plane,
        one of L{ENCRYPTION_TYPES}.
    """

    useEncryption: bool = True
    encryptionType: str = "Tls13"

    def __post_init__(self):
        if type(self.useEncryption) is not bool:
            raise ConfigurationError(f"appSettings: useEncryption must be true or false, not {self.useEncryption!r}")
        if not isinstance(self.encryptionType, str) or self.encryptionType not in ENCRYPTION_TYPES:
            raise ConfigurationError(f"appSettings: encryptionType must be one of {', '.join(ENCRYPTION_TYPES)}, "
                                     f"not {self.encryptionType!r}")


@dataclass(frozen=True)
class Limits:
    """
    The limits of a vpn041 gateway or client (docs/vpn041.md, "Limits"),
    beyond the spec's two settings. Times are seconds.

    @ivar maxNonces: the most nonces a session's record holds
        (L{sudp.vpn041.nonces.NonceRecord}).
    @ivar nonceLifetime: how long a session's record holds a nonce, and how
        far a datagram's time may lie from the receiver's session clock.
    @ivar handshakeTimeout: (gateway) how long a connection to the
        authentication port may take to complete TLS and send its request;
        it is then closed (C{auth-timeout}).
    @ivar maxConnections: (gateway) connections to the authentication port
        not yet authenticated, at once; 0 (the default) takes the process's
        descriptor limit less 64 and less 255 (the sessions' own
        connections). When full, a new connection takes the place of the
        oldest of the source holding the most, if that source holds at
        least two more than the newcomer's; else it is refused.
    @ivar maxConnectionsPerSource: (gateway) connections one source prefix
        may hold before it authenticates.
    @ivar handshakesPerSecond: (gateway) connections one source prefix may
        open per second on average, and C{handshakeBurst} at once.
    @ivar handshakePrefixV4: (gateway) the IPv4 prefix length a source is
        counted by (32: each address).
    @ivar handshakePrefixV6: (gateway) the same for IPv6 (64).
    """

    maxNonces: int = DEFAULT_MAX_NONCES
    nonceLifetime: float = DEFAULT_NONCE_LIFETIME
    handshakeTimeout: float = 10.0
    maxConnections: int = 0
    maxConnectionsPerSource: int = 16
    handshakesPerSecond: float = 20.0
    handshakeBurst: int = 20
    handshakePrefixV4: int = 32
    handshakePrefixV6: int = 64

    def __post_init__(self):
        if type(self.maxNonces) is not int or self.maxNonces < 1:
            raise ConfigurationError(f"vpn041: maxNonces must be a whole number of at least 1, not {self.maxNonces!r}")
        if not (isinstance(self.nonceLifetime, (int, float)) and 0 < self.nonceLifetime <= 3600):
            raise ConfigurationError(f"vpn041: nonceLifetime must be over 0 and at most 3600 seconds, "
                                     f"not {self.nonceLifetime!r}")
        if not (isinstance(self.handshakeTimeout, (int, float)) and self.handshakeTimeout > 0
                and isinstance(self.handshakesPerSecond, (int, float)) and self.handshakesPerSecond > 0):
            raise ConfigurationError("vpn041: handshakeTimeout and handshakesPerSecond must be positive")
        for name, least in (("maxConnections", 0), ("maxConnectionsPerSource", 1), ("handshakeBurst", 1)):
            value = getattr(self, name)
            if type(value) is not int or value < least:
                raise ConfigurationError(f"vpn041: {name} must be a whole number of at least {least}, not {value!r}")
        if not (8 <= self.handshakePrefixV4 <= 32 and 16 <= self.handshakePrefixV6 <= 128):
            raise ConfigurationError("vpn041: handshakePrefixV4 is 8-32 and handshakePrefixV6 16-128")


def parseAppSettings(text, name="<appsettings>"):
    """
    @return: the L{AppSettings} in C{text}, a JSON document.
    @raise ConfigurationError: naming C{name}, on anything else.
    """
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as e:  # RecursionError: absurdly nested
        raise ConfigurationError(f"{name}: not JSON ({e})") from None
    if not isinstance(document, dict) or set(document) != {"appSettings"}:
        raise ConfigurationError(f"{name}: expected one object, {{\"appSettings\": {{...}}}}")
    flat = document["appSettings"]
    if not isinstance(flat, dict):
        raise ConfigurationError(f"{name}: appSettings must be a flat object of settings")
    unknown = set(flat) - {"useEncryption", "encryptionType"}
    if unknown:
        raise ConfigurationError(f"{name}: unknown appSettings {', '.join(sorted(unknown))}; "
                                 "known: encryptionType, useEncryption")
    missing = {"useEncryption", "encryptionType"} - set(flat)
    if missing:
        raise ConfigurationError(f"{name}: appSettings must set {', '.join(sorted(missing))}")
    try:
        return AppSettings(flat["useEncryption"], flat["encryptionType"])
    except ConfigurationError as e:
        raise ConfigurationError(f"{name}: {e}") from None


def loadAppSettings(path):
    """
    @return: the L{AppSettings} of the file at C{path}.
    @raise ConfigurationError: naming the file.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, ValueError) as e:
        raise ConfigurationError(f"{path}: cannot read the appsettings file ({errorText(e)})") from None
    return parseAppSettings(text, name=path)
