# -*- test-case-name: sudp_test.peer.test_netinfo -*-
"""
Tests for L{sudp.peer.netinfo}: against this Linux host, and against
made-up C{/sys/class/net} trees and C{/proc/net/if_inet6} files.
"""

import dataclasses
import os

from twisted.trial import unittest

from sudp.peer import netinfo

IF_INET6 = """\
fe8000000000000000fc00fffe000001 04 40 20 80     eth0
20010db8000000000000000000000007 04 40 00 00     eth0
00000000000000000000000000000001 01 80 10 80       lo
not a line
20010db800000000000000000000000g 05 40 00 00     bad
"""


class FakeTree:
    """
    A made-up /sys/class/net: name -> (mtu text, flags text or None), and
    operstate texts by name.
    """

    def __init__(self, case, interfaces, operstates=None):
        self.path = os.path.abspath(case.mktemp())
        os.makedirs(self.path)
        for name, (mtu, flags) in interfaces.items():
            os.makedirs(os.path.join(self.path, name))
            with open(os.path.join(self.path, name, "mtu"), "w") as f:
                f.write(mtu + "\n")
            if flags is not None:
                with open(os.path.join(self.path, name, "flags"), "w") as f:
                    f.write(flags + "\n")
        for name, operstate in (operstates or {}).items():
            with open(os.path.join(self.path, name, "operstate"), "w") as f:
                f.write(operstate + "\n")


class InterfaceMTUTests(unittest.TestCase):
    def test_smallestUpNonLoopback(self):
        """
        The smallest MTU of the interfaces that are up, loopback and
        implausible or unreadable values skipped.
        """
        tree = FakeTree(self, {"lo": ("65536", "0x9"), "eth0": ("9000", "0x1003"), "wg0": ("1420", "0x1091"),
                               "down0": ("1280", "0x1002"), "bad": ("junk", "0x1003"), "tiny": ("68", "0x1003")})
        self.assertEqual(netinfo.interfaceMTU(tree.path), 1420)

    def test_operstateWithoutFlags(self):
        """
        Where an interface has no flags file its operstate decides: a down
        one is skipped, one up or unknown counts; lo stays loopback.
        """
        tree = FakeTree(self, {"lo": ("65536", None), "eth0": ("1500", None), "wg0": ("1420", None),
                               "eth1": ("1280", None)},
                        {"lo": "unknown", "eth0": "up", "wg0": "unknown", "eth1": "down"})
        self.assertEqual(netinfo.interfaceMTU(tree.path), 1420)
        found = {i.name: (i.up, i.loopback) for i in netinfo.interfaces(tree.path, os.path.abspath(self.mktemp()))}
        self.assertEqual(found, {"lo": (True, True), "eth0": (True, False), "wg0": (True, False),
                                 "eth1": (False, False)})

    def test_nothingReadable(self):
        self.assertEqual(netinfo.interfaceMTU(FakeTree(self, {}).path), 1500)
        self.assertEqual(netinfo.interfaceMTU(os.path.abspath(self.mktemp())), 1500)

    def test_thisHost(self):
        """
        On this host: what /sys/class/net says, computed independently.
        """
        if not os.path.isdir(netinfo.SYS_NET):
            raise unittest.SkipTest("no /sys/class/net")
        expected = []
        for name in os.listdir(netinfo.SYS_NET):
            with open(os.path.join(netinfo.SYS_NET, name, "flags")) as f:
                flags = int(f.read(), 16)
            with open(os.path.join(netinfo.SYS_NET, name, "mtu")) as f:
                mtu = int(f.read())
            if flags & 1 and not flags & 8 and mtu >= 576:
                expected.append(mtu)
        self.assertEqual(netinfo.interfaceMTU(), min(expected, default=1500))
        self.assertEqual(netinfo.getMinMTU(), netinfo.interfaceMTU())


