"""The privacy ledger on SQLite and PostgreSQL: written before sending, one release per
node-month, the same bytes on every retry (also across a crash), over-budget refused."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import nacl.signing
import pytest
from sqlalchemy import func, select

from node.core.db import Database
from node.core.errors import Code, NodeError
from node.privacy.ledger import (
    LedgerEntry,
    LedgerRow,
    deliver_pending,
    ledger_entries,
    month_columns,
    record_release,
)
from node.privacy.release import month_bounds_ms
from node.privacy.schema import ReleasePolicy
from protocol.canonical import parse_json
from protocol.workload import GROUP_NAMES, WORKLOAD_KEYS
from tests.privacy.node_records import add_encounters, make_node_db

KEY = nacl.signing.SigningKey(bytes(range(32)))
NOW = int(datetime(2026, 11, 10, tzinfo=UTC).timestamp() * 1000)


async def _record(db: Database, month: str, policy: ReleasePolicy | None = None,
                  now: int = NOW) -> LedgerEntry:
    return await record_release(
        db, node_id="station-7", month=month, policy=policy or ReleasePolicy(),
        signing_key=KEY, key_version=1, now_ms=now,
    )


async def _count(db: Database) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(LedgerRow)) or 0)


async def test_release_recorded_once_and_resent_as_the_same_bytes(db_url: str) -> None:
    db = await make_node_db(db_url)
    try:
        await add_encounters(db, "2026-10", 120, 40, seed=1)
        async with db.read() as conn:
            cols = await month_columns(conn, "2026-10")
        assert len(cols) == 120
        first = await _record(db, "2026-10")
        assert first.created and first.month == "2026-10"
        body = parse_json(first.body)
        assert set(body["release"]["cells"]) == set(WORKLOAD_KEYS)  # v2 from now on
        assert body["release"]["budget_spent"] == first.budget_spent
        # The ledger records each group, its share of the allowance and its spend.
        allowance = ReleasePolicy().monthly_allowance
        assert [g["group"] for g in first.groups] == list(GROUP_NAMES)
        for g in first.groups:
            assert Decimal(g["budget_share"]) == Decimal(g["weight"]) * allowance
            assert 0 < Decimal(g["budget_spent"]) <= Decimal(g["budget_share"])
            assert body["release"]["groups"][g["group"]] == {
                "scale": g["scale"], "budget_spent": g["budget_spent"]}
        assert sum(Decimal(g["budget_spent"]) for g in first.groups) == Decimal(
            first.budget_spent)
        assert first.scale == "groups" and first.summary()["groups"] == list(first.groups)
        again = await _record(db, "2026-10")
        assert not again.created and again.body == first.body
        assert again.groups == first.groups
        assert again.release_id == first.release_id
        assert await _count(db) == 1
    finally:
        await db.dispose()


async def test_crash_between_ledger_and_send_resends_identical_bytes(db_url: str) -> None:
    db = await make_node_db(db_url)
    await add_encounters(db, "2026-09", 60, 20, seed=2)
    entry = await _record(db, "2026-09")
    sent: list[bytes] = []

    async def crash(_c: object, _e: LedgerEntry) -> None:
        raise ConnectionError("process died before the hub got it")

    with pytest.raises(ConnectionError):
        await deliver_pending(db, crash, now_ms=NOW)
    await db.dispose()  # the node restarts

    db = await make_node_db(db_url)
    try:
        async def deliver(_c: object, e: LedgerEntry) -> None:
            sent.append(e.body)

        assert await deliver_pending(db, deliver, now_ms=NOW + 1) == [entry.release_id]
        assert sent == [entry.body]
        assert await deliver_pending(db, deliver, now_ms=NOW + 2) == []  # delivered once
        # asking for the month again after the restart gives the stored release, not new noise
        assert (await _record(db, "2026-09")).body == entry.body
    finally:
        await db.dispose()


async def test_over_budget_refused_and_nothing_written(db_url: str) -> None:
    db = await make_node_db(db_url)
    try:
        policy = ReleasePolicy(budget_per_node_year=Decimal("1.2"))
        for month in ("2026-01", "2026-02", "2026-03"):
            await _record(db, month, policy)
        # the board lowers the yearly budget: two months already spent 0.2 of 0.25
        lowered = ReleasePolicy(budget_per_node_year=Decimal("0.3"))
        with pytest.raises(NodeError) as err:
            await _record(db, "2026-04", lowered)
        assert err.value.code is Code.OVER_BUDGET
        assert err.value.body()["error"]["code"] == "over_budget"
        assert await _count(db) == 3
        # another year has its own budget
        assert (await _record(db, "2025-12", lowered)).created
    finally:
        await db.dispose()


async def test_unfinished_or_malformed_month_refused(db_url: str) -> None:
    db = await make_node_db(db_url)
    try:
        for bad in ("2026-11", "2027-01", "2026-13", "26-01", "2026-1"):
            with pytest.raises(NodeError) as err:
                await _record(db, bad)
            unfinished = bad in ("2026-11", "2027-01")
            assert err.value.code is (Code.MONTH_NOT_FINISHED if unfinished
                                      else Code.INVALID_INPUT) and err.value.field == "month"
        assert await _count(db) == 0
        assert await ledger_entries(db) == []
        start, _ = month_bounds_ms("2026-11")
        assert start < NOW
    finally:
        await db.dispose()
