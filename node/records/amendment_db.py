"""The `encounter_amendments` table: one row per audited correction of an encounter.

A row keeps who amended, when, which fields, and the values of those fields before and
after (canonical JSON of enum values, times in ms, the pseudonymous `recipient_ref`; never
what a supporter typed). `nonce` is a random secret of the row: the audit entry of the
amendment carries `sha256(canonical({id, nonce, before, after}))`, so the stored original
values are bound to the hash chain, yet the auditor, who reads the chain but not records,
cannot guess them by hashing the few possible enum values. Rows go with their encounter
(`ON DELETE CASCADE`), i.e. only through the retention purge.
"""

from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from node.core.db import Base

__all__ = ["EncounterAmendment"]


class EncounterAmendment(Base):
    __tablename__ = "encounter_amendments"
    __table_args__ = (
        Index("ix_encounter_amendments_encounter_id_amended_at", "encounter_id", "amended_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    encounter_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("encounters.id", ondelete="CASCADE"))
    amended_by: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    amended_at: Mapped[int] = mapped_column(BigInteger)
    fields: Mapped[str] = mapped_column(String(300))  # sorted, comma-joined field names
    old_values: Mapped[str] = mapped_column(Text)
    new_values: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str] = mapped_column(String(43))
