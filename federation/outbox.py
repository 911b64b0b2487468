"""The outbox: durable, retried, end-to-end acknowledged delivery (DESIGN section 4).

Writing: `enqueue` (or `FederationService.send`, which builds the envelope) runs inside the
caller's business transaction, so the business row and the outbox row commit together or not
at all. The envelope is built once; every retry resends the same bytes. Acks are queued as
an *intent* (their type and body) by the inbox and built once by the worker before their
first send, which keeps envelope building off the inbox's hot path; so are messages of a
type with a batch form (the hub's activation reports), which wait a short linger and may
be built together as one batch message (`FederationService._materialize`).

Queues and timing: one queue per destination (`fed_outbox.destination`). A row is due when
`next_attempt_ts <= now`. Failed attempts back off exponentially with jitter
(`backoff_ms`: 1 s, 2 s, 4 s ... capped at 15 minutes; public safety cannot wait days). A
valid inbound request from a peer proves it is up: `reset_backoff` makes its undelivered
rows due at once. Rows still pending at startup are simply due: the worker replays them.

Done means acknowledged end to end: a non-ack row stays `pending` after the next hop (the
peer, or the hub) answered `accepted` until the recipient's signed `ack` arrives through the
inbox (`mark_acked`); meanwhile it is resent after a longer wait (`AWAIT_ACK_MS`, growing),
which the recipient answers as a duplicate and re-acks. An `ack` itself is done once a hop
accepted it (the hub queue is durable, and acks are not acked). A permanent refusal or the
envelope's expiry marks the row `failed` with the code. A row merged into a batch message
(state `merged`, `carrier` = the batch's msg_id) is not sent itself: it takes the carrier's
final state, ack time and code when the carrier gets them (`follow_carriers`).

Several workers (processes) may share one PostgreSQL outbox: `claim_due` selects due rows
`FOR UPDATE SKIP LOCKED` and leases them (pushes `next_attempt_ts` by `LEASE_MS`) in a short
transaction, so each row is sent by one worker at a time and a crashed worker's lease runs
out by itself. SQLite has one writer and needs no row locks.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from federation.prepared import Prepared
from federation.store import OutboxState, outbox
from protocol.errors import Code

__all__ = [
    "AWAIT_ACK_MS",
    "BACKOFF_BASE_MS",
    "BACKOFF_CAP_MS",
    "FOLLOW_CARRIERS",
    "LEASE_MS",
    "PERMANENT_CODES",
    "RESET_ALL",
    "RESET_ONE",
    "Claimed",
    "Db",
    "backoff_ms",
    "claim_due",
    "enqueue",
    "enqueue_many",
    "enqueue_row",
    "follow_carriers",
    "mark_acked",
    "reset_backoff",
]

Db = AsyncConnection | AsyncSession

BACKOFF_BASE_MS = 1_000
BACKOFF_CAP_MS = 15 * 60 * 1_000
AWAIT_ACK_MS = 30_000
LEASE_MS = 60_000

# Refusals that resending the same bytes can never cure. The others (unknown sender or key,
# roster mismatch, a clock ahead of the receiver's) may pass once the receiver's roster or
# clock catches up.
PERMANENT_CODES = frozenset(
    c.value
    for c in (
        Code.MALFORMED,
        Code.TOO_LARGE,
        Code.REVOKED_KEY,
        Code.BAD_SIGNATURE,
        Code.CT_HASH_MISMATCH,
        Code.WRONG_RECIPIENT,
        Code.EXPIRED,
        Code.UNDECRYPTABLE,
        Code.BAD_PADDING,
        Code.BAD_INNER_SIGNATURE,
        Code.NOT_CANONICAL,
        Code.SENDER_MISMATCH,
        Code.RECIPIENT_MISMATCH,
        Code.LAYER_MISMATCH,
        Code.BAD_BODY,
    )
)


def backoff_ms(
    attempts: int, rand: Callable[[], float] = random.random, cap: int = BACKOFF_CAP_MS
) -> int:
    """Delay before the next try after `attempts` failed ones: exponential, capped, with
    "equal jitter" (half fixed, half random) so peers coming back do not stampede."""
    step = min(cap, BACKOFF_BASE_MS * (1 << min(max(attempts - 1, 0), 20)))
    return step // 2 + int(rand() * (step - step // 2))


def enqueue_row(
    *,
    destination: str,
    msg_id: str,
    msg_type: str,
    created_ts: int,
    expires_ts: int,
    envelope: bytes | None = None,
    intent: dict[str, Any] | None = None,
    due_ts: int | None = None,
) -> dict[str, Any]:
    """The `fed_outbox` values of one queued message (envelope bytes, or an intent), due at
    `due_ts` (default: at once)."""
    if (envelope is None) == (intent is None):
        raise ValueError("give exactly one of envelope and intent")
    return {
        "destination": destination,
        "msg_id": msg_id,
        "msg_type": msg_type,
        "envelope": envelope,
        "intent": json.dumps(intent, sort_keys=True) if intent is not None else None,
        "state": OutboxState.PENDING,
        "attempts": 0,
        "next_attempt_ts": created_ts if due_ts is None else due_ts,
        "created_ts": created_ts,
        "expires_ts": expires_ts,
    }


async def enqueue(
    db: Db,
    *,
    destination: str,
    msg_id: str,
    msg_type: str,
    created_ts: int,
    expires_ts: int,
    envelope: bytes | None = None,
    intent: dict[str, Any] | None = None,
) -> None:
    """Queue one message in the caller's transaction (envelope bytes, or an ack intent)."""
    row = enqueue_row(
        destination=destination,
        msg_id=msg_id,
        msg_type=msg_type,
        created_ts=created_ts,
        expires_ts=expires_ts,
        envelope=envelope,
        intent=intent,
    )
    await db.execute(insert(outbox).values(**row))


