"""Release ingest in batches: many releases per transaction, the same answer for each as alone.

Why: one transaction per release spends almost all of its time committing and writing one
statement per row (114 releases/s); a national month is tens of thousands of releases.
`accept_batch` takes many offers in the caller's write transaction:

1. each offer is checked on its own, in memory, exactly as a lone release is (the roster
   policy's measure when given, the release signature, then `check_content`); a refused
   offer gets its `AggregateError` (stable code) and nothing of it is written;
2. one query finds the node-months already stored, one the node-months the hub holds a
   shared-round share of; then the offers are answered in order as if received one after
   the other: an earlier offer of the batch counts as stored for a later one (the same
   bytes again: `duplicate` naming the first; different bytes: `conflicting_release` or
   `mixed_schema` with its alarm; a held share: `already_shared` with its alarm);
3. what the accepted offers add is written with one statement per table: the release
   rows (COPY on PostgreSQL), and the running sums pre-added per (month, region, cell or
   key) (`aggregate_totals`, `aggregate_value_totals`) and per (month, region, part)
   (`hub.stats.variance_totals`, exact). A release's own values are read back from its
   stored signed body (`hub.stats.rescan`, `hub.stats.aggregates_read`): no per-key rows,
   which cost more than everything else together (71 index-maintained rows a release).

So a bad release in a batch is refused alone, with its code, and changes nothing; the
others are stored as they would have been one by one (tests/privacy/test_hub_ingest_batch).
`accept_release` is a batch of one. `receive_releases` runs a batch in its own write
transaction (`db.write()`), records the batch's alarms after it commits, and if the
database refuses the batch (a concurrent writer stored one of its node-months first: a
unique-key violation) receives the offers again one per transaction, so each gets its own
answer.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import Table, insert, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from federation.database import Database
from hub.stats.aggregates_errors import AggregateCode, AggregateError
from hub.stats.aggregates_models import (
    Accepted,
    AggregateRelease,
    record_alarm,
    upsert_totals,
)
from hub.stats.estimates import CELL_INDEX
from hub.stats.release_check import check_content
from hub.stats.release_rules import measure_refusal
from hub.stats.rounds import HubShare
from hub.stats.variance_totals import V1_PART, PartKey, add_parts
from hub.stats.workload_totals import add_sums
from protocol.canonical import canonical_bytes_of_parsed
from protocol.encoding import sha256_b64u
from protocol.envelope import KeyResolver
from protocol.errors import ProtocolError
from protocol.hub_bodies import Release
from protocol.release import verify_release
from protocol.workload import KEY_GROUP

__all__ = ["Offer", "Outcome", "accept_batch", "receive_releases"]

Outcome = Accepted | AggregateError
_CHUNK = 400  # (node, month) pairs per lookup: well inside every engine's parameter limit
_COPY_FROM = 20  # rows from which PostgreSQL's COPY beats an INSERT


@dataclass(frozen=True)
class Offer:
    """One release body (plain JSON values), its envelope sender and the sender's region."""

    body: Mapping[str, Any]
    sender: str
    region: str


@dataclass(frozen=True)
class _Checked:
    index: int
    rel: Release
    region: str
    body_bytes: bytes
    digest: str
    variance: float
    groups: dict[str, float] | None


def _check_offer(
    index: int, offer: Offer, keys: KeyResolver, now_ms: int, allowance: Decimal | None,
    weights: Mapping[str, Decimal | str] | None, measure: str | None,
) -> _Checked:
    if measure is not None:
        refused = measure_refusal(offer.body, measure)
        if refused is not None:
            raise AggregateError(*refused)
    try:
        model = verify_release(offer.body, keys=keys, at_ms=now_ms, sender=offer.sender)
    except ProtocolError as exc:
        raise AggregateError(exc.code.value, exc.detail or "release refused") from exc
    variance, groups = check_content(model, now_ms, allowance, weights)
    # the body validated as the wire model above, so it is within the canonical subset
    body_bytes = canonical_bytes_of_parsed(dict(offer.body))
    return _Checked(index, model.release, offer.region, body_bytes, sha256_b64u(body_bytes),
                    variance, groups)


