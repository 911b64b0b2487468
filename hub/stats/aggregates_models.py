"""The aggregate store's tables (`aggregate_releases`, `aggregate_totals`, `aggregate_alarms`),
what a receipt answers (`Accepted`), and the small writers the ingest path shares: the
running-totals upsert and the alarm row. Kept apart from `hub.stats.aggregates` (the rules
and the single-release entry points) so the batched ingest (`hub.stats.ingest`) and the
entry points that call it import these without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from hub.stats.aggregates_db import Base

__all__ = [
    "Accepted",
    "AggregateAlarm",
    "AggregateRelease",
    "AggregateTotal",
    "record_alarm",
    "upsert_totals",
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


def upsert_totals(conn: AsyncConnection) -> Any:
    """INSERT ... ON CONFLICT adding to the per-(month, region, cell) running sums."""
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


async def record_alarm(conn: AsyncConnection, alarm: Mapping[str, Any]) -> None:
    await conn.execute(insert(AggregateAlarm).values(**alarm))
