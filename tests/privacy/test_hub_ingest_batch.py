"""Batched release ingest at the hub (issue 16 item 4), on SQLite and PostgreSQL.

- A batch answers every offer exactly as receiving them one after the other does (same
  outcome, same stable refusal code, same rows, the same alarms), for a batch mixing v1 and
  v2 releases with every refusal the hub makes: bad signature, sender mismatch, unknown
  node, unfinished month, over budget, measure mismatch, a duplicate and a conflicting
  re-draw of an offer earlier in the same batch, a mixed-schema offer, a node-month the hub
  holds a shared-round share of.
- A bad release in a batch is refused alone: the store after [good, bad, good] is the
  store after [good, good], row for row.
- Two batches racing for one node-month (PostgreSQL: both find it absent, the second's
  COPY then hits the unique key and its offers are received again one per transaction)
  still give one stored release and a duplicate answer.
"""

from __future__ import annotations

import asyncio
import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bench.reliability_report import record
from federation.database import Database
from hub.stats.aggregates import Accepted, AggregateError, receive_release
from hub.stats.ingest import Offer, Outcome, receive_releases
from protocol.workload import SCHEMA as V2
from tests.privacy.hub_fixtures import Keys, make_hub_store
from tests.privacy.hub_store_dump import add_share, dump, second_store
from tests.privacy.release_factory import ReleaseFactory

NOW = 1_800_000_000_000  # 2027-01-15: every 2026 month is over, 2027-01 is not
NODES = [f"station-{i}" for i in range(8)]
KEYS = Keys(NODES)
V1 = "peernet.monthly/v1"
REGION = {n: ("north" if i % 2 else "south") for i, n in enumerate(NODES)}


def _offer(body: dict[str, Any], sender: str | None = None) -> Offer:
    node = body["release"]["node_id"]
    return Offer(body, sender or node, REGION.get(node, "north"))


def _tampered(body: dict[str, Any]) -> dict[str, Any]:
    bad = copy.deepcopy(body)
    key = next(iter(bad["release"]["cells"]))
    bad["release"]["cells"][key] += 1
    return bad


def _mixed_batch(fac: ReleaseFactory) -> tuple[list[Offer], list[str | None]]:
    """Offers and the code each must get (None: accepted; "duplicate": accepted again)."""
    s = NODES
    first = fac.body(s[0], "2026-03", schema=V2)
    plan: list[tuple[Offer, str | None]] = [
        (_offer(first), None),
        (_offer(fac.body(s[1], "2026-03", schema=V1)), None),
        (_offer(_tampered(fac.body(s[2], "2026-03", schema=V2))), "bad_signature"),
        (_offer(fac.body(s[3], "2026-03", schema=V2), sender=s[4]), "sender_mismatch"),
        (_offer(fac.body("station-99", "2026-03", schema=V2)), "unknown_sender"),
        (_offer(fac.body(s[5], "2027-01", schema=V2)), "month_not_finished"),
        (_offer(fac.body(s[6], "2026-03", schema=V2, budget="4.0")), "over_budget"),
        (_offer(fac.body(s[7], "2026-03", schema=V2)), "already_shared"),
        (_offer(copy.deepcopy(first)), "duplicate"),
        (_offer(fac.body(s[0], "2026-03", schema=V2)), "conflicting_release"),
        (_offer(fac.body(s[1], "2026-03", schema=V2)), "mixed_schema"),
        (_offer(fac.body(s[2], "2026-04", schema=V2, budget="0.7")), None),
        (_offer(fac.body(s[3], "2026-02", schema=V1, budget="0.7")), None),
    ]
    return [o for o, _ in plan], [c for _, c in plan]


def _codes(outcomes: list[Outcome]) -> list[str | None]:
    out: list[str | None] = []
    for o in outcomes:
        if isinstance(o, AggregateError):
            out.append(o.code)
        else:
            out.append("duplicate" if o.duplicate else None)
    return out


async def _one_by_one(engine: Any, offers: list[Offer], **kw: Any) -> list[Outcome]:
    out: list[Outcome] = []
    for o in offers:
        try:
            out.append(await receive_release(engine, o.body, sender=o.sender, region=o.region,
                                             keys=KEYS, now_ms=NOW, **kw))
        except AggregateError as exc:
            out.append(exc)
    return out


