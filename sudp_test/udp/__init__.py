"""
Tests for L{sudp.udp}, one test module per module.
"""
