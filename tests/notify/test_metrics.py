"""Notification failures on `/metrics` (issue 18: "notification failures"): a delivery to a
down SMTP server shows as failing, then as sent once SMTP is back (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from node.notify.schedule import backoff_ms
from tests.node.conftest import encounter
from tests.notify.conftest import Mailbox, notifier, notify_settings

DAY = 86_400_000
TOKEN = "notify-metrics-token-0123456789"  # noqa: S105


async def _figures(node: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = await node.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(await r.text()) for s in f.samples}


async def test_failing_notifications_are_counted_until_delivered(
        make_node: Any, mailbox: Mailbox) -> None:
    node = await make_node(**notify_settings(mailbox), metrics_token=TOKEN)
    n = await notifier(node)
    r = await node.client.put("/api/v1/notify/preferences", headers=node.auth("sup1"),
                              json={"email": "sup1@agency.example", "channels": ["email"]})
    assert r.status == 200
    status, _ = await node.post("sup1", "/api/v1/encounters", encounter(
        follow_up_due="2026-06-16", follow_up_owner=str(node.users["sup1"])))
    assert status == 201
    figs = await _figures(node)
    assert figs[("peernet_notification_failures", ())] == 0
    await mailbox.stop()
    node.clock.advance(DAY)
    assert await n.run_once() == 1
    figs = await _figures(node)
    assert figs[("peernet_notification_failures", ())] == 1
    assert figs[("peernet_notifications", (("channel", "email"), ("state", "failing")))] == 1
    await mailbox.start()
    node.clock.advance(backoff_ms(1))
    assert await n.run_once() == 1
    figs = await _figures(node)
    assert figs[("peernet_notification_failures", ())] == 0
    assert figs[("peernet_notifications", (("channel", "email"), ("state", "sent")))] == 1
    assert ("peernet_notifications", (("channel", "email"), ("state", "failing"))) not in figs
