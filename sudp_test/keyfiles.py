"""
Helpers shared by the key-file tests (Ed25519 and RSA alike): a fresh
directory per test, and the checks of the key-list files (authorized
keys, trusted keys: one key and comment per line, blank and C{#} lines
skipped).
"""

import itertools
import os

from hypothesis import strategies as st

from sudp.errors import KeyFileError

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class TempDirMixin:
    """
    A fresh directory per test and fresh file names in it.
    """

    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.counter = itertools.count()
        self.path = os.path.join(self.dir, "id.key")

    def freshPath(self, suffix=""):
        """
        @return: a path in the test directory not used before.
        """
        return os.path.join(self.dir, f"f{next(self.counter)}{suffix}")

    def writeFile(self, data, mode=0o600, suffix=""):
        """
        Write C{data} (bytes or str) to a fresh file with C{mode}.

        @return: its path.
        """
        path = self.freshPath(suffix)
        with open(path, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(path, mode)
        return path


def nearKeyTexts(valid, changeAt, removeAt, insertAt, randomKeys):
    """
    A strategy of texts close to a valid public key, each drawn from
    C{valid}: one character changed (at a position from C{changeAt}),
    removed (C{removeAt}) or added (C{insertAt}); whitespace around it;
    upper-cased; or a text of C{randomKeys} (the prefix and random
    base64url).
    """
    return st.one_of(
        st.tuples(valid, changeAt, st.sampled_from(B64URL + "+/=! \t.")).map(
            lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + 1:]),
        st.tuples(valid, removeAt).map(lambda t: t[0][: t[1]] + t[0][t[1] + 1:]),
        st.tuples(valid, insertAt, st.sampled_from(B64URL)).map(
            lambda t: t[0][: t[1]] + t[2] + t[0][t[1]:]),
        st.tuples(valid, st.sampled_from(["", " ", "\n", "\t", "\u2003", "\x00"]),
                  st.sampled_from(["", " ", "\r\n", "\x0b"])).map(lambda t: t[1] + t[0] + t[2]),
        valid.map(str.upper),
        randomKeys,
    )


def assertKeyListModel(test, lines, render, newline, fromFile, load, parse, name):
    """
    A key-list file parses to exactly the keys listed, or fails at its
    first bad line.

    @param lines: drawn lines: C{("key", key, comment, ...)}, C{("skip",
        text)} or C{("bad", text)}; C{render(line)} gives a line's text.
    @param fromFile: read through C{load(path)} from a file written with
        C{test.writeFile}, else C{parse(text)}, whose errors name C{name}.
    """
    text = newline.join(render(line) for line in lines)
    expected, firstBad = {}, None
    for number, line in enumerate(lines, 1):
        if line[0] == "bad":
            firstBad = number
            break
        if line[0] == "key":
            expected[line[1]] = line[2].strip()
    if fromFile:
        path = test.writeFile(text.encode("utf-8"), 0o644)
        name, result = path, lambda: load(path)
    else:
        result = lambda: parse(text)  # noqa: E731
    if firstBad is None:
        test.assertEqual(result(), expected)
    else:
        e = test.assertRaises(KeyFileError, result)
        test.assertIn(f"{name}:{firstBad}:", str(e))


def assertKeyListTotal(test, content, load, parse, keyClass):
    """
    Arbitrary text to C{parse}, arbitrary bytes (invalid UTF-8 included)
    to C{load} from a file: a dict of C{keyClass} keys to C{str} comments,
    or L{KeyFileError}, never anything else.
    """
    try:
        if isinstance(content, str):
            keys = parse(content)
        else:
            keys = load(test.writeFile(content, 0o644))
    except KeyFileError:
        return
    for key, comment in keys.items():
        test.assertIsInstance(key, keyClass)
        test.assertIsInstance(comment, str)
