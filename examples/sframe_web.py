"""
twisted.web over sframe: an unchanged web site behind an sframe server
endpoint, and an unchanged Agent fetching from it through an sframe client
endpoint. Only the endpoint strings know about sframe.

Serve (prints the client endpoint string to use):

    python examples/sframe_web.py serve server.key 8443

Fetch:

    python examples/sframe_web.py fetch 'sframe:serverKey=ed25519-...:endpoint=tcp\\:127.0.0.1\\:8443' /
"""

import sys

from twisted.internet import defer, task
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.web.client import Agent, readBody
from twisted.web.iweb import IAgentEndpointFactory
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data
from zope.interface import implementer

from sudp.keys import loadOrCreateIdentity


def site():
    """
    @return: a small web site: C{/} greets, C{/data} is 1 MiB of bytes.
    """
    root = Resource()
    root.putChild(b"", Data(b"hello over sframe\n", "text/plain"))
    root.putChild(b"data", Data(bytes(range(256)) * 4096, "application/octet-stream"))
    return Site(root)


@defer.inlineCallbacks
def serve(reactor, keyFile, port, interface="127.0.0.1"):
    """
    Serve L{site} over sframe on TCP C{port}.

    @return: a Deferred firing with C{(listening port, client endpoint string)}.
    """
    identity, _ = loadOrCreateIdentity(keyFile)
    listening = yield serverFromString(
        reactor, f"sframe:key={keyFile}:endpoint=tcp\\:{port}\\:interface={interface}"
    ).listen(site())
    bound = listening.getHost().port
    client = f"sframe:serverKey={identity.publicKey.toText()}:endpoint=tcp\\:{interface}\\:{bound}"
    return listening, client


@implementer(IAgentEndpointFactory)
class SFrameEndpointFactory:
    """
    Sends every request of an Agent through one sframe client endpoint string.
    """

    def __init__(self, reactor, endpoint):
        self.reactor = reactor
        self.endpoint = endpoint

    def endpointForURI(self, uri):
        return clientFromString(self.reactor, self.endpoint)


@defer.inlineCallbacks
def fetch(reactor, endpoint, path="/"):
    """
    GET C{path} through C{endpoint}.

    @return: a Deferred firing with C{(status code, body)}.
    """
    agent = Agent.usingEndpointFactory(reactor, SFrameEndpointFactory(reactor, endpoint))
    response = yield agent.request(b"GET", b"http://sframe" + path.encode())
    body = yield readBody(response)
    return response.code, body


def main(reactor, command, *args):
    if command == "serve":
        keyFile, port = args[0], int(args[1])

        def ready(result):
            print("serving; fetch with:", result[1], flush=True)
            return defer.Deferred()  # forever

        return serve(reactor, keyFile, port).addCallback(ready)
    if command == "fetch":
        d = fetch(reactor, args[0], args[1] if len(args) > 1 else "/")
        return d.addCallback(lambda r: print(r[0], len(r[1]), "bytes:", r[1][:60]))
    raise SystemExit(__doc__)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    task.react(main, sys.argv[1:])
