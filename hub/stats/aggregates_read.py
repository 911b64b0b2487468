"""The estimator's view of what nodes released: per node-month {key: (value, variance)}.

`node_values(conn, month, region=None)` reads, for both schemas, each release's stored
signed body (`hub.stats.stored_body`): v2 (`peernet.workload/v2`) keys with their group's
noise variance, v1 (`peernet.monthly/v1`, stored before v2 or sent by old nodes) cells with
the release's variance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.stats.aggregates import AggregateRelease
from hub.stats.stored_body import body_values
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
    {key: (value, variance)}, from its stored signed body (`hub.stats.stored_body`)."""
    r = AggregateRelease
    stmt = select(r.node_id, r.region, r.schema_name, r.mechanism, r.variance, r.body).where(
        r.month == month)
    if region is not None:
        stmt = stmt.where(r.region == region)
    out: dict[str, NodeMonth] = {}
    for row in await conn.execute(stmt):
        values = body_values(row.schema_name, row.mechanism, row.variance, row.body)
        if row.schema_name == SCHEMA:
            values = {k: values[k] for k in WORKLOAD_KEYS}
        out[row.node_id] = NodeMonth(row.node_id, row.region, row.schema_name, values)
    return dict(sorted(out.items()))
