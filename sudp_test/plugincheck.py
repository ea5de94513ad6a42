"""
Checks that Twisted finds every sudp plugin and that each provides its
interfaces. Run as a script inside an installed environment by
L{sudp_test.test_packaging}, and imported by L{sudp_test.test_plugins}.

Prints one line per finding and exits non-zero on any failure.
"""

import sys

EXPECTED_SERVICES = {"sudp", "vpn041"}
EXPECTED_SERVER_PREFIXES = {"sudp", "sframe"}
EXPECTED_CLIENT_PREFIXES = {"sudp", "sframe"}


def findPlugins():
    """
    @return: a dict with the service makers and endpoint parsers of sudp that
        Twisted's plugin system finds, by name or prefix.
    """
    from twisted.application.service import IServiceMaker
    from twisted.internet.interfaces import (
        IStreamClientEndpointStringParserWithReactor,
        IStreamServerEndpointStringParser,
    )
    from twisted.plugin import getPlugins

    def ours(plugins):
        return [p for p in plugins if type(p).__module__ == "twisted.plugins.sudp_plugins"]

    return {
        "services": {p.tapname: p for p in ours(getPlugins(IServiceMaker))},
        "servers": {p.prefix: p for p in ours(getPlugins(IStreamServerEndpointStringParser))},
        "clients": {p.prefix: p for p in ours(getPlugins(IStreamClientEndpointStringParserWithReactor))},
    }


def problems():
    """
    @return: a list of problems; empty if every plugin is found and verifies.
    """
    from twisted.application.service import IServiceMaker
    from twisted.internet.interfaces import (
        IStreamClientEndpointStringParserWithReactor,
        IStreamServerEndpointStringParser,
    )
    from twisted.plugin import IPlugin
    from zope.interface.verify import verifyObject

    found = findPlugins()
    out = []
    for kind, expected, iface in (
        ("services", EXPECTED_SERVICES, IServiceMaker),
        ("servers", EXPECTED_SERVER_PREFIXES, IStreamServerEndpointStringParser),
        ("clients", EXPECTED_CLIENT_PREFIXES, IStreamClientEndpointStringParserWithReactor),
    ):
        missing = expected - set(found[kind])
        if missing:
            out.append(f"{kind}: not found: {sorted(missing)}")
        for name, plugin in found[kind].items():
            for i in (IPlugin, iface):
                try:
                    verifyObject(i, plugin)
                except Exception as e:
                    out.append(f"{kind} {name}: verifyObject({i.__name__}) failed: {e}")
    return out


def main():
    found = findPlugins()
    for kind, plugins in found.items():
        print(f"{kind}: {sorted(plugins)}")
    issues = problems()
    for issue in issues:
        print("PROBLEM:", issue)
    return 1 if issues else 0


if __name__ == "__main__":
    sys.exit(main())
