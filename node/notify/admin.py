"""What an admin sees and does: the on-duty list and the delivery queue with its failures.

- The on-duty list: shared mailboxes and paging / CAD webhooks, each subscribed to kinds.
  A webhook endpoint gets its own `whsec_` secret, answered once at creation.
- The queue: every delivery not yet sent (pending, held, failing, dead) and the latest
  sent ones, with attempts, the next attempt and the last error code; `retry` makes a
  failing or dead delivery due now (one more attempt).

Admins see who a delivery is for (a username or an endpoint label) and its kind, never
the content of what it is about (there is none to show: see `node.notify.kinds`).
Every change is audited without addresses or secrets.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert, select, update

from node.core import audit
from node.core.access import Principal
from node.core.context import NodeContext
from node.core.db import User, table_of
from node.notify.addresses import check_email, check_webhook_url
from node.notify.db import EP, D
from node.notify.errors import NotifyCode, NotifyError
from node.notify.kinds import DeliveryState, NotifyChannel, NotifyKind
from node.notify.models import DeliveryOut, EndpointIn, EndpointOut, RetryOut
from node.notify.prefs import new_secret

__all__ = ["add_endpoint", "deliveries", "endpoints", "remove_endpoint", "retry"]

U = table_of(User)
_LIST_LIMIT = 200


def _endpoint(row: Any, secret: str | None = None) -> EndpointOut:
    return EndpointOut(id=str(row.id), label=row.label, channel=NotifyChannel(row.channel),
                       target=row.target, kinds=[NotifyKind(k) for k in row.kinds.split(",") if k],
                       active=row.active, created_at=row.created_at, secret=secret)


async def endpoints(ctx: NodeContext) -> list[EndpointOut]:
    async with ctx.db.read() as conn:
        rows = (await conn.execute(select(EP).where(EP.c.active.is_(True))
                                   .order_by(EP.c.created_at, EP.c.label))).all()
    return [_endpoint(r) for r in rows]


async def add_endpoint(ctx: NodeContext, p: Principal, data: EndpointIn) -> EndpointOut:
    if data.channel is NotifyChannel.WEBHOOK:
        check_webhook_url(data.target, field="target",
                          allow_http_loopback=ctx.settings.notify_allow_http_loopback)
        secret: str | None = new_secret()
    else:
        check_email(data.target, field="target")
        secret = None
    eid, now = uuid.uuid4(), ctx.now()
    async with ctx.db.write() as conn:
        await conn.execute(insert(EP).values(
            id=eid, label=data.label, channel=data.channel.value, target=data.target,
            secret=secret, kinds=",".join(sorted({k.value for k in data.kinds})), active=True,
            created_at=now))
        await audit.append(conn, ts=now, action="notify.endpoint_add", actor=p,
                           target_type="notify_endpoint", target_id=eid,
                           detail={"channel": data.channel.value})
        row = (await conn.execute(select(EP).where(EP.c.id == eid))).one()
    return _endpoint(row, secret)


async def remove_endpoint(ctx: NodeContext, p: Principal, eid: uuid.UUID) -> None:
    """Deactivate (kept for the delivery history); its queued deliveries are dropped."""
    now = ctx.now()
    async with ctx.db.write() as conn:
        res = await conn.execute(update(EP).where(EP.c.id == eid, EP.c.active.is_(True))
                                 .values(active=False, secret=None))
        if res.rowcount != 1:
            raise NotifyError(NotifyCode.NOT_FOUND, "no such endpoint", "id")
        await conn.execute(update(D).where(
            D.c.recipient == f"endpoint:{eid}",
            D.c.state.in_([DeliveryState.PENDING.value, DeliveryState.FAILING.value,
                           DeliveryState.DEAD.value]))
            .values(state=DeliveryState.CANCELLED.value, last_error="no_endpoint"))
        await audit.append(conn, ts=now, action="notify.endpoint_remove", actor=p,
                           target_type="notify_endpoint", target_id=eid)


async def deliveries(ctx: NodeContext, state: DeliveryState | None = None,
                     upto: int = _LIST_LIMIT) -> list[DeliveryOut]:
    """Not yet sent first (failures on top), then the latest sent; the first `upto`."""
    async with ctx.db.read() as conn:
        q = select(D)
        if state is not None:
            q = q.where(D.c.state == state.value).order_by(D.c.created_at.desc(), D.c.id)
        else:
            q = q.where(D.c.state != DeliveryState.CANCELLED.value).order_by(
                (D.c.state == DeliveryState.SENT.value), D.c.attempts.desc(), D.c.created_at.desc(),
                D.c.id)
        rows = (await conn.execute(q.limit(upto))).all()
        names = {f"user:{r.id}": r.username
                 for r in (await conn.execute(select(U.c.id, U.c.username))).all()}
        names.update({f"endpoint:{r.id}": r.label
                      for r in (await conn.execute(select(EP.c.id, EP.c.label))).all()})
    return [DeliveryOut(
        id=str(r.id), kind=NotifyKind(r.kind), recipient=names.get(r.recipient, "(removed)"),
        channel=NotifyChannel(r.channel), state=DeliveryState(r.state), attempts=r.attempts,
        next_at=r.next_at, held=r.held, last_error=r.last_error, created_at=r.created_at,
        sent_at=r.sent_at) for r in rows]


async def retry(ctx: NodeContext, p: Principal, did: uuid.UUID) -> RetryOut:
    """Make a failing or dead delivery (and the rest of its batch) due now."""
    now = ctx.now()
    async with ctx.db.write() as conn:
        row = (await conn.execute(select(D).where(D.c.id == did))).first()
        if row is None:
            raise NotifyError(NotifyCode.NOT_FOUND, "no such delivery", "id")
        if row.state not in (DeliveryState.FAILING.value, DeliveryState.DEAD.value):
            raise NotifyError(NotifyCode.CONFLICT, f"this delivery is {row.state}", "id")
        same = D.c.batch == row.batch if row.batch is not None else D.c.id == did
        await conn.execute(update(D).where(same, D.c.state.in_(
            [DeliveryState.FAILING.value, DeliveryState.DEAD.value])).values(
            state=DeliveryState.FAILING.value, next_at=now))
        await audit.append(conn, ts=now, action="notify.retry", actor=p,
                           target_type="notify_delivery", target_id=did)
    return RetryOut(id=str(did), state=DeliveryState.FAILING, next_at=now)
