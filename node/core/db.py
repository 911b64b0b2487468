"""The node's tables (SQLAlchemy 2 typed ORM) and its database handle.

Tables of the core (revision `0001_node_core`): users, web sessions, API tokens,
encounters (exactly the fields of DESIGN section 2), follow-ups, restricted disclosure
records, the audit log with its head row, and settings.

Conventions:
- times are integer milliseconds since the Unix epoch (what `federation.clock` gives);
  calendar dates (follow-up due, disclosure date) are `Date`;
- ids are UUIDs; enums are stored as their string values with a CHECK constraint;
- an encounter's follow-up lives in `follow_ups` (one row per encounter, unique); the API
  shows it as the encounter's `follow_up_due / follow_up_owner / follow_up_status`
  (`none` when there is no row, `overdue` computed against the clock).

Adding tables (other features): define models on `node.core.db.Base` in your own module, add the
module's dotted name to `TABLE_MODULES` below (Alembic's env.py imports them all), and add
your own migration revision with `down_revision = "0001_node_core"` and a unique
`branch_labels`.
"""

from __future__ import annotations

import asyncio
import importlib
import uuid
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    Uuid,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from federation.database import NAMING
from federation.database import Database as SharedDatabase
from node.core.auth_cache import AuthCache
from node.core.vocabulary import (
    ActivationType,
    DisclosureCategory,
    DurationBucket,
    FollowUpStatus,
    Intervention,
    RecipientCategory,
    RecipientDiscipline,
    Referral,
    Role,
    Topic,
)

__all__ = [
    "GENESIS_HASH",
    "TABLE_MODULES",
    "ApiToken",
    "AuditEntry",
    "AuditHead",
    "Base",
    "Database",
    "Disclosure",
    "Encounter",
    "FollowUp",
    "Setting",
    "TopicSet",
    "User",
    "WebSession",
    "import_table_modules",
    "table_of",
]

# Modules that define tables on `Base`; Alembic's env.py imports every one so that
# autogenerate and the schema test see all of them. Append yours (one line).
TABLE_MODULES: list[str] = [
    "node.core.db",
    "node.core.audit_staged",
    "node.privacy.ledger",
    "node.privacy.ledger_groups",
    "node.activation.db",
    "node.activation.transfer_db",
    "node.notify.db",
    "node.oidc.db",
    "node.records.amendment_db",
]


# prev_hash of the first audit entry: SHA-256 of b"peernet/v1/audit-genesis", base64url.
GENESIS_HASH = "mEv8yerrykPyw5SOR5OiZ7HiPIL2HbYsioKp0TUKbF8"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def enum_column(enum: type[StrEnum], name: str) -> Enum:
    """A string column holding `enum` values, with a CHECK constraint named `name`."""
    return Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(m.value) for m in enum),
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


_TOPIC_VALUES = {t.value: t.value for t in Topic}


class TopicSet(TypeDecorator[frozenset[Topic]]):
    """A set of `Topic` values stored as their sorted, comma-joined strings."""

    impl = String(200)
    cache_ok = True

    def process_bind_param(self, value: frozenset[Topic] | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        try:  # one C-level lookup per topic (members hash and compare as their strings)
            return ",".join(sorted(map(_TOPIC_VALUES.__getitem__, value)))
        except (KeyError, TypeError):  # not a topic: `Topic` refuses it, as it always has
            return ",".join(sorted(Topic(v).value for v in value))

    def process_result_value(self, value: str | None, dialect: Dialect) -> frozenset[Topic] | None:
        if value is None:
            return None
        return frozenset(Topic(v) for v in value.split(",") if v)


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(enum_column(Role, "role"))
    team: Mapped[str] = mapped_column(String(40), default="main")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    # Set by an admin's reset (`node.accounts.passwords`, migration accounts_0001).
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False,
                                                       server_default=false())


