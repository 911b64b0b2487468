"""Audit anchors: the newest signed audit head of each node, kept outside the node.

A node's audit log is a signed hash chain in the node's own database; whoever can write that
database and holds the key could cut it back and re-sign an older head. Each node therefore
sends its signed head to the hub (`audit_anchor`, WIRE section 7; `node.web.audit_anchor`), and
`peernet node audit verify` reads the hub's copy back to check the log still contains it.

The hub stores per node only `node_id`, `seq`, `hash`, `signed_at`, the signature and its
key id (no entry, no record content), in `hub_audit_anchor`, one row per node. An anchor:

- must be signed (`protocol.audit_head`) by a key the current roster lists for the sender:
  else refused `bad_signature` (or the roster's `unknown_key` / `revoked_key`);
- with a lower `seq` than the one held is accepted and ignored (`behind`): the held,
  higher anchor stays as it is, so the hub never moves an anchor back, whoever signs.
  Anchors travel through the outbox, so an older one may legitimately arrive after a newer
  one (a retry, a node killed and restarted); refusing it would turn that ordinary
  reordering into a business refusal. Ignoring it loses no protection: a log cut back is
  caught by the node's verify against the held, higher anchor (`behind_anchor`), and a
  different hash at the held seq still raises the conflict alarm below. The signature is
  checked first, so a forged lower anchor is still refused;
- with the held `seq` and the held hash is a repeat (accepted, nothing changes);
- with the held `seq` and another hash is accepted as a message but changes nothing and
  raises an alarm (`fed_alarm`, kind `audit_anchor_conflict`, shown with the roster alarms):
  the node signed two different histories for one position. The alarm is written in the
  message's own transaction, which is why this case is not a refusal (a refusal rolls the
  handler's changes back);
- with a higher `seq` replaces the held one.

`GET /fed/v1/audit-anchor` (per-hop signed by the node, `protocol.request_auth`) answers
`{"anchor": {...} | null}` for the signing node only.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from sqlalchemy import BigInteger, Column, String, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.errors import from_protocol
from federation.roster_state import Alarm, RosterState
from federation.roster_sync import persist_alarms
from hub.appkeys import CLOCK, DB, FEDERATION, SETTINGS
from hub.db import Base
from protocol.audit_head import verify_head
from protocol.encoding import unb64u
from protocol.envelope import Opened
from protocol.errors import Code, ProtocolError
from protocol.hub_bodies import AuditAnchorBody
from protocol.messages import MessageType
from protocol.request_auth import verify_request

__all__ = ["ANCHOR_PATH", "CONFLICT_KIND", "AnchorRefused", "accept_anchor", "anchors",
           "setup"]

log = logging.getLogger("peernet.hub.audit_anchors")

ANCHOR_PATH = "/fed/v1/audit-anchor"
CONFLICT_KIND = "audit_anchor_conflict"

anchors = Table(
    "hub_audit_anchor",
    Base.metadata,
    Column("node_id", String(63), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(43), nullable=False),
    Column("signed_at", BigInteger, nullable=False),
    Column("key_id", String(40), nullable=False),
    Column("signature", String(100), nullable=False),
    Column("received_ts", BigInteger, nullable=False),
)


class AnchorRefused(Exception):
    """A refused anchor: `code` is the wire code the ack carries, `reason` the hub's own."""

    def __init__(self, code: Code, reason: str) -> None:
        super().__init__(f"{code.value}: {reason}")
        self.code = code
        self.reason = reason


async def accept_anchor(conn: AsyncConnection, *, node_id: str, body: AuditAnchorBody,
                        state: RosterState, now_ms: int) -> str:
    """Check and keep one anchor (module docstring); returns `anchored`, `repeat`,
    `behind` or `conflict`, or raises `AnchorRefused` with nothing written."""
    try:
        key = state.verify_key(node_id, body.sig.key_id, now_ms)
        verify_head(key, node_id, body.seq, body.hash, body.signed_at, unb64u(body.sig.value))
    except ProtocolError as exc:
        raise AnchorRefused(exc.code, "anchor_bad_signature") from None
    held = (await conn.execute(
        select(anchors.c.seq, anchors.c.hash).where(anchors.c.node_id == node_id)
        .with_for_update()
    )).one_or_none()
    row = {"seq": body.seq, "hash": body.hash, "signed_at": body.signed_at,
           "key_id": body.sig.key_id, "signature": body.sig.value, "received_ts": now_ms}
    if held is None:
        await conn.execute(insert(anchors).values(node_id=node_id, **row))
        return "anchored"
    if body.seq < held.seq:
        return "behind"  # a late older anchor: signed, but the held one is newer
    if body.seq == held.seq:
        if body.hash == held.hash:
            return "repeat"
        log.warning("audit anchor conflict: %s signed two heads for entry %d", node_id, body.seq)
        await persist_alarms(conn, [Alarm(
            kind=CONFLICT_KIND, ts=now_ms, source=node_id,
            detail={"seq": body.seq, "held_hash": held.hash, "seen_hash": body.hash},
        )])
        return "conflict"
    await conn.execute(update(anchors).where(anchors.c.node_id == node_id).values(**row))
    return "anchored"


async def _get_anchor(request: web.Request) -> web.Response:
    app = request.app
    try:
        origin = verify_request(
            request.headers.get("Authorization"), method=request.method,
            path=request.raw_path, body=b"", me=app[SETTINGS].hub_id,
            now_ms=app[CLOCK].now_ms(), keys=app[FEDERATION].roster.state,
        )
    except ProtocolError as exc:
        raise from_protocol(exc) from None
    async with app[DB].read() as conn:
        row = (await conn.execute(
            select(anchors).where(anchors.c.node_id == origin)
        )).mappings().one_or_none()
    doc: dict[str, Any] | None = None
    if row is not None:
        doc = {"node_id": origin, "seq": row["seq"], "hash": row["hash"],
               "signed_at": row["signed_at"], "key_id": row["key_id"],
               "signature": row["signature"]}
    return web.json_response({"anchor": doc})


def setup(app: web.Application) -> None:
    """Listed in `hub.app.FEATURES`: the `audit_anchor` handler and the read-back route."""
    clock = app[CLOCK]
    fed = app[FEDERATION]

    async def on_anchor(conn: AsyncConnection, opened: Opened) -> None:
        body = opened.body
        assert isinstance(body, AuditAnchorBody)
        await accept_anchor(conn, node_id=opened.inner.from_, body=body, state=fed.roster.state,
                            now_ms=clock.now_ms())

    fed.register_handler(MessageType.AUDIT_ANCHOR, on_anchor)
    app.router.add_get(ANCHOR_PATH, _get_anchor)
