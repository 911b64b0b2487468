from __future__ import annotations

from tests.node.conftest import MakeNode, encounter


async def test_log_read_and_follow_up(make_node: MakeNode) -> None:
    node = await make_node()
    status, body = await node.post("sup1", "/api/v1/encounters",
                                   encounter(follow_up_due="2026-06-16", referral="eap"))
    assert status == 201, body
    assert body["follow_up_status"] == "open"
    assert body["follow_up_owner"] == str(node.users["sup1"])
    assert "recipient" not in body and len(body["recipient_ref"]) == 43
    eid = body["id"]
    status, got = await node.get("sup1", f"/api/v1/encounters/{eid}")
    assert status == 200 and got == {**body, "amendments": []}  # a read shows the history
    status, fus = await node.get("sup1", "/api/v1/follow-ups")
    assert status == 200 and [f["encounter_id"] for f in fus["items"]] == [eid]
    # not due yet, then overdue two days later
    status, due = await node.get("sup1", "/api/v1/follow-ups?due_only=true")
    assert due["items"] == []
    node.clock.advance(2 * 86_400_000)
    status, due = await node.get("sup1", "/api/v1/follow-ups?due_only=true")
    assert [f["status"] for f in due["items"]] == ["overdue"]
    # another supporter is refused, and the refusal is audited
    before = await node.count("audit_log")
    status, err = await node.get("sup2", f"/api/v1/encounters/{eid}")
    assert status == 403 and err["error"]["code"] == "forbidden"
    assert await node.count("audit_log") == before + 1
    # coordinator reads it (audited), reassigns the follow-up to sup2, who completes it
    status, got = await node.get("coord", f"/api/v1/encounters/{eid}")
    assert status == 200
    fid = fus["items"][0]["id"]
    status, fu = await node.post("coord", f"/api/v1/follow-ups/{fid}/reassign",
                                 {"owner": str(node.users["sup2"])})
    assert status == 200 and fu["owner"] == str(node.users["sup2"])
    status, fu = await node.post("sup2", f"/api/v1/follow-ups/{fid}/complete", {})
    assert status == 200 and fu["status"] == "done"
    status, rep = await node.get("audit", "/api/v1/report?months=2")
    assert status == 200
    assert rep["totals"]["encounters"] == 1
    assert rep["totals"]["follow_ups"]["done"] == 1
    assert rep["totals"]["by_referral"] == {"eap": 1}
    status, ver = await node.get("audit", "/api/v1/audit/verify")
    assert status == 200 and ver["ok"] is True, ver


async def test_bad_inputs_are_refused_and_nothing_written(make_node: MakeNode) -> None:
    node = await make_node()
    cases = [
        (encounter(notes="he said his wife left"), 422, "unknown_field", "notes"),
        (encounter(intervention="therapy"), 422, "invalid_enum", "intervention"),
        (encounter(incident_ref="John Smith crying after the fire"), 422, "invalid_input",
         "incident_ref"),
        (encounter(topics=["grief", "his divorce"]), 422, "invalid_enum", "topics"),
        (encounter(occurred_at="2027-01-01T00:00:00Z"), 422, "invalid_input", "occurred_at"),
    ]
    for body, status, code, field in cases:
        got_status, err = await node.post("sup1", "/api/v1/encounters", body)
        assert (got_status, err["error"]["code"], err["error"]["field"]) == (status, code, field)
    r = await node.client.post("/api/v1/encounters", data=b"{" + b" " * 70_000 + b"}",
                               headers={**node.auth("sup1"), "Content-Type": "application/json"})
    assert r.status == 413 and (await r.json())["error"]["code"] == "too_large"
    r = await node.client.post("/api/v1/encounters", data=b"not json",
                               headers={**node.auth("sup1"), "Content-Type": "application/json"})
    assert r.status in (400, 422)
    status, err = await node.post("admin", "/api/v1/encounters", encounter())
    assert status == 403 and err["error"]["code"] == "forbidden"
    assert await node.count("encounters") == 0
    assert await node.count("follow_ups") == 0


async def test_encounter_and_follow_up_ids_are_time_ordered(make_node: MakeNode) -> None:
    """Record ids are version 7 UUIDs (`federation.random_ids.new_record_id`): each new row's
    index entries land beside the last one's instead of on a random page."""
    import uuid

    node = await make_node()
    ids = []
    for _ in range(3):
        status, body = await node.post("sup1", "/api/v1/encounters",
                                       encounter(follow_up_due="2026-06-16"))
        assert status == 201, body
        ids.append(uuid.UUID(body["id"]))
    status, fus = await node.get("sup1", "/api/v1/follow-ups")
    fids = [uuid.UUID(f["id"]) for f in fus["items"]]
    assert {u.version for u in ids + fids} == {7}
    assert ids == sorted(ids) and len(set(fids)) == 3
