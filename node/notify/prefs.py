"""A user's own notification preferences (every role may set its own).

Checks before anything is stored (`invalid_input`, `bad_email`, `bad_webhook_url`, all
naming the field): a channel needs its address; quiet hours come as both ends or neither.
A personal webhook gets a fresh `whsec_` secret when its URL is set or changed; the secret
is answered once and never shown again (nor logged, nor written to the audit log).
"""

from __future__ import annotations

import base64
import secrets
import uuid
from typing import Any

from sqlalchemy import delete, insert, select

from node.core import audit
from node.core.access import Principal
from node.core.context import NodeContext
from node.notify.addresses import check_email, check_webhook_url
from node.notify.db import PR
from node.notify.errors import NotifyCode, NotifyError
from node.notify.kinds import NotifyChannel
from node.notify.models import PrefsIn, PrefsOut

__all__ = ["get_prefs", "hhmm", "minutes", "new_secret", "set_prefs"]


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def minutes(v: str | None) -> int | None:
    if v is None:
        return None
    h, m = v.split(":")
    return int(h) * 60 + int(m)


def hhmm(v: int | None) -> str | None:
    return None if v is None else f"{v // 60:02d}:{v % 60:02d}"


def _out(row: Any, secret: str | None = None) -> PrefsOut:
    if row is None:
        return PrefsOut(email=None, channels=[], webhook_url=None, webhook_secret_set=False,
                        digest=False, quiet_start=None, quiet_end=None, urgent_in_quiet=False)
    return PrefsOut(
        email=row.email, channels=[NotifyChannel(c) for c in row.channels.split(",") if c],
        webhook_url=row.webhook_url, webhook_secret_set=row.webhook_secret is not None,
        webhook_secret=secret, digest=row.digest, quiet_start=hhmm(row.quiet_start),
        quiet_end=hhmm(row.quiet_end), urgent_in_quiet=row.urgent_in_quiet)


async def get_prefs(ctx: NodeContext, user_id: uuid.UUID) -> PrefsOut:
    async with ctx.db.read() as conn:
        row = (await conn.execute(select(PR).where(PR.c.user_id == user_id))).first()
    return _out(row)


def _check(ctx: NodeContext, data: PrefsIn) -> None:
    if data.email is not None:
        check_email(data.email)
    if data.webhook_url is not None:
        check_webhook_url(data.webhook_url, field="webhook_url",
                          allow_http_loopback=ctx.settings.notify_allow_http_loopback)
    if len(set(data.channels)) != len(data.channels):
        raise NotifyError(NotifyCode.INVALID_INPUT, "a channel is named twice", "channels")
    if NotifyChannel.EMAIL in data.channels and data.email is None:
        raise NotifyError(NotifyCode.INVALID_INPUT, "email needs an address", "email")
    if NotifyChannel.WEBHOOK in data.channels and data.webhook_url is None:
        raise NotifyError(NotifyCode.INVALID_INPUT, "webhook needs a URL", "webhook_url")
    if (data.quiet_start is None) != (data.quiet_end is None):
        raise NotifyError(NotifyCode.INVALID_INPUT, "give both ends of the quiet hours",
                          "quiet_end" if data.quiet_end is None else "quiet_start")


async def set_prefs(ctx: NodeContext, p: Principal, data: PrefsIn) -> PrefsOut:
    _check(ctx, data)
    now = ctx.now()
    async with ctx.db.write() as conn:
        old = (await conn.execute(select(PR).where(PR.c.user_id == p.user_id))).first()
        secret = old.webhook_secret if old is not None else None
        fresh = None
        if data.webhook_url is None:
            secret = None
        elif old is None or old.webhook_url != data.webhook_url or secret is None:
            secret = fresh = new_secret()
        await conn.execute(delete(PR).where(PR.c.user_id == p.user_id))
        await conn.execute(insert(PR).values(
            user_id=p.user_id, email=data.email,
            channels=",".join(sorted(c.value for c in data.channels)),
            webhook_url=data.webhook_url, webhook_secret=secret, digest=data.digest,
            quiet_start=minutes(data.quiet_start), quiet_end=minutes(data.quiet_end),
            urgent_in_quiet=data.urgent_in_quiet, updated_at=now))
        await audit.append(conn, ts=now, action="notify.prefs", actor=p,
                           target_type="user", target_id=p.user_id,
                           detail={"channels": sorted(c.value for c in data.channels),
                                   "digest": data.digest})
        row = (await conn.execute(select(PR).where(PR.c.user_id == p.user_id))).one()
    return _out(row, fresh)
