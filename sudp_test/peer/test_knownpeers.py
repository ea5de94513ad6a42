# -*- test-case-name: sudp_test.peer.test_knownpeers -*-
"""
Tests for L{sudp.peer.knownpeers}.
"""

import os

from twisted.trial import unittest

from sudp.errors import KeyFileError
from sudp.keys import Identity
from sudp.peer.knownpeers import KnownPeers, PeerKeyChanged

class KnownPeersFileTests(unittest.SynchronousTestCase):
    def write(self, text):
        path = os.path.abspath(self.mktemp())
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def test_parse(self):
        """
        The file format HOST:PORT ed25519-KEY [comment]: comments and blank
        lines are skipped, comments after the key are allowed, IPv6 hosts
        are in brackets and found in any spelling, CRLF lines work.
        """
        keys = [Identity.generate().publicKey for _ in range(4)]
        path = self.write(
            "# my peers\n"
            "\n"
            f"192.0.2.1:8000 {keys[0].toText()}\n"
            f"   192.0.2.1:8001 {keys[1].toText()} bob's laptop, second port  \n"
            "   # indented comment\n"
            f"[2001:db8::7]:9000 {keys[2].toText()} v6\r\n"
            f"[::1]:9001 {keys[3].toText()}\n")
        known = KnownPeers(path)
        self.assertEqual(len(known), 4)
        self.assertEqual(known.get(("192.0.2.1", 8000)), keys[0])
        self.assertEqual(known.get(("192.0.2.1", 8001)), keys[1])
        self.assertEqual(known.get(("2001:DB8:0:0::7", 9000)), keys[2])
        self.assertEqual(known.get(("::1", 9001)), keys[3])
        self.assertIsNone(known.get(("192.0.2.1", 8002)))
        self.assertEqual(known.keys(), set(keys))
        self.assertFalse(known.tofu)
        self.assertEqual(len(KnownPeers(os.path.abspath(self.mktemp()))), 0)  # a missing file: nothing pinned

    def test_badLines(self):
        """
        Each kind of bad line is refused with KeyFileError naming the file
        and the line number.
        """
        key = Identity.generate().publicKey.toText()
        bad = [
            f"192.0.2.1 {key}",  # no port
            f"peer.example:8000 {key}",  # not a numeric address
            f"192.0.2.1:0 {key}",
            f"192.0.2.1:65536 {key}",
            f"192.0.2.1:http {key}",
            "192.0.2.1:8000",  # no key
            "192.0.2.1:8000 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG",
            f"192.0.2.1:8000 {key[:-1]}",  # truncated key
            f"[2001:db8::zz]:8000 {key}",
        ]
        for line in bad:
            path = self.write(f"# header\n\n192.0.2.9:1 {key}\n{line}\n")
            e = self.assertRaises(KeyFileError, KnownPeers, path)
            self.assertTrue(str(e).startswith(f"{path}:4: "), (line, str(e)))
        path = os.path.abspath(self.mktemp())
        with open(path, "wb") as f:
            f.write(b"# not UTF-8: \xff\xfe\n")
        e = self.assertRaises(KeyFileError, KnownPeers, path)
        self.assertIn(path, str(e))
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        self.assertRaises(KeyFileError, KnownPeers, directory)

    def test_pinFirstUse(self):
        """
        pinFirstUse() pins a new peer's key (appending to the file in the
        format the parser reads, IPv6 in brackets), again is a no-op, and
        raises PeerKeyChanged for another key, naming both fingerprints.
        """
        k1, k2 = Identity.generate().publicKey, Identity.generate().publicKey
        path = os.path.abspath(self.mktemp())
        tofu = KnownPeers(path, tofu=True)
        tofu.pinFirstUse(("2001:db8::1", 7), k1)
        tofu.pinFirstUse(("2001:db8:0::1", 7), k1)
        e = self.assertRaises(PeerKeyChanged, tofu.pinFirstUse, ("2001:db8::1", 7), k2)
        self.assertIn(k1.fingerprint(), str(e))
        self.assertIn(k2.fingerprint(), str(e))
        self.assertIn("[2001:db8::1]:7", str(e))
        with open(path) as f:
            self.assertEqual(f.read(), f"[2001:db8::1]:7 {k1.toText()} trusted on first use\n")
        self.assertEqual(KnownPeers(path).get(("2001:db8::1", 7)), k1)

    def test_pinsCapped(self):
        """
        Trust on first use stops at maxPins keys, saying so; keys already
        pinned still check, and an explicit pin is the user's to make.
        """
        from sudp.peer.knownpeers import PinLimitReached

        known = KnownPeers(tofu=True, maxPins=3)
        keys = [Identity.generate().publicKey for _ in range(5)]
        for i in range(3):
            known.pinFirstUse(("192.0.2.1", i), keys[i])
        e = self.assertRaises(PinLimitReached, known.pinFirstUse, ("192.0.2.1", 3), keys[3])
        self.assertIn("maxPins", str(e))
        self.assertEqual(len(known), 3)
        known.pinFirstUse(("192.0.2.1", 0), keys[0])  # already pinned: fine
        known.pin(("192.0.2.1", 4), keys[4])
        self.assertEqual(len(known), 4)
