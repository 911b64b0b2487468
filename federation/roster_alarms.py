"""Governance alarms (`fed_alarm`): what was seen, in words, and who acknowledged it.

An alarm is raised by `RosterState` (a split view: two rosters for one version) and persisted
by `RosterStore.flush_alarms`. Each row keeps

- `kind` (a stable code, `split_view`), `ts` (when it was raised), `source` (the node or
  caller that brought the evidence) and `detail` (JSON: version and both hashes, and whether
  the evidence was a signed roster `document` or an `envelope` naming another hash);
- `reason`: one or two sentences an operator can act on, written when the alarm is raised
  (rows from before the column existed get the same words from their detail on reading);
- the acknowledgement: `acknowledged_ts`, `acknowledged_by`, `ack_note`. Acknowledging is an
  audited act (who, when, why), done once (`UPDATE ... WHERE acknowledged_ts IS NULL`, so two
  operators racing get one success and one `conflict`); the row is kept, it only stops
  counting as active.

The same alarm is stored once while it is active: a second identical one (same kind and
detail, e.g. the same conflicting file installed twice) is dropped.

The frozen schema step that added `reason` and the acknowledgement columns is
`federation.schema_steps.alarm_ack` (each server's branch `fed_alarm_ack`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from federation.errors import FedCode, FederationError
from federation.store import alarms

__all__ = [
    "MAX_NOTE",
    "Alarm",
    "acknowledge",
    "list_alarms",
    "split_view_reason",
    "store_alarms",
]

log = logging.getLogger("peernet.federation.alarms")

MAX_NOTE = 500
_MAX_BY = 63


@dataclass(frozen=True)
class Alarm:
    """A governance alarm waiting to be persisted (`fed_alarm`)."""

    kind: str
    ts: int
    source: str | None
    detail: dict[str, object] = field(default_factory=dict)
    reason: str = ""


def _short(sha: object) -> str:
    return f"{str(sha)[:12]}…" if sha else "unknown"


def split_view_reason(detail: Mapping[str, Any], source: str | None) -> str:
    """The operator's words for a split view (see module docstring)."""
    v = detail.get("version")
    ours, seen = _short(detail.get("our_sha256")), _short(detail.get("seen_sha256"))
    who = source or "an unknown source"
    if detail.get("evidence") == "envelope":
        return (
            f"A message from {who} named roster version {v} with hash {seen}, but this "
            f"server holds version {v} with hash {ours}: {who} holds a different roster "
            "for the same version. Ask the board which roster is real."
        )
    return (
        f"Two rosters validly signed by the board both claim version {v}: the one this "
        f"server holds (hash {ours}) and one offered by {who} (hash {seen}). The board has "
        "signed two different rosters for one version; ask the board which is real before "
        "installing or trusting either."
    )


def _reason(kind: str, detail: Mapping[str, Any], source: str | None) -> str:
    if kind == FedCode.SPLIT_VIEW.value:
        return split_view_reason(detail, source)
    return kind.replace("_", " ").capitalize() + "."


async def store_alarms(conn: AsyncConnection | AsyncSession, pending: list[Alarm]) -> None:
    """Insert `pending`, skipping any identical to an alarm that is still active."""
    for a in pending:
        detail = json.dumps(a.detail, sort_keys=True)
        active = (
            await conn.execute(
                select(alarms.c.id).where(
                    alarms.c.kind == a.kind,
                    alarms.c.detail == detail,
                    alarms.c.acknowledged_ts.is_(None),
                )
            )
        ).first()
        if active is not None:
            continue
        await conn.execute(
            insert(alarms).values(
                kind=a.kind,
                ts=a.ts,
                source=a.source,
                detail=detail,
                reason=a.reason or _reason(a.kind, a.detail, a.source),
            )
        )


def _row(r: Any) -> dict[str, Any]:
    detail = json.loads(r.detail)
    return {
        "id": r.id,
        "kind": r.kind,
        "ts": r.ts,
        "source": r.source,
        "detail": detail,
        "reason": r.reason or _reason(r.kind, detail, r.source),
        "active": r.acknowledged_ts is None,
        "acknowledged_ts": r.acknowledged_ts,
        "acknowledged_by": r.acknowledged_by,
        "ack_note": r.ack_note,
    }


async def list_alarms(
    engine: AsyncEngine, *, active_only: bool = False, limit: int = 100
) -> list[dict[str, Any]]:
    """Alarms, newest first (all of them, or only those not acknowledged)."""
    q = select(alarms).order_by(alarms.c.id.desc()).limit(limit)
    if active_only:
        q = q.where(alarms.c.acknowledged_ts.is_(None))
    async with engine.connect() as conn:
        rows = (await conn.execute(q)).all()
    return [_row(r) for r in rows]


def _clean(value: str, name: str, limit: int) -> str:
    text = " ".join(value.split())
    if not text:
        raise FederationError(FedCode.BAD_INPUT, f"{name} must not be empty", name)
    if len(text) > limit:
        raise FederationError(FedCode.BAD_INPUT, f"{name} is longer than {limit} characters",
                              name)
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise FederationError(FedCode.BAD_INPUT, f"{name} holds control characters", name)
    return text


async def acknowledge(
    conn: AsyncConnection, alarm_id: int, *, by: str, note: str, now_ms: int
) -> dict[str, Any]:
    """Acknowledge one active alarm (who, when, why) inside the caller's write transaction;
    `not_found`, `conflict` (already acknowledged) or `bad_input` change nothing."""
    who = _clean(by, "by", _MAX_BY)
    text = _clean(note, "note", MAX_NOTE)
    done = await conn.execute(
        update(alarms)
        .where(alarms.c.id == alarm_id, alarms.c.acknowledged_ts.is_(None))
        .values(acknowledged_ts=now_ms, acknowledged_by=who, ack_note=text)
    )
    row = (await conn.execute(select(alarms).where(alarms.c.id == alarm_id))).first()
    if row is None:
        raise FederationError(FedCode.NOT_FOUND, f"no alarm {alarm_id}", "id")
    if done.rowcount != 1:
        raise FederationError(
            FedCode.CONFLICT,
            f"alarm {alarm_id} was already acknowledged by {row.acknowledged_by}",
            "id",
        )
    log.info("governance alarm %d (%s) acknowledged by %s", alarm_id, row.kind, who)
    return _row(row)
