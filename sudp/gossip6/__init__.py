# -*- test-case-name: sudp_test.gossip6 -*-
"""
gossip6: the Gossip-6 spec's mutual-authentication handshake (ephemeral X25519 and
RSA identities, scrypt proof of work, SHA3-256 digests signed with
RSA-PSS, freshness, address binding, trusted keys shared out of band),
selectable on sudp (UDP, behind the stateless cookie) and sframe (streams)
endpoints with C{handshake=gossip6}. The specification is docs/gossip6.md. ::

  config    options (freshness, skew, scrypt parameters, difficulty, addresses)
  wire      the byte layout of m, m|s and the UDP and stream messages
  proof     the scrypt proof of work: check, and solve (in a thread)
  checks    the server's and the client's ordered discard rules, the reuse record
  keys      the transcript and the session keys
  udp       the halves of the UDP server and client engines
  stream    the key exchange for sframe
  handshake the plug-in object (sudp.interfaces.IHandshake) endpoints are given
"""
