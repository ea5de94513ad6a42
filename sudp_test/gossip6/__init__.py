"""
Tests for L{sudp.gossip6}, one test module per module.
"""
