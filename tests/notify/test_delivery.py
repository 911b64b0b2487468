"""Durable delivery through a real SMTP server and a real webhook receiver, on SQLite and
PostgreSQL: follow-up reminders queued as the injected clock passes, SMTP down (retried
with backoff, shown failing, delivered once when it returns, never twice), a webhook that
fails first and is retried with the same webhook-id, quiet hours and the daily digest."""

from __future__ import annotations

import logging
from typing import Any

from node.notify.schedule import backoff_ms
from tests.node.conftest import encounter
from tests.notify.conftest import Mailbox, Receiver, notifier, notify_settings

DAY = 86_400_000
HOUR = 3_600_000


async def _follow_up(node: Any, who: str, due: str, **kw: Any) -> dict[str, Any]:
    status, body = await node.post(who, "/api/v1/encounters", encounter(
        follow_up_due=due, follow_up_owner=str(node.users[who]), incident_ref="INC-77-SECRET",
        **kw))
    assert status == 201, body
    return body


async def _prefs(node: Any, who: str, **prefs: Any) -> dict[str, Any]:
    r = await node.client.put("/api/v1/notify/preferences", json=prefs,
                              headers=node.auth(who))
    body = await r.json()
    assert r.status == 200, body
    return dict(body)


async def _deliveries(node: Any, **q: str) -> list[dict[str, Any]]:
    status, body = await node.get("admin", "/api/v1/notify/deliveries", params=q)
    assert status == 200, body
    return list(body["items"])


async def test_smtp_down_is_retried_with_backoff_and_delivered_once(
        make_node: Any, mailbox: Mailbox, caplog: Any) -> None:
    node = await make_node(**notify_settings(mailbox))
    n = await notifier(node)
    await _prefs(node, "sup1", email="sup1@agency.example", channels=["email"])
    await _follow_up(node, "sup1", "2026-06-16")
    await mailbox.stop()
    caplog.set_level(logging.INFO)
    node.clock.advance(DAY)  # 2026-06-16 12:00: due today
    assert await n.run_once() == 1
    [d] = await _deliveries(node)
    assert (d["kind"], d["state"], d["attempts"], d["last_error"]) == (
        "follow_up_due", "failing", 1, "smtp_unavailable")
    assert d["recipient"] == "sup1"
    # Not due again before the backoff has passed; a second scan queues nothing new.
    node.clock.advance(backoff_ms(1) - 1000)
    assert await n.run_once(scan=True) == 0
    node.clock.advance(1000)
    assert await n.run_once() == 1
    [d] = await _deliveries(node)
    assert (d["state"], d["attempts"]) == ("failing", 2)
    # The admin page shows it failing, with a retry button.
    r = await node.client.get("/admin/notifications", headers={
        **node.auth("admin"), "Accept": "text/html"})
    page = await r.text()
    assert r.status == 200 and 'data-state="failing"' in page and "smtp_unavailable" in page
    assert "Retry now" in page
    # SMTP comes back: delivered at the next attempt, exactly once.
    await mailbox.start()
    node.clock.advance(backoff_ms(2))
    assert await n.run_once() == 1
    for _ in range(3):
        node.clock.advance(backoff_ms(12))
        await n.run_once(scan=True)
    assert len(mailbox.messages) == 1
    [(to, raw)] = mailbox.messages
    assert to == ["sup1@agency.example"]
    text = raw.decode()
    assert "Follow-up due" in text and "https://node.example.org/follow-ups" in text
    assert "INC-77-SECRET" not in text and "E-1234" not in text
    [d] = await _deliveries(node)
    assert (d["state"], d["attempts"], d["last_error"]) == ("sent", 3, None)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("peernet"))
    assert "smtp_unavailable" in logged and "sup1@agency.example" not in logged


