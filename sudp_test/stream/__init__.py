"""
Tests for L{sudp.stream}, one test module per module.
"""
