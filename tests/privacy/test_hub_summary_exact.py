"""Statistics from the running sums kept on ingest equal, exactly, the statistics from
rescanning every stored release (issue 16 item 4), on SQLite and PostgreSQL.

- Differential: randomized v1 and v2 releases of 12 agencies in 3 regions over 6 months,
  at five different privacy budgets (so the noise variances differ and a float running sum
  would depend on the arrival order), arriving shuffled in rounds of randomly sized
  batches and single receipts: late releases for months already queried, resent
  duplicates, conflicting re-draws, other-schema offers and tampered bodies among them.
  After every round the whole statistics document (every figure, interval, standard error
  and rate) from the running sums `==` the one from the rescan, for several filters.
- An unfiltered or region query reads no release row and no per-key row.
- The migration fills the exact variance sums and counts from releases stored before it;
  the table matches its model.
"""

from __future__ import annotations

import copy
import random
from fractions import Fraction
from typing import Any

from sqlalchemy import event, insert, select

from federation.database import make_engine, migrate
from hub.stats.aggregates import AggregateError, AggregateRelease, receive_release
from hub.stats.aggregates_workload import AggregateValue
from hub.stats.ingest import Offer, receive_releases
from hub.stats.query import StatsFilter, load_month_sums
from hub.stats.summary import summarise
from hub.stats.variance_totals import AggregateVarianceTotal
from hub.stats.workload_totals import AggregateValueTotal
from protocol.workload import GROUP_NAMES, KEY_GROUP, WORKLOAD_KEYS
from protocol.workload import SCHEMA as V2
from tests.privacy.hub_fixtures import Keys, make_hub_store
from tests.privacy.release_factory import ReleaseFactory

NOW = 1_800_000_000_000  # 2027-01-15
V1 = "peernet.monthly/v1"
NODES = [f"agency-{i:02d}" for i in range(12)]
KEYS = Keys(NODES)
REGION = {n: ("north", "south", "east")[i % 3] for i, n in enumerate(NODES)}
MONTHS = [f"2026-{m:02d}" for m in range(1, 7)]
BUDGETS = ["1.0", "0.7", "2.0", "1.2", "0.3"]
FILTERS = [
    StatsFilter(MONTHS[0], MONTHS[-1]),
    StatsFilter(MONTHS[0], MONTHS[-1], region="north"),
    StatsFilter(MONTHS[0], MONTHS[-1], disciplines=("fire", "ems")),
    StatsFilter(MONTHS[1], MONTHS[3], region="east", disciplines=("corrections",)),
]


def _offers(rng: random.Random, fac: ReleaseFactory) -> list[Offer]:
    offers: list[Offer] = []
    for node in NODES:
        for month in MONTHS:
            if rng.random() < 0.2:
                continue  # this agency did not report that month
            schema = V1 if rng.random() < 0.3 else V2
            body = fac.body(node, month, schema=schema, budget=rng.choice(BUDGETS))
            offers.append(Offer(body, node, REGION[node]))
            roll = rng.random()
            if roll < 0.15:  # resent as is
                offers.append(Offer(copy.deepcopy(body), node, REGION[node]))
            elif roll < 0.25:  # a re-draw of the same node-month
                offers.append(Offer(fac.body(node, month, schema=schema), node, REGION[node]))
            elif roll < 0.30:  # the other schema for the same node-month
                other = V2 if schema == V1 else V1
                offers.append(Offer(fac.body(node, month, schema=other), node, REGION[node]))
            elif roll < 0.35:  # tampered in transit
                bad = copy.deepcopy(body)
                bad["release"]["cells"][next(iter(bad["release"]["cells"]))] += 3
                offers.append(Offer(bad, node, REGION[node]))
    return offers


async def _documents(engine: Any) -> list[tuple[Any, Any]]:
    out = []
    async with engine.connect() as conn:
        for f in FILTERS:
            fast = summarise(await load_month_sums(conn, f), f.disciplines)
            slow = summarise(await load_month_sums(conn, f, rescan=True), f.disciplines)
            out.append((fast, slow))
    return out


async def test_running_sums_equal_rescan_exactly(db_url: str) -> None:
    rng = random.Random(16)
    fac = ReleaseFactory(seed=16)
    offers = _offers(rng, fac)
    early = [o for o in offers if o.body["release"]["month"] != MONTHS[0]]
    late = [o for o in offers if o.body["release"]["month"] == MONTHS[0]]
    rng.shuffle(early)
    rng.shuffle(late)
    cut = len(early) // 3
    rounds = [early[:cut], early[cut:], late]  # the first month arrives last
    engine = await make_hub_store(db_url)
    stored = refused = 0
    try:
        for batch_round in rounds:
            i = 0
            while i < len(batch_round):
                size = rng.choice([1, 1, 3, 7, 15])
                chunk, i = batch_round[i : i + size], i + size
                if size == 1:
                    o = chunk[0]
                    try:
                        await receive_release(engine, o.body, sender=o.sender, keys=KEYS,
                                              region=o.region, now_ms=NOW)
                        stored += 1
                    except AggregateError:
                        refused += 1
                    continue
                for out in await receive_releases(engine, chunk, keys=KEYS, now_ms=NOW):
                    if isinstance(out, AggregateError):
                        refused += 1
                    else:
                        stored += 1
            for fast, slow in await _documents(engine):
                assert fast == slow
        assert refused > 5 and stored > 50
        full = (await _documents(engine))[0][0]
        assert full["total"]["node_months"] > 40
        assert full["total"]["encounters"] is not None
        # the float running sums queries read before differ from the exact ones here, so
        # they could not have equalled a rescan
        assert await _float_sums_drift(engine)
    finally:
        await engine.dispose()


