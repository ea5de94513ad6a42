# -*- test-case-name: sudp_test.test_options -*-
"""
Endpoint-string options: text values turned into a frozen config dataclass,
by the types of its fields, for C{sudp:} and C{sframe:} alike.
"""

from dataclasses import fields

from sudp.errors import ConfigurationError

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def escapeValue(text):
    """
    @return: C{text} escaped as a value in an endpoint string: each C{:}
        and C{\\} behind a backslash (C{"::1"} is C{"\\:\\:1"}), so that
        Twisted's parser gives back C{text}.
    """
    return text.replace("\\", "\\\\").replace(":", "\\:")


def convertBool(text):
    """
    @return: the boolean an option's text names (1/0, true/false, yes/no,
        on/off, in any case).
    @raise ValueError: for other text.
    """
    lowered = text.lower()
    if lowered not in _TRUE + _FALSE:
        raise ValueError(text)
    return lowered in _TRUE


def _convert(kind, text):
    if kind in (bool, "bool"):
        return convertBool(text)
    if kind in (int, "int"):
        try:
            return int(text, 0)  # 0x... too
        except ValueError:
            return int(text)  # and decimal with leading zeros
    if kind in (float, "float"):
        return float(text)
    return text


def configFromOptions(cls, options, parseSuites, what):
    """
    Build a C{cls} from the options (as in an endpoint string) that name its
    fields; C{suites} is parsed with C{parseSuites}.

    @param options: option name to text; the options used are removed.
    @param what: the kind of endpoint, for error messages (C{"sudp"}).
    @raise ConfigurationError: on a value that does not convert or validate.
    """
    values = {}
    for f in fields(cls):
        if f.name not in options:
            continue
        text = options.pop(f.name)
        try:
            values[f.name] = parseSuites(text) if f.name == "suites" else _convert(f.type, text)
        except ValueError:
            kind = getattr(f.type, "__name__", f.type)
            raise ConfigurationError(f"{what} option {f.name}={text!r}: not a valid {kind}") from None
    return cls(**values)


def rejectUnknown(options, known, what):
    """
    @raise ConfigurationError: naming what is left in C{options} and what is
        known, if anything is left.
    """
    if options:
        raise ConfigurationError(
            f"unknown {what} option(s): {', '.join(sorted(options))}; known: {', '.join(sorted(known))}"
        )


def checkNames(options, known, what):
    """
    Refuse a mistyped option before any option is used, so that a typo is
    reported as itself (not as the option it should have been).

    @param known: every option name the endpoint takes.
    @raise ConfigurationError: naming the unknown options and the known.
    """
    rejectUnknown({name: options[name] for name in options if name not in known}, known, what)


def rejectGossip6Only(options, what):
    """
    After the handshake's options are taken: what is left belongs to a
    handshake that was not chosen.

    @raise ConfigurationError: naming them, if anything is left.
    """
    if options:
        raise ConfigurationError(
            f"{what}: option(s) {', '.join(sorted(options))} apply only with handshake=gossip6"
        )


def optionNames(cls):
    """
    @return: the names of C{cls}'s fields.
    """
    return {f.name for f in fields(cls)}
