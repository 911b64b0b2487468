"""Every `federation.prepared.Prepared` statement the project defines, found by walking the
source (every module of federation/, node/, hub/ and helper/, namespace packages included,
migrations excluded) rather than by a hand-kept list, so a module that adds prepared
statements is covered by the differential and shortcut tests from its first commit."""

from __future__ import annotations

import importlib
from pathlib import Path

from federation.prepared import Prepared

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("federation", "node", "hub", "helper")


def project_modules() -> list[str]:
    names = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            if "migrations" in rel.parts:
                continue
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            names.append(".".join(parts))
    return names


def project_statements() -> dict[str, Prepared]:
    """Qualified name (`module.NAME`) -> each module-level prepared statement."""
    found: dict[str, Prepared] = {}
    for name in project_modules():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if isinstance(value, Prepared):
                found.setdefault(f"{name}.{attr}", value)
    return {k: v for k, v in found.items() if _defined_in(k, v, found)}


def _defined_in(key: str, value: Prepared, found: dict[str, Prepared]) -> bool:
    # A statement imported into another module is listed once, under its first name.
    return next(k for k, v in found.items() if v is value) == key
