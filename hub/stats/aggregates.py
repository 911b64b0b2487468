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

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    BigInteger,
    Double,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    insert,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from federation.database import Database
from hub.stats.aggregates_db import Base
from hub.stats.aggregates_errors import AggregateCode, AggregateError
from hub.stats.aggregates_workload import check_workload, store_values
from hub.stats.estimates import CELL_INDEX, KEY_SET, SCHEMA, release_variance, sensitivity
from hub.stats.release_rules import month_refusal
from hub.stats.shared_guard import holds_share
from protocol.canonical import canonical_bytes
from protocol.encoding import sha256_b64u
from protocol.envelope import KeyResolver
from protocol.errors import ProtocolError
from protocol.hub_bodies import AggregateReleaseBody
from protocol.release import verify_release
from protocol.vocabulary import Measure
from protocol.workload import SCHEMA as WORKLOAD_SCHEMA

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


def _month_index(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:]) - 1


def _month_of_ms(ms: int) -> int:
    import datetime

    d = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return d.year * 12 + d.month - 1


def _check(
    model: AggregateReleaseBody, now_ms: int, allowance: Decimal | None,
    weights: Mapping[str, Decimal | str] | None = None,
) -> tuple[float, dict[str, float] | None]:
    """Content checks after the signature; returns (per-cell variance of a v1 release or
    the `total` key's of a v2 one, the v2 groups' variances or None)."""
    rel = model.release
    month_refused = month_refusal(rel.month, now_ms)  # future or unfinished
    if month_refused is not None:
        raise AggregateError(*month_refused)
    if rel.schema_ == WORKLOAD_SCHEMA:
        groups = check_workload(rel, allowance=allowance, weights=weights)
        return groups["total"], groups
    if rel.schema_ != SCHEMA or set(rel.cells) != KEY_SET or rel.scale is None:
        raise AggregateError(AggregateCode.BAD_CELLS, "cells are not the fixed key set")
    try:
        scale = float(Decimal(rel.scale))
        spent = Decimal(rel.budget_spent)
    except (InvalidOperation, ValueError) as exc:
        raise AggregateError(AggregateCode.BAD_NOISE, "unreadable scale or budget") from exc
    if not (scale > 0 and math.isfinite(scale)) or spent <= 0:
        raise AggregateError(AggregateCode.BAD_NOISE, "a release must carry noise")
    l1, l2 = sensitivity(rel.bounds.per_person_month, rel.bounds.per_cell)
    implied = l2 * l2 / (2 * scale * scale) if rel.measure is Measure.ZCDP else l1 / scale
    if not math.isclose(implied, float(spent), rel_tol=1e-6):
        raise AggregateError(
            AggregateCode.BAD_NOISE, "declared scale does not match declared budget and bounds"
        )
    if allowance is not None and spent > allowance * (1 + Decimal("1e-9")):
        raise AggregateError(AggregateCode.OVER_BUDGET, "release spends over the allowance")
    return release_variance(rel.mechanism.value, scale), None


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
    """Verify and store one release body (plain JSON values) in the caller's transaction.
    `allowance` and `weights` (the roster policy's monthly allowance and workload weights)
    bound what a release, and each v2 group, may spend.

    Raises `AggregateError`; a conflicting release raises with `alarm` set (the caller
    records it with `record_alarm` in a transaction that commits)."""
    try:
        model = verify_release(body, keys=keys, at_ms=now_ms, sender=sender)
    except ProtocolError as exc:
        raise AggregateError(exc.code.value, exc.detail or "release refused") from exc
    variance, group_variances = _check(model, now_ms, allowance, weights)
    rel = model.release
    body_bytes = canonical_bytes(dict(body))
    digest = sha256_b64u(body_bytes)
    stored = (
        await conn.execute(
            select(AggregateRelease.release_id, AggregateRelease.body_sha256,
                   AggregateRelease.schema_name).where(
                AggregateRelease.node_id == rel.node_id, AggregateRelease.month == rel.month
            )
        )
    ).first()
    if stored is not None:
        if stored.body_sha256 == digest:
            return Accepted(stored.release_id, rel.node_id, rel.month, duplicate=True)
        mixed = stored.schema_name != rel.schema_
        raise AggregateError(
            AggregateCode.MIXED_SCHEMA if mixed else AggregateCode.CONFLICTING_RELEASE,
            f"{rel.node_id} already released {rel.month}; a second, different release is "
            "refused",
            alarm={
                "kind": (AggregateCode.MIXED_SCHEMA if mixed
                         else AggregateCode.CONFLICTING_RELEASE).value, "node_id": rel.node_id,
                "month": rel.month, "stored_release_id": stored.release_id,
                "offered_release_id": rel.release_id, "offered_body_sha256": digest,
                "received_at": now_ms,
            },
        )
    if await holds_share(conn, rel.node_id, rel.month):
        raise AggregateError(
            AggregateCode.ALREADY_SHARED,
            f"{rel.node_id} sent {rel.month} as shares for a shared round; a local release of "
            "the same month is refused",
            alarm={"kind": AggregateCode.ALREADY_SHARED.value, "node_id": rel.node_id,
                   "month": rel.month, "stored_release_id": "hub_share",
                   "offered_release_id": rel.release_id, "offered_body_sha256": digest,
                   "received_at": now_ms},
        )
    await conn.execute(
        insert(AggregateRelease).values(
            release_id=rel.release_id, node_id=rel.node_id, month=rel.month, region=region,
            schema_name=rel.schema_, measure=rel.measure.value,
            mechanism=rel.mechanism.value, scale=rel.scale or "groups", variance=variance,
            budget_spent=rel.budget_spent, per_person_month=rel.bounds.per_person_month,
            per_cell=rel.bounds.per_cell, opendp_version=rel.opendp_version,
            received_at=now_ms, body_sha256=digest, body=body_bytes,
        )
    )
    if group_variances is not None:
        await store_values(conn, rel, region, group_variances)
        return Accepted(rel.release_id, rel.node_id, rel.month, duplicate=False)
    rows = [
        {"month": rel.month, "region": region, "cell": CELL_INDEX[k], "value_sum": v,
         "var_sum": variance, "nodes": 1}
        for k, v in rel.cells.items()
    ]
    await conn.execute(_upsert(conn), rows)
    return Accepted(rel.release_id, rel.node_id, rel.month, duplicate=False)


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
