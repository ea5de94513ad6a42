# -*- test-case-name: sudp_test.test_tap -*-
"""
C{twist sudp}: run a sudp/1 server. ::

  twist sudp --port 9000                      # echo server, key in ./sudp_server.key
  twist sudp --port 9000 --app mymod.factory  # serve any protocol factory
"""

import importlib
import os
import sys

from twisted.internet import protocol
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IProtocolFactory
from twisted.python import usage

from sudp.errors import SUDPError
from sudp.keys import loadAuthorizedKeys, loadOrCreateIdentity
from sudp.sdnotify import NotifyingService
from sudp.suites import parseSuiteList
from sudp.udp.config import Config
from sudp.startup import failFast
from sudp.tapservices import StreamListener, SUDPService, streamEndpointString
from sudp.udp.endpoints import SUDPServerEndpoint

DEFAULT_KEY = "sudp_server.key"
DEFAULT_RSA_KEY = "sudp_server_rsa.key"  # the default key of a gossip6 server (RSA-3072)


class Echo(protocol.Protocol):
    """
    Sends every message back to its sender: the default C{twist sudp} app.
    """

    def dataReceived(self, data):
        self.transport.write(data)


def loadApp(name):
    """
    Resolve C{module.attr} to a protocol factory: an C{IProtocolFactory}
    provider, a C{protocol.Protocol} subclass, or a callable returning a factory.

    @raise usage.UsageError: with a clear message if it is none of those.
    """
    moduleName, _, attr = name.rpartition(".")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as uvicorn and gunicorn do: apps next to you import
    if not moduleName:
        raise usage.UsageError(f"--app {name!r}: give module.attribute, e.g. mypackage.game.factory")
    try:
        obj = getattr(importlib.import_module(moduleName), attr)
    except ImportError as e:
        raise usage.UsageError(f"--app {name!r}: cannot import {moduleName}: {e}") from None
    except AttributeError:
        raise usage.UsageError(f"--app {name!r}: {moduleName} has no attribute {attr!r}") from None
    if IProtocolFactory.providedBy(obj):
        return obj
    if isinstance(obj, type) and issubclass(obj, protocol.Protocol):
        return protocol.Factory.forProtocol(obj)
    if callable(obj):
        made = obj()
        if IProtocolFactory.providedBy(made):
            return made
    raise usage.UsageError(
        f"--app {name!r}: not a protocol factory, a Protocol subclass, or a callable returning a factory"
    )


def printVersion():
    """
    Print sudp's version and Twisted's (C{sudp 0.1.0 (Twisted 25.5.0)}) and
    exit 0: the C{--version} of C{twist sudp} and C{twist vpn041}.
    """
    from twisted import __version__ as twistedVersion

    from sudp import __version__

    print(f"sudp {__version__} (Twisted {twistedVersion})")
    sys.exit(0)


