"""Issue 17 item 4: the auditor's audit-log page (filters, the offline verify result with its
truncation note, CSV/JSON export) and the coordinators' disclosures page, through a real
node on SQLite and PostgreSQL; other roles and bad filters are refused with stable codes
and nothing is appended or stored."""

from __future__ import annotations

import csv
import io
import json
import re

from sqlalchemy import text

from bench.reliability_report import record
from node.auditlog.pages import TRUNCATION_NOTE
from node.core.audit import entry_bytes
from protocol.encoding import sha256_b64u
from tests.node.conftest import MakeNode, Node, encounter
from tests.node.test_pages import HTML, log_in

DAY = 86_400_000


async def _seed(node: Node) -> str:
    """sup1 logs 3 encounters on day 0 and amends one; sup2 logs 2 on day 2."""
    ids = []
    for i in range(3):
        status, body = await node.post("sup1", "/api/v1/encounters", encounter(
            recipient=f"E-{i}"))
        assert status == 201
        ids.append(body["id"])
    status, _ = await node.post("sup1", f"/api/v1/encounters/{ids[0]}/amendments",
                                {"intervention": "defusing"})
    assert status == 201
    node.clock.advance(2 * DAY)
    for i in range(2):
        status, _ = await node.post("sup2", "/api/v1/encounters", encounter(
            occurred_at="2026-06-17T10:00:00Z", recipient=f"F-{i}"))
        assert status == 201
    return str(ids[0])


def _count(html: str) -> str:
    m = re.search(r'id="page-count">([^<]*)<', html)
    assert m, html[:800]
    return m.group(1)


async def test_auditor_filters_the_log_and_sees_the_verify_result(make_node: MakeNode) -> None:
    node = await make_node()
    await _seed(node)
    await log_in(node, "audit")
    r = await node.client.get("/audit", headers=HTML)
    html = await r.text()
    assert r.status == 200
    m = re.search(r'<section class="card" id="verify".*?</section>', html, re.S)
    assert m and 'data-ok="yes"' in m.group(0), m.group(0) if m else html[:2000]
    assert TRUNCATION_NOTE.split(":")[0] in html
    assert "checked only against the hub&#39;s anchor" in html
    total = await node.count("audit_log")
    assert _count(html) == f"1–{total} of {total}"
    r = await node.client.get("/audit?actor=sup1", headers=HTML)
    assert _count(await r.text()) == "1–4 of 4"  # 3 creates and 1 amendment
    r = await node.client.get("/audit?actor=sup1&action=encounter.amend", headers=HTML)
    html = await r.text()
    assert _count(html) == "1–1 of 1" and "encounter.amend" in html
    r = await node.client.get("/audit?action=encounter.", headers=HTML)
    assert _count(await r.text()) == "1–6 of 6"
    r = await node.client.get("/audit?since=2026-06-17&until=2026-06-17&action=encounter.create",
                              headers=HTML)
    assert _count(await r.text()) == "1–2 of 2"  # sup2's, two days later
    r = await node.client.get("/audit?until=2026-06-16&action=encounter.create", headers=HTML)
    assert _count(await r.text()) == "1–3 of 3"
    # A tampered entry shows on the page as the CLI would name it.
    async with node.ctx.db.write() as conn:
        await conn.execute(text("UPDATE audit_log SET outcome = 'refused' WHERE seq = 9"))
    r = await node.client.get("/audit", headers=HTML)
    html = await r.text()
    assert 'data-ok="no"' in html and 'data-problem="altered"' in html
    assert "Broken at entry 9" in html


async def test_audit_log_pages_fifty_at_a_time(make_node: MakeNode) -> None:
    node = await make_node()
    for i in range(60):
        status, _ = await node.post("sup1", "/api/v1/encounters", encounter(recipient=f"E-{i}"))
        assert status == 201
    await log_in(node, "audit")
    r = await node.client.get("/audit?action=encounter.create", headers=HTML)
    html = await r.text()
    assert _count(html) == "1–50 of 60" and len(re.findall(r"data-seq=", html)) == 50
    assert 'href="/audit?page=2&amp;action=encounter.create"' in html
    r = await node.client.get("/audit?action=encounter.create&page=2", headers=HTML)
    html = await r.text()
    assert _count(html) == "51–60 of 60" and len(re.findall(r"data-seq=", html)) == 10