async def _pairs_in(
    conn: AsyncConnection, cols: Any, extra: Sequence[Any], pairs: list[tuple[str, str]]
) -> list[Any]:
    rows: list[Any] = []
    for i in range(0, len(pairs), _CHUNK):
        chunk = pairs[i : i + _CHUNK]
        stmt = select(*extra).where(tuple_(*cols).in_(chunk))
        rows.extend(await conn.execute(stmt))
    return rows


def _conflict(c: _Checked, stored_id: str, mixed: bool, now_ms: int) -> AggregateError:
    code = AggregateCode.MIXED_SCHEMA if mixed else AggregateCode.CONFLICTING_RELEASE
    rel = c.rel
    return AggregateError(
        code,
        f"{rel.node_id} already released {rel.month}; a second, different release is refused",
        alarm={"kind": code.value, "node_id": rel.node_id, "month": rel.month,
               "stored_release_id": stored_id, "offered_release_id": rel.release_id,
               "offered_body_sha256": c.digest, "received_at": now_ms},
    )


def _shared(c: _Checked, now_ms: int) -> AggregateError:
    rel = c.rel
    return AggregateError(
        AggregateCode.ALREADY_SHARED,
        f"{rel.node_id} sent {rel.month} as shares for a shared round; a local release of "
        "the same month is refused",
        alarm={"kind": AggregateCode.ALREADY_SHARED.value, "node_id": rel.node_id,
               "month": rel.month, "stored_release_id": "hub_share",
               "offered_release_id": rel.release_id, "offered_body_sha256": c.digest,
               "received_at": now_ms},
    )


async def accept_batch(
    conn: AsyncConnection,
    offers: Sequence[Offer],
    *,
    keys: KeyResolver,
    now_ms: int,
    allowance: Decimal | None = None,
    weights: Mapping[str, Decimal | str] | None = None,
    measure: str | None = None,
) -> list[Outcome]:
    """Check and store `offers` in the caller's write transaction; one outcome per offer,
    in order (module docstring). `measure`: the roster policy's, refused otherwise."""
    outcomes: list[Outcome | None] = [None] * len(offers)
    checked: list[_Checked] = []
    for i, offer in enumerate(offers):
        try:
            checked.append(_check_offer(i, offer, keys, now_ms, allowance, weights, measure))
        except AggregateError as exc:
            outcomes[i] = exc
    pairs = sorted({(c.rel.node_id, c.rel.month) for c in checked})
    r = AggregateRelease
    seen: dict[tuple[str, str], tuple[str, str, str]] = {
        (n, m): (rid, sha, schema)
        for n, m, rid, sha, schema in await _pairs_in(
            conn, (r.node_id, r.month),
            (r.node_id, r.month, r.release_id, r.body_sha256, r.schema_name), pairs)
    }
    fresh = [p for p in pairs if p not in seen]
    shared = {(n, m) for n, m in await _pairs_in(
        conn, (HubShare.node_id, HubShare.month), (HubShare.node_id, HubShare.month), fresh)}
    accepted: list[_Checked] = []
    for c in checked:
        rel = c.rel
        key = (rel.node_id, rel.month)
        stored = seen.get(key)
        if stored is not None:
            if stored[1] == c.digest:
                outcomes[c.index] = Accepted(stored[0], rel.node_id, rel.month, duplicate=True)
            else:
                outcomes[c.index] = _conflict(c, stored[0], stored[2] != rel.schema_, now_ms)
            continue
        if key in shared:
            outcomes[c.index] = _shared(c, now_ms)
            continue
        seen[key] = (rel.release_id, c.digest, rel.schema_)
        accepted.append(c)
        outcomes[c.index] = Accepted(rel.release_id, rel.node_id, rel.month, duplicate=False)
    await _store(conn, accepted, now_ms)
    return [o for o in outcomes if o is not None]


_RELEASE_COLS = ("release_id", "node_id", "month", "region", "schema_name", "measure",
                 "mechanism", "scale", "variance", "budget_spent", "per_person_month",
                 "per_cell", "opendp_version", "received_at", "body_sha256", "body")


