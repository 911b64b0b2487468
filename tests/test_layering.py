"""The dependency direction of DESIGN section 1, checked on the source (AST), not by convention:
protocol <- federation <- {node, hub}; node and hub never import each other; nothing in hub/
can reach node.db (a raw record). Only the `peernet` package (CLI, demo) sits above both.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = {"protocol", "federation", "node", "hub", "peernet"}
ALLOWED = {
    "protocol": {"protocol"},
    "federation": {"protocol", "federation"},
    "node": {"protocol", "federation", "node"},
    "hub": {"protocol", "federation", "hub"},
    "peernet": PROJECT,
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            if node.args and isinstance(node.args[0], ast.Constant):
                found.add(str(node.args[0].value))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module":
            if node.args and isinstance(node.args[0], ast.Constant):
                found.add(str(node.args[0].value))
    return found


def violations() -> list[str]:
    bad: list[str] = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in _imports(path):
                top = name.split(".")[0]
                if top in PROJECT and top not in allowed:
                    bad.append(f"{path.relative_to(ROOT)} imports {name}")
    return bad


def test_import_direction() -> None:
    assert violations() == []


def test_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("import node.db\nfrom node import db\n__import__('node.db')\n")
    assert {"node.db", "node"} <= _imports(sample)
