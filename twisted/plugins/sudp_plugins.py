# -*- test-case-name: sudp_test.test_plugins -*-
"""
Twisted plugins of sudp: the C{twist sudp} and C{twist vpn041} service makers, and the C{sudp:}
and C{sframe:} endpoint string parsers (server and client).

Keep this file free of heavy imports: Twisted imports every plugin file when
it looks for plugins, and an import error here only gets logged while the
plugins silently disappear (sudp_test.test_plugins checks they are found).
"""

from twisted.application.service import IServiceMaker
from twisted.internet.interfaces import (
    IStreamClientEndpointStringParserWithReactor,
    IStreamServerEndpointStringParser,
)
from twisted.plugin import IPlugin
from zope.interface import implementer


@implementer(IPlugin, IServiceMaker)
class _SUDPServiceMaker:
    tapname = "sudp"
    description = "A sudp/1 server: authenticated, encrypted, replay-proof messages over UDP."

    @property
    def options(self):
        from sudp.tap import Options

        return Options

    def makeService(self, options):
        from sudp.tap import makeService

        return makeService(options)


@implementer(IPlugin, IServiceMaker)
class _Vpn041ServiceMaker:
    tapname = "vpn041"
    description = "A vpn041 gateway (spec 041): TLS authentication plane and compact UDP push data plane."

    @property
    def options(self):
        from sudp.vpn041.tap import Options

        return Options

    def makeService(self, options):
        from sudp.vpn041.tap import makeService

        return makeService(options)


@implementer(IPlugin, IStreamServerEndpointStringParser)
class _SUDPServerParser:
    prefix = "sudp"

    def parseStreamServer(self, reactor, /, *args, **kwargs):
        from sudp.parsers import parseServer

        return parseServer(reactor, *args, **kwargs)


@implementer(IPlugin, IStreamClientEndpointStringParserWithReactor)
class _SUDPClientParser:
    prefix = "sudp"

    def parseStreamClient(self, reactor, /, *args, **kwargs):
        from sudp.parsers import parseClient

        return parseClient(reactor, *args, **kwargs)


@implementer(IPlugin, IStreamServerEndpointStringParser)
class _SFrameServerParser:
    prefix = "sframe"

    def parseStreamServer(self, reactor, /, *args, **kwargs):
        from sudp.parsers import parseStreamServer

        return parseStreamServer(reactor, *args, **kwargs)


@implementer(IPlugin, IStreamClientEndpointStringParserWithReactor)
class _SFrameClientParser:
    prefix = "sframe"

    def parseStreamClient(self, reactor, /, *args, **kwargs):
        from sudp.parsers import parseStreamClient

        return parseStreamClient(reactor, *args, **kwargs)


sudpServiceMaker = _SUDPServiceMaker()
vpn041ServiceMaker = _Vpn041ServiceMaker()
sudpServerParser = _SUDPServerParser()
sudpClientParser = _SUDPClientParser()
sframeServerParser = _SFrameServerParser()
sframeClientParser = _SFrameClientParser()