async def test_overdue_follows_due_and_completion_drops_pending(
        make_node: Any, mailbox: Mailbox) -> None:
    node = await make_node(**notify_settings(mailbox))
    n = await notifier(node)
    await _prefs(node, "sup1", email="sup1@agency.example", channels=["email"])
    enc = await _follow_up(node, "sup1", "2026-06-16")
    node.clock.advance(DAY)
    await n.run_once()
    node.clock.advance(DAY)  # the day after: overdue
    await n.run_once()
    subjects = [t for t in mailbox.texts()]
    assert len(subjects) == 2 and "Follow-up overdue" in subjects[1]
    # A reminder still queued when the follow-up is completed is dropped.
    await mailbox.stop()
    enc2 = await _follow_up(node, "sup1", "2026-06-17")
    del enc2
    node.clock.advance(DAY)  # 06-18: enc2 overdue; enc overdue already reminded
    await n.run_once()
    failing = await _deliveries(node, state="failing")
    assert len(failing) == 1
    status, fus = await node.get("sup1", "/api/v1/follow-ups")
    assert status == 200
    fid = next(f["id"] for f in fus["items"] if f["due"] == "2026-06-17")
    status, _ = await node.post("sup1", f"/api/v1/follow-ups/{fid}/complete",
                                {"outcome": "done"})
    assert status == 200
    assert await _deliveries(node, state="failing") == []
    assert len(await _deliveries(node, state="cancelled")) == 1
    del enc


async def test_webhook_is_signed_retried_with_the_same_id(
        make_node: Any, mailbox: Mailbox, receiver: Receiver) -> None:
    node = await make_node(**notify_settings(mailbox))
    n = await notifier(node)
    body = await _prefs(node, "sup1", channels=["webhook"], webhook_url=receiver.hook("sup1"))
    assert body["webhook_secret"].startswith("whsec_") and body["webhook_secret_set"]
    receiver.secrets["sup1"] = body["webhook_secret"]
    again = await _prefs(node, "sup1", channels=["webhook"], webhook_url=receiver.hook("sup1"))
    assert again["webhook_secret"] is None and again["webhook_secret_set"]  # shown once
    await _follow_up(node, "sup1", "2026-06-16")
    receiver.fail_next = 1
    node.clock.advance(DAY)
    await n.run_once()
    [d] = await _deliveries(node)
    assert (d["state"], d["last_error"]) == ("failing", "webhook_status")
    node.clock.advance(backoff_ms(1))
    await n.run_once()
    assert [g["status"] for g in receiver.got] == [503, 200]
    assert receiver.got[0]["id"] == receiver.got[1]["id"]  # idempotent webhook-id
    [hook] = receiver.delivered()
    assert hook["body"]["type"] == "peernet.follow_up_due"
    assert hook["body"]["data"]["link"] == "https://node.example.org/follow-ups"
    assert b"INC-77-SECRET" not in hook["raw"] and receiver.refused == []


async def test_quiet_hours_hold_and_digest_groups(make_node: Any, mailbox: Mailbox) -> None:
    # Node time zone UTC; the clock starts 2026-06-15 12:00.
    node = await make_node(**notify_settings(mailbox, notify_digest_hour=7))
    n = await notifier(node)
    await _prefs(node, "sup1", email="sup1@agency.example", channels=["email"], digest=True)
    await _prefs(node, "sup2", email="sup2@agency.example", channels=["email"],
                 quiet_start="00:00", quiet_end="09:00")
    for due in ("2026-06-16", "2026-06-16"):
        await _follow_up(node, "sup1", due)
    await _follow_up(node, "sup2", "2026-06-16")
    node.clock.advance(12 * HOUR + 60_000)  # 06-16 00:01: due, inside sup2's quiet hours
    await n.run_once()
    assert mailbox.messages == []
    held = {d["recipient"]: d["held"] for d in await _deliveries(node)}
    assert held == {"sup1": "digest", "sup2": "quiet"}
    node.clock.advance(7 * HOUR)  # 07:01: the digest goes, sup2 still quiet
    await n.run_once()
    assert len(mailbox.messages) == 1
    [(to, raw)] = mailbox.messages
    assert to == ["sup1@agency.example"] and b"Daily digest: 2 follow-ups" in raw
    node.clock.advance(2 * HOUR)  # 09:01: quiet hours are over
    await n.run_once()
    assert [m[0] for m in mailbox.messages] == [["sup1@agency.example"],
                                               ["sup2@agency.example"]]


