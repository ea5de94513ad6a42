"""
A three-node mesh chat over sudp peer mode: every node is a peer of every
other, each line you type goes to all of them, and what they type appears
with the sender's address.

Run three nodes in three terminals (each creates its key and prints its
public key; put every node's "HOST:PORT KEY" line in a shared known_peers
file, or start them with --tofu to trust on first use):

    python examples/mesh_chat.py --port 9101 --key a.key --known known_peers --peer 127.0.0.1:9102 --peer 127.0.0.1:9103
    python examples/mesh_chat.py --port 9102 --key b.key --known known_peers --peer 127.0.0.1:9101 --peer 127.0.0.1:9103
    python examples/mesh_chat.py --port 9103 --key c.key --known known_peers --peer 127.0.0.1:9101 --peer 127.0.0.1:9102

Or see all three talk in one process, with keys made on the spot:

    python examples/mesh_chat.py --demo

It compresses messages, so it needs txsudp's peer extra (zstandard):

    pip install 'txsudp[peer]'
"""

import argparse
import json
import sys

from twisted.internet import defer, stdio, task
from twisted.protocols.basic import LineReceiver

from sudp.keys import Identity, loadOrCreateIdentity
from sudp.peer.knownpeers import KnownPeers, formatAddress, parseAddress
from sudp.peer.node import PeerKeyUnknown, PeerNode, listenPeers

EXTRA_MISSING = "examples/mesh_chat.py needs txsudp's peer extra (zstandard): pip install 'txsudp[peer]'"


class ChatInput(LineReceiver):
    delimiter = b"\n"

    def __init__(self, node):
        self.node = node

    def lineReceived(self, line):
        if line.strip():
            self.node.send(line.rstrip(b"\r"))


def show(data, addr):
    print(f"<{formatAddress(addr)}> {data.decode('utf-8', 'replace')}", flush=True)


def node(reactor, args):
    identity, created = loadOrCreateIdentity(args.key)
    known = KnownPeers(args.known, tofu=args.tofu)
    peerNode = PeerNode(reactor, identity, known, onMessage=show, compress=True, interface=args.interface)
    port = listenPeers(reactor, args.port, peerNode)
    me = (args.interface or "127.0.0.1", port.getHost().port)
    print(f"{formatAddress(me)} {identity.publicKey.toText()}   (this node's known_peers line)", flush=True)
    for text in args.peer:
        try:
            peerNode.addPeer(parseAddress(text))
        except PeerKeyUnknown as e:  # no key in the known peers and no --tofu: say what to do
            raise SystemExit(f"mesh_chat: {e}") from None
    stdio.StandardIO(ChatInput(peerNode))
    return defer.Deferred()  # until interrupted


@defer.inlineCallbacks
def demo(reactor, out=sys.stdout):
    """
    Three nodes in one process: each greets the mesh, then node 0 writes to
    node 2 alone; prints what each received and node 0's stats as JSON
    (to C{out}, unless None).

    @return: a Deferred firing with C{(what each node received, node 0's stats)}.
    """
    identities = [Identity.generate() for _ in range(3)]
    received = [[] for _ in range(3)]
    nodes, ports = [], []
    for i, identity in enumerate(identities):
        n = PeerNode(reactor, identity, KnownPeers(), compress=True, interface="127.0.0.1",
                     onMessage=lambda data, addr, i=i: received[i].append(data.decode()))
        nodes.append(n)
        ports.append(listenPeers(reactor, 0, n))
    addrs = [("127.0.0.1", p.getHost().port) for p in ports]
    for i, n in enumerate(nodes):
        for j in range(3):
            if i != j:
                n.addPeer(addrs[j], identities[j].publicKey)
    for i, n in enumerate(nodes):
        n.send(f"hello from node {i}".encode())
    nodes[0].send(b"just for node 2", addrs[2])
    yield task.deferLater(reactor, 1.0, lambda: None)
    result = [sorted(r) for r in received], nodes[0].stats()
    if out is not None:
        print(json.dumps({"received": result[0], "stats": result[1]}, indent=1), file=out)
    for n, p in zip(nodes, ports):
        n.stop()
        yield p.stopListening()
    return result


def main(reactor, argv):
    parser = argparse.ArgumentParser(description="a mesh chat over sudp peer mode")
    parser.add_argument("--demo", action="store_true", help="three nodes in one process, then exit")
    parser.add_argument("--port", type=int, default=9101)
    parser.add_argument("--interface", default="127.0.0.1")
    parser.add_argument("--key", default="chat.key", help="this node's key (created, 0600, if missing)")
    parser.add_argument("--known", default="known_peers", help="the known-peers file")
    parser.add_argument("--tofu", action="store_true", help="trust a new peer's key on first use")
    parser.add_argument("--peer", action="append", default=[], help="HOST:PORT of a peer (repeat)")
    args = parser.parse_args(argv)
    return demo(reactor) if args.demo else node(reactor, args)


def missingExtra():
    """
    @return: L{EXTRA_MISSING} if the C{peer} extra is not installed, else None.
    """
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return EXTRA_MISSING
    return None


if __name__ == "__main__":
    problem = missingExtra()
    if problem:
        sys.exit(problem)  # the message on stderr, exit status 1
    task.react(main, [sys.argv[1:]])
