"""The hub's aggregate store on SQLite and PostgreSQL: verified releases in, idempotent
duplicates, conflicting releases refused and flagged, bad input refused with stable codes
and nothing stored changed."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.stats.aggregates import (
    AggregateAlarm,
    AggregateError,
    AggregateRelease,
    AggregateTotal,
    receive_release,
)
from hub.stats.estimates import CELL_KEYS
from hub.stats.query import StatsFilter, load_month_sums
from hub.stats.summary import summarise
from node.privacy.schema import ReleasePolicy
from protocol.encoding import format_decimal
from protocol.release import sign_release
from tests.privacy.hub_fixtures import Keys, make_hub_store, node_key, release_body

NOW = 1_790_000_000_000  # 2026-09-21
NODES = ["station-1", "station-2", "station-3"]


async def _snapshot(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        out = []
        for t in (AggregateRelease, AggregateTotal, AggregateAlarm):
            out.append(sorted(tuple(r) for r in await conn.execute(select(t.__table__))))
        return out


async def _receive(engine: AsyncEngine, body: dict[str, Any], sender: str | None = None,
                   allowance: Decimal | None = None) -> Any:
    return await receive_release(
        engine, body, sender=sender or body["release"]["node_id"], keys=Keys(NODES),
        region="north", now_ms=NOW, allowance=allowance,
    )


def _resigned(body: dict[str, Any], signer: str | None = None, **changes: Any) -> dict[str, Any]:
    release = copy.deepcopy(body["release"])
    release.update(changes)
    signed = sign_release(release, signing_key=node_key(signer or release["node_id"]),
                          key_version=1)
    return signed.model_dump(mode="json", by_alias=True)


async def test_accept_duplicate_and_conflict(db_url: str) -> None:
    engine = await make_hub_store(db_url)
    try:
        body = release_body("station-1", "2026-08", seed=1)
        first = await _receive(engine, body)
        assert not first.duplicate
        after_first = await _snapshot(engine)
        assert len(after_first[0]) == 1 and len(after_first[1]) == len(CELL_KEYS)
        again = await _receive(engine, copy.deepcopy(body))
        assert again.duplicate and again.release_id == first.release_id
        assert await _snapshot(engine) == after_first
        other = release_body("station-1", "2026-08", seed=1)  # fresh noise, same month
        with pytest.raises(AggregateError) as err:
            await _receive(engine, other)
        assert err.value.code == "conflicting_release"
        snap = await _snapshot(engine)
        assert snap[:2] == after_first[:2]
        assert len(snap[2]) == 1  # the alarm
        async with engine.connect() as conn:
            alarm = (await conn.execute(select(AggregateAlarm.__table__))).one()
        assert alarm.kind == "conflicting_release" and alarm.node_id == "station-1"
        assert alarm.stored_release_id == first.release_id
    finally:
        await engine.dispose()


async def test_totals_answer_the_statistics_query(db_url: str) -> None:
    engine = await make_hub_store(db_url)
    try:
        bodies = [release_body(n, m, seed=i) for i, n in enumerate(NODES)
                  for m in ("2026-07", "2026-08")]
        for b in bodies:
            await _receive(engine, b)
        async with engine.connect() as conn:
            sums = await load_month_sums(conn, StatsFilter("2026-07", "2026-08"))
            one = await load_month_sums(conn, StatsFilter("2026-07", "2026-08",
                                                           nodes=("station-2",)))
        expected = sum(v for b in bodies if b["release"]["month"] == "2026-08"
                       for k, v in b["release"]["cells"].items() if k.startswith("enc:"))
        doc = summarise(sums)
        aug = doc["months"][1]
        assert aug["month"] == "2026-08" and aug["nodes_reporting"] == 3
        assert aug["encounters"]["estimate"] == expected
        lo, hi = aug["encounters"]["interval"]
        assert lo < expected < hi
        assert doc["total"]["node_months"] == 6
        st2 = sum(v for b in bodies if b["release"]["node_id"] == "station-2"
                  for k, v in b["release"]["cells"].items() if k.startswith("enc:"))
        assert summarise(one)["total"]["encounters"]["estimate"] == st2
    finally:
        await engine.dispose()


async def test_bad_releases_refused_with_stable_codes(db_url: str) -> None:
    engine = await make_hub_store(db_url)
    try:
        good = release_body("station-2", "2026-08", seed=4)
        await _receive(engine, release_body("station-1", "2026-08", seed=3))
        before = await _snapshot(engine)
        cells = dict(good["release"]["cells"])
        missing = dict(cells)
        missing.pop(CELL_KEYS[0])
        extra = dict(cells, **{"enc:pilot:x:y": 3})
        scale = good["release"]["scale"]
        cases: list[tuple[str, dict[str, Any], str | None, Decimal | None]] = [
            ("bad_body", {"release": good["release"]}, None, None),
            ("bad_body", {"release": "x", "sig": good["sig"]}, "station-2", None),
            ("bad_signature", _resigned(good, signer="station-3"), None, None),
            ("sender_mismatch", good, "station-3", None),
            ("unknown_sender", _resigned(good, signer="station-9", node_id="station-9"),
             None, None),
            ("bad_cells", _resigned(good, cells=missing), None, None),
            ("bad_cells", _resigned(good, cells=extra), None, None),
            ("bad_cells", _resigned(good, schema="peernet.monthly/v0"), None, None),
            ("bad_noise", _resigned(good, scale=format_decimal(float(scale) * 2)), None,
             None),
            ("bad_noise", _resigned(good, scale="0", budget_spent="0"), None, None),
            ("bad_month", _resigned(good, month="2026-12"), None, None),
            ("over_budget", good, None, Decimal("0.01")),
            ("bad_body", _tampered(good), None, None),
        ]
        for code, body, sender, allowance in cases:
            with pytest.raises(AggregateError) as err:
                await _receive(engine, body, sender=sender, allowance=allowance)
            assert err.value.code == code, (code, err.value)
        assert await _snapshot(engine) == before
        await _receive(engine, good)  # and the good one still goes in
    finally:
        await engine.dispose()


def _tampered(body: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(body)
    out["release"]["cells"][CELL_KEYS[1]] = 1.5  # a float: not canonical JSON
    return out


async def test_pure_dp_release_accepted_with_its_variance(db_url: str) -> None:
    engine = await make_hub_store(db_url)
    try:
        body = release_body("station-3", "2026-06",
                            policy=ReleasePolicy(measure="pure_dp"))  # type: ignore[arg-type]
        await _receive(engine, body)
        async with engine.connect() as conn:
            row = (await conn.execute(select(AggregateRelease.__table__))).one()
        b = float(body["release"]["scale"])
        import math
        q = math.exp(-1 / b)
        assert row.variance == pytest.approx(2 * q / (1 - q) ** 2)
        assert row.mechanism == "laplace"
    finally:
        await engine.dispose()