class InterfacesTests(unittest.TestCase):
    def test_parsesIfInet6(self):
        """
        /proc/net/if_inet6: addresses by interface, a link-local one with
        its scope; malformed lines skipped.
        """
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write(IF_INET6)
        tree = FakeTree(self, {"eth0": ("1500", "0x1003"), "lo": ("65536", "0x9"), "ifb0": ("1500", "0x82")})
        found = {i.name: i for i in netinfo.interfaces(tree.path, path)}
        self.assertEqual(sorted(found), ["eth0", "ifb0", "lo"])
        self.assertEqual(found["eth0"].ipv6, ["fe80::fc:ff:fe00:1%eth0", "2001:db8::7"])
        self.assertEqual(found["lo"].ipv6, ["::1"])
        self.assertEqual((found["lo"].loopback, found["eth0"].loopback), (True, False))
        self.assertEqual((found["eth0"].up, found["ifb0"].up), (True, False))
        self.assertEqual(found["ifb0"].ipv6, [])

    def test_ipv4ByIoctl(self):
        """
        Each interface's IPv4 address comes from the ioctl on the real
        interface of that name: 127.0.0.1 for lo; none, and no error, for
        an interface the kernel does not have. An unreadable if_inet6
        leaves every IPv6 list empty.
        """
        if not os.path.isdir(netinfo.SYS_NET):
            raise unittest.SkipTest("no /sys/class/net")
        tree = FakeTree(self, {"lo": ("65536", "0x9"), "nosuch0": ("1500", "0x1003")})
        found = {i.name: i for i in netinfo.interfaces(tree.path, os.path.abspath(self.mktemp()))}
        self.assertEqual(found["lo"].ipv4, ["127.0.0.1"])
        self.assertEqual(found["nosuch0"].ipv4, [])
        self.assertEqual((found["lo"].ipv6, found["nosuch0"].ipv6), ([], []))

    def test_noIoctl(self):
        """
        Where C{fcntl} cannot be imported (not POSIX) interfaces have no
        IPv4 address, and nothing raises.
        """
        self.patch(netinfo, "fcntl", None)
        tree = FakeTree(self, {"lo": ("65536", "0x9")})
        [lo] = netinfo.interfaces(tree.path, os.path.abspath(self.mktemp()))
        self.assertEqual((lo.name, lo.ipv4, lo.loopback), ("lo", [], True))

    def test_thisHostsLoopback(self):
        """
        This Linux host's loopback has 127.0.0.1 and ::1: listed with
        includeLoopback, not without.
        """
        if not os.path.isdir(netinfo.SYS_NET):
            raise unittest.SkipTest("no /sys/class/net")
        self.assertIn("127.0.0.1", netinfo.getIPv4Addresses(includeLoopback=True))
        self.assertNotIn("127.0.0.1", netinfo.getIPv4Addresses())
        if os.path.exists(netinfo.PROC_INET6) and "::1" in netinfo.getIPv6Addresses(includeLoopback=True):
            self.assertNotIn("::1", netinfo.getIPv6Addresses())

    def test_fallback(self):
        """
        Without /sys/class/net: one pseudo-interface, addresses from the
        host name and the routing table, no loopback in the lists, no error.
        """
        interfaces = netinfo.interfaces(os.path.abspath(self.mktemp()))
        self.assertEqual([i.name for i in interfaces], ["default"])
        self.assertEqual(interfaces[0].mtu, 1500)
        self.patch(netinfo, "SYS_NET", os.path.abspath(self.mktemp()))
        for address in netinfo.getIPv4Addresses() + netinfo.getIPv6Addresses():
            self.assertFalse(address.startswith("127.") or address == "::1", address)

    def test_interfaceRecord(self):
        """
        Interface(name, mtu, up, ipv4, ipv6, loopback), in that order.
        """
        self.assertEqual([f.name for f in dataclasses.fields(netinfo.Interface)],
                         ["name", "mtu", "up", "ipv4", "ipv6", "loopback"])
        interface = netinfo.Interface("eth0", 1400, False, ["192.0.2.7"], ["2001:db8::7"], True)
        self.assertEqual((interface.ipv4, interface.ipv6, interface.loopback), (["192.0.2.7"], ["2001:db8::7"], True))

    def test_networkInfo(self):
        info = netinfo.getNetworkInfo()
        self.assertEqual(set(info), {"interfaces", "min_mtu", "ipv4", "ipv6", "hostname"})
        self.assertEqual(info["min_mtu"], netinfo.interfaceMTU())
        for name, interface in info["interfaces"].items():
            self.assertEqual(set(interface), {"mtu", "up", "loopback", "ipv4", "ipv6"})
        self.assertIs(netinfo.get_network_info, netinfo.getNetworkInfo)
        self.assertIs(netinfo.get_min_mtu, netinfo.getMinMTU)
        self.assertIs(netinfo.get_ipv4_addresses, netinfo.getIPv4Addresses)
        self.assertIs(netinfo.get_ipv6_addresses, netinfo.getIPv6Addresses)
