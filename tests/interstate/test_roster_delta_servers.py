"""Roster deltas between the real applications (`hub.app`, `node.web.app`) on both databases:
the board publishes version 2 at the hub; a node holding version 1 refreshes its roster from
the hub, which serves it a delta; the node ends with the hub's document byte for byte and
uses the new entry; a node that joins later (holding nothing) gets whole documents and
stores the same bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from federation.store import rosters
from tests.federation.network import Network, network_factory

NetworkFactory = Callable[..., Awaitable[Network]]


@pytest.fixture
async def network(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[NetworkFactory]:
    async for factory in network_factory(tmp_path, request):
        yield factory


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_a_node_refreshes_its_roster_by_delta_from_the_hub(
    network: NetworkFactory, db: str
) -> None:
    net = await network(3, db=db)
    first, late = net.nodes[0], net.nodes[2]
    await late.stop()  # comes back with no roster at all
    listed = [n.model_dump(mode="json") for n in net.roster.roster.nodes]
    renamed = next(n for n in listed if n["node_id"] == "agency-2")
    renamed["name"] = "Agency Two Fire Rescue"
    v2 = net.board.sign(net.board.next(net.roster, now=net.clock.now_ms(), nodes=listed))
    await net.hub.fed.roster.accept([v2])

    assert await first.fed.refresh_roster() == 2
    hub_doc = await net.hub.fed.roster.document(2)
    assert hub_doc == v2.to_bytes() == await first.fed.roster.document(2)
    assert first.fed.roster.state.node("agency-2").name == "Agency Two Fire Rescue"
    served = [d for d in net.hub.fed.roster._deltas.values() if d is not None]
    assert len(served) == 1 and len(served[0]) < len(hub_doc)

    async with late.db.write() as conn:  # a node with an empty roster table
        await conn.execute(rosters.delete())
    await late.start()
    assert late.fed.roster.state.version == 2
    for v in (1, 2):
        assert await late.fed.roster.document(v) == await net.hub.fed.roster.document(v)
