"""Two asyncio patterns that hung a CI run, kept out of the project's code (AST, not grep):

- `asyncio.wait_for(...)`: on Python 3.11 it returns the inner result instead of raising
  when a cancellation arrives in the turn its wait completes; use `asyncio.timeout`.
- `suppress(asyncio.CancelledError)` (or `CancelledError`): around `await task` it also
  swallows the caller's own cancellation; stop tasks with `federation.worker.stop_task`.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["protocol", "federation", "node", "hub", "peernet", "bench"]


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    if isinstance(node, ast.Name):
        return node.id
    return ""


def offences(source: str, filename: str = "<src>") -> list[str]:
    out = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        if name.endswith("wait_for") and name.split(".")[0] in ("asyncio", "wait_for"):
            out.append(f"{filename}:{node.lineno}: asyncio.wait_for")
        if name.endswith("suppress") and any(
            _name(a).endswith("CancelledError") for a in node.args
        ):
            out.append(f"{filename}:{node.lineno}: suppress(CancelledError)")
    return out


def test_the_project_has_neither_pattern() -> None:
    found = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            found += offences(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert found == []


def test_the_check_finds_both() -> None:
    src = (
        "import asyncio, contextlib\n"
        "async def f(t):\n"
        "    await asyncio.wait_for(t, 1)\n"
        "    with contextlib.suppress(asyncio.CancelledError):\n"
        "        await t\n"
        "    await page.wait_for_selector('#x')\n"  # Playwright's, not asyncio's
    )
    assert offences(src) == ["<src>:3: asyncio.wait_for", "<src>:4: suppress(CancelledError)"]
