"""Issue 17 item 4: my encounters and team follow-ups page with counts and filter by date,
status and discipline (pages and API), through a real node on SQLite and PostgreSQL;
the wrong role is refused, bad filters are refused with stable codes and append nothing."""

from __future__ import annotations

import re
from typing import Any

from tests.node.conftest import MakeNode, Node, encounter
from tests.node.test_pages import HTML, log_in

DAY = 86_400_000


def _count(html: str) -> str:
    m = re.search(r'id="page-count">([^<]*)<', html)
    assert m, html[-1500:]
    return m.group(1)


async def _seed(node: Node) -> dict[str, Any]:
    """sup1: 6 encounters over 3 days (fire/ems), follow-ups due on the 16th, 17th and 20th
    (the 16th's done); sup2: 2 (not sup1's). Today is 06-18 after seeding."""
    ids = {}
    plan = [("2026-06-13T09:00:00Z", "fire", "2026-06-16"),
            ("2026-06-13T10:00:00Z", "ems", "2026-06-17"),
            ("2026-06-14T09:00:00Z", "fire", None),
            ("2026-06-14T10:00:00Z", "fire", "2026-06-20"),
            ("2026-06-15T09:00:00Z", "ems", None),
            ("2026-06-15T10:00:00Z", "law_enforcement", None)]
    for i, (when, disc, due) in enumerate(plan):
        body = encounter(occurred_at=when, recipient_discipline=disc, recipient=f"E-{i}")
        if due:
            body["follow_up_due"] = due
        status, got = await node.post("sup1", "/api/v1/encounters", body)
        assert status == 201, got
        ids[i] = got["id"]
    for i in range(2):
        status, _ = await node.post("sup2", "/api/v1/encounters", encounter(
            recipient=f"F-{i}", follow_up_due="2026-06-19"))
        assert status == 201
    _, fus = await node.get("sup1", "/api/v1/follow-ups")
    done = next(f for f in fus["items"] if f["due"] == "2026-06-16")
    status, _ = await node.post("sup1", f"/api/v1/follow-ups/{done['id']}/complete", {})
    assert status == 200
    node.clock.advance(3 * DAY)  # 06-18: the 17th's follow-up is overdue now
    return ids


async def test_my_encounters_filter_with_counts(make_node: MakeNode) -> None:
    node = await make_node()
    await _seed(node)
    await log_in(node, "sup1")
    expect = {"": "1–6 of 6", "discipline=fire": "1–3 of 3",
              "since=2026-06-14": "1–4 of 4", "since=2026-06-14&until=2026-06-14": "1–2 of 2",
              "status=none": "1–3 of 3", "status=done": "1–1 of 1",
              "status=overdue": "1–1 of 1", "status=open": "1–1 of 1",
              "status=open&discipline=fire": "1–1 of 1",
              "discipline=fire&until=2026-06-13": "1–1 of 1"}
    for query, summary in expect.items():
        r = await node.client.get(f"/encounters?{query}", headers=HTML)
        html = await r.text()
        assert r.status == 200 and _count(html) == summary, query
        assert html.count('href="/encounters/') - html.count('href="/encounters/new"') == int(
            summary.split(" of ")[1]), query
    r = await node.client.get("/encounters?discipline=corrections", headers=HTML)
    assert 'id="none-match"' in await r.text()
    # The API: the same filters, `total` counts all matches, pages by cursor.
    status, body = await node.get("sup1", "/api/v1/encounters?discipline=fire&limit=2")
    assert status == 200 and body["total"] == 3 and len(body["items"]) == 2
    assert {e["recipient_discipline"] for e in body["items"]} == {"fire"}
    status, body = await node.get(
        "sup1", f"/api/v1/encounters?discipline=fire&limit=2&cursor={body['next_cursor']}")
    assert body["total"] == 3 and len(body["items"]) == 1 and body["next_cursor"] is None
    status, body = await node.get("sup1", "/api/v1/encounters?status=overdue")
    assert body["total"] == 1 and body["items"][0]["follow_up_status"] == "overdue"
    status, body = await node.get("coord", "/api/v1/encounters?scope=team&status=open")
    assert status == 200 and body["total"] == 3  # sup1's 1 and sup2's 2, due 06-19/20
    status, body = await node.get("coord_b", "/api/v1/encounters?scope=team")
    assert body["total"] == 0  # another team's coordinator sees none of them


