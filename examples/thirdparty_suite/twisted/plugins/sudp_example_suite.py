"""
Example third-party suites for sudp, found through Twisted's plugin system:

  - C{aes-128-gcm-example} (wire id 200): a datagram cipher suite
    (L{sudp.interfaces.ICipherSuite}) for C{sudp:} endpoints;
  - C{aes-128-gcm-frames-example} (wire id 200 among stream suites): an
    sframe stream suite (L{sudp.interfaces.IStreamSuite}) for C{sframe:}
    endpoints, AES-128-GCM per frame on sframe's own framing.
"""

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from twisted.plugin import IPlugin
from zope.interface import implementer

from sudp.errors import MalformedPacket
from sudp.interfaces import IAEAD, ICipherSuite, IPacketCipher, IStreamSuite
from sudp.stream.frames import AEADFrameCipher

_NONCE = struct.Struct(">4xQ").pack


@implementer(IAEAD, IPacketCipher)
class _Keyed:
    def __init__(self, key):
        self._aead = AESGCM(bytes(key))

    def encrypt(self, nonce, plaintext, aad):
        return self._aead.encrypt(nonce, plaintext, aad)

    def decrypt(self, nonce, ciphertext, aad):
        try:
            return self._aead.decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise MalformedPacket("bad-tag") from None  # fail closed

    def seal(self, sequence, header, plaintext):
        return self.encrypt(_NONCE(sequence), plaintext, header)

    def open(self, sequence, header, ciphertext):
        return self.decrypt(_NONCE(sequence), ciphertext, header)


@implementer(IPlugin, ICipherSuite)
class AES128GCMExample:
    name = "aes-128-gcm-example"
    suiteId = 200
    keySize = 16
    nonceSize = 12
    tagSize = 16
    confidentialityLimit = 2**23  # RFC 9001 6.6, AES-GCM
    integrityLimit = 2**52

    def packetNonce(self, sequence, header):
        return _NONCE(sequence)

    def newAEAD(self, key):
        return _Keyed(key)

    def newCipher(self, key):
        return _Keyed(key)


aes128gcmExample = AES128GCMExample()


@implementer(IPlugin, IStreamSuite)
class AES128GCMFramesExample:
    name = "aes-128-gcm-frames-example"
    suiteId = 200
    keySize = 32

    def cipher(self, half, encrypt):
        # the first 16 bytes of this direction's key block, AES-128-GCM per frame
        return AEADFrameCipher(half[:16], encrypt, AESGCM)


aes128gcmFramesExample = AES128GCMFramesExample()