async def _float_sums_drift(engine: Any) -> int:
    """How many v2 (month, region, key) float running sums differ from the exact sum."""
    t, v = AggregateValueTotal, AggregateVarianceTotal
    async with engine.connect() as conn:
        exact = {(r.month, r.region, r.part): r.var_sum
                 for r in await conn.execute(select(v.__table__))}
        return sum(1 for r in await conn.execute(select(t.__table__))
                   if r.var_sum != exact[(r.month, r.region, KEY_GROUP[r.key])])


async def test_query_reads_no_release_rows(db_url: str) -> None:
    fac = ReleaseFactory(seed=5)
    engine = await make_hub_store(db_url)
    try:
        offers = [Offer(fac.body(n, m, schema=V2 if i % 4 else V1), n, REGION[n])
                  for i, n in enumerate(NODES) for m in MONTHS[:2]]
        await receive_releases(engine, offers, keys=KEYS, now_ms=NOW)
        seen: list[str] = []

        def hook(_c: Any, _cur: Any, statement: str, *_args: Any) -> None:
            seen.append(statement)

        event.listen(engine.sync_engine, "before_cursor_execute", hook)
        async with engine.connect() as conn:
            for f in FILTERS:
                doc = summarise(await load_month_sums(conn, f), f.disciplines)
                assert doc["months"][0]["nodes_reporting"] > 0
        event.remove(engine.sync_engine, "before_cursor_execute", hook)
        assert seen
        assert not [s for s in seen if "aggregate_releases" in s or "aggregate_values " in s]
    finally:
        await engine.dispose()


def _release_row(node: str, month: str, region: str, schema: str, variance: float) -> dict[
        str, Any]:
    return {"release_id": f"{node}-{month}".ljust(26, "0")[:26], "node_id": node,
            "month": month, "region": region, "schema_name": schema, "measure": "zcdp",
            "mechanism": "gaussian", "scale": "1", "variance": variance,
            "budget_spent": "0.08", "per_person_month": 4, "per_cell": 1,
            "opendp_version": "0.16.0", "received_at": 0, "body_sha256": "x" * 43,
            "body": b"{}"}


async def test_migration_fills_exact_sums(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        await migrate(engine, "hub:migrations", "aggregates@head")
        await migrate(engine, "hub:migrations", "aggregate_values@head")
        v1 = [("a", "north", 0.1), ("b", "north", 0.2), ("c", "south", 7.25)]
        v2 = [("d", "north", {g: 0.1 * (i + 1) for i, g in enumerate(GROUP_NAMES)}),
              ("e", "north", {g: 0.3 for g in GROUP_NAMES})]
        async with engine.begin() as conn:
            await conn.execute(insert(AggregateRelease), [
                _release_row(n, "2026-05", r, V1, var) for n, r, var in v1]
                + [_release_row(n, "2026-05", r, V2, gv["total"]) for n, r, gv in v2])
            await conn.execute(insert(AggregateValue), [
                {"node_id": n, "month": "2026-05", "key": k, "region": r,
                 "group_name": KEY_GROUP[k], "value": 1, "variance": gv[KEY_GROUP[k]]}
                for n, r, gv in v2 for k in WORKLOAD_KEYS])
        await migrate(engine, "hub:migrations")
        async with engine.connect() as conn:
            t = AggregateVarianceTotal
            got = {(r.region, r.part): (r.nodes, Fraction(r.var_exact), r.var_sum)
                   for r in await conn.execute(select(t.__table__))}
        north = got[("north", "v1")]
        assert north[:2] == (2, Fraction(0.1) + Fraction(0.2))
        assert north[2] == float(Fraction(0.1) + Fraction(0.2))  # rounded once
        assert got[("south", "v1")][:2] == (1, Fraction(7.25))
        for i, g in enumerate(GROUP_NAMES):
            assert got[("north", g)][:2] == (2, Fraction(0.1 * (i + 1)) + Fraction(0.3))
        assert len(got) == 2 + len(GROUP_NAMES)
    finally:
        await engine.dispose()


async def test_variance_table_matches_its_model(db_url: str) -> None:
    from hub.db import Base
    from tests.shared_agg.test_schema import _check

    await _check(db_url, "hub:migrations", Base.metadata,
                 {AggregateVarianceTotal.__tablename__})
