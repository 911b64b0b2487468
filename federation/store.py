"""Federation tables shared by the node and the hub: inbox, outbox, roster versions, alarms.

The tables live on their own `MetaData` (`METADATA`) so either server can carry them; each
server's Alembic history creates them in its own `federation` branch (see
`federation.schema_steps.federation_tables`). SQLAlchemy Core is used on purpose: the inbox
and the outbox sit on the hot path and take batch inserts and `FOR UPDATE SKIP LOCKED`
selects.

- `fed_inbox`: one row per accepted envelope, `UNIQUE(from_node, msg_id)`; the stored result
  is what a duplicate gets back. Rows are swept after `expires_ts + skew`, when the freshness
  check alone refuses a replay.
- `fed_outbox`: one row per message to send, written in the caller's business transaction
  with the envelope bytes built once (acks are queued as an `intent`, JSON of their type and
  body, and built once by the worker before their first send, off the inbox's hot path).
  `state` is `pending` until the recipient's signed `ack`
  arrives (`done`), or `failed` (a permanent refusal or expiry, `failed_code` says which).
  One queue per `destination`.
- `fed_roster`: every accepted roster version (the document bytes as received).
- `fed_alarm`: governance alarms (split view) for operators, with a reason and an audited
  acknowledgement (`federation.roster_alarms`).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "METADATA",
    "OutboxState",
    "alarms",
    "inbox",
    "outbox",
    "rosters",
]

METADATA = MetaData()


class OutboxState:
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    # Carried inside another row's message (`fed_outbox.carrier`, a batch): not sent itself;
    # takes the carrier's final state, ack time and code when the carrier has one.
    MERGED = "merged"


inbox = Table(
    "fed_inbox",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("from_node", String(95), nullable=False),  # <network>/<node_id> across networks
    Column("msg_id", String(26), nullable=False),
    Column("msg_type", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("code", String(32), nullable=True),
    Column("received_ts", BigInteger, nullable=False),
    Column("expires_ts", BigInteger, nullable=False),
    UniqueConstraint("from_node", "msg_id", name="uq_fed_inbox_from_msg"),
    Index("ix_fed_inbox_expires", "expires_ts"),
)

outbox = Table(
    "fed_outbox",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("destination", String(95), nullable=False),
    Column("msg_id", String(26), nullable=False),
    Column("msg_type", String(32), nullable=False),
    Column("envelope", LargeBinary, nullable=True),
    Column("intent", Text, nullable=True),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_ts", BigInteger, nullable=False),
    Column("created_ts", BigInteger, nullable=False),
    Column("expires_ts", BigInteger, nullable=False),
    Column("sent_ts", BigInteger, nullable=True),
    Column("acked_ts", BigInteger, nullable=True),
    Column("failed_code", String(32), nullable=True),
    Column("last_error", String(200), nullable=True),
    Column("carrier", String(26), nullable=True),  # msg_id of the message carrying it
    UniqueConstraint("destination", "msg_id", name="uq_fed_outbox_dest_msg"),
    Index("ix_fed_outbox_due", "state", "next_attempt_ts"),
)

rosters = Table(
    "fed_roster",
    METADATA,
    Column("version", BigInteger, primary_key=True, autoincrement=False),
    Column("sha256", String(43), nullable=False),
    Column("document", LargeBinary, nullable=False),
    Column("accepted_ts", BigInteger, nullable=False),
)

alarms = Table(
    "fed_alarm",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("source", String(63), nullable=True),
    Column("detail", Text, nullable=False),
    Column("acknowledged_ts", BigInteger, nullable=True),
    # branch fed_alarm_ack (`federation.roster_alarms`): words, and who acknowledged and why
    Column("reason", Text, nullable=True),
    Column("acknowledged_by", String(63), nullable=True),
    Column("ack_note", String(500), nullable=True),
    Index("ix_fed_alarm_ts", "ts"),
)
