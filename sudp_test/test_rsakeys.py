# -*- test-case-name: sudp_test.test_rsakeys -*-
"""
Tests for L{sudp.rsakeys}.
"""

import base64
import functools
import hashlib
import os
import shutil
import stat
import subprocess

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization as S
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from hypothesis import given, HealthCheck, settings, strategies as st
from twisted.trial import unittest

from sudp.errors import KeyFileError, PublicKeyFormatError
from sudp.keys import Identity, loadIdentity, PublicKey, saveIdentity
from sudp.rsaidentity import RSAIdentity
from sudp.rsakeyfiles import (
    loadAnyIdentity,
    loadAnyPublicKey,
    loadRSAIdentity,
    loadRSAPublicKey,
    loadTrustedKeys,
    parseAnyPublicKey,
    parseTrustedKeys,
    saveRSAIdentity,
)
from sudp.rsakeys import DEFAULT_RSA_BITS, RSA_PREFIX, RSAPublicKey

from sudp_test.helpers import A, SMALL, pkcs8
from sudp_test.keyfiles import (
    assertKeyListModel,
    assertKeyListTotal,
    B64URL,
    nearKeyTexts,
    TempDirMixin,
)

B = RSAIdentity.generate()

# printable ASCII: no line separators for str.splitlines
LINE_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)

PROPERTIES = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)

FEWER = settings(PROPERTIES, max_examples=80)

# A known answer made with the openssl command line (OpenSSL 3.0), not with
# sudp or the cryptography package:
#   openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out k.pem
#   printf 'sudp gossip6 known answer' > m
#   openssl dgst -sha3-256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 \
#       -sigopt rsa_mgf1_md:sha3-256 -sign k.pem -out sig m
#   openssl pkey -in k.pem -pubout -outform DER | openssl dgst -sha256 -binary | base64
KAT_MESSAGE = b"sudp gossip6 known answer"

KAT_KEY = (
    "rsa-MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAp3bV3A5YTodeaazu3gMrY7NuTM7-G0ydv"
    "LEEWb59ZXspjOfCca7qQQ4spIn_EXNWXxluzvOTHMepGZVxUySt2ksXazQoDWIFj0bfLVKHdWpVnFcXQqTl"
    "Msyayes-cD7I_Ub7VS0QZ8B-6kjRDVVjvYoad80I8HCaJ6EPukQEXd0mMAmv67NBQ4pYkkKM2UptQoco8Ei"
    "ofKAARbiwJyPll90LFszc71_iEn02iNFMefLCzzRoRviEOtqcqltOtPuLS7g505wKQSe73O_rbSPrpbN6Cp"
    "gi_AV9xHFs98-SLnlcV0btBoKP1jCyadDjtnL2CwuoaRXOPQjdTSkKPfOfgQIDAQAB"
)

KAT_SIGNATURE = base64.b64decode(
    "Gds4n9qIuPV72FyCPvqwDTs4uRwl765XlCV39cnYHPTydoVFMVeuSScIdJ3WYRIc61KqsULXXY7RNeMS+9xJ"
    "ksc5LMOslGV7Y7V5os+gNG4dfTtmy+yoUidPzGA6D2omww30hwtfCTs+NjKVB+T8NT+LPoAu5cH+yxnqpoOA"
    "Iy15FSK2rWaHuEVPsMy0f1NTC2HULBrG/DnxSwmtdUGsZ11ftYW9EV8WTJeyB5S2o/V63q+LTI6c8HGKPSVu"
    "I+1sHLkCJP31/QGmRrC6EJnt6r/e2bZ3Q712Ip+Y84iRlW8kc3AOYWhav3tj1nmtYpgDJirsAkV1jdl/Et4E"
    "C9ZqHg=="
)

KAT_FINGERPRINT = "SHA256:9hh0W5mi9veA/llnRtXfuGh3XXkNFPeQs0/STqWqOZk"

def pss(salt=32, mgf=hashes.SHA3_256):
    """
    @return: PSS padding with the given salt length and MGF1 digest (by
        default, those of sudp).
    """
    return padding.PSS(mgf=padding.MGF1(mgf()), salt_length=salt)

def b64url(data):
    """
    @return: the unpadded base64url of C{data}, as str.
    """
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

def spki(key):
    """
    @return: the DER SubjectPublicKeyInfo of a C{cryptography} public key.
    """
    return key.public_bytes(S.Encoding.DER, S.PublicFormat.SubjectPublicKeyInfo)

def numbersDER(bits, e=65537, even=False):
    """
    @return: the DER SubjectPublicKeyInfo of an RSA "public key" with a
        modulus of exactly C{bits} bits (odd unless C{even}) and exponent
        C{e}; not a product of two primes, which no check can tell.
    """
    n = (1 << (bits - 1)) | (0x5DEECE66D << 8) | (2 if even else 1)
    return spki(rsa.RSAPublicNumbers(e, n).public_key())

@functools.lru_cache(maxsize=None)
def oddPrivateKey(kind):
    """
    A private key sudp must refuse, made once: C{"small"} (1024 bits),
    C{"large"} (4352 bits), C{"e3"} (2048 bits, exponent 3).
    """
    if kind == "small":
        return rsa.generate_private_key(public_exponent=65537, key_size=1024)
    if kind == "large":
        return rsa.generate_private_key(public_exponent=65537, key_size=4352)
    return rsa.generate_private_key(public_exponent=3, key_size=2048)

