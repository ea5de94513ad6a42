"""
An mkdocs hook (mkdocs.yml, C{hooks:}) that builds the API reference of the
C{sudp} package with pydoctor (epytext docstrings) and puts it in the site
under C{api/}, so that C{mkdocs build --strict} builds the whole site, API
reference included, and fails on any pydoctor warning as on its own.

pydoctor runs with C{--warnings-as-errors}: when it reports a warning (a
docstring it cannot parse, a link it cannot resolve), each of its warning
lines is logged as an mkdocs warning, which C{--strict} turns into a failed
build.
"""

import logging
import os
import shutil
import subprocess
import sys
import tempfile

from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.apidocs")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_built = []


def pydoctorCommand(output):
    """
    @return: the pydoctor command line that writes the API reference of
        C{sudp} to C{output}.
    """
    return [sys.executable, "-m", "pydoctor", "--quiet", "--warnings-as-errors", "--docformat=epytext",
            "--project-name=sudp", f"--project-base-dir={ROOT}", f"--html-output={output}",
            os.path.join(ROOT, "sudp")]


def on_files(files, config):
    work = tempfile.mkdtemp(prefix="sudp-apidocs-")
    _built.append(work)
    output = os.path.join(work, "api")
    result = subprocess.run(pydoctorCommand(output), cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in (result.stdout + result.stderr).splitlines()
                 if line.strip() and not line.startswith(("moving ", "adding "))]
        for line in lines or [f"pydoctor exited with status {result.returncode}"]:
            log.warning("pydoctor: %s", line)
    for directory, _, names in os.walk(output):
        for name in sorted(names):
            path = os.path.relpath(os.path.join(directory, name), work)
            files.append(File(path.replace(os.sep, "/"), work, config["site_dir"], config["use_directory_urls"]))
    return files


def on_post_build(config):
    while _built:
        shutil.rmtree(_built.pop(), ignore_errors=True)
