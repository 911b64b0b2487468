"""Fixtures for notification tests: a real SMTP server (aiosmtpd, optionally with STARTTLS
and AUTH over a throwaway certificate), a real HTTP receiver that verifies every webhook
with `standardwebhooks`, and nodes (tests.node.conftest's `make_node`) configured for them."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from node.notify.dispatch import Notifier
from node.notify.runtime import NOTIFIER
from tests.node.conftest import PASSWORD, Node, make_node  # noqa: F401 (fixture)

__all__ = ["Mailbox", "Receiver", "notifier"]

SMTP_USER = "relay-user"
SMTP_PASSWORD = "relay-secret-Zq81"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.box.messages.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"


def _auth(user: str, password: str) -> Any:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = (isinstance(data, LoginPassword) and data.login == user.encode()
              and data.password == password.encode())
        return AuthResult(success=ok, handled=False)
    return check


@dataclass
class Mailbox:
    """A real SMTP server on 127.0.0.1 that can be stopped and started again (same port)."""

    port: int = field(default_factory=free_port)
    tls: ssl.SSLContext | None = None
    messages: list[tuple[list[str], bytes]] = field(default_factory=list)
    _ctl: Controller | None = None

    async def start(self) -> None:
        kw: dict[str, Any] = {}
        if self.tls is not None:
            kw = {"tls_context": self.tls, "require_starttls": True, "auth_required": True,
                  "authenticator": _auth(SMTP_USER, SMTP_PASSWORD)}
        self._ctl = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **kw)
        await asyncio.to_thread(self._ctl.start)

    async def stop(self) -> None:
        if self._ctl is not None:
            ctl, self._ctl = self._ctl, None
            await asyncio.to_thread(ctl.stop)

    def texts(self) -> list[str]:
        return [raw.decode("utf-8", "replace") for _, raw in self.messages]


@pytest.fixture
async def mailbox() -> Any:
    box = Mailbox()
    await box.start()
    yield box
    await box.stop()


def self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "smtp.crt", tmp / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Receiver:
    """A real HTTP server taking webhooks at /hook/{name}; each one is verified with the
    secret registered for `name` (standardwebhooks) before it counts."""

    url: str = ""
    secrets: dict[str, str] = field(default_factory=dict)
    got: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    fail_next: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        raw = await request.read()
        if self.fail_next > 0:
            self.fail_next -= 1
            self.got.append({"name": name, "status": 503, "id": request.headers.get(
                "webhook-id"), "raw": raw})
            return web.Response(status=503)
        try:
            body = Webhook(self.secrets[name]).verify(raw, dict(request.headers))
        except (WebhookVerificationError, KeyError):
            self.refused.append(name)
            return web.Response(status=401)
        self.got.append({"name": name, "status": 200, "id": request.headers["webhook-id"],
                         "body": body, "raw": raw})
        return web.Response(status=204)

    def delivered(self, name: str | None = None) -> list[dict[str, Any]]:
        return [g for g in self.got if g["status"] == 200 and name in (None, g["name"])]

    def hook(self, name: str) -> str:
        return f"{self.url}/hook/{name}"


@pytest.fixture
async def receiver(aiohttp_server: Any) -> Receiver:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook/{name}", rec.handle)
    server = await aiohttp_server(app)
    rec.url = str(server.make_url("")).rstrip("/")
    return rec


def notify_settings(box: Mailbox, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"smtp_host": "127.0.0.1", "smtp_port": box.port,
                           "smtp_starttls": False, "notify_allow_http_loopback": True,
                           "notify_poll_s": 3600, "public_url": "https://node.example.org",
                           "notify_from": "peernet@node.example.org"}
    out.update(kw)
    return out


async def notifier(node: Node | web.Application) -> Notifier:
    """The node's sender with its background loop stopped: the test runs the passes."""
    app = node if isinstance(node, web.Application) else node.client.server.app
    n = app[NOTIFIER]
    if n.loop is not None:
        await n.loop.stop()
        n.loop = None
    return n


def payloads(box: Mailbox, rec: Receiver) -> list[str]:
    return box.texts() + [g["raw"].decode() for g in rec.got] + [
        json.dumps(g.get("body")) for g in rec.got]
