"""The ledger's workload groups: for each v2 release, every group's share and spend.

A workload release (`protocol.workload`) splits the monthly allowance between query groups
by the roster policy's weights. The ledger row (`node.privacy.ledger.LedgerRow`) keeps the
release's total spend; this table keeps, per (release, group), the weight, the budget share
w_g * allowance (exact Decimal, what the group may spend), the calibrated scale and what
OpenDP says the group spent (<= its share). Written in the same transaction as the ledger
row; append-only like it (this module never updates or deletes a row).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import String, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from node.core.db import Base
from node.privacy.workload import GroupCalibration
from protocol.encoding import format_decimal

__all__ = ["LedgerGroup", "groups_of", "insert_groups"]


class LedgerGroup(Base):
    """One workload group of one recorded release. Append-only."""

    __tablename__ = "release_ledger_groups"

    release_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    group_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    weight: Mapped[str] = mapped_column(String(64))
    budget_share: Mapped[str] = mapped_column(String(64))
    scale: Mapped[str] = mapped_column(String(64))
    budget_spent: Mapped[str] = mapped_column(String(64))


async def insert_groups(
    conn: AsyncConnection, release_id: str, cals: Sequence[GroupCalibration]
) -> None:
    if not cals:
        return
    await conn.execute(insert(LedgerGroup), [
        {"release_id": release_id, "group_name": c.group, "weight": format_decimal(c.weight),
         "budget_share": str(c.budget_share), "scale": format_decimal(c.scale),
         "budget_spent": format_decimal(c.budget_spent)}
        for c in cals
    ])


async def groups_of(
    conn: AsyncConnection, release_ids: Iterable[str]
) -> dict[str, list[dict[str, Any]]]:
    """{release_id: [{group, weight, budget_share, scale, budget_spent}, ...]} (stored order
    of `protocol.workload.GROUPS` is restored by the caller's key order)."""
    ids = list(release_ids)
    out: dict[str, list[dict[str, Any]]] = {}
    if not ids:
        return out
    rows = await conn.execute(select(LedgerGroup.__table__).where(LedgerGroup.release_id.in_(ids)))
    for r in rows:
        out.setdefault(r.release_id, []).append({
            "group": r.group_name, "weight": r.weight, "budget_share": r.budget_share,
            "scale": r.scale, "budget_spent": r.budget_spent,
        })
    return out
