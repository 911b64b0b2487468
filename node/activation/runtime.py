"""Wiring activations into the node's federation runtime.

`install(app, fed, ...)` builds the `ActivationContext` over a `FederationService`-like
object (its `send`, its live roster `state` and `hub_id`), registers one inbox handler per
activation message type plus `followup_handoff`, stores the context under
`activation_api.ACTIVATIONS`, and starts the expiry sweep.

Inbound handlers run inside the inbox transaction and its per-message savepoint: an
`ActivationError` (or any refusal) rolls back that message's changes and is acked as
refused with the wire code `bad_body` (the specific activation code goes to the log). A
federation refusal raised while applying (e.g. `unknown_node` while reporting) keeps its
own code.

The roster is read live (`fed.state` each time): a new roster version changes the target
list and the activation rules at once. Before any roster is accepted, nobody may be asked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.clock import Clock
from federation.errors import FederationError
from federation.sending import Outgoing
from federation.worker import stop_task
from node.activation import ending, handoff, transfer
from node.activation.api import ACTIVATIONS
from node.activation.context import (
    ActivationContext,
    DirectoryEntry,
    Message,
    derive_note_key,
)
from node.activation.errors import ActivationCode, ActivationError
from node.activation.inbound import ACTIVATION_TYPES, Inbound, apply_inbound
from node.activation.interstate_directory import CompactDirectory
from node.core import audit
from node.core.appkeys import DB
from protocol.encoding import unb64u
from protocol.envelope import Opened
from protocol.messages import MessageType

__all__ = [
    "SWEEP_INTERVAL_S",
    "FederationLike",
    "LiveDirectory",
    "handler_for",
    "inbound_of",
    "install",
    "sweep",
]

log = logging.getLogger("peernet.node.activations")
_FOLLOW_UP_TYPES = frozenset({
    MessageType.FOLLOWUP_HANDOFF, MessageType.FOLLOWUP_TRANSFER,
    MessageType.FOLLOWUP_TRANSFER_REPLY,
})
SWEEP_INTERVAL_S = 30.0


class FederationLike(Protocol):
    hub_id: str | None

    @property
    def state(self) -> Any: ...

    async def send(
        self, conn: Any, to: str, msg_type: MessageType, body: Any,
        thread_id: str | None = None, in_reply_to: str | None = None,
    ) -> str: ...

    def register_handler(
        self, msg_type: MessageType, handler: Callable[[AsyncConnection, Opened], Awaitable[None]]
    ) -> None: ...


class LiveDirectory:
    """The roster directory read through `state()` on every call."""

    def __init__(self, state: Callable[[], Any]) -> None:
        self._state = state

    def nodes(
        self, *, discipline: str | None = None, region: str | None = None, role: Any = None
    ) -> Sequence[DirectoryEntry]:
        out: Sequence[DirectoryEntry] = self._state().nodes(
            discipline=discipline, region=region, role=role
        )
        return out

    def has_node(self, node_id: str) -> bool:
        return bool(self._state().has_node(node_id))

    def may_request(self, requester: str, responder: str) -> bool:
        try:
            return bool(self._state().may_request(requester, responder))
        except FederationError:  # no roster yet: nobody may be asked
            return False

    def hubs(self) -> Sequence[DirectoryEntry]:
        out: Sequence[DirectoryEntry] = self._state().hubs()
        return out

    def is_revoked(self, node_id: str) -> bool:
        """Every current signing key of `node_id` is in the roster's revocation list."""
        state = self._state()
        keys = state.sign_keys_of(node_id) or {}
        revoked = state.require().roster.revoked_keys()
        return bool(keys) and all(unb64u(k) in revoked for k in keys.values())


def _sender(fed: FederationLike) -> Any:
    async def send(
        session: Any, to: str, msg_type: MessageType, body: dict[str, Any],
        thread_id: str | None = None, in_reply_to: str | None = None,
    ) -> str:
        try:
            return await fed.send(session, to, msg_type, body, thread_id, in_reply_to)
        except FederationError as exc:
            # e.g. `unknown_node` or `no_roster`: a refusal of this operation, not a crash
            raise ActivationError(ActivationCode.BAD_TARGET, exc.message, "to") from None

    return send


def _many_sender(fed: FederationLike) -> Any:
    send_many = getattr(fed, "send_many", None)
    if send_many is None:
        return None

    async def send(session: Any, messages: Sequence[Message]) -> list[str]:
        try:
            ids: list[str] = await send_many(
                session, [Outgoing(m[0], m[1], m[2], m[3], m[4] if len(m) > 4 else None)
                          for m in messages]
            )
        except FederationError as exc:
            raise ActivationError(ActivationCode.BAD_TARGET, exc.message, "to") from None
        return ids

    return send


