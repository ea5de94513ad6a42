"""
An echo client: sends a few messages to a sudp echo server (such as
C{twist sudp --port 9000}) and prints what comes back.

    python examples/echo_client.py sudp:host=127.0.0.1:port=9000:serverKey=ed25519-...
"""

import sys

from twisted.internet import defer, protocol, task
from twisted.internet.endpoints import clientFromString


class EchoClient(protocol.Protocol):
    """
    Sends C{messages} and fires C{done} when every one has come back.
    """

    def __init__(self, messages):
        self.messages = list(messages)
        self.received = []
        self.done = defer.Deferred()

    def connectionMade(self):
        key = self.transport.peerPublicKey
        print(f"connected to {self.transport.getPeer().host}, server key {key.fingerprint()}")
        for message in self.messages:
            self.transport.write(message)

    def dataReceived(self, message):
        print("echo:", message.decode("utf-8", "replace"))
        self.received.append(message)
        if len(self.received) == len(self.messages):
            self.transport.loseConnection()
            self.done.callback(self.received)


@defer.inlineCallbacks
def main(reactor, endpoint, *words):
    messages = [w.encode() for w in words] or [b"hello", b"secure", b"world"]
    client = yield clientFromString(reactor, endpoint).connect(
        protocol.Factory.forProtocol(lambda: EchoClient(messages))
    )
    received = yield client.done.addTimeout(10, reactor)
    return received


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    task.react(lambda reactor: main(reactor, *sys.argv[1:]).addCallback(lambda _: None))
