# -*- test-case-name: sudp_test.peer.test_netinfo -*-
"""
This host's network interfaces, addresses and MTU: py-vault-udp's network
utilities (C{get_min_mtu}, C{get_ipv4_addresses}, C{get_ipv6_addresses},
C{get_network_info}, kept here as aliases) with no dependency.

On Linux the interfaces come from C{/sys/class/net} (name, MTU, up or
down, loopback), IPv6 addresses from C{/proc/net/if_inet6}, and each
interface's primary IPv4 address from the C{SIOCGIFADDR} ioctl. Elsewhere
(no C{/sys/class/net}) one pseudo-interface named C{"default"} stands for
the host: its addresses are the host name's and the source addresses the
system would pick toward documentation addresses (no packet is sent), its
MTU 1500. Nothing here raises for a file it cannot read or an ioctl that
fails: that piece is skipped.

C{get_min_mtu}, C{get_ipv4_addresses}, C{get_ipv6_addresses} and
C{get_network_info} are aliases of L{getMinMTU}, L{getIPv4Addresses},
L{getIPv6Addresses} and L{getNetworkInfo}, under py-vault-udp's names.

@var SYS_NET: the directory of interfaces read on Linux; where it cannot
    be listed, the fallback is used.
@var PROC_INET6: the file of IPv6 addresses read on Linux.
@var DEFAULT_MTU: the MTU assumed where none can be read.
@var SIOCGIFADDR: the Linux ioctl that reads an interface's IPv4 address.
@var IFF_UP: the flag of an interface that is up.
@var IFF_LOOPBACK: the flag of a loopback interface.
"""

import ipaddress
import os
import socket
import struct
from dataclasses import dataclass, field

try:
    import fcntl
except ImportError:  # not a POSIX system: no ioctl, and no /sys/class/net either
    fcntl = None

SYS_NET = "/sys/class/net"
PROC_INET6 = "/proc/net/if_inet6"
DEFAULT_MTU = 1500
SIOCGIFADDR = 0x8915
IFF_UP = 0x1
IFF_LOOPBACK = 0x8


@dataclass
class Interface:
    """
    One network interface.

    @ivar name: its name (C{"eth0"}), or C{"default"} for the fallback's
        pseudo-interface.
    @ivar mtu: its MTU (L{DEFAULT_MTU} where it cannot be read).
    @ivar up: whether it is up.
    @ivar ipv4: its primary IPv4 address (Linux: one at most), or the
        host's.
    @ivar ipv6: its IPv6 addresses; a link-local one carries its scope
        (C{"fe80::1%eth0"}).
    @ivar loopback: whether it is a loopback interface.
    """

    name: str
    mtu: int = DEFAULT_MTU
    up: bool = True
    ipv4: list[str] = field(default_factory=list)
    ipv6: list[str] = field(default_factory=list)
    loopback: bool = False


def _read(path):
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except (OSError, ValueError):
        return None


def _flags(name, sysNet):
    text = _read(os.path.join(sysNet, name, "flags"))
    try:
        return int(text, 16)
    except (TypeError, ValueError):
        return 0


def _state(name, sysNet):
    """
    @return: (up, loopback) for interface C{name}: from its C{flags}
        (C{IFF_UP}, C{IFF_LOOPBACK}); where they cannot be read, up unless
        its C{operstate} says down, and loopback if it is named C{"lo"}.
    """
    flags = _flags(name, sysNet)
    loopback = bool(flags & IFF_LOOPBACK) or name == "lo"
    if flags:
        return bool(flags & IFF_UP), loopback
    operstate = _read(os.path.join(sysNet, name, "operstate"))
    return operstate not in ("down", "lowerlayerdown", "notpresent"), loopback


def _ipv6ByName(procInet6):
    """
    @return: IPv6 addresses by interface name, from C{/proc/net/if_inet6}
        (one line per address: 32 hex digits, index, prefix, scope, flags,
        name).
    """
    found = {}
    text = _read(procInet6) or ""
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6 or len(fields[0]) != 32:
            continue
        try:
            address = ipaddress.IPv6Address(bytes.fromhex(fields[0]))
        except ValueError:
            continue
        name = fields[5]
        found.setdefault(name, []).append(str(address) + (f"%{name}" if address.is_link_local else ""))
    return found


def _ipv4Of(name):
    """
    @return: the primary IPv4 address of interface C{name} (the
        C{SIOCGIFADDR} ioctl reports one address per interface), or None
        where the ioctl is missing or fails.
    """
    if fcntl is None:
        return None
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            packed = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
    except (OSError, ValueError):
        return None
    return socket.inet_ntoa(packed[20:24])


