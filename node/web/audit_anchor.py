"""Anchoring the node's signed audit head at the hub, and reading the anchor back.

A signature made with the node's own key cannot stop someone who holds that key (an admin
with the passphrase) from cutting the log back to an older head and re-signing it. What
stops them is a copy of a signed head kept where they cannot write: the hub. So the node
sends its newest signed head (`seq`, `hash`, `signed_at`, a signature over them with the
key the roster lists: `protocol.audit_head`) to the hub, and `peernet node audit verify`
reads the hub's copy back and checks the log still contains it (`node.core.audit_verify`).

Sending: an `audit_anchor` message (WIRE section 7) through the federation outbox, as the
activation reports go, rather than a separate HTTP call: it is queued in a transaction, so
it survives restarts and a hub that is down, is retried with backoff, travels sealed and
signed like every other message, and the hub's inbox already dedupes and acknowledges it.
A pass (`anchor_once`) runs every `ANCHOR_INTERVAL_MS` and queues the head when its
signature moved since the last anchor; before anchoring a newer head it checks the entry it
anchored last still has the anchored hash (it will not move the hub's anchor over a
rewritten history). The hub keeps the newest anchor per node and ignores an older one that
arrives late (accepted, so the outbox does not count it as a refusal).

Reading back: `GET /fed/v1/audit-anchor`, signed per hop by the node like every
node-to-hub request (`protocol.request_auth`); the hub answers with the anchor of the
signing node only (`{"anchor": null}` before the first). `fetch_anchor` is what the CLI
uses: it needs the node keys, the roster stored in the node's database (to name the hub
and pick the signing key) and `hub_url`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from federation.clock import Clock
from federation.keystore import NodeKeys
from federation.roster_state import RosterState
from federation.roster_sync import RosterStore
from federation.worker import PassLoop
from node.core.appkeys import DB, KEYS, SETTINGS
from node.core.db import AuditEntry, AuditHead, table_of
from node.web.federation import FEDERATION
from protocol.audit_head import sign_head_bytes
from protocol.encoding import b64u
from protocol.ids import key_id
from protocol.messages import MessageType
from protocol.request_auth import sign_request

__all__ = [
    "ANCHOR_INTERVAL_MS",
    "ANCHOR_PATH",
    "Anchor",
    "AnchorUnavailable",
    "anchor_once",
    "fetch_anchor",
    "setup",
]

log = logging.getLogger("peernet.node.audit")

ANCHOR_INTERVAL_MS = 30_000
ANCHOR_PATH = "/fed/v1/audit-anchor"
ANCHOR_TTL_MS = 86_400_000  # an anchor older than a day is superseded anyway
_entries = table_of(AuditEntry)
_head = table_of(AuditHead)


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    signed_at: int


class AnchorUnavailable(Exception):
    """The hub's anchor could not be read (no hub, unreachable, refused)."""


@dataclass
class _Sent:
    last: tuple[int, str] | None = None


_SENT = web.AppKey("peernet_audit_anchor_sent", _Sent)


def _hub_id(state: RosterState, hub_url: str | None) -> str | None:
    if state.current is None:
        return None
    hubs = state.hubs()
    if hub_url:
        hubs = [h for h in hubs if h.endpoint.rstrip("/") == hub_url.rstrip("/")] or hubs
    return hubs[0].node_id if hubs else None


async def anchor_once(app: web.Application) -> bool:
    """Queue the newest signed head for the hub if it moved since the last anchor; True
    when one was queued."""
    fed, settings, sent = app[FEDERATION], app[SETTINGS], app[_SENT]
    hub = _hub_id(fed.state, settings.hub_url)
    if hub is None:
        return False
    me = settings.node_id
    async with app[DB].write() as conn:
        head = (await conn.execute(
            select(_head.c.signed_seq, _head.c.signed_hash, _head.c.signed_at)
            .where(_head.c.id == 1)
        )).one_or_none()
        if head is None or not head.signed_seq or head.signed_hash is None:
            return False
        current = (int(head.signed_seq), str(head.signed_hash))
        if sent.last == current:
            return False
        if sent.last is not None and sent.last[0] < current[0]:
            held = (await conn.execute(
                select(_entries.c.hash).where(_entries.c.seq == sent.last[0])
            )).scalar_one_or_none()
            if held != sent.last[1]:
                log.error("audit entry %d no longer has the hash anchored at the hub: not "
                          "anchoring a rewritten log (run peernet node audit verify)",
                          sent.last[0])
                return False
        version, key = app[KEYS].signer(fed.state.sign_keys_of(me))
        signed_at = int(head.signed_at or 0)
        sig = sign_head_bytes(key, me, current[0], current[1], signed_at)
        body = {"seq": current[0], "hash": current[1], "signed_at": signed_at,
                "sig": {"key_id": key_id(version), "value": b64u(sig)}}
        await fed.send(conn, hub, MessageType.AUDIT_ANCHOR, body, ttl_ms=ANCHOR_TTL_MS)
    sent.last = current
    return True


async def _anchor_ctx(app: web.Application) -> AsyncIterator[None]:
    loop: PassLoop | None = None
    if app[FEDERATION].run_worker:  # tests that drive the outbox by hand call anchor_once

        async def run() -> None:
            await anchor_once(app)

        loop = PassLoop("audit-anchor", run, ANCHOR_INTERVAL_MS)
        loop.start()
    try:
        yield
    finally:
        if loop is not None:
            await loop.stop()


def setup(app: web.Application) -> None:
    """Listed in `node.web.app.FEATURES` after the federation service (its context runs later)."""
    app[_SENT] = _Sent()
    app.cleanup_ctx.append(_anchor_ctx)


async def fetch_anchor(*, engine: AsyncEngine, clock: Clock, keys: NodeKeys, node_id: str,
                       hub_url: str | None, timeout_s: float = 10) -> Anchor | None:
    """The anchor the hub holds for this node (None: none yet); `AnchorUnavailable` when
    it cannot be read."""
    if not hub_url:
        raise AnchorUnavailable("no hub_url is configured")
    roster = RosterStore(engine, clock, None)
    await roster.load()
    hub = _hub_id(roster.state, hub_url)
    if hub is None:
        raise AnchorUnavailable("the node holds no roster naming a hub")
    version, key = keys.signer(roster.state.sign_keys_of(node_id))
    auth = sign_request(signing_key=key, key_version=version, method="GET", path=ANCHOR_PATH,
                        origin=node_id, destination=hub, ts=clock.now_ms(), body=b"")
    url = hub_url.rstrip("/") + ANCHOR_PATH
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http, \
                http.get(url, headers={"Authorization": auth}, allow_redirects=False,
                         timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            data = await resp.json(content_type=None) if resp.status == 200 else None
            status = resp.status
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        raise AnchorUnavailable(f"hub {hub} unreachable: {type(exc).__name__}") from None
    if status != 200 or not isinstance(data, dict) or "anchor" not in data:
        raise AnchorUnavailable(f"hub {hub} answered {status}")
    doc = data["anchor"]
    if doc is None:
        return None
    try:
        return Anchor(int(doc["seq"]), str(doc["hash"]), int(doc["signed_at"]))
    except (KeyError, TypeError, ValueError):
        raise AnchorUnavailable(f"hub {hub} sent a malformed anchor") from None
