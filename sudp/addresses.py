"""
IP socket addresses as text: C{"host:port"}, IPv6 hosts in brackets
(C{"[::1]:9000"}), for known-peers files and address options alike.
"""

import ipaddress


def formatAddress(addr):
    """
    @return: C{"host:port"}, with IPv6 hosts in brackets.
    """
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


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