class WebSession(Base):
    """A browser session; `id` is the SHA-256 (b64u) of the cookie value, never the value."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(43), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(43))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    # Shown on the user's own sessions page (`node.accounts.sessions`, accounts_0001).
    last_seen_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ApiToken(Base):
    """A bearer token for scripts and the CLI, stored as its SHA-256 (b64u) only."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(43), unique=True)
    label: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Encounter(Base):
    """One peer support contact: exactly the fields of DESIGN section 2, no free text."""

    __tablename__ = "encounters"
    __table_args__ = (
        Index("ix_encounters_created_by_occurred_at", "created_by", "occurred_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    created_by: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[int] = mapped_column(BigInteger, index=True)
    duration_bucket: Mapped[DurationBucket] = mapped_column(
        enum_column(DurationBucket, "duration_bucket")
    )
    incident_ref: Mapped[str | None] = mapped_column(String(40), nullable=True)
    activation_type: Mapped[ActivationType] = mapped_column(
        enum_column(ActivationType, "activation_type")
    )
    intervention: Mapped[Intervention] = mapped_column(enum_column(Intervention, "intervention"))
    recipient_discipline: Mapped[RecipientDiscipline] = mapped_column(
        enum_column(RecipientDiscipline, "recipient_discipline")
    )
    recipient_category: Mapped[RecipientCategory] = mapped_column(
        enum_column(RecipientCategory, "recipient_category")
    )
    recipient_ref: Mapped[str] = mapped_column(String(43), index=True)
    topics: Mapped[frozenset[Topic]] = mapped_column(TopicSet)
    referral: Mapped[Referral | None] = mapped_column(
        enum_column(Referral, "referral"), nullable=True
    )
    notice_given: Mapped[bool] = mapped_column(Boolean)
    supporter_was_witness: Mapped[bool] = mapped_column(Boolean)


class FollowUp(Base):
    """The follow-up of one encounter (stored status: open, done or handed_off)."""

    __tablename__ = "follow_ups"
    __table_args__ = (Index("ix_follow_ups_owner_status_due", "owner_id", "status", "due_on"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    encounter_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("encounters.id", ondelete="CASCADE"), unique=True
    )
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[FollowUpStatus] = mapped_column(enum_column(FollowUpStatus, "follow_up_status"))
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    completed_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Disclosure(Base):
    """A disclosure under a legal exception: category, date, notice given. Nothing else."""

    __tablename__ = "disclosures"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    category: Mapped[DisclosureCategory] = mapped_column(
        enum_column(DisclosureCategory, "disclosure_category")
    )
    occurred_on: Mapped[date] = mapped_column(Date)
    notice_given: Mapped[bool] = mapped_column(Boolean)
    team: Mapped[str] = mapped_column(String(40))
    created_by: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    created_at: Mapped[int] = mapped_column(BigInteger)


class AuditEntry(Base):
    """One append-only audit entry; see `node.core.audit` for the hash chain."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ts: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str | None] = mapped_column(String(36), nullable=True)
    role: Mapped[str | None] = mapped_column(String(20), nullable=True)
    action: Mapped[str] = mapped_column(String(40))
    target_type: Mapped[str | None] = mapped_column(String(20), nullable=True)
    target_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str] = mapped_column(String(10))
    detail: Mapped[str] = mapped_column(String(400))
    prev_hash: Mapped[str] = mapped_column(String(43))
    hash: Mapped[str] = mapped_column(String(43))


class AuditHead(Base):
    """The single head row (id 1): last seq and hash, and the last signed head.

    Appends lock this row (`SELECT ... FOR UPDATE` on PostgreSQL; `BEGIN IMMEDIATE` plus an
    in-process lock on SQLite) so the chain stays linear under concurrent writers.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(43))
    signed_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    signed_hash: Mapped[str | None] = mapped_column(String(43), nullable=True)
    signed_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    signature: Mapped[str | None] = mapped_column(String(100), nullable=True)


class Setting(Base):
    """Node settings changed at run time (not secrets)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[int] = mapped_column(BigInteger)


def table_of(model: type[Base]) -> Table:
    """The Core table of a model (typed, for Core statements on the hot paths)."""
    return cast(Table, model.__table__)


def import_table_modules() -> None:
    """Import every module in `TABLE_MODULES` so their tables are on `Base.metadata`."""
    for name in TABLE_MODULES:
        importlib.import_module(name)


@dataclass
class Database(SharedDatabase):
    """The node's database handle: the shared write discipline
    (`federation.database.Database`) plus what the node's hot paths add.

    `auth_cache` holds bearer-token lookups for a moment (`node.core.auth_cache`); services
    that change users or tokens clear it. `fast_writer()` gives the PostgreSQL connections
    `node.core.audit.record` writes its groups on (`node.core.audit_pg`); on SQLite the
    groups are written inline (`node.core.audit_sqlite`, `write_group`).
    """

    # Off until the app turns it on (SQLite) or listens for changes (PostgreSQL).
    auth_cache: AuthCache = field(init=False, default_factory=lambda: AuthCache(enabled=False))
    _fast: dict[int, Any] = field(init=False, default_factory=dict)
    _fast_lock: asyncio.Lock = field(init=False, default_factory=asyncio.Lock)
    # The group commit's state (node.core.audit_sqlite / node.core.audit_pg).
    write_group: Any = field(init=False, default=None)

    async def fast_writer(self, slot: int = 0) -> Any:
        """A driver connection kept out of the pool: one asyncpg connection per PostgreSQL
        group in flight (`node.core.audit_pg`)."""
        conn = self._fast.get(slot)
        if conn is None:
            async with self._fast_lock:
                conn = self._fast.get(slot)
                if conn is None:
                    raw = await self.engine.raw_connection()
                    conn = raw.driver_connection
                    raw.detach()
                    self._fast[slot] = conn
        return conn

    async def drop_fast_writer(self, slot: int) -> None:
        """Forget the kept connection of `slot` if the server closed it (the next write opens
        another)."""
        conn = self._fast.get(slot)
        if conn is not None and getattr(conn, "is_closed", lambda: False)():
            del self._fast[slot]

    async def dispose(self) -> None:
        group = self.write_group
        task = getattr(group, "task", None)
        if task is not None and not task.done():
            # A SQLite group being gathered or written: its writes are answered first.
            await asyncio.wait([task], timeout=5)
        if hasattr(group, "close"):
            group.close()  # the SQLite group connection (node.core.audit_sqlite)
        kept, self._fast = list(self._fast.values()), {}
        for conn in kept:
            await conn.close()
        await super().dispose()
