# -*- test-case-name: sudp_test.udp -*-
"""
sudp/1: the secure UDP protocol of the UDP whitepaper.

Sans-IO engines (L{sudp.udp.server.ServerEngine}, L{sudp.udp.client.ClientEngine})
hold all protocol logic; L{sudp.udp.adapters} drives them from Twisted; the wire
format is specified in docs/protocol.md.
"""
