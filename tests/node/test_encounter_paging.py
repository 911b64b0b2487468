"""My encounters is paged with a count (issue 13 item 12): 83 encounters show as 1–50 of 83
and 51–83 of 83 with links both ways, through a real node on SQLite and PostgreSQL; a bad
page number is refused with a stable code and a sentence."""

from __future__ import annotations

import re

from tests.node.conftest import MakeNode, encounter
from tests.node.test_pages import HTML, log_in

ROW = re.compile(r'href="/encounters/[0-9a-f-]{36}"')


async def test_my_encounters_pages_with_a_count(make_node: MakeNode) -> None:
    node = await make_node()
    for i in range(83):
        status, _ = await node.post("sup1", "/api/v1/encounters", encounter(
            occurred_at=f"2026-06-{1 + i // 24:02d}T{i % 24:02d}:00:00Z", recipient=f"E-{i}"))
        assert status == 201
    await node.post("sup2", "/api/v1/encounters", encounter())  # someone else's: not counted
    await log_in(node, "sup1")
    r = await node.client.get("/encounters", headers=HTML)
    html = await r.text()
    assert r.status == 200
    assert re.search(r'id="page-count">1–50 of 83<', html)
    assert len(ROW.findall(html)) == 50
    assert 'href="/encounters?page=2"' in html and 'rel="prev"' not in html
    r = await node.client.get("/encounters?page=2", headers=HTML)
    html = await r.text()
    assert re.search(r'id="page-count">51–83 of 83<', html)
    assert len(ROW.findall(html)) == 33
    assert 'href="/encounters?page=1"' in html and 'rel="next"' not in html
    r = await node.client.get("/encounters?page=9", headers=HTML)  # past the end: the last
    assert "51–83 of 83" in await r.text()


async def test_bad_page_number_is_refused(make_node: MakeNode) -> None:
    node = await make_node()
    await log_in(node, "sup1")
    before = await node.count("audit_log")
    for bad in ("0", "-1", "two", "1e3"):
        r = await node.client.get(f"/encounters?page={bad}", headers=HTML)
        html = await r.text()
        assert r.status == 422 and 'data-code="invalid_input"' in html, bad
        assert "Page must be a whole number from 1." in html
    assert await node.count("audit_log") == before


async def test_favicon_is_served(make_node: MakeNode) -> None:
    node = await make_node(seed=False)
    r = await node.client.get("/favicon.ico")
    assert (r.status, r.content_type) == (200, "image/x-icon")
    assert (await r.read())[:4] == b"\x00\x00\x01\x00"
