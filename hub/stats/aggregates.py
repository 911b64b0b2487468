"""The hub's aggregate store: verified `aggregate_release` bodies, and per-month sums.

What arrives (DESIGN section 7) is `{"release": {...}, "sig": {key_id, value}}` from a
node, inside an envelope the hub can read. Before anything is stored:

1. the release signature (context `release`) verifies over the canonical bytes of
   `release` against the sender's roster key, and `release.node_id` is the envelope's
   sender (`protocol.release.verify_release`: `bad_signature`, `sender_mismatch`,
   `unknown_key`, ... as the roster says);
2. the body matches the wire model (`bad_body`), the month is `YYYY-MM` and not in the
   future (`bad_month`); a `peernet.monthly/v1` release has exactly its 222 cells
   (`bad_cells`); a `peernet.workload/v2` release is checked by
   `hub.stats.aggregates_workload.check_workload` (keys, groups, per-group noise and
   shares: `bad_cells`, `bad_groups`, `bad_noise`, `over_budget`);
3. the declared noise of a v1 release is real and consistent: a positive finite scale whose
   privacy loss at the declared bounds (`hub.stats.estimates.sensitivity`) is what the
   release says it spent, within the roster policy's monthly allowance when one is given
   (`bad_noise`, `over_budget`).

One release per node-month: the same body bytes again is a `duplicate` (idempotent, nothing
changes); a different body for a stored node-month is refused with `conflicting_release`
(`mixed_schema` when it is of the other schema) and an alarm row is written (a node that
re-draws noise could average it away). A node-month the hub holds a shared-round share of is
refused `already_shared`, with an alarm (`hub.stats.shared_guard`: it counts once).

Storage holds only what a release carries: the signed body bytes (so the board can
re-verify), its metadata, and running per-(month, region, cell) sums of the signed values
and of the noise variances (`aggregate_totals`), so that a statistics query reads a few
thousand rows however many nodes report (v1; v2 values are kept per node-month and key in
`aggregate_values`, read with `hub.stats.aggregates_read.node_values`). There is no
table, column or code path for a raw record: the hub never sees one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Double,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    insert,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from federation.database import Database
from hub.stats.aggregates_db import Base
from hub.stats.aggregates_errors import AggregateCode, AggregateError
from protocol.envelope import KeyResolver

__all__ = [
    "AggregateAlarm",
    "AggregateCode",
    "AggregateError",
    "AggregateRelease",
    "AggregateTotal",
    "Accepted",
    "accept_release",
    "receive_release",
    "record_alarm",
]


class AggregateRelease(Base):
    __tablename__ = "aggregate_releases"
    __table_args__ = (UniqueConstraint("node_id", "month"),)

    release_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(63))
    month: Mapped[str] = mapped_column(String(7), index=True)
    region: Mapped[str] = mapped_column(String(64))
    schema_name: Mapped[str] = mapped_column(String(64))
    measure: Mapped[str] = mapped_column(String(10))
    mechanism: Mapped[str] = mapped_column(String(10))
    scale: Mapped[str] = mapped_column(String(64))
    variance: Mapped[float] = mapped_column(Double)
    budget_spent: Mapped[str] = mapped_column(String(64))
    per_person_month: Mapped[int] = mapped_column(Integer)
    per_cell: Mapped[int] = mapped_column(Integer)
    opendp_version: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[int] = mapped_column(BigInteger)
    body_sha256: Mapped[str] = mapped_column(String(43))
    body: Mapped[bytes] = mapped_column(LargeBinary)


class AggregateTotal(Base):
    """Running sums per (month, region, cell) over the releases received."""

    __tablename__ = "aggregate_totals"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    region: Mapped[str] = mapped_column(String(64), primary_key=True)
    cell: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value_sum: Mapped[int] = mapped_column(BigInteger)
    var_sum: Mapped[float] = mapped_column(Double)
    nodes: Mapped[int] = mapped_column(Integer)


class AggregateAlarm(Base):
    """A node sent a second, different release for a month it already released."""

    __tablename__ = "aggregate_alarms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    node_id: Mapped[str] = mapped_column(String(63), index=True)
    month: Mapped[str] = mapped_column(String(7))
    stored_release_id: Mapped[str] = mapped_column(String(26))
    offered_release_id: Mapped[str | None] = mapped_column(String(26), nullable=True)
    offered_body_sha256: Mapped[str] = mapped_column(String(43))
    received_at: Mapped[int] = mapped_column(BigInteger)


@dataclass(frozen=True)
class Accepted:
    release_id: str
    node_id: str
    month: str
    duplicate: bool


def _upsert(conn: AsyncConnection) -> Any:
    mod: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = mod.insert(AggregateTotal)
    return stmt.on_conflict_do_update(
        index_elements=["month", "region", "cell"],
        set_={
            "value_sum": AggregateTotal.value_sum + stmt.excluded.value_sum,
            "var_sum": AggregateTotal.var_sum + stmt.excluded.var_sum,
            "nodes": AggregateTotal.nodes + stmt.excluded.nodes,
        },
    )


async def accept_release(
    conn: AsyncConnection,
    body: Mapping[str, Any],
    *,
    sender: str,
    keys: KeyResolver,
    region: str,
    now_ms: int,
    allowance: Decimal | None = None,
    weights: Mapping[str, Decimal | str] | None = None,
) -> Accepted:
    """Verify and store one release body (plain JSON values) in the caller's transaction:
    a batch of one (`hub.stats.ingest.accept_batch`, the one ingest path). `allowance` and
    `weights` (the roster policy's monthly allowance and workload weights) bound what a
    release, and each v2 group, may spend.

    Raises `AggregateError`; a conflicting release raises with `alarm` set (the caller
    records it with `record_alarm` in a transaction that commits)."""
    from hub.stats.ingest import Offer, accept_batch  # the batch path builds on this module

    (outcome,) = await accept_batch(
        conn, [Offer(body, sender, region)], keys=keys, now_ms=now_ms, allowance=allowance,
        weights=weights,
    )
    if isinstance(outcome, AggregateError):
        raise outcome
    return outcome


async def record_alarm(conn: AsyncConnection, alarm: Mapping[str, Any]) -> None:
    await conn.execute(insert(AggregateAlarm).values(**alarm))


async def receive_release(
    engine: AsyncEngine | Database,
    body: Mapping[str, Any],
    *,
    sender: str,
    keys: KeyResolver,
    region: str,
    now_ms: int,
    allowance: Decimal | None = None,
    weights: Mapping[str, Decimal | str] | None = None,
) -> Accepted:
    """`accept_release` in its own write transaction (`db.write()`, the one write path; a bare
    engine gets a `Database` of its own); a conflict's alarm commits on its own."""
    db = engine if isinstance(engine, Database) else Database(engine)
    try:
        async with db.write() as conn:
            return await accept_release(
                conn, body, sender=sender, keys=keys, region=region, now_ms=now_ms,
                allowance=allowance, weights=weights,
            )
    except AggregateError as exc:
        if exc.alarm is not None:
            async with db.write() as conn:
                await record_alarm(conn, exc.alarm)
        raise
