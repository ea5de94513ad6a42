# -*- test-case-name: sudp_test.test_cli -*-
"""
The C{sudp} command (also C{python -m sudp}).

  - C{sudp keygen [--type ed25519|rsa] [--bits N] FILE [--force]
    [--comment TEXT]}: a new identity, Ed25519 by default or RSA (C{--bits},
    default 3072, for gossip6), private key to FILE (0600), public key to
    FILE.pub;
  - C{sudp pubkey FILE}: print the public key (Ed25519 or RSA) and its
    fingerprint, from a private key file or a C{.pub} file;
  - C{sudp connect ENDPOINT [--wait SECONDS] [--max-wait SECONDS]}: a
    netcat-like client (see L{sudp.netcat});
  - C{sudp vpn041 ...}: the vpn041 client (see L{sudp.vpn041.netcat});
  - C{sudp --version}: print C{sudp VERSION}.

Exit statuses: L{EXIT_STATUS}.
"""

import argparse
import sys

from sudp import __version__
from sudp.errors import SUDPError
from sudp.keys import Identity, saveIdentity
from sudp.rsaidentity import RSAIdentity
from sudp.rsakeyfiles import loadAnyPublicKey, saveRSAIdentity
from sudp.rsakeys import DEFAULT_RSA_BITS, MAX_RSA_BITS, MIN_RSA_BITS, isRSAKeySize
from sudp.exits import (  # the statuses and waits its clients share, named here too
    DEFAULT_MAX_WAIT,
    DEFAULT_WAIT,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
)

EXIT_STATUS = """\
exit status:
  0    success; for connect: input ended and the quiet period passed, or the
       server closed the session
  1    an error: a connection or handshake that failed, a session lost, a key
       file that cannot be read or written; for vpn041: the gateway ended the
       session (its reason is printed)
  2    a usage error
  70   vpn041 only: a datagram from the gateway that does not decrypt
  130  interrupted (SIGINT, Ctrl-C)
  143  terminated (SIGTERM; connect and vpn041)"""
"""
The exit statuses of the C{sudp} command, as its C{--help} shows them.
"""

CONNECT_DESCRIPTION = """\
Connect to ENDPOINT, send each line of standard input as one message, and
print each message received on a line of its own.

At the end of input the session stays open for a quiet period, so that the
last messages sent can have their replies: it closes once no message has
arrived for --wait seconds (the wait starts again at each message received),
and at the latest --max-wait seconds after the end of input. --wait 0 closes
at once."""
"""
The description C{sudp connect --help} shows.
"""

CONNECT_EXIT_STATUS = """\
exit status:
  0    input ended and the quiet period passed, or the server closed the
       session
  1    the connection or its handshake failed, or the session was lost
  2    a usage error
  130  interrupted (SIGINT, Ctrl-C)
  143  terminated (SIGTERM)"""
"""
The exit statuses of C{sudp connect}, as its C{--help} shows them.
"""


def _keygen(args, out):
    if args.type == "rsa":
        identity = RSAIdentity.generate(args.bits or DEFAULT_RSA_BITS)
        saveRSAIdentity(identity, args.file, force=args.force, comment=args.comment)
    else:
        identity = Identity.generate()
        saveIdentity(identity, args.file, force=args.force, comment=args.comment)
    key = identity.publicKey
    out.write(f"wrote private key {args.file} (mode 0600) and public key {args.file}.pub\n")
    out.write(f"{key.toText()}\n{key.fingerprint()}\n")
    return 0


def _pubkey(args, out):
    key = loadAnyPublicKey(args.file)
    out.write(f"{key.toText()}\n{key.fingerprint()}\n")
    return 0


def _connect(args, out):
    from sudp.netcat import runNetcat

    return runNetcat(args.endpoint, timeout=args.timeout, wait=args.wait, maxWait=args.max_wait)


def _seconds(text):
    """
    A number of seconds, 0 or more: C{--wait} and C{--max-wait}.
    """
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{text}: seconds must be 0 or more")
    return seconds


def _rsaBits(text):
    """
    The C{--bits} argument: an RSA key size sudp makes.
    """
    try:
        bits = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of bits: {text!r}") from None
    if not isRSAKeySize(bits):
        raise argparse.ArgumentTypeError(
            f"{bits}: an RSA key is {MIN_RSA_BITS} to {MAX_RSA_BITS} bits, a multiple "
            f"of 256 (such as 2048, 3072, 4096)"
        )
    return bits


