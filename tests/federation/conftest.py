"""The `network` fixture factory (see `tests/federation/network.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.federation.network import Network, network_factory


@pytest.fixture
async def network(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Callable[..., Awaitable[Network]]]:
    """`net = await network(n_nodes, db="sqlite"|"postgres", **make_network_kwargs)`;
    every network made is closed at teardown."""
    async for factory in network_factory(tmp_path, request):
        yield factory
