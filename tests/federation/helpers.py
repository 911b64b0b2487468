"""Helpers for federation tests: a recording handler, raw envelopes and batches, row counts."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.keystore import NodeKeys
from federation.store import alarms, inbox, outbox
from hub.relay.forwarding import relay_queue
from protocol.batch import build_batch
from protocol.envelope import Opened, Sender, build_envelope
from protocol.ids import new_ulid
from protocol.messages import MessageType
from protocol.request_auth import sign_request
from tests.federation.network import HubHandle, Network, NodeHandle

# The simple test flow: `activation_decline` has the smallest body.
TEST_TYPE = MessageType.ACTIVATION_DECLINE
TEST_BODY = {"reason": "no_capacity"}


@dataclass
class Recorder:
    """A handler that records what it applied (msg ids), optionally refusing."""

    seen: list[str] = field(default_factory=list)
    refuse_with: Exception | None = None

    async def __call__(self, conn: AsyncConnection, opened: Opened) -> None:
        if self.refuse_with is not None:
            raise self.refuse_with
        self.seen.append(opened.inner.msg_id)


def sender_of(node: NodeHandle | HubHandle, keys: NodeKeys | None = None) -> Sender:
    k = keys or node.keys
    return Sender(node_id=node.node_id, key_version=k.key_version, signing_key=k.signing_key)


def envelope(
    net: Network,
    src: NodeHandle | HubHandle,
    dst: NodeHandle | HubHandle,
    *,
    msg_type: MessageType = TEST_TYPE,
    body: dict[str, Any] | None = None,
    ttl_ms: int = 3_600_000,
    created_ts: int | None = None,
    keys: NodeKeys | None = None,
    to: str | None = None,
    enc_key: bytes | None = None,
) -> bytes:
    now = net.clock.now_ms() if created_ts is None else created_ts
    state = src.fed.state
    return build_envelope(
        sender=sender_of(src, keys),
        to=to or dst.node_id,
        recipient_enc_key=enc_key or dst.keys.enc_public_bytes,
        msg_type=msg_type,
        body=body or TEST_BODY,
        msg_id=new_ulid(now, os.urandom(10)),
        created_ts=now,
        expires_ts=now + ttl_ms,
        roster=state.ref(),
    )


async def put_batch(
    origin: NodeHandle | HubHandle,
    dst_url: str,
    destination: str,
    envelopes: list[bytes],
    *,
    ts: int | None = None,
    body: bytes | None = None,
    keys: NodeKeys | None = None,
) -> tuple[int, Any]:
    """PUT a batch signed by `origin` for `destination`; (status, parsed JSON)."""
    k = keys or origin.keys
    raw = (
        body
        if body is not None
        else build_batch(envelopes)
        if len(envelopes) <= 50
        else (b'{"envelopes":[' + b",".join(envelopes) + b"]}")
    )
    path = "/fed/v1/send/" + new_ulid(origin.clock.now_ms(), os.urandom(10))
    auth = sign_request(
        signing_key=k.signing_key,
        key_version=k.key_version,
        method="PUT",
        path=path,
        origin=origin.node_id,
        destination=destination,
        ts=origin.clock.now_ms() if ts is None else ts,
        body=raw,
    )
    async with aiohttp.ClientSession() as http:
        async with http.put(dst_url + path, data=raw, headers={"Authorization": auth}) as resp:
            return resp.status, await resp.json()


async def counts(server: NodeHandle | HubHandle) -> dict[str, int]:
    tables = {"inbox": inbox, "outbox": outbox, "alarms": alarms}
    if isinstance(server, HubHandle):
        tables["relay"] = relay_queue
    out = {}
    async with server.fed.engine.connect() as conn:
        for name, t in tables.items():
            out[name] = int((await conn.execute(select(func.count()).select_from(t))).scalar_one())
    return out


async def outbox_rows(server: NodeHandle | HubHandle, msg_type: str | None = None) -> list[Any]:
    async with server.fed.engine.connect() as conn:
        q = select(outbox)
        if msg_type is not None:
            q = q.where(outbox.c.msg_type == msg_type)
        return list((await conn.execute(q.order_by(outbox.c.id))).all())


async def send(node: NodeHandle, to: str, body: dict[str, Any] | None = None, **kw: Any) -> str:
    async with node.db.write() as conn:
        return await node.fed.send(conn, to, TEST_TYPE, body or TEST_BODY, **kw)
