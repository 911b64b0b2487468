"""The `network` fixture factory (see `tests/federation/network.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.federation.network import Network, make_network


@pytest.fixture
async def network(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Callable[..., Awaitable[Network]]]:
    """`net = await network(n_nodes, db="sqlite"|"postgres", **make_network_kwargs)`;
    every network made is closed at teardown."""
    made: list[Network] = []

    async def factory(n_nodes: int, db: str = "sqlite", **kw: Any) -> Network:
        pg = request.getfixturevalue("pg_admin_url") if db == "postgres" else None
        sub = tmp_path / f"net{len(made)}"
        sub.mkdir()
        net = await make_network(n_nodes, tmp_path=sub, db=db, pg_admin_url=pg, **kw)
        made.append(net)
        return net

    yield factory
    for net in made:
        await net.close()
