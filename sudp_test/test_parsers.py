# -*- test-case-name: sudp_test.test_parsers -*-
"""
Tests for L{sudp.parsers}.

Hypothesis properties of the endpoint string parsers: C{sudp:} and
C{sframe:} strings with arbitrary options give an endpoint or a
L{sudp.errors.ConfigurationError} (or a L{sudp.errors.KeyFileError} for a
key file), and never listen or connect.
"""

import os
import stat

from hypothesis import given, strategies as st
from twisted.internet import reactor
from twisted.internet.endpoints import _parse as twistedParse, clientFromString, serverFromString
from twisted.internet.interfaces import IStreamClientEndpoint, IStreamServerEndpoint
from twisted.internet.testing import MemoryReactorClock
from twisted.trial import unittest

from sudp.errors import ConfigurationError, KeyFileError
from sudp.keys import Identity, loadIdentity, saveIdentity
from sudp.stream.endpoints import SFrameClientEndpoint, SFrameServerEndpoint
from sudp.stream.handshake import StreamConfig
from sudp.udp.config import Config
from sudp.udp.endpoints import SUDPClientEndpoint, SUDPServerEndpoint

from sudp_test.helpers import MODERATE
from sudp_test.keyfiles import TempDirMixin

class MissingKeyTests(unittest.TestCase):
    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.key = os.path.join(self.dir, "server.key")
        self.serverKey = Identity.generate().publicKey.toText()

    def strings(self, extra=""):
        key = self.key
        return [
            (serverFromString, f"sudp:9000:key={key}{extra}"),
            (serverFromString, f"sframe:key={key}{extra}:endpoint=tcp\\:9001"),
            (clientFromString, f"sudp:host=127.0.0.1:port=9000:serverKey={self.serverKey}:key={key}{extra}"),
            (clientFromString, f"sframe:serverKey={self.serverKey}:key={key}{extra}:endpoint=tcp\\:127.0.0.1\\:9"),
        ]

    def test_missingKeySaysHowToMakeIt(self):
        """
        A key path that does not exist names the file, the command that
        creates it and the option that would (the landed code said only
        "no such key file").
        """
        for parse, description in self.strings():
            e = self.assertRaises(KeyFileError, parse, reactor, description)
            self.assertIn(self.key, str(e))
            self.assertIn(f"sudp keygen {self.key}", str(e))
            self.assertIn("createKey=true", str(e))
            self.assertFalse(os.path.exists(self.key))

    def test_createKey(self):
        """
        createKey=true creates the key (mode 0600, with its .pub) the first
        time and loads the same key after.
        """
        for parse, description in self.strings(":createKey=true"):
            parse(reactor, description)
            self.assertEqual(stat.S_IMODE(os.stat(self.key).st_mode), 0o600)
            self.assertTrue(os.path.exists(self.key + ".pub"))
            first = loadIdentity(self.key).publicKey
            parse(reactor, description)
            self.assertEqual(loadIdentity(self.key).publicKey, first)
            os.remove(self.key)
            os.remove(self.key + ".pub")

    def test_createKeyValue(self):
        """
        createKey takes a boolean; anything else is a clear error.
        """
        parse, description = self.strings(":createKey=perhaps")[0]
        e = self.assertRaises(ConfigurationError, parse, reactor, description)
        self.assertIn("createKey", str(e))

class RecordingReactor(MemoryReactorClock):
    """
    A memory reactor that also records UDP listening: parsing an endpoint
    string must leave every list empty and schedule nothing.
    """

    def __init__(self):
        MemoryReactorClock.__init__(self)
        self.udpPorts = []

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        self.udpPorts.append((port, protocol, interface, maxPacketSize))
        raise AssertionError("an endpoint string parser listened on UDP")

    def opened(self):
        return (self.tcpServers + self.tcpClients + self.sslServers + self.sslClients
                + self.unixServers + self.unixClients + self.udpPorts + self.adoptedPorts
                + self.adoptedStreamConnections)

SUDP_OPTIONS = sorted(f.name for f in Config.__dataclass_fields__.values())

SFRAME_OPTIONS = sorted(f.name for f in StreamConfig.__dataclass_fields__.values())