async def test_activation_request_breaks_quiet_hours_only_when_opted_in(
        make_node: Any, mailbox: Mailbox) -> None:
    from node.notify import queue
    from node.notify.kinds import NotifyKind

    node = await make_node(**notify_settings(mailbox))
    n = await notifier(node)
    await _prefs(node, "coord", email="coord@agency.example", channels=["email"],
                 quiet_start="12:00", quiet_end="18:00", urgent_in_quiet=True)
    await _prefs(node, "coord_b", email="coordb@agency.example", channels=["email"],
                 quiet_start="12:00", quiet_end="18:00")
    async with node.ctx.db.write() as conn:  # as the inbound request's transaction does
        queued = await queue.enqueue(conn, node.clock.now_ms(), NotifyKind.ACTIVATION_REQUEST,
                                     "msg:01TESTREQUEST", "/activations/01TESTREQUEST")
        again = await queue.enqueue(conn, node.clock.now_ms(), NotifyKind.ACTIVATION_REQUEST,
                                    "msg:01TESTREQUEST", "/activations/01TESTREQUEST")
    assert (queued, again) == (2, 0)  # the two coordinators; a repeat queues nothing
    await n.run_once()  # 12:00, inside both quiet windows
    assert [m[0] for m in mailbox.messages] == [["coord@agency.example"]]
    node.clock.advance(6 * HOUR)
    await n.run_once()
    assert [m[0] for m in mailbox.messages][1:] == [["coordb@agency.example"]]


async def test_queued_with_the_event_or_not_at_all(make_node: Any, mailbox: Mailbox) -> None:
    from node.notify import queue
    from node.notify.kinds import NotifyKind

    node = await make_node(**notify_settings(mailbox))
    await notifier(node)
    await _prefs(node, "coord", email="coord@agency.example", channels=["email"])
    try:
        async with node.ctx.db.write() as conn:
            assert await queue.enqueue(conn, node.clock.now_ms(), NotifyKind.ACTIVATION_REQUEST,
                                       "msg:01ROLLEDBACK", "/activations/01ROLLEDBACK") == 1
            raise RuntimeError("the event's transaction fails after queueing")
    except RuntimeError:
        pass
    assert await node.count("notify_events") == 0
    assert await node.count("notify_deliveries") == 0


async def test_background_loop_sends_without_being_asked(make_node: Any,
                                                         mailbox: Mailbox) -> None:
    import asyncio

    node = await make_node(**notify_settings(mailbox, notify_poll_s=0.05))
    await _prefs(node, "sup1", email="sup1@agency.example", channels=["email"])
    await _follow_up(node, "sup1", "2026-06-16")
    node.clock.advance(DAY)
    async with asyncio.timeout(10):
        while not mailbox.messages:
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # more passes: still one message
    assert len(mailbox.messages) == 1


async def test_retry_now_from_the_admin_page(make_node: Any, mailbox: Mailbox) -> None:
    node = await make_node(**notify_settings(mailbox))
    n = await notifier(node)
    await _prefs(node, "sup1", email="sup1@agency.example", channels=["email"])
    await _follow_up(node, "sup1", "2026-06-16")
    await mailbox.stop()
    node.clock.advance(DAY)
    await n.run_once()
    [d] = await _deliveries(node, state="failing")
    assert d["next_at"] > node.clock.now_ms()
    await mailbox.start()
    r = await node.client.post(f"/admin/notifications/{d['id']}/retry",
                               headers=node.auth("admin"), allow_redirects=False)
    assert r.status == 303
    await n.run_once()  # no clock change: the retry made it due now
    assert len(mailbox.messages) == 1
    r = await node.client.post(f"/api/v1/notify/deliveries/{d['id']}/retry",
                               headers=node.auth("admin"))
    body = await r.json()
    assert (r.status, body["error"]["code"]) == (409, "conflict")  # sent: nothing to retry
