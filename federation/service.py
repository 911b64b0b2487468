"""`FederationService`: one server's federation runtime (the node's and the hub's).

It ties together the roster (`RosterStore`), the inbox, the outbox worker and the HTTP
transport, for one identity (`me` + `NodeKeys`) over one database:

    fed = FederationService(me=..., keys=..., engine=..., write=..., clock=..., pin=...)
    fed.register_handler(MessageType.ACTIVATION_REQUEST, on_request)
    app.add_routes(fed.routes())            # PUT /fed/v1/send/{txn}, GET /fed/v1/roster[/v]
    app.cleanup_ctx.append(fed.cleanup_ctx) # load roster, replay outbox, run the worker
    msg_id = await fed.send(conn, "beta-pd", MessageType.ACTIVATION_OFFER, body, thread_id=...)

This module holds the identity, the wiring and the lifecycle; the service inherits its two
halves of the outbox: queueing in the caller's transaction (`send`, `send_many`:
`federation.sending.OutboxSending`) and the worker pass that builds, routes and delivers
(`run_once`: `federation.delivery.OutboxDelivery`).

The worker wakes when a transaction that queued something commits (`kick()`, an
`asyncio.Event`, also when an inbound request made rows due again), and otherwise sleeps
until the next row is due (its `next_attempt_ts`: a retry, a lease running out, a linger)
or the next housekeeping, at most `IDLE_MS`: no pass that finds nothing (an arriving ack
makes nothing due, so it does not wake it). With a `FakeClock` it polls every `poll_ms`.
Tests drive it deterministically with `run_once()` / `drain()` and a `FakeClock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from aiohttp import web
from nacl.signing import SigningKey
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from federation.clock import Clock, SystemClock
from federation.compact_acceptance import CompactPin
from federation.compact_state import CompactState
from federation.delivery import OutboxDelivery
from federation.errors import FedCode, FederationError
from federation.foreign_rosters import ForeignRosters
from federation.inbox import Handler, HandlerRegistry, Inbox, WriteTx
from federation.interstate_keys import HopKeys
from federation.interstate_runtime import Interstate
from federation.keystore import NodeKeys
from federation.leader_lock import leader
from federation.retention import sweep_alarms
from federation.roster_acceptance import BoardPin
from federation.roster_sync import RosterStore, roster_routes
from federation.sending import BATCH_LINGER_MS, OutboxSending
from federation.store import OutboxState, outbox
from federation.transport import BatchReceiver, HopClient, send_handler, send_route
from federation.worker import PassLoop, drain, stop_task
from protocol.envelope import KeyResolver, Sender
from protocol.errors import Code
from protocol.messages import (
    BatchResult,
    MessageType,
)

__all__ = ["FederationService"]

log = logging.getLogger("peernet.federation")

ROSTER_REFRESH_MS = 10 * 60_000
# At most one fetch of a newer roster seen in a peer's envelope per this period (a peer
# cannot make a server fetch in a loop by naming versions that do not exist).
PEER_ROSTER_FETCH_MS = 5_000
SWEEP_MS = 60 * 60_000
# Longest worker sleep when nothing is due (another process's commits, a lease running out).
IDLE_MS = 30_000
# Outgoing connections kept open at once (over all peers).
HTTP_CONNECTIONS = 1_000


class FederationService(OutboxSending, OutboxDelivery):
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
        network_id: str | None = None,
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
        # Interstate (WIRE 16): with a network id and a pinned board, this server holds the
        # compact and the other networks' rosters, sends and opens `v: 2` envelopes.
        self.interstate: Interstate | None = None
        if network_id is not None and pin is not None:
            self.interstate = Interstate(
                network_id=network_id, engine=engine, write=write, clock=clock,
                pin=CompactPin(network_id, pin), roster=self.roster)
        self.inbox.interstate = self.interstate
        # The compact this server holds (hub.national reads it here); None without one.
        self.compact: CompactState | None = (
            None if self.interstate is None else self.interstate.compact)
        self._last_interstate_refresh = 0
        self._interstate_task: asyncio.Task[None] | None = None
        self._interstate_lock = asyncio.Lock()  # one refresh at a time (same rows)
        self.receiver: BatchReceiver = self.inbox
        self.http: aiohttp.ClientSession | None = None
        self.client: HopClient | None = None
        self.poll_ms = poll_ms
        # With the system clock the worker sleeps until the next row is due (`_next_wait_ms`);
        # a clock that moves only when told (tests) cannot say when that is: poll instead.
        self.idle_ms: int | None = IDLE_MS if isinstance(clock, SystemClock) else None
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

    @property
    def foreign(self) -> ForeignRosters | None:
        """Other member networks' rosters, verified against the compact (or None)."""
        return None if self.interstate is None else self.interstate.foreign

    def _hop_keys(self) -> KeyResolver:
        if self.is_hub and self.interstate is not None:
            return HopKeys(self.roster.state, self.interstate.compact)
        return self.roster.state

    async def refresh_interstate(self, only: str | None = None) -> None:
        """Learn newer compacts and foreign rosters: a hub from the member hubs, a node
        from its own hub (`federation.interstate_runtime`)."""
        if self.interstate is None or self.http is None:
            return
        self._last_interstate_refresh = self.clock.now_ms()
        async with self._interstate_lock:
            if self.is_hub:
                await self.interstate.refresh_from_members(self.http, only)
                return
            url = self.hub_url or self._hub_endpoint()
            if url is not None:
                await self.interstate.refresh_from_hub(self.http, url, self.hub_id or "hub")

    def refresh_interstate_soon(self, only: str | None = None, *, force: bool = False) -> None:
        """A background `refresh_interstate` (after an envelope named a foreign roster we
        do not hold), at most one per `PEER_ROSTER_FETCH_MS` unless `force` (a compact
        just installed)."""
        now = self.clock.now_ms()
        running = self._interstate_task
        if (self.interstate is None or self.http is None
                or (running is not None and not running.done())
                or (not force and now - self._last_interstate_refresh < PEER_ROSTER_FETCH_MS)):
            return
        self._last_interstate_refresh = now
        self._interstate_task = asyncio.create_task(self._refresh_quietly(only))

    async def _refresh_quietly(self, only: str | None) -> None:
        try:
            await self.refresh_interstate(only)
        except Exception:  # a background task: whatever a peer serves, never raise
            log.exception("interstate refresh failed")

    def _hop_signer(self) -> tuple[int, SigningKey]:
        sender = self.sender()
        return sender.key_version, sender.signing_key

    def register_handler(
        self, msg_type: MessageType, handler: Handler, *, replace: bool = False
    ) -> None:
        """Business logic for inbound `msg_type` (one per type; `replace` for tests)."""
        self.handlers.register(msg_type, handler, replace=replace)

    def kick(self) -> None:
        """Wake the worker (something became due)."""
        self._loop.kick()

    # --- server wiring ------------------------------------------------------------------

    def send_handler(self) -> Callable[[web.Request], Any]:
        return send_handler(
            me=self.me,
            keys=self._hop_keys,
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
        try:
            await self.roster.catch_up()  # another process over this database may have it
        except Exception:  # a background task: never raise
            log.exception("roster catch-up failed")
        if self.roster.state.version >= newer:
            self.kick()
            return
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
        if self.interstate is not None:
            await self.interstate.load()
        # Peers never need cookies from one another: none is kept or sent back. The pool
        # keeps a connection to every peer of a fan-out (aiohttp's default of 100 closed and
        # reopened connections on every fan-out to more agencies than that).
        self.http = aiohttp.ClientSession(
            cookie_jar=aiohttp.DummyCookieJar(),
            connector=aiohttp.TCPConnector(limit=HTTP_CONNECTIONS, limit_per_host=8))
        self.client = HopClient(self.me, self.keys, self.clock, self.http,
                                signer=self._hop_signer)
        if self.roster.state.current is None and self.hub_url:
            with contextlib.suppress(FederationError):
                await self.refresh_roster()
        if self.interstate is not None and not self.is_hub and self.hub_url:
            await self._refresh_quietly(None)
        if self.run_worker:
            self._loop.start()  # and replay what was pending at shutdown

    async def stop(self) -> None:
        if self._interstate_task is not None:
            task, self._interstate_task = self._interstate_task, None
            await stop_task(task)
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

    async def _refresh_roster_led(self) -> None:
        """The periodic refresh: adopt what another process over this database stored, then
        ask the hub only if this process leads (`federation.roster_sync` module notes)."""
        await self.roster.catch_up()
        async with leader(self.engine, "roster-refresh") as lead:
            if lead:
                await self.refresh_roster()

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
                await self._refresh_roster_led()
            except FederationError as exc:
                log.warning("roster refresh failed: %s", exc.code)
        if (self.interstate is not None
                and now - self._last_interstate_refresh >= ROSTER_REFRESH_MS):
            self.refresh_interstate_soon(force=True)  # in the background: peers may be slow
        if now - self._last_sweep >= SWEEP_MS:
            self._last_sweep = now
            async with leader(self.engine, "federation-sweep") as lead:
                if lead:  # one process of several over one database sweeps
                    await self.sweep()

    async def _pass(self) -> None:
        await self._housekeeping()
        handled = await self.run_once()
        if self.idle_ms is not None:
            self._loop.wake_in(self._next_wait_ms(handled))

    def _next_wait_ms(self, handled: int) -> int:
        """How long the worker may sleep: until the next outbox row is due (as the pass
        left it) or the next housekeeping, at most `idle_ms`. Commits that queue work and
        inbound requests that make rows due again kick it sooner."""
        now = self.clock.now_ms()
        due = self.next_due  # read by the pass's claim (`OutboxDelivery.run_once`)
        wait = min(self.idle_ms or 0, self._last_sweep + SWEEP_MS - now)
        if not self.is_hub:
            refresh = self._last_roster_refresh + ROSTER_REFRESH_MS - now
            wait = min(wait, refresh if self.roster.state.current is not None else self.poll_ms)
        if due is not None:
            # Due already but nothing was handled (no client yet, a row being leased by
            # another process): look again after a poll period, not in a busy loop.
            wait = min(wait, due - now if due > now or handled else self.poll_ms)
        return max(0, int(wait))

    async def drain(self, max_passes: int = 20) -> None:
        """Run passes until nothing is due (tests and the benchmark)."""
        await drain(self.run_once, max_passes)


    async def sweep(self, keep_done_ms: int = 7 * 86_400_000) -> tuple[int, int]:
        """Sweep expired inbox rows, outbox rows finished long ago and alarms acknowledged
        long ago (`federation.retention`)."""
        swept_in = await self.inbox.sweep()
        now = self.clock.now_ms()
        cutoff = now - keep_done_ms
        async with self.write() as conn:
            await sweep_alarms(conn, now)
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





class _Receiving:
    """The send route's receiver: the service's current one (the hub replaces it), then a
    look for a newer roster the batch's envelopes named."""

    def __init__(self, fed: FederationService) -> None:
        self.fed = fed

    async def receive(self, origin: str, items: list[object]) -> list[BatchResult]:
        try:
            results = await self.fed.receiver.receive(origin, items)
        finally:
            self.fed.notice_newer_roster(origin)
        if any(r.code in _STALE for r in results):  # maybe a compact or roster we lack
            self.fed.refresh_interstate_soon()
        return results


# Refusals a newer compact or foreign roster may cure (fetched in the background).
_STALE = frozenset((Code.UNKNOWN_NETWORK, Code.FOREIGN_ROSTER_INVALID, Code.ROSTER_MISMATCH,
                    Code.NETWORK_NOT_IN_COMPACT))
