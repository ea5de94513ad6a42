# -*- test-case-name: sudp_test.test_parsers -*-
"""
The string forms of the C{sudp:} and C{sframe:} endpoints (the Twisted
plugins in C{twisted/plugins/sudp_plugins.py} call these). ::

  serverFromString(reactor, "sudp:9000:key=server.key")
  clientFromString(reactor, "sudp:host=127.0.0.1:port=9000:serverKey=ed25519-...")
  sframe:key=server.key:endpoint=tcp\\:9001
  sframe:serverKey=ed25519-...:endpoint=tcp\\:127.0.0.1\\:9001

Every option of L{sudp.udp.config.Config} (or, for sframe, of
L{sudp.stream.handshake.StreamConfig}) can be given by name
(C{maxSessions=500}, C{ordering=strict}, C{suites=chacha20-poly1305}, ...);
an unknown option or a bad value is a L{ConfigurationError} when the
string is parsed, not at the first packet. C{handshake=NAME} chooses a
handshake plug-in (L{sudp.handshakes}).

This is glue, above the transports: they never import it.
"""

from twisted.internet.endpoints import clientFromString, serverFromString

from sudp import options as options_
from sudp.errors import ConfigurationError, SUDPError
from sudp.handshakes import SUDP1Handshake, handshakeFromOptions, handshakeOptionNames
from sudp.keys import PublicKey, loadAuthorizedKeys, loadPublicKey
from sudp.stream.endpoints import SFrameClientEndpoint, SFrameServerEndpoint
from sudp.stream.handshake import StreamConfig, parseStreamSuites
from sudp.suites import parseSuiteList
from sudp.udp.config import OPTION_NAMES, Config
from sudp.udp.endpoints import SUDPClientEndpoint, SUDPServerEndpoint
from sudp.udp.handshake import pinnedKeys

SERVER_OPTIONS = frozenset({"port", "key", "interface", "authorizedKeys", "handshake", "createKey", "nextKey"})
CLIENT_OPTIONS = frozenset({"host", "port", "serverKey", "serverKeys", "key", "bindAddress", "timeout", "handshake",
                            "createKey"})
SFRAME_SERVER_OPTIONS = frozenset({"key", "endpoint", "authorizedKeys", "handshake", "createKey"})
SFRAME_CLIENT_OPTIONS = frozenset({"serverKey", "serverKeys", "endpoint", "key", "handshake", "createKey"})


def configFromOptions(options):
    """
    Build a L{Config} from string options (as in an endpoint string); the
    options used are removed from C{options}.

    @raise ConfigurationError: on a bad value.
    """
    return options_.configFromOptions(Config, options, parseSuiteList, "sudp")


def _streamConfig(options):
    return options_.configFromOptions(StreamConfig, options, parseStreamSuites, "sframe")


def _checkNames(options, own, what):
    options_.checkNames(options, own | handshakeOptionNames(), what)


def identityFromFile(keyFile, handshake, create=False):
    """
    @param handshake: the L{sudp.interfaces.IHandshake} the key is for;
        None: sudp/1's (an Ed25519 key).
    @param create: create the key file (0600, with its C{.pub}) if it does
        not exist (the endpoint option C{createKey=true}).
    @return: the identity in C{keyFile} the handshake signs with; None
        without a file.
    @raise sudp.errors.KeyFileError: for a missing file (without
        C{create}), saying how to make one.
    """
    if keyFile is None:
        return None
    return (handshake or SUDP1Handshake()).loadIdentity(keyFile, create)


def popCreateKey(options, what):
    """
    Take the C{createKey} option out of C{options}.

    @return: its value, False if absent.
    @raise ConfigurationError: if it is not a boolean.
    """
    text = options.pop("createKey", "false")
    try:
        return options_.convertBool(text)
    except ValueError:
        raise ConfigurationError(f"{what} option createKey={text!r}: give true or false") from None


def _portNumber(text, side):
    try:
        number = int(text)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise ConfigurationError(f"sudp {side}: port {text!r} is not a port number (0-65535)")
    return number


