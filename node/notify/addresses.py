"""Checking where notifications may go: webhook URLs and mail addresses.

A webhook URL must be `https://` with a host and no credentials in it. Plain `http://` is
accepted only to a loopback host (localhost, 127.0.0.0/8, ::1) and only when the node's
configuration says it is a test or development setup (`notify_allow_http_loopback`): a
signed webhook over plain HTTP would hand the notification (and its replayable signature)
to anyone on the path. Refused with the stable code `bad_webhook_url`, before anything is
stored; the dispatcher checks again before each send, so a URL stored under a test
configuration is not used once the node runs without it.

Mail addresses are plain mailbox addresses (no display name, no CR/LF that could inject
a header), refused with `bad_email`.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from node.notify.errors import NotifyCode, NotifyError

__all__ = ["check_email", "check_webhook_url"]

_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}"
                    r"@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_webhook_url(url: str, *, allow_http_loopback: bool, field: str = "url") -> str:
    def bad(why: str) -> NotifyError:
        return NotifyError(NotifyCode.BAD_WEBHOOK_URL, why, field)

    if len(url) > 400 or any(c.isspace() or ord(c) < 32 for c in url):
        raise bad("the webhook URL is too long or has spaces in it")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a bad port
    except ValueError:
        raise bad("the webhook URL cannot be read") from None
    host = parts.hostname or ""
    if not host:
        raise bad("the webhook URL has no host")
    if parts.username is not None or parts.password is not None:
        raise bad("the webhook URL may not hold a user name or password")
    if parts.fragment:
        raise bad("the webhook URL may not have a #fragment")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and allow_http_loopback and _is_loopback(host):
        del port
        return url
    raise bad("a webhook URL must start with https://")


def check_email(address: str, field: str = "email") -> str:
    if len(address) > 254 or _EMAIL.fullmatch(address) is None:
        raise NotifyError(NotifyCode.BAD_EMAIL, "not a plain email address", field)
    return address
