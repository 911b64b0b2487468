"""The privacy ledger made tamper-evident: every ledger row is attested in the audit chain.

Why: the ledger (`node.privacy.ledger`) is the node's memory of which months it released
and how much budget each spent. Deleting a row there would let the node re-draw a month's
noise (a second draw of the same data: averaging them erodes the protection) and refund its
budget; editing `budget_spent` refunds budget silently. The ledger table alone cannot show
either. The audit chain (`node.core.audit`) can: it is hash-linked, its head is signed and
anchored at the hub, and a deleted or edited entry is reported by `peernet node audit
verify`.

So, in the same write transaction as the ledger row, `attest_recorded` appends an audit
entry `release.recorded` (target: the release id; detail: node id, month, measure, budget
spent and the SHA-256 of the signed body); when the release is handed to the federation
outbox, `attest_sent` appends `release.sent` (with the outbox message id), in the outbox
row's transaction. That entry is the evidence that the month left the node: outbox rows
themselves are sealed to the hub and swept a week after their ack.

`check` compares the ledger with those entries and names every disagreement:
`ledger_gap` (an attested release whose row is gone) and `ledger_altered` (a row whose
release id, measure, budget or body differs from what was attested). `guard` runs it inside
`record_release`'s transaction, before anything is drawn: any disagreement refuses every
release with `ledger_tampered` (restore the row from a backup; the message names the month
and release id), and a month attested as sent or recorded whose row is gone is refused
with `month_already_sent`: it is never drawn again, whatever the ledger table says.

Rows recorded before this module existed carry no attestation: `check` counts them as
`unattested` and accepts them (they were never evidence of anything more than today).
Removing the audit entries too breaks the chain, which audit verify and the hub anchor
catch; that is the audit chain's job, not re-done here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import column, select, table
from sqlalchemy.ext.asyncio import AsyncConnection

from node.core import audit
from node.core.db import AuditEntry, table_of
from node.core.errors import Code, NodeError
from protocol.encoding import sha256_b64u

__all__ = ["RECORDED", "SENT", "LedgerCheck", "Problem", "attest_recorded", "attest_sent",
           "check", "guard"]

RECORDED = "release.recorded"
SENT = "release.sent"
_TARGET = "release"
_audit = table_of(AuditEntry)
# The ledger's columns this module reads (the ORM model lives in `node.privacy.ledger`,
# which imports this module).
_ledger = table(
    "release_ledger", column("release_id"), column("node_id"), column("month"),
    column("measure"), column("budget_spent"), column("body"),
)


def _fields(entry: Any) -> dict[str, str]:
    return {
        "node_id": entry.node_id, "month": entry.month, "measure": entry.measure,
        "budget_spent": entry.budget_spent, "body_sha256": sha256_b64u(bytes(entry.body)),
    }


async def attest_recorded(conn: AsyncConnection, entry: Any, now_ms: int) -> None:
    """Audit a new ledger row (`entry`: a `LedgerEntry`) in the caller's transaction."""
    await audit.append(conn, ts=now_ms, action=RECORDED, target_type=_TARGET,
                       target_id=entry.release_id, detail=_fields(entry))


async def attest_sent(conn: AsyncConnection, entry: Any, msg_id: str | None,
                      now_ms: int) -> None:
    """Audit the hand-over of a stored release to the outbox (caller's transaction)."""
    detail: dict[str, Any] = {"node_id": entry.node_id, "month": entry.month}
    if msg_id:
        detail["msg_id"] = msg_id
    await audit.append(conn, ts=now_ms, action=SENT, target_type=_TARGET,
                       target_id=entry.release_id, detail=detail)


@dataclass(frozen=True)
class Problem:
    code: str  # ledger_gap | ledger_altered
    month: str
    release_id: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "month": self.month, "release_id": self.release_id,
                "message": self.message}


@dataclass
class LedgerCheck:
    problems: list[Problem] = field(default_factory=list)
    attested: int = 0
    unattested: int = 0
    sent_months: set[str] = field(default_factory=set)
    recorded_months: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "attested": self.attested, "unattested": self.unattested,
                "problems": [p.as_dict() for p in self.problems]}


async def check(conn: AsyncConnection, node_id: str) -> LedgerCheck:
    """Compare the ledger rows of `node_id` with their audit attestations (module docstring)."""
    out = LedgerCheck()
    rows = {
        r.month: r for r in await conn.execute(
            select(_ledger.c.release_id, _ledger.c.month, _ledger.c.measure,
                   _ledger.c.budget_spent, _ledger.c.body).where(_ledger.c.node_id == node_id)
        )
    }
    events = await conn.execute(
        select(_audit.c.action, _audit.c.target_id, _audit.c.detail)
        .where(_audit.c.action.in_([RECORDED, SENT])).order_by(_audit.c.seq)
    )
    seen: set[str] = set()
    for action, release_id, detail_text in events:
        detail = json.loads(detail_text)
        if detail.get("node_id") != node_id:
            continue
        month = str(detail.get("month"))
        (out.sent_months if action == SENT else out.recorded_months).add(month)
        row = rows.get(month)
        if row is None:
            if month not in seen:
                out.problems.append(Problem(
                    "ledger_gap", month, str(release_id),
                    f"the ledger row of {month} (release {release_id}) is missing, although "
                    "the audit log records it"))
            seen.add(month)
            continue
        if action != RECORDED:
            continue
        seen.add(month)
        held = _fields(_Row(node_id, row))
        want = {k: detail.get(k) for k in held}
        if row.release_id != release_id or held != want:
            out.problems.append(Problem(
                "ledger_altered", month, str(release_id),
                f"the ledger row of {month} differs from what the audit log recorded "
                f"(release {release_id})"))
    out.attested = len(out.recorded_months & rows.keys())
    out.unattested = len(rows.keys() - out.recorded_months)
    return out


@dataclass(frozen=True)
class _Row:
    node_id: str
    row: Any

    def __getattr__(self, name: str) -> Any:
        return getattr(self.row, name)


async def guard(conn: AsyncConnection, node_id: str, month: str) -> None:
    """Refuse drawing `month` when the ledger disagrees with the audit chain, or when the
    month was already recorded or sent (module docstring). Runs in the caller's write
    transaction, before the ledger row of `month` is looked up."""
    result = await check(conn, node_id)
    if not result.ok:
        mine = [p for p in result.problems if p.month == month and p.code == "ledger_gap"]
        if mine:
            left = "left the node" if month in result.sent_months else "was recorded"
            raise NodeError(
                Code.MONTH_ALREADY_SENT,
                f"the release of {month} already {left} (release {mine[0].release_id}) but "
                "its ledger row is missing: a month's noise is drawn once; restore the row "
                "from a backup",
                "month",
            )
        first = result.problems[0]
        raise NodeError(
            Code.LEDGER_TAMPERED,
            f"{first.message}; no release is made until the ledger is restored "
            "(peernet node ledger --verify lists every problem)",
            "month",
        )
