# -*- test-case-name: sudp_test.test_packaging -*-
"""
Packaging: the sdist carries the license, changelog, tests and docs; the
wheel built from it carries the Twisted plugin file (and not Twisted's own
files), the license and its SPDX metadata; Twisted finds our plugins after a
real install into a fresh virtual environment, both from the wheel and from
a strict editable install; and a build without a C compiler succeeds with
one warning that a person at a terminal sees.

This builds and installs for real (dependencies come from the package index
or pip's cache), so it takes a minute or two.
"""

import email.parser
import json
import fcntl
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import tarfile
import termios
import time
import zipfile

from twisted.trial import unittest

import sudp

from sudp_test.paths import ROOT

PLUGIN_FILE = "twisted/plugins/sudp_plugins.py"

DIST = f"txsudp-{sudp.__version__}"

SUPPORTED_PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

PROJECT_URLS = {"Homepage", "Documentation", "Source", "Issues", "Changelog"}

NO_SPEEDUPS = "WARNING: txsudp's optional C speedups were not built"

IGNORE = shutil.ignore_patterns(".venv", "_trial_temp*", "build", "dist", "*.egg-info",
                                "__pycache__", ".git", "dropin.cache", ".hypothesis", "results", "*.so", "*.pyd")

CHECK_TWISTED_INIT = r"""
import base64, csv, hashlib, importlib.metadata as md, os, sys
import twisted.plugins
dist = md.distribution("twisted")
init = os.path.join(os.path.dirname(twisted.plugins.__file__), "__init__.py")
rel = os.path.relpath(init, dist.locate_file("")).replace(os.sep, "/")
record = {f.as_posix(): f.hash for f in dist.files if f.hash}
h = record[rel]
with open(init, "rb") as f:
    actual = base64.urlsafe_b64encode(hashlib.new(h.mode, f.read()).digest()).rstrip(b"=").decode()
print("twisted/plugins/__init__.py", "untouched" if actual == h.value else "MODIFIED")
sys.exit(0 if actual == h.value else 1)
"""

def _run(args, cwd, timeout=600):
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout

