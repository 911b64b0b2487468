"""Refusals with stable codes, nothing stored changed: webhook URLs that are not https (or
http to loopback in a test/dev configuration), malformed preferences, the wrong role on the
admin page and API, a retry of something that did not fail."""

from __future__ import annotations

from typing import Any

import pytest

from bench.reliability_report import record
from tests.notify.conftest import Mailbox, notify_settings
from tests.security.conftest import snapshot

BAD_URLS = [
    "http://hooks.example.org/x",  # plain http off loopback
    "ftp://hooks.example.org/x",
    "https://user:pw@hooks.example.org/x",  # credentials in the URL
    "https:///nohost",
    "https://hooks.example.org/x#frag",
    "https://hooks.example.org/a b",
    "https://hooks.example.org:99999/x",
    "javascript:alert(1)",
    "hooks.example.org/x",
]


def _engine(node: Any) -> Any:
    return node.ctx.db.engine


async def _unchanged(node: Any, before: dict[str, int]) -> None:
    after = await snapshot(_engine(node))
    assert {k for k in after if after[k] != before[k]} == set()


async def test_bad_webhook_urls_are_refused(make_node: Any, mailbox: Mailbox) -> None:
    node = await make_node(**notify_settings(mailbox, notify_allow_http_loopback=False))
    before = await snapshot(_engine(node))
    tried = 0
    for url in [*BAD_URLS, "http://127.0.0.1:9/x", "http://localhost/x"]:
        r = await node.client.put("/api/v1/notify/preferences", headers=node.auth("sup1"),
                                  json={"channels": ["webhook"], "webhook_url": url})
        body = await r.json()
        assert (r.status, body["error"]["code"], body["error"]["field"]) == (
            422, "bad_webhook_url", "webhook_url"), (url, body)
        r = await node.client.post("/api/v1/notify/endpoints", headers=node.auth("admin"),
                                   json={"label": "CAD", "channel": "webhook", "target": url,
                                         "kinds": ["activation_request"]})
        body = await r.json()
        assert (r.status, body["error"]["code"], body["error"]["field"]) == (
            422, "bad_webhook_url", "target"), (url, body)
        tried += 2
    await _unchanged(node, before)
    record("bad-input-notify-webhook-url", area="bad-input",
           case="webhook URLs that are not https",
           how="plain http, other schemes, credentials, fragments, spaces, bad ports, no host; "
               "http to loopback without the test/dev setting; as a user's webhook and as an "
               "on-duty endpoint",
           result="422 bad_webhook_url naming the field; no table changed",
           figures={"attempts": tried})


async def test_http_to_loopback_only_in_test_config(make_node: Any, mailbox: Mailbox) -> None:
    node = await make_node(**notify_settings(mailbox))  # notify_allow_http_loopback=True
    r = await node.client.put("/api/v1/notify/preferences", headers=node.auth("sup1"),
                              json={"channels": ["webhook"], "webhook_url": "http://127.0.0.1:9/x"})
    assert r.status == 200
    r = await node.client.put("/api/v1/notify/preferences", headers=node.auth("sup1"),
                              json={"channels": ["webhook"],
                                    "webhook_url": "http://10.1.2.3/x"})
    assert r.status == 422 and (await r.json())["error"]["code"] == "bad_webhook_url"


@pytest.mark.parametrize(("body", "status", "code", "field"), [
    ({"channels": ["sms"]}, 422, "invalid_enum", "channels"),
    ({"channels": ["email"]}, 422, "invalid_input", "email"),
    ({"channels": ["webhook"]}, 422, "invalid_input", "webhook_url"),
    ({"email": "not an address", "channels": ["email"]}, 422, "bad_email", "email"),
    ({"email": "a@b.example\r\nBcc: x@y.example"}, 422, "bad_email", "email"),
    ({"quiet_start": "25:00", "quiet_end": "07:00"}, 422, "invalid_input", "quiet_start"),
    ({"quiet_start": "22:00"}, 422, "invalid_input", "quiet_end"),
    ({"note": "call Pat about the crash"}, 422, "unknown_field", "note"),
    ({"channels": ["email", "email"], "email": "a@b.example"}, 422, "invalid_input",
     "channels"),
    ({"digest": "sometimes"}, 422, "invalid_input", "digest"),
])
async def test_malformed_preferences_are_refused(
        make_node: Any, mailbox: Mailbox, body: dict[str, Any], status: int, code: str,
        field: str) -> None:
    node = await make_node(**notify_settings(mailbox))
    before = await snapshot(_engine(node))
    r = await node.client.put("/api/v1/notify/preferences", headers=node.auth("sup1"),
                              json=body)
    got = await r.json()
    assert (r.status, got["error"]["code"], got["error"]["field"]) == (status, code, field)
    r = await node.client.put("/api/v1/notify/preferences", headers=node.auth("sup1"),
                              data=b"{not json", )
    assert r.status in (400, 422)
    await _unchanged(node, before)


async def test_preferences_form_refuses_and_saves(make_node: Any, mailbox: Mailbox) -> None:
    node = await make_node(**notify_settings(mailbox))
    html = {**node.auth("sup1"), "Accept": "text/html"}  # a token needs no CSRF field
    r = await node.client.get("/notifications", headers=html)
    assert r.status == 200 and 'name="quiet_start"' in await r.text()
    before = await snapshot(_engine(node))
    r = await node.client.post("/notifications", data={"channels": "email", "email": "nope"},
                               headers=html)
    assert r.status == 422 and 'data-code="bad_email"' in await r.text()
    r = await node.client.post("/notifications", data={"quiet_start": "22:00"}, headers=html)
    assert r.status == 422 and 'data-code="invalid_input"' in await r.text()
    await _unchanged(node, before)
    r = await node.client.post("/notifications", headers=html, data={
        "channels": "email", "email": "sup1@agency.example",
        "quiet_start": "22:00", "quiet_end": "06:30", "urgent_in_quiet": "yes"})
    assert r.status == 200 and "Saved." in await r.text()
    status, prefs = await node.get("sup1", "/api/v1/notify/preferences")
    assert prefs["channels"] == ["email"] and prefs["quiet_end"] == "06:30"
    assert prefs["urgent_in_quiet"] is True and prefs["digest"] is False


async def test_admin_page_and_api_refuse_other_roles(make_node: Any, mailbox: Mailbox) -> None:
    node = await make_node(**notify_settings(mailbox))
    for who in ("coord", "sup1", "audit"):
        before = await snapshot(_engine(node))
        for method, path in (("GET", "/admin/notifications"),
                             ("GET", "/api/v1/notify/deliveries"),
                             ("GET", "/api/v1/notify/endpoints"),
                             ("POST", "/api/v1/notify/endpoints"),
                             ("POST", f"/api/v1/notify/deliveries/{node.users['sup1']}/retry")):
            r = await node.client.request(method, path, headers=node.auth(who), json={})
            assert r.status == 403, (who, path)
            assert (await r.json())["error"]["code"] == "forbidden"
        after = await snapshot(_engine(node))
        assert {k for k in after if after[k] != before[k]} <= {"audit_log", "audit_head"}
    r = await node.client.get("/admin/notifications", headers=node.auth("admin"))
    assert r.status == 200
    # retrying what does not exist or did not fail
    r = await node.client.post(f"/api/v1/notify/deliveries/{node.users['sup1']}/retry",
                               headers=node.auth("admin"))
    assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"
    r = await node.client.post("/api/v1/notify/deliveries/not-a-uuid/retry",
                               headers=node.auth("admin"))
    assert r.status == 404