def clientTrust(options, what):
    """
    Take what a client string says about the server it trusts: another
    handshake and its options (reading C{serverKey=} its own way), or else
    sudp/1's pinned Ed25519 keys (L{serverKeysFromOptions}).

    @return: C{(the chosen handshake or None, pinned keys)}.
    """
    serverKey = options.get("serverKey")
    if options.get("handshake", "sudp") != "sudp":
        options.pop("serverKey", None)
    handshake = handshakeFromOptions(options, what, serverKey=serverKey)
    return handshake, (() if handshake is not None else serverKeysFromOptions(options, what))


def serverKeysFromOptions(options, what):
    """
    Take the pinned server keys out of a client string's options:
    C{serverKey=} (one key, C{ed25519-...} or a C{.pub} file, or several
    separated by commas, as while a server rolls its key) and
    C{serverKeys=FILE} (a known-hosts style file: one key per line,
    C{#} comments), either or both.

    @return: a tuple of L{PublicKey}, empty if neither option is given.
    @raise ConfigurationError: naming a key or file that does not load.
    """
    keys = []
    for text in filter(None, (t.strip() for t in options.pop("serverKey", "").split(","))):
        try:
            keys.append(PublicKey.fromText(text) if text.startswith("ed25519-") else loadPublicKey(text))
        except SUDPError as e:
            raise ConfigurationError(f"{what}: serverKey {text!r}: not a public key and not a key file: {e}") from None
    path = options.pop("serverKeys", None)
    if path is not None:
        try:
            found = loadAuthorizedKeys(path)
        except SUDPError as e:
            raise ConfigurationError(f"{what}: serverKeys={path}: {e}") from None
        if not found:
            raise ConfigurationError(f"{what}: serverKeys={path} holds no key")
        keys.extend(found)
    return pinnedKeys(keys)


# -- sudp: ------------------------------------------------------------------------


def parseServer(reactor, /, *args, **kwargs):
    """
    C{sudp:PORT:key=FILE[:interface=ADDR][:authorizedKeys=FILE][:nextKey=FILE][:option=value...]}

    C{nextKey}: while rolling the server's key, the key it will use next,
    announced to every client with proof (docs/keys.md, "Rolling a
    server's key").

    @return: a L{SUDPServerEndpoint}.
    """
    options = dict(kwargs)
    _checkNames(options, SERVER_OPTIONS | OPTION_NAMES, "sudp server")
    if len(args) > 1:
        raise ConfigurationError(f"sudp server: one positional argument (the port), got {args}")
    port = options.pop("port", args[0] if args else None)
    if port is None:
        raise ConfigurationError("sudp server: give a port, e.g. sudp:9000:key=server.key")
    keyFile = options.pop("key", None)
    if keyFile is None:
        raise ConfigurationError("sudp server: give the server key file, e.g. sudp:9000:key=server.key")
    interface = options.pop("interface", "")
    authorized = options.pop("authorizedKeys", None)
    nextKey = options.pop("nextKey", None)
    handshake = handshakeFromOptions(options, "sudp server", authorized=authorized)
    if nextKey is not None and handshake is not None:
        raise ConfigurationError(f"sudp server: nextKey= is for the sudp/1 handshake ({handshake.name} peers trust "
                                 "a key file)")
    create = popCreateKey(options, "sudp server")
    config = configFromOptions(options)
    options_.rejectGossip6Only(options, "sudp server")
    return SUDPServerEndpoint(
        reactor,
        _portNumber(port, "server"),
        identityFromFile(keyFile, handshake, create),
        config,
        interface=interface,
        authorizedKeys=None if authorized is None else loadAuthorizedKeys(authorized),
        handshake=handshake,
        nextIdentity=identityFromFile(nextKey, None),
    )


