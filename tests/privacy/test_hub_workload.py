"""The hub takes workload (v2) releases: stored per node-month and key with the group's
variance, readable with v1 releases already stored; bad v2 bodies are refused with stable
codes and nothing stored changes (SQLite and PostgreSQL)."""

from __future__ import annotations

import copy
import math
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.stats.aggregates import AggregateAlarm, AggregateError, AggregateRelease, receive_release
from hub.stats.aggregates_read import node_values
from hub.stats.aggregates_workload import AggregateValue
from hub.stats.estimates import CELL_KEYS, release_variance
from protocol.encoding import format_decimal
from protocol.release import sign_release
from protocol.workload import (
    GROUP_NAMES,
    KEY_GROUP,
    SCHEMA,
    WORKLOAD_KEYS,
)
from tests.privacy.hub_fixtures import Keys, make_hub_store, node_key, release_body

NODES = ["station-1", "station-2", "station-3"]
KEYS = Keys(NODES)
NOW = 1_790_000_000_000  # 2026-09
ALLOWANCE = Decimal("1.0") / 12


async def _snapshot(engine: AsyncEngine) -> list[Any]:
    out: list[Any] = []
    async with engine.connect() as conn:
        for t in (AggregateRelease, AggregateValue, AggregateAlarm):
            out.append(sorted(tuple(r) for r in await conn.execute(select(t.__table__))))
    return out


async def _receive(engine: AsyncEngine, body: dict[str, Any], **kw: Any) -> Any:
    return await receive_release(
        engine, body, sender=body["release"]["node_id"], keys=KEYS, region="north",
        now_ms=NOW, allowance=ALLOWANCE, **kw)


def _resigned(body: dict[str, Any], change: Any) -> dict[str, Any]:
    rel = copy.deepcopy(body["release"])
    change(rel)
    return sign_release(rel, signing_key=node_key(rel["node_id"]), key_version=1).model_dump(
        mode="json", by_alias=True)


def v2(node: str = "station-1", month: str = "2026-08", seed: int = 0) -> dict[str, Any]:
    return release_body(node, month, seed=seed, schema=SCHEMA)


async def test_v2_stored_per_key_with_group_variance_and_v1_still_readable(
    db_url: str,
) -> None:
    engine = await make_hub_store(db_url)
    try:
        body = v2()
        acc = await _receive(engine, body)
        assert not acc.duplicate
        assert (await _receive(engine, body)).duplicate  # same bytes: idempotent
        old = release_body("station-2", "2026-08", seed=3)  # a v1 release (old node / stored)
        await _receive(engine, old)
        async with engine.connect() as conn:
            got = await node_values(conn, "2026-08")
            north = await node_values(conn, "2026-08", region="north")
            none = await node_values(conn, "2026-08", region="south")
        assert set(got) == {"station-1", "station-2"} and north == got and none == {}
        new = got["station-1"]
        assert new.schema == SCHEMA and list(new.values) == list(WORKLOAD_KEYS)
        groups = body["release"]["groups"]
        for k, (value, var) in new.values.items():
            assert value == body["release"]["cells"][k]
            scale = float(groups[KEY_GROUP[k]]["scale"])
            assert var == pytest.approx(release_variance("gaussian", scale))
        # The total's noise: sigma ~ 4 / sqrt(2 * 0.3 / 12) = 17.9 (DESIGN 7.1).
        assert math.sqrt(new.values["total"][1]) == pytest.approx(17.9, abs=0.1)
        legacy = got["station-2"]
        assert legacy.schema == "peernet.monthly/v1" and set(legacy.values) == set(CELL_KEYS)
        assert legacy.values[CELL_KEYS[0]][0] == old["release"]["cells"][CELL_KEYS[0]]
    finally:
        await engine.dispose()


def _drop_key(rel: dict[str, Any]) -> None:
    del rel["cells"]["referral:eap"]


