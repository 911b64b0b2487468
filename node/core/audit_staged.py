"""PostgreSQL: audit entries of a caller's transaction linked at its commit, inside the server.

An append inside a caller's transaction (an activation, a cancel, an audited read) used to
take the `audit_head` row lock with its statement (`audit_pg_append`) and hold it until the
caller's COMMIT reached the server: one round trip to the node and back, with the node's
event loop and a loaded machine's scheduler in between. Under load (bench.load: 50
activation clients beside 200 encounter writers) the head row was held almost all the time
by a transaction idle between its append and its commit, with twenty appends and the
encounter group queued behind it (pg_stat_activity: 18 waiting on the lock on average).

Now the append inserts the entry's parts into `audit_staged` (no lock), and a deferred
constraint trigger on that table links it when the transaction commits: it locks the head
row, hashes the entry exactly as `audit_pg_append` does (`A || prev || B || seq || C`, the
canonical bytes around their two unknowns), inserts it into `audit_log`, moves the head and
deletes the staged row. Deferred triggers run at COMMIT in the order their rows were
inserted, inside the server, so the head row is held from there to the end of the commit
only, with no round trip to any client; the entry still commits or rolls back with the
change it records, and several entries of one transaction keep their order.

Until the commit the entry's seq and hash are unknown: `append` returns the row with
`seq` 0 and empty hashes on PostgreSQL. A transaction that needs the linked head before it
commits (signing it: `audit.sign_head`) runs `link_now` first (`SET CONSTRAINTS ...
IMMEDIATE`: the staged entries are linked at once, and the lock is then held to the commit,
as before). SQLite is unchanged (its writer holds the database lock anyway).

The function and the trigger are defined once, in the migration `audit_staged_0001` (frozen);
tests/test_migrations_frozen.py checks that a fresh database has them as defined there.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, LargeBinary, String, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from node.core.db import Base

__all__ = ["AuditStaged", "link_now"]


class AuditStaged(Base):
    """An entry waiting for its transaction's commit (PostgreSQL; always empty after one)."""

    __tablename__ = "audit_staged"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    ts: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str | None] = mapped_column(String(36), nullable=True)
    role: Mapped[str | None] = mapped_column(String(20), nullable=True)
    action: Mapped[str] = mapped_column(String(40))
    target_type: Mapped[str | None] = mapped_column(String(20), nullable=True)
    target_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str] = mapped_column(String(10))
    detail: Mapped[str] = mapped_column(String(400))
    a: Mapped[bytes] = mapped_column(LargeBinary)
    b: Mapped[bytes] = mapped_column(LargeBinary)
    c: Mapped[bytes] = mapped_column(LargeBinary)


_IMMEDIATE = text("SET CONSTRAINTS audit_staged_link IMMEDIATE")


async def link_now(conn: AsyncConnection) -> None:
    """PostgreSQL: link the entries this transaction staged now, not at its commit."""
    if conn.dialect.name == "postgresql":
        await conn.execute(_IMMEDIATE)
