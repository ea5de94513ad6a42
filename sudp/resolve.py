# -*- test-case-name: sudp_test.test_resolve -*-
"""
Host names to addresses for the client endpoints, both families: a name is
resolved for IPv4 and IPv6 at once (the reactor's C{IHostnameResolver}),
and the first address the system prefers decides the socket's family.
"""

import ipaddress

from twisted.internet import defer
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import DNSLookupError


def resolveHost(reactor, host, transportSemantics="UDP"):
    """
    @param host: a numeric IPv4 or IPv6 address, or a name.
    @return: a C{Deferred} firing with the first numeric address of C{host}
        (a literal fires at once), or failing with C{DNSLookupError}.
    """
    try:
        return defer.succeed(str(ipaddress.ip_address(host)))
    except ValueError:
        pass
    resolver = getattr(reactor, "nameResolver", None)
    if resolver is None:  # a reactor without IReactorPluggableNameResolver
        return reactor.resolve(host)
    found = []
    done = defer.Deferred()

    class Receiver:
        def resolutionBegan(self, resolution):
            pass

        def addressResolved(self, address):
            found.append(address.host)

        def resolutionComplete(self):
            if found:
                done.callback(found[0])
            else:
                done.errback(DNSLookupError(f"{host}: the name has no IPv4 or IPv6 address"))

    resolver.resolveHostName(Receiver(), host, 0, addressTypes=[IPv4Address, IPv6Address],
                             transportSemantics=transportSemantics)
    return done


def anyAddressFor(host):
    """
    @return: the wildcard address of C{host}'s family (C{"::"} for IPv6,
        C{""} for IPv4), for a client socket that talks to C{host}.
    """
    return "::" if ":" in host else ""