async def _bulk_insert(
    conn: AsyncConnection, table: Table, cols: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    """Plain rows into `table` in the caller's transaction: on PostgreSQL a COPY on the
    transaction's own connection (for a few rows, one INSERT: COPY first asks the server
    for the column types), on SQLite an executemany of one prepared INSERT (no per-row
    statement building either way)."""
    if conn.dialect.name == "postgresql" and len(rows) >= _COPY_FROM:
        raw = await conn.get_raw_connection()
        try:
            await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
                table.name, records=rows, columns=list(cols))
        except Exception as exc:  # the driver's own error: give it SQLAlchemy's class
            if str(getattr(exc, "sqlstate", "")).startswith("23"):  # integrity violation
                raise IntegrityError(f"COPY {table.name}", None, exc) from exc
            raise
        return
    if conn.dialect.name == "postgresql":
        await conn.execute(insert(table), [dict(zip(cols, r, strict=True)) for r in rows])
        return
    marks = ",".join("?" * len(cols))
    sql = f"INSERT INTO {table.name} ({','.join(cols)}) VALUES ({marks})"  # noqa: S608
    await conn.exec_driver_sql(sql, rows)


async def _store(conn: AsyncConnection, items: list[_Checked], now_ms: int) -> None:
    """One statement per table for everything the accepted offers add."""
    if not items:
        return
    await _bulk_insert(conn, AggregateRelease.__table__, _RELEASE_COLS, [  # type: ignore[arg-type]
        (c.rel.release_id, c.rel.node_id, c.rel.month, c.region, c.rel.schema_,
         c.rel.measure.value, c.rel.mechanism.value, c.rel.scale or "groups", c.variance,
         c.rel.budget_spent, c.rel.bounds.per_person_month, c.rel.bounds.per_cell,
         c.rel.opendp_version, now_ms, c.digest, c.body_bytes)
        for c in items])
    part_vars: dict[PartKey, list[float]] = defaultdict(list)
    v1: dict[tuple[str, str, int], list[Any]] = defaultdict(lambda: [0, 0.0, 0])
    v2: dict[tuple[str, str, str], list[Any]] = defaultdict(lambda: [0, 0.0, 0])
    for c in items:
        rel = c.rel
        if c.groups is None:
            part_vars[(rel.month, c.region, V1_PART)].append(c.variance)
            for k, x in rel.cells.items():
                acc = v1[(rel.month, c.region, CELL_INDEX[k])]
                acc[0] += x
                acc[1] += c.variance
                acc[2] += 1
            continue
        groups = c.groups
        for g, var in groups.items():
            part_vars[(rel.month, c.region, g)].append(var)
        for k, x in rel.cells.items():
            acc = v2[(rel.month, c.region, k)]
            acc[0] += x
            acc[1] += groups[KEY_GROUP[k]]
            acc[2] += 1
    if v1:
        await conn.execute(upsert_totals(conn), [
            {"month": m, "region": reg, "cell": cell, "value_sum": s, "var_sum": vs,
             "nodes": n} for (m, reg, cell), (s, vs, n) in sorted(v1.items())])
    if v2:
        await add_sums(conn, [
            {"month": m, "region": reg, "key": k, "value_sum": s, "var_sum": vs, "nodes": n}
            for (m, reg, k), (s, vs, n) in sorted(v2.items())])
    await add_parts(conn, {  # exact: few distinct variances, each times its count
        key: (len(vs), sum((Fraction(v) * n for v, n in Counter(vs).items()), Fraction(0)))
        for key, vs in part_vars.items()})


async def receive_releases(
    engine: AsyncEngine | Database,
    offers: Sequence[Offer],
    *,
    keys: KeyResolver,
    now_ms: int,
    allowance: Decimal | None = None,
    weights: Mapping[str, Decimal | str] | None = None,
    measure: str | None = None,
) -> list[Outcome]:
    """`accept_batch` in its own write transaction, then the batch's alarms in one of their
    own; one per offer again if the database refuses the batch (module docstring)."""
    db = engine if isinstance(engine, Database) else Database(engine)
    opts: dict[str, Any] = {"keys": keys, "now_ms": now_ms, "allowance": allowance,
                            "weights": weights, "measure": measure}
    try:
        async with db.write() as conn:
            outcomes = await accept_batch(conn, offers, **opts)
    except IntegrityError:
        if len(offers) == 1:
            raise
        outcomes = []
        for offer in offers:
            async with db.write() as conn:
                outcomes.extend(await accept_batch(conn, [offer], **opts))
    alarms = [o.alarm for o in outcomes if isinstance(o, AggregateError) and o.alarm]
    if alarms:
        async with db.write() as conn:
            for alarm in alarms:
                await record_alarm(conn, alarm)
    return outcomes