def _runOnTerminal(args, cwd, env, timeout=600):
    """
    Run C{args} as a person at a terminal would: a new pseudo-terminal is its
    controlling terminal, standard input, output and error.

    @return: its exit status, and all it showed on the terminal.
    """
    master, slave = pty.openpty()
    # a session of its own (start_new_session), whose controlling terminal
    # the pseudo-terminal then becomes (TIOCSCTTY on its standard input)
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True,
                            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    shown, deadline = [], time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([master], [], [], max(0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"{' '.join(args)} ran past {timeout}s:\n{b''.join(shown)[-3000:]!r}")
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the last process holding the terminal has gone
                break
            if not data:
                break
            shown.append(data)
        return proc.wait(timeout=60), b"".join(shown).decode("utf-8", "replace").replace("\r\n", "\n")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()

class PackagingTests(unittest.TestCase):
    def setUp(self):
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(self.work)
        self.src = os.path.join(self.work, "src")
        shutil.copytree(ROOT, self.src, ignore=IGNORE)
        self.venv = os.path.join(self.work, "venv")
        _run([sys.executable, "-m", "venv", self.venv], self.work)
        self.python = os.path.join(self.venv, "bin", "python")
        # a directory outside the source tree, so nothing is imported from it
        self.elsewhere = os.path.join(self.work, "elsewhere")
        os.makedirs(self.elsewhere)
        shutil.copy(os.path.join(ROOT, "sudp_test", "plugincheck.py"), self.elsewhere)

    def checkInstalled(self):
        out = _run([self.python, "plugincheck.py"], self.elsewhere)
        self.assertIn("services: ['sudp', 'vpn041']", out)
        self.assertIn("servers: ['sframe', 'sudp']", out)
        self.assertIn("clients: ['sframe', 'sudp']", out)
        self.assertNotIn("PROBLEM", out)
        out = _run([self.python, "-c", CHECK_TWISTED_INIT], self.elsewhere)
        self.assertIn("untouched", out)
        out = _run([os.path.join(self.venv, "bin", "sudp"), "keygen", "k.key"], self.elsewhere)
        self.assertIn("ed25519-", out)
        out = _run([os.path.join(self.venv, "bin", "twist"), "sudp", "--help"], self.elsewhere)
        self.assertIn("--port", out)
        out = _run([os.path.join(self.venv, "bin", "twist"), "vpn041", "--help"], self.elsewhere)
        self.assertIn("--appsettings", out)

    def checkMetadata(self, text):
        """
        C{text}, a wheel's METADATA or an sdist's PKG-INFO, names txsudp and
        its version, declares the license as an SPDX expression with its
        file, a classifier for each supported Python from Requires-Python
        on, and the project URLs.
        """
        meta = email.parser.Parser().parsestr(text)
        self.assertEqual((meta["Name"], meta["Version"]), ("txsudp", sudp.__version__))
        self.assertEqual(meta["License-Expression"], "MIT")
        self.assertEqual(meta.get_all("License-File"), ["LICENSE"])
        self.assertIsNone(meta["License"], "the license is an SPDX expression, not free text")
        classifiers = meta.get_all("Classifier")
        self.assertFalse([c for c in classifiers if c.startswith("License ::")], classifiers)
        pythons = [c.rsplit(" :: ", 1)[1] for c in classifiers
                   if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]
        self.assertEqual(pythons, SUPPORTED_PYTHONS)
        self.assertEqual(meta["Requires-Python"], ">=" + SUPPORTED_PYTHONS[0])
        running = "{}.{}".format(*sys.version_info)
        self.assertIn(running, pythons, "tests pass on this Python: give it a classifier")
        urls = dict(url.split(", ", 1) for url in meta.get_all("Project-URL"))
        self.assertEqual(set(urls), PROJECT_URLS)
        self.assertFalse([u for u in urls.values() if not u.startswith("https://github.com/sudp-dev/txsudp")])

    def checkSdist(self, path):
        """
        The sdist at C{path} holds the license, the changelog, the C source,
        the tests, docs, examples and benchmarks a packager needs, no build
        products, and metadata that passes L{checkMetadata}.
        """
        self.assertEqual(os.path.basename(path), DIST + ".tar.gz")
        with tarfile.open(path) as sdist:
            names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
            self.checkMetadata(sdist.extractfile(f"{DIST}/PKG-INFO").read().decode())
            shipped = sdist.extractfile(f"{DIST}/LICENSE").read()
        with open(os.path.join(ROOT, "LICENSE"), "rb") as f:
            self.assertEqual(shipped, f.read())
        for name in ["LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml", "setup.py",
                     "sudp/_speedups.c", PLUGIN_FILE, "docs/index.md", "docs/images/handshake.svg",
                     "mkdocs.yml", "tools/mkdocs_apidocs.py", "examples/mesh_chat.py",
                     "examples/vpn041/gateway.appsettings.json", "sudp_test/test_packaging.py",
                     "benchmarks/run.py", "benchmarks/creceiver.c", "benchmarks/peerservers.py"]:
            self.assertIn(name, names)
        self.assertFalse([n for n in names if n.endswith((".so", ".pyc")) or "dropin.cache" in n
                          or "__pycache__" in n or n.startswith((".venv", "_trial_temp"))])

    def test_wheel(self):
        """
        python -m build makes the sdist (L{checkSdist}) and from it the
        wheel, which holds twisted/plugins/sudp_plugins.py and neither
        twisted/__init__.py nor twisted/plugins/__init__.py, and the LICENSE
        with its SPDX metadata (L{checkMetadata}); installed into a fresh
        venv, Twisted finds every plugin, verifyObject passes, Twisted's own
        plugins/__init__.py matches its RECORD hash, and the sudp and twist
        sudp commands run.
        """
        wheels = os.path.join(self.work, "dist")
        _run([self.python, "-m", "pip", "install", "-q", "build"], self.work)
        _run([self.python, "-m", "build", "--outdir", wheels, self.src], self.work)  # the sdist, then the wheel from it
        [sdist] = [os.path.join(wheels, w) for w in os.listdir(wheels) if w.endswith(".tar.gz")]
        self.checkSdist(sdist)
        [wheel] = [os.path.join(wheels, w) for w in os.listdir(wheels) if w.endswith(".whl")]
        self.assertTrue(os.path.basename(wheel).startswith(DIST + "-"), wheel)
        archive = zipfile.ZipFile(wheel)
        names = archive.namelist()
        self.checkMetadata(archive.read(f"{DIST}.dist-info/METADATA").decode())
        with open(os.path.join(ROOT, "LICENSE"), "rb") as f:
            self.assertEqual(archive.read(f"{DIST}.dist-info/licenses/LICENSE"), f.read())
        self.assertIn(PLUGIN_FILE, names)
        self.assertNotIn("twisted/plugins/__init__.py", names)
        self.assertNotIn("twisted/__init__.py", names)
        self.assertFalse([n for n in names if n.startswith("twisted/") and n != PLUGIN_FILE], names)
        self.assertFalse([n for n in names if "dropin.cache" in n or n.startswith("sudp_test/")])
        packages = {os.path.dirname(n) for n in names if n.startswith("sudp/") and n.endswith("__init__.py")}
        onDisk = {
            os.path.relpath(d, ROOT).replace(os.sep, "/")
            for d, _, files in os.walk(os.path.join(ROOT, "sudp")) if "__init__.py" in files
        }
        self.assertEqual(packages, onDisk, "every sudp package must be listed in pyproject.toml")
        # the C speedups are built where a compiler is at hand (optional elsewhere)
        built = [n for n in names if n.startswith("sudp/_speedups") and n.endswith((".so", ".pyd"))]
        if shutil.which("cc") or shutil.which("gcc"):
            self.assertEqual(len(built), 1, names)
        self.assertFalse([n for n in names if n.endswith(".c")], "C sources stay out of the wheel")
        _run([self.python, "-m", "pip", "install", "-q", wheel], self.work)
        self.checkInstalled()
        if built:
            line = _run([self.python, "-c", "from sudp import speedups; print(speedups.describe())"],
                        self.elsewhere)
            self.assertIn("C speedups", line)
            # the README's benchmark command after this install, from the checkout (whose sudp/ has
            # no compiled module): it measures the installed sudp and its C speedups
            chosen = json.loads(_run([self.python, os.path.join("benchmarks", "environment.py")], self.src))
            self.assertTrue(chosen["data path"]["sudp"].startswith(self.venv), chosen["data path"])
            self.assertIn("C speedups", chosen["data path"]["data path"])
        site = _run([self.python, "-c", "import twisted.plugins.sudp_plugins as m; print(m.__file__)"],
                    self.elsewhere).strip()
        self.assertTrue(site.startswith(self.venv), site)

    def test_editableStrict(self):
        """
        pip install -e . --config-settings editable_mode=strict (the
        documented editable install) also lets Twisted find every plugin,
        from the source tree.
        """
        _run([self.python, "-m", "pip", "install", "-q", "-e", self.src,
              "--config-settings", "editable_mode=strict"], self.work)
        self.checkInstalled()
        where = _run([self.python, "-c", "import sudp; print(sudp.__file__)"], self.elsewhere).strip()
        self.assertEqual(os.path.realpath(where), os.path.realpath(os.path.join(self.src, "sudp", "__init__.py")))



    def test_noCompiler(self):
        """
        Without a working C compiler (CC=/bin/false) pip still builds the
        wheel, without the C speedups, and prints one warning: the
        pure-Python data path is used, and how to get the fast one. Plain
        pip hides a successful build's output, so the warning goes to the
        terminal: run at one, it shows once; with no terminal it is in the
        build output that pip -v (or a CI log) shows, once.
        """
        env = dict(os.environ, CC="/bin/false")
        wheels = os.path.join(self.work, "wheels")
        status, shown = _runOnTerminal([self.python, "-m", "pip", "wheel", "--no-deps", "-w", wheels, self.src],
                                       self.work, env)
        self.assertEqual((status, shown.count(NO_SPEEDUPS)), (0, 1), shown[-3000:])
        for words in ["(/bin/false failed with exit status 1)", "pure-Python data path",
                      "apt install build-essential python3-dev",
                      "pip install --force-reinstall --no-deps --no-cache-dir txsudp"]:
            self.assertIn(words, shown)
        [wheel] = [os.path.join(wheels, w) for w in os.listdir(wheels) if w.startswith(DIST + "-")]
        self.assertFalse([n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("sudp/_speedups")])

        shutil.rmtree(wheels)
        result = subprocess.run([self.python, "-m", "pip", "wheel", "-v", "--no-deps", "-w", wheels, self.src],
                                cwd=self.work, env=env, capture_output=True, text=True, timeout=600,
                                start_new_session=True)  # no controlling terminal
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertEqual((result.stdout + result.stderr).count(NO_SPEEDUPS), 1, result.stdout[-3000:])