class PublicKeyTextTests(unittest.TestCase):
    """
    L{RSAPublicKey}: the text form, DER, fingerprint, equality, and every
    way C{fromText} and C{fromDER} refuse a key.
    """

    def assertRefused(self, text, fragment):
        """
        C{RSAPublicKey.fromText(text)} raises L{PublicKeyFormatError} whose
        message contains C{fragment}.
        """
        e = self.assertRaises(PublicKeyFormatError, RSAPublicKey.fromText, text)
        self.assertIn(fragment, str(e))
        return e

    def test_textRoundTrip(self):
        """
        The text form is rsa- and the unpadded base64url of the DER
        SubjectPublicKeyInfo, one token with no ':' '=' '+' '/' or space; it
        parses back from str or bytes, with whitespace around it, to an
        equal key with an equal hash; str() is the text form.
        """
        key = A.publicKey
        text = key.toText()
        self.assertTrue(text.startswith(RSA_PREFIX))
        self.assertEqual(text, RSA_PREFIX + b64url(key.der))
        self.assertFalse(set(text) & set(":=+/ \t"))
        for form in (text, text.encode(), f"  {text}\n", f"{text}\r\n".encode(), bytearray(text, "ascii")):
            parsed = RSAPublicKey.fromText(form)
            self.assertEqual(parsed, key)
            self.assertEqual(hash(parsed), hash(key))
            self.assertEqual(parsed.toText(), text)
        self.assertEqual(str(key), text)
        self.assertEqual({key: 1}[RSAPublicKey.fromText(text)], 1)
        self.assertNotEqual(A.publicKey, B.publicKey)

    def test_derRoundTrip(self):
        """
        der is the DER SubjectPublicKeyInfo (what cryptography writes), and
        fromDER reads it back, from bytes, bytearray or memoryview.
        """
        key = A.publicKey
        self.assertEqual(key.der, spki(A._key.public_key()))
        self.assertEqual(key.bits, 3072)
        self.assertEqual(key.signatureSize, 384)
        for form in (key.der, bytearray(key.der), memoryview(key.der)):
            self.assertEqual(RSAPublicKey.fromDER(form), key)
        self.assertEqual(RSAPublicKey.fromDER(SMALL.publicKey.der).bits, 2048)

    def test_sizeBounds(self):
        """
        2048 and 4096 bits are accepted, 2047 and 4097 refused as too small
        and too large (from DER and from text alike).
        """
        for bits in (2048, 3000, 4096):
            self.assertEqual(RSAPublicKey.fromDER(numbersDER(bits)).bits, bits)
            self.assertEqual(RSAPublicKey.fromText(RSA_PREFIX + b64url(numbersDER(bits))).bits, bits)
        for bits, word in ((1024, "too small"), (2047, "too small"), (4097, "too large"),
                           (4600, "too large")):
            e = self.assertRaises(PublicKeyFormatError, RSAPublicKey.fromDER, numbersDER(bits))
            self.assertIn(f"{bits} bits is {word}", str(e))
            self.assertRefused(RSA_PREFIX + b64url(numbersDER(bits)), word)
        # far larger keys are refused on length, before parsing
        self.assertRaises(PublicKeyFormatError, RSAPublicKey.fromDER, numbersDER(8192))
        self.assertRefused(RSA_PREFIX + b64url(numbersDER(8192)), "too long")

    def test_exponent(self):
        """
        A public exponent other than 65537 is refused, naming it.
        """
        for e in (3, 17, 65539, 2**32 + 1):
            error = self.assertRaises(PublicKeyFormatError, RSAPublicKey.fromDER, numbersDER(2048, e))
            self.assertIn(f"exponent is {e};", str(error))
            self.assertRefused(RSA_PREFIX + b64url(numbersDER(2048, e)), "only 65537")
        self.assertRefused(RSA_PREFIX + b64url(numbersDER(2048, 2**1000 + 1)),
                           "exponent is a number of 1001 bits")

    def test_evenModulus(self):
        """
        An even modulus (no RSA key has one) is refused.
        """
        self.assertRefused(RSA_PREFIX + b64url(numbersDER(2048, even=True)), "modulus is even")

    def test_notRSA(self):
        """
        An Ed25519 or EC SubjectPublicKeyInfo is refused, naming its type;
        an Ed25519 text key is named as such.
        """
        edDER = spki(ed25519.Ed25519PrivateKey.generate().public_key())
        ecDER = spki(ec.generate_private_key(ec.SECP256R1()).public_key())
        for der, kind in ((edDER, "an Ed25519 public key"), (ecDER, "an EC (secp256r1) public key")):
            e = self.assertRaises(PublicKeyFormatError, RSAPublicKey.fromDER, der)
            self.assertIn(kind, str(e))
            self.assertIn("expected an RSA key", str(e))
            self.assertRefused(RSA_PREFIX + b64url(der), kind)
        self.assertRefused(Identity.generate().publicKey.toText(), "Ed25519 key, not an RSA key")
        e = self.assertRaises(PublicKeyFormatError, RSAPublicKey, ed25519.Ed25519PrivateKey.generate().public_key())
        self.assertIn("Ed25519", str(e))

    def test_nonCanonicalDER(self):
        """
        DER that is not exactly what toText would write is refused: trailing
        bytes, a non-minimal length, the PKCS#1 RSAPublicKey form, a
        truncation.
        """
        der = A.publicKey.der
        pkcs1 = A._key.public_key().public_bytes(S.Encoding.DER, S.PublicFormat.PKCS1)
        self.assertEqual(der[:2], b"\x30\x82")
        longLength = b"\x30\x83\x00" + der[2:]
        for bad in (der + b"\x00", der + der, longLength, pkcs1, der[:-1], der[:100], b"", b"\x30"):
            self.assertRaises(PublicKeyFormatError, RSAPublicKey.fromDER, bad)
            self.assertRaises(PublicKeyFormatError, RSAPublicKey.fromText, RSA_PREFIX + b64url(bad))
        e = self.assertRaises(PublicKeyFormatError, RSAPublicKey.fromDER, pkcs1)
        self.assertIn("canonical DER SubjectPublicKeyInfo", str(e))
        for bad in ("der", None, 3):
            self.assertRaises(PublicKeyFormatError, RSAPublicKey.fromDER, bad)

    def test_badText(self):
        """
        Every malformed text is refused with PublicKeyFormatError and a
        message saying what is wrong.
        """
        text = A.publicKey.toText()
        body = text[len(RSA_PREFIX):]
        self.assertEqual(len(body) % 4, 3)  # so the last character has spare bits
        decoded = base64.urlsafe_b64decode(body + "=")
        sameBytes = next(c for c in B64URL if c != body[-1]
                         and base64.urlsafe_b64decode(body[:-1] + c + "=") == decoded)
        cases = [
            ("", "got ''"),
            ("rsa-", "nothing after"),
            ("RSA-" + body, "got 'RSA'"),
            ("rsa:" + body, "expected an RSA public key of the form rsa-"),
            (text + "=", "character '='"),
            (text[:40] + "+" + text[41:], "character '+'"),
            (text[:40] + "/" + text[41:], "character '/'"),
            (text[:40] + " " + text[40:], "character ' '"),
            (text[:40] + "\u00e9" + text[41:], "character"),
            (text[:-2], "wrong length"),  # len % 4 == 1
            (text[:-1] + sameBytes, "not canonical base64url"),
            (text[:-3], "not a DER SubjectPublicKeyInfo"),
            (text + "AAAA", "not a DER SubjectPublicKeyInfo"),
            ("rsa-" + "A" * 2000, "too long"),
            ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ", "OpenSSH"),
            ("-----BEGIN PUBLIC KEY-----", "PEM"),
            (text.encode() + b"\xff", "ASCII"),
            (None, "is text"),
        ]
        for bad, fragment in cases:
            self.assertRefused(bad, fragment)

    def test_fingerprint(self):
        """
        The fingerprint is SHA256: and the unpadded base64 of SHA-256 over the
        DER; for the openssl-made key it is what openssl prints.
        """
        key = A.publicKey
        expected = "SHA256:" + base64.b64encode(hashlib.sha256(key.der).digest()).decode().rstrip("=")
        self.assertEqual(key.fingerprint(), expected)
        self.assertEqual(len(expected), 7 + 43)
        self.assertEqual(RSAPublicKey.fromText(KAT_KEY).fingerprint(), KAT_FINGERPRINT)

    def test_repr(self):
        """
        repr names the size and fingerprint (not the several hundred
        characters of the text form); an identity's repr shows no private
        material.
        """
        self.assertEqual(repr(A.publicKey), f"<RSAPublicKey 3072 bits {A.publicKey.fingerprint()}>")
        self.assertEqual(repr(A), f"<RSAIdentity 3072 bits {A.publicKey.fingerprint()}>")

    def test_notEqualToEd25519(self):
        """
        An RSA key never equals an Ed25519 key, and both can be keys of one dict.
        """
        ed = Identity.generate().publicKey
        self.assertNotEqual(A.publicKey, ed)
        self.assertNotEqual(ed, A.publicKey)
        self.assertEqual(len({A.publicKey: 1, ed: 2}), 2)

    def test_parseAnyPublicKey(self):
        """
        parseAnyPublicKey reads either text form by its prefix and refuses
        anything else with PublicKeyFormatError naming both forms.
        """
        ed = Identity.generate().publicKey
        self.assertEqual(parseAnyPublicKey(A.publicKey.toText()), A.publicKey)
        self.assertEqual(parseAnyPublicKey(f" {ed.toText()}\n".encode()), ed)
        e = self.assertRaises(PublicKeyFormatError, parseAnyPublicKey, "ssh-rsa AAAA")
        self.assertIn("ed25519-", str(e))
        self.assertIn("rsa-", str(e))
        for bad in (b"\xff", None, "rsa-AAAA", "ed25519-AAAA"):
            self.assertRaises(PublicKeyFormatError, parseAnyPublicKey, bad)

