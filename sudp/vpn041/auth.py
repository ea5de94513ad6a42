# -*- test-case-name: sudp_test.vpn041.test_auth -*-
"""
The authentication plane's messages and the session ids (docs/vpn041.md,
"Authentication plane"). One JSON object per line, inside TLS::

  client -> server  {"type": "VpnAuthRequest", "version": 1, "udpPort": P,
                     "useEncryption": B, "authenticated": B}
  server -> client  {"type": "VpnAuthResponse", "version": 1, "ok": true,
                     "sessionId": 1-255, "sessionKey": base64 (32 bytes),
                     "udpPort": P, "useEncryption": B, "authenticated": B}
               or   {"type": "VpnAuthResponse", "version": 1, "ok": false, "error": "..."}

The session key is 32 random bytes from the server's CSPRNG; it exists only
inside TLS and in each side's session state. The session lasts as long as
the authentication connection: closing it ends the session and frees the id.
A gateway that ends a session first says why::

  server -> client  {"type": "VpnSessionEnd", "version": 1, "reason": "..."}
"""

import base64
import json
import secrets

from sudp.errors import SUDPError

VERSION = 1
MAX_LINE = 4096
MAX_SESSIONS = 255


class Vpn041AuthFailed(SUDPError):
    """
    Authentication failed: a TLS or certificate failure, a refusal by the
    gateway (C{reason} says why, e.g. that every session id is taken), or
    a malformed exchange. Spec 041: any crypto failure fails the authentication.
    """


class Vpn041Fatal(SUDPError):
    """
    A client's data plane failed to decrypt a datagram from the gateway:
    Spec 041 has the client stop hard. The session is over.
    """


def _line(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def _object(line, kind):
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: a line of 4,000 "["s
        raise Vpn041AuthFailed(f"the {kind} is not JSON") from None
    if not isinstance(obj, dict) or obj.get("type") != kind or obj.get("version") != VERSION:
        raise Vpn041AuthFailed(f"not a version-{VERSION} {kind}")
    return obj


def _field(obj, name, kind, check=None):
    value = obj.get(name)
    if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool) or (check and not check(value)):
        raise Vpn041AuthFailed(f"bad or missing {name!r}")
    return value


def encodeRequest(udpPort, useEncryption, authenticated):
    return _line({"type": "VpnAuthRequest", "version": VERSION, "udpPort": udpPort,
                  "useEncryption": useEncryption, "authenticated": authenticated})


def decodeRequest(line):
    """
    @return: C{(udpPort, useEncryption, authenticated)}.
    @raise Vpn041AuthFailed: on a malformed request.
    """
    obj = _object(line, "VpnAuthRequest")
    return (_field(obj, "udpPort", int, lambda p: 0 < p < 65536), _field(obj, "useEncryption", bool),
            _field(obj, "authenticated", bool))


def encodeResponse(sessionId, sessionKey, udpPort, useEncryption, authenticated):
    return _line({"type": "VpnAuthResponse", "version": VERSION, "ok": True, "sessionId": sessionId,
                  "sessionKey": base64.b64encode(sessionKey).decode(), "udpPort": udpPort,
                  "useEncryption": useEncryption, "authenticated": authenticated})


def encodeRefusal(reason):
    return _line({"type": "VpnAuthResponse", "version": VERSION, "ok": False, "error": reason})


def encodeSessionEnd(reason):
    """
    @return: the line a gateway sends, inside TLS, before it closes a
        session's authentication connection: why the session ended.
    """
    return _line({"type": "VpnSessionEnd", "version": VERSION, "reason": reason})


def decodeSessionEnd(line):
    """
    @return: the reason in a gateway's session-end line (at most 200
        characters), or None if the line is not one.
    """
    try:
        obj = _object(line, "VpnSessionEnd")
        return _field(obj, "reason", str)[:200]
    except Vpn041AuthFailed:
        return None


class Response:
    """
    A gateway's answer: the session id and key, and the data plane's settings.
    """

    def __init__(self, sessionId, sessionKey, udpPort, useEncryption, authenticated):
        self.sessionId = sessionId
        self.sessionKey = sessionKey
        self.udpPort = udpPort
        self.useEncryption = useEncryption
        self.authenticated = authenticated


def decodeResponse(line):
    """
    @return: a L{Response}.
    @raise Vpn041AuthFailed: on a refusal (its reason) or a malformed response.
    """
    obj = _object(line, "VpnAuthResponse")
    if obj.get("ok") is not True:
        raise Vpn041AuthFailed(f"the gateway refused: {obj.get('error', 'no reason given')}")
    try:
        key = base64.b64decode(_field(obj, "sessionKey", str), validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        key = b""
    if len(key) != 32:
        raise Vpn041AuthFailed("the session key is not 32 bytes")
    return Response(_field(obj, "sessionId", int, lambda i: 1 <= i <= MAX_SESSIONS), key,
                    _field(obj, "udpPort", int, lambda p: 0 < p < 65536), _field(obj, "useEncryption", bool),
                    _field(obj, "authenticated", bool))


class SessionIds:
    """
    The 255 session ids (0 is the server's), each drawn at random among the
    free ones, so that an id says nothing about how many sessions there are
    or which is next.
    """

    def __init__(self, randbelow=secrets.randbelow):
        """
        @param randbelow: C{randbelow(n)} returns a random integer in [0, n).
        """
        self._free = list(range(1, MAX_SESSIONS + 1))
        self._randbelow = randbelow

    def allocate(self):
        """
        @return: a free id drawn at random, or None when all 255 are taken.
        """
        if not self._free:
            return None
        free = self._free
        i = self._randbelow(len(free))
        free[i], free[-1] = free[-1], free[i]
        return free.pop()

    def release(self, sessionId):
        """
        Give C{sessionId} back.
        """
        self._free.append(sessionId)

    def __len__(self):
        return len(self._free)
