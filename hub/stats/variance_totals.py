"""Exact running sums of release noise variances and release counts, kept on ingest.

Why a table of its own: a statistics query must give, from the running sums, exactly the
figures a rescan of every stored release gives. Values are integers, so their running sums
(`aggregate_totals`, `aggregate_value_totals`) are exact whatever the order of ingest. Noise
variances are floats: a float running sum depends on the order the releases arrived and the
batches they came in, so it can differ from a rescan's sum in the last bits, and every
interval and standard error with it. Here each (month, region, part) keeps the *exact* sum
of its variances as a fraction (`var_exact`, text "n/d" of `fractions.Fraction`, exact for
any set of floats), and `var_sum`, its correctly rounded float. A rescan sums the same
variances exactly (`exact_float`) and rounds once: the same float, bit for bit.

Parts: `v1` (each `peernet.monthly/v1` release adds its one per-cell variance) and, for a
`peernet.workload/v2` release, each workload group name (the group's noise variance, which
is every one of its keys' variance). `nodes` counts the releases that went in, so the
number of nodes reporting a month is the `v1` part's count plus one v2 group's, read
without counting release rows.

Concurrency: `add_parts` reads the touched rows and writes them back in the caller's write
transaction; on PostgreSQL the rows are created if missing (`ON CONFLICT DO NOTHING`) and
read `FOR UPDATE`, so two concurrent batches serialise on the rows they share; on SQLite
the write transaction already holds the database's write lock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any, NamedTuple

from sqlalchemy import (
    Double,
    Integer,
    String,
    bindparam,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from hub.stats.aggregates_db import Base
from protocol.workload import GROUP_NAMES

__all__ = [
    "V1_PART",
    "AggregateVarianceTotal",
    "PartKey",
    "Part",
    "add_parts",
    "counts_of",
    "exact_float",
    "exact_total",
    "reporting_counts",
    "variance_sums",
]

V1_PART = "v1"
PartKey = tuple[str, str, str]  # (month, region, part)


class AggregateVarianceTotal(Base):
    """Per (month, region, part): releases counted and the exact sum of their variances."""

    __tablename__ = "aggregate_variance_totals"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    region: Mapped[str] = mapped_column(String(64), primary_key=True)
    part: Mapped[str] = mapped_column(String(64), primary_key=True)
    nodes: Mapped[int] = mapped_column(Integer)
    var_exact: Mapped[str] = mapped_column(String(400))
    var_sum: Mapped[float] = mapped_column(Double)


def exact_float(values: Iterable[float]) -> float:
    """The correctly rounded sum of `values` (what a running exact sum rounds to)."""
    return float(sum((Fraction(v) * n for v, n in Counter(values).items()), Fraction(0)))


def _text(x: Fraction) -> str:
    return f"{x.numerator}/{x.denominator}"


async def add_parts(
    conn: AsyncConnection, parts: Mapping[PartKey, tuple[int, Fraction]]
) -> None:
    """Add (releases, exact variance sum) to each (month, region, part), in the caller's
    write transaction."""
    if not parts:
        return
    t = AggregateVarianceTotal
    keys = sorted(parts)  # one lock order for every batch (PostgreSQL)
    if conn.dialect.name == "postgresql":
        await conn.execute(
            postgresql.insert(t).on_conflict_do_nothing(),
            [{"month": m, "region": r, "part": p, "nodes": 0, "var_exact": "0/1",
              "var_sum": 0.0} for m, r, p in keys])
    stmt = select(t.month, t.region, t.part, t.nodes, t.var_exact).where(
        tuple_(t.month, t.region, t.part).in_(keys))
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    have = {(m, r, p): (n, Fraction(x)) for m, r, p, n, x in await conn.execute(stmt)}
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for key in keys:
        count, var = parts[key]
        old = have.get(key)
        total = var if old is None else old[1] + var
        row = {"m": key[0], "r": key[1], "p": key[2],
               "nodes": count + (0 if old is None else old[0]),
               "var_exact": _text(total), "var_sum": float(total)}
        (new if old is None else changed).append(row)
    if new:
        await conn.execute(insert(t), [
            {"month": r["m"], "region": r["r"], "part": r["p"], "nodes": r["nodes"],
             "var_exact": r["var_exact"], "var_sum": r["var_sum"]} for r in new])
    if changed:
        await conn.execute(
            update(t)
            .where(t.month == bindparam("m"), t.region == bindparam("r"),
                   t.part == bindparam("p"))
            .values(nodes=bindparam("nodes"), var_exact=bindparam("var_exact"),
                    var_sum=bindparam("var_sum"))
            .execution_options(synchronize_session=False),
            changed,
        )


class Part(NamedTuple):
    """One (month, region, part) row: releases counted, rounded and exact variance sums."""

    nodes: int
    var_sum: float
    var_exact: str


def exact_total(parts: Iterable[Part]) -> float:
    """The correctly rounded sum of several parts' exact variance sums (one part: its own
    rounded sum, which was rounded from the same exact value)."""
    ps = list(parts)
    if len(ps) == 1:
        return ps[0].var_sum
    total = Fraction(0)
    for p in ps:
        num, _, den = p.var_exact.partition("/")
        total += Fraction(int(num), int(den))
    return float(total)


async def variance_sums(
    conn: AsyncConnection, month_from: str, month_to: str, region: str | None
) -> dict[str, dict[str, dict[str, Part]]]:
    """{month: {region: {part: Part}}} in the range (and region)."""
    t = AggregateVarianceTotal
    stmt = select(t.month, t.region, t.part, t.nodes, t.var_sum, t.var_exact).where(
        t.month >= month_from, t.month <= month_to)
    if region is not None:
        stmt = stmt.where(t.region == region)
    out: dict[str, dict[str, dict[str, Part]]] = {}
    for m, r, p, n, v, x in (await conn.execute(stmt)).all():
        out.setdefault(m, {}).setdefault(r, {})[p] = Part(int(n), float(v), x)
    return out


def counts_of(parts: Mapping[str, Mapping[str, Mapping[str, Part]]]) -> dict[str, int]:
    """Releases per month (either schema) from `variance_sums`: the `v1` part's count plus
    the first v2 group's (every v2 release adds to each group)."""
    out: dict[str, int] = {}
    for month, regions in parts.items():
        n = sum(p[k].nodes for p in regions.values() for k in (V1_PART, GROUP_NAMES[0])
                if k in p)
        if n > 0:
            out[month] = n
    return out


async def reporting_counts(
    conn: AsyncConnection, month_from: str, month_to: str, region: str | None
) -> dict[str, int]:
    """Releases stored per month (either schema) in the range (and region): the `v1` part's
    count plus the first v2 group's (every v2 release adds to each group)."""
    t = AggregateVarianceTotal
    stmt = (
        select(t.month, func.sum(t.nodes))
        .where(t.month >= month_from, t.month <= month_to,
               t.part.in_([V1_PART, GROUP_NAMES[0]]))
        .group_by(t.month)
    )
    if region is not None:
        stmt = stmt.where(t.region == region)
    return {m: int(c) for m, c in await conn.execute(stmt) if int(c) > 0}