class Options(usage.Options):
    synopsis = "[--port 9000] [--key FILE] [--app module.attr] [options]"
    longdesc = (
        "Run a sudp/1 server: authenticated, encrypted, replay-proof messages over UDP. "
        "Loads the server key (creating it, mode 0600, if missing) and prints the public "
        "key and a ready client endpoint string."
    )
    optParameters = [
        ["port", "p", 9000, "UDP port to listen on.", int],
        ["interface", "i", "", "Address to bind (default: all)."],
        ["key", "k", None, "Server private key file (created if missing; default: sudp_server.key, "
                           "sudp_server_rsa.key for gossip6, in --state-dir)."],
        ["state-dir", None, None, "Directory of the server's key when --key is not given (default: "
                                  "$STATE_DIRECTORY, as systemd's StateDirectory= sets it, else the current "
                                  "directory); created, mode 0700, if missing."],
        ["next-key", None, None, "While rolling the server's key: the key it will use next, announced "
                                 "with proof to every client (docs/keys.md, 'Rolling a server's key')."],
        ["app", "a", None, "Protocol factory to serve, as module.attr (default: echo)."],
        ["authorized-keys", None, None, "Require clients to prove a key listed in this file."],
        ["suites", None, None, "Cipher suites in preference order, comma-separated."],
        ["max-sessions", None, None, "Most sessions at once.", int],
        ["max-pending", None, None, "Most handshakes in progress at once.", int],
        ["idle-timeout", None, None, "Seconds without a packet before a session ends.", float],
        ["handshake", None, "sudp", "sudp (the sudp/1 handshake, Ed25519 key) or gossip6 "
                                    "(RSA keys, proof of work; needs --trusted-keys)."],
        ["trusted-keys", None, None, "gossip6: the clients' RSA public keys, one per line."],
        ["difficulty", None, None, "gossip6: proof-of-work difficulty in bits (default 6).", int],
        ["t-max", None, None, "gossip6: seconds a handshake message stays fresh (default 60).", float],
        ["local-addresses", None, None, "gossip6: IP:PORT,... clients may name as this server "
                                        "(behind NAT: the address they see)."],
    ]

    def __init__(self):
        usage.Options.__init__(self)
        self["listen"] = []

    def opt_listen(self, description):
        """
        Also serve the app on this stream endpoint, e.g.
        sframe:endpoint=tcp\\:9001 (an sframe: string without key= uses --key).
        May be given more than once.
        """
        self["listen"].append(description)

    def opt_version(self):
        """
        Print sudp's version (and Twisted's) and exit.
        """
        printVersion()

    def postOptions(self):
        if not 0 <= self["port"] <= 65535:
            raise usage.UsageError(f"--port {self['port']}: not a UDP port")
        self["factory"] = loadApp(self["app"]) if self["app"] else protocol.Factory.forProtocol(Echo)
        changes = {}
        for option, name in (("max-sessions", "maxSessions"), ("max-pending", "maxPendingHandshakes"),
                             ("idle-timeout", "idleTimeout")):
            if self[option] is not None:
                changes[name] = self[option]
        try:
            if self["suites"]:
                changes["suites"] = parseSuiteList(self["suites"])
            self["config"] = Config(**changes)
            self["gossip6"] = self._gossip6()
        except SUDPError as e:
            raise usage.UsageError(str(e)) from None
        if self["key"] is None:
            directory = self["state-dir"] or os.environ.get("STATE_DIRECTORY", "").split(":")[0] or "."
            self["state-dir"] = directory
            self["key"] = os.path.join(directory, DEFAULT_KEY if self["gossip6"] is None else DEFAULT_RSA_KEY)
        elif self["state-dir"]:
            raise usage.UsageError("give --key FILE or --state-dir DIR, not both")

    def _gossip6(self):
        """
        @return: the gossip6 options as endpoint-string options, or None.
        """
        if self["handshake"] not in ("sudp", "gossip6"):
            raise usage.UsageError(f"--handshake {self['handshake']!r}: sudp or gossip6")
        extra = [name for name in ("trusted-keys", "difficulty", "t-max", "local-addresses") if self[name] is not None]
        if self["handshake"] == "sudp":
            if extra:
                raise usage.UsageError(f"--{extra[0]} is a gossip6 option: add --handshake gossip6")
            return None
        if not self["trusted-keys"]:
            raise usage.UsageError("--handshake gossip6 needs --trusted-keys FILE (the clients' RSA keys)")
        if self["authorized-keys"] or self["suites"]:
            raise usage.UsageError("gossip6 authenticates with --trusted-keys and uses aes-256-gcm: "
                                   "no --authorized-keys or --suites")
        if self["next-key"]:
            raise usage.UsageError("--next-key is for the sudp/1 handshake (gossip6 peers trust --trusted-keys)")
        options = {"trustedKeys": self["trusted-keys"]}
        for name, option in (("difficulty", "difficulty"), ("t-max", "tMax"), ("local-addresses", "localAddresses")):
            if self[name] is not None:
                options[option] = str(self[name])
        return options


