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
