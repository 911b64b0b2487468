"""Every prepared statement of the project is compared with SQLAlchemy, on both engines
(issue 22, item 3).

`tests/federation/test_prepared_differential.py` compares what an activation with two offers
runs; about a quarter of the project's statements never run there (a delivery retried, a
backoff reset by a peer coming back, an activation found without its requester, the
activation's own state moving, a cancel). This test runs a wider scenario through real
servers, compares each `Prepared.run` inside a write or read transaction with plain
SQLAlchemy at the same state (each in a rolled-back SAVEPOINT), and then requires that every
module-level prepared statement in the source (`tests.federation.prepared_statements`) was
compared, except the few that only one engine runs by design (`ONE_ENGINE`), and that those
are really not run on the other (so the list cannot go stale).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

import federation.inbox as inbox_module
from federation.prepared import Prepared, RawResult
from node.activation import ending, requester, views
from node.core.vocabulary import Role
from node.notify.db import PR
from protocol.vocabulary import CancelReason, DeclineReason
from tests.activations.helpers import request_in
from tests.activations.netutil import actx, add_user, offer
from tests.federation.network import Network
from tests.federation.prepared_statements import project_statements

NetworkFactory = Callable[..., Awaitable[Network]]

# Statements one engine runs by design, and which one.
ONE_ENGINE = {
    "federation.inbox._STORED_PG": "postgresql",  # dedupe with ON CONFLICT ... RETURNING
    "federation.outbox._DUE_LOCKED": "postgresql",  # FOR UPDATE SKIP LOCKED claim
    "node.activation.writes._LEG_FOR_UPDATE": "postgresql",  # SQLite's writer lock suffices
    "federation.inbox._STORED": "sqlite",
    "federation.outbox._DUE": "sqlite",
    # PostgreSQL writes a new activation and a requester's cancel in one statement each
    # (`node.activation.batched_pg`).
    "node.activation.batched._INSERT_ACT": "sqlite",
    "node.activation.batched._INSERT_LEGS": "sqlite",
    "node.activation.batched._INSERT_EVENTS": "sqlite",
    "node.activation.writes._MOVE_OWN": "sqlite",
}

# A claim that skips rows locked elsewhere (`FOR UPDATE SKIP LOCKED`) may answer differently
# when run twice; it is run both ways but its answers are not compared.
CLAIMS = {"federation.outbox._DUE_LOCKED"}


def _result(res: Any) -> tuple[Any, int]:
    if isinstance(res, RawResult):
        rows = [tuple(r) for r in res.all()]
        return (rows or None), res.rowcount
    return ([tuple(r) for r in res.all()] if res.returns_rows else None), res.rowcount


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_every_prepared_statement_is_compared_with_sqlalchemy(
    network: NetworkFactory, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = {id(p): n for n, p in project_statements().items()}
    original = Prepared.run
    compared: set[str] = set()
    ran: set[str] = set()
    mismatches: list[str] = []

    async def differential(self: Prepared, conn: Any, params: Any = None) -> Any:
        name = names.get(id(self))
        if name is not None:
            ran.add(name)
        if name is not None and isinstance(conn, AsyncConnection) and conn.in_transaction():
            async with conn.begin_nested() as sp:
                want = _result(await conn.execute(self.stmt, params))
                await sp.rollback()
            async with conn.begin_nested() as sp:
                got = _result(await original(self, conn, params))
                await sp.rollback()
            if got[0] is None and want[0] == []:
                got = ([], got[1])
            compared.add(name)
            if got != want and name not in CLAIMS:
                mismatches.append(f"{name} {params!r}: {got} != {want}")
        return await original(self, conn, params)

    monkeypatch.setattr(Prepared, "run", differential)
    net = await network(4, db=db)
    a, b, c, d = (net.node(f"agency-{i}") for i in (1, 2, 3, 4))
    coord, _ = await add_user(a, "coord", Role.COORDINATOR)
    async with a.db.write() as conn:
        act = await requester.create_request(
            conn, actx(a), request_in(["agency-2", "agency-3", "agency-4"]), user_id=coord)
    aid = act.activation_id
    await net.settle()
    async with a.db.write() as conn:  # the coordinator hears of offers by email
        await conn.execute(insert(PR).values(user_id=coord, email="coord@example.org",
                                             channels="email", updated_at=0))
    await offer(b, aid, "agency-1", {"fire": 2})
    await offer(c, aid, "agency-1", {"ems": 1})
    await net.settle()

    # The hub, c and d are down while a declines c's offer and calls off d's request: both
    # deliveries fail and are retried later.
    for server in (net.hub, c, d):
        await server.stop()
    async with a.db.write() as conn:
        await requester.decline_offer(conn, actx(a), aid, "agency-3", DeclineReason.NO_CAPACITY)
        await ending.cancel(conn, actx(a), aid, CancelReason.OTHER, responder="agency-4")
    await net.settle()
    for server in (net.hub, c, d):
        await server.start()
    # d speaks first (it calls off its side, not knowing yet): a's backoff for d resets.
    async with d.db.write() as conn:
        await ending.cancel(conn, actx(d), aid, CancelReason.OTHER, requester="agency-1")
    await net.settle()
    # The reset for several origins at once runs when one inbox group transaction holds
    # batches from several peers (concurrent requests): run as the inbox runs it.
    async with a.db.write() as conn:
        await inbox_module._RESET_SOME.run(
            conn, {"now": net.clock.now_ms(), "dests": ["agency-3", "agency-4"]})
    net.clock.advance(3_600_000)
    await net.settle()

    # Looked up without the requester (the responder side), then the whole activation called
    # off by the requester.
    async with b.db.read() as conn:
        await views.get(conn, actx(b), aid, None)
    async with a.db.write() as conn:
        await ending.cancel(conn, actx(a), aid, CancelReason.NO_LONGER_NEEDED)
    await net.settle()

    assert not mismatches, mismatches
    engine = "postgresql" if db == "postgres" else "sqlite"
    expected = {n for n in names.values() if ONE_ENGINE.get(n, engine) == engine}
    missing = sorted(expected - compared)
    assert not missing, f"not compared on {engine}: {missing}; ran but outside a transaction: " \
        f"{sorted((ran - compared) & set(missing))}"
    other = {n for n, e in ONE_ENGINE.items() if e != engine}
    assert sorted(other & ran) == [], f"ONE_ENGINE lists these, yet {engine} ran them"
