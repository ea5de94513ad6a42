# -*- test-case-name: sudp_test.stream -*-
"""
sframe: the framed, encrypted stream protocol of the peer-to-peer spec, as a wrapping
protocol over any Twisted stream (see docs/sframe.md).
"""
