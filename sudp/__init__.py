# -*- test-case-name: sudp_test -*-
"""
sudp: secure messaging over UDP and TCP as a Twisted plugin suite.

An application gets an authenticated, encrypted, replay-proof channel by
changing an endpoint string (C{sudp:...}), and an operator runs a server with
C{twist sudp --port 9000}. See docs/index.md.
"""

__version__ = "0.1.0"

from sudp.errors import (  # noqa: E402
    ConfigurationError,
    KeyFileError,
    MalformedPacket,
    MessageTooLarge,
    SUDPError,
)
from sudp.keys import Identity, PublicKey  # noqa: E402

__all__ = [
    "__version__",
    "ConfigurationError",
    "Identity",
    "KeyFileError",
    "MalformedPacket",
    "MessageTooLarge",
    "PublicKey",
    "SUDPError",
]
