"""Store-and-forward relay: the hub holds outer envelopes per destination and delivers them.

What the hub can and cannot do: it checks each envelope with
`protocol.envelope_outer.check_outer` (size, shape, freshness, the sender's outer signature under
the roster, `ct_sha256`, the roster reference) and that `to` is a roster member. It cannot
open the sealed inner message (it has no recipient key) and cannot re-address one: `to` is
under the sender's outer signature and the inner signature covers `from` and `to`, so a
changed destination fails at the recipient. It stores the envelope bytes exactly as
received (canonical form of the parsed value, which is what the outer signature covers).

Queue (`hub_relay`): one row per (from, msg_id), unique while queued, so a resend of a
queued message is `duplicate`; rows are deleted once the destination answered (accepted,
duplicate or a permanent refusal) or the envelope expired. Delivery runs per destination in
batches of up to 50 with the hub's own per-hop signature, oldest first; failures back off
(1 s doubling, jitter, capped at 15 minutes); a valid request *from* a destination makes its
queue due at once. A pass writes what every destination answered in one transaction at its
end (deletions and backoffs), so the hub's database writer is not taken once per
destination. The queue is in the database, so a hub restarted with a full queue
delivers it all after the restart. Several hub processes may share PostgreSQL: rows are
leased with `FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)

from federation.clock import Clock
from federation.errors import FederationError
from federation.inbox import WriteTx
from federation.outbox import LEASE_MS, PERMANENT_CODES, backoff_ms
from federation.retention import dedupe_expiry
from federation.roster_sync import RosterStore
from federation.transport import HopClient, PeerError
from federation.worker import PassLoop, drain
from hub.db import Base
from protocol.batch import refusal
from protocol.canonical import canonical_bytes_of_parsed
from protocol.envelope import MAX_BATCH, SKEW_MS
from protocol.envelope_outer import check_outer
from protocol.errors import Code, ProtocolError
from protocol.messages import AckStatus, BatchResult

__all__ = ["Relay", "relay_queue"]

log = logging.getLogger("peernet.hub.relay")

relay_queue = Table(
    "hub_relay",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("destination", String(95), nullable=False),
    Column("from_node", String(95), nullable=False),
    Column("msg_id", String(26), nullable=False),
    Column("envelope", LargeBinary, nullable=False),
    Column("expires_ts", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_ts", BigInteger, nullable=False),
    Column("created_ts", BigInteger, nullable=False),
    Column("last_error", String(200), nullable=True),
    UniqueConstraint("from_node", "msg_id", name="uq_hub_relay_from_msg"),
    Index("ix_hub_relay_due", "next_attempt_ts"),
)


def _relay_expiry(item: dict[str, Any], expires_ts: int) -> int:
    """`dedupe_expiry` of a checked envelope (its signed `created_ts`, both versions)."""
    created = item.get("created_ts")
    return dedupe_expiry(created, expires_ts) if isinstance(created, int) else expires_ts


# Statements of the hot path, built once. The duplicate lookup takes the batch's senders and
# msg ids as two expanding INs (answered by the UNIQUE(from_node, msg_id) index; a pair that
# matches only across senders is harmless, results are looked up by exact pair).
_QUEUED = select(relay_queue.c.from_node, relay_queue.c.msg_id).where(
    relay_queue.c.from_node.in_(bindparam("senders", expanding=True)),
    relay_queue.c.msg_id.in_(bindparam("msg_ids", expanding=True)),
)
_RESET = (
    update(relay_queue)
    .where(
        relay_queue.c.destination == bindparam("dest"),
        relay_queue.c.next_attempt_ts > bindparam("now"),
        relay_queue.c.attempts > 0,
    )
    .values(next_attempt_ts=bindparam("now"))
)
_BACKOFF = (
    update(relay_queue)
    .where(relay_queue.c.id == bindparam("b_id"))
    .values(next_attempt_ts=bindparam("b_next"), last_error=bindparam("b_err"))
)


@dataclass
class _Row:
    id: int
    destination: str
    envelope: bytes
    attempts: int
    expires_ts: int


class Relay:
    def __init__(
        self,
        *,
        me: str,
        roster: RosterStore,
        write: WriteTx,
        clock: Clock,
        client: Callable[[], HopClient | None],
        poll_ms: int = 1_000,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.me = me
        self.roster = roster
        self.write = write
        self.clock = clock
        self.client = client
        self.rand = rand
        self._loop = PassLoop(f"relay-{me}", self.run_once, poll_ms)

    # --- accepting ----------------------------------------------------------------------

    async def accept(self, origin: str, items: list[object]) -> list[BatchResult]:
        """Check and queue envelopes for other nodes; one result per item."""
        now = self.clock.now_ms()
        results: list[BatchResult | None] = []
        rows: list[dict[str, Any]] = []
        keys: list[tuple[str, str]] = []
        for item in items:
            try:
                if not isinstance(item, dict):
                    raise ProtocolError(Code.MALFORMED, "envelope must be an object")
                dest, sender, msg_id, expires_ts = self.check(origin, item, now)
            except ProtocolError as exc:
                results.append(refusal(item, exc.code))
                continue
            results.append(None)
            keys.append((sender, msg_id))
            rows.append(
                {
                    "destination": dest,
                    "from_node": sender,
                    "msg_id": msg_id,
                    "envelope": canonical_bytes_of_parsed(item),
                    # Kept at most to the dedupe horizon: past it the destination refuses
                    # the message as expired anyway (`federation.retention`).
                    "expires_ts": _relay_expiry(item, expires_ts),
                    "attempts": 0,
                    "next_attempt_ts": now,
                    "created_ts": now,
                }
            )
        await self.roster.flush_alarms()
        out: list[BatchResult] = []
        if rows:
            async with self.write() as conn:
                have = {
                    (r.from_node, r.msg_id)
                    for r in (
                        await conn.execute(
                            _QUEUED,
                            {
                                "senders": sorted({k[0] for k in keys}),
                                "msg_ids": [k[1] for k in keys],
                            },
                        )
                    ).all()
                }
                fresh = []
                status: dict[tuple[str, str], AckStatus] = {}
                for row in rows:
                    key = (row["from_node"], row["msg_id"])
                    if key in have:
                        status[key] = status.get(key, AckStatus.DUPLICATE)
                        continue
                    have.add(key)
                    status[key] = AckStatus.ACCEPTED
                    fresh.append(row)
                if fresh:
                    await conn.execute(insert(relay_queue), fresh)
                await self._reset(conn, origin, now)
            it = iter(rows)
            seen: set[tuple[str, str]] = set()
            for r in results:
                if r is not None:
                    out.append(r)
                    continue
                row = next(it)
                key = (row["from_node"], row["msg_id"])
                st = status[key] if key not in seen else AckStatus.DUPLICATE
                seen.add(key)
                out.append(BatchResult.model_construct(msg_id=row["msg_id"], status=st, code=None))
            self.kick()
        else:
            out = [r for r in results if r is not None]
        return out

    def check(self, origin: str, item: dict[str, Any], now: int) -> tuple[str, str, str, int]:
        """(destination, sender, msg_id, expires_ts) of an envelope this hub may queue;
        `ProtocolError` otherwise (hub.interstate's relay adds the `v: 2` form)."""
        state = self.roster.state
        outer = check_outer(item, keys=state, roster=state, now_ms=now)
        if not state.has_node(outer.to) or outer.to == outer.from_:
            raise ProtocolError(Code.WRONG_RECIPIENT, "destination is not routable")
        return outer.to, outer.from_, outer.msg_id, outer.expires_ts

    def route(self, dest: str) -> tuple[str, str]:
        """(base URL, per-hop destination) of a queue's next hop."""
        return self.roster.state.endpoint(dest), dest

    async def _reset(self, conn: Any, origin: str, now: int) -> None:
        await conn.execute(_RESET, {"dest": origin, "now": now})

    async def peer_seen(self, origin: str) -> None:
        """A valid request from `origin`: it is up, deliver its queue now."""
        async with self.write() as conn:
            await self._reset(conn, origin, self.clock.now_ms())
        self.kick()

    # --- delivering ---------------------------------------------------------------------

    def kick(self) -> None:
        self._loop.kick()

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def drain(self, max_passes: int = 20) -> None:
        await drain(self.run_once, max_passes)

    async def run_once(self) -> int:
        client = self.client()
        if client is None:
            return 0
        now = self.clock.now_ms()
        async with self.write() as conn:
            await conn.execute(delete(relay_queue).where(relay_queue.c.expires_ts + SKEW_MS < now))
            q = (
                select(
                    relay_queue.c.id,
                    relay_queue.c.destination,
                    relay_queue.c.envelope,
                    relay_queue.c.attempts,
                    relay_queue.c.expires_ts,
                )
                .where(relay_queue.c.next_attempt_ts <= now)
                .order_by(relay_queue.c.next_attempt_ts, relay_queue.c.id)
                .limit(1000)
            )
            if conn.dialect.name == "postgresql":
                q = q.with_for_update(skip_locked=True)
            rows = [
                _Row(r.id, r.destination, bytes(r.envelope), r.attempts + 1, r.expires_ts)
                for r in (await conn.execute(q)).all()
            ]
            if rows:
                await conn.execute(
                    update(relay_queue)
                    .where(relay_queue.c.id.in_([r.id for r in rows]))
                    .values(next_attempt_ts=now + LEASE_MS, attempts=relay_queue.c.attempts + 1)
                )
        if not rows:
            return 0
        by_dest: dict[str, list[_Row]] = defaultdict(list)
        for row in rows:
            by_dest[row.destination].append(row)
        remove: list[int] = []
        retry: list[dict[str, Any]] = []
        delivered = await asyncio.gather(
            *(self._deliver(client, d, rs, remove, retry) for d, rs in by_dest.items()),
            return_exceptions=True,
        )
        # Every destination's outcome of the pass in one transaction (one writer turn).
        if remove or retry:
            async with self.write() as conn:
                if remove:
                    await conn.execute(delete(relay_queue).where(relay_queue.c.id.in_(remove)))
                if retry:
                    await conn.execute(_BACKOFF, retry)
        for exc in delivered:
            if isinstance(exc, BaseException):
                raise exc
        return len(rows)

    async def _deliver(
        self,
        client: HopClient,
        dest: str,
        rows: list[_Row],
        remove: list[int],
        retry: list[dict[str, Any]],
    ) -> None:
        """Send `rows` to `dest`; note what to delete and what to back off."""
        for i in range(0, len(rows), MAX_BATCH):
            chunk = rows[i : i + MAX_BATCH]
            try:
                url, hop = self.route(dest)
                results = await client.send_batch(url, hop, [r.envelope for r in chunk])
            except (PeerError, FederationError) as exc:
                retry.extend(self._backoff(chunk, exc.message))
                continue
            again = []
            for row, res in zip(chunk, results, strict=True):
                if res.status in (AckStatus.ACCEPTED, AckStatus.DUPLICATE):
                    remove.append(row.id)
                elif res.code is not None and res.code.value in PERMANENT_CODES:
                    log.warning("relay: %s refused a message permanently: %s", dest, res.code.value)
                    remove.append(row.id)
                else:
                    again.append(row)
            if again:
                retry.extend(self._backoff(again, "transient refusal"))

    def _backoff(self, rows: list[_Row], error: str) -> list[dict[str, Any]]:
        now = self.clock.now_ms()
        return [
            {
                "b_id": row.id,
                "b_next": now + backoff_ms(row.attempts, self.rand),
                "b_err": error[:200],
            }
            for row in rows
        ]

    async def queue_counts(self) -> dict[str, int]:
        async with self.write() as conn:
            rows = (
                await conn.execute(
                    select(relay_queue.c.destination, func.count()).group_by(
                        relay_queue.c.destination
                    )
                )
            ).all()
        return {r[0]: int(r[1]) for r in rows}
