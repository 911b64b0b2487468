"""The privacy ledger: one append-only row per node-month release (DESIGN section 7).

A release is *recorded before it leaves the node*: `record_release` checks the yearly
budget, reads the month's encounters, builds the noisy signed release
(`node.privacy.release.build_release`) and inserts the ledger row with the signed body bytes, all
in one write transaction. Only then may it be sent. A second call for the same month
returns the stored row: the noise is drawn once per node-month and the same bytes are
resent on every retry, so an observer can never average repeated draws.

Budget: the yearly budget (rho under zCDP, epsilon under pure DP) of the roster policy;
each release spends at most yearly / 12. A release that would take the year's spending
above the yearly budget (e.g. after the board lowered it mid-year) is refused with
`over_budget`; nothing is written.

Sending is a separate step over the stored bytes: `deliver_pending` hands every release
without a recorded delivery to a `deliver` callback (the federation outbox's `send` as an
`aggregate_release` to the hub) and appends a row to `release_deliveries`. With an outbox
that writes its row in the caller's transaction, pass `on_recorded` to `record_release`
instead: the outbox row then commits atomically with the ledger row and the outbox's own
replay resends the same bytes after a crash.

Tamper evidence (`node.privacy.ledger_attest`): each row is attested in the audit chain in
its own transaction, and so is each hand-over to the outbox; `record_release` refuses to
draw anything while the ledger disagrees with those entries (`ledger_tampered`) or when the
month already left the node (`month_already_sent`). Spending is kept per measure
(`node.privacy.budget`). `peer_ms` (the newest time a peer vouched for) refuses a month
that the node's clock alone calls finished (`month_not_finished`).

Tables: `release_ledger` and `release_deliveries`. This module never updates or deletes
a row of either.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import nacl.signing
from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from node.core.db import Base, Database, Encounter, FollowUp
from node.core.errors import Code, NodeError
from node.core.vocabulary import FollowUpStatus
from node.privacy.budget import spent_against
from node.privacy.ledger_attest import attest_recorded, attest_sent, guard
from node.privacy.ledger_groups import groups_of, insert_groups
from node.privacy.noise import EncounterColumns, EncounterFacts, encode
from node.privacy.release import SignedRelease, build_release, month_bounds_ms, month_of_ms
from node.privacy.schema import UNIT, ReleasePolicy
from protocol.workload import GROUP_NAMES

__all__ = [
    "LedgerEntry",
    "LedgerRow",
    "ReleaseDelivery",
    "deliver_pending",
    "ledger_entries",
    "month_columns",
    "record_release",
    "spent_in_year",
]

class LedgerRow(Base):
    """One release of one node-month. Append-only."""

    __tablename__ = "release_ledger"
    __table_args__ = (UniqueConstraint("node_id", "month"),)

    release_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(63))
    month: Mapped[str] = mapped_column(String(7))
    year: Mapped[int] = mapped_column(Integer, index=True)
    query_sha256: Mapped[str] = mapped_column(String(43))
    unit: Mapped[str] = mapped_column(String(64))
    per_person_month: Mapped[int] = mapped_column(Integer)
    per_cell: Mapped[int] = mapped_column(Integer)
    measure: Mapped[str] = mapped_column(String(10))
    mechanism: Mapped[str] = mapped_column(String(10))
    scale: Mapped[str] = mapped_column(String(64))
    budget_spent: Mapped[str] = mapped_column(String(64))
    budget_per_year: Mapped[str] = mapped_column(String(64))
    opendp_version: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[bytes] = mapped_column(LargeBinary)


class ReleaseDelivery(Base):
    """One hand-over of a stored release to the federation layer. Append-only."""

    __tablename__ = "release_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    release_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("release_ledger.release_id"), index=True
    )
    delivered_at: Mapped[int] = mapped_column(BigInteger)


@dataclass(frozen=True)
class LedgerEntry:
    release_id: str
    node_id: str
    month: str
    query_sha256: str
    unit: str
    per_person_month: int
    per_cell: int
    measure: str
    mechanism: str
    scale: str
    budget_spent: str
    budget_per_year: str
    opendp_version: str
    created_at: int
    body: bytes
    created: bool = False  # True when this call drew the noise; False: the stored release
    # v2: per workload group {group, weight, budget_share, scale, budget_spent}
    # (`node.privacy.ledger_groups`); a v2 row's `scale` column reads "groups".
    groups: tuple[dict[str, Any], ...] = ()

    def summary(self) -> dict[str, Any]:
        """Everything but the body (safe to print: no record content in any case)."""
        extra = {"groups": list(self.groups)} if self.groups else {}
        return {
            **extra,
            "release_id": self.release_id, "month": self.month, "measure": self.measure,
            "mechanism": self.mechanism, "scale": self.scale,
            "budget_spent": self.budget_spent, "budget_per_year": self.budget_per_year,
            "bounds": {"per_person_month": self.per_person_month, "per_cell": self.per_cell},
            "unit": self.unit, "query_sha256": self.query_sha256,
            "opendp_version": self.opendp_version, "created_at": self.created_at,
        }


_COLS = [c.name for c in LedgerRow.__table__.columns]


def _entry(row: Any, created: bool = False,
           groups: dict[str, list[dict[str, Any]]] | None = None) -> LedgerEntry:
    m = row._mapping
    g = _in_group_order((groups or {}).get(m["release_id"], []))
    return LedgerEntry(**{k: m[k] for k in _COLS if k != "year"}, created=created, groups=g)


def _in_group_order(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    order = {name: i for i, name in enumerate(GROUP_NAMES)}
    return tuple(sorted(rows, key=lambda r: order.get(r["group"], len(order))))


async def _entries(conn: AsyncConnection, rows: list[Any]) -> list[LedgerEntry]:
    groups = await groups_of(conn, [r._mapping["release_id"] for r in rows])
    return [_entry(r, groups=groups) for r in rows]


async def _stored(conn: AsyncConnection, node_id: str, month: str) -> LedgerEntry | None:
    row = (
        await conn.execute(
            select(LedgerRow.__table__).where(
                LedgerRow.node_id == node_id, LedgerRow.month == month
            )
        )
    ).first()
    return None if row is None else (await _entries(conn, [row]))[0]


async def spent_in_year(conn: AsyncConnection, node_id: str, year: int) -> Decimal:
    rows = await conn.execute(
        select(LedgerRow.budget_spent).where(LedgerRow.node_id == node_id, LedgerRow.year == year)
    )
    return sum((Decimal(v) for (v,) in rows), Decimal(0))


def _on_time(due_on: date, completed_at: int | None, status: str) -> bool:
    if status != FollowUpStatus.DONE.value or completed_at is None:
        return False
    end_of_due = datetime(due_on.year, due_on.month, due_on.day, tzinfo=UTC) + timedelta(days=1)
    return completed_at < int(end_of_due.timestamp() * 1000)


async def month_columns(conn: AsyncConnection, month: str) -> EncounterColumns:
    """The month's encounters (by `occurred_at`, UTC) as release columns."""
    start, end = month_bounds_ms(month)
    e, f = Encounter.__table__.c, FollowUp.__table__.c
    stmt = (
        select(
            e.recipient_ref, e.occurred_at, e.recipient_discipline, e.intervention,
            e.activation_type, e.referral, f.due_on, f.status, f.completed_at,
        )
        .select_from(Encounter.__table__.outerjoin(FollowUp.__table__, f.encounter_id == e.id))
        .where(e.occurred_at >= start, e.occurred_at < end)
    )
    result = await conn.stream(stmt)
    facts: list[EncounterFacts] = []
    async for r in result:
        has_fu = r.due_on is not None
        facts.append(
            EncounterFacts(
                recipient_ref=r.recipient_ref,
                occurred_at=r.occurred_at,
                recipient_discipline=str(r.recipient_discipline),
                intervention=str(r.intervention),
                activation_type=str(r.activation_type),
                referral=None if r.referral is None else str(r.referral),
                has_follow_up=has_fu,
                follow_up_on_time=has_fu and _on_time(r.due_on, r.completed_at, str(r.status)),
            )
        )
    return encode(facts)