def _unknown_group(rel: dict[str, Any]) -> None:
    rel["groups"]["bogus"] = rel["groups"].pop("cross")


def _missing_group(rel: dict[str, Any]) -> None:
    gone = rel["groups"].pop("cross")
    rel["budget_spent"] = format_decimal(
        Decimal(rel["budget_spent"]) - Decimal(gone["budget_spent"]))


def _weights_over_one(rel: dict[str, Any]) -> None:
    """The total group noised as if its weight were 0.5 (the weights then sum to 1.2):
    consistent scale and spend, but over the allowance."""
    budget = ALLOWANCE / 2
    scale = 4 / math.sqrt(2 * float(budget))
    spent = Decimal(16) / (2 * Decimal(repr(scale)) ** 2)
    old = Decimal(rel["groups"]["total"]["budget_spent"])
    rel["groups"]["total"] = {"scale": format_decimal(scale), "budget_spent": str(spent)}
    rel["budget_spent"] = str(Decimal(rel["budget_spent"]) - old + spent)


def _sum_mismatch(rel: dict[str, Any]) -> None:
    rel["budget_spent"] = format_decimal(Decimal(rel["budget_spent"]) / 2)


def _scale_mismatch(rel: dict[str, Any]) -> None:
    rel["groups"]["fu_due"]["scale"] = format_decimal(
        Decimal(rel["groups"]["fu_due"]["scale"]) * 2)


def _zero_spend(rel: dict[str, Any]) -> None:
    rel["groups"]["cross"]["budget_spent"] = "0"


def _v1_cells(rel: dict[str, Any]) -> None:
    rel["cells"] = dict.fromkeys(CELL_KEYS, 0)


@pytest.mark.parametrize(("change", "code"), [
    (_drop_key, "bad_cells"),
    (_v1_cells, "bad_cells"),
    (_unknown_group, "bad_groups"),
    (_missing_group, "bad_groups"),
    (_weights_over_one, "over_budget"),
    (_sum_mismatch, "bad_noise"),
    (_scale_mismatch, "bad_noise"),
    (_zero_spend, "bad_noise"),
])
async def test_bad_v2_refused_and_nothing_stored(db_url: str, change: Any, code: str) -> None:
    engine = await make_hub_store(db_url)
    try:
        await _receive(engine, v2("station-3"))
        before = await _snapshot(engine)
        with pytest.raises(AggregateError) as err:
            await _receive(engine, _resigned(v2(), change))
        assert err.value.code == code
        assert await _snapshot(engine) == before
    finally:
        await engine.dispose()


async def test_group_over_its_policy_share_refused(db_url: str) -> None:
    """Default weights on the node, equal weights in the roster: the total group spends
    0.30 of the allowance against a share of 0.125."""
    engine = await make_hub_store(db_url)
    try:
        before = await _snapshot(engine)
        with pytest.raises(AggregateError) as err:
            await _receive(engine, v2(), weights={g: "0.125" for g in GROUP_NAMES})
        assert err.value.code == "over_budget"
        assert await _snapshot(engine) == before
        await _receive(engine, v2())  # the roster's own (default) weights: accepted
    finally:
        await engine.dispose()


@pytest.mark.parametrize("first", ["v1", "v2"])
async def test_mixed_schemas_in_one_node_month_refused(db_url: str, first: str) -> None:
    engine = await make_hub_store(db_url)
    try:
        one = release_body("station-1", "2026-08")
        two = v2("station-1", "2026-08")
        a, b = (one, two) if first == "v1" else (two, one)
        await _receive(engine, a)
        rows_before = (await _snapshot(engine))[:2]
        with pytest.raises(AggregateError) as err:
            await _receive(engine, b)
        assert err.value.code == "mixed_schema"
        snap = await _snapshot(engine)
        assert snap[:2] == rows_before  # releases and values unchanged
        [alarm] = snap[2]
        assert "mixed_schema" in alarm
    finally:
        await engine.dispose()
