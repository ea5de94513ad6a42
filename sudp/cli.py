"""
The C{sudp} command (also C{python -m sudp}).

  - C{sudp keygen FILE [--force] [--comment TEXT]}: a new Ed25519 identity,
    private key to FILE (0600), public key to FILE.pub;
  - C{sudp pubkey FILE}: print the public key and its fingerprint, from a
    private key file or a C{.pub} file;
  - C{sudp connect ENDPOINT}: a netcat-like client (see L{sudp.netcat}).
"""

import argparse
import sys

from sudp.errors import SUDPError
from sudp.keys import Identity, loadPublicKey, saveIdentity


def _keygen(args, out):
    identity = Identity.generate()
    saveIdentity(identity, args.file, force=args.force, comment=args.comment)
    key = identity.publicKey
    out.write(f"wrote private key {args.file} (mode 0600) and public key {args.file}.pub\n")
    out.write(f"{key.toText()}\n{key.fingerprint()}\n")
    return 0


def _pubkey(args, out):
    key = loadPublicKey(args.file)
    out.write(f"{key.toText()}\n{key.fingerprint()}\n")
    return 0


def _connect(args, out):
    from sudp.netcat import runNetcat

    return runNetcat(args.endpoint, timeout=args.timeout)


def buildParser():
    """
    @return: the L{argparse.ArgumentParser} of the C{sudp} command.
    """
    parser = argparse.ArgumentParser(
        prog="sudp", description="sudp key tool and command-line client"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("keygen", help="create an Ed25519 identity (FILE and FILE.pub)")
    p.add_argument("file", metavar="FILE", help="private key file to write (mode 0600)")
    p.add_argument("--force", action="store_true", help="overwrite an existing FILE")
    p.add_argument("--comment", default="", help="comment for the .pub line")
    p.set_defaults(run=_keygen)

    p = sub.add_parser("pubkey", help="print the public key and fingerprint of FILE")
    p.add_argument("file", metavar="FILE", help="a private key file or a .pub file")
    p.set_defaults(run=_pubkey)

    p = sub.add_parser(
        "connect",
        help="netcat-like client: stdin lines out as messages, messages to stdout",
    )
    p.add_argument(
        "endpoint",
        metavar="ENDPOINT",
        help="client endpoint string, e.g. sudp:host=127.0.0.1:port=9000:serverKey=ed25519-...",
    )
    p.add_argument("--timeout", type=float, default=10.0, help="handshake timeout, seconds")
    p.set_defaults(run=_connect)
    return parser


def main(argv=None, out=None, err=None):
    """
    Run the C{sudp} command.

    @return: the exit status: 0 on success, 1 on an error sudp reports (the
        message goes to C{err}), 2 on a usage error.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    args = buildParser().parse_args(argv)
    try:
        return args.run(args, out)
    except SUDPError as e:
        err.write(f"sudp {args.command}: error: {e}\n")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
