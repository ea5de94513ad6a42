# -*- test-case-name: sudp_test.test_layers -*-
"""
The house's layering (docs/architecture.md): no import cycle between the
folders of sudp (C{sudp.udp}, C{sudp.stream}, C{sudp.gossip6},
C{sudp.vpn041}, C{sudp.peer}; each top-level module of C{sudp/} is a node of
its own), and no transport folder imports a handshake plug-in
(C{sudp.gossip6}): the glue that chooses a handshake by name
(L{sudp.parsers}, L{sudp.handshakes}, L{sudp.tap}) lives outside them.

Imports are read from the source with L{ast}, those inside functions
included, so a lazy import cannot hide a cycle.
"""

import ast
import os
import re

from twisted.trial import unittest

import sudp

ROOT = os.path.dirname(os.path.abspath(sudp.__file__))

FOLDERS = ("udp", "stream", "gossip6", "vpn041", "peer")

TRANSPORTS = ("sudp.udp", "sudp.stream")

PLUGINS = ("sudp.gossip6",)

def moduleFiles():
    """
    @return: C{(dotted module name, path)} of every module of sudp.
    """
    for folder, _, files in os.walk(ROOT):
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            parts = os.path.relpath(path, os.path.dirname(ROOT))[:-3].split(os.sep)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path

def importsOf(module, path):
    """
    @return: the set of dotted names C{module} imports anywhere in its
        source (module level or inside functions), relative imports resolved.
    """
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            # "from sudp import keys" imports the module sudp.keys
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found

def nodeOf(name):
    """
    @return: the layering node of a dotted name inside sudp (a folder, or a
        top-level module), or None for a name outside sudp or sudp itself.
    """
    parts = name.split(".")
    if parts[0] != "sudp" or len(parts) < 2:
        return None
    if parts[1] in FOLDERS:
        return f"sudp.{parts[1]}"
    if os.path.exists(os.path.join(ROOT, parts[1] + ".py")) or os.path.isdir(os.path.join(ROOT, parts[1])):
        return f"sudp.{parts[1]}"
    return None  # a name imported from the package itself (from sudp import __version__)

def moduleGraph():
    """
    @return: C{{module: set of the sudp modules and names it imports}}.
    """
    return {module: {n for n in importsOf(module, path) if nodeOf(n)} for module, path in moduleFiles()}

def nodeGraph(modules):
    """
    @return: C{{node: {other node: [(importing module, imported name)]}}}.
    """
    graph = {}
    for module, names in modules.items():
        source = nodeOf(module)
        if source is None:
            continue
        edges = graph.setdefault(source, {})
        for name in names:
            target = nodeOf(name)
            if target is not None and target != source:
                edges.setdefault(target, []).append((module, name))
    return graph

def cycles(graph):
    """
    @return: the strongly connected components of more than one node
        (Tarjan's algorithm), each sorted.
    """
    index, low, stack, onStack, out = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        onStack.add(node)
        for other in graph.get(node, {}):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in onStack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                onStack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out

class ImportParsingTests(unittest.SynchronousTestCase):
    """
    The import reader sees what the layering rules need.
    """

    def test_functionLevelAndRelative(self):
        """
        Imports inside functions count, and relative imports are resolved
        against the module's package.
        """
        path = self.mktemp() + ".py"
        with open(path, "w") as f:
            f.write("import os\nfrom . import wire\n"
                    "def later():\n    from sudp.gossip6.udp import x\n    from ..stream import frames\n")
        found = importsOf("sudp.udp.example", path)
        self.assertIn("sudp.gossip6.udp", found)
        self.assertIn("sudp.udp.wire", found)
        self.assertIn("sudp.stream.frames", found)
        self.assertIn("os", found)

    def test_cycleFound(self):
        """
        A cycle through three nodes is one component; an edge alone is none.
        """
        graph = {"a": {"b": []}, "b": {"c": []}, "c": {"a": []}, "d": {"a": []}}
        self.assertEqual(cycles(graph), [["a", "b", "c"]])

    def test_nodes(self):
        """
        A folder's modules are one node; a top-level module is its own.
        """
        self.assertEqual(nodeOf("sudp.udp.session"), "sudp.udp")
        self.assertEqual(nodeOf("sudp.gossip6"), "sudp.gossip6")
        self.assertEqual(nodeOf("sudp.keys"), "sudp.keys")
        self.assertEqual(nodeOf("sudp.keys.PublicKey"), "sudp.keys")
        self.assertIsNone(nodeOf("twisted.internet"))

