"""
The floors pyproject.toml declares, for .ci/floors.

C{python3 .ci/pins.py [EXTRA ...]} prints a pip constraints file that pins
every dependency (the core ones and those of the extras named) to its
declared floor: C{name>=X} and C{name>=X,<Y} become C{name==X}. A
dependency without a C{>=} floor, or one declared with two different
floors, is an error: a floor CI cannot install is not a floor.

C{python3 .ci/pins.py --requirements [EXTRA ...]} prints those
requirements as declared, caps included, one a line.

C{python3 .ci/pins.py --python} prints the lowest supported Python, from
C{requires-python} (C{>=3.10} gives C{3.10}); C{--pythons} prints every
Python a classifier names (C{3.10 3.11 ...}), for .ci/release.
"""

import re
import sys
import tomllib

# name, extras, >= floor first, then any caps (<2, !=1.3): no markers
FLOOR = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)"
                   r"(?:\s*,\s*[<>!=~]{1,3}\s*[0-9][^,;\s]*)*\s*")


def requirements(project, extras):
    """
    @param project: the C{[project]} table of pyproject.toml.
    @param extras: the names of the extras whose dependencies are added.
    @return: the core requirements and those of C{extras}, without repeats.
    @raise ValueError: for an extra pyproject.toml does not declare.
    """
    found = list(project.get("dependencies", []))
    for extra in extras:
        if extra not in project.get("optional-dependencies", {}):
            raise ValueError(f"pyproject.toml has no extra named {extra!r}")
        found += project["optional-dependencies"][extra]
    return list(dict.fromkeys(found))


def floors(project, extras):
    """
    @param project: the C{[project]} table of pyproject.toml.
    @param extras: the names of the extras whose dependencies are pinned too.
    @return: a dict from each dependency's normalised name to its floor.
    @raise ValueError: for a requirement without a C{>=} floor, or with two floors.
    """
    pins = {}
    for requirement in requirements(project, extras):
        match = FLOOR.fullmatch(requirement)
        if match is None:
            raise ValueError(f"{requirement!r} has no >= floor to pin")
        name, version = re.sub(r"[-_.]+", "-", match.group(1)).lower(), match.group(2)
        if pins.setdefault(name, version) != version:
            raise ValueError(f"{name} is declared with two floors, {pins[name]} and {version}")
    return pins


def lowestPython(project):
    """
    @param project: the C{[project]} table of pyproject.toml.
    @return: the lowest Python it supports, as C{"3.10"}.
    @raise ValueError: if C{requires-python} is not a plain C{>=} floor.
    """
    match = re.fullmatch(r"\s*>=\s*(3\.\d+)\s*", project.get("requires-python", ""))
    if match is None:
        raise ValueError(f"requires-python {project.get('requires-python')!r} is not a plain >= floor")
    return match.group(1)


def classifiedPythons(project):
    """
    @param project: the C{[project]} table of pyproject.toml.
    @return: the Python versions its classifiers name, as C{["3.10", ...]}.
    """
    prefix = "Programming Language :: Python :: "
    return [c[len(prefix):] for c in project.get("classifiers", [])
            if re.fullmatch(r"3\.\d+", c[len(prefix):]) and c.startswith(prefix)]


def main(argv, path="pyproject.toml"):
    """
    Print the constraints, one C{name==floor} a line; with C{--requirements}
    the requirements as declared; with C{--python} the lowest supported
    Python; with C{--pythons} those the classifiers name. Exit 1 with a
    message if pyproject.toml cannot be read so.
    """
    with open(path, "rb") as f:
        project = tomllib.load(f)["project"]
    try:
        if argv == ["--python"]:
            print(lowestPython(project))
            return 0
        if argv == ["--pythons"]:
            print(" ".join(classifiedPythons(project)))
            return 0
        if argv[:1] == ["--requirements"]:
            print("\n".join(requirements(project, argv[1:])))
            return 0
        pins = floors(project, argv)
    except ValueError as e:
        print(f"floors: {e}", file=sys.stderr)
        return 1
    for name, version in pins.items():
        print(f"{name}=={version}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
