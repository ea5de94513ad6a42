# -*- test-case-name: sudp_test.udp.test_handshake -*-
"""
The sudp/1 handshake as pure functions, shared by the UDP engines and the
sframe stream handshake: choosing a suite, answering HANDSHAKE_INIT with a
signed HANDSHAKE_RESP, checking that answer, and the client's proof of
identity. No I/O, no timers, no state.
"""

import hmac

import hashlib

from sudp.errors import BadServerSignature, ClientNotAuthorized, HandshakeFailed, MalformedPacket, NoCommonSuite
from sudp.keys import PublicKey
from sudp.udp import packets as P
from sudp.udp.records import ClientAuth
from sudp.udp.keyschedule import (
    REFUSAL_SIGNATURE_LABEL,
    UDP_LABELS,
    Ephemeral,
    deriveKeys,
    handshakeTranscript,
)


def randomIndex(random):
    """
    @return: a random session index: 32 bits, never 0.
    """
    index = 0
    while not index:
        index = int.from_bytes(random(4), "big")
    return index


PRIORITIZED = "chacha20-poly1305"


def chooseSuite(policy, offered):
    """
    @param policy: the server's suites in preference order.
    @param offered: the suite ids the client offered, in its order.
    @return: the server's most preferred suite the client offered, or None;
        but ChaCha20-Poly1305 if the client offered it first and the server
        accepts it: a client puts it first when its CPU has no AES
        instructions (L{sudp.suites.defaultSuites}), where AES-GCM would be
        slow (OpenSSL's C{SSL_OP_PRIORITIZE_CHACHA} does the same).
    """
    for suite in policy:
        if suite.name == PRIORITIZED and offered and offered[0] == suite.suiteId:
            return suite
    for suite in policy:
        if suite.suiteId in offered:
            return suite
    return None


class Answer:
    """
    What the server derives when it answers a HANDSHAKE_INIT.

    @ivar resp: the encoded HANDSHAKE_RESP.
    @ivar keys: the epoch-0 L{sudp.udp.keyschedule.EpochKeys}.
    @ivar secret: the X25519 shared secret (for derivations of other layers).
    """

    __slots__ = ("resp", "keys", "secret", "suite", "serverKey")

    def __init__(self, resp, keys, secret, suite):
        self.resp = resp
        self.keys = keys
        self.secret = secret
        self.suite = suite
        self.serverKey = None  # (client) the pinned key that signed the RESP


def answerInit(identity, init, initBytes, suite, serverIndex, ephemeralSeed, labels=UDP_LABELS):
    """
    Build the signed HANDSHAKE_RESP to C{init}.

    @param ephemeralSeed: 32 random bytes for the server's ephemeral key.
    @param labels: the protocol's L{sudp.udp.keyschedule.HandshakeLabels}.
    @raise HandshakeFailed: if the client's ephemeral key is invalid.
    @return: an L{Answer}.
    """
    eph = Ephemeral(ephemeralSeed)
    secret = eph.exchange(init.ephemeral)
    resp = P.HandshakeResp(init.senderIndex, serverIndex, suite.suiteId, eph.public, b"", b"")
    th = handshakeTranscript(identity.publicKey.raw, initBytes, resp.prefix(), labels.transcript)
    keys = deriveKeys(0, th, secret, suite.keySize)
    resp.confirm = keys.confirmation()
    resp.signature = identity.sign(labels.server + th)
    return Answer(resp.encode(), keys, secret, suite)


def pinnedKeys(serverKeys):
    """
    @param serverKeys: a L{PublicKey}, or several (an iterable).
    @return: them as a tuple, without repeats, in the order given.
    """
    if isinstance(serverKeys, PublicKey):
        return (serverKeys,)
    keys = []
    for key in serverKeys:
        if key not in keys:
            keys.append(key)
    return tuple(keys)