_INSERT = Prepared(insert(outbox))


async def enqueue_many(db: Db, rows: Sequence[dict[str, Any]]) -> None:
    """Batch form of `enqueue` for rows already shaped as `fed_outbox` values (`enqueue_row`):
    one multi-row insert."""
    if rows:
        await _INSERT.run(db, list(rows))


_carrier = outbox.alias("carrier")
FOLLOW_CARRIERS = Prepared(
    update(outbox)
    .where(
        outbox.c.state == OutboxState.MERGED,
        _carrier.c.destination == outbox.c.destination,
        _carrier.c.msg_id == outbox.c.carrier,
        _carrier.c.state != OutboxState.PENDING,
    )
    .values(
        state=_carrier.c.state, acked_ts=_carrier.c.acked_ts, failed_code=_carrier.c.failed_code
    )
)


async def follow_carriers(db: Db) -> int:
    """Give rows merged into a batch message the final state of their carrier (done on its
    ack, failed with its code); the number of rows changed. Call in the transaction that
    finished carriers (an index lookup when no row is merged)."""
    res = await FOLLOW_CARRIERS.run(db, {})
    return int(res.rowcount)


async def mark_acked(
    db: Db, *, destination: str, msg_id: str, status: str, code: str | None, now: int
) -> bool:
    """Record the recipient's signed ack for (destination, msg_id); True if a row changed."""
    refused = status == "refused"
    res = await db.execute(
        update(outbox)
        .where(
            outbox.c.destination == destination,
            outbox.c.msg_id == msg_id,
            outbox.c.state == OutboxState.PENDING,
        )
        .values(
            state=OutboxState.FAILED if refused else OutboxState.DONE,
            acked_ts=now,
            failed_code=code if refused else None,
        )
    )
    return bool(res.rowcount)  # type: ignore[attr-defined]


_RESET_COND = (
    outbox.c.state == OutboxState.PENDING,
    outbox.c.sent_ts.is_(None),
    outbox.c.next_attempt_ts > bindparam("now"),
    outbox.c.attempts > 0,
)


def _reset(*cond: Any) -> Any:
    # A reset only makes rows due sooner, so rows another transaction holds (a worker
    # recording its pass, a claim) are skipped rather than waited for: on PostgreSQL that
    # keeps this broad UPDATE from locking rows in a different order than the workers and
    # deadlocking with them. SQLite ignores FOR UPDATE (its writers are serialised).
    due = select(outbox.c.id).where(*cond).with_for_update(skip_locked=True)
    return update(outbox).where(outbox.c.id.in_(due)).values(next_attempt_ts=bindparam("now"))


# `reset_backoff` as statements built once (the inbox runs one per inbound batch):
# parameters `now`, and `dest` for one destination.
RESET_ALL = Prepared(_reset(*_RESET_COND))
RESET_ONE = Prepared(_reset(*_RESET_COND, outbox.c.destination == bindparam("dest")))


async def reset_backoff(db: Db, *, destinations: Sequence[str] | None, now: int) -> int:
    """Make undelivered rows to `destinations` (all, when None) due now."""
    if destinations is None:
        res = await RESET_ALL.run(db, {"now": now})
    else:
        cond = [*_RESET_COND, outbox.c.destination.in_(list(destinations))]
        res = await db.execute(_reset(*cond), {"now": now})
    return int(res.rowcount)


@dataclass
class Claimed:
    id: int
    destination: str
    msg_id: str
    msg_type: str
    envelope: bytes | None
    intent: dict[str, Any] | None
    attempts: int  # including this one
    created_ts: int
    expires_ts: int


# `claim_due`'s statements, built once (every worker pass runs them).
_DUE_STMT = (
    select(
        outbox.c.id,
        outbox.c.destination,
        outbox.c.msg_id,
        outbox.c.msg_type,
        outbox.c.envelope,
        outbox.c.intent,
        outbox.c.attempts,
        outbox.c.created_ts,
        outbox.c.expires_ts,
    )
    .where(outbox.c.state == OutboxState.PENDING, outbox.c.next_attempt_ts <= bindparam("b_now"))
    .order_by(outbox.c.next_attempt_ts, outbox.c.id)
    .limit(bindparam("b_limit"))
)
_DUE = Prepared(_DUE_STMT)
_DUE_LOCKED = Prepared(_DUE_STMT.with_for_update(skip_locked=True))
_LEASE = Prepared(
    update(outbox)
    .where(outbox.c.id.in_(bindparam("b_ids", expanding=True)))
    .values(next_attempt_ts=bindparam("b_until"), attempts=outbox.c.attempts + 1)
)


async def claim_due(
    conn: AsyncConnection, *, now: int, limit: int = 500, lease_ms: int = LEASE_MS
) -> list[Claimed]:
    """Lease due rows (oldest first). Call inside a short transaction of its own."""
    q = _DUE_LOCKED if conn.dialect.name == "postgresql" else _DUE
    rows = (await q.run(conn, {"b_now": now, "b_limit": limit})).all()
    if not rows:
        return []
    await _LEASE.run(conn, {"b_ids": [r.id for r in rows], "b_until": now + lease_ms})
    return [
        Claimed(
            id=r.id,
            destination=r.destination,
            msg_id=r.msg_id,
            msg_type=r.msg_type,
            envelope=bytes(r.envelope) if r.envelope is not None else None,
            intent=json.loads(r.intent) if r.intent is not None else None,
            attempts=r.attempts + 1,
            created_ts=r.created_ts,
            expires_ts=r.expires_ts,
        )
        for r in rows
    ]
