"""The inbox: open, dedupe, apply and acknowledge inbound envelopes (DESIGN section 4).

For one batch from one verified hop:

1. every envelope is opened (`protocol.envelope_open.open_envelope` against the `RosterState`):
   a protocol refusal becomes that position's `refused` result and changes nothing stored
   (a split-view alarm raised meanwhile is persisted in its own transaction);
2. one write transaction for the whole batch (batch inserts; one commit per batch, shared
   with the batches that queued behind the previous one: `federation.inbox_group`):
   - already in `fed_inbox` (`UNIQUE(from, msg_id)`), or twice in this batch -> the stored
     result: `duplicate` (or the stored refusal); a non-ack duplicate is acked again, since
     the sender resending means it has not seen our ack;
   - an `ack` marks the sender's outbox row done (or failed, when the ack reports a
     refusal), then runs the `ack` handler if one is registered; acks are not acked;
     without an `ack` handler, the acks of one sender with one outcome are marked by one
     statement;
   - any other type runs its registered handler inside a SAVEPOINT: success -> `accepted`,
     an ack intent is queued; a handler refusal rolls back only that message's changes,
     is stored as `refused` with its wire code and acked as refused (the sender learns it
     end to end). No handler for the type -> `unknown_type`, nothing stored.
   Inbox rows and ack intents are inserted in bulk at the end of the transaction.

Handlers: `async def handler(conn: AsyncConnection, opened: Opened) -> None`, registered per
`MessageType` on the server's `HandlerRegistry` (or a batch handler taking all of a type in
the transaction at once: `federation.inbox_handlers`). They run in the inbox's transaction, so the
business rows they write commit with the inbox row (and any `send` they make commits with
them too). To refuse a message a handler raises `FederationError` with a wire code
(`bad_body` by default for any other exception carrying a `code`, e.g. a `NodeError`);
database errors propagate and fail the whole batch (500), which the sender retries.

Rows are swept once `expires_ts + SKEW_MS` has passed, where the stored `expires_ts` is the
message's `federation.retention.dedupe_expiry` (its own expiry, at most 30 days after it was
created): from then on the freshness check (`too_old`) refuses a replay by itself; the
exactly-once argument is in `federation.retention`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import nacl.public
from sqlalchemy import String, and_, any_, bindparam, delete, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.clock import Clock
from federation.errors import FederationError
from federation.inbox_group import InboxGroup, Part
from federation.inbox_handlers import PENDING, Deferred, Handler, HandlerRegistry
from federation.inbox_handlers import Isolate as _Isolate
from federation.outbox import (
    _RESET_COND,
    RESET_ALL,
    RESET_ONE,
    _reset,
    enqueue_many,
    follow_carriers,
    mark_acked,
)
from federation.prepared import Prepared
from federation.retention import dedupe_expiry, too_old
from federation.roster_sync import RosterStore
from federation.store import OutboxState, inbox, outbox
from protocol.batch import refusal
from protocol.envelope import SKEW_MS, Opened
from protocol.envelope_open import open_envelope
from protocol.errors import Code, ProtocolError
from protocol.ids import new_ulid
from protocol.messages import AckBody, AckStatus, BatchResult, MessageType

__all__ = ["ACK_TTL_MS", "Handler", "HandlerRegistry", "Inbox", "WriteTx"]

log = logging.getLogger("peernet.federation.inbox")

WriteTx = Callable[[], AbstractAsyncContextManager[AsyncConnection]]

ACK_TTL_MS = 3 * 86_400_000

# Statements of the hot path, built once (building and cache-keying a statement per batch
# costs more than running it). The stored-result lookup takes the batch's senders and msg
# ids as two expanding INs, which the UNIQUE(from_node, msg_id) index answers; a pair that
# matches only across senders is harmless, since results are looked up by exact pair.
_STORED = Prepared(
    select(inbox.c.from_node, inbox.c.msg_id, inbox.c.status, inbox.c.code).where(
        inbox.c.from_node.in_(bindparam("senders", expanding=True)),
        inbox.c.msg_id.in_(bindparam("msg_ids", expanding=True)),
    )
)
# On PostgreSQL the same lookup takes two arrays (`= ANY`): one statement text whatever the
# batch's size, so asyncpg prepares it once per connection instead of once per IN length.
_STORED_PG = Prepared(
    select(inbox.c.from_node, inbox.c.msg_id, inbox.c.status, inbox.c.code).where(
        inbox.c.from_node == any_(bindparam("senders", type_=ARRAY(String))),
        inbox.c.msg_id == any_(bindparam("msg_ids", type_=ARRAY(String))),
    )
)
_INSERT_INBOX = Prepared(insert(inbox))
# The backoff reset for the several origins of a group transaction, in one statement.
_RESET_SOME = Prepared(
    _reset(*_RESET_COND, outbox.c.destination.in_(bindparam("dests", expanding=True)))
)
# Acks from one sender with one outcome, marked in one statement (no ack handler).
_MARK_ACKED = Prepared(
    update(outbox)
    .where(
        and_(
            outbox.c.destination == bindparam("dest"),
            outbox.c.msg_id.in_(bindparam("acked_ids", expanding=True)),
            outbox.c.state == OutboxState.PENDING,
        )
    )
    .values(
        state=bindparam("new_state"),
        acked_ts=bindparam("now"),
        failed_code=bindparam("failed"),
    )
)


def _result(msg_id: str, status: AckStatus, code: str | None = None) -> BatchResult:
    return BatchResult.model_construct(
        msg_id=msg_id, status=status, code=Code(code) if code else None
    )


def _wire_code(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    code = getattr(code, "value", code)
    if isinstance(code, str) and code in Code._value2member_map_:
        return code
    return Code.BAD_BODY.value


class Inbox:
    """See module docstring. `hub_ids()` names the hubs (a valid request from a hub makes
    every undelivered outbox row due again: the relay route is back)."""

    def __init__(
        self,
        *,
        me: str,
        enc_key: nacl.public.PrivateKey,
        roster: RosterStore,
        write: WriteTx,
        clock: Clock,
        handlers: HandlerRegistry,
        rand: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.me = me
        self.enc_key = enc_key
        self.roster = roster
        self.write = write
        self.clock = clock
        self.handlers = handlers
        self.rand = rand
        self.on_acked: Callable[[], None] | None = None
        self.group = InboxGroup(self.apply_parts)
        self.on_queued: Callable[[], None] | None = None
        self.interstate: Any = None  # federation.interstate_runtime.Interstate, when set

    def open_all(self, items: list[object], now: int) -> list[Opened | BatchResult]:
        state = self.roster.state
        out: list[Opened | BatchResult] = []
        for item in items:
            try:
                if not isinstance(item, dict):
                    raise ProtocolError(Code.MALFORMED, "envelope must be an object")
                if item.get("v") == 2 and self.interstate is not None:  # WIRE 16
                    opened = self.interstate.open(item, me=self.me, enc_key=self.enc_key,
                                                  now_ms=now)
                else:
                    opened = open_envelope(item, me=self.me, enc_key=self.enc_key, keys=state,
                                           roster=state, now_ms=now)
                if too_old(opened.inner.created_ts, opened.inner.expires_ts, now):
                    raise ProtocolError(Code.EXPIRED, "older than the inbox horizon")
                out.append(opened)
            except ProtocolError as exc:
                out.append(refusal(item, exc.code))
        return out

    async def receive(self, origin: str, items: list[object]) -> list[BatchResult]:
        now = self.clock.now_ms()
        opened = self.open_all(items, now)
        for o in opened:  # one line per refused envelope: ids and codes, never contents
            if isinstance(o, BatchResult) and o.code is not None:
                log.info("envelope %s via %s refused: %s", o.msg_id or "-", origin,
                         getattr(o.code, "value", o.code))
        await self.roster.flush_alarms()
        if any(isinstance(o, Opened) for o in opened):
            return await self.apply(origin, opened, now)
        return [o for o in opened if isinstance(o, BatchResult)]

    async def apply(
        self, origin: str, opened: list[Opened | BatchResult], now: int
    ) -> list[BatchResult]:
        """The database part of `receive`: one transaction, shared with the batches that
        arrived while the previous one was applied (`federation.inbox_group`)."""
        return await self.group.submit(origin, opened, now)

    async def apply_parts(self, parts: list[Part], now: int) -> list[list[BatchResult]]:
        """Apply several batches (origin, opened) in one transaction; each one's results.

        Optimistic first: handlers run without savepoints (a savepoint per message costs two
        round trips). If any handler refuses, the whole transaction is rolled back and the
        batches are applied again with one savepoint per message, so only the refused
        message's changes are dropped."""
        isolate = False
        for attempt in range(3):
            try:
                return await self._apply(parts, now, isolate=isolate)
            except _Isolate:
                isolate = True
            except IntegrityError:
                # The same message arrived at the same moment by another path (direct and
                # via the hub, or another server process): both passed the duplicate lookup,
                # and UNIQUE(from, msg_id) refused the second insert. Everything rolled back;
                # applying again finds the stored result and answers `duplicate` instead of
                # failing the batch.
                if attempt == 2:
                    raise
                log.info("concurrent delivery of an inbound message: applying again")
        return await self._apply(parts, now, isolate=True)

    async def _apply(
        self, parts: list[Part], now: int, *, isolate: bool
    ) -> list[list[BatchResult]]:
        opened = [o for _origin, batch in parts for o in batch]
        msgs = [o.inner for o in opened if isinstance(o, Opened)]
        results: list[BatchResult] = []
        queued_acks = False
        acked = False
        # Without an ack handler, acks are marked per (sender, outcome) in one statement each.
        batch_acks = self.handlers.get(MessageType.ACK) is None
        acks: dict[tuple[str, str, str | None], list[str]] = {}
        rand = _RandomPool(self.rand, len(msgs))
        deferred = Deferred(self.handlers)  # types with a batch handler (inbox_handlers)
        async with self.write() as conn:
            stored = (
                {
                    (r.from_node, r.msg_id): (r.status, r.code)
                    for r in (await _stored(conn, msgs)).all()
                }
                if msgs
                else {}
            )
            inbox_rows: list[dict[str, Any]] = []
            ack_rows: list[dict[str, Any]] = []
            for o in opened:
                if isinstance(o, BatchResult):
                    results.append(o)
                    continue
                inner = o.inner
                key = (inner.from_, inner.msg_id)
                if key in stored:
                    status, code = stored[key]
                    if status == PENDING:  # a repeat of a message its batch handler takes
                        deferred.repeats.append((len(results), o))
                        results.append(_result(inner.msg_id, AckStatus.DUPLICATE))
                        continue
                    if status == AckStatus.REFUSED.value:
                        results.append(_result(inner.msg_id, AckStatus.REFUSED, code))
                    else:
                        results.append(_result(inner.msg_id, AckStatus.DUPLICATE))
                    if inner.type is not MessageType.ACK:
                        ack_rows.append(self._ack_row(o, status, code, now, rand))
                    continue
                if inner.type is MessageType.ACK and batch_acks:
                    body = o.body
                    assert isinstance(body, AckBody)
                    group = (inner.from_, body.status.value, body.code.value if body.code else None)
                    acks.setdefault(group, []).append(body.msg_id)
                    status, code = AckStatus.ACCEPTED.value, None
                elif inner.type is MessageType.ACK:
                    acked |= await self._apply_ack(conn, o, now, isolate)
                    status, code = AckStatus.ACCEPTED.value, None
                elif deferred.take(len(results), o):
                    stored[key] = (PENDING, None)
                    results.append(_result(inner.msg_id, AckStatus.ACCEPTED))
                    continue
                else:
                    handler = self.handlers.get(inner.type)
                    if handler is None:
                        results.append(_result(inner.msg_id, AckStatus.REFUSED, Code.UNKNOWN_TYPE))
                        continue
                    status, code = await self._run_handler(conn, handler, o, isolate)
                    ack_rows.append(self._ack_row(o, status, code, now, rand))
                stored[key] = (status, code)
                inbox_rows.append(_inbox_row(inner, status, code, now))
                results.append(_result(inner.msg_id, AckStatus(status), code))
            for at, o, exc in await deferred.run(conn, isolate):
                status, code = ((AckStatus.ACCEPTED.value, None) if exc is None
                                else (AckStatus.REFUSED.value, _wire_code(exc)))
                stored[(o.inner.from_, o.inner.msg_id)] = (status, code)
                inbox_rows.append(_inbox_row(o.inner, status, code, now))
                ack_rows.append(self._ack_row(o, status, code, now, rand))
                results[at] = _result(o.inner.msg_id, AckStatus(status), code)
            for at, o in deferred.repeats:
                status, code = stored[(o.inner.from_, o.inner.msg_id)]
                if status == AckStatus.REFUSED.value:
                    results[at] = _result(o.inner.msg_id, AckStatus.REFUSED, code)
                ack_rows.append(self._ack_row(o, status, code, now, rand))
            for (dest, ack_status, ack_code), ids in acks.items():
                refused = ack_status == AckStatus.REFUSED.value
                res = await _MARK_ACKED.run(
                    conn,
                    {
                        "dest": dest,
                        "acked_ids": ids,
                        "new_state": OutboxState.FAILED if refused else OutboxState.DONE,
                        "now": now,
                        "failed": ack_code if refused else None,
                    },
                )
                acked |= bool(res.rowcount)
            if acked:  # once per batch: reports merged into an acked batch take its outcome
                await follow_carriers(conn)
            if inbox_rows:
                await _INSERT_INBOX.run(conn, inbox_rows)
            if ack_rows:
                await enqueue_many(conn, ack_rows)
                queued_acks = True
            origins = sorted({origin for origin, _batch in parts})
            if any(self._is_hub(origin) for origin in origins):
                reset = await RESET_ALL.run(conn, {"now": now})
            elif len(origins) == 1:
                reset = await RESET_ONE.run(conn, {"now": now, "dest": origins[0]})
            else:
                reset = await _RESET_SOME.run(conn, {"now": now, "dests": origins})
            # Rows made due again wake the worker too (it sleeps until the next due time).
            queued_acks |= bool(reset.rowcount)
        if queued_acks and self.on_queued is not None:
            self.on_queued()
        if acked and self.on_acked is not None:
            self.on_acked()
        out: list[list[BatchResult]] = []
        at = 0
        for _origin, batch in parts:
            out.append(results[at : at + len(batch)])
            at += len(batch)
        return out

    def _is_hub(self, node_id: str) -> bool:
        state = self.roster.state
        return state.has_node(node_id) and state.node(node_id).is_hub

    async def _run_handler(
        self, conn: AsyncConnection, handler: Handler, o: Opened, isolate: bool
    ) -> tuple[str, str | None]:
        if not isolate:
            try:
                await handler(conn, o)
            except DBAPIError:
                raise
            except Exception:
                raise _Isolate() from None
            return AckStatus.ACCEPTED.value, None
        savepoint = await conn.begin_nested()
        try:
            await handler(conn, o)
        except DBAPIError:
            await savepoint.rollback()
            raise
        except Exception as exc:
            await savepoint.rollback()
            code = _wire_code(exc)
            detail = getattr(exc, "code", None)
            if isinstance(exc, FederationError) or detail is not None:
                log.info(
                    "%s %s from %s refused by its handler: %s",
                    o.inner.type.value,
                    o.inner.msg_id,
                    o.inner.from_,
                    getattr(detail, "value", detail),
                )
            else:
                log.exception("handler for %s failed on %s", o.inner.type.value, o.inner.msg_id)
            return AckStatus.REFUSED.value, code
        await savepoint.commit()
        return AckStatus.ACCEPTED.value, None

    async def _apply_ack(self, conn: AsyncConnection, o: Opened, now: int, isolate: bool) -> bool:
        body = o.body
        assert isinstance(body, AckBody)
        changed = await mark_acked(
            conn,
            destination=o.inner.from_,
            msg_id=body.msg_id,
            status=body.status.value,
            code=body.code.value if body.code else None,
            now=now,
        )
        handler = self.handlers.get(MessageType.ACK)
        if handler is not None and changed and not isolate:
            try:
                await handler(conn, o)
            except DBAPIError:
                raise
            except Exception:
                raise _Isolate() from None
        elif handler is not None and changed:
            savepoint = await conn.begin_nested()
            try:
                await handler(conn, o)
            except DBAPIError:
                await savepoint.rollback()
                raise
            except Exception:
                await savepoint.rollback()
                log.exception("ack handler failed on %s", o.inner.msg_id)
            else:
                await savepoint.commit()
        return changed

    def _ack_row(
        self, o: Opened, status: str, code: str | None, now: int, rand: _RandomPool
    ) -> dict[str, Any]:
        inner = o.inner
        ack_status = (
            AckStatus.REFUSED.value
            if status == AckStatus.REFUSED.value
            else AckStatus.ACCEPTED.value
        )
        return {
            "destination": inner.from_,
            "msg_id": new_ulid(now, rand.take()),
            "msg_type": MessageType.ACK.value,
            "envelope": None,
            "intent": _intent_json(
                {
                    "type": MessageType.ACK.value,
                    "body": {"msg_id": inner.msg_id, "status": ack_status, "code": code},
                    "thread_id": inner.thread_id,
                    "in_reply_to": inner.msg_id,
                }
            ),
            "state": OutboxState.PENDING,
            "attempts": 0,
            "next_attempt_ts": now,
            "created_ts": now,
            "expires_ts": now + ACK_TTL_MS,
        }

    async def sweep(self) -> int:
        """Delete inbox rows whose envelopes can no longer pass the freshness check."""
        cutoff = self.clock.now_ms() - SKEW_MS
        async with self.write() as conn:
            res = await conn.execute(delete(inbox).where(inbox.c.expires_ts < cutoff))
        return int(res.rowcount)