async def test_export_downloads_csv_and_json_and_is_audited(make_node: MakeNode) -> None:
    node = await make_node()
    await _seed(node)
    before = await node.count("audit_log")
    r = await node.client.get("/audit/export?format=csv", headers=node.auth("audit"))
    assert r.status == 200 and r.content_type == "text/csv"
    assert r.headers["Content-Disposition"].startswith(
        'attachment; filename="peernet-audit-test-fire-')
    rows = list(csv.DictReader(io.StringIO(await r.text())))
    assert len(rows) == before + 1  # the export's own entry is in it
    assert [int(x["seq"]) for x in rows] == list(range(1, before + 2))
    assert all(rows[i]["prev_hash"] == rows[i - 1]["hash"] for i in range(1, len(rows)))
    for x in rows:  # each row re-hashes to its hash by the chain rule (node.core.audit)
        entry = {"seq": int(x["seq"]), "ts": int(x["ts_ms"]), "prev_hash": x["prev_hash"],
                 **{k: x[k] or None for k in ("actor", "role", "action", "target_type",
                                               "target_id", "outcome")}, "detail": x["detail"]}
        assert sha256_b64u(entry_bytes(entry)) == x["hash"], x["seq"]
    assert rows[-1]["action"] == "audit.export" and rows[-1]["actor_username"] == "audit"
    assert json.loads(rows[-1]["detail"]) == {"count": before, "format": "csv"}
    r = await node.client.get("/audit/export?format=json&actor=sup2",
                              headers=node.auth("audit"))
    assert r.status == 200 and r.content_type == "application/json"
    doc = json.loads(await r.text())
    assert doc["node_id"] == "test-fire"
    assert [e["action"] for e in doc["entries"]] == ["encounter.create"] * 2
    assert {e["actor_username"] for e in doc["entries"]} == {"sup2"}
    r = await node.client.get("/audit/export?format=csv&actor=nobody-else",
                              headers=node.auth("audit"))
    assert r.status == 422
    status, log = await node.get("audit", f"/api/v1/audit?after_seq={before}")
    assert [x["action"] for x in log["items"]] == ["audit.export", "audit.export"]
    assert log["items"][1]["detail"] == {"count": 2, "format": "json"}


async def test_wrong_roles_and_bad_filters_are_refused(make_node: MakeNode) -> None:
    node = await make_node()
    await _seed(node)
    before = await node.count("audit_log")
    for who in ("sup1", "coord", "admin"):
        for path in ("/audit", "/audit/export?format=csv"):
            r = await node.client.get(path, headers=node.auth(who))
            assert r.status == 403 and (await r.json())["error"]["code"] == "forbidden"
    assert await node.count("audit_log") == before + 6  # each refusal audited
    before = await node.count("audit_log")
    bad = [("since=2026-13-01", "invalid_input", "since"),
           ("since=2026-06-20&until=2026-06-10", "invalid_input", "until"),
           ("actor=nobody", "invalid_input", "actor"),
           ("actor=DROP%20TABLE", "invalid_input", "actor"),
           ("action=x'--", "invalid_input", "action"),
           ("page=0", "invalid_input", "page"),
           ("color=red", "unknown_field", "color"),
           ("format=xml", "invalid_enum", "format")]
    for query, code, field in bad:
        path = "/audit/export" if "format" in query else "/audit"
        r = await node.client.get(f"{path}?{query}", headers=node.auth("audit"))
        body = await r.json()
        assert r.status == 422 and (body["error"]["code"], body["error"]["field"]) == (
            code, field), (query, body)
    assert await node.count("audit_log") == before
    record("security-audit-page-roles", area="security",
           case="only the auditor reads the audit-log page and downloads its export",
           how="real node; a peer supporter, a coordinator and an admin GET /audit and "
               "/audit/export; the auditor sends malformed dates, an unknown actor, a "
               "quoted action, an unknown parameter and format",
           result="403 forbidden for the other roles (each audited); 422 with a stable "
                  "code naming the parameter for bad filters, nothing appended")


async def test_disclosures_page_for_coordinators_only(make_node: MakeNode) -> None:
    node = await make_node()
    for day in ("2026-06-01", "2026-06-10"):
        status, _ = await node.post("coord", "/api/v1/disclosures", {
            "category": "mandated_report", "occurred_on": day, "notice_given": True})
        assert status == 201
    status, _ = await node.post("coord_b", "/api/v1/disclosures", {
        "category": "consent", "occurred_on": "2026-06-02", "notice_given": False})
    csrf = await log_in(node, "coord")
    before = await node.count("audit_log")
    r = await node.client.get("/disclosures", headers=HTML)
    html = await r.text()
    assert r.status == 200 and _count(html) == "1–2 of 2"
    assert html.count("data-disclosure=") == 2 and "Mandated report" in html
    assert "Consent</strong>" not in html  # team b's stays with team b
    status, log = await node.get("audit", f"/api/v1/audit?after_seq={before}")
    assert [(x["action"], x["detail"]) for x in log["items"]] == [
        ("disclosure.list", {"count": 2})]
    r = await node.client.post("/disclosures", data={
        "csrf": csrf, "category": "court_order", "occurred_on": "2026-06-14",
        "notice_given": "on"}, headers=HTML, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/disclosures?recorded=1"
    assert await node.count("disclosures") == 4
    for data, code in (({"category": "gossip", "occurred_on": "2026-06-14"}, "invalid_enum"),
                       ({"category": "consent", "occurred_on": "2026-07-14"}, "invalid_input"),
                       ({"category": "consent", "occurred_on": "2026-06-14",
                         "name": "someone"}, "unknown_field")):
        r = await node.client.post("/disclosures", data={"csrf": csrf, **data}, headers=HTML)
        assert r.status == 422 and f'data-code="{code}"' in await r.text(), data
    r = await node.client.post("/disclosures", data={
        "csrf": "wrong", "category": "consent", "occurred_on": "2026-06-14"}, headers=HTML)
    assert r.status == 403 and 'data-code="csrf_failed"' in await r.text()
    assert await node.count("disclosures") == 4
    for who in ("sup1", "admin", "audit"):
        r = await node.client.get("/disclosures", headers=node.auth(who))
        assert r.status == 403 and (await r.json())["error"]["code"] == "forbidden"
        r = await node.client.post("/disclosures", headers=node.auth(who), data={
            "category": "consent", "occurred_on": "2026-06-14"})
        assert r.status == 403
    assert await node.count("disclosures") == 4
