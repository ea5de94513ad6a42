"""
What a benchmark measured on: which sudp, which data path, which machine.

    python benchmarks/environment.py

prints both as JSON. benchmarks/run.py records them in every result file
and refuses to measure a sudp whose compiled speedups are missing or older
than their source while a built one exists (the checkout's C{sudp/} without
the compiled module shadows an installed sudp that has it: a newcomer once
measured the pure-Python path by mistake).

Which sudp is measured (L{chooseSudp}): the checkout's, when its C module
is built there (a developer's C{setup.py build_ext --inplace} or a strict
editable install); otherwise an installed one (the README's C{pip install
.}); otherwise the checkout's pure-Python code, said loudly. Server
processes get the same one (C{SUDP_BENCH_HOME}).
"""

import glob
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HOME_VARIABLE = "SUDP_BENCH_HOME"


class StaleBuild(Exception):
    """
    The sudp to be measured lacks compiled speedups that are built
    elsewhere, or they are older than their source.
    """


def _compiled(home):
    """
    @return: the compiled speedups in the C{sudp} package under C{home}.
    """
    return sorted(glob.glob(os.path.join(home, "sudp", "_speedups*.so")) +
                  glob.glob(os.path.join(home, "sudp", "_speedups*.pyd")))


def _installedHome():
    """
    @return: the folder holding an installed C{sudp} package other than the
        checkout's, or None.
    """
    saved = sys.path[:]
    try:
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") not in (ROOT, HERE)]
        spec = importlib.util.find_spec("sudp")
    finally:
        sys.path[:] = saved
    if spec is None or not spec.submodule_search_locations:
        return None
    home = os.path.dirname(os.path.abspath(list(spec.submodule_search_locations)[0]))
    return None if home == ROOT else home


def chooseSudp(root=ROOT, environ=os.environ, path=sys.path):
    """
    Decide which sudp to measure and put it first on C{path}.

    @param root: the checkout.
    @return: the folder holding its C{sudp} package.
    @raise StaleBuild: if the checkout's compiled speedups are older than
        C{sudp/_speedups.c}.
    """
    home = environ.get(HOME_VARIABLE)
    if home is None:
        installed = _installedHome()
        if _compiled(root) or installed is None:
            home = root
        else:
            home = installed
    source = os.path.join(home, "sudp", "_speedups.c")
    if os.path.exists(source):
        for built in _compiled(home):
            if os.path.getmtime(built) < os.path.getmtime(source):
                raise StaleBuild(
                    f"{built} is older than sudp/_speedups.c: rebuild it "
                    f"(python setup.py build_ext --inplace, or pip install again) before measuring")
    environ[HOME_VARIABLE] = home
    if home not in path:
        path.insert(0, home)
    return home


def checkDataPath(home):
    """
    Refuse a sudp without compiled speedups while a built one exists.

    @return: L{dataPath}'s description of what will be measured.
    @raise StaleBuild: if the imported sudp has no C speedups but a built
        module exists in the checkout, its build folder or an installed
        sudp.
    """
    from sudp import speedups

    info = dataPath()
    if speedups.native is None and not os.environ.get("SUDP_NO_SPEEDUPS"):
        elsewhere = _compiled(ROOT) + glob.glob(os.path.join(ROOT, "build", "lib*", "sudp", "_speedups*.so"))
        installed = _installedHome()
        if installed:
            elsewhere += _compiled(installed)
        elsewhere = [p for p in elsewhere if not p.startswith(os.path.join(home, "sudp") + os.sep)]
        if elsewhere:
            raise StaleBuild(
                f"the sudp imported from {info['sudp']} has no compiled C speedups, but {elsewhere[0]} does: "
                f"measure that one (set {HOME_VARIABLE} to the folder holding its sudp package), or rebuild "
                f"here (python setup.py build_ext --inplace)")
    return info


def dataPath():
    """
    @return: which sudp is imported and which data path it runs.
    """
    import sudp
    from sudp import speedups

    return {
        "sudp": os.path.dirname(os.path.abspath(sudp.__file__)),
        "version": getattr(sudp, "__version__", None),
        "data path": speedups.describe(),
        "speedups": speedups.native is not None,
        "native cipher": speedups.nativeCipher is not None,
    }


def _version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpuModel():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine():
    """
    @return: the machine and software a figure was measured on.
    """
    from cryptography.hazmat.backends.openssl import backend

    from sudp import speedups
    from sudp.cpufeatures import hasAESInstructions

    return {
        "cpu": _cpuModel(),
        "cpus": os.cpu_count(),
        "aes instructions": hasAESInstructions(),
        "kernel": platform.release(),
        "python": platform.python_version() + " " + platform.python_implementation(),
        "twisted": _version("twisted"),
        "cryptography": _version("cryptography"),
        "openssl (cryptography)": backend.openssl_version_text(),
        "openssl (native cipher)": getattr(speedups.native, "OPENSSL_VERSION", None),
        "uvloop": _version("uvloop"),
        "aioquic": _version("aioquic"),
        "git": _gitRevision(),
    }


def _gitRevision():
    try:
        out = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


if __name__ == "__main__":
    try:
        where = chooseSudp()
        print(json.dumps({"data path": checkDataPath(where), "machine": machine()}, indent=2))
    except StaleBuild as e:
        sys.exit(f"benchmarks: {e}")
