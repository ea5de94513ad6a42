"""
sframe: the framed, encrypted stream protocol of seed 003, as a wrapping
protocol over any Twisted stream (see docs/sframe.md).
"""