def buildParser():
    """
    @return: the C{argparse.ArgumentParser} of the C{sudp} command.
    """
    parser = argparse.ArgumentParser(
        prog="sudp",
        description="sudp key tool and command-line client",
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"sudp {__version__}",
        help="print sudp's version and exit",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "keygen",
        help="create an identity, Ed25519 or RSA (FILE and FILE.pub)",
        description="Create an identity: the private key in FILE (PKCS#8 PEM, mode "
        "0600) and the public key line in FILE.pub. Ed25519 by default; "
        "--type rsa makes an RSA key for gossip6.",
    )
    p.add_argument("file", metavar="FILE", help="private key file to write (mode 0600)")
    p.add_argument(
        "--type",
        choices=("ed25519", "rsa"),
        default="ed25519",
        help="key type (default: ed25519; rsa for gossip6)",
    )
    p.add_argument(
        "--bits",
        type=_rsaBits,
        default=None,
        metavar="N",
        help=f"RSA key size, {MIN_RSA_BITS} to {MAX_RSA_BITS}, a multiple of 256 "
        f"(default: {DEFAULT_RSA_BITS}; only with --type rsa)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing FILE")
    p.add_argument("--comment", default="", help="comment for the .pub line")
    p.set_defaults(run=_keygen)

    p = sub.add_parser(
        "pubkey", help="print the public key (Ed25519 or RSA) and fingerprint of FILE"
    )
    p.add_argument(
        "file", metavar="FILE", help="a private key file or a .pub file, Ed25519 or RSA"
    )
    p.set_defaults(run=_pubkey)

    p = sub.add_parser(
        "connect",
        help="netcat-like client: stdin lines out as messages, messages to stdout",
        description=CONNECT_DESCRIPTION,
        epilog=CONNECT_EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "endpoint",
        metavar="ENDPOINT",
        help="client endpoint string, e.g. sudp:host=127.0.0.1:port=9000:serverKey=ed25519-...",
    )
    p.add_argument(
        "--timeout", type=float, default=10.0, help="handshake timeout, seconds (default: 10)"
    )
    p.add_argument(
        "--wait",
        type=_seconds,
        default=DEFAULT_WAIT,
        metavar="SECONDS",
        help="after end of input, close once no message has arrived for SECONDS "
        f"(default: {DEFAULT_WAIT:g}; 0: close at once)",
    )
    p.add_argument(
        "--max-wait",
        type=_seconds,
        default=DEFAULT_MAX_WAIT,
        metavar="SECONDS",
        help="after end of input, close after SECONDS at the latest "
        f"(default: {DEFAULT_MAX_WAIT:g})",
    )
    p.set_defaults(run=_connect)

    p = sub.add_parser(
        "vpn041",
        help="vpn041 client: authenticate to a gateway, then stdin lines out as pushes, pushes to stdout",
        description="Authenticate to a vpn041 gateway over TLS, then send each line of standard input as "
        "one UDP push and print each push received. Exits 70 at once if a datagram from the gateway does "
        "not decrypt (spec 041's failure rule).",
    )
    p.add_argument("--appsettings", required=True, help="the flat appSettings JSON file")
    p.add_argument("--cert", required=True, help="this client's certificate (PEM)")
    p.add_argument("--key", required=True, help="this client's private key (PEM)")
    p.add_argument("--ca", required=True, help="the CA certificate that signs the gateway's (PEM)")
    p.add_argument("--host", default="127.0.0.1", help="the gateway's address (its certificate must name it)")
    p.add_argument("--auth-port", type=int, default=9443, help="the gateway's TLS authentication port")
    p.add_argument("--authenticated", action="store_true", help="the authenticated data plane (a tag per datagram)")
    p.add_argument("--max-nonces", type=int, default=None, metavar="N",
                   help="nonces the session's replay record holds (default: 1024)")
    p.add_argument("--nonce-lifetime", type=float, default=None, metavar="SECONDS",
                   help="seconds the replay record holds a nonce (default: 30)")
    p.set_defaults(run=_vpn041)
    return parser


def _vpn041(args, out):
    from sudp.vpn041.netcat import runClient
    from sudp.vpn041.settings import Limits, loadAppSettings

    settings = loadAppSettings(args.appsettings)
    given = {"maxNonces": args.max_nonces, "nonceLifetime": args.nonce_lifetime}
    limits = Limits(**{name: value for name, value in given.items() if value is not None})
    return runClient(args.host, args.auth_port, settings, args.cert, args.key, args.ca, args.authenticated,
                     limits=limits)


def main(argv=None, out=None, err=None):
    """
    Run the C{sudp} command.

    @return: the exit status (L{EXIT_STATUS}): 0 on success, 1 on an error
        sudp reports (the message goes to C{err}), 130 when interrupted; a
        usage error raises C{SystemExit(2)}.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    parser = buildParser()
    args = parser.parse_args(argv)
    if args.command == "keygen" and args.bits is not None and args.type != "rsa":
        parser.error("keygen: --bits applies only to --type rsa")
    if args.command == "connect" and args.wait > args.max_wait:
        parser.error(f"connect: --wait {args.wait:g} is longer than --max-wait {args.max_wait:g}")
    try:
        return args.run(args, out)
    except SUDPError as e:
        err.write(f"sudp {args.command}: error: {e}\n")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
