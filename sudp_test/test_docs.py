# -*- test-case-name: sudp_test.test_docs -*-
"""
The documentation builds and stays true to the repository: the site (mkdocs,
strict) with the API reference (pydoctor, epytext, warnings as errors), the
pictures redrawn by tools/make_images.py equal to the committed ones, every
module in docs/architecture.md's code map, and no reference to a file outside the
repository or to the original specifications by number.
"""

import glob
import importlib.util
import os
import re
import subprocess
import sys

from twisted.trial import unittest

from sudp_test.paths import ROOT

DOCS = os.path.join(ROOT, "docs")

def _missing(*modules):
    return [name for name in modules if importlib.util.find_spec(name) is None]

def codeMapRows(text):
    """
    @return: the table rows of the "The code map" section of C{text} (a
        Markdown page), up to the next heading.
    """
    section = text.split("\n## The code map\n", 1)[1].split("\n#", 1)[0] if "\n## The code map\n" in text else ""
    return [line for line in section.splitlines() if line.startswith("| `")]


def missingFromCodeMap(text, modules):
    """
    @return: the C{modules} (repository paths) that no row of the code map
        in C{text} names in its first column.
    """
    named = set()
    for row in codeMapRows(text):
        named.update(re.findall(r"`([^`]+)`", row.split(" | ")[0]))
    return [module for module in modules if module not in named]


class SiteTests(unittest.TestCase):
    def test_build(self):
        """
        C{mkdocs build --strict} builds the site without a warning, the API
        reference included: the hook (tools/mkdocs_apidocs.py) runs pydoctor
        with C{--warnings-as-errors} and turns each of its warnings into an
        mkdocs warning, which C{--strict} makes a failure.
        """
        missing = _missing("mkdocs", "pydoctor")
        if missing:
            raise unittest.SkipTest(f"not installed: {', '.join(missing)} (pip install -e '.[docs]' "
                                    f"--config-settings editable_mode=strict)")
        site = os.path.abspath(self.mktemp())
        result = subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", site],
            cwd=ROOT, capture_output=True, text=True, timeout=300)
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, output)
        self.assertNotIn("WARNING", output)
        for page in ("index.html", "deployment.html", "troubleshooting.html", "api/index.html",
                     "api/sudp.sdnotify.html", "images/handshake.svg", "images/performance.svg"):
            self.assertTrue(os.path.isfile(os.path.join(site, page)), page)

    def test_pydoctorCommand(self):
        """
        The API reference is built from the epytext docstrings of the whole
        C{sudp} package, and fails on any warning.
        """
        sys.path.insert(0, os.path.join(ROOT, "tools"))
        self.addCleanup(sys.path.remove, os.path.join(ROOT, "tools"))
        if _missing("mkdocs"):
            raise unittest.SkipTest("mkdocs is not installed")
        import mkdocs_apidocs

        command = mkdocs_apidocs.pydoctorCommand("out")
        self.assertIn("--docformat=epytext", command)
        self.assertIn("--warnings-as-errors", command)
        self.assertEqual(command[-1], os.path.join(ROOT, "sudp"))

class ImageTests(unittest.TestCase):
    def test_imagesUpToDate(self):
        """
        tools/make_images.py, run again, draws exactly the committed
        pictures: they cannot drift from the script or from the figures of
        docs/performance.md.
        """
        out = os.path.abspath(self.mktemp())
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_images.py"), out],
                       check=True, capture_output=True, timeout=60)
        drawn = sorted(os.listdir(out))
        self.assertEqual(drawn, ["handshake.svg", "performance.svg"])
        for name in drawn:
            with open(os.path.join(out, name), "rb") as f, open(os.path.join(DOCS, "images", name), "rb") as g:
                self.assertEqual(f.read(), g.read(),
                                 f"docs/images/{name} is stale: run python tools/make_images.py")

    def test_imagesUsed(self):
        """
        Each picture is shown by a page.
        """
        text = "".join(open(path, encoding="utf-8").read() for path in glob.glob(os.path.join(DOCS, "*.md")))
        for name in ("handshake.svg", "performance.svg"):
            self.assertIn(f"](images/{name})", text)

