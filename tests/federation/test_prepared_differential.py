"""Differential test of `federation.prepared` (issue 22): every prepared statement the
federation hot path runs is executed both ways, at the same database state, and the rows,
returned values and counts compared.

During a real activation across four nodes, each `Prepared.run` first runs the statement
through plain SQLAlchemy (`conn.execute`) and through `Prepared.run` itself, each inside a
SAVEPOINT that is rolled back, compares them, then runs it for real. On SQLite the second is
the shortcut on the raw sqlite3 cursor (asserted: a `RawResult`); on PostgreSQL `run` is
SQLAlchemy, so there the comparison checks that every statement and parameter shape the
project uses runs and answers the same on the production engine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.prepared import Prepared, RawResult
from federation.sqlite_inline import InlineConnection
from node.activation import requester as requesting
from node.core.vocabulary import Role
from tests.activations.helpers import request_in
from tests.activations.netutil import actx, add_user, offer
from tests.federation.network import Network
from tests.federation.test_prepared import _project_statements, svc_view

NetworkFactory = Callable[..., Awaitable[Network]]


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_every_prepared_statement_answers_as_sqlalchemy(
    network: NetworkFactory, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements = {id(p): p for p in _project_statements()}
    original = Prepared.run
    compared: dict[int, int] = {}
    shortcut: dict[int, int] = {}
    on_inline: set[int] = set()
    mismatches: list[str] = []

    async def differential(self: Prepared, conn: Any, params: Any = None) -> Any:
        if (id(self) in statements and isinstance(conn, AsyncConnection)
                and conn.in_transaction()):
            async with conn.begin_nested() as sp:
                plain = await conn.execute(self.stmt, params)
                want = (([tuple(r) for r in plain.all()] if plain.returns_rows else None),
                        plain.rowcount)
                await sp.rollback()
            async with conn.begin_nested() as sp:
                res = await original(self, conn, params)
                if isinstance(res, RawResult):
                    shortcut[id(self)] = shortcut.get(id(self), 0) + 1
                    rows = [tuple(r) for r in res.all()]
                    got = (rows if rows or want[0] is not None else None, res.rowcount)
                else:
                    got = (([tuple(r) for r in res.all()] if res.returns_rows else None),
                           res.rowcount)
                await sp.rollback()
            compared[id(self)] = compared.get(id(self), 0) + 1
            if isinstance(conn.sync_connection.connection.driver_connection,  # type: ignore[union-attr]
                          InlineConnection):
                on_inline.add(id(self))
            if got != want:
                mismatches.append(f"{str(self.stmt).split()[0]} {params!r}: {got} != {want}")
        return await original(self, conn, params)

    monkeypatch.setattr(Prepared, "run", differential)
    for p in statements.values():
        p.clear_plans()
    net = await network(4, db=db)
    a, b, c = (net.node(f"agency-{i}") for i in (1, 2, 3))
    coord, _ = await add_user(a, "coord", Role.COORDINATOR)
    async with a.db.write() as conn:
        act = await requesting.create_request(
            conn, actx(a), request_in(["agency-2", "agency-3"]), user_id=coord)
    await net.settle()
    await offer(b, act.activation_id, "agency-1", {"fire": 2})
    await offer(c, act.activation_id, "agency-1", {"ems": 1})
    await net.settle()
    view = await svc_view(a, act.activation_id)
    assert sorted(leg.state.value for leg in view.legs) == ["offered", "offered"]
    assert not mismatches, mismatches
    assert len(compared) >= 15, len(compared)  # most of the project's statements ran
    if db == "sqlite":
        # every statement compared on the inline write connection took the shortcut
        assert len(on_inline) >= 15 and set(shortcut) == on_inline, [
            str(statements[i].stmt).split()[0] for i in on_inline - set(shortcut)]
