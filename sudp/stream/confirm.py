# -*- test-case-name: sudp_test.stream.test_connection -*-
"""
The first frame each side sends under the new keys (docs/sframe.md section
7.1), as pure checks for L{sudp.stream.connection.StreamConnection}: the
client's CONFIRM (empty, or its proof of a key) and the server's answer
(ACCEPT, or CLOSE with why).
"""

from sudp.errors import ClientNotAuthorized, HandshakeFailed
from sudp.stream.events import SFrameClosed
from sudp.stream.frames import CODE_ACCEPT, CODE_CLOSE, CODE_CONFIRM
from sudp.udp.handshake import checkClientProof
from sudp.udp.keyschedule import SFRAME_LABELS


def checkConfirm(code, payload, verifiedKey, transcript, authorizedKeys):
    """
    The server's check of the client's first frame.

    @param verifiedKey: the client's key if the key exchange verified it
        already (that identity stays: no proof may replace it), else None.
    @return: the client's key, or None (anonymous).
    @raise ClientNotAuthorized: to refuse it with a CLOSE giving the reason.
    @raise HandshakeFailed: if it is not a CONFIRM at all.
    """
    if code != CODE_CONFIRM:
        raise HandshakeFailed("the client did not CONFIRM")
    if verifiedKey is None:
        return checkClientProof(payload or None, transcript, authorizedKeys, SFRAME_LABELS)
    if payload:
        raise ClientNotAuthorized("this handshake authenticated the client; a client proof is refused")
    return verifiedKey


def refusal(code, payload):
    """
    The client's reading of the server's first frame.

    @return: None for ACCEPT; else C{(SFrameClosed, the error for connect)}.
    """
    if code == CODE_ACCEPT:
        return None
    if code == CODE_CLOSE:
        text = payload.decode("utf-8", "replace")
        error = ClientNotAuthorized(f"the server refused this client: {text}")
        return SFrameClosed("not-authorized", text), error
    return SFrameClosed("protocol-error", "no ACCEPT from the server"), None