ENDPOINT_OPTIONS = ["key", "authorizedKeys", "serverKey", "host", "port", "interface", "bindAddress",
                    "timeout", "endpoint"]

FIELD_TYPES = {**{f.name: f.type for f in Config.__dataclass_fields__.values()},
               **{f.name: f.type for f in StreamConfig.__dataclass_fields__.values()}}

KNOWN_OPTIONS = {
    "sudp-server": SUDP_OPTIONS + ["port", "key", "interface", "authorizedKeys"],
    "sudp-client": SUDP_OPTIONS + ["host", "port", "serverKey", "key", "bindAddress", "timeout"],
    "sframe-server": SFRAME_OPTIONS + ["key", "endpoint", "authorizedKeys"],
    "sframe-client": SFRAME_OPTIONS + ["serverKey", "endpoint", "key"],
}

# valid ranges of the integer options whose range is not 1 and up
VALID_INTS = {
    "maxDatagramSize": (200, 65507), "replayWindow": (1024, 2**20), "recvBatch": (1, 1024),
    "recvBuffer": (0, 2**30), "cookieRotation": (10, 10**6), "maxFramePayload": (128, 2**24),
    "rekeyAfterMessages": (1, 2**40), "rejectAfterMessages": (2**40 + 1, 2**64),
}

# option names that are Python parameter names of the parsers
PARAMETER_NAMES = ["reactor", "self", "args", "kwargs"]

PLAIN_VALUES = [
    "", "0", "1", "-1", "9000", "65535", "65536", "0x10", "0o17", "1_000", "00012", "9" * 40, " 7 ",
    "0.5", "1e309", "-1e309", "nan", "inf", "-inf", "-0", "1e-320", "true", "false", "yes", "off", "maybe",
    "window", "strict", "chacha20-poly1305", "aes-256-gcm,chacha20-poly1305", "xsalsa20-poly1305",
    "aes-256-ctr-sha256", "aes-256-ctr-sha256,aes-256-gcm", "chacha20-poly1305,chacha20-poly1305", ",",
    "no-such-suite", "127.0.0.1", "::1", "localhost", "ed25519-" + "A" * 43, "ed25519-" + "_" * 43,
    "\u00e9", "\x00",
]

INNER_ENDPOINTS = ["tcp:0", "tcp:9001", "tcp:127.0.0.1:9001", "tcp:host=127.0.0.1:port=9001",
                   "tcp:interface=127.0.0.1:port=0", "tcp6:0", "unix:/nonexistent/sudp.sock",
                   "unix:path=/nonexistent/sudp.sock", "tcp", "tcp:x", "bogus:1", "", "tcp:0:backlog=x"]

def escape(text):
    return text.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")

