"""Queueing outgoing messages in the caller's transaction: `send`, `send_many`, `Outgoing`.

`send` builds the envelope once (`protocol.envelope.build_envelope`, under the current
roster and the recipient's encryption key) and queues it in the caller's transaction; the
worker delivers after commit. `send_many` does the same for a list of `Outgoing` messages
(a fan-out): every envelope is built first (a refusal raises before anything is written),
then one multi-row insert queues them all. A message of a type with a batch form is queued
as an intent and built by the worker after `BATCH_LINGER_MS`, with the others due by then
(`federation.delivery`). The worker is woken when the transaction commits, not before.

`OutboxSending` is the queueing half of `FederationService`, which inherits it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import event

from federation.clock import Clock
from federation.errors import FederationError
from federation.interstate_runtime import Interstate
from federation.outbox import Db, enqueue_many, enqueue_row
from federation.roster_sync import RosterStore
from protocol.envelope import Sender, body_json, build_envelope
from protocol.errors import Code, ProtocolError
from protocol.ids import new_ulid
from protocol.messages import BATCH_FORMS, MessageType

__all__ = ["BATCH_LINGER_MS", "DEFAULT_TTL_MS", "OutboxSending", "Outgoing"]

DEFAULT_TTL_MS = 3 * 86_400_000
# How long a message of a type with a batch form (`protocol.messages.BATCH_FORMS`: the
# hub's activation reports) waits for others to the same destination before it goes.
BATCH_LINGER_MS = 200


@dataclass(frozen=True)
class Outgoing:
    """One message for `FederationService.send_many` (the arguments of `send`)."""

    to: str
    msg_type: MessageType
    body: BaseModel | Mapping[str, Any]
    thread_id: str | None = None
    in_reply_to: str | None = None
    ttl_ms: int = DEFAULT_TTL_MS


class OutboxSending:
    """The queueing API of `FederationService` (see the module notes); the service sets
    these attributes and provides `sender` and `kick`."""

    roster: RosterStore
    interstate: Interstate | None
    clock: Clock
    batch_linger_ms: int
    _linger_timer: asyncio.TimerHandle | None

    def sender(self) -> Sender:
        raise NotImplementedError

    def kick(self) -> None:
        raise NotImplementedError

    async def send(
        self,
        conn: Db,
        to: str,
        msg_type: MessageType,
        body: BaseModel | Mapping[str, Any],
        thread_id: str | None = None,
        in_reply_to: str | None = None,
        *,
        ttl_ms: int = DEFAULT_TTL_MS,
    ) -> str:
        """Build the envelope and queue it in the caller's transaction; returns its msg_id.
        Raises `FederationError` (`unknown_node`, `no_roster`, or a protocol code such as
        `bad_body`) before anything is written."""
        out = Outgoing(to, msg_type, body, thread_id, in_reply_to, ttl_ms)
        return (await self.send_many(conn, [out]))[0]

    async def send_many(self, conn: Db, messages: Sequence[Outgoing]) -> list[str]:
        """`send` for several messages: every envelope is built first (a refusal raises
        before anything is written), then one multi-row insert queues them all in the
        caller's transaction. Returns the msg_ids in order."""
        if not messages:
            return []
        rows = self.stage_many(conn, messages)
        await enqueue_many(conn, rows)
        return [str(r["msg_id"]) for r in rows]

    def stage_many(self, conn: Db, messages: Sequence[Outgoing]) -> list[dict[str, Any]]:
        """`send_many` without the insert: the `fed_outbox` rows of `messages` (every
        envelope built; a refusal raises), and the worker woken when `conn`'s transaction
        commits. The caller inserts exactly these rows in that transaction, e.g. inside a
        statement that writes its business rows too (`node.activation.batched_pg`)."""
        if not messages:
            return []
        state = self.roster.state
        now = self.clock.now_ms()
        ref = state.ref()
        sender = self.sender()
        rand = os.urandom(10 * len(messages))
        rows: list[dict[str, Any]] = []
        lingering = 0
        for i, m in enumerate(messages):
            msg_type = MessageType(m.msg_type)
            msg_id = new_ulid(now, rand[10 * i : 10 * i + 10])
            if msg_type in BATCH_FORMS:
                rows.append(self._intent_row(m, msg_type, msg_id, now))
                lingering += 1
                continue
            try:
                to = self._local_or_foreign(m.to)
                if "/" in to:  # another network's node: the `v: 2` envelope (WIRE 16)
                    envelope = self._interstate().build(
                        sender=sender, dest=to, msg_type=msg_type, body=m.body, msg_id=msg_id,
                        created_ts=now, expires_ts=now + m.ttl_ms, roster=ref,
                        thread_id=m.thread_id, in_reply_to=m.in_reply_to)
                else:
                    envelope = build_envelope(
                        sender=sender, to=to, recipient_enc_key=state.enc_key(to),
                        msg_type=msg_type, body=m.body, msg_id=msg_id, created_ts=now,
                        expires_ts=now + m.ttl_ms, roster=ref, thread_id=m.thread_id,
                        in_reply_to=m.in_reply_to)
            except ProtocolError as exc:
                raise FederationError(exc.code.value, exc.detail or exc.code.value) from None
            rows.append(
                enqueue_row(
                    destination=to,
                    msg_id=msg_id,
                    msg_type=msg_type.value,
                    created_ts=now,
                    expires_ts=now + m.ttl_ms,
                    envelope=envelope,
                )
            )
        # Due now: wake the worker at commit; lingering ones: when their linger is over.
        self._kick_after_commit(conn, now=lingering < len(rows), linger=lingering > 0)
        return rows

    def _interstate(self) -> Interstate:
        if self.interstate is None:
            raise FederationError(Code.UNKNOWN_NETWORK.value,
                                  "this server is not configured for other networks")
        return self.interstate

    def _local_or_foreign(self, to: str) -> str:
        """`to` as the outbox names it: a bare node id for this network's nodes (a
        qualified name of this network included), `<network>/<node>` for another's."""
        if "/" not in to:
            return to
        local = self._interstate().local_name(to)
        return to if local is None else local

    def _intent_row(
        self, m: Outgoing, msg_type: MessageType, msg_id: str, now: int
    ) -> dict[str, Any]:
        """A message of a type with a batch form, queued as its intent: checked now, built
        by the worker once it is due (`batch_linger_ms` later), together with the others
        of its type to the same destination due by then (`_materialize`)."""
        try:
            self.roster.state.enc_key(m.to)  # an unknown destination refused now, as by `send`
            body = body_json(msg_type, m.body)
        except ProtocolError as exc:
            raise FederationError(exc.code.value, exc.detail or exc.code.value) from None
        return enqueue_row(
            destination=m.to,
            msg_id=msg_id,
            msg_type=msg_type.value,
            created_ts=now,
            expires_ts=now + m.ttl_ms,
            intent={"type": msg_type.value, "body": body,
                    "thread_id": m.thread_id, "in_reply_to": m.in_reply_to},
            due_ts=now + self.batch_linger_ms,
        )

    def _kick_after_commit(self, conn: Db, *, now: bool = True, linger: bool = False) -> None:
        if linger and self.batch_linger_ms <= 0:
            now, linger = True, False

        def kick() -> None:
            if now:
                self.kick()
            if linger:
                self._kick_after_linger()

        sync = getattr(conn, "sync_connection", None) or getattr(conn, "sync_session", None)
        if sync is None:
            kick()
            return

        def _after(*_a: Any) -> None:
            kick()

        target = sync
        name = (
            "commit"
            if hasattr(sync, "get_transaction") and not hasattr(sync, "identity_map")
            else "after_commit"
        )
        try:
            event.listen(target, name, _after, once=True)
        except Exception:  # an unknown target: fall back to the poll
            kick()

    def _kick_after_linger(self) -> None:
        """Wake the worker when lingering messages are due (one timer for a burst)."""
        if self._linger_timer is not None:
            return

        def fire() -> None:
            self._linger_timer = None
            self.kick()

        self._linger_timer = asyncio.get_running_loop().call_later(
            self.batch_linger_ms / 1000, fire
        )
