"""
Tests for L{sudp.peer}, one test module per module.
"""
