# -*- test-case-name: sudp_test.gossip6.test_stream -*-
"""
gossip6 on a stream (sframe): the two messages of the Gossip-6 spec length-prefixed
on the stream (as sframe's own key exchange), then sframe frames with the
AES-256-GCM stream suite, keyed from the X25519 secret through HKDF. ::

  client -> server   u16 length | 0x15 | m|s   (the client's m names the server's address)
  server -> client   u16 length | 0x16 | m|s   (the server's m names the client's)
  then CONFIRM and ACCEPT frames, as sframe.md section 7.1

The addresses are the stream's own (given to C{connected} as C{(host, port)}
tuples), or the configured localAddresses. The key exchanges implement
L{sudp.interfaces.IStreamKeyExchange}: a step carries a L{WorkNeeded}
where a proof of work has to be made; the connection's driver has it
solved in a thread and calls C{workDone(job, now)}.
"""

import os

from zope.interface import implementer

from sudp.errors import HandshakeFailed, MalformedPacket
from sudp.gossip6.checks import ReuseRecord, checkSigned, trustStore
from sudp.gossip6.config import Gossip6Config
from sudp.gossip6.keys import STREAM_TRANSCRIPT_LABEL, transcript
from sudp.gossip6.proof import ProofJob
from sudp.gossip6.udp import Gossip6Refused
from sudp.gossip6.wire import decodeStreamMessage, encodeStreamMessage
from sudp.interfaces import IStreamKeyExchange
from sudp.stream.handshake import (
    GCM_FRAMES, Established, KeyExchangeStep, Messages, StreamKeyExchange, frameKeys, framed)
from sudp.stream.rekey import keyChains
from sudp.work import WorkNeeded
from sudp.udp.keyschedule import Ephemeral
from sudp.gossip6.wire import G6_INIT, G6_RESP


MAX_MESSAGE = 1536  # type byte and m|s with RSA-4096 and an IPv6 peer: 1,140 bytes


def _established(th, secret, isClient, peerKey):
    clientHalf, serverHalf = frameKeys(th, secret)
    mine, theirs = (clientHalf, serverHalf) if isClient else (serverHalf, clientHalf)
    done = Established(GCM_FRAMES, th, GCM_FRAMES.cipher(mine, True), GCM_FRAMES.cipher(theirs, False))
    done.peerKey = peerKey
    done.writeKeys, done.readKeys = keyChains(GCM_FRAMES, th, secret, isClient)
    return done


class _KeyExchange(StreamKeyExchange):
    def __init__(self, identity, trusted, gossip6, random):
        self.identity = identity
        self.trusted = trusted
        self.gossip6 = gossip6
        self.random = random
        self.ours = gossip6.localAddresses
        self.peer = None
        self._messages = Messages(MAX_MESSAGE)

    def connected(self, localAddr, peerAddr):
        """
        Learn the stream's addresses (the Gossip-6 spec's address binding).
        """
        self.peer = peerAddr
        if not self.ours:
            self.ours = (localAddr,) if localAddr else ()
        if self.peer is None or not self.ours:
            raise HandshakeFailed("gossip6 binds each message to IP addresses: "
                                  "use it over TCP, or give localAddresses=")

    def _read(self, data, typeByte):
        message = self._messages.feed(data)
        if message is None:
            return None, None
        try:
            return message, decodeStreamMessage(typeByte, message)
        except MalformedPacket as e:
            raise HandshakeFailed(f"gossip6: bad handshake message: {e}") from None


@implementer(IStreamKeyExchange)
class Gossip6ClientKeyExchange(_KeyExchange):
    """
    The client's side: L{start} asks for the proof of our m, L{workDone}
    gives the INIT to write, L{receive} checks the server's m|s.
    """

    isClient = True

    def start(self, now):
        """
        @return: a step asking for the proof of work of our m.
        """
        self._ephemeral = Ephemeral(self.random(32))
        self._job = ProofJob(self.identity, self._ephemeral.public, self.peer, int(now), self.gossip6, self.random)
        return KeyExchangeStep(work=WorkNeeded(self._job))

    def workDone(self, job, now):
        """
        @return: a step sending the length-prefixed INIT.
        """
        self._init = encodeStreamMessage(G6_INIT, job.signed)
        return KeyExchangeStep(toSend=framed(self._init))

    def receive(self, data, now):
        """
        @return: a waiting step, then one with C{established} and C{rest}.
        @raise HandshakeFailed: (L{Gossip6Refused} for a broken rule).
        """
        message, signed = self._read(data, G6_RESP)
        if message is None:
            return KeyExchangeStep()
        reason, serverKey = checkSigned(signed, now, self.ours, self.trusted, self.gossip6)
        if reason:
            raise Gossip6Refused(reason)
        secret = self._ephemeral.exchange(signed.message.dhe)
        th = transcript(self._init, message, STREAM_TRANSCRIPT_LABEL)
        return KeyExchangeStep(established=_established(th, secret, True, serverKey), rest=self._messages.rest())


@implementer(IStreamKeyExchange)
class Gossip6ServerKeyExchange(_KeyExchange):
    """
    The server's side: L{receive} checks the client's m|s and asks for the
    proof of the answer; L{workDone} gives the answer and the keys.
    """

    def __init__(self, identity, trusted, gossip6, reuse, random):
        _KeyExchange.__init__(self, identity, trusted, gossip6, random)
        self.reuse = reuse

    def receive(self, data, now):
        """
        @return: a waiting step, then one asking for the proof of work of the answer.
        @raise HandshakeFailed: (L{Gossip6Refused} for a broken rule).
        """
        message, signed = self._read(data, G6_INIT)
        if message is None:
            return KeyExchangeStep()
        reason, self._clientKey = checkSigned(signed, now, self.ours, self.trusted, self.gossip6, self.reuse)
        if reason:
            raise Gossip6Refused(reason)
        ephemeral = Ephemeral(self.random(32))
        self._secret = ephemeral.exchange(signed.message.dhe)
        self._init = message
        job = ProofJob(self.identity, ephemeral.public, self.peer, int(now), self.gossip6, self.random)
        return KeyExchangeStep(work=WorkNeeded(job))

    def workDone(self, job, now):
        """
        @return: a step with C{established}, the answer in C{toSend}, and C{rest}.
        """
        resp = encodeStreamMessage(G6_RESP, job.signed)
        th = transcript(self._init, resp, STREAM_TRANSCRIPT_LABEL)
        done = _established(th, self._secret, False, self._clientKey)
        return KeyExchangeStep(framed(resp), established=done, rest=self._messages.rest())


class Gossip6StreamSetup:
    """
    What an C{sframe:} endpoint needs to run gossip6: the trusted keys, the
    options, and (a server) the record of proofs accepted, shared by all
    of its connections.
    """

    def __init__(self, trustedKeys, config=None, random=os.urandom):
        self.config = config or Gossip6Config()
        self.trusted = trustStore(trustedKeys)
        self.reuse = ReuseRecord(self.config.maxReuseRecords)
        self.random = random

    def keyExchange(self, identity, isClient):
        """
        @return: a fresh L{sudp.interfaces.IStreamKeyExchange} for one connection.
        """
        if isClient:
            return Gossip6ClientKeyExchange(identity, self.trusted, self.config, self.random)
        return Gossip6ServerKeyExchange(identity, self.trusted, self.config, self.reuse, self.random)
