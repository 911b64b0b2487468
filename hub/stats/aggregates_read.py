"""The estimator's view of what nodes released: per node-month {key: (value, variance)}.

`node_values(conn, month, region=None)` is the one reader `hub.stats.estimates` and the
statistics queries use for both schemas: v2 (`peernet.workload/v2`) from `aggregate_values`
(each key with its group's noise variance), v1 (`peernet.monthly/v1`, stored before v2 or
sent by old nodes) from the stored signed bodies (each cell with the release's variance).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.stats.aggregates import AggregateRelease
from hub.stats.aggregates_workload import AggregateValue
from protocol.canonical import parse_json
from protocol.workload import SCHEMA, WORKLOAD_KEYS

__all__ = ["NodeMonth", "node_values"]


@dataclass(frozen=True)
class NodeMonth:
    """What one node released for one month: the schema and {key: (value, variance)}.
    v2 keys are `protocol.workload.WORKLOAD_KEYS`; v1 keys are the 222 fine cells
    (`hub.stats.estimates.CELL_KEYS`), each with the release's single variance."""

    node_id: str
    region: str
    schema: str
    values: Mapping[str, tuple[int, float]]


async def node_values(
    conn: AsyncConnection, month: str, region: str | None = None
) -> dict[str, NodeMonth]:
    """Per node that released `month` (in `region`, when given): its schema and
    {key: (value, variance)}. v2 from `aggregate_values`; v1 from the stored bodies."""
    r = AggregateRelease
    stmt = select(r.node_id, r.region, r.schema_name, r.variance, r.body).where(r.month == month)
    if region is not None:
        stmt = stmt.where(r.region == region)
    out: dict[str, NodeMonth] = {}
    v2: dict[str, tuple[str, str]] = {}
    for row in await conn.execute(stmt):
        if row.schema_name == SCHEMA:
            v2[row.node_id] = (row.region, row.schema_name)
            continue
        cells = parse_json(row.body)["release"]["cells"]
        out[row.node_id] = NodeMonth(row.node_id, row.region, row.schema_name,
                                     {k: (int(v), float(row.variance)) for k, v in cells.items()})
    if v2:
        a = AggregateValue
        vals: dict[str, dict[str, tuple[int, float]]] = {n: {} for n in v2}
        q = select(a.node_id, a.key, a.value, a.variance).where(a.month == month)
        if region is not None:
            q = q.where(a.region == region)
        for v in await conn.execute(q):
            if v.node_id in vals:
                vals[v.node_id][v.key] = (int(v.value), float(v.variance))
        for n, (reg, schema) in v2.items():
            out[n] = NodeMonth(n, reg, schema, {k: vals[n][k] for k in WORKLOAD_KEYS})
    return dict(sorted(out.items()))
