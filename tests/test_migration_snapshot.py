"""A database upgraded by replaying tests/migration_snapshot.py's snapshot is the same as one
upgraded by Alembic: the same schema objects (sqlite_master, or pg_dump's script) and the
same rows, for every package with migrations, on SQLite and PostgreSQL. If a migration ever
does something the replay cannot reproduce, this fails rather than the suite testing a
schema production never has."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from federation.database import make_engine, migrate
from peernet.throwaway_pg import create_database, drop_database, pg_dump_sql
from tests import migration_snapshot

PACKAGES = ["node:migrations", "hub:migrations", "helper:migrations"]


def _lines(sql: str) -> list[str]:
    # Alembic's batch mode on SQLite lists a rebuilt table's constraints in no fixed order
    # (two real migrations differ): compare each statement's lines as a set.
    return sorted(line.strip().rstrip(",") for line in sql.splitlines())


async def _state(url: str) -> Any:
    if url.startswith("sqlite"):
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                snap = await conn.run_sync(migration_snapshot.capture_sqlite)
        finally:
            await engine.dispose()
        return (sorted(map(_lines, snap.tables)), sorted(map(_lines, snap.later)), sorted(
            (name, cols, sorted(map(repr, rows))) for name, cols, rows in snap.rows),
            snap.user_version)
    script = migration_snapshot.pg_replay_script(pg_dump_sql(url))  # no \\restrict key
    return [_check(line) if "CHECK" in line else line for line in script.splitlines()]


_CAST = re.compile(r"::[a-z_][a-z_ ]*(\[\])?")


def _check(line: str) -> str:
    # A CHECK (x IN (...)) reads back from a restored dump as an equivalent expression with
    # the casts and parentheses placed differently: compare it without them.
    return re.sub(r"[()\s]", "", _CAST.sub("", line))


async def _fresh(kind: str, tmp: Any, admin: str | None, made: list[str], tag: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp / (tag + '.db')}"
    assert admin is not None
    name = f"snapcmp_{tag}_{len(made)}"
    made.append(name)
    return await create_database(admin, name)


@pytest.mark.parametrize("package", PACKAGES)
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_replayed_schema_equals_migrated(
    kind: str, package: str, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    admin = request.getfixturevalue("pg_admin_url") if kind == "postgres" else None
    made: list[str] = []
    try:
        urls = {tag: await _fresh(kind, tmp_path, admin, made, tag)
                for tag in ("real", "first", "replayed")}
        with migration_snapshot.real_migrations():
            engine = make_engine(urls["real"])
            await migrate(engine, package)
            await engine.dispose()
        for tag in ("first", "replayed"):  # the first may build the snapshot, then replays
            engine = make_engine(urls[tag])
            await migrate(engine, package)
            await engine.dispose()
        real = await _state(urls["real"])
        assert real, "nothing migrated"
        assert await _state(urls["replayed"]) == real
        assert await _state(urls["first"]) == real
        if kind == "postgres":  # names differ only in the database's own name
            assert make_url(urls["real"]).database not in real
        # Migrating again finds nothing to do on both.
        for tag in ("real", "replayed"):
            engine = make_engine(urls[tag])
            await migrate(engine, package)
            await engine.dispose()
        assert await _state(urls["replayed"]) == real
    finally:
        for name in made:
            assert admin is not None
            await drop_database(admin, name)
