# -*- test-case-name: sudp_test.test_addresses -*-
"""
IP socket addresses as text: C{"host:port"}, IPv6 hosts in brackets
(C{"[::1]:9000"}), for known-peers files and address options alike.
"""

import ipaddress
import socket


def formatAddress(addr):
    """
    @return: C{"host:port"}, with IPv6 hosts in brackets.
    """
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def unmappedHost(host):
    """
    @return: C{host} as people write it: the IPv4 address for an
        IPv4-mapped IPv6 address (what a dual-stack socket reports for an
        IPv4 peer, C{"::ffff:127.0.0.1"}, also written C{"::ffff:7f00:1"}),
        else C{host} unchanged.
    """
    if not host.startswith("::ffff:"):
        return host
    try:
        mapped = ipaddress.IPv6Address(host.split("%", 1)[0]).ipv4_mapped
    except ValueError:
        return host
    return host if mapped is None else str(mapped)


def displayAddress(addr):
    """
    @return: C{"host:port"} for logs and messages, an IPv4-mapped host
        shown as its IPv4 address.
    """
    return formatAddress((unmappedHost(addr[0]), addr[1]))


def parseAddress(text):
    """
    @return: C{(host, port)} of C{"host:port"} or C{"[v6]:port"}, the host
        in its canonical form.
    @raise ValueError: if it is not a numeric address and port.
    """
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    number = int(port)
    if not sep or not 0 < number < 65536:
        raise ValueError(text)
    return str(ipaddress.ip_address(host)), number


def canonicalAddress(addr):
    """
    @return: C{(host, port)} with the host in its canonical form (the same
        peer always the same key).
    @raise ValueError: if it is not a numeric address and port.
    """
    return parseAddress(formatAddress(addr))


def addressPrefix(host, v4Bits=32, v6Bits=64):
    """
    The network a source address belongs to, for limits that one host must
    not escape by using many addresses: an IPv6 host usually holds a whole
    /64, so limits count per /64 by default, IPv4 per address.

    @param host: a numeric IPv4 or IPv6 address (an IPv4-mapped IPv6
        address counts as its IPv4 address).
    @return: a hashable key, the same for every address of the prefix.
    @raise ValueError: if C{host} is not a numeric address.
    """
    packed = packedAddress(host)
    if len(packed) == 16:
        return _prefix(6, int.from_bytes(packed, "big"), 128, v6Bits)
    return _prefix(4, int.from_bytes(packed, "big"), 32, v4Bits)


def packedAddress(host):
    """
    @param host: a numeric IPv4 or IPv6 address, perhaps with a C{%zone}.
    @return: its packed form: 4 bytes for IPv4 and for an IPv4-mapped IPv6
        address, else 16 (what C{ipaddress.ip_address(unmappedHost(host))
        .packed} gives, at a fifth of the cost).
    @raise ValueError: if C{host} is not a numeric address.
    """
    host = host.split("%", 1)[0]
    try:
        if ":" in host:
            packed = socket.inet_pton(socket.AF_INET6, host)
            return packed[12:] if packed[:12] == _MAPPED else packed
        return socket.inet_pton(socket.AF_INET, host)
    except OSError:
        raise ValueError(f"not a numeric IP address: {host!r}") from None


_MAPPED = bytes(10) + b"\xff\xff"  # ::ffff:0:0/96, IPv4-mapped IPv6 addresses


def _prefix(version, number, width, bits):
    """
    @return: C{(version, first address of the prefix as an int, bits)}.
    """
    if not 0 <= bits <= width:
        raise ValueError(f"a prefix of IPv{version} is 0-{width} bits, not {bits}")
    shift = width - bits
    return (version, number >> shift << shift, bits)