class LayeringTests(unittest.SynchronousTestCase):
    """
    The rules of the house hold over every module of sudp.
    """

    def setUp(self):
        self.modules = moduleGraph()

    def test_noCycleBetweenFolders(self):
        """
        No import cycle joins two folders or top-level modules of sudp.
        """
        graph = nodeGraph(self.modules)
        found = cycles(graph)
        detail = []
        for component in found:
            for source in component:
                for target, where in sorted(graph[source].items()):
                    if target in component:
                        detail.append(f"{source} -> {target}: {sorted(where)[0]}")
        self.assertEqual(found, [], "\n".join(detail))

    def test_transportsImportNoHandshakePlugin(self):
        """
        sudp/udp and sudp/stream import no handshake plug-in: a handshake is
        an object they are given (L{sudp.interfaces.IHandshake}).
        """
        offending = sorted(
            (module, name)
            for module, names in self.modules.items()
            if nodeOf(module) in TRANSPORTS
            for name in names
            if nodeOf(name) in PLUGINS
        )
        self.assertEqual(offending, [])


_HEADER = re.compile(r"^# -\*- test-case-name: (?P<names>[\w.]+(?:, [\w.]+)*) -\*-$")


def testCaseNames(path):
    """
    @return: the test modules the first line of C{path} names, or None
        without a C{test-case-name} header.
    """
    with open(path, encoding="utf-8") as f:
        match = _HEADER.match(f.readline().rstrip("\n"))
    return None if match is None else match.group("names").split(", ")


class TestCaseNameTests(unittest.SynchronousTestCase):
    """
    Every source module names its tests in a C{test-case-name} header (the
    first line), and every module it names exists: C{trial --testmodule}
    and editors find a module's tests from it.
    """

    def sources(self):
        top = os.path.dirname(ROOT)
        plugins = os.path.join(top, "twisted", "plugins")
        paths = [path for _, path in moduleFiles()]
        paths += [os.path.join(plugins, name) for name in sorted(os.listdir(plugins)) if name.endswith(".py")]
        return top, paths

    def test_everyModuleNamesItsTests(self):
        top, paths = self.sources()
        missing = [os.path.relpath(path, top) for path in paths if testCaseNames(path) is None]
        self.assertEqual(missing, [])

    def test_namedTestModulesExist(self):
        top, paths = self.sources()
        wrong = []
        for path in paths:
            for name in testCaseNames(path) or ():
                where = os.path.join(top, *name.split("."))
                if not (os.path.exists(where + ".py") or os.path.exists(os.path.join(where, "__init__.py"))):
                    wrong.append(f"{os.path.relpath(path, top)}: {name}")
        self.assertEqual(wrong, [])

    def test_headerParsing(self):
        """
        The check reads the header form and nothing else.
        """
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
            f.write("# -*- test-case-name: sudp_test.test_a, sudp_test.udp.test_b -*-\n")
        self.addCleanup(os.remove, f.name)
        self.assertEqual(testCaseNames(f.name), ["sudp_test.test_a", "sudp_test.udp.test_b"])
        with open(f.name, "w") as g:
            g.write('"""\nno header\n"""\n')
        self.assertIsNone(testCaseNames(f.name))


class FloorsTableTests(unittest.SynchronousTestCase):
    """
    .ci/floors runs, for each dependency at its floor, the test modules it
    serves; each name there must still be a test module or package (a
    moved test module would otherwise fail only in CI).
    """

    def test_everyServedModuleExists(self):
        top = os.path.dirname(ROOT)
        path = os.path.join(top, ".ci", "floors")
        if not os.path.exists(path):
            raise unittest.SkipTest("no .ci/floors in this tree (an installed copy)")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        table = re.search(r"declare -A serves=\((.*?)\n\)", text, re.S)
        self.assertIsNotNone(table)
        names = [n for value in re.findall(r'\]="([^"]*)"', table.group(1)) for n in value.split()]
        self.assertTrue(names)
        missing = []
        for name in names:
            where = os.path.join(top, "sudp_test", *name.split("."))
            if not (os.path.exists(where + ".py") or os.path.exists(os.path.join(where, "__init__.py"))):
                missing.append(name)
        self.assertEqual(missing, [])
