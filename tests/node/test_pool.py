"""The node's connection pool keeps at most `db_pool_size` connections and never churns:
waves of requests beyond it wait for a connection instead of opening (and, on return,
closing) overflow ones, each of which cost a PostgreSQL server process, type introspection
and every statement prepared again."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event

from tests.node.conftest import MakeNode, encounter


async def test_waves_beyond_the_pool_open_no_more_connections(make_node: MakeNode) -> None:
    node = await make_node(db_pool_size=3)
    opened: list[int] = []
    event.listen(node.ctx.db.engine.sync_engine, "connect",
                 lambda *_: opened.append(1))  # the read pool (and PostgreSQL's only one)
    for who in ("sup1", "sup2", "coord"):
        status, body = await node.post(who, "/api/v1/encounters", encounter())
        assert status == 201, body

    async def read(who: str) -> int:
        r = await node.client.get("/api/v1/encounters", headers=node.auth(who))
        await r.read()
        return r.status

    for _ in range(4):  # waves of 24 concurrent reads against a pool of 3
        statuses = await asyncio.gather(*(read(w) for w in ("coord", "sup1", "sup2") * 8))
        assert set(statuses) == {200}
    pool: Any = node.ctx.db.engine.sync_engine.pool
    assert len(opened) <= 3, f"{len(opened)} connections opened for a pool of 3"
    assert pool.size() == 3 and pool.overflow() <= 0
