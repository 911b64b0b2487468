"""Migrations are frozen: what a released revision does cannot change with the application.

A revision that imports an application module (a table model, a vocabulary enum, SQL the
runtime also uses) silently changes when that module does: a fresh database would then get a
different schema from one upgraded step by step. So, checked on the source (AST, imports at
any depth, `__import__` and `importlib.import_module` included):

- every revision file of every server (`*/migrations/versions/*.py`) imports only the
  standard library, `alembic`, `sqlalchemy` and `federation.schema_steps` (the shared frozen
  steps);
- the modules of `federation.schema_steps` import only the standard library, `alembic` and
  `sqlalchemy`.

Each rule is also shown refusing a forbidden import. And on both engines the PostgreSQL
audit trigger that `audit_staged_0001` now carries inline is what the runtime expects.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from federation.database import make_engine, migrate

ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = {"alembic", "sqlalchemy", "__future__"}
STEPS = "federation.schema_steps"


def _imported(source: str, filename: str) -> set[str]:
    """Every module name `source` imports, at any depth."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.add("." * node.level + (node.module or ""))  # relative: never allowed
            elif node.module:
                found.add(node.module)
        elif isinstance(node, ast.Call):
            fn = node.func
            name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(
                fn, ast.Attribute) else ""
            if name in ("__import__", "import_module"):
                arg = node.args[0] if node.args else None
                found.add(str(arg.value) if isinstance(arg, ast.Constant) else "<dynamic>")
    return found


def _library(module: str) -> bool:
    top = module.split(".")[0]
    return top in LIBRARIES or (top in sys.stdlib_module_names and top != "importlib")


def forbidden_in_revision(source: str, filename: str = "<revision>") -> set[str]:
    return {m for m in _imported(source, filename)
            if not (_library(m) or m == STEPS or m.startswith(STEPS + "."))}


def forbidden_in_step(source: str, filename: str = "<step>") -> set[str]:
    return {m for m in _imported(source, filename) if not _library(m)}


def _revision_files() -> list[Path]:
    files = sorted(p for p in ROOT.glob("*/migrations/versions/*.py") if p.name != "__init__.py")
    assert {p.parts[-4] for p in files} >= {"node", "hub", "helper"}
    return files


def test_revisions_import_no_application_module() -> None:
    bad = {str(p.relative_to(ROOT)): sorted(found) for p in _revision_files()
           if (found := forbidden_in_revision(p.read_text(encoding="utf-8"), str(p)))}
    assert bad == {}, ("a migration must not import application modules (inline what it "
                       f"needs, or use a frozen step in {STEPS}): {bad}")


def test_frozen_steps_import_only_libraries() -> None:
    steps = sorted((ROOT / "federation" / "schema_steps").glob("*.py"))
    assert len(steps) > 1
    bad = {p.name: sorted(found) for p in steps
           if (found := forbidden_in_step(p.read_text(encoding="utf-8"), str(p)))}
    assert bad == {}, f"a frozen schema step imports an application module: {bad}"


@pytest.mark.parametrize("source", [
    "def upgrade():\n    from node.core.audit_staged import CREATE_SQL\n",
    "from node.core.vocabulary import Role\n",
    "import federation.login_throttle\n",
    "from federation.roster_alarms import upgrade_alarm_ack\n",
    "from . import helpers\n",
    "import importlib\nm = importlib.import_module('node.core.db')\n",
    "m = __import__('hub.app')\n",
])
def test_the_rules_refuse_an_application_import(source: str) -> None:
    assert forbidden_in_revision(source)
    assert forbidden_in_step(source)


def test_the_rules_allow_libraries_and_steps() -> None:
    ok = ("from __future__ import annotations\nimport json\nfrom collections.abc import "
          "Sequence\nimport sqlalchemy as sa\nfrom alembic import op\n")
    assert forbidden_in_revision(ok) == set()
    assert forbidden_in_step(ok) == set()
    step = "from federation.schema_steps.alarm_ack import upgrade_alarm_ack\n"
    assert forbidden_in_revision(step) == set()
    assert forbidden_in_step(step)  # a step does not build on another module of the project


def _body(create_function: str) -> str:
    """The PL/pgSQL body between the `$$` quotes of a CREATE FUNCTION."""
    return create_function.split("$$")[1]


async def test_a_fresh_database_gets_the_audit_trigger_the_runtime_expects(db_url: str) -> None:
    from node.migrations.versions import audit_staged_0001 as revision

    engine = make_engine(db_url)
    try:
        await migrate(engine, "node:migrations")
        async with engine.connect() as conn:
            staged = (await conn.execute(text("SELECT count(*) FROM audit_staged"))).scalar()
            assert staged == 0
            if engine.dialect.name != "postgresql":
                return  # SQLite: the table only (its writer holds the database lock anyway)
            body = (await conn.execute(text(
                "SELECT prosrc FROM pg_proc WHERE proname = 'audit_link_staged'"))).scalar()
            trig = (await conn.execute(text(
                "SELECT tgdeferrable, tginitdeferred, tgrelid::regclass::text FROM pg_trigger "
                "WHERE tgname = 'audit_staged_link'"))).one()
    finally:
        await engine.dispose()
    assert body == _body(revision.CREATE_SQL[0])
    assert tuple(trig) == (True, True, "audit_staged")
    import node.core.audit_staged as runtime

    # One definition, the migration's: no runtime copy that could drift from it.
    assert not hasattr(runtime, "CREATE_SQL")