def checkAnswer(serverKeys, initBytes, resp, ephemeral, offered, labels=UDP_LABELS):
    """
    Check a HANDSHAKE_RESP against the INIT we sent.

    @param serverKeys: the pinned L{PublicKey}, or several (a server
        rolling its key, L{pinnedKeys}): the transcript hash covers the
        server's key, so each is tried.
    @param offered: our suites, in our order.
    @param labels: the protocol's L{sudp.udp.keyschedule.HandshakeLabels}.
    @raise BadServerSignature: if the transcript is not signed by a pinned key.
    @raise HandshakeFailed: on a suite we did not offer, a bad ephemeral key or
        a key confirmation that does not match.
    @return: an L{Answer} (with C{resp} the decoded response and
        C{serverKey} the pinned key that signed it).
    """
    pinned = pinnedKeys(serverKeys)
    for serverKey in pinned:
        th = handshakeTranscript(serverKey.raw, initBytes, resp.prefix(), labels.transcript)
        if serverKey.verify(resp.signature, labels.server + th):
            break
    else:
        named = ", ".join(f"{k.toText()} ({k.fingerprint()})" for k in pinned)
        raise BadServerSignature(
            f"the server's handshake is not signed by {'any of ' if len(pinned) > 1 else ''}{named}: "
            f"wrong server key, someone in the middle, or the server now uses a new key (ask its operator "
            f"for it and add it to serverKey=)"
        )
    suite = next((s for s in offered if s.suiteId == resp.suite), None)
    if suite is None:  # signed, so the server itself is broken
        raise HandshakeFailed(f"the server chose suite {resp.suite}, which was not offered")
    secret = ephemeral.exchange(resp.ephemeral)
    keys = deriveKeys(0, th, secret, suite.keySize)
    if not hmac.compare_digest(keys.confirmation(), resp.confirm):
        keys.wipe()
        raise HandshakeFailed("the server's key confirmation does not match")
    answer = Answer(resp, keys, secret, suite)
    answer.serverKey = serverKey
    return answer


def _refusalMessage(serverPublic, initBytes, refused):
    return REFUSAL_SIGNATURE_LABEL + serverPublic + hashlib.sha256(bytes(initBytes)).digest() + refused.signed()


def refuseInit(identity, init, initBytes, suites):
    """
    Build the signed HANDSHAKE_REFUSED that tells a client none of its
    suites is accepted, and which are.

    @param suites: the server's suites, in its order of preference.
    @return: the encoded packet.
    """
    refused = P.HandshakeRefused(init.senderIndex, [s.suiteId for s in suites])
    refused.signature = identity.sign(_refusalMessage(identity.publicKey.raw, initBytes, refused))
    return refused.encode()


def checkRefusal(serverKeys, initBytes, refused, offered):
    """
    Check a HANDSHAKE_REFUSED against the INIT we sent.

    @param serverKeys: the pinned key, or several (L{pinnedKeys}).
    @param offered: our suites.
    @return: a L{NoCommonSuite} naming both sides' suites, if a pinned key
        signed the refusal of this INIT; None if none did (a forgery).
    """
    if not any(key.verify(refused.signature, _refusalMessage(key.raw, initBytes, refused))
               for key in pinnedKeys(serverKeys)):
        return None
    from sudp.suites import suiteName

    theirs = ", ".join(suiteName(i) for i in refused.suites)
    ours = ", ".join(s.name for s in offered)
    return NoCommonSuite(f"the server accepts none of the suites this client offered ({ours}); "
                         f"it accepts: {theirs}. Offer one of those (suites=...)")


def clientProof(identity, transcript, labels=UDP_LABELS):
    """
    @return: the 96-byte CLIENT_AUTH value: public key, then its signature
        of the handshake transcript.
    """
    return ClientAuth(identity.publicKey.raw, identity.sign(labels.client + transcript)).encode()


def checkClientProof(proof, transcript, authorized, labels=UDP_LABELS):
    """
    Check a client's proof of identity (or its absence).

    @param proof: the CLIENT_AUTH value, or None if the client sent none.
    @param authorized: None (any client) or a collection of L{PublicKey}.
    @return: the client's verified L{PublicKey}, or None if it sent none.
    @raise ClientNotAuthorized: with the reason, if the proof is bad, the key
        is not authorized, or a proof is required and missing.
    """
    if proof is None:
        if authorized is not None:
            raise ClientNotAuthorized("client authentication is required")
        return None
    try:
        auth = ClientAuth.decode(proof)
    except MalformedPacket:
        raise ClientNotAuthorized("malformed client proof") from None
    key = PublicKey(auth.publicKey)
    if not key.verify(auth.signature, labels.client + transcript):
        raise ClientNotAuthorized("bad client signature")
    if authorized is not None and key not in authorized:
        raise ClientNotAuthorized(f"key {key.fingerprint()} is not authorized")
    return key
