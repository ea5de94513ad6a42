# -*- test-case-name: sudp_test.test_addresses -*-
"""
Tests for L{sudp.addresses}: address text and the prefixes limits count by.
"""

from twisted.trial import unittest

import ipaddress

from sudp.addresses import addressPrefix, canonicalAddress, formatAddress, packedAddress, parseAddress, unmappedHost

class AddressTextTests(unittest.TestCase):
    def test_roundTrip(self):
        for addr in (("127.0.0.1", 9000), ("::1", 1), ("2001:db8::5", 65535)):
            self.assertEqual(parseAddress(formatAddress(addr)), addr)
        self.assertEqual(formatAddress(("::1", 5)), "[::1]:5")
        self.assertEqual(canonicalAddress(("2001:DB8:0::1", 7)), ("2001:db8::1", 7))

    def test_bad(self):
        for text in ("nohost:1", "1.2.3.4:0", "1.2.3.4:70000", "1.2.3.4"):
            self.assertRaises(ValueError, parseAddress, text)

class AddressPrefixTests(unittest.TestCase):
    def test_ipv6PerSlash64(self):
        """
        Every address of one /64 is one key; another /64 is another.
        """
        a = addressPrefix("2001:db8:1:2::1")
        self.assertEqual(a, addressPrefix("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        self.assertNotEqual(a, addressPrefix("2001:db8:1:3::1"))
        self.assertEqual(addressPrefix("fe80::1%eth0"), addressPrefix("fe80::2"))

    def test_ipv4PerAddress(self):
        """
        IPv4 counts per address by default, per any prefix when asked; an
        IPv4-mapped IPv6 address is its IPv4 address.
        """
        self.assertNotEqual(addressPrefix("10.0.0.1"), addressPrefix("10.0.0.2"))
        self.assertEqual(addressPrefix("10.0.0.1", v4Bits=24), addressPrefix("10.0.0.200", v4Bits=24))
        self.assertEqual(addressPrefix("::ffff:10.0.0.1"), addressPrefix("10.0.0.1"))
        self.assertNotEqual(addressPrefix("2001:db8::1", v6Bits=128), addressPrefix("2001:db8::2", v6Bits=128))

    def test_notNumeric(self):
        """
        Names, malformed addresses and impossible prefix lengths are
        ValueErrors.
        """
        for host in ("localhost", "10.0.0", "1.2.3.256", "2001:db8::1::2", ""):
            self.assertRaises(ValueError, addressPrefix, host)
        self.assertRaises(ValueError, addressPrefix, "10.0.0.1", v4Bits=33)
        self.assertRaises(ValueError, addressPrefix, "2001:db8::1", v6Bits=-1)

class PackedAddressTests(unittest.TestCase):
    def test_sameAsIpaddress(self):
        """
        L{packedAddress} gives what C{ipaddress} gives for the unmapped
        host, byte for byte (stateless reset tokens are computed over it,
        and a server must compute the same ones after an upgrade): IPv4,
        IPv6, both forms of an IPv4-mapped address, a zone.
        """
        for host in ("127.0.0.1", "10.1.2.3", "::1", "2001:db8::42", "::ffff:127.0.0.1", "::ffff:7f00:1",
                     "fe80::1%eth0", "::", "0.0.0.0"):
            expected = ipaddress.ip_address(unmappedHost(host.split("%", 1)[0])).packed
            self.assertEqual(packedAddress(host), expected, host)

    def test_notNumeric(self):
        """
        A name or a malformed address is a ValueError.
        """
        for host in ("localhost", "10.0.0", "1.2.3.256", "2001:db8::1::2", ""):
            self.assertRaises(ValueError, packedAddress, host)

class UnmappedHostTests(unittest.TestCase):
    def test_mappedForms(self):
        """
        Both written forms of an IPv4-mapped address give the IPv4 address;
        anything else is unchanged.
        """
        from sudp.addresses import displayAddress

        for mapped in ("::ffff:127.0.0.1", "::ffff:7f00:1", "::FFFF:7f00:1".lower()):
            self.assertEqual(unmappedHost(mapped), "127.0.0.1")
        for other in ("::1", "127.0.0.1", "2001:db8::1", "::ffff:zz", "fe80::1%eth0"):
            self.assertEqual(unmappedHost(other), other)
        self.assertEqual(displayAddress(("::ffff:7f00:1", 9)), "127.0.0.1:9")