def _fallback():
    """
    @return: the one pseudo-interface of a host without C{/sys/class/net}.
    """
    ipv4, ipv6 = set(), set()
    try:
        for family, _, _, _, sockaddr in socket.getaddrinfo(socket.gethostname(), None):
            if family == socket.AF_INET:
                ipv4.add(sockaddr[0])
            elif family == socket.AF_INET6:
                ipv6.add(sockaddr[0])
    except (OSError, UnicodeError):
        pass
    for family, target, found in ((socket.AF_INET, "192.0.2.1", ipv4), (socket.AF_INET6, "2001:db8::1", ipv6)):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((target, 9))  # picks a source address; sends nothing
                found.add(s.getsockname()[0])
        except OSError:
            pass
    return [Interface("default", ipv4=sorted(ipv4), ipv6=sorted(ipv6))]


def interfaces(sysNet=None, procInet6=None):
    """
    @param sysNet: where to read the interfaces (L{SYS_NET} by default).
    @param procInet6: where to read IPv6 addresses (L{PROC_INET6}).
    @return: this host's L{Interface}s, sorted by name.
    """
    sysNet, procInet6 = sysNet or SYS_NET, procInet6 or PROC_INET6
    try:
        names = sorted(os.listdir(sysNet))
    except OSError:
        return _fallback()
    ipv6 = _ipv6ByName(procInet6)
    found = []
    for name in names:
        up, loopback = _state(name, sysNet)
        try:
            mtu = int(_read(os.path.join(sysNet, name, "mtu")))
        except (TypeError, ValueError):
            mtu = DEFAULT_MTU
        ipv4 = _ipv4Of(name)
        found.append(Interface(name, mtu, up, [ipv4] if ipv4 else [], ipv6.get(name, []), loopback))
    return found


def interfaceMTU(sysNet=None):
    """
    @param sysNet: where to read the interfaces (L{SYS_NET} by default).
    @return: the smallest MTU of this host's interfaces that are up, other
        than loopback (an MTU under 576 is ignored), or 1500 where none can
        be read.
    """
    sysNet = sysNet or SYS_NET
    try:
        names = os.listdir(sysNet)
    except OSError:
        return DEFAULT_MTU
    mtus = []
    for name in names:
        up, loopback = _state(name, sysNet)
        if loopback or not up:
            continue
        try:
            mtus.append(int(_read(os.path.join(sysNet, name, "mtu"))))
        except (TypeError, ValueError):
            continue
    return min((m for m in mtus if m >= 576), default=DEFAULT_MTU)


def getMinMTU():
    """
    @return: L{interfaceMTU}: the path MTU peer mode assumes by default.
    """
    return interfaceMTU()


def getIPv4Addresses(includeLoopback=False):
    """
    @param includeLoopback: whether to list loopback addresses too.
    @return: this host's IPv4 addresses, each once (without 127.0.0.0/8
        unless C{includeLoopback}).
    """
    return _addresses("ipv4", includeLoopback)


def getIPv6Addresses(includeLoopback=False):
    """
    @param includeLoopback: whether to list loopback addresses too.
    @return: this host's IPv6 addresses, each once, a link-local one with
        its scope (without ::1 unless C{includeLoopback}).
    """
    return _addresses("ipv6", includeLoopback)


def _addresses(family, includeLoopback):
    found = []
    for interface in interfaces():
        for address in getattr(interface, family):
            if not includeLoopback and ipaddress.ip_address(address.split("%")[0]).is_loopback:
                continue
            if address not in found:
                found.append(address)
    return found


def getNetworkInfo():
    """
    @return: a dict: C{interfaces} (name -> mtu, up, loopback, ipv4,
        ipv6), C{min_mtu}, C{ipv4} and C{ipv6} (without loopback) and
        C{hostname}.
    """
    return {"interfaces": {i.name: {"mtu": i.mtu, "up": i.up, "loopback": i.loopback, "ipv4": i.ipv4,
                                    "ipv6": i.ipv6} for i in interfaces()},
            "min_mtu": getMinMTU(), "ipv4": getIPv4Addresses(), "ipv6": getIPv6Addresses(),
            "hostname": socket.gethostname()}


# py-vault-udp's names (its vault_ip module), the same functions.
get_min_mtu = getMinMTU
get_ipv4_addresses = getIPv4Addresses
get_ipv6_addresses = getIPv6Addresses
get_network_info = getNetworkInfo
