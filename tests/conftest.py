"""Shared fixtures: one throwaway PostgreSQL per test session, and a `db_url` fixture that
runs every database test on both SQLite and PostgreSQL.

Set PEERNET_TEST_PG_URL to use an existing server (an admin URL: the fixture creates and drops
one database per test on it). Under CI=true a PostgreSQL that cannot start fails the run
instead of skipping it. Under pytest-xdist each worker starts its own throwaway server.

A fresh database upgraded to heads gets a replayed snapshot of its package's migrated schema
(tests/migration_snapshot.py); test modules that mention migrations run them for real.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from peernet.throwaway_pg import (
    PostgresUnavailable,
    ThrowawayPostgres,
    create_database,
    drop_database,
    start_throwaway,
)
from tests import migration_snapshot

_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "real_migrations: every migrate() runs Alembic (no replayed snapshot)")
    migration_snapshot.install()


_MIGRATION_WORDS = re.compile(r"migrat|alembic", re.I)
_mentions: dict[str, bool] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Modules that test or drive migrations keep running every one of them.
    for item in items:
        path = str(item.path)
        if path.endswith("test_migration_snapshot.py"):
            continue
        if path not in _mentions:
            try:
                _mentions[path] = bool(_MIGRATION_WORDS.search(Path(path).read_text()))
            except OSError:
                _mentions[path] = True
        if _mentions[path]:
            item.add_marker(pytest.mark.real_migrations)


@pytest.fixture(autouse=True)
def _migration_mode(request: pytest.FixtureRequest) -> Iterator[None]:
    migration_snapshot.set_test_real(request.node.get_closest_marker("real_migrations") is not None)
    yield
    migration_snapshot.set_test_real(False)


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """Admin URL of a PostgreSQL server for this test session."""
    given = os.environ.get("PEERNET_TEST_PG_URL")
    if given:
        yield given
        return
    if os.environ.get("PEERNET_TEST_NO_PG") and not _CI:
        pytest.skip("PostgreSQL disabled by PEERNET_TEST_NO_PG")
    server: ThrowawayPostgres | None = None
    try:
        server = start_throwaway()
    except PostgresUnavailable as exc:
        if _CI:
            pytest.fail(f"PostgreSQL is required under CI: {exc}")
        pytest.skip(f"PostgreSQL not available: {exc}")
    try:
        yield server.url()
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[str]:
    """A fresh, empty database URL: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    admin = request.getfixturevalue("pg_admin_url")
    name = "t_" + uuid.uuid4().hex[:16]
    url = await create_database(admin, name)
    try:
        yield url
    finally:
        await drop_database(admin, name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


def run(coro: object) -> object:
    """Run a coroutine from synchronous test code (CLI tests)."""
    return asyncio.run(coro)  # type: ignore[arg-type]


CHROMIUM = os.environ.get("PEERNET_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture
async def browser_page() -> AsyncIterator[object]:
    """A Playwright page in Debian's headless Chromium (no downloaded browser builds).

    Screenshots go to test-artifacts/. Under CI a missing Chromium fails the test.
    """
    if not Path(CHROMIUM).exists():
        if _CI:
            pytest.fail(f"Chromium is required under CI ({CHROMIUM} missing)")
        pytest.skip("Chromium not installed")
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            context = await browser.new_context(viewport={"width": 390, "height": 844})
            page = await context.new_page()
            yield page
            await context.close()
        finally:
            await browser.close()