class ContentTests(unittest.TestCase):
    def documents(self):
        paths = glob.glob(os.path.join(DOCS, "*.md")) + [os.path.join(ROOT, "README.md")]
        return {os.path.relpath(path, ROOT): open(path, encoding="utf-8").read() for path in paths}

    def test_codeMap(self):
        """
        The code map of docs/architecture.md has a row for every module of
        the package.
        """
        architecture = open(os.path.join(DOCS, "architecture.md"), encoding="utf-8").read()
        modules = sorted(
            os.path.relpath(path, ROOT).replace(os.sep, "/")
            for pattern in ("sudp/**/*.py", "sudp/*.c", "twisted/plugins/*.py")
            for path in glob.glob(os.path.join(ROOT, pattern), recursive=True))
        self.assertTrue(modules)
        missing = missingFromCodeMap(architecture, modules)
        self.assertEqual(missing, [], "add these to the table in docs/architecture.md, 'The code map'")

    def test_codeMapNeedsARow(self):
        """
        The check of L{test_codeMap} fails for a module without a row: one
        named only in prose, in another column, in another section, or not
        at all is missing.
        """
        page = "\n".join([
            "# Architecture", "", "Prose names `sudp/prose.py`.", "", "## The code map", "",
            "| module | what it holds |", "|---|---|",
            "| `sudp/a.py`, `sudp/b.py` | two modules, and `sudp/second.py` in the second column |",
            "", "## After", "", "| `sudp/later.py` | a table of another section |", ""])
        modules = ["sudp/a.py", "sudp/b.py", "sudp/second.py", "sudp/prose.py", "sudp/later.py", "sudp/new.py"]
        self.assertEqual(missingFromCodeMap(page, modules),
                         ["sudp/second.py", "sudp/prose.py", "sudp/later.py", "sudp/new.py"])
        self.assertEqual(missingFromCodeMap("# no code map here", ["sudp/a.py"]), ["sudp/a.py"])

    def test_noOutsideReferences(self):
        """
        The documentation names the original specifications by their titles,
        never by a seed number, and cites no file outside the repository.
        """
        pattern = re.compile(r"seed 0\d\d|seed-0\d\d|seeds/|DESIGN\.md|\.\./shared", re.IGNORECASE)
        found = [f"{name}: {match.group(0)}" for name, text in self.documents().items()
                 for match in pattern.finditer(text)]
        self.assertEqual(found, [])

    def test_distributionName(self):
        """
        Installing from the package index names the distribution, txsudp.
        """
        pattern = re.compile(r"pip install '?sudp\b")
        found = [name for name, text in self.documents().items() if pattern.search(text)]
        self.assertEqual(found, [])


def pythonBlocks(path, needle):
    """
    @return: the Python code blocks of a Markdown file that mention C{needle}.
    """
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return [block for block in re.findall(r"```python\n(.*?)```", text, re.S) if needle in block]


class PeerExampleTests(unittest.TestCase):
    """
    The peer-mode examples of README.md and docs/peers.md run as written,
    each in a fresh interpreter (they listen on 127.0.0.1:11000 and 11001).
    """

    def runBlocks(self, path, expected):
        blocks = pythonBlocks(path, "sudp.peer")
        self.assertEqual(len(blocks), len(expected), f"{path}: {len(blocks)} peer examples")
        for block, wanted in zip(blocks, expected):
            directory = os.path.abspath(self.mktemp())
            os.makedirs(directory)
            env = dict(os.environ, PYTHONPATH=ROOT)
            result = subprocess.run([sys.executable, "-c", block], cwd=directory, env=env, capture_output=True,
                                    text=True, timeout=60)
            self.assertEqual(result.returncode, 0, f"{path}:\n{block}\n{result.stderr}")
            self.assertIn(wanted, result.stdout, f"{path}:\n{block}\n{result.stderr}")

    def test_readmeAndPeersPage(self):
        """
        (One test, so that no two examples take the same ports at once.)
        """
        self.runBlocks(os.path.join(ROOT, "README.md"), ["b'Hello!' from ('127.0.0.1', 11000)"])
        self.runBlocks(os.path.join(DOCS, "peers.md"), [
            "b got 'Hello, World!' from ('127.0.0.1', 11000)",
            "(b'Hello!', ('127.0.0.1', ",
        ])
