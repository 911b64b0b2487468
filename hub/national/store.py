"""Verified peer documents, kept so the national view is served from this hub's database.

`hub_national_document`: each verified signed document as received (its bytes, so anyone can
verify it again with the compact's keys), keyed by its SHA-256. `hub_national_month`: per
(network, month) the figures of the newest verified document covering that month (a month
is replaced only by a document issued later: an old document fetched late never moves a
month back). Only documents that passed `protocol.state_stats.open_state_stats` reach
`store_document`; a refused one leaves both tables as they were.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.db import Base
from protocol.canonical import canonical_bytes
from protocol.encoding import sha256_b64u
from protocol.state_stats import StateStats

__all__ = ["StoredMonth", "documents", "load_months", "months", "store_document"]

documents = Table(
    "hub_national_document",
    Base.metadata,
    Column("sha256", String(43), primary_key=True),
    Column("network_id", String(31), nullable=False),
    Column("hub_id", String(63), nullable=False),
    Column("issued_ts", BigInteger, nullable=False),
    Column("month_from", String(7), nullable=False),
    Column("month_to", String(7), nullable=False),
    Column("received_ts", BigInteger, nullable=False),
    Column("signed", Text, nullable=False),
)

months = Table(
    "hub_national_month",
    Base.metadata,
    Column("network_id", String(31), primary_key=True),
    Column("month", String(7), primary_key=True),
    Column("nodes", Integer, nullable=False),
    Column("issued_ts", BigInteger, nullable=False),
    Column("document_sha256", String(43), nullable=False),
    Column("figures", Text, nullable=False),
)
Index("ix_hub_national_month_month", months.c.month)


@dataclass(frozen=True)
class StoredMonth:
    network_id: str
    month: str
    nodes: int
    issued_ts: int
    estimate: tuple[float, ...] | None
    variance: tuple[float, ...] | None
    covariance: dict[str, float] | None


async def store_document(conn: AsyncConnection, doc: StateStats, signed: bytes,
                         now_ms: int) -> int:
    """Keep a verified document; returns how many months it set or replaced."""
    digest = sha256_b64u(signed)
    held_doc = (await conn.execute(
        select(documents.c.sha256).where(documents.c.sha256 == digest))).first()
    if held_doc is None:
        await conn.execute(insert(documents).values(
            sha256=digest, network_id=doc.network_id, hub_id=doc.hub_id,
            issued_ts=doc.issued_ts, month_from=doc.month_from, month_to=doc.month_to,
            received_ts=now_ms, signed=signed.decode()))
    held = {r.month: r.issued_ts for r in (await conn.execute(
        select(months.c.month, months.c.issued_ts).where(
            months.c.network_id == doc.network_id, months.c.month >= doc.month_from,
            months.c.month <= doc.month_to))).all()}
    changed = 0
    for m in doc.months:
        row = {"nodes": m.nodes, "issued_ts": doc.issued_ts, "document_sha256": digest,
               "figures": canonical_bytes(m.to_json()).decode()}
        if m.month not in held:
            await conn.execute(insert(months).values(network_id=doc.network_id,
                                                     month=m.month, **row))
        elif held[m.month] < doc.issued_ts:
            await conn.execute(update(months).where(
                months.c.network_id == doc.network_id, months.c.month == m.month).values(**row))
        else:
            continue
        changed += 1
    return changed


def _floats(xs: Sequence[str] | None) -> tuple[float, ...] | None:
    return None if xs is None else tuple(float(x) for x in xs)


async def load_months(conn: AsyncConnection, month_from: str, month_to: str,
                      networks: Sequence[str]) -> list[StoredMonth]:
    """The stored months of `networks` in the range (values were checked when stored)."""
    if not networks:
        return []
    rows = (await conn.execute(
        select(months.c.network_id, months.c.month, months.c.nodes, months.c.issued_ts,
               months.c.figures)
        .where(months.c.month >= month_from, months.c.month <= month_to,
               months.c.network_id.in_(list(networks))))).all()
    out = []
    for r in rows:
        f = json.loads(r.figures)
        cov = f["covariance"]
        out.append(StoredMonth(
            r.network_id, r.month, r.nodes, r.issued_ts, _floats(f["estimate"]),
            _floats(f["variance"]),
            None if cov is None else {k: float(v) for k, v in cov.items()}))
    return out