# Returns the outbox message id (audited as the evidence that the month left the node).
OnRecorded = Callable[[AsyncConnection, LedgerEntry], Awaitable[str | None]]


async def record_release(
    db: Database,
    *,
    node_id: str,
    month: str,
    policy: ReleasePolicy,
    signing_key: nacl.signing.SigningKey,
    key_version: int,
    now_ms: int,
    on_recorded: OnRecorded | None = None,
    peer_ms: int | None = None,
) -> LedgerEntry:
    """Record (or return the already recorded) release of `month`; see the module docstring.

    Raises `NodeError(invalid_input)` for a malformed or unfinished month and
    `NodeError(over_budget)` when the year's budget would be exceeded."""
    try:
        start, end = month_bounds_ms(month)
    except ValueError as exc:
        raise NodeError(Code.INVALID_INPUT, "month must be YYYY-MM", "month") from exc
    if end > now_ms or (peer_ms is not None and end > peer_ms):
        # unfinished; or the node's clock is ahead of the newest time its peers vouch for
        raise NodeError(Code.MONTH_NOT_FINISHED, f"{month} has not ended (a month is "
                        "released only after it ends; check the node's clock)", "month")
    try:
        async with db.write() as conn:
            await guard(conn, node_id, month)  # ledger_attest: tampering, re-draws
            stored = await _stored(conn, node_id, month)
            if stored is not None:
                return stored
            year = int(month[:4])
            spent = await spent_against(conn, node_id, year, policy.measure)  # budget.py
            allowance = policy.monthly_allowance
            if spent + allowance > policy.budget_per_node_year * (1 + Decimal("1e-9")):
                raise NodeError(
                    Code.OVER_BUDGET,
                    f"releasing {month} would spend more than the yearly privacy budget "
                    f"({spent} of {policy.budget_per_node_year} already spent in {year})",
                    "month",
                )
            cols = await month_columns(conn, month)
            signed: SignedRelease = build_release(
                cols, node_id=node_id, month=month, policy=policy, signing_key=signing_key,
                key_version=key_version, now_ms=now_ms,
            )
            rel = signed.body["release"]
            values = {
                "release_id": signed.release_id, "node_id": node_id, "month": month,
                "year": year, "query_sha256": signed.query_sha256, "unit": UNIT,
                "per_person_month": policy.per_person_month, "per_cell": policy.per_cell,
                "measure": rel["measure"], "mechanism": rel["mechanism"],
                "scale": rel.get("scale", "groups"), "budget_spent": rel["budget_spent"],
                "budget_per_year": str(policy.budget_per_node_year),
                "opendp_version": rel["opendp_version"], "created_at": now_ms,
                "body": signed.body_bytes,
            }
            await conn.execute(insert(LedgerRow).values(**values))
            await insert_groups(conn, signed.release_id, signed.groups)
            del values["year"]
            stored_groups = await groups_of(conn, [signed.release_id])
            entry = LedgerEntry(**values, created=True, groups=_in_group_order(
                stored_groups.get(signed.release_id, [])))
            await attest_recorded(conn, entry, now_ms)
            if on_recorded is not None:
                msg_id = await on_recorded(conn, entry)
                await _mark_delivered(conn, entry.release_id, now_ms)
                await attest_sent(conn, entry, msg_id, now_ms)
            return entry
    except IntegrityError:
        # Another writer recorded this month first: its release is the release.
        async with db.read() as conn:
            stored = await _stored(conn, node_id, month)
        if stored is None:
            raise
        return stored