async def test_team_follow_ups_filter_and_page(make_node: MakeNode) -> None:
    node = await make_node()
    await _seed(node)
    await log_in(node, "coord")
    expect = {"": "1–4 of 4", "status=active": "1–4 of 4", "status=any": "1–5 of 5",
              "status=overdue": "1–1 of 1", "status=open": "1–3 of 3",
              "status=done": "1–1 of 1", "status=any&discipline=ems": "1–1 of 1",
              "status=any&since=2026-06-19": "1–3 of 3",
              "status=any&until=2026-06-17": "1–2 of 2"}
    for query, summary in expect.items():
        r = await node.client.get(f"/team?{query}", headers=HTML)
        html = await r.text()
        assert r.status == 200 and _count(html) == summary, query
        assert html.count("data-follow-up=") == int(summary.split(" of ")[1]), query
    r = await node.client.get("/team?status=done", headers=HTML)
    html = await r.text()  # a closed one offers no reassignment
    assert 'data-status="done"' in html and "/reassign" not in html
    status, body = await node.get("coord", "/api/v1/follow-ups?scope=team&status=overdue")
    assert status == 200 and body["total"] == 1 and body["items"][0]["status"] == "overdue"
    status, body = await node.get("coord", "/api/v1/follow-ups?scope=team&limit=2")
    assert body["total"] == 5 and len(body["items"]) == 2 and body["next_cursor"] == "2"
    status, body = await node.get("sup1", "/api/v1/follow-ups?due_only=true")
    assert body["total"] == 1  # the overdue one (the done one is closed)


async def test_team_follow_ups_page_fifty_at_a_time(make_node: MakeNode) -> None:
    node = await make_node()
    for i in range(55):
        status, _ = await node.post("sup1", "/api/v1/encounters", encounter(
            recipient=f"E-{i}", follow_up_due="2026-06-20"))
        assert status == 201
    await log_in(node, "coord")
    r = await node.client.get("/team", headers=HTML)
    html = await r.text()
    assert _count(html) == "1–50 of 55" and html.count("data-follow-up=") == 50
    assert 'href="/team?page=2&amp;status=active"' in html
    r = await node.client.get("/team?page=2&status=active", headers=HTML)
    html = await r.text()
    assert _count(html) == "51–55 of 55" and html.count("data-follow-up=") == 5
    r = await node.client.get("/team?page=7", headers=HTML)  # past the end: the last one
    assert _count(await r.text()) == "51–55 of 55"


async def test_wrong_roles_and_bad_filters_are_refused(make_node: MakeNode) -> None:
    node = await make_node()
    await _seed(node)
    for who, path in (("admin", "/encounters"), ("audit", "/encounters"),
                      ("sup1", "/team"), ("admin", "/team"), ("audit", "/team")):
        r = await node.client.get(path, headers=node.auth(who))
        assert r.status == 403 and (await r.json())["error"]["code"] == "forbidden", (who, path)
    status, body = await node.get("sup1", "/api/v1/follow-ups?scope=team&status=open")
    assert (status, body["error"]["code"]) == (403, "forbidden")
    status, body = await node.get("sup1", "/api/v1/encounters?scope=team&discipline=fire")
    assert (status, body["error"]["code"]) == (403, "forbidden")
    before = await node.count("audit_log")
    await log_in(node, "coord")
    before = await node.count("audit_log")
    bad = [("since=2026-02-30", "invalid_input", "since"),
           ("since=2026-06-20&until=2026-06-10", "invalid_input", "until"),
           ("status=lost", "invalid_enum", "status"),
           ("discipline=astronaut", "invalid_enum", "discipline"),
           ("name=someone", "unknown_field", "name"),
           ("page=0", "invalid_input", "page")]
    for query, code, field in bad:
        for path in ("/encounters", "/team"):
            r = await node.client.get(f"{path}?{query}", headers=HTML)
            assert r.status == 422 and f'data-code="{code}"' in await r.text(), (path, query)
        api = f"/api/v1/encounters?{query}" if "page" not in query else None
        if api and "name" not in query:
            status, body = await node.get("coord", api)
            assert (status, body["error"]["code"], body["error"]["field"]) == (
                422, code, field), (query, body)
            status, body = await node.get("coord", f"/api/v1/follow-ups?{query}")
            assert (status, body["error"]["code"], body["error"]["field"]) == (
                422, code, field), (query, body)
    assert await node.count("audit_log") == before