class EndpointStringTests(TempDirMixin, unittest.TestCase):
    """
    C{serverFromString}/C{clientFromString} on C{sudp:} and C{sframe:} with
    arbitrary option text.

    What may come out: an endpoint (providing the stream endpoint
    interface, with a valid configuration), a L{ConfigurationError}, or a
    L{KeyFileError} for a key file named by C{key=} or C{authorizedKeys=}
    (docs/keys.md: keys are loaded when the string is parsed and a bad
    file is a KeyFileError; docs/endpoints.md: a bad option name or value
    is a ConfigurationError). Nothing may listen, connect or schedule.

    One more outcome is accepted, decided from Twisted's code: the string
    goes through Twisted's own splitting (C{twisted.internet.endpoints._parse})
    before sudp sees anything, and that splitting fails on its own for two
    kinds of text: a trailing unescaped backslash (C{_tokenize} calls
    C{next()} past the end: C{RuntimeError} from a C{StopIteration} inside a
    generator) and an option name that is not ASCII (C{nativeString}:
    C{UnicodeEncodeError}, a ValueError). When C{_parse} itself raises on
    the string, the endpoint functions must raise the same type; sudp never
    ran. Everything after the split is sudp's: a C{TypeError} from an
    option named like a parser parameter, or any exception from the inner
    endpoint string of C{sframe:}, which sudp parses with Twisted itself, is
    not acceptable.
    """

    def setUp(self):
        TempDirMixin.setUp(self)
        identity = Identity.generate()
        self.keyFile = os.path.join(self.dir, "server.key")
        saveIdentity(identity, self.keyFile)
        openKey = self.writeFile(identity.toPEM(), 0o644)
        garbageKey = self.writeFile(b"not a key\n")
        auth = self.writeFile((Identity.generate().publicKey.toText() + " alice\n").encode(), 0o644)
        badAuth = self.writeFile(b"ed25519-bad\n", 0o644)
        empty = self.writeFile(b"", 0o600)
        self.pubText = identity.publicKey.toText()
        self.files = [self.keyFile, self.keyFile + ".pub", openKey, garbageKey, auth, badAuth, empty,
                      self.dir, os.path.join(self.dir, "missing")]
        # names no file can have: through a regular file, too long, with a NUL byte
        self.badPaths = [os.path.join(self.keyFile, "x"), "k" * 5000, "a\0b"]

    def values(self):
        """
        Any value: awkward plain ones, file names, random text and numbers.
        """
        return st.one_of(
            st.sampled_from(PLAIN_VALUES + [self.pubText]),
            st.sampled_from(self.files + self.badPaths),
            st.text(max_size=24),
            st.integers(-2**70, 2**70).map(str),
            st.floats().map(repr),
        )

    def typedValue(self, name, kind):
        """
        A value for option C{name} of an endpoint of C{kind}: mostly a valid
        one (so that parsing goes on to the next step and a bad value
        elsewhere is reached), often a wild one of the option's type,
        sometimes anything.
        """
        wild = None
        if name == "suites":
            known = (["chacha20-poly1305", "aes-256-gcm", "xchacha20-poly1305", "xsalsa20-poly1305"]
                     if kind.startswith("sudp") else ["aes-256-ctr-sha256", "chacha20-poly1305", "aes-256-gcm"])
            valid = st.lists(st.sampled_from(known), min_size=1, max_size=4, unique=True).map(",".join)
            wild = st.lists(st.sampled_from(known + ["bogus", " ", ""]), max_size=4).map(",".join)
        elif name in ("key", "authorizedKeys"):
            valid = st.just(self.keyFile if name == "key" else self.files[4])
            wild = st.sampled_from(self.files + self.badPaths)
        elif name == "serverKey":
            valid = st.sampled_from([self.pubText, self.keyFile + ".pub", self.keyFile])
            wild = st.sampled_from(self.files + self.badPaths)
        elif name == "endpoint":
            valid = st.sampled_from(INNER_ENDPOINTS[:7])
            wild = self.inner()
        elif name in ("host", "interface", "bindAddress"):
            valid = st.sampled_from(["127.0.0.1", "::1", "0.0.0.0", "localhost"])
            wild = st.sampled_from(["", "300.1.1.1", "a:b", "\u00e9"])
        elif name in ("port", "timeout"):
            valid = st.integers(1, 65535).map(str)
            wild = st.one_of(st.integers(-5, 70000).map(str), st.floats().map(repr))
        elif FIELD_TYPES.get(name) is bool:
            valid = st.sampled_from(["true", "false", "1", "0", "yes", "no", "on", "off", "True"])
        elif FIELD_TYPES.get(name) is int:
            low, high = VALID_INTS.get(name, (1, 100_000))
            valid = st.one_of(st.integers(low, high).map(str), st.integers(low, high).map(hex))
            wild = st.one_of(st.sampled_from([str(low - 1), str(high + 1), "0", "-1"]), st.integers(-10, 2**66).map(str))
        elif FIELD_TYPES.get(name) is float:
            valid = st.floats(0.01, 10_000).map(str)
            wild = st.one_of(st.floats().map(repr), st.sampled_from(["nan", "NaN", "inf", "-inf", "1e309", "0", "-0"]))
        else:
            valid = st.sampled_from(["window", "strict"])
        if wild is None:
            wild = valid
        return st.one_of(valid, valid, valid, wild, wild, self.values())

    def inner(self):
        """
        Inner endpoint strings for C{sframe:endpoint=...}.
        """
        return st.one_of(
            st.sampled_from(INNER_ENDPOINTS),
            st.builds(lambda p, rest: p + ":" + rest,
                      st.sampled_from(["tcp", "tcp6", "unix", "bogus", "sudp", "sframe"]), st.text(max_size=20)),
            st.text(max_size=20),
        )

    def description(self, data, kind):
        """
        Draw an endpoint string of C{kind} (C{"sudp-server"}, ...):
        C{prefix:}, the options of a plausible string (all of them, or
        some), then more options. Half the time the extra options are ones
        this kind knows, with values mostly of their type, all escaped, so
        that parsing gets past the option checks to the key files and the
        inner endpoint; the other half anything: any name (parameter names
        of the parsers included), any value, positional arguments, raw
        text, escaped or not.
        """
        prefix = kind.split("-")[0]
        known = data.draw(st.booleans(), label="known options only")
        base = {
            "sudp-server": [(None, "9000"), ("key", self.keyFile)],
            "sudp-client": [("host", "127.0.0.1"), ("port", "9000"), ("serverKey", self.pubText)],
            "sframe-server": [("key", self.keyFile), ("endpoint", "tcp:0")],
            "sframe-client": [("serverKey", self.pubText), ("endpoint", "tcp:127.0.0.1:9001")],
        }[kind]
        pieces = base if known or data.draw(st.booleans()) else [o for o in base if data.draw(st.booleans())]
        pieces = list(pieces)
        for _ in range(data.draw(st.integers(0, 4 if known else 5), label="extra options")):
            if known:
                name = data.draw(st.sampled_from(KNOWN_OPTIONS[kind]))
                pieces.append((name, data.draw(self.typedValue(name, kind))))
                continue
            what = data.draw(st.sampled_from(["option", "option", "option", "positional", "raw"]))
            if what == "option":
                name = data.draw(st.one_of(
                    st.sampled_from(SUDP_OPTIONS + SFRAME_OPTIONS + ENDPOINT_OPTIONS + PARAMETER_NAMES),
                    st.text(max_size=12)))
                pieces.append((name, data.draw(self.inner() if name == "endpoint" else self.values())))
            elif what == "positional":
                pieces.append((None, data.draw(st.text(max_size=12))))
            else:
                pieces.append(("raw", data.draw(st.text(max_size=30))))
        if not known and data.draw(st.booleans()):
            pieces = data.draw(st.permutations(pieces))
        escaped = known or data.draw(st.booleans())
        out = []
        for name, value in pieces:
            if name == "raw":
                out.append(value)
            elif name is None:
                out.append(escape(value) if escaped else value)
            else:
                out.append((escape(name) + "=" + escape(value)) if escaped else f"{name}={value}")
        return prefix + ":" + ":".join(out)

    def check(self, parse, description, interface):
        """
        Parse C{description}; see the class docstring for what may happen.
        """
        reactor = RecordingReactor()
        try:
            twistedParse(description)
        except Exception as e:  # Twisted's own splitting, before sudp
            self.assertRaises(type(e), parse, reactor, description)
            self.assertEqual(reactor.opened(), [])
            return None
        try:
            endpoint = parse(reactor, description)
        except (ConfigurationError, KeyFileError):
            endpoint = None
        self.assertEqual(reactor.opened(), [], description)
        self.assertEqual(reactor.getDelayedCalls(), [], description)
        if endpoint is None:
            return None
        self.assertTrue(interface.providedBy(endpoint), endpoint)
        config = endpoint._config
        if isinstance(config, Config):
            config.validate()
        else:
            self.assertIsInstance(config, StreamConfig)
            # the rules of StreamConfig: positive timeouts (NaN is not positive)
            self.assertTrue(config.frameTimeout > 0 and config.handshakeTimeout > 0, description)
            self.assertTrue(128 <= config.maxFramePayload <= 2**24)
        port = getattr(endpoint, "_port", None)
        if isinstance(port, int):
            self.assertTrue(0 <= port <= 65535)
        return endpoint

    @MODERATE
    @given(st.data())
    def test_sudpServer(self, data):
        """
        serverFromString(reactor, "sudp:" + options): a SUDPServerEndpoint
        with a valid Config, ConfigurationError or KeyFileError; nothing
        listens.
        """
        d = self.description(data, "sudp-server")
        endpoint = self.check(serverFromString, d, IStreamServerEndpoint)
        if endpoint is not None:
            self.assertIsInstance(endpoint, SUDPServerEndpoint)

    @MODERATE
    @given(st.data())
    def test_sudpClient(self, data):
        """
        clientFromString(reactor, "sudp:" + options): a SUDPClientEndpoint,
        ConfigurationError or KeyFileError; nothing connects.
        """
        d = self.description(data, "sudp-client")
        endpoint = self.check(clientFromString, d, IStreamClientEndpoint)
        if endpoint is not None:
            self.assertIsInstance(endpoint, SUDPClientEndpoint)

    @MODERATE
    @given(st.data())
    def test_sframeServer(self, data):
        """
        serverFromString(reactor, "sframe:" + options), with arbitrary inner
        endpoint strings: an SFrameServerEndpoint with a valid StreamConfig,
        ConfigurationError or KeyFileError; nothing listens.
        """
        d = self.description(data, "sframe-server")
        endpoint = self.check(serverFromString, d, IStreamServerEndpoint)
        if endpoint is not None:
            self.assertIsInstance(endpoint, SFrameServerEndpoint)

    @MODERATE
    @given(st.data())
    def test_sframeClient(self, data):
        """
        clientFromString(reactor, "sframe:" + options): an
        SFrameClientEndpoint, ConfigurationError or KeyFileError; nothing
        connects.
        """
        d = self.description(data, "sframe-client")
        endpoint = self.check(clientFromString, d, IStreamClientEndpoint)
        if endpoint is not None:
            self.assertIsInstance(endpoint, SFrameClientEndpoint)

    @MODERATE
    @given(st.sampled_from(["sudp", "sframe"]), st.booleans(), st.text(max_size=60))
    def test_anyText(self, prefix, server, text):
        """
        The prefix and any text at all after it: the same outcomes.
        """
        parse, interface = ((serverFromString, IStreamServerEndpoint) if server
                            else (clientFromString, IStreamClientEndpoint))
        self.check(parse, f"{prefix}:{text}", interface)

    def test_everyOptionEveryValue(self):
        """
        Every option name each kind of string knows (sudp's or sframe's
        options and the endpoint options) with each of a set of awkward
        values (numbers in every notation, NaN, infinities, booleans, suite
        lists, keys, paths, empty), on a valid base string of each of the
        four kinds: the same outcomes. Left out here, because their own
        C{test_regression_*} tests below pin them down: a NUL byte in a file
        name, an inner endpoint string, and NaN sframe timeouts.
        """
        bases = [
            (serverFromString, IStreamServerEndpoint, f"sudp:9000:key={escape(self.keyFile)}", SUDP_OPTIONS),
            (clientFromString, IStreamClientEndpoint,
             f"sudp:host=127.0.0.1:port=9000:serverKey={self.pubText}", SUDP_OPTIONS),
            (serverFromString, IStreamServerEndpoint,
             f"sframe:key={escape(self.keyFile)}:endpoint=tcp\\:0", SFRAME_OPTIONS),
            (clientFromString, IStreamClientEndpoint,
             f"sframe:serverKey={self.pubText}:endpoint=tcp\\:127.0.0.1\\:9001", SFRAME_OPTIONS),
        ]
        values = ["", "0", "-1", "65536", "0x10", "1_000", "9" * 40, "1e309", "nan", "-inf", "maybe",
                  "strict", "aes-256-gcm,chacha20-poly1305", "aes-256-ctr-sha256", ",", "\u00e9", "\x00",
                  self.pubText] + self.files[:4]
        for parse, interface, base, names in bases:
            for name in names + ENDPOINT_OPTIONS:
                for value in values:
                    if name == "endpoint":
                        continue  # test_regression_sframeInnerEndpoint
                    if value == "\x00" and name in ("key", "authorizedKeys", "serverKey"):
                        continue  # a NUL byte or an unreadable path: KeyFileError, tested on its own
                    if value == "nan" and name in ("frameTimeout", "handshakeTimeout"):
                        continue  # test_regression_sframeNaNTimeouts
                    self.check(parse, f"{base}:{escape(name)}={escape(value)}", interface)

    def test_regression_parameterNamesAsOptions(self):
        """
        Regression: an option named C{reactor} or C{self} (e.g.
        C{sudp:9000:key=server.key:reactor=x}) raises TypeError ("got
        multiple values for argument 'reactor'") from the plugin methods in
        twisted/plugins/sudp_plugins.py (and sudp's parseServer/parseClient,
        which take C{reactor} the same way), instead of ConfigurationError
        for an unknown option. Twisted split the string fine; it is sudp's
        signature that takes the option as its own parameter. Fixed: make
        C{reactor} (and C{self}) positional-only in the four plugin methods
        and in the parsers (C{def parseStreamServer(self, reactor, /, *args,
        **kwargs)}), so the option lands in kwargs and is refused by name.
        """
        for description, parse in [
            (f"sudp:9000:key={escape(self.keyFile)}:reactor=x", serverFromString),
            (f"sudp:9000:key={escape(self.keyFile)}:self=x", serverFromString),
            (f"sudp:host=127.0.0.1:port=9:serverKey={self.pubText}:reactor=x", clientFromString),
            (f"sframe:key={escape(self.keyFile)}:endpoint=tcp\\:0:reactor=x", serverFromString),
            (f"sframe:serverKey={self.pubText}:endpoint=tcp\\:127.0.0.1\\:9:self=x", clientFromString),
        ]:
            self.assertRaises(ConfigurationError, parse, RecordingReactor(), description)

    def test_regression_sframeInnerEndpoint(self):
        """
        Regression: sframe's parsers hand C{endpoint=INNER} to Twisted's
        serverFromString/clientFromString and let whatever they raise
        through: an unknown type (ValueError "Unknown endpoint type"), a
        bad port (ValueError from int()), missing arguments (TypeError from
        the endpoint class), an ssl: server without its certificate file
        (FileNotFoundError), a trailing backslash (RuntimeError), a
        non-ASCII option name (UnicodeEncodeError). These come after sudp
        saw the string, so they are sudp's to report as ConfigurationError
        (docs/endpoints.md: a bad value is a ConfigurationError when the
        string is parsed). Fixed: wrap the inner parse in
        C{try/except Exception as e: raise ConfigurationError(f"sframe:
        endpoint={inner!r}: {e}") from e} in both parsers.
        """
        for inner in ["bogus\\:1", "tcp\\:x", "tcp\\:0\\:backlog\\=x", "ssl\\:0\\:privateKey\\=/nonexistent",
                      "tcp\\:0\\:\u00e9\\=1", "tcp\\:0\\\\"]:
            self.assertRaises(ConfigurationError, serverFromString, RecordingReactor(),
                              f"sframe:key={escape(self.keyFile)}:endpoint={inner}")
        for inner in ["tcp", "tcp\\:host\\=a\\:port\\=x", "bogus\\:1"]:
            self.assertRaises(ConfigurationError, clientFromString, RecordingReactor(),
                              f"sframe:serverKey={self.pubText}:endpoint={inner}")

    def test_regression_sframeNaNTimeouts(self):
        """
        Regression: StreamConfig checks its timeouts with C{<= 0}, which NaN
        passes, so C{sframe:...:frameTimeout=nan} (or handshakeTimeout=nan)
        parses; the first callLater(nan) then fails with AssertionError in
        connectionMade or dataReceived (sudp's Config, which checks C{> 0},
        refuses NaN). Fixed: C{if not (self.frameTimeout > 0 and
        self.handshakeTimeout > 0): raise ConfigurationError(...)}.
        """
        for option in ("frameTimeout=nan", "handshakeTimeout=nan"):
            self.assertRaises(ConfigurationError, serverFromString, RecordingReactor(),
                              f"sframe:key={escape(self.keyFile)}:endpoint=tcp\\:0:{option}")
        self.assertRaises(ConfigurationError, StreamConfig, frameTimeout=float("nan"))