class SignatureTests(unittest.TestCase):
    """
    RSA-PSS with SHA3-256, MGF1-SHA3-256 and a 32-byte salt: what sign
    makes, what verify accepts, and known answers.
    """

    data = b"gossip6 transcript \x00\x01\x02"

    def test_signVerify(self):
        """
        A signature is signatureSize bytes, randomised (two differ), and both
        verify, as bytes, bytearray or memoryview.
        """
        first, second = A.sign(self.data), A.sign(self.data)
        self.assertEqual(len(first), A.signatureSize)
        self.assertEqual(A.signatureSize, 384)
        self.assertNotEqual(first, second)
        for sig in (first, second, bytearray(first), memoryview(first)):
            self.assertTrue(A.publicKey.verify(sig, self.data))
        self.assertTrue(SMALL.publicKey.verify(SMALL.sign(b""), b""))
        self.assertEqual(len(SMALL.sign(b"")), 256)

    def test_flippedBits(self):
        """
        Flipping any one bit of the data, or one bit in each byte of the
        signature, makes verify return False.
        """
        sig = A.sign(self.data)
        for i in range(len(self.data) * 8):
            data = bytearray(self.data)
            data[i // 8] ^= 1 << (i % 8)
            self.assertFalse(A.publicKey.verify(sig, bytes(data)), i)
        for i in range(len(sig)):
            bad = bytearray(sig)
            bad[i] ^= 1 << (i % 8)
            self.assertFalse(A.publicKey.verify(bytes(bad), self.data), i)
        self.assertFalse(A.publicKey.verify(sig, self.data + b"\x00"))
        self.assertFalse(A.publicKey.verify(sig, self.data[:-1]))

    def test_otherKey(self):
        """
        A signature by another key does not verify.
        """
        self.assertFalse(B.publicKey.verify(A.sign(self.data), self.data))
        self.assertFalse(A.publicKey.verify(B.sign(self.data), self.data))

    def test_wrongLengthOrType(self):
        """
        Signatures of the wrong length or type, and out-of-range ones (all
        0xff, the modulus itself), make verify return False, never raise.
        """
        sig = A.sign(self.data)
        n = A._key.public_key().public_numbers().n
        for bad in (b"", sig[:-1], sig + b"\x00", b"\x00" + sig, sig[:256], sig * 2,
                    b"\xff" * 384, n.to_bytes(384, "big"), bytes(384), None, "x" * 384, 384):
            self.assertIs(A.publicKey.verify(bad, self.data), False)
        self.assertIs(A.publicKey.verify(sig, "not bytes"), False)
        self.assertIs(A.publicKey.verify(SMALL.sign(self.data), self.data), False)

    def test_parametersPinned(self):
        """
        Signatures with any other PSS parameter (salt length 0, 20 or the
        maximum; MGF1 with SHA-256; SHA-256 as the hash) or with PKCS#1 v1.5
        do not verify: verify checks exactly sudp's parameters.
        """
        key = A._key
        others = [
            key.sign(self.data, pss(salt=0), hashes.SHA3_256()),
            key.sign(self.data, pss(salt=20), hashes.SHA3_256()),
            key.sign(self.data, pss(salt=padding.PSS.MAX_LENGTH), hashes.SHA3_256()),
            key.sign(self.data, pss(mgf=hashes.SHA256), hashes.SHA3_256()),
            key.sign(self.data, pss(mgf=hashes.SHA256), hashes.SHA256()),
            key.sign(self.data, padding.PKCS1v15(), hashes.SHA3_256()),
        ]
        for sig in others:
            self.assertFalse(A.publicKey.verify(sig, self.data))
        self.assertTrue(A.publicKey.verify(key.sign(self.data, pss(), hashes.SHA3_256()), self.data))

    def test_knownAnswerCryptography(self):
        """
        verify accepts a signature made with cryptography's PSS/SHA3-256 API
        directly (from the key loaded out of toPEM); and what sign signs is
        the digest SHA3-256(data): cryptography verifies it with Prehashed
        over hashlib.sha3_256(data), and not over any other digest (not
        SHA3-256 twice, not SHA-256).
        """
        key = S.load_pem_private_key(A.toPEM(), password=None)
        public = key.public_key()
        theirs = key.sign(self.data, pss(), hashes.SHA3_256())
        self.assertTrue(A.publicKey.verify(theirs, self.data))
        ours = A.sign(self.data)
        digest = hashlib.sha3_256(self.data).digest()
        public.verify(ours, digest, pss(), utils.Prehashed(hashes.SHA3_256()))  # no exception
        public.verify(ours, self.data, pss(), hashes.SHA3_256())
        for wrong in (hashlib.sha3_256(digest).digest(), hashlib.sha256(self.data).digest()):
            self.assertRaises(InvalidSignature, public.verify, ours, wrong, pss(),
                              utils.Prehashed(hashes.SHA3_256()))
        # a signature "of the digest" made by hashing the digest again is a different thing
        doubled = key.sign(digest, pss(), hashes.SHA3_256())
        self.assertFalse(A.publicKey.verify(doubled, self.data))

    def test_knownAnswerOpenSSL(self):
        """
        A signature made by the openssl command line (RSA-PSS, SHA3-256,
        MGF1-SHA3-256, salt 32) of a fixed message under a fixed key
        verifies; the key's text form round-trips exactly; any change to the
        message or signature fails.
        """
        key = RSAPublicKey.fromText(KAT_KEY)
        self.assertEqual(key.toText(), KAT_KEY)
        self.assertEqual(key.bits, 2048)
        self.assertTrue(key.verify(KAT_SIGNATURE, KAT_MESSAGE))
        self.assertTrue(key.verifyDigest(KAT_SIGNATURE, hashlib.sha3_256(KAT_MESSAGE).digest()))
        self.assertFalse(key.verify(KAT_SIGNATURE, KAT_MESSAGE + b"."))
        self.assertFalse(key.verify(KAT_SIGNATURE[:-1] + b"\x00", KAT_MESSAGE))

    def test_openSSLVerifiesOurs(self):
        """
        The openssl command line (if installed) verifies a signature sign
        made, with the parameters written out explicitly.
        """
        if shutil.which("openssl") is None:
            raise unittest.SkipTest("no openssl command")
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        paths = {n: os.path.join(directory, n) for n in ("pub.pem", "m", "sig")}
        with open(paths["pub.pem"], "wb") as f:
            f.write(A._key.public_key().public_bytes(S.Encoding.PEM, S.PublicFormat.SubjectPublicKeyInfo))
        with open(paths["m"], "wb") as f:
            f.write(self.data)
        with open(paths["sig"], "wb") as f:
            f.write(A.sign(self.data))
        result = subprocess.run(
            ["openssl", "dgst", "-sha3-256", "-sigopt", "rsa_padding_mode:pss",
             "-sigopt", "rsa_pss_saltlen:32", "-sigopt", "rsa_mgf1_md:sha3-256",
             "-verify", paths["pub.pem"], "-signature", paths["sig"], paths["m"]],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("Verified OK", result.stdout)

    def test_digestVariants(self):
        """
        signDigest(SHA3-256(m)) is a signature of m for verify, and
        verifyDigest(sign(m), SHA3-256(m)) holds: the two spellings of "sign
        the digest SHA3-256(m)" agree. A digest that is not 32 bytes is a
        ValueError for signDigest and False for verifyDigest.
        """
        digest = hashlib.sha3_256(self.data).digest()
        self.assertTrue(A.publicKey.verify(A.signDigest(digest), self.data))
        self.assertTrue(A.publicKey.verifyDigest(A.sign(self.data), digest))
        self.assertFalse(A.publicKey.verifyDigest(A.sign(self.data), hashlib.sha3_256(b"x").digest()))
        self.assertFalse(A.publicKey.verifyDigest(A.sign(self.data), digest[:-1]))
        self.assertFalse(A.publicKey.verifyDigest(b"short", digest))
        self.assertFalse(A.publicKey.verifyDigest(A.sign(self.data), self.data))
        for bad in (digest[:-1], digest + b"\x00", b"", "x" * 32, None):
            self.assertRaises(ValueError, A.signDigest, bad)

    @PROPERTIES
    @given(st.binary(max_size=600))
    def test_arbitrarySignature(self, signature):
        """
        verify on arbitrary bytes returns False (a bool) and never raises.
        """
        self.assertIs(A.publicKey.verify(signature, self.data), False)
        self.assertIs(A.publicKey.verify(signature.ljust(384, b"\x00")[:384], self.data), False)

class IdentityTests(unittest.TestCase):
    """
    L{RSAIdentity}: generate, toPEM/fromPEM and every way fromPEM refuses.
    """

    def assertBadPEM(self, data, fragment):
        """
        C{RSAIdentity.fromPEM(data, name)} raises L{KeyFileError} naming the
        file and containing C{fragment}.
        """
        e = self.assertRaises(KeyFileError, RSAIdentity.fromPEM, data, "/some/dir/peer.key")
        self.assertIn("/some/dir/peer.key", str(e))
        self.assertIn(fragment, str(e))

    def test_generate(self):
        """
        generate makes a 3072-bit key with exponent 65537 by default.
        """
        self.assertEqual(DEFAULT_RSA_BITS, 3072)
        self.assertEqual(A.bits, 3072)
        self.assertEqual(A._key.public_key().public_numbers().e, 65537)
        self.assertEqual(SMALL.bits, 2048)

    def test_generateBadSizes(self):
        """
        generate refuses sizes below 2048, above 4096, not a multiple of 256,
        and non-integers, with ValueError (before generating anything).
        """
        for bits in (0, 1024, 2047, 2049, 2000, 3000, 4097, 4352, 8192, -3072, "3072", 3072.0, True, None):
            self.assertRaises(ValueError, RSAIdentity.generate, bits)

    def test_pemRoundTrip(self):
        """
        toPEM is unencrypted PKCS#8; fromPEM (bytes or str) reads it back to
        an identity whose signatures the original key verifies; the older
        PKCS#1 'RSA PRIVATE KEY' form is read too.
        """
        pem = A.toPEM()
        self.assertTrue(pem.startswith(b"-----BEGIN PRIVATE KEY-----\n"))
        for form in (pem, pem.decode("ascii")):
            loaded = RSAIdentity.fromPEM(form)
            self.assertEqual(loaded.publicKey, A.publicKey)
            self.assertTrue(A.publicKey.verify(loaded.sign(b"m"), b"m"))
        pkcs1 = A._key.private_bytes(S.Encoding.PEM, S.PrivateFormat.TraditionalOpenSSL, S.NoEncryption())
        self.assertTrue(pkcs1.startswith(b"-----BEGIN RSA PRIVATE KEY-----"))
        self.assertEqual(RSAIdentity.fromPEM(pkcs1).publicKey, A.publicKey)

    def test_encrypted(self):
        """
        A passphrase-protected key (PKCS#8 or traditional) is refused as encrypted.
        """
        self.assertBadPEM(pkcs8(SMALL._key, S.BestAvailableEncryption(b"pw")), "encrypted")
        traditional = SMALL._key.private_bytes(S.Encoding.PEM, S.PrivateFormat.TraditionalOpenSSL,
                                               S.BestAvailableEncryption(b"pw"))
        self.assertBadPEM(traditional, "encrypted")

    def test_publicKeyGivenAsPrivate(self):
        """
        A PEM public key, a PKCS#1 public key, an rsa- line or an ed25519-
        line where a private key belongs is named a public key.
        """
        public = SMALL._key.public_key()
        self.assertBadPEM(public.public_bytes(S.Encoding.PEM, S.PublicFormat.SubjectPublicKeyInfo),
                          "holds a public key")
        self.assertBadPEM(public.public_bytes(S.Encoding.PEM, S.PublicFormat.PKCS1), "holds a public key")
        self.assertBadPEM((SMALL.publicKey.toText() + " me\n").encode(), "holds a public key (the .pub line)")
        self.assertBadPEM(Identity.generate().publicKey.toText().encode(), "holds a public key (the .pub line)")

    def test_notRSA(self):
        """
        An Ed25519 or EC private key is refused, naming the type found.
        """
        self.assertBadPEM(Identity.generate().toPEM(), "holds an Ed25519 private key, expected an RSA key")
        self.assertBadPEM(pkcs8(ec.generate_private_key(ec.SECP384R1())),
                          "holds an EC (secp384r1) private key, expected an RSA key")

    def test_sizeAndExponent(self):
        """
        RSA keys of 1024 or 4352 bits, or with exponent 3, are refused,
        saying why; RSAIdentity() refuses them with ValueError.
        """
        self.assertBadPEM(pkcs8(oddPrivateKey("small")), "1024 bits is too small")
        self.assertBadPEM(pkcs8(oddPrivateKey("large")), "4352 bits is too large")
        self.assertBadPEM(pkcs8(oddPrivateKey("e3")), "exponent is 3")
        for kind in ("small", "large", "e3"):
            self.assertRaises(ValueError, RSAIdentity, oddPrivateKey(kind))
        self.assertRaises(ValueError, RSAIdentity, ed25519.Ed25519PrivateKey.generate())
        self.assertRaises(ValueError, RSAIdentity, SMALL._key.public_key())

    def test_corrupt(self):
        """
        Truncated, garbage, empty-bodied and bit-flipped PEM is refused as
        not a valid private key, naming the file.
        """
        pem = SMALL.toPEM()
        lines = pem.split(b"\n")
        flipped = bytearray(pem)
        flipped[200] = ord("A") if flipped[200] != ord("A") else ord("B")
        for bad in (pem[: len(pem) // 2], pem[:-30], os.urandom(300), b"hello",
                    b"-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n",
                    b"\n".join(lines[:1] + lines[2:]), bytes(flipped)):
            self.assertBadPEM(bad, "not a valid private key")

class KeyFileTests(TempDirMixin, unittest.TestCase):
    """
    saveRSAIdentity, loadRSAIdentity, loadRSAPublicKey, loadAnyIdentity and
    loadAnyPublicKey: the files docs/keys.md describes.
    """

    def assertBadFile(self, data, fragment, load=loadRSAIdentity, mode=0o600):
        """
        C{load} on a file holding C{data} raises L{KeyFileError} naming the
        file and containing C{fragment}.
        """
        path = self.writeFile(data, mode)
        e = self.assertRaises(KeyFileError, load, path)
        self.assertIn(path, str(e))
        self.assertIn(fragment, str(e))

    def test_saveAndLoad(self):
        """
        saveRSAIdentity writes the key as PKCS#8 PEM with mode 0600 and a .pub
        line 'rsa-... comment'; every loader reads back the same key.
        """
        self.assertEqual(saveRSAIdentity(A, self.path, comment="alice laptop"), self.path)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        with open(self.path, "rb") as f:
            self.assertEqual(f.read(), A.toPEM())
        with open(self.path + ".pub", encoding="utf-8") as f:
            self.assertEqual(f.read(), A.publicKey.toText() + " alice laptop\n")
        self.assertEqual(loadRSAIdentity(self.path).publicKey, A.publicKey)
        loaded = loadAnyIdentity(self.path)
        self.assertIsInstance(loaded, RSAIdentity)
        self.assertEqual(loaded.publicKey, A.publicKey)
        for source in (self.path, self.path + ".pub"):
            self.assertEqual(loadRSAPublicKey(source), A.publicKey)
            self.assertEqual(loadAnyPublicKey(source), A.publicKey)
        self.assertEqual(loadTrustedKeys(self.path + ".pub"), {A.publicKey: "alice laptop"})

    def test_noComment(self):
        """
        Without a comment the .pub file is the text form and a newline.
        """
        saveRSAIdentity(SMALL, self.path)
        with open(self.path + ".pub", encoding="utf-8") as f:
            self.assertEqual(f.read(), SMALL.publicKey.toText() + "\n")

    def test_comments(self):
        """
        A non-ASCII comment is written as UTF-8 and reads back; a comment of
        more than one line is refused before anything is written.
        """
        saveRSAIdentity(SMALL, self.path, comment="Zo\u00eb's laptop")
        with open(self.path + ".pub", "rb") as f:
            self.assertIn("Zo\u00eb".encode("utf-8"), f.read())
        self.assertEqual(loadRSAPublicKey(self.path + ".pub"), SMALL.publicKey)
        self.assertEqual(loadTrustedKeys(self.path + ".pub"), {SMALL.publicKey: "Zo\u00eb's laptop"})
        for bad in ("two\nlines", "cr\rhere", "nul\x00"):
            path = self.freshPath(".key")
            e = self.assertRaises(KeyFileError, saveRSAIdentity, SMALL, path, comment=bad)
            self.assertIn(path, str(e))
            self.assertIn("one line", str(e))
            self.assertFalse(os.path.exists(path))
            self.assertFalse(os.path.exists(path + ".pub"))

    def test_refusesOverwrite(self):
        """
        Saving over an existing file (RSA or Ed25519) fails naming it and
        --force, leaving it untouched; force replaces it, still 0600.
        """
        saveRSAIdentity(A, self.path)
        e = self.assertRaises(KeyFileError, saveRSAIdentity, B, self.path)
        self.assertIn(self.path, str(e))
        self.assertIn("--force", str(e))
        self.assertEqual(loadRSAIdentity(self.path).publicKey, A.publicKey)
        os.chmod(self.path, 0o644)
        os.chmod(self.path, 0o600)
        saveRSAIdentity(B, self.path, force=True)
        self.assertEqual(loadRSAIdentity(self.path).publicKey, B.publicKey)
        self.assertEqual(loadRSAPublicKey(self.path + ".pub"), B.publicKey)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        edPath = self.freshPath(".key")
        saveIdentity(Identity.generate(), edPath)
        self.assertRaises(KeyFileError, saveRSAIdentity, A, edPath)
        self.assertIsInstance(loadAnyIdentity(edPath), Identity)

    def test_forceTightensMode(self):
        """
        Overwriting with force a file that was 0644 leaves it 0600.
        """
        with open(self.path, "wb") as f:
            f.write(b"old")
        os.chmod(self.path, 0o644)
        saveRSAIdentity(SMALL, self.path, force=True)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)

    def test_refusesOpenPermissions(self):
        """
        A private key readable by group or others (0640, 0604, 0644, 0660) is
        refused by loadRSAIdentity, loadAnyIdentity, loadRSAPublicKey and
        loadAnyPublicKey, naming the file and the chmod fix; 0600 and 0400
        are fine.
        """
        saveRSAIdentity(SMALL, self.path)
        for mode in (0o640, 0o604, 0o644, 0o660):
            os.chmod(self.path, mode)
            for load in (loadRSAIdentity, loadAnyIdentity, loadRSAPublicKey, loadAnyPublicKey):
                e = self.assertRaises(KeyFileError, load, self.path)
                self.assertIn(self.path, str(e))
                self.assertEqual(
                    str(e),
                    f"{self.path}: permissions {mode:04o} are too open; a private key must "
                    f"not be readable by group or others (run: chmod 600 {self.path})")
        os.chmod(self.path, 0o400)
        self.assertEqual(loadRSAIdentity(self.path).publicKey, SMALL.publicKey)

    def test_missingEmptyDirectory(self):
        """
        A missing file, an empty file and a directory are each named for
        what they are.
        """
        missing = os.path.join(self.dir, "missing.key")
        directory = os.path.join(self.dir, "sub")
        os.mkdir(directory, 0o700)
        for load in (loadRSAIdentity, loadAnyIdentity):
            e = self.assertRaises(KeyFileError, load, missing)
            self.assertIn(f"{missing}: no such key file", str(e))
            e = self.assertRaises(KeyFileError, load, directory)
            self.assertIn(f"{directory}: is a directory", str(e))
            self.assertBadFile(b"", "empty", load)
            self.assertBadFile(b"\n  \n", "empty", load)
        self.assertRaises(KeyFileError, loadRSAPublicKey, missing)
        self.assertRaises(KeyFileError, loadRSAIdentity, "a\0b")

    def test_badPrivateFiles(self):
        """
        Every fromPEM error reaches the file loaders with the path named:
        encrypted, public key, other types, out of range, corrupt.
        """
        cases = [
            (pkcs8(SMALL._key, S.BestAvailableEncryption(b"pw")), "encrypted"),
            (SMALL._key.public_key().public_bytes(S.Encoding.PEM, S.PublicFormat.SubjectPublicKeyInfo),
             "holds a public key"),
            (SMALL.publicKey.toText().encode(), "holds a public key"),
            (pkcs8(ec.generate_private_key(ec.SECP256R1())), "EC (secp256r1) private key"),
            (pkcs8(oddPrivateKey("small")), "too small"),
            (pkcs8(oddPrivateKey("e3")), "exponent is 3"),
            (SMALL.toPEM()[:500], "not a valid private key"),
            (os.urandom(100), "not a valid private key"),
        ]
        for data, fragment in cases:
            self.assertBadFile(data, fragment, loadRSAIdentity)
            self.assertBadFile(data, fragment, loadAnyIdentity)
        self.assertBadFile(Identity.generate().toPEM(), "holds an Ed25519 private key", loadRSAIdentity)
        self.assertBadFile(pkcs8(ec.generate_private_key(ec.SECP256R1())),
                           "expected an Ed25519 or an RSA key", loadAnyIdentity)

    def test_loadAnyIdentity(self):
        """
        loadAnyIdentity returns an Identity for an Ed25519 key file and an
        RSAIdentity for an RSA one; loadIdentity still refuses RSA.
        """
        ed = Identity.generate()
        edPath, rsaPath = self.freshPath(".key"), self.freshPath(".key")
        saveIdentity(ed, edPath)
        saveRSAIdentity(SMALL, rsaPath)
        loaded = loadAnyIdentity(edPath)
        self.assertIsInstance(loaded, Identity)
        self.assertEqual(loaded.publicKey, ed.publicKey)
        self.assertIsInstance(loadAnyIdentity(rsaPath), RSAIdentity)
        self.assertEqual(loadAnyPublicKey(edPath + ".pub"), ed.publicKey)
        self.assertEqual(loadAnyPublicKey(edPath), ed.publicKey)
        e = self.assertRaises(KeyFileError, loadIdentity, rsaPath)
        self.assertIn("expected an Ed25519 key", str(e))

    def test_pubFiles(self):
        """
        loadRSAPublicKey reads the first line that is neither blank nor a
        comment; a bad line is reported as FILE:LINE, an Ed25519 key is
        named as such, a file without a key says so.
        """
        text = SMALL.publicKey.toText()
        path = self.writeFile(f"# peer\n\n   \n{text} bob\n{A.publicKey.toText()}\n", 0o644, ".pub")
        self.assertEqual(loadRSAPublicKey(path), SMALL.publicKey)
        path = self.writeFile(f"# peer\r\n\r\n{text}\r\n", 0o644, ".pub")
        self.assertEqual(loadRSAPublicKey(path), SMALL.publicKey)
        self.assertBadFile(f"# x\n{text[:-3]}\n", ":2: ", loadRSAPublicKey)
        self.assertBadFile(Identity.generate().publicKey.toText() + "\n", ":1: ", loadRSAPublicKey)
        self.assertBadFile(Identity.generate().publicKey.toText() + "\n", "Ed25519", loadRSAPublicKey)
        self.assertBadFile("# only a comment\n\n", "holds no public key", loadRSAPublicKey)
        self.assertBadFile("ssh-rsa AAAA x\n", ":1: ", loadAnyPublicKey)

class TrustedKeysTests(TempDirMixin, unittest.TestCase):
    """
    parseTrustedKeys and loadTrustedKeys: one key per line, optional
    comment, blank and # lines ignored, FILE:LINE on errors.
    """

    def test_parse(self):
        """
        Comments after spaces or tabs, indented keys, blank lines, #
        lines (indented too) and CRLF line ends parse to a dict from key to
        stripped comment (internal spacing kept).
        """
        a, b, c = A.publicKey, B.publicKey, SMALL.publicKey
        text = (f"# gossip peers\r\n\r\n{a.toText()} alice  laptop \r\n"
                f"\t{b.toText()}\tbob\t(work)\r\n   # {c.toText()} commented out\r\n"
                f"{c.toText()}\r\n")
        keys = parseTrustedKeys(text)
        self.assertEqual(keys, {a: "alice  laptop", b: "bob\t(work)", c: ""})
        self.assertEqual(keys[RSAPublicKey.fromDER(a.der)], "alice  laptop")
        self.assertEqual(parseTrustedKeys(text.replace("\r\n", "\n")), keys)

    def test_emptyAndRepeated(self):
        """
        An empty file or one of comments is an empty dict; a repeated key
        keeps its last comment.
        """
        self.assertEqual(parseTrustedKeys(""), {})
        self.assertEqual(parseTrustedKeys("# nothing\n\n"), {})
        a = A.publicKey.toText()
        self.assertEqual(parseTrustedKeys(f"{a} first\n{a} second\n"), {A.publicKey: "second"})

    def test_badLine(self):
        """
        The first bad line is reported with the file name and its line
        number, whatever the line ends: a truncated key, an Ed25519 key, an
        OpenSSH key, a too-small RSA key.
        """
        good = A.publicKey.toText()
        smallKey = RSA_PREFIX + b64url(numbersDER(1024))
        for bad, fragment in ((good[:-3], "not a DER"), (Identity.generate().publicKey.toText(), "Ed25519"),
                              ("ssh-rsa AAAAB3Nza x", "OpenSSH"), (smallKey, "too small")):
            for newline in ("\n", "\r\n"):
                text = newline.join(["# peers", good + " a", "", bad + " b", "garbage"])
                e = self.assertRaises(KeyFileError, parseTrustedKeys, text, "peers.txt")
                self.assertIn("peers.txt:4: ", str(e))
                self.assertIn(fragment, str(e))
        e = self.assertRaises(KeyFileError, parseTrustedKeys, "junk")
        self.assertIn("<trusted keys>:1: ", str(e))

    def test_loadFile(self):
        """
        loadTrustedKeys reads a UTF-8 file and names it (with the line) on
        errors; a missing file, invalid UTF-8 and a bad path are
        KeyFileError naming the path.
        """
        path = self.writeFile(f"{A.publicKey.toText()} Zo\u00eb\n", 0o644)
        self.assertEqual(loadTrustedKeys(path), {A.publicKey: "Zo\u00eb"})
        bad = self.writeFile(f"{A.publicKey.toText()}\nnope\n", 0o644)
        e = self.assertRaises(KeyFileError, loadTrustedKeys, bad)
        self.assertIn(f"{bad}:2: ", str(e))
        missing = os.path.join(self.dir, "nothere")
        e = self.assertRaises(KeyFileError, loadTrustedKeys, missing)
        self.assertIn(f"{missing}: no such trusted keys file", str(e))
        latin = self.writeFile(b"# caf\xe9\n", 0o644)
        e = self.assertRaises(KeyFileError, loadTrustedKeys, latin)
        self.assertIn(latin, str(e))
        self.assertRaises(KeyFileError, loadTrustedKeys, "a\0b")
        self.assertRaises(KeyFileError, loadTrustedKeys, self.dir)

TEXT_KEYS = [A.publicKey, B.publicKey, SMALL.publicKey]

def nearKeys():
    """
    Texts close to a valid key: one character changed, removed or added;
    whitespace around it; upper-cased; or the prefix with random base64url.
    """
    valid = st.sampled_from([k.toText() for k in TEXT_KEYS])
    position = st.integers(0, 600)
    return nearKeyTexts(valid, position, position, position,
                        st.text(alphabet=B64URL, max_size=800).map(lambda t: RSA_PREFIX + t))

def mutateDER(der, position, value, cut):
    """
    C{der} with the byte at C{position} (modulo its length) set to C{value},
    then cut to C{cut} bytes if C{cut} is not None.
    """
    data = bytearray(der)
    data[position % len(data)] = value
    return bytes(data[:cut] if cut is not None else data)

class PropertyTests(TempDirMixin, unittest.TestCase):
    """
    Hypothesis properties: on any input, the parsers return a valid key (or
    dict of keys) or raise only their typed error.
    """

    @PROPERTIES
    @given(st.one_of(st.text(max_size=100), st.binary(max_size=100), nearKeys(),
                     nearKeys().map(lambda t: t.encode("utf-8"))))
    def test_fromTextArbitrary(self, text):
        """
        RSAPublicKey.fromText on any str or bytes: a key whose text form is
        the input without surrounding whitespace (there is one text form),
        or PublicKeyFormatError.
        """
        try:
            key = RSAPublicKey.fromText(text)
        except PublicKeyFormatError:
            return
        plain = text.decode("ascii") if isinstance(text, bytes) else text
        self.assertEqual(key.toText(), plain.strip())
        self.assertTrue(2048 <= key.bits <= 4096)

    @PROPERTIES
    @given(st.one_of(
        st.binary(max_size=700),
        st.tuples(st.sampled_from([k.der for k in TEXT_KEYS]), st.integers(0, 600),
                  st.integers(0, 255), st.one_of(st.none(), st.integers(0, 600))).map(
            lambda t: mutateDER(*t)),
    ))
    def test_fromDERArbitrary(self, der):
        """
        RSAPublicKey.fromDER on arbitrary and mutated DER: a key whose der is
        the input exactly, or PublicKeyFormatError; a key it accepts never
        makes verify raise, and accepts A's signature only if it is A's key.
        """
        try:
            key = RSAPublicKey.fromDER(der)
        except PublicKeyFormatError:
            return
        self.assertEqual(key.der, der)
        self.assertIs(key.verify(A.sign(b"m"), b"m"), key == A.publicKey)
        self.assertIs(key.verify(b"\x01" * key.signatureSize, b"m"), False)

    @PROPERTIES
    @given(st.one_of(st.text(max_size=100), st.binary(max_size=100), nearKeys()))
    def test_parseAnyArbitrary(self, text):
        """
        parseAnyPublicKey on any input: a PublicKey or an RSAPublicKey whose
        text form is the stripped input, or PublicKeyFormatError.
        """
        try:
            key = parseAnyPublicKey(text)
        except PublicKeyFormatError:
            return
        self.assertIsInstance(key, (PublicKey, RSAPublicKey))
        plain = text.decode("ascii") if isinstance(text, bytes) else text
        self.assertEqual(key.toText(), plain.strip())

    @staticmethod
    def lineKinds():
        """
        Lines of a trusted keys file, tagged with what they are:
        C{("key", key, comment, lead, separator)}, C{("skip", text)} (blank or
        comment) or C{("bad", text)} (not a key, whatever else is on the line).
        """
        key = st.tuples(st.just("key"), st.sampled_from(TEXT_KEYS), LINE_TEXT,
                        st.sampled_from(["", " ", "  ", "\t"]), st.sampled_from([" ", "\t", " \t "]))
        skip = st.one_of(
            st.sampled_from(["", " ", "\t", "   \t "]),
            LINE_TEXT.map(lambda t: "#" + t),
            LINE_TEXT.map(lambda t: "  #" + t),
        ).map(lambda t: ("skip", t))
        bad = st.one_of(
            LINE_TEXT.filter(lambda t: t.strip() and not t.strip().startswith(("#", RSA_PREFIX))),
            # cut by a multiple of 4 characters: whole DER bytes missing, never a key
            st.tuples(st.sampled_from(TEXT_KEYS), st.integers(1, 90)).map(
                lambda t: t[0].toText()[: -4 * t[1]]),
            st.tuples(st.sampled_from(TEXT_KEYS), st.integers(5, 300), st.sampled_from("!.+/=")).map(
                lambda t: t[0].toText()[: t[1]] + t[2] + t[0].toText()[t[1]:]),
            st.sampled_from(TEXT_KEYS).map(lambda k: "ssh-rsa " + k.toText()),
            st.just(Identity(bytes(32)).publicKey.toText()),
        ).map(lambda t: ("bad", t))
        return st.one_of(key, skip, bad)

    @staticmethod
    def render(line):
        """
        @return: the text of a line made by L{lineKinds}.
        """
        if line[0] == "key":
            _, key, comment, lead, separator = line
            return lead + key.toText() + (separator + comment if comment else "")
        return line[1]

    @PROPERTIES
    @given(st.data(), st.sampled_from(["\n", "\r\n"]), st.booleans())
    def test_trustedKeysModel(self, data, newline, fromFile):
        """
        Trusted keys files of keys with comments, blank lines, comment lines
        and bad lines, with LF or CRLF, parsed from text or a file: exactly
        the keys and stripped comments listed (the last comment of a repeated
        key), or KeyFileError naming the file and the line of the first bad
        line.
        """
        lines = data.draw(st.lists(self.lineKinds(), max_size=8))
        assertKeyListModel(self, lines, self.render, newline, fromFile, loadTrustedKeys, parseTrustedKeys, "<trusted keys>")

    @PROPERTIES
    @given(st.one_of(st.text(max_size=400), st.binary(max_size=400),
                     st.lists(st.one_of(LINE_TEXT, nearKeys()), max_size=4).map("\n".join)))
    def test_trustedKeysArbitrary(self, content):
        """
        Arbitrary text to parseTrustedKeys, arbitrary bytes (invalid UTF-8
        included) to loadTrustedKeys: a dict of RSA keys to str comments, or
        KeyFileError.
        """
        assertKeyListTotal(self, content, loadTrustedKeys, parseTrustedKeys, RSAPublicKey)

    @FEWER
    @given(st.one_of(
        st.tuples(st.integers(30, 1700), st.sampled_from(B64URL)).map(
            lambda t: SMALL.toPEM()[: t[0]] + t[1].encode() + SMALL.toPEM()[t[0] + 1:]),
        st.integers(0, 1800).map(lambda n: SMALL.toPEM()[:n]),
        st.tuples(st.integers(0, 1800), st.integers(1, 200)).map(
            lambda t: SMALL.toPEM()[: t[0]] + SMALL.toPEM()[t[0] + t[1]:]),
        st.binary(max_size=300),
    ))
    def test_fromPEMMutated(self, data):
        """
        loadAnyIdentity and loadRSAIdentity on mutated, truncated and random
        files: the same identity, which signs and round-trips, or
        KeyFileError naming the file.
        """
        path = self.writeFile(data)
        try:
            identity = loadAnyIdentity(path)
        except KeyFileError as e:
            self.assertIn(path, str(e))
            self.assertRaises(KeyFileError, loadRSAIdentity, path)
            return
        if not isinstance(identity, RSAIdentity):  # an Ed25519 key out of random bytes?
            self.assertIsInstance(identity, Identity)
            return
        self.assertEqual(loadRSAIdentity(path).publicKey, identity.publicKey)
        self.assertTrue(identity.publicKey.verify(identity.sign(b"m"), b"m"))
        self.assertEqual(RSAIdentity.fromPEM(identity.toPEM()).publicKey, identity.publicKey)