def _inbox_row(inner: Any, status: str, code: str | None, now: int) -> dict[str, Any]:
    return {"from_node": inner.from_, "msg_id": inner.msg_id, "msg_type": inner.type.value,
            "status": status, "code": code, "received_ts": now,
            "expires_ts": dedupe_expiry(inner.created_ts, inner.expires_ts)}


async def _stored(conn: AsyncConnection, msgs: list[Any]) -> Any:
    """The stored results of these messages' (sender, msg_id) pairs (and maybe a few more)."""
    params = {"senders": sorted({m.from_ for m in msgs}), "msg_ids": [m.msg_id for m in msgs]}
    if conn.dialect.name == "postgresql":
        return await _STORED_PG.run(conn, params)
    return await _STORED.run(conn, params)


class _RandomPool:
    """Ten random bytes per ack msg id, drawn from one call per batch."""

    def __init__(self, rand: Callable[[int], bytes], count: int) -> None:
        self._rand = rand
        self._pool = rand(10 * count) if count else b""
        self._at = 0

    def take(self) -> bytes:
        if self._at + 10 > len(self._pool):  # the isolate pass may need more
            self._pool, self._at = self._rand(10 * 8), 0
        out = self._pool[self._at : self._at + 10]
        self._at += 10
        return out


def _intent_json(value: dict[str, Any]) -> str:
    import json

    return json.dumps(value, sort_keys=True)
