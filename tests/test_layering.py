"""The dependency direction of DESIGN section 1 and of docs/ARCHITECTURE.md, checked on the
source (AST), not by convention:

- packages: protocol <- federation <- {node, hub}; node and hub never import each other;
  nothing in hub/ can reach node.core.db (a raw record). Only `peernet` (CLI, demo) sits
  above both.
- inside node: the web layer (node.web, and each domain's api, pages, feature and runtime
  modules) and the CLI layer (node.cli, node.commands, each domain's cli and output
  modules) import the domains; a domain module never imports web or CLI modules.
  node.core imports no other part of node.
- no import cycle anywhere, counting imports inside functions too.

Each rule is a function over a module graph, so the tests below also show each rule
catching a forbidden import in a small synthetic graph.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = {"protocol", "federation", "node", "hub", "helper", "peernet"}
ALLOWED = {
    "protocol": {"protocol"},
    "federation": {"protocol", "federation"},
    "node": {"protocol", "federation", "node"},
    "hub": {"protocol", "federation", "hub"},
    "helper": {"protocol", "federation", "helper"},
    "peernet": PROJECT,
}
WEB_NAMES = {"api", "pages", "feature", "runtime"}
CLI_NAMES = {"cli", "output"}

Graph = Mapping[str, set[str]]


def _imports(path: Path) -> set[str]:
    """Every module `path` names in an import, at any depth (`from a import b` gives both
    `a` and `a.b`: b may be a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            if node.args and isinstance(node.args[0], ast.Constant):
                found.add(str(node.args[0].value))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module":
            if node.args and isinstance(node.args[0], ast.Constant):
                found.add(str(node.args[0].value))
    return found


def module_graph(root: Path = ROOT, packages: Iterable[str] = PROJECT) -> dict[str, set[str]]:
    """Project module -> the project modules it imports (names that are not modules, such
    as `from a import some_function`, are dropped)."""
    files: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path
    return {
        name: {m for m in _imports(path) if m in files and m != name}
        for name, path in files.items()
    }


def role(module: str) -> str:
    """'web', 'cli' or 'domain', for a module of node."""
    parts = module.split(".")
    if parts[:2] == ["node", "web"]:
        return "web"
    if parts[:2] in (["node", "cli"], ["node", "commands"]):
        return "cli"
    last = parts[-1]
    if last in WEB_NAMES or last.endswith("_api") or last.endswith("_pages"):
        return "web"
    if last in CLI_NAMES or last.endswith("_cli"):
        return "cli"
    return "domain"


def direction_violations(graph: Graph) -> list[str]:
    bad = []
    for name, deps in graph.items():
        allowed = ALLOWED.get(name.split(".")[0], PROJECT)
        for dep in deps:
            if dep.split(".")[0] not in allowed:
                bad.append(f"{name} imports {dep}")
    return sorted(bad)


def layer_violations(graph: Graph) -> list[str]:
    bad = []
    for name, deps in graph.items():
        if not name.startswith("node.") or name == "node":
            continue
        for dep in deps:
            if not dep.startswith("node."):
                continue
            if role(name) == "domain" and role(dep) != "domain":
                bad.append(f"{name} ({role(name)}) imports {dep} ({role(dep)})")
            if name.startswith("node.core.") and not dep.startswith("node.core."):
                bad.append(f"{name} (core) imports {dep}")
    return sorted(bad)


def cycles(graph: Graph) -> list[list[str]]:
    """The import cycles of `graph` (its strongly connected components of 2+ modules, and
    modules that import themselves), by Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


# --- the project -----------------------------------------------------------------------------


def test_import_direction() -> None:
    assert direction_violations(module_graph()) == []


def test_node_layers() -> None:
    assert layer_violations(module_graph()) == []


def test_no_import_cycles() -> None:
    assert cycles(module_graph()) == []


def test_the_graph_sees_the_project() -> None:
    graph = module_graph()
    assert "node.core.db" in graph["node.records.encounters"]
    assert role("node.activation.api") == role("node.web.app") == "web"
    assert role("node.privacy.cli") == role("node.commands.init") == "cli"
    assert role("node.activation.states") == role("node.core.db") == "domain"


# --- each rule catches what it forbids --------------------------------------------------------


def test_direction_rule_catches_hub_importing_node() -> None:
    graph = {"hub.stats.api": {"federation.service", "node.core.db"}, "node.core.db": set()}
    assert direction_violations(graph) == ["hub.stats.api imports node.core.db"]


def test_layer_rule_catches_a_domain_importing_web_or_cli() -> None:
    graph = {
        "node.web.pages": {"node.records.encounters"},  # web -> domain: fine
        "node.privacy.cli": {"node.privacy.ledger"},  # CLI -> domain: fine
        "node.records.encounters": {"node.web.plumbing"},  # domain -> web: forbidden
        "node.activation.states": {"node.activation.cli"},  # domain -> CLI: forbidden
        "node.core.db": {"node.records.encounters"},  # core -> a domain: forbidden
    }
    assert layer_violations(graph) == [
        "node.activation.states (domain) imports node.activation.cli (cli)",
        "node.core.db (core) imports node.records.encounters",
        "node.records.encounters (domain) imports node.web.plumbing (web)",
    ]


def test_cycle_rule_catches_two_modules_importing_each_other() -> None:
    graph = {"node.core.appkeys": {"node.core.routes"}, "node.core.routes": {"node.core.appkeys"},
             "node.core.db": set(), "node.core.audit": {"node.core.audit"}}
    assert cycles(graph) == [["node.core.appkeys", "node.core.routes"], ["node.core.audit"]]


def test_checker_reads_every_import_form(tmp_path: Path) -> None:
    pkg = tmp_path / "node" / "records"
    pkg.mkdir(parents=True)
    (tmp_path / "node" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f() -> None:\n    from node.web import plumbing\n")
    (tmp_path / "node" / "web").mkdir()
    (tmp_path / "node" / "web" / "__init__.py").write_text("")
    (tmp_path / "node" / "web" / "plumbing.py").write_text(
        "import node.records.a\n__import__('node.records')\n"
    )
    graph = module_graph(tmp_path, ["node"])
    assert graph["node.records.a"] == {"node.web", "node.web.plumbing"}
    assert layer_violations(graph) == [
        "node.records.a (domain) imports node.web (web)",
        "node.records.a (domain) imports node.web.plumbing (web)",
    ]
    assert cycles(graph) == [["node.records.a", "node.web.plumbing"]]
