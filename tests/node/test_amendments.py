"""Issue 17 item 4: a mistaken encounter is corrected by an audited amendment, through a
real node on SQLite and PostgreSQL: the original stays in the chain (its create entry, and
the old values bound by the amendment's digest), verify still passes, the history shows who,
when and which fields; the wrong people and bad input are refused with stable codes and
nothing stored changes; only the retention purge removes amendments (with the encounter)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from sqlalchemy import select, text

from bench.reliability_report import record
from node.core.audit_verify import verify
from node.records.amendment_history import AM
from node.records.amendments import amendment_digest
from tests.node.conftest import MakeNode, Node, encounter
from tests.node.test_pages import HTML, log_in


async def _log(node: Node, who: str = "sup1", **kw: Any) -> str:
    status, body = await node.post(who, "/api/v1/encounters", encounter(**kw))
    assert status == 201, body
    return str(body["id"])


async def _snapshot(node: Node) -> tuple[Any, ...]:
    async with node.ctx.db.read() as conn:
        rows = (await conn.execute(text(
            "SELECT id, updated_at, occurred_at, intervention, recipient_discipline, "
            "recipient_ref, topics, referral, incident_ref, notice_given, "
            "supporter_was_witness FROM encounters ORDER BY id"))).all()
        amendments = (await conn.execute(text(
            "SELECT count(*) FROM encounter_amendments"))).scalar_one()
    return tuple(map(tuple, rows)), amendments


async def _verify_ok(node: Node) -> None:
    async with node.ctx.db.write() as conn:  # as the node's signer does
        from node.core import audit
        await audit.sign_head(conn, node.keys, node.settings.node_id, node.clock.now_ms())
    async with node.ctx.db.read() as conn:
        rep = await verify(conn, node.keys, node.settings.node_id, now_ms=node.clock.now_ms(),
                           sign_interval_ms=5000)
    assert rep.ok, rep


async def test_amendment_is_audited_and_the_chain_still_verifies(make_node: MakeNode) -> None:
    node = await make_node()
    eid = await _log(node, follow_up_due="2026-06-18")
    _, before = await node.get("sup1", f"/api/v1/encounters/{eid}")
    assert before["amendments"] == []
    node.clock.advance(60_000)
    status, body = await node.post("sup1", f"/api/v1/encounters/{eid}/amendments", {
        "intervention": "defusing", "recipient_discipline": "ems", "recipient": "E-9999",
        "topics": ["grief", "family"], "referral": "eap"})
    assert status == 201, body
    assert body["amended_fields"] == ["intervention", "recipient", "recipient_discipline",
                                      "referral", "topics"]
    e = body["encounter"]
    assert (e["intervention"], e["recipient_discipline"], e["referral"]) == (
        "defusing", "ems", "eap")
    assert e["recipient_ref"] != before["recipient_ref"] and e["topics"] == ["family", "grief"]
    assert e["created_at"] == before["created_at"] and e["updated_at"] > before["updated_at"]
    assert "E-9999" not in json.dumps(body)
    # The coordinator of the creator's team may amend too (and clear a nullable field).
    status, body = await node.post("coord", f"/api/v1/encounters/{eid}/amendments",
                                   {"referral": None, "duration_bucket": "1-2h"})
    assert status == 201, body
    # Reading shows the current values and the history: who, when, which fields.
    status, got = await node.get("sup1", f"/api/v1/encounters/{eid}")
    assert status == 200 and got["referral"] is None and got["duration_bucket"] == "1-2h"
    history = got["amendments"]
    assert [h["amended_by_username"] for h in history] == ["sup1", "coord"]
    assert history[1]["fields"] == ["duration_bucket", "referral"]
    assert set(history[0]) == {"id", "amended_by", "amended_by_username", "amended_at",
                               "fields"}
    # The chain: the create entry is still there, each amendment has its own entry whose
    # digest binds the stored original values.
    status, log = await node.get("audit", "/api/v1/audit?limit=500")
    mine = [x for x in log["items"] if x["target_id"] == eid]
    assert [x["action"] for x in mine] == ["encounter.create", "encounter.amend",
                                           "encounter.amend"]
    first = mine[1]["detail"]
    assert first["fields"] == ["intervention", "recipient", "recipient_discipline",
                               "referral", "topics"]
    async with node.ctx.db.read() as conn:
        row = (await conn.execute(select(AM).where(
            AM.c.id == uuid.UUID(first["amendment"])))).one()
    assert amendment_digest(first["amendment"], row.nonce, row.old_values,
                            row.new_values) == first["digest"]
    assert row.old_values not in json.dumps(log)
    old = json.loads(row.old_values)
    assert (old["intervention"], old["recipient_discipline"], old["referral"]) == (
        "one_on_one", "fire", None)
    assert old["recipient_ref"] == before["recipient_ref"]
    assert "E-9999" not in json.dumps(log)
    await _verify_ok(node)
    status, rep = await node.get("audit", "/api/v1/audit/verify")
    assert status == 200 and rep["ok"], rep
    # Lists carry no history (null): a single read does.
    _, listed = await node.get("sup1", "/api/v1/encounters")
    assert listed["items"][0]["amendments"] is None


async def test_wrong_people_are_refused_and_nothing_changes(make_node: MakeNode) -> None:
    node = await make_node()
    eid = await _log(node)
    before = await _snapshot(node)
    audit_before = await node.count("audit_log")
    change = {"intervention": "debriefing"}
    for who in ("sup2", "coord_b", "sup_b"):  # not the creator, not the team's coordinator
        status, body = await node.post(who, f"/api/v1/encounters/{eid}/amendments", change)
        assert (status, body["error"]["code"]) == (403, "forbidden"), who
    for who in ("admin", "audit"):  # roles that never touch encounter detail
        status, body = await node.post(who, f"/api/v1/encounters/{eid}/amendments", change)
        assert (status, body["error"]["code"]) == (403, "forbidden"), who
    assert await _snapshot(node) == before
    status, log = await node.get("audit", f"/api/v1/audit?after_seq={audit_before}")
    assert [x["action"] for x in log["items"]] == ["access.refused"] * 5
    assert all(x["outcome"] == "refused" for x in log["items"])
    status, body = await node.post("sup1", "/api/v1/encounters/"
                                   "00000000-0000-4000-8000-000000000000/amendments", change)
    assert (status, body["error"]["code"]) == (404, "not_found")
    record("security-amendment-roles", area="security",
           case="only an encounter's creator or their team's coordinator can amend it",
           how="real node; another supporter of the team, another team's coordinator and "
               "supporter, an admin and an auditor POST an amendment",
           result="403 forbidden for all five, each refusal audited; encounter row and "
                  "amendments unchanged")


async def test_bad_amendments_are_refused_with_stable_codes(make_node: MakeNode) -> None:
    node = await make_node()
    eid = await _log(node, follow_up_due="2026-06-16")
    before = await _snapshot(node)
    audit_before = await node.count("audit_log")
    path = f"/api/v1/encounters/{eid}/amendments"
    cases: list[tuple[dict[str, Any], str, str | None]] = [
        ({}, "invalid_input", None),
        ({"narrative": "what they said"}, "unknown_field", "narrative"),
        ({"intervention": "hug"}, "invalid_enum", "intervention"),
        ({"intervention": None}, "invalid_input", "intervention"),
        ({"notice_given": None}, "invalid_input", "notice_given"),
        ({"topics": ["gossip"]}, "invalid_enum", "topics"),
        ({"incident_ref": "a sentence about someone"}, "invalid_input", "incident_ref"),
        ({"occurred_at": "2026-06-16T12:00:00Z"}, "invalid_input", "occurred_at"),
        ({"occurred_at": "2026-06-15T11:30:00"}, "invalid_input", "occurred_at"),
        ({"recipient": "unknown"}, "placeholder_identifier", "recipient"),
        ({"intervention": "one_on_one"}, "invalid_input", None),  # nothing changes
        ({"supporter_was_witness": True}, "invalid_input", "supporter_was_witness"),
        ({"follow_up_due": "2026-06-20"}, "unknown_field", "follow_up_due"),
    ]
    for body, code, field in cases:
        status, got = await node.post("sup1", path, body)
        assert status in (400, 422), (body, got)
        assert (got["error"]["code"], got["error"]["field"]) == (code, field), (body, got)
    node.clock.advance(3 * 86_400_000)  # the follow-up is due 06-16: moving the encounter
    status, got = await node.post("sup1", path, {"occurred_at": "2026-06-17T09:00:00Z"})
    assert (status, got["error"]["code"], got["error"]["field"]) == (
        422, "invalid_input", "occurred_at")
    r = await node.client.post(path, data=b"not json", headers={
        **node.auth("sup1"), "Content-Type": "application/json"})
    assert r.status == 400 and (await r.json())["error"]["code"] == "malformed"
    assert await _snapshot(node) == before
    assert await node.count("audit_log") == audit_before
    record("bad-input-amendment", area="bad-input",
           case="a bad encounter amendment is refused with a stable code, nothing stored",
           how="real node; empty body, free-text field, values outside the vocabularies, "
               "null for a required field, future or naive time, placeholder recipient, "
               "no change, witness owning the follow-up, time after the due date, not JSON",
           result="422 invalid_input / unknown_field / invalid_enum / placeholder_identifier "
                  "naming the field (400 malformed); encounter, amendments and audit log "
                  "unchanged", figures={"cases": len(cases) + 2})


async def test_amend_form_corrects_an_encounter_on_a_phone(make_node: MakeNode) -> None:
    node = await make_node()
    eid = await _log(node)
    csrf = await log_in(node, "sup1")
    r = await node.client.get(f"/encounters/{eid}/amend", headers=HTML)
    html = await r.text()
    assert r.status == 200 and 'id="amend-form"' in html
    assert re.search(r'name="intervention" value="one_on_one"\s+checked', html)
    data = {"csrf": csrf, "occurred_at": "2026-06-15T11:30", "duration_bucket": "15-30m",
            "activation_type": "self", "intervention": "debriefing",
            "recipient_discipline": "fire", "recipient_category": "own_agency",
            "topics": "work_stress", "referral": "none", "incident_ref": "",
            "notice_given": "on", "recipient": ""}
    before = await _snapshot(node)
    r = await node.client.post(f"/encounters/{eid}/amend", data={**data, "csrf": "nope"},
                               headers=HTML)
    assert r.status == 403 and 'data-code="csrf_failed"' in await r.text()
    r = await node.client.post(f"/encounters/{eid}/amend",
                               data={**data, "intervention": "hug"}, headers=HTML)
    assert r.status == 422 and 'data-code="invalid_enum"' in await r.text()
    r = await node.client.post(f"/encounters/{eid}/amend", data={**data,
                               "intervention": "one_on_one"}, headers=HTML)
    assert r.status == 422 and 'data-code="invalid_input"' in await r.text()  # no change
    assert await _snapshot(node) == before
    r = await node.client.post(f"/encounters/{eid}/amend", data=data, headers=HTML,
                               allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == f"/encounters/{eid}?amended=1"
    r = await node.client.get(f"/encounters/{eid}?amended=1", headers=HTML)
    html = await r.text()
    assert 'id="amended"' in html and 'id="amendments"' in html
    assert "Type of support" in html and "sup1" in html
    _, got = await node.get("sup1", f"/api/v1/encounters/{eid}")
    assert got["intervention"] == "debriefing" and got["amendments"][0]["fields"] == [
        "intervention"]  # only the changed field, although the form sent every one
    # Someone else's encounter: the form is refused, nothing changes.
    node.client.session.cookie_jar.clear()
    csrf = await log_in(node, "sup2")
    before = await _snapshot(node)
    r = await node.client.post(f"/encounters/{eid}/amend", data={**data, "csrf": csrf,
                               "intervention": "defusing"}, headers=HTML)
    assert r.status == 403 and 'data-code="forbidden"' in await r.text()
    assert await _snapshot(node) == before


async def test_only_the_retention_purge_removes_amendments(make_node: MakeNode) -> None:
    node = await make_node()
    eid = await _log(node)
    status, _ = await node.post("sup1", f"/api/v1/encounters/{eid}/amendments",
                                {"duration_bucket": ">2h"})
    assert status == 201
    for method in ("DELETE", "PUT", "PATCH"):
        r = await node.client.request(method, f"/api/v1/encounters/{eid}/amendments",
                                      headers=node.auth("sup1"))
        assert r.status == 405
    assert await node.count("encounter_amendments") == 1
    node.clock.advance(400 * 86_400_000)
    status, body = await node.post("admin", "/api/v1/retention/purge", {"days": 365})
    assert status == 200 and body["purged"] == 1
    assert await node.count("encounter_amendments") == 0
    await _verify_ok(node)
