"""`FederationService`: one server's federation runtime (the node's and the hub's).

It ties together the roster (`RosterStore`), the inbox, the outbox worker and the HTTP
transport, for one identity (`me` + `NodeKeys`) over one database:

    fed = FederationService(me=..., keys=..., engine=..., write=..., clock=..., pin=...)
    fed.register_handler(MessageType.ACTIVATION_REQUEST, on_request)
    app.add_routes(fed.routes())            # PUT /fed/v1/send/{txn}, GET /fed/v1/roster[/v]
    app.cleanup_ctx.append(fed.cleanup_ctx) # load roster, replay outbox, run the worker
    msg_id = await fed.send(conn, "beta-pd", MessageType.ACTIVATION_OFFER, body, thread_id=...)

`send` builds the envelope once (`protocol.envelope.build_envelope`, under the current roster
and the recipient's encryption key) and queues it in the caller's transaction; the worker
delivers after commit. `send_many` does the same for a list of `Outgoing` messages (a fan-out):
every envelope is built first, then one multi-row insert queues them all.

Routing (worker): direct to the destination's roster endpoint; when that fails (unreachable,
5xx), through the hub (the hub named by `hub_id`, else the first hub of the roster), and
direct attempts to that destination are skipped for a while (`DIRECT_RETRY_MS`). The hub
itself always delivers direct. Either way the recipient's inbox dedupes, so a message sent
both ways is applied once.

The worker wakes when a transaction that queued something commits (`kick()`, an
`asyncio.Event`), or every `poll_ms` (an arriving ack makes nothing due, so it does not
wake it). Tests drive it deterministically
with `run_once()` / `drain()` and a `FakeClock`.

Transactions per pass (each is a turn of the database writer, which on SQLite every inbound
batch waits for): one claims the due rows and stores the envelopes of newly built intents
(acks, and reports batched after their linger: `BATCH_LINGER_MS`), before they are sent, so
a resend reuses the bytes; and one records the outcome of the whole pass (done, failed,
awaiting the ack, retry later) for every destination at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from nacl.signing import SigningKey
from pydantic import BaseModel
from sqlalchemy import bindparam, delete, event, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from federation.clock import Clock
from federation.errors import FedCode, FederationError
from federation.inbox import Handler, HandlerRegistry, Inbox, WriteTx
from federation.keystore import NodeKeys
from federation.outbox import (
    AWAIT_ACK_MS,
    PERMANENT_CODES,
    Claimed,
    Db,
    backoff_ms,
    claim_due,
    enqueue_many,
    enqueue_row,
    follow_carriers,
    reset_backoff,
)
from federation.prepared import Prepared
from federation.roster import BoardPin
from federation.roster_sync import RosterStore, roster_routes
from federation.store import OutboxState, outbox
from federation.transport import BatchReceiver, HopClient, PeerError, send_handler, send_route
from federation.worker import PassLoop, drain, stop_task
from protocol.envelope import MAX_BATCH, SKEW_MS, Sender, body_json, build_envelope
from protocol.errors import ProtocolError
from protocol.ids import new_ulid
from protocol.messages import (
    BATCH_FORMS,
    AckStatus,
    BatchResult,
    MessageType,
)

__all__ = ["DEFAULT_TTL_MS", "DIRECT_RETRY_MS", "FederationService", "Outgoing"]

log = logging.getLogger("peernet.federation")

DEFAULT_TTL_MS = 3 * 86_400_000
DIRECT_RETRY_MS = 60_000
# How long a message of a type with a batch form (`protocol.messages.BATCH_FORMS`: the
# hub's activation reports) waits for others to the same destination before it goes.
BATCH_LINGER_MS = 200
# Body bytes per batch message, well under the 64 KiB envelope limit.
BATCH_BODY_BUDGET = 32 * 1024
ROSTER_REFRESH_MS = 10 * 60_000
# At most one fetch of a newer roster seen in a peer's envelope per this period (a peer
# cannot make a server fetch in a loop by naming versions that do not exist).
PEER_ROSTER_FETCH_MS = 5_000
SWEEP_MS = 60 * 60_000

# Outcome statements of a worker pass, built once; run with one parameter set per row.
_STORE_ENVELOPE = Prepared(
    update(outbox)
    .where(outbox.c.id == bindparam("b_id"))
    .values(envelope=bindparam("b_env"), msg_type=bindparam("b_type"))
)
# A row whose body travels inside another row's batch message: its fate is that row's.
_MERGED = Prepared(
    update(outbox)
    .where(outbox.c.id == bindparam("b_id"), outbox.c.state == OutboxState.PENDING)
    .values(state=OutboxState.MERGED, carrier=bindparam("b_carrier"))
)
_AWAIT_ACK = Prepared(
    update(outbox)
    .where(outbox.c.id == bindparam("b_id"), outbox.c.state == OutboxState.PENDING)
    .values(sent_ts=bindparam("b_now"), next_attempt_ts=bindparam("b_next"), last_error=None)
)
_FINISH = Prepared(
    update(outbox)
    .where(
        outbox.c.id.in_(bindparam("b_ids", expanding=True)),
        outbox.c.state == OutboxState.PENDING,
    )
    .values(
        state=bindparam("b_state"),
        failed_code=bindparam("b_code"),
        sent_ts=func.coalesce(outbox.c.sent_ts, bindparam("b_now", type_=outbox.c.sent_ts.type)),
        acked_ts=bindparam("b_acked"),
    )
)
_RETRY = Prepared(
    update(outbox)
    .where(outbox.c.id == bindparam("b_id"), outbox.c.state == OutboxState.PENDING)
    .values(next_attempt_ts=bindparam("b_next"), last_error=bindparam("b_err"))
)


@dataclass(frozen=True)
class Outgoing:
    """One message for `FederationService.send_many` (the arguments of `send`)."""

    to: str
    msg_type: MessageType
    body: BaseModel | Mapping[str, Any]
    thread_id: str | None = None
    in_reply_to: str | None = None
    ttl_ms: int = DEFAULT_TTL_MS


@dataclass
class _Outcome:
    """What one worker pass learned, written in one transaction at its end."""

    finish: dict[tuple[str, str | None], list[int]] = field(default_factory=dict)
    waiting: list[dict[str, Any]] = field(default_factory=list)
    retry: list[dict[str, Any]] = field(default_factory=list)

    def finished(self, rows: Sequence[Claimed], state: str, code: str | None) -> None:
        self.finish.setdefault((state, code), []).extend(r.id for r in rows)

    def retried(
        self, rows: Sequence[Claimed], error: str, now: int, rand: Callable[[], float]
    ) -> None:
        self.retry.extend(
            {"b_id": r.id, "b_next": now + backoff_ms(r.attempts, rand), "b_err": error[:200]}
            for r in rows
        )


class FederationService:
    def __init__(
        self,
        *,
        me: str,
        keys: NodeKeys,
        engine: AsyncEngine,
        write: WriteTx,
        clock: Clock,
        pin: BoardPin | None,
        hub_id: str | None = None,
        hub_url: str | None = None,
        is_hub: bool = False,
        poll_ms: int = 1_000,
        run_worker: bool = True,
        rand: Callable[[], float] = random.random,
        batch_linger_ms: int = BATCH_LINGER_MS,
    ) -> None:
        self.me = me
        self.batch_linger_ms = batch_linger_ms
        self._linger_timer: asyncio.TimerHandle | None = None
        self.keys = keys
        self.engine = engine
        self.write = write
        self.clock = clock
        self.is_hub = is_hub
        self.hub_id = hub_id
        self.hub_url = hub_url
        self.run_worker = run_worker
        self.rand = rand
        self.roster = RosterStore(engine, clock, pin, write)
        self.handlers = HandlerRegistry()
        self.inbox = Inbox(
            me=me,
            enc_key=keys.enc_key,
            roster=self.roster,
            write=write,
            clock=clock,
            handlers=self.handlers,
        )
        self.inbox.on_queued = self.kick
        self.receiver: BatchReceiver = self.inbox
        self.http: aiohttp.ClientSession | None = None
        self.client: HopClient | None = None
        self._loop = PassLoop(f"federation-worker-{me}", self._pass, poll_ms)
        self._direct_down_until: dict[str, int] = {}
        self._hops_down: set[str] = set()
        self._signer: tuple[int, Sender] | None = None  # (roster version, signer)
        self._last_roster_refresh = 0
        self._last_sweep = 0
        self._roster_fetch: asyncio.Task[None] | None = None
        self._last_peer_fetch = -PEER_ROSTER_FETCH_MS
        self.peer_roster_fetches = 0  # fetch runs started by a newer version seen (a stat)

    # --- business API -------------------------------------------------------------------

    @property
    def state(self) -> Any:
        """The `RosterState` (directory, key resolver)."""
        return self.roster.state

    def sender(self) -> Sender:
        """Who this server signs as: the newest of its keys that the current roster lists
        for it (`NodeKeys.signer`), so after `rotate-key` the new key is used from the
        roster version that publishes it; worked out again when the roster changes."""
        state = self.roster.state
        cached = self._signer
        if cached is not None and cached[0] == state.version:
            return cached[1]
        version, key = self.keys.signer(state.sign_keys_of(self.me))
        sender = Sender(node_id=self.me, key_version=version, signing_key=key)
        self._signer = (state.version, sender)
        return sender

    def _hop_signer(self) -> tuple[int, SigningKey]:
        sender = self.sender()
        return sender.key_version, sender.signing_key

    def register_handler(
        self, msg_type: MessageType, handler: Handler, *, replace: bool = False
    ) -> None:
        """Business logic for inbound `msg_type` (one per type; `replace` for tests)."""
        self.handlers.register(msg_type, handler, replace=replace)

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
                envelope = build_envelope(
                    sender=sender,
                    to=m.to,
                    recipient_enc_key=state.enc_key(m.to),
                    msg_type=msg_type,
                    body=m.body,
                    msg_id=msg_id,
                    created_ts=now,
                    expires_ts=now + m.ttl_ms,
                    roster=ref,
                    thread_id=m.thread_id,
                    in_reply_to=m.in_reply_to,
                )
            except ProtocolError as exc:
                raise FederationError(exc.code.value, exc.detail or exc.code.value) from None
            rows.append(
                enqueue_row(
                    destination=m.to,
                    msg_id=msg_id,
                    msg_type=msg_type.value,
                    created_ts=now,
                    expires_ts=now + m.ttl_ms,
                    envelope=envelope,
                )
            )
        await enqueue_many(conn, rows)
        # Due now: wake the worker at commit; lingering ones: when their linger is over.
        self._kick_after_commit(conn, now=lingering < len(rows), linger=lingering > 0)
        return [str(r["msg_id"]) for r in rows]

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

    def kick(self) -> None:
        """Wake the worker (something became due)."""
        self._loop.kick()

    # --- server wiring ------------------------------------------------------------------

    def send_handler(self) -> Callable[[web.Request], Any]:
        return send_handler(
            me=self.me,
            keys=lambda: self.roster.state,
            clock=self.clock,
            receiver=_Receiving(self),
        )

    def notice_newer_roster(self, origin: str) -> None:
        """After a batch: if its envelopes named a roster version newer than ours, fetch it
        in the background from `origin` (the peer that sent them has it) and then from the
        hub; at most one per `PEER_ROSTER_FETCH_MS`. A fetch still running when the next
        one may start is stuck on a slow peer: the new one replaces it."""
        newer = self.roster.state.take_newer()
        if not newer or self.http is None:
            return
        now = self.clock.now_ms()
        if now - self._last_peer_fetch < PEER_ROSTER_FETCH_MS:
            return
        self._last_peer_fetch = now
        self.peer_roster_fetches += 1
        running = self._roster_fetch
        stuck = running if running is not None and not running.done() else None
        self._roster_fetch = asyncio.create_task(self._fetch_newer(origin, newer, stuck))

    async def _fetch_newer(
        self, origin: str, newer: int, stuck: asyncio.Task[None] | None = None
    ) -> None:
        if stuck is not None:
            await stop_task(stuck)
        state = self.roster.state
        sources: list[tuple[str, str]] = []
        if origin != self.me and state.has_node(origin):
            sources.append((origin, state.node(origin).endpoint))
        hub = self._hub()
        if hub is not None and hub[0] != origin:
            sources.append(hub)
        elif hub is None and self.hub_url and not self.is_hub:
            sources.append((self.hub_id or "hub", self.hub_url))
        assert self.http is not None
        for source, url in sources:
            try:
                await self.roster.fetch_from(self.http, url, source=source)
            except FederationError as exc:
                log.warning("roster fetch from %s failed: %s", source, exc.code)
                continue
            except Exception:  # a background task: whatever a peer serves, never raise
                log.exception("roster fetch from %s failed", source)
                continue
            if self.roster.state.version >= newer:
                self.kick()  # rows refused for the old roster may go now
                return

    def routes(self) -> list[web.RouteDef]:
        return [send_route(self.send_handler()), *roster_routes(self.roster)]

    async def start(self) -> None:
        await self.roster.load()
        # Peers never need cookies from one another: none is kept or sent back.
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        self.client = HopClient(self.me, self.keys, self.clock, self.http,
                                signer=self._hop_signer)
        if self.roster.state.current is None and self.hub_url:
            with contextlib.suppress(FederationError):
                await self.refresh_roster()
        if self.run_worker:
            self._loop.start()  # and replay what was pending at shutdown

    async def stop(self) -> None:
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        if self._roster_fetch is not None:
            task, self._roster_fetch = self._roster_fetch, None
            await stop_task(task)
        await self._loop.stop()
        if self.http is not None:
            await self.http.close()
            self.http = None

    async def cleanup_ctx(self, _app: web.Application) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def refresh_roster(self) -> int:
        """Fetch newer roster versions from the hub (`hub_url`); the new current version."""
        if self.http is None:
            raise FederationError(FedCode.PEER_UNREACHABLE, "service not started")
        url = self.hub_url or self._hub_endpoint()
        if url is None:
            return self.roster.state.version
        await self.roster.fetch_from(self.http, url, source=self.hub_id or "hub")
        self._last_roster_refresh = self.clock.now_ms()
        return self.roster.state.version

    # --- worker -------------------------------------------------------------------------

    async def _housekeeping(self) -> None:
        """Roster refresh from the hub and the inbox/outbox sweep, on their own periods."""
        now = self.clock.now_ms()
        # A node that has no roster yet (it started before the hub answered) asks again on
        # every pass instead of waiting out the refresh period: without one it cannot
        # send, receive or serve the roster onwards.
        no_roster = self.roster.state.current is None
        if not self.is_hub and (no_roster or now - self._last_roster_refresh >= ROSTER_REFRESH_MS):
            self._last_roster_refresh = now
            try:
                await self.refresh_roster()
            except FederationError as exc:
                log.warning("roster refresh failed: %s", exc.code)
        if now - self._last_sweep >= SWEEP_MS:
            self._last_sweep = now
            await self.sweep()

    async def _pass(self) -> None:
        await self._housekeeping()
        await self.run_once()

    async def drain(self, max_passes: int = 20) -> None:
        """Run passes until nothing is due (tests and the benchmark)."""
        await drain(self.run_once, max_passes)

    async def run_once(self) -> int:
        """One pass: claim due rows, build pending ack envelopes, deliver per destination.
        Returns the number of rows handled."""
        if self.client is None:
            return 0
        now = self.clock.now_ms()
        async with self.write() as conn:
            claimed = await claim_due(conn, now=now)
            # Queued acks get their envelope built now and stored in the claim's own
            # transaction, before the first send (a resend reuses the bytes).
            unbuilt = [
                r for r in claimed if r.envelope is None and now <= r.expires_ts + SKEW_MS
            ]
            built, merged = self._materialize(unbuilt)
            if built:
                await _STORE_ENVELOPE.run(
                    conn,
                    [{"b_id": r.id, "b_env": r.envelope, "b_type": r.msg_type} for r in built],
                )
            if merged:
                await _MERGED.run(
                    conn, [{"b_id": r.id, "b_carrier": carrier} for r, carrier in merged]
                )
        if not claimed:
            return 0
        if merged:
            gone = {r.id for r, _ in merged}
            claimed = [r for r in claimed if r.id not in gone]
        outcome = _Outcome()
        by_dest: dict[str, list[Claimed]] = defaultdict(list)
        expired: list[Claimed] = []
        undeliverable: list[Claimed] = []
        for row in claimed:
            if now > row.expires_ts + SKEW_MS:
                expired.append(row)
            elif row.envelope is None:
                undeliverable.append(row)
            else:
                by_dest[row.destination].append(row)
        if expired:
            outcome.finished(expired, OutboxState.FAILED, "expired")
        if undeliverable:
            outcome.finished(undeliverable, OutboxState.FAILED, "undeliverable")
        delivered = await asyncio.gather(
            *(self._deliver(dest, rows, outcome) for dest, rows in by_dest.items()),
            return_exceptions=True,
        )
        await self._record(outcome, self.clock.now_ms())
        for exc in delivered:
            if isinstance(exc, BaseException):
                raise exc
        return len(claimed)

    def _materialize(
        self, rows: list[Claimed]
    ) -> tuple[list[Claimed], list[tuple[Claimed, str]]]:
        """Build the envelopes of queued intents (acks, and the types with a batch form);
        the rows built, and the rows merged into another's batch message (with that row's
        msg_id). Intents of a type with a batch form, to one destination, travel as one
        message of the batch type (up to its count and `BATCH_BODY_BUDGET`), under the
        msg_id of the oldest; a single one travels as itself. A row that cannot be built
        (its destination left the roster) keeps no envelope."""
        built: list[Claimed] = []
        merged: list[tuple[Claimed, str]] = []
        groups: dict[tuple[str, str], list[Claimed]] = defaultdict(list)
        for row in rows:
            intent = row.intent or {}
            form = BATCH_FORMS.get(intent.get("type"))  # type: ignore[arg-type]
            if form is not None and form.joins(intent.get("body") or {}, self.me):
                groups[(row.destination, intent["type"])].append(row)
            else:
                self._build(row, intent, built)
        for (_dest, kind), members in groups.items():
            form = BATCH_FORMS[MessageType(kind)]
            for chunk in _chunks(members, form.most, BATCH_BODY_BUDGET):
                head = chunk[0]
                if len(chunk) == 1:
                    self._build(head, head.intent or {}, built)
                    continue
                batch = {"type": form.batch_type.value,
                         "body": {form.field: [(r.intent or {})["body"] for r in chunk]},
                         "thread_id": None, "in_reply_to": None}
                if self._build(head, batch, built):
                    head.msg_type = form.batch_type.value
                    merged.extend((r, head.msg_id) for r in chunk[1:])
                else:  # each alone, then
                    for r in chunk:
                        self._build(r, r.intent or {}, built)
        return built, merged

    def _build(self, row: Claimed, intent: Mapping[str, Any], built: list[Claimed]) -> bool:
        state = self.roster.state
        try:
            row.envelope = build_envelope(
                sender=self.sender(),
                to=row.destination,
                recipient_enc_key=state.enc_key(row.destination),
                msg_type=MessageType(intent["type"]),
                body=intent["body"],
                msg_id=row.msg_id,
                created_ts=row.created_ts,
                expires_ts=row.expires_ts,
                roster=state.ref(),
                thread_id=intent.get("thread_id"),
                in_reply_to=intent.get("in_reply_to"),
            )
        except (FederationError, ProtocolError, KeyError, ValueError) as exc:
            log.warning("cannot build queued %s %s: %s", row.msg_type, row.msg_id, exc)
            return False
        built.append(row)
        return True

    def _hub(self) -> tuple[str, str] | None:
        state = self.roster.state
        if self.is_hub or state.current is None:
            return None
        hubs = state.hubs()
        if self.hub_id is not None:
            hubs = [h for h in hubs if h.node_id == self.hub_id]
        elif self.hub_url is not None:
            hubs = [h for h in hubs if h.endpoint.rstrip("/") == self.hub_url.rstrip("/")] or hubs
        if not hubs:
            return None
        return hubs[0].node_id, hubs[0].endpoint

    def _hub_endpoint(self) -> str | None:
        hub = self._hub()
        return hub[1] if hub else None

    async def _deliver(self, dest: str, rows: list[Claimed], outcome: _Outcome) -> None:
        assert self.client is not None
        state = self.roster.state
        for i in range(0, len(rows), MAX_BATCH):
            chunk = rows[i : i + MAX_BATCH]
            envelopes = [r.envelope for r in chunk if r.envelope is not None]
            chunk = [r for r in chunk if r.envelope is not None]
            results: list[BatchResult] | None = None
            error = ""
            now = self.clock.now_ms()
            routes: list[tuple[str, str]] = []
            if state.has_node(dest) and self._direct_down_until.get(dest, 0) <= now:
                routes.append((dest, state.endpoint(dest)))
            hub = self._hub()
            if hub is not None and hub[0] != dest:
                routes.append(hub)
            for hop, url in routes:
                try:
                    results = await self.client.send_batch(url, hop, envelopes)
                    if hop in self._hops_down:
                        await self._hop_back(hop)
                    break
                except PeerError as exc:
                    error = f"{hop}: {exc.peer_status} {exc.peer_code}"
                except FederationError as exc:
                    error = exc.message
                self._hops_down.add(hop)
                if hop == dest:
                    # Go through the hub for a while instead of waiting on a peer that is down.
                    self._direct_down_until[dest] = now + DIRECT_RETRY_MS
            now = self.clock.now_ms()
            if results is None:
                outcome.retried(chunk, error or "no route", now, self.rand)
                continue
            self._sort(chunk, results, now, outcome)

    async def _hop_back(self, hop: str) -> None:
        """A hop that failed before answered again: it is up, so the rows to it that are
        waiting out a backoff are due now (as when a valid request arrives from it). Without
        this, a message queued while the hub was down waits out its backoff (up to 15
        minutes) even though fresher messages to the hub already go through."""
        self._hops_down.discard(hop)
        async with self.write() as conn:
            await reset_backoff(conn, destinations=[hop], now=self.clock.now_ms())
        self.kick()

    def _sort(
        self, rows: list[Claimed], results: list[BatchResult], now: int, outcome: _Outcome
    ) -> None:
        """File one batch's results into the pass's outcome."""
        failed: dict[str, list[Claimed]] = defaultdict(list)
        retry: list[Claimed] = []
        for row, res in zip(rows, results, strict=True):
            if res.status in (AckStatus.ACCEPTED, AckStatus.DUPLICATE):
                if row.msg_type == MessageType.ACK.value:
                    outcome.finished([row], OutboxState.DONE, None)
                else:
                    wait = max(AWAIT_ACK_MS, backoff_ms(row.attempts, self.rand))
                    outcome.waiting.append({"b_id": row.id, "b_now": now, "b_next": now + wait})
            elif res.code is not None and res.code.value in PERMANENT_CODES:
                failed[res.code.value].append(row)
            else:
                retry.append(row)
        for code, fl in failed.items():
            log.warning("%d message(s) refused permanently: %s", len(fl), code)
            outcome.finished(fl, OutboxState.FAILED, code)
        if retry:
            outcome.retried(retry, "transient refusal", now, self.rand)

    async def _record(self, outcome: _Outcome, now: int) -> None:
        """The pass's outcome in one transaction: a statement per final state, one
        parameter set per row for the rows that wait (for the ack, or to retry)."""
        if not (outcome.finish or outcome.waiting or outcome.retry):
            return
        async with self.write() as conn:
            for (state, code), ids in outcome.finish.items():
                await _FINISH.run(
                    conn,
                    {
                        "b_ids": ids,
                        "b_state": state,
                        "b_code": code,
                        "b_now": now,
                        "b_acked": now if state == OutboxState.DONE else None,
                    },
                )
            if any(state == OutboxState.FAILED for state, _ in outcome.finish):
                await follow_carriers(conn)  # a failed batch fails the reports it carried
            if outcome.waiting:
                await _AWAIT_ACK.run(conn, outcome.waiting)
            if outcome.retry:
                await _RETRY.run(conn, outcome.retry)

    # --- housekeeping and inspection ----------------------------------------------------

    async def sweep(self, keep_done_ms: int = 7 * 86_400_000) -> tuple[int, int]:
        """Sweep expired inbox rows and outbox rows finished long ago."""
        swept_in = await self.inbox.sweep()
        cutoff = self.clock.now_ms() - keep_done_ms
        async with self.write() as conn:
            res = await conn.execute(
                delete(outbox).where(
                    outbox.c.state.in_([OutboxState.DONE, OutboxState.FAILED]),
                    outbox.c.created_ts < cutoff,
                )
            )
        return swept_in, int(res.rowcount)

    async def outbox_counts(self) -> dict[str, int]:
        async with self.write() as conn:
            rows = (
                await conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state))
            ).all()
        return {r[0]: int(r[1]) for r in rows}


def _chunks(rows: list[Claimed], most: int, budget: int) -> list[list[Claimed]]:
    """`rows` in order, cut into runs of at most `most` whose bodies fit `budget` bytes."""
    out: list[list[Claimed]] = []
    size = 0
    for row in rows:
        n = len(json.dumps((row.intent or {}).get("body")))
        if not out or len(out[-1]) >= most or size + n > budget:
            out.append([])
            size = 0
        out[-1].append(row)
        size += n
    return out


class _Receiving:
    """The send route's receiver: the service's current one (the hub replaces it), then a
    look for a newer roster the batch's envelopes named."""

    def __init__(self, fed: FederationService) -> None:
        self.fed = fed

    async def receive(self, origin: str, items: list[object]) -> list[BatchResult]:
        try:
            return await self.fed.receiver.receive(origin, items)
        finally:
            self.fed.notice_newer_roster(origin)
