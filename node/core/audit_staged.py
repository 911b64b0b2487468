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
"""

from __future__ import annotations

from sqlalchemy import BigInteger, LargeBinary, String, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from node.core.db import Base

__all__ = ["CREATE_SQL", "DROP_SQL", "AuditStaged", "link_now"]


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


CREATE_SQL = (
    """CREATE FUNCTION audit_link_staged() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  h_seq bigint;
  h_hash text;
  n_hash text;
BEGIN
  SELECT seq, hash INTO h_seq, h_hash FROM audit_head WHERE id = 1 FOR UPDATE;
  n_hash := rtrim(translate(encode(sha256(
    NEW.a || convert_to(h_hash, 'UTF8') || NEW.b || convert_to((h_seq + 1)::text, 'UTF8')
    || NEW.c), 'base64'), '+/', '-_'), '=');
  INSERT INTO audit_log (seq, ts, actor, role, action, target_type, target_id, outcome,
                         detail, prev_hash, hash)
  VALUES (h_seq + 1, NEW.ts, NEW.actor, NEW.role, NEW.action, NEW.target_type,
          NEW.target_id, NEW.outcome, NEW.detail, h_hash, n_hash);
  UPDATE audit_head SET seq = h_seq + 1, hash = n_hash WHERE id = 1;
  DELETE FROM audit_staged WHERE id = NEW.id;
  RETURN NULL;
END $$""",
    """CREATE CONSTRAINT TRIGGER audit_staged_link AFTER INSERT ON audit_staged
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION audit_link_staged()""",
)
DROP_SQL = (
    "DROP TRIGGER IF EXISTS audit_staged_link ON audit_staged",
    "DROP FUNCTION IF EXISTS audit_link_staged()",
)

_IMMEDIATE = text("SET CONSTRAINTS audit_staged_link IMMEDIATE")


async def link_now(conn: AsyncConnection) -> None:
    """PostgreSQL: link the entries this transaction staged now, not at its commit."""
    if conn.dialect.name == "postgresql":
        await conn.execute(_IMMEDIATE)
