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
re-verify, and per-release readers read values back from them, `hub.stats.stored_body`),
its metadata, and running sums kept on ingest so that a statistics query reads a few
thousand rows however many nodes report: per (month, region, cell) for v1
(`aggregate_totals`), per (month, region, key) for v2 (`hub.stats.workload_totals`), and the
exact noise-variance sums and release counts (`hub.stats.variance_totals`). Tables live in
`hub.stats.aggregates_models`. Every release goes through `hub.stats.ingest.accept_batch`
(`accept_release` is a batch of one; `hub.stats.ingest.receive_releases` takes many per
transaction). There is no table, column or code path for a raw record: the hub never sees
one.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from federation.database import Database
from hub.stats.aggregates_errors import AggregateCode, AggregateError
from hub.stats.aggregates_models import (
    Accepted,
    AggregateAlarm,
    AggregateRelease,
    AggregateTotal,
    record_alarm,
)
from hub.stats.ingest import Offer, accept_batch
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
    (outcome,) = await accept_batch(
        conn, [Offer(body, sender, region)], keys=keys, now_ms=now_ms, allowance=allowance,
        weights=weights,
    )
    if isinstance(outcome, AggregateError):
        raise outcome
    return outcome


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
