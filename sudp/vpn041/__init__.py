# -*- test-case-name: sudp_test.vpn041 -*-
"""
vpn041: the gateway profile of spec 041 (docs/vpn041.md).

An authentication plane over TLS (pyOpenSSL, certificates verified on both
sides) hands each client a 1-byte session id and a random AES session key;
a UDP data plane then carries pushes both ways as
C{[sessionId 1][nonce 16][payload]}, the payload AES-encrypted with a key
and IV derived per packet from (session key, nonce) when C{useEncryption}
is true. As the spec says, the UDP plane has no integrity protection; an
authenticated variant (the same header plus a 16-byte tag) is an option. ::

  settings    the flat appSettings file (useEncryption, encryptionType)
  dataplane   the datagram format, per-packet keys, AES, the MTU bound (sans-IO)
  nonces      the nonces and each session's record of them (sans-IO)
  tls         the auth plane's TLS contexts per encryptionType
  auth        the auth plane's request and response, and the session ids
  transport   the session transport and UDP protocol both sides use
  gateway     the server: auth listener, UDP port, sessions
  client      the client: authenticate, then push both ways
"""
