from __future__ import annotations

import re
from typing import Any

from tests.node.conftest import PASSWORD, MakeNode, Node

HTML = {"Accept": "text/html"}


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


async def log_in(node: Node, who: str) -> str:
    r = await node.client.get("/login", headers=HTML)
    token = csrf_of(await r.text())
    r = await node.client.post("/login", data={"csrf": token, "username": who,
                                               "password": PASSWORD},
                               headers=HTML, allow_redirects=False)
    assert r.status == 303, await r.text()
    cookie = r.cookies["peernet_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    r = await node.client.get("/encounters/new" if who.startswith("sup") else "/", headers=HTML)
    return csrf_of(await r.text())


def form(csrf: str, **kw: Any) -> dict[str, Any]:
    data = {"csrf": csrf, "recipient": "E-77", "intervention": "defusing",
            "recipient_discipline": "ems", "duration_bucket": "<15m", "follow_up_in": "1",
            "notice_given": "on", "occurred_at": "2026-06-15T11:00",
            "recipient_category": "own_agency", "activation_type": "self", "referral": "none"}
    data.update(kw)
    return data


async def test_supporter_logs_an_encounter_through_the_form(make_node: MakeNode) -> None:
    node = await make_node()
    csrf = await log_in(node, "sup1")
    r = await node.client.post("/encounters", data=form(csrf), headers=HTML)
    assert r.status == 200
    text = await r.text()
    assert "Saved." in text and "due 2026-06-16" in text
    assert "E-77" not in text
    r = await node.client.get("/follow-ups", headers=HTML)
    assert "Defusing" in await r.text()
    assert await node.count("encounters") == 1


async def test_forms_refuse_missing_csrf_and_free_text(make_node: MakeNode) -> None:
    node = await make_node()
    csrf = await log_in(node, "sup1")
    before = await node.count("audit_log")
    r = await node.client.post("/encounters", data=form("wrong"), headers=HTML)
    assert r.status == 403 and 'data-code="csrf_failed"' in await r.text()
    r = await node.client.post("/api/v1/encounters", json={}, headers={})
    assert r.status == 403 and (await r.json())["error"]["code"] == "csrf_failed"
    assert await node.count("audit_log") == before + 2
    r = await node.client.post("/encounters", data=form(csrf, narrative="long story"),
                               headers=HTML)
    assert r.status == 422 and 'data-code="unknown_field"' in await r.text()
    r = await node.client.post("/encounters", data=form(csrf, intervention="hug"),
                               headers=HTML)
    assert r.status == 422 and 'data-code="invalid_enum"' in await r.text()
    assert await node.count("encounters") == 0


async def test_login_refuses_wrong_password_and_throttles(make_node: MakeNode) -> None:
    node = await make_node()
    r = await node.client.get("/login", headers=HTML)
    token = csrf_of(await r.text())
    statuses = []
    for _ in range(6):
        r = await node.client.post("/login", data={"csrf": token, "username": "sup1",
                                                   "password": "nope-nope-nope"}, headers=HTML)
        statuses.append(r.status)
    assert statuses == [401] * 5 + [429]
    r = await node.client.post("/login", data={"csrf": token, "username": "sup1",
                                               "password": PASSWORD}, headers=HTML)
    assert r.status == 429  # still locked out even with the right password
    node.clock.advance(16 * 60_000)
    r = await node.client.post("/login", data={"csrf": token, "username": "sup1",
                                               "password": PASSWORD}, headers=HTML,
                               allow_redirects=False)
    assert r.status == 303
    r = await node.client.post("/login", data={"username": "sup1", "password": PASSWORD},
                               headers=HTML)
    assert r.status == 403


async def test_every_page_renders_for_its_role(make_node: MakeNode) -> None:
    node = await make_node()
    csrf = await log_in(node, "sup1")
    await node.client.post("/encounters", data=form(csrf), headers=HTML)
    pages = {"coord": ["/team", "/leadership", "/encounters", "/follow-ups"],
             "admin": ["/admin/users"], "audit": ["/leadership"]}
    for who, paths in pages.items():
        node.client.session.cookie_jar.clear()
        await log_in(node, who)
        for path in paths:
            r = await node.client.get(path, headers=HTML)
            assert r.status == 200, (who, path)
            assert r.headers["Content-Security-Policy"].startswith("default-src 'self'")
            assert r.headers["X-Frame-Options"] == "DENY"
