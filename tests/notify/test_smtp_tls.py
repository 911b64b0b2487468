"""Mail over STARTTLS with AUTH against a real aiosmtpd requiring both (a throwaway
certificate the node trusts through `smtp_ca_file`), the password only from the
environment: delivered; a wrong password or an untrusted certificate fails with its code
(retried, nothing delivered); the password never reaches the config file or the log."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from node.notify.schedule import backoff_ms
from tests.node.conftest import encounter
from tests.notify.conftest import SMTP_PASSWORD, SMTP_USER, Mailbox, notifier, notify_settings
from tests.notify.conftest import self_signed as make_cert

DAY = 86_400_000


async def _due_reminder(node: Any) -> None:
    r = await node.client.put("/api/v1/notify/preferences", headers=node.auth("sup1"),
                              json={"email": "sup1@agency.example", "channels": ["email"]})
    assert r.status == 200
    status, body = await node.post("sup1", "/api/v1/encounters", encounter(
        follow_up_due="2026-06-16", follow_up_owner=str(node.users["sup1"])))
    assert status == 201, body
    node.clock.advance(DAY)


async def test_untrusted_relay_certificate_fails_and_password_stays_out(
        make_node: Any, tmp_path: Path, monkeypatch: Any, caplog: Any) -> None:
    cert, key = make_cert(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(str(cert), str(key))
    box = Mailbox(tls=tls)
    await box.start()
    caplog.set_level(logging.DEBUG, logger="peernet")
    try:
        # untrusted certificate: refused before any password is sent
        monkeypatch.setenv("PEERNET_SMTP_PASSWORD", SMTP_PASSWORD)
        node = await make_node(**notify_settings(box, smtp_starttls=True, smtp_user=SMTP_USER))
        n = await notifier(node)
        assert "smtp_password" not in node.settings.to_toml()
        assert SMTP_PASSWORD not in node.settings.to_toml()
        await _due_reminder(node)
        await n.run_once()
        status, body = await node.get("admin", "/api/v1/notify/deliveries")
        assert [d["last_error"] for d in body["items"]] == ["smtp_tls"]
        assert box.messages == []
    finally:
        await box.stop()


async def test_starttls_auth_delivers_and_wrong_password_fails(
        make_node: Any, tmp_path: Path, monkeypatch: Any, caplog: Any) -> None:
    cert, key = make_cert(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(str(cert), str(key))
    box = Mailbox(tls=tls)
    await box.start()
    caplog.set_level(logging.DEBUG, logger="peernet")
    try:
        monkeypatch.setenv("PEERNET_SMTP_PASSWORD", "wrong-password")
        node = await make_node(**notify_settings(box, smtp_starttls=True, smtp_user=SMTP_USER,
                                                 smtp_ca_file=str(cert)))
        n = await notifier(node)
        await _due_reminder(node)
        await n.run_once()
        status, body = await node.get("admin", "/api/v1/notify/deliveries")
        assert [(d["state"], d["last_error"]) for d in body["items"]] == [
            ("failing", "smtp_auth")]
        assert box.messages == []
        # the relay's password corrected (as a restart with the right environment would)
        n.settings = n.settings.model_copy(update={"smtp_password": SecretStr(SMTP_PASSWORD)})
        node.clock.advance(backoff_ms(1))
        await n.run_once()
        assert [m[0] for m in box.messages] == [["sup1@agency.example"]]
        status, body = await node.get("admin", "/api/v1/notify/deliveries")
        assert [(d["state"], d["attempts"]) for d in body["items"]] == [("sent", 2)]
    finally:
        await box.stop()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert SMTP_PASSWORD not in logged and "wrong-password" not in logged
