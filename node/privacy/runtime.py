"""Monthly releases in the running node: schedule, ledger, and hand-over to the federation.

`setup(app)` (in `node.web.app.FEATURES`, after the federation) calls `install(app,
app[FEDERATION])`, which adds a background
task that, with the app's injected clock, records the due month's release once the roster
policy's release day has come (`node.privacy.ledger.due_month`) and queues every recorded but
undelivered release to the hub as an `aggregate_release` message.

How a release reaches the hub: `fed.send(conn, hub_id, MessageType.AGGREGATE_RELEASE,
body)` inside the same write transaction that notes the delivery (or, for a release the
service records itself, the same transaction as the ledger row). The federation outbox
builds the envelope once and resends those bytes until the hub's signed ack arrives; the
body inside is the ledger's stored, signed body, so retries never carry new noise.

A release recorded from the command line (`peernet node release`) is queued by the next
pass of the running node. Several node processes over one PostgreSQL run the pass one at a
time (`federation.leader_lock`), so a month is recorded and queued once.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from typing import Any, Protocol

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.keystore import NodeKeys
from federation.leader_lock import leader
from federation.worker import stop_task
from node.core.appkeys import CLOCK, DB, KEYS, SETTINGS
from node.core.db import Database
from node.core.errors import NodeError
from node.privacy.ledger import LedgerEntry, deliver_pending, due_month, record_release
from node.privacy.peer_time import newest_peer_ms
from node.privacy.schema import ReleasePolicy
from node.privacy.shared import run_shared
from node.web.federation import FEDERATION
from protocol.canonical import parse_json
from protocol.messages import MessageType

__all__ = ["ReleaseSender", "install", "run_once", "setup"]

log = logging.getLogger("peernet.node.release")

CHECK_INTERVAL_S = 3600.0


class ReleaseSender(Protocol):
    """What the service needs of `federation.service.FederationService`."""

    hub_id: str | None

    @property
    def state(self) -> Any: ...

    async def send(self, conn: Any, to: str, msg_type: MessageType, body: Any,
                   thread_id: str | None = None, in_reply_to: str | None = None,
                   ) -> str: ...


def _hub_of(fed: ReleaseSender) -> str:
    if fed.hub_id:
        return fed.hub_id
    hubs = [n.node_id for n in fed.state.nodes() if getattr(n, "is_hub", False)]
    if not hubs:
        raise RuntimeError("no hub in the roster")
    return str(hubs[0])


async def run_once(
    db: Database, fed: ReleaseSender, *, node_id: str, keys: NodeKeys, now_ms: int
) -> list[str]:
    """Record the due month (if any) and queue every undelivered release; returns the ids
    of the releases queued."""
    try:
        policy = ReleasePolicy.from_roster_policy(fed.state.policy)
        hub = _hub_of(fed)
    except Exception as exc:  # no roster accepted yet, or no hub in it: nothing to do
        log.info("no release pass: %s", type(exc).__name__)
        return []

    async def send(conn: AsyncConnection, entry: LedgerEntry) -> str:
        return await fed.send(conn, hub, MessageType.AGGREGATE_RELEASE, parse_json(entry.body))

    month = due_month(now_ms, policy.release_day)
    queued: list[str] = []
    if policy.aggregation == "shared":  # the month goes as shares (node.privacy.shared)
        queued += await run_shared(db, fed, node_id=node_id, month=month, policy=policy,
                                   hub=hub, now_ms=now_ms, peer_ms=await _peer_ms(db, node_id))
        month = None  # never also a local release
    if month is not None:
        try:
            # Signed with the key the roster lists (after a rotation, once published).
            key_version, signing_key = keys.signer(fed.state.sign_keys_of(node_id))
            entry = await record_release(
                db, node_id=node_id, month=month, policy=policy,
                signing_key=signing_key, key_version=key_version, now_ms=now_ms,
                on_recorded=send, peer_ms=await _peer_ms(db, node_id),
            )
            if entry.created:
                queued.append(entry.release_id)
        except NodeError as exc:
            log.warning("release of %s not made: %s", month, exc.code.value)
    queued += await deliver_pending(db, send, now_ms=now_ms)
    return queued


async def _peer_ms(db: Database, node_id: str) -> int | None:
    """The newest time a peer vouched for (`node.privacy.peer_time`): a node clock running
    ahead must not call the current month finished."""
    async with db.read() as conn:
        return await newest_peer_ms(conn, node_id)


def install(app: web.Application, fed: ReleaseSender,
            interval_s: float = CHECK_INTERVAL_S) -> None:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                # Sleep first: a node that just started has its outbox replay to do, and
                # the release day lasts all day.
                await asyncio.sleep(interval_s)
                try:
                    # One process at a time over one database (federation.leader_lock): two
                    # passes side by side would both find the month unreleased, or both
                    # queue the same undelivered release. The other process skips its turn.
                    async with leader(app[DB].engine, "node-release") as lead:
                        if lead:
                            await run_once(app[DB], fed, node_id=app[SETTINGS].node_id,
                                           keys=app[KEYS], now_ms=app[CLOCK].now_ms())
                except Exception:
                    log.exception("monthly release pass failed")

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            await stop_task(task)

    app.cleanup_ctx.append(ctx)


def setup(app: web.Application) -> None:
    """Node feature hook (after `node.web.federation.setup`). `PEERNET_RELEASE_CHECK_S`
    shortens the pass interval (the chaos tests run releases in seconds, not hours)."""
    install(app, app[FEDERATION],
            float(os.environ.get("PEERNET_RELEASE_CHECK_S") or CHECK_INTERVAL_S))
