# -*- test-case-name: sudp_test.test_resolve -*-
"""
Tests for L{sudp.resolve}: names resolved for both address families.
"""

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.trial import unittest

class ResolveHostTests(unittest.TestCase):
    def test_resolvedNameGivesFamily(self):
        """
        A host name is resolved for both families; the first address
        decides the socket's family (here a name that has only ::1).
        """
        from sudp.resolve import resolveHost

        class Resolver:
            def resolveHostName(self, receiver, host, port=0, addressTypes=None, transportSemantics="TCP"):
                self.asked = (host, addressTypes, transportSemantics)
                receiver.resolutionBegan(None)
                receiver.addressResolved(IPv6Address("UDP", "::1", 0))
                receiver.addressResolved(IPv4Address("UDP", "127.0.0.1", 0))
                receiver.resolutionComplete()

        class FakeReactor:
            nameResolver = Resolver()

        got = self.successResultOf(resolveHost(FakeReactor(), "v6only.example"))
        self.assertEqual(got, "::1")
        self.assertEqual(FakeReactor.nameResolver.asked[0], "v6only.example")
        self.assertEqual(set(FakeReactor.nameResolver.asked[1]), {IPv4Address, IPv6Address})
        self.assertEqual(FakeReactor.nameResolver.asked[2], "UDP")
        self.assertEqual(self.successResultOf(resolveHost(FakeReactor(), "::1")), "::1")

    def test_unresolvableName(self):
        """
        A name that resolves to nothing fails with a DNSLookupError naming it.
        """
        from twisted.internet.error import DNSLookupError
        from sudp.resolve import resolveHost

        class Resolver:
            def resolveHostName(self, receiver, host, port=0, addressTypes=None, transportSemantics="TCP"):
                receiver.resolutionBegan(None)
                receiver.resolutionComplete()

        class FakeReactor:
            nameResolver = Resolver()

        f = self.failureResultOf(resolveHost(FakeReactor(), "nowhere.example"), DNSLookupError)
        self.assertIn("nowhere.example", str(f.value))
