"""
Reading test vectors out of the documents that publish them.

A document holds fenced blocks tagged C{PREFIX-vectors} (lines
C{name = hex}) and C{PREFIX-params} (lines C{name = text}); C{#} starts a
comment line.
"""

import functools
import re

_LINE = re.compile(r"^([A-Za-z0-9_]+)[ \t]*=[ \t]*(.*?)[ \t]*$")


def parseVectors(text, prefix):
    """
    @return: C{(vectors, params)}: two dicts in document order, name -> bytes
        for C{PREFIX-vectors} blocks and name -> str for C{PREFIX-params}.
    @raise ValueError: on a line that is neither a comment nor C{name = value},
        on a name given twice, or on a value that is not hex in a vectors block.
    """
    block = re.compile(rf"^```({prefix}-vectors|{prefix}-params)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
    vectors, params = {}, {}
    for kind, body in block.findall(text):
        for line in body.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            m = _LINE.match(line)
            if m is None:
                raise ValueError(f"not a 'name = value' line: {line!r}")
            name, value = m.groups()
            if name in vectors or name in params:
                raise ValueError(f"{name} is defined twice")
            if kind == f"{prefix}-vectors":
                vectors[name] = bytes.fromhex(value)
            else:
                params[name] = value
    return vectors, params


def documentVectors(path, prefix):
    """
    @return: a function returning the parsed C{(vectors, params)} of the
        document at C{path}, read once.
    """

    @functools.lru_cache(maxsize=1)
    def documented():
        with open(path, encoding="utf-8") as f:
            return parseVectors(f.read(), prefix)

    return documented
