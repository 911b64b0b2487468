"""Retention of the federation tables (`federation.retention`, issue 22): a message whose
envelope never expires leaves a dedupe row that is swept on the 30-day horizon, and no copy
of it is applied again; acknowledged alarms are swept after a year, active ones kept.
Through real servers on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.retention import ALARM_KEEP_MS, DAY_MS, INBOX_HORIZON_MS
from federation.store import alarms, inbox
from protocol.envelope import Opened
from tests.federation.helpers import TEST_TYPE, envelope, put_batch
from tests.federation.network import Network

NetworkFactory = Callable[..., Awaitable[Network]]
FOREVER = 50 * 365 * DAY_MS


async def _inbox(node: object) -> list[tuple[str, int]]:
    async with node.db.read() as conn:  # type: ignore[attr-defined]
        rows = (await conn.execute(select(inbox.c.msg_id, inbox.c.expires_ts))).all()
    return [(r[0], r[1]) for r in rows]


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_a_never_expiring_message_is_swept_on_the_horizon_and_applied_once(
    network: NetworkFactory, db: str
) -> None:
    net = await network(2, db=db)
    a, b = net.nodes
    applied: list[str] = []

    async def handler(_conn: AsyncConnection, opened: Opened) -> None:
        applied.append(opened.inner.msg_id)

    b.on(TEST_TYPE, handler)
    created = net.clock.now_ms()
    env = envelope(net, a, b, ttl_ms=FOREVER)
    status, body = await put_batch(a, b.url, b.node_id, [env])
    assert status == 200 and [r["status"] for r in body["results"]] == ["accepted"]
    [(msg_id, expires)] = await _inbox(b)
    assert expires == created + INBOX_HORIZON_MS  # not the envelope's 50 years
    status, body = await put_batch(a, b.url, b.node_id, [env])
    assert [r["status"] for r in body["results"]] == ["duplicate"]
    net.clock.advance(INBOX_HORIZON_MS + 10 * 60_000)
    swept, _ = await b.fed.sweep()
    assert swept == 1 and await _inbox(b) == []
    # The same bytes again, once the row is gone: refused, not applied a second time.
    status, body = await put_batch(a, b.url, b.node_id, [env])
    assert [r["status"] for r in body["results"]] == ["refused"]
    assert applied == [msg_id] and await _inbox(b) == []


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_a_message_older_than_the_horizon_is_refused_expired_nothing_stored(
    network: NetworkFactory, db: str
) -> None:
    net = await network(2, db=db)
    a, b = net.nodes
    applied: list[str] = []

    async def handler(_conn: AsyncConnection, opened: Opened) -> None:
        applied.append(opened.inner.msg_id)

    b.on(TEST_TYPE, handler)
    old = net.clock.now_ms() - INBOX_HORIZON_MS - 6 * 60_000  # past the horizon and skew
    env = envelope(net, a, b, created_ts=old, ttl_ms=FOREVER)
    status, body = await put_batch(a, b.url, b.node_id, [env])
    assert status == 200
    assert [(r["status"], r["code"]) for r in body["results"]] == [("refused", "expired")]
    assert applied == [] and await _inbox(b) == []


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_acknowledged_alarms_are_swept_after_a_year_active_ones_kept(
    network: NetworkFactory, db: str
) -> None:
    net = await network(1, db=db)
    node = net.nodes[0]
    now = net.clock.now_ms()
    base = {"kind": "split_view", "source": "x", "reason": "r"}
    async with node.db.write() as conn:
        await conn.execute(insert(alarms), [
            {**base, "ts": now - 2 * ALARM_KEEP_MS, "detail": '{"n":1}',  # active, old
             "acknowledged_ts": None, "acknowledged_by": None},
            {**base, "ts": now - 2 * ALARM_KEEP_MS, "detail": '{"n":2}',
             "acknowledged_ts": now - ALARM_KEEP_MS - 1, "acknowledged_by": "op"},
            {**base, "ts": now - 2 * ALARM_KEEP_MS, "detail": '{"n":3}',
             "acknowledged_ts": now - 1000, "acknowledged_by": "op"},
        ])
    await node.fed.sweep()
    async with node.db.read() as conn:
        left = (await conn.execute(select(alarms.c.detail).order_by(alarms.c.detail))
                ).scalars().all()
        n = (await conn.execute(select(func.count()).select_from(alarms))).scalar_one()
    assert left == ['{"n":1}', '{"n":3}'] and n == 2