def serverWideOptions(options):
    """
    The C{twist sudp} options that hold for every listener, as C{sframe:}
    options: --authorized-keys (authorizedKeys), --suites (suites, the
    names sframe knows), --max-sessions (maxConnections), --idle-timeout
    (idleTimeout, with a keepalive a quarter of it if that is shorter than
    the default's). --max-pending has no stream counterpart: refused with
    --listen (sframe listeners bound handshakes by maxConnections and
    handshakeTimeout).

    @raise usage.UsageError: for an option that cannot apply to a stream.
    """
    from sudp.stream.handshake import STREAM_SUITES, StreamConfig

    wide = {}
    if options["authorized-keys"]:
        wide["authorizedKeys"] = options["authorized-keys"]
    if options["suites"]:
        names = [name.strip() for name in options["suites"].split(",") if name.strip()]
        missing = [name for name in names if name not in STREAM_SUITES]
        if missing:
            raise usage.UsageError(
                f"--suites {','.join(missing)}: not an sframe suite, so it cannot apply to --listen; sframe "
                f"knows {', '.join(sorted(STREAM_SUITES))} (or give the --listen string its own suites=)")
        wide["suites"] = ",".join(names)
    if options["max-sessions"] is not None:
        wide["maxConnections"] = str(options["max-sessions"])
    if options["idle-timeout"] is not None:
        idle = options["idle-timeout"]
        wide["idleTimeout"] = repr(float(idle))
        if StreamConfig().keepaliveInterval >= idle:
            wide["keepaliveInterval"] = repr(idle / 4)
    if options["max-pending"] is not None:
        raise usage.UsageError("--max-pending counts UDP handshakes only; with --listen, bound an sframe "
                               "listener by --max-sessions (its maxConnections) and its handshakeTimeout")
    return wide


def _makeStateDirectory(directory):
    """
    Create the state directory (mode 0700) if it is given and missing.

    @raise usage.UsageError: if it cannot be made.
    """
    if not directory or os.path.isdir(directory):
        return
    try:
        os.makedirs(directory, mode=0o700)
    except OSError as e:
        raise usage.UsageError(f"--state-dir {directory}: cannot create it: {e.strerror}") from None


@failFast
def makeService(options):
    """
    @return: the service C{twist sudp} runs; a bad key, authorized-keys,
        trusted-keys file or C{--listen} string ends the process with one
        line C{Error: ...} (L{sudp.startup.failFast}).
    """
    from twisted.internet import reactor

    gossip6 = options["gossip6"]
    try:
        _makeStateDirectory(options.get("state-dir"))
        nextIdentity = None
        if options.get("next-key"):
            from sudp.parsers import identityFromFile

            nextIdentity = identityFromFile(options["next-key"], None)  # a missing file: how to make it
        if gossip6 is None:
            identity, created = loadOrCreateIdentity(options["key"])
            handshake = None
        else:
            from sudp.handshakes import handshakeFromOptions
            from sudp.rsakeyfiles import loadOrCreateRSAIdentity

            identity, created = loadOrCreateRSAIdentity(options["key"])
            handshake = handshakeFromOptions(dict(gossip6, handshake="gossip6"), "twist sudp")
        authorized = (
            loadAuthorizedKeys(options["authorized-keys"]) if options["authorized-keys"] else None
        )
    except SUDPError as e:
        raise usage.UsageError(str(e)) from None
    if nextIdentity is not None and nextIdentity.publicKey == identity.publicKey:
        raise usage.UsageError(f"--next-key {options['next-key']} is the server's own key: give the new key")
    endpoint = SUDPServerEndpoint(
        reactor, options["port"], identity, options["config"], interface=options["interface"],
        authorizedKeys=authorized, handshake=handshake, nextIdentity=nextIdentity,
    )
    top = NotifyingService()  # READY=1 to systemd once every listener is up
    SUDPService(endpoint, options["factory"], identity, created, options["key"], options["interface"],
                gossip6=handshake is not None).setServiceParent(top)
    wide = serverWideOptions(options) if options["listen"] else {}
    for description in options["listen"]:
        full = streamEndpointString(description, options["key"], gossip6, wide)
        try:
            stream = serverFromString(reactor, full)
        except (SUDPError, ValueError, KeyError) as e:
            raise usage.UsageError(f"--listen {description!r}: {e}") from None
        StreamListener(description, stream, options["factory"], identity, gossip6=handshake is not None
                       ).setServiceParent(top)
    return top
