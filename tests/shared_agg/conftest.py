"""Fixtures: `shared_net(n)` builds a hub, a helper and n nodes as real servers on the
test's database kind (parametrized: SQLite and PostgreSQL), closed after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.shared_agg.network import SharedNetwork, make_shared_network

SharedFactory = Callable[..., Awaitable[SharedNetwork]]


@pytest.fixture(params=["sqlite", "postgres"])
async def shared_net(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[SharedFactory]:
    made: list[SharedNetwork] = []

    async def factory(n: int, **kw: Any) -> SharedNetwork:
        pg = request.getfixturevalue("pg_admin_url") if request.param == "postgres" else None
        sub = tmp_path / f"net{len(made)}"
        sub.mkdir()
        made.append(await make_shared_network(n, tmp_path=sub, db=request.param,
                                              pg_admin_url=pg, **kw))
        return made[-1]

    yield factory
    for net in made:
        await net.close()
