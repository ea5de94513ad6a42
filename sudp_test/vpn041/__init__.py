"""
Tests for L{sudp.vpn041}, one test module per module.
"""
