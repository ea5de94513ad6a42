"""
The model check shared by the authorized-keys and trusted-keys properties:
a key-list file (one key and comment per line, blank and C{#} lines
skipped) parses to exactly the keys listed, or fails at its first bad line.
"""

from sudp.errors import KeyFileError


def assertKeyListModel(test, lines, render, newline, fromFile, load, parse, name):
    """
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