def _stager(fed: FederationLike) -> Any:
    stage_many = getattr(fed, "stage_many", None)
    if stage_many is None:
        return None

    def stage(session: Any, messages: Sequence[Message]) -> list[dict[str, Any]]:
        try:
            rows: list[dict[str, Any]] = stage_many(
                session, [Outgoing(m[0], m[1], m[2], m[3], m[4] if len(m) > 4 else None)
                          for m in messages]
            )
        except FederationError as exc:
            raise ActivationError(ActivationCode.BAD_TARGET, exc.message, "to") from None
        return rows

    return stage


def _interstate(fed: FederationLike) -> tuple[str | None, CompactDirectory | None]:
    """This node's network id and its view of the other member networks, when the
    federation service carries the interstate layer (`FederationService.interstate`)."""
    inter = getattr(fed, "interstate", None)
    if inter is None:
        return None, None
    refresh = getattr(fed, "refresh_interstate_soon", None)
    return str(inter.network_id), CompactDirectory(lambda: getattr(fed, "foreign", None),
                                                   refresh=refresh)


def make_context(
    fed: FederationLike, *, node_id: str, clock: Clock, enc_private_key: bytes
) -> ActivationContext:
    network_id, interstate = _interstate(fed)
    return ActivationContext(
        node_id=node_id,
        clock=clock,
        directory=LiveDirectory(lambda: fed.state),
        send=_sender(fed),
        note_key=derive_note_key(enc_private_key),
        hub_id=fed.hub_id,
        send_many=_many_sender(fed),
        stage_many=_stager(fed),
        network_id=network_id,
        interstate=interstate,
    )


def inbound_of(opened: Opened) -> Inbound:
    inner = opened.inner
    return Inbound(
        msg_type=inner.type, msg_id=inner.msg_id, sender=inner.from_,
        created_ts=inner.created_ts, thread_id=inner.thread_id,
        in_reply_to=inner.in_reply_to, body=opened.body,
    )


async def _audit_transfer(conn: AsyncConnection, ctx: ActivationContext, m: Inbound,
                          action: str, transfer_id: str, outcome: str,
                          reason: str | None = None) -> None:
    """An inbound transfer message in the audit chain, in the inbox transaction (so a
    refused message leaves no entry): ids, the agency, the outcome; never the note."""
    detail: dict[str, Any] = {"agency": m.sender, "msg_id": m.msg_id, "outcome": outcome}
    if reason is not None:
        detail["reason"] = reason
    await audit.append(conn, ts=ctx.now(), action=action,
                       target_type="transfer", target_id=transfer_id, detail=detail)


def handler_for(ctx: ActivationContext) -> Callable[[AsyncConnection, Opened], Awaitable[None]]:
    """The inbox handler of every activation type and `followup_handoff`."""

    async def handle(conn: AsyncConnection, opened: Opened) -> None:
        m = inbound_of(opened)
        if m.msg_type is MessageType.FOLLOWUP_HANDOFF:
            await handoff.apply_handoff(conn, ctx, m)
        elif m.msg_type is MessageType.FOLLOWUP_TRANSFER:
            await transfer.apply_transfer(conn, ctx, m)
            await _audit_transfer(conn, ctx, m, "transfer.received", m.msg_id, "pending")
        elif m.msg_type is MessageType.FOLLOWUP_TRANSFER_REPLY:
            await transfer.apply_reply(conn, ctx, m)
            await _audit_transfer(conn, ctx, m, "transfer.reply_received", m.body.transfer_id,
                                  m.body.outcome.value,
                                  reason=m.body.reason.value if m.body.reason else None)
        else:
            await apply_inbound(conn, ctx, m)

    return handle


def register_handlers(fed: FederationLike, ctx: ActivationContext) -> None:
    handle = handler_for(ctx)
    for msg_type in sorted(ACTIVATION_TYPES | _FOLLOW_UP_TYPES):
        fed.register_handler(msg_type, handle)


async def sweep(app: web.Application) -> int:
    """Expire what is due now (the background task calls this; tests call it directly)."""
    ctx = app[ACTIVATIONS]
    async with app[DB].write() as conn:
        n = await ending.expire_due(conn, ctx)
        return n + await transfer.expire_transfers(conn, ctx)


async def _sweeper(app: web.Application, interval_s: float) -> None:
    while True:
        try:
            await sweep(app)
        except Exception:
            log.exception("activation expiry sweep failed")
        await asyncio.sleep(interval_s)


def install(
    app: web.Application, fed: FederationLike, *, node_id: str, clock: Clock,
    enc_private_key: bytes, sweep_interval_s: float | None = SWEEP_INTERVAL_S,
) -> ActivationContext:
    """Register the handlers and the context on `app`; start the sweep with the app."""
    ctx = make_context(fed, node_id=node_id, clock=clock, enc_private_key=enc_private_key)
    register_handlers(fed, ctx)
    app[ACTIVATIONS] = ctx
    if sweep_interval_s is not None:
        interval = sweep_interval_s

        async def sweeper_ctx(app: web.Application) -> AsyncIterator[None]:
            task = asyncio.create_task(_sweeper(app, interval))
            try:
                yield
            finally:
                await stop_task(task)

        app.cleanup_ctx.append(sweeper_ctx)
    return ctx