def parseClient(reactor, /, *args, **kwargs):
    """
    C{sudp:host=HOST:port=PORT:serverKey=KEY[,KEY...][:serverKeys=FILE][:key=FILE][:bindAddress=ADDR]
    [:option=value...]} (or C{sudp:HOST:PORT:serverKey=KEY}). Each C{KEY} is
    the text form C{ed25519-...} or a C{.pub} file; the server must prove
    one of them (L{serverKeysFromOptions}).

    @return: a L{SUDPClientEndpoint}.
    """
    options = dict(kwargs)
    _checkNames(options, CLIENT_OPTIONS | OPTION_NAMES, "sudp client")
    if len(args) > 2:
        raise ConfigurationError(f"sudp client: at most host and port positionally, got {args}")
    positional = list(args) + [None, None]
    host = options.pop("host", positional[0])
    port = options.pop("port", positional[1])
    if not host or not port:
        raise ConfigurationError("sudp client: give host and port, e.g. sudp:host=127.0.0.1:port=9000:serverKey=...")
    keyFile = options.pop("key", None)
    bindAddress = options.pop("bindAddress", "")
    timeout = options.pop("timeout", None)
    if timeout is not None:
        options["handshakeTimeout"] = timeout
    handshake, pinned = clientTrust(options, "sudp client")
    if handshake is None and not pinned:
        raise ConfigurationError("sudp client: give serverKey=ed25519-... (the server's public key) "
                                 "or serverKeys=FILE")
    if handshake is not None and keyFile is None:
        raise ConfigurationError(f"sudp client ({handshake.name}): give key=FILE, the client's RSA key "
                                 "(sudp keygen --type rsa)")
    create = popCreateKey(options, "sudp client")
    config = configFromOptions(options)
    options_.rejectGossip6Only(options, "sudp client")
    return SUDPClientEndpoint(
        reactor,
        host,
        _portNumber(port, "client"),
        pinned,
        config,
        identity=identityFromFile(keyFile, handshake, create),
        bindAddress=bindAddress,
        handshake=handshake,
    )


# -- sframe: ----------------------------------------------------------------------


def _inner(parse, reactor, description):
    """
    Parse the stream endpoint sframe wraps.

    @raise ConfigurationError: whatever Twisted's parser or the endpoint
        class refuses, named as this option's.
    """
    try:
        return parse(reactor, description)
    except Exception as e:  # any endpoint parser's error, ours or a third party's
        raise ConfigurationError(f"sframe: endpoint={description!r}: {type(e).__name__}: {e}") from e


def parseStreamServer(reactor, /, *args, **kwargs):
    """
    C{sframe:key=FILE:endpoint=INNER[:authorizedKeys=FILE][:option=value...]}

    @return: an L{SFrameServerEndpoint}.
    """
    options = dict(kwargs)
    _checkNames(options, SFRAME_SERVER_OPTIONS | options_.optionNames(StreamConfig), "sframe server")
    if args:
        raise ConfigurationError(f"sframe server: options only (key=, endpoint=), got {args}")
    keyFile = options.pop("key", None)
    inner = options.pop("endpoint", None)
    if not keyFile or not inner:
        raise ConfigurationError(r"sframe server: give key=FILE and endpoint=..., e.g. sframe:key=server.key:endpoint=tcp\:9001")
    authorized = options.pop("authorizedKeys", None)
    handshake = handshakeFromOptions(options, "sframe server", authorized=authorized)
    create = popCreateKey(options, "sframe server")
    config = _streamConfig(options)
    options_.rejectGossip6Only(options, "sframe server")
    return SFrameServerEndpoint(
        reactor, _inner(serverFromString, reactor, inner), identityFromFile(keyFile, handshake, create), config,
        authorizedKeys=None if authorized is None else loadAuthorizedKeys(authorized), handshake=handshake,
    )


def parseStreamClient(reactor, /, *args, **kwargs):
    """
    C{sframe:serverKey=KEY:endpoint=INNER[:key=FILE][:option=value...]}

    @return: an L{SFrameClientEndpoint}.
    """
    options = dict(kwargs)
    _checkNames(options, SFRAME_CLIENT_OPTIONS | options_.optionNames(StreamConfig), "sframe client")
    if args:
        raise ConfigurationError(f"sframe client: options only (serverKey=, endpoint=), got {args}")
    inner = options.pop("endpoint", None)
    keyFile = options.pop("key", None)
    handshake, pinned = clientTrust(options, "sframe client")
    if not inner or (handshake is None and not pinned):
        raise ConfigurationError(
            r"sframe client: give serverKey=ed25519-... and endpoint=..., e.g. endpoint=tcp\:127.0.0.1\:9001"
        )
    if handshake is not None and keyFile is None:
        raise ConfigurationError(f"sframe client ({handshake.name}): give key=FILE, the client's RSA key")
    create = popCreateKey(options, "sframe client")
    config = _streamConfig(options)
    options_.rejectGossip6Only(options, "sframe client")
    return SFrameClientEndpoint(
        reactor, _inner(clientFromString, reactor, inner), pinned, config,
        identity=identityFromFile(keyFile, handshake, create), handshake=handshake,
    )
