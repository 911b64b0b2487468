"""`protocol/` is pure: it imports nothing above it (federation, node, hub, peernet) and no
I/O, clock or randomness module, and never reads the clock (checked on the AST)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ROOT / "protocol"

FORBIDDEN_MODULES = {
    # layers above
    "federation",
    "node",
    "hub",
    "peernet",
    # I/O, processes, network, storage
    "socket",
    "ssl",
    "asyncio",
    "aiohttp",
    "sqlalchemy",
    "alembic",
    "os",
    "io",
    "pathlib",
    "shutil",
    "subprocess",
    "threading",
    "multiprocessing",
    "urllib",
    "http",
    "requests",
    "sqlite3",
    "logging",
    "tempfile",
    # clock and randomness
    "time",
    "random",
    "secrets",
    "uuid",
    "nacl.utils",
}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time", "time_ns", "monotonic", "urandom", "random"}
FORBIDDEN_BUILTINS = {"open", "print", "input", "exec", "eval", "__import__"}


def _problems(source: str, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, filename=name)):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.append(f"{name}: relative import")
            base = node.module or ""
            modules = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for module in modules:
            for bad in FORBIDDEN_MODULES:
                if module == bad or module.startswith(bad + "."):
                    found.append(f"{name}: imports {module}")
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in FORBIDDEN_CALLS:
                found.append(f"{name}: calls .{func.attr}()")
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_BUILTINS:
                found.append(f"{name}: calls {func.id}()")
    return found


def test_protocol_is_pure() -> None:
    files = sorted(PROTOCOL.glob("*.py"))
    assert len(files) >= 10
    problems = [p for f in files for p in _problems(f.read_text("utf-8"), f.name)]
    assert problems == []


def test_the_checker_catches_violations() -> None:
    sample = (
        "import os\nfrom federation import roster\nimport nacl.utils\nfrom time import time\n"
        "import datetime\nx = datetime.datetime.now()\nopen('f')\nfrom . import y\n"
    )
    problems = _problems(sample, "x.py")
    for needle in ("os", "federation", "nacl.utils", "time", ".now()", "open()", "relative"):
        assert any(needle in p for p in problems), needle
