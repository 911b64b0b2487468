"""Sending one message: mail over SMTP (aiosmtplib) and signed webhooks (Standard Webhooks).

Each function answers None when the message was accepted, else a stable failure code the
dispatcher stores and shows (never the server's text, which may echo an address):

- mail: `smtp_not_configured`, `smtp_unavailable` (cannot connect, dropped, timed out),
  `smtp_auth` (login refused), `smtp_refused` (the relay refused sender or recipient),
  `smtp_tls` (STARTTLS required but not offered, or the certificate is not trusted);
- webhook: `bad_webhook_url`, `webhook_unreachable`, `webhook_timeout`, `webhook_status`
  (any answer but 2xx; redirects are not followed).

The mail password comes from `PEERNET_SMTP_PASSWORD` and a webhook secret from its row;
neither is logged. STARTTLS is required when `smtp_starttls` is on (the default): aiosmtplib
refuses to go on in clear when the relay does not offer it. `webhook-timestamp` is the wall
clock (a receiver checks it against its own), not the injected clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from datetime import UTC, datetime

import aiohttp
import aiosmtplib
from standardwebhooks import Webhook

from node.core.config import NodeSettings
from node.notify.addresses import check_webhook_url
from node.notify.errors import NotifyError
from node.notify.message import Outgoing

__all__ = ["send_mail", "send_webhook"]

log = logging.getLogger("peernet.node.notify")
TIMEOUT_S = 10.0


def _tls(settings: NodeSettings) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if settings.smtp_ca_file is not None:
        ctx.load_verify_locations(cafile=str(settings.smtp_ca_file))
    return ctx


async def send_mail(settings: NodeSettings, out: Outgoing, to: str) -> str | None:
    if not settings.smtp_host:
        return "smtp_not_configured"
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    try:
        await aiosmtplib.send(
            out.email(settings.notify_from, to), hostname=settings.smtp_host,
            port=settings.smtp_port, username=settings.smtp_user or None,
            password=password if settings.smtp_user else None,
            start_tls=settings.smtp_starttls, use_tls=False,
            tls_context=_tls(settings) if settings.smtp_starttls else None,
            timeout=TIMEOUT_S,
        )
    except aiosmtplib.SMTPAuthenticationError:
        return "smtp_auth"
    except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPSenderRefused,
            aiosmtplib.SMTPDataError):
        return "smtp_refused"
    except (ssl.SSLError, aiosmtplib.SMTPException) as exc:
        if isinstance(exc, ssl.SSLError) or "STARTTLS" in str(exc) or "TLS" in str(exc):
            return "smtp_tls"
        return "smtp_unavailable"
    except (OSError, TimeoutError):
        return "smtp_unavailable"
    return None


async def send_webhook(session: aiohttp.ClientSession, settings: NodeSettings, out: Outgoing,
                       url: str, secret: str, wall_ms: int) -> str | None:
    try:
        check_webhook_url(url, allow_http_loopback=settings.notify_allow_http_loopback)
    except NotifyError:
        return "bad_webhook_url"
    body = json.dumps(out.webhook_body(wall_ms), separators=(",", ":")).encode()
    ts = datetime.fromtimestamp(wall_ms // 1000, UTC)
    headers = {
        "webhook-id": out.webhook_id,
        "webhook-timestamp": str(wall_ms // 1000),
        "webhook-signature": Webhook(secret).sign(out.webhook_id, ts, body),
        "content-type": "application/json",
        "user-agent": "peernet-notify/1",
    }
    try:
        async with asyncio.timeout(TIMEOUT_S):
            async with session.post(url, data=body, headers=headers,
                                    allow_redirects=False) as resp:
                await resp.read()
                if 200 <= resp.status < 300:
                    return None
                log.info("webhook answered %d for notification %s", resp.status,
                         out.webhook_id)
                return "webhook_status"
    except TimeoutError:
        return "webhook_timeout"
    except (aiohttp.ClientError, OSError):
        return "webhook_unreachable"