async def ledger_entries(db: Database, node_id: str | None = None) -> list[LedgerEntry]:
    stmt = select(LedgerRow.__table__).order_by(LedgerRow.month)
    if node_id is not None:
        stmt = stmt.where(LedgerRow.node_id == node_id)
    async with db.read() as conn:
        return await _entries(conn, list(await conn.execute(stmt)))


async def undelivered(db: Database) -> list[LedgerEntry]:
    delivered = select(ReleaseDelivery.release_id)
    stmt = (
        select(LedgerRow.__table__)
        .where(LedgerRow.release_id.not_in(delivered))
        .order_by(LedgerRow.month)
    )
    async with db.read() as conn:
        return [_entry(r) for r in await conn.execute(stmt)]


async def deliveries(db: Database, release_id: str) -> int:
    async with db.read() as conn:
        n = await conn.scalar(
            select(func.count()).where(ReleaseDelivery.release_id == release_id)
        )
    return int(n or 0)


async def _mark_delivered(conn: AsyncConnection, release_id: str, now_ms: int) -> None:
    await conn.execute(
        insert(ReleaseDelivery).values(release_id=release_id, delivered_at=now_ms)
    )


async def deliver_pending(db: Database, deliver: OnRecorded, *, now_ms: int) -> list[str]:
    """Hand every stored, undelivered release to `deliver(conn, entry)` (its stored bytes,
    unchanged) inside a write transaction that also notes the delivery, so a federation
    outbox row queued by `deliver` and the note commit together. A failing `deliver` leaves
    the release pending for the next run."""
    done: list[str] = []
    for entry in await undelivered(db):
        async with db.write() as conn:
            msg_id = await deliver(conn, entry)
            await _mark_delivered(conn, entry.release_id, now_ms)
            await attest_sent(conn, entry, msg_id, now_ms)
        done.append(entry.release_id)
    return done


def due_month(now_ms: int, release_day: int) -> str | None:
    """The month whose release is due at `now_ms` under a schedule releasing month M on
    day `release_day` of month M+1 (UTC), or None before that day."""
    from node.privacy.release import previous_month

    current = month_of_ms(now_ms)
    day = datetime.fromtimestamp(now_ms / 1000, tz=UTC).day
    return previous_month(current) if day >= release_day else None


def entries_by_month(entries: Iterable[LedgerEntry]) -> dict[str, LedgerEntry]:
    return {e.month: e for e in entries}