async def test_batch_answers_as_one_by_one(
    db_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    fac = ReleaseFactory(seed=1)
    offers, expected = _mixed_batch(fac)
    allowance = Decimal("1.0") / 12
    batch_store = await make_hub_store(db_url)
    try:
        async with second_store(db_url, tmp_path, request) as single_store:
            for engine in (batch_store, single_store):
                await add_share(engine, NODES[7], "2026-03", "north")
            got = await receive_releases(batch_store, offers, keys=KEYS, now_ms=NOW,
                                         allowance=allowance)
            alone = await _one_by_one(single_store, offers, allowance=allowance)
            assert _codes(got) == expected
            assert _codes(alone) == expected
            for a, b in zip(got, alone, strict=True):
                if isinstance(a, Accepted):
                    assert a == b
            batch_rows = await dump(batch_store)
            assert batch_rows == await dump(single_store)
            assert [r[0] for r in batch_rows["aggregate_alarms"]] == sorted(
                ["already_shared", "conflicting_release", "mixed_schema"])
            assert len(batch_rows["aggregate_releases"]) == 4
            # the policy's measure is checked first, as the inbox handler does
            (refused,) = await receive_releases(
                batch_store, [_offer(fac.body(NODES[4], "2026-05", schema=V2))], keys=KEYS,
                now_ms=NOW, measure="pure_dp")
            assert isinstance(refused, AggregateError) and refused.code == "measure_mismatch"
            assert await dump(batch_store) == batch_rows
    finally:
        await batch_store.dispose()


async def test_bad_release_in_a_batch_is_refused_alone(
    db_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    fac = ReleaseFactory(seed=2)
    good = [_offer(fac.body(n, "2026-06", schema=V2 if i % 3 else V1))
            for i, n in enumerate(NODES[:6])]
    bad = [_offer(_tampered(fac.body(NODES[6], "2026-06", schema=V2))),
           _offer(fac.body(NODES[7], "2026-06", schema=V2), sender=NODES[0]),
           _offer({"release": {"node_id": NODES[7]}, "sig": {}})]
    mixed = good[:2] + bad[:1] + good[2:4] + bad[1:] + good[4:]
    store = await make_hub_store(db_url)
    try:
        async with second_store(db_url, tmp_path, request) as clean:
            got = await receive_releases(store, mixed, keys=KEYS, now_ms=NOW)
            assert _codes(got) == ([None] * 2 + ["bad_signature"] + [None] * 2
                                   + ["sender_mismatch", "bad_body"] + [None] * 2)
            await receive_releases(clean, good, keys=KEYS, now_ms=NOW)
            assert await dump(store) == await dump(clean)
            # a batch of nothing but bad releases changes nothing at all
            before = await dump(store)
            again = await receive_releases(store, bad, keys=KEYS, now_ms=NOW)
            assert _codes(again) == ["bad_signature", "sender_mismatch", "bad_body"]
            assert await dump(store) == before
    finally:
        await store.dispose()
    record("bad-input-hub-release-batch", area="bad-input",
           case="a bad release inside a batch of hub ingest",
           how="a batch of 9 releases (v1 and v2) with a tampered cell, a sender mismatch "
               "and a body without its fields among them, on SQLite and PostgreSQL",
           result="each bad release refused with its stable code (bad_signature, "
                  "sender_mismatch, bad_body); the store equals the store of the good six "
                  "alone, row for row; a batch of only bad releases changes nothing",
           figures={"batch": len(mixed), "refused": 3})


async def test_racing_batches_store_a_node_month_once(db_url: str) -> None:
    fac = ReleaseFactory(seed=3)
    racers = [f"racer-{i:02d}" for i in range(48)]  # batches big enough for COPY
    keys = Keys(racers)
    offers = [Offer(fac.body(n, "2026-07", schema=V2), n, "north") for n in racers]
    a, b = offers[:24], offers[24:] + offers[:1]  # racer-00 in both
    engine = await make_hub_store(db_url)
    db1, db2 = Database(engine), Database(engine)  # two writers, as two processes would be
    try:
        got_a, got_b = await asyncio.gather(
            receive_releases(db1, a, keys=keys, now_ms=NOW),
            receive_releases(db2, b, keys=keys, now_ms=NOW))
        codes = _codes(got_a) + _codes(got_b)
        assert codes.count("duplicate") == 1 and codes.count(None) == 48
        rows = await dump(engine)
        assert len(rows["aggregate_releases"]) == 48
        assert rows["aggregate_alarms"] == []
        by_key = {(m, r, p): n for m, r, p, n, _x, _v in rows["aggregate_variance_totals"]}
        assert sum(n for (_, _, p), n in by_key.items() if p == "total") == 48
    finally:
        await db1.dispose()
        await db2.dispose()
