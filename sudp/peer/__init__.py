# -*- test-case-name: sudp_test.peer -*-
"""
Peer mode: symmetric secure peers on one UDP socket, with the feature set
of py-vault-udp (its README) on sudp/1's security (docs/peers.md). ::

  knownpeers  the known-peers file: pinned Ed25519 keys by address (or trust on first use)
  framing     the peer message inside a DATA packet: version, compression, padding; MTU
  node        PeerNode: one socket, many peers, one sudp/1 session per peer
  blocking    PeerSocket: a thread-safe blocking facade for code without a reactor
"""
