"""The sender: a background `PassLoop` that delivers what is due, with retry and backoff.

One pass (`Notifier.run_once`, which tests call directly with a FakeClock):

1. once a minute, queue follow-up reminders that fell due (`node.notify.reminders`);
2. read the deliveries due now (`pending` or `failing`, `next_at <= now`);
3. decide per row, in one write transaction: drop it (`cancelled`: the user has no address
   for that channel any more, or the endpoint is gone), hold it (quiet hours: until they
   end; a digest reminder: until the digest moment, grouped in a `batch`), or claim it
   for sending by moving `next_at` a lease ahead (a crash mid-send retries after the lease);
4. send each batch outside any transaction (one message per batch), then record the
   outcome: `sent`, or `failing` with the next attempt after `schedule.backoff_ms`, or
   `dead` after `schedule.MAX_ATTEMPTS` (shown on the admin page, which can retry it).

Deliveries are at least once: a message accepted by the relay just before a crash is sent
again after the lease, with the same `webhook-id` / `Message-ID` for the receiver to drop.
A failure logs one line: the delivery's notification id, channel, code and attempt,
never an address, a secret or content.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from sqlalchemy import select, update

from federation.clock import Clock, SystemClock
from federation.worker import PassLoop
from node.core.config import NodeSettings
from node.core.db import Database, User, table_of
from node.core.times import local_date
from node.notify.db import EP, EV, PR, D
from node.notify.kinds import DIGEST_KINDS, DeliveryState, NotifyChannel, NotifyKind
from node.notify.message import outgoing
from node.notify.reminders import SCAN_EVERY_MS, queue_reminders
from node.notify.schedule import MAX_ATTEMPTS, backoff_ms, in_quiet, next_local_ms
from node.notify.transport import send_mail, send_webhook

__all__ = ["LEASE_MS", "Notifier"]

log = logging.getLogger("peernet.node.notify")
U = table_of(User)
LEASE_MS = 5 * 60_000
_ROWS_PER_PASS = 200
_PARALLEL = 5
_DUE = (DeliveryState.PENDING.value, DeliveryState.FAILING.value)
Change = tuple[Any, dict[str, Any]]  # a row and the values it gets


@dataclass
class Notifier:
    db: Database
    settings: NodeSettings
    clock: Clock
    wall: Clock = field(default_factory=SystemClock)  # webhook-timestamp only
    http: aiohttp.ClientSession | None = None
    loop: PassLoop | None = None
    last_scan_ms: int | None = None

    def kick(self) -> None:
        if self.loop is not None:
            self.loop.kick()

    @property
    def base_url(self) -> str:
        s = self.settings
        return s.public_url or f"http://{s.host}:{s.port}"

    async def run_once(self, *, scan: bool = False) -> int:
        """One pass; answers how many batches were sent or failed."""
        now = self.clock.now_ms()
        last = self.last_scan_ms
        if scan or last is None or not 0 <= now - last < SCAN_EVERY_MS:
            self.last_scan_ms = now
            await queue_reminders(self.db, now, local_date(now, self.settings.zone))
        return await self._deliver(now)

    async def _deliver(self, now: int) -> int:
        async with self.db.read() as conn:
            rows = (await conn.execute(
                select(D).where(D.c.state.in_(_DUE), D.c.next_at <= now)
                .order_by(D.c.next_at, D.c.id).limit(_ROWS_PER_PASS))).all()
            if not rows:
                return 0
            prefs, endpoints, paths = await self._lookups(conn, rows)
        groups, changes = self._plan(now, rows, prefs, endpoints)
        claimed = await self._claim(now, groups, changes)
        sem = asyncio.Semaphore(_PARALLEL)

        async def one(batch: str, members: list[Any]) -> None:
            async with sem:
                await self._send(batch, members, prefs, endpoints, paths)

        await asyncio.gather(*(one(b, groups[b]) for b in claimed))
        return len(claimed)

    async def _lookups(self, conn: Any, rows: list[Any]) -> tuple[dict[str, Any], ...]:
        users = {r.recipient[5:] for r in rows if r.recipient.startswith("user:")}
        eps = {r.recipient[9:] for r in rows if r.recipient.startswith("endpoint:")}
        prefs: dict[str, Any] = {}
        if users:
            q = (select(PR).join(U, U.c.id == PR.c.user_id)
                 .where(U.c.active.is_(True), PR.c.user_id.in_([uuid.UUID(u) for u in users])))
            prefs = {str(p.user_id): p for p in (await conn.execute(q)).all()}
        endpoints: dict[str, Any] = {}
        if eps:
            q2 = select(EP).where(EP.c.id.in_([uuid.UUID(e) for e in eps]),
                                  EP.c.active.is_(True))
            endpoints = {str(e.id): e for e in (await conn.execute(q2)).all()}
        keys = {r.event_key for r in rows}
        paths = {k: p for k, p in (await conn.execute(
            select(EV.c.key, EV.c.path).where(EV.c.key.in_(keys)))).all()}
        return prefs, endpoints, paths

    def _plan(self, now: int, rows: list[Any], prefs: dict[str, Any],
              endpoints: dict[str, Any]) -> tuple[dict[str, list[Any]], list[Change]]:
        zone = self.settings.zone
        groups: dict[str, list[Any]] = defaultdict(list)
        changes: list[Change] = []
        for r in rows:
            who, _, ident = r.recipient.partition(":")
            if who == "user":
                p = prefs.get(ident)
                if p is None or _address(p, NotifyChannel(r.channel)) is None:
                    changes.append((r, {"state": DeliveryState.CANCELLED.value,
                                        "last_error": "no_address"}))
                    continue
                urgent = r.kind == NotifyKind.ACTIVATION_REQUEST.value and p.urgent_in_quiet
                if not urgent and in_quiet(now, zone, p.quiet_start, p.quiet_end):
                    changes.append((r, {"next_at": next_local_ms(now, zone, p.quiet_end),
                                        "held": "quiet"}))
                    continue
                if r.kind in DIGEST_KINDS and p.digest and r.batch is None:
                    at = next_local_ms(now, zone, self.settings.notify_digest_hour * 60)
                    changes.append((r, {"next_at": at, "held": "digest",
                                        "batch": f"digest:{r.recipient}:{r.channel}:{at}"}))
                    continue
            elif ident not in endpoints:
                changes.append((r, {"state": DeliveryState.CANCELLED.value,
                                    "last_error": "no_endpoint"}))
                continue
            groups[r.batch or str(r.id)].append(r)
        return groups, changes

    async def _claim(self, now: int, groups: dict[str, list[Any]],
                     changes: list[Change]) -> list[str]:
        claimed = []
        async with self.db.write() as conn:
            for r, values in changes:
                await conn.execute(update(D).where(D.c.id == r.id, D.c.state.in_(_DUE),
                                                   D.c.next_at == r.next_at).values(**values))
            for batch, members in groups.items():
                res = await conn.execute(
                    update(D).where(D.c.id.in_([m.id for m in members]), D.c.state.in_(_DUE),
                                    D.c.next_at <= now)
                    .values(next_at=now + LEASE_MS))
                if res.rowcount == len(members):
                    claimed.append(batch)
                elif res.rowcount:
                    raise RuntimeError("a notification batch was claimed twice")
        return claimed

    async def _send(self, batch: str, members: list[Any], prefs: dict[str, Any],
                    endpoints: dict[str, Any], paths: dict[str, str]) -> None:
        first = members[0]
        out = outgoing(batch, NotifyKind(first.kind), len(members),
                       paths.get(first.event_key, "/"), base_url=self.base_url,
                       node_id=self.settings.node_id, node_name=self.settings.name)
        channel = NotifyChannel(first.channel)
        who, _, ident = first.recipient.partition(":")
        if who == "user":
            p = prefs[ident]
            to, secret = _address(p, channel), p.webhook_secret
        else:
            e = endpoints[ident]
            to, secret = e.target, e.secret
        assert to is not None  # checked by _plan
        code: str | None
        try:
            if channel is NotifyChannel.EMAIL:
                code = await send_mail(self.settings, out, to)
            elif self.http is None or secret is None:
                code = "webhook_unreachable"
            else:
                code = await send_webhook(self.http, self.settings, out, to, secret,
                                          self.wall.now_ms())
        except Exception as exc:  # counted as an attempt; the message may name an address
            log.error("notification %s: unexpected %s while sending", out.webhook_id,
                      type(exc).__name__)
            code = "send_error"
        await self._record(members, code, out.webhook_id)

    async def _record(self, members: list[Any], code: str | None, wid: str) -> None:
        now = self.clock.now_ms()
        attempts = max(m.attempts for m in members) + 1
        if code is None:
            values: dict[str, Any] = {"state": DeliveryState.SENT.value, "sent_at": now,
                                      "attempts": attempts, "last_error": None, "held": None}
        else:
            dead = attempts >= MAX_ATTEMPTS
            log.warning("notification delivery failed: id=%s channel=%s code=%s attempt=%d%s",
                        wid, members[0].channel, code, attempts, " (gave up)" if dead else "")
            values = {"state": DeliveryState.DEAD.value if dead else DeliveryState.FAILING.value,
                      "attempts": attempts, "last_error": code, "held": None,
                      "next_at": now + backoff_ms(attempts)}
        async with self.db.write() as conn:
            await conn.execute(update(D).where(D.c.id.in_([m.id for m in members]))
                               .values(**values))


def _address(p: Any, channel: NotifyChannel) -> str | None:
    if channel.value not in p.channels.split(","):
        return None
    return str(p.email) if channel is NotifyChannel.EMAIL and p.email else (
        str(p.webhook_url) if channel is NotifyChannel.WEBHOOK and p.webhook_url else None)
