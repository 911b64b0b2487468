from __future__ import annotations

import json

from sqlalchemy import text

from tests.node.conftest import MakeNode, encounter

DAY = 86_400_000


async def _audit_since(node, seq: int) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    status, page = await node.get("audit", f"/api/v1/audit?after_seq={seq}")
    assert status == 200
    return [(e["action"], e["outcome"]) for e in page["items"]]


async def test_disclosures_are_coordinator_only_and_always_audited(make_node: MakeNode) -> None:
    node = await make_node()
    body = {"category": "mandated_report", "occurred_on": "2026-06-14", "notice_given": True}
    status, d = await node.post("coord", "/api/v1/disclosures", body)
    assert status == 201 and set(d) == {"id", "category", "occurred_on", "notice_given", "team",
                                        "created_by", "created_at"}
    seq = await node.count("audit_log")
    status, items = await node.get("coord", "/api/v1/disclosures")
    assert status == 200 and [i["id"] for i in items["items"]] == [d["id"]]
    status, _ = await node.get("coord", f"/api/v1/disclosures/{d['id']}")
    assert status == 200
    status, _ = await node.get("coord_b", f"/api/v1/disclosures/{d['id']}")  # other team
    assert status == 404
    for who in ("sup1", "admin", "audit"):
        status, err = await node.get(who, f"/api/v1/disclosures/{d['id']}")
        assert status == 403 and err["error"]["code"] == "forbidden"
    assert await _audit_since(node, seq) == [
        ("disclosure.list", "ok"), ("disclosure.read", "ok"), ("access.refused", "refused"),
        ("access.refused", "refused"), ("access.refused", "refused"),
        ("access.refused", "refused"),
    ]
    status, err = await node.post("coord", "/api/v1/disclosures",
                                  {**body, "person": "the chief's son"})
    assert status == 422 and err["error"]["code"] == "unknown_field"
    assert await node.count("disclosures") == 1


async def test_purge_by_age_is_audited_by_count_only(make_node: MakeNode) -> None:
    node = await make_node()
    for when in ("2026-01-01T10:00:00Z", "2026-06-01T10:00:00Z", "2026-06-15T10:00:00Z"):
        status, _ = await node.post("sup1", "/api/v1/encounters",
                                    encounter(occurred_at=when, follow_up_due="2026-06-20"))
        assert status == 201
    status, out = await node.post("admin", "/api/v1/retention/purge", {"days": 30})
    assert status == 200 and out == {"purged": 1, "days": 30}
    assert await node.count("encounters") == 2 and await node.count("follow_ups") == 2
    async with node.ctx.db.read() as conn:
        detail = (await conn.execute(text(
            "SELECT detail FROM audit_log WHERE action = 'retention.purge'"))).scalar_one()
    assert json.loads(detail) == {"count": 1, "days": 30}
    status, err = await node.post("admin", "/api/v1/retention/purge", {"days": 0})
    assert status == 422 and err["error"]["field"] == "days"
    status, err = await node.post("coord", "/api/v1/retention/purge", {"days": 1})
    assert status == 403


async def test_admin_manages_users_but_never_the_last_admin(make_node: MakeNode) -> None:
    node = await make_node()
    status, u = await node.post("admin", "/api/v1/users", {
        "username": "newbie", "password": "long enough pw", "role": "peer_supporter"})
    assert status == 201 and "password" not in u and "password_hash" not in u
    status, err = await node.post("admin", "/api/v1/users", {
        "username": "newbie", "password": "long enough pw", "role": "peer_supporter"})
    assert status == 409 and err["error"]["code"] == "conflict"
    r = await node.client.patch(f"/api/v1/users/{node.users['admin']}",
                                json={"role": "auditor"}, headers=node.auth("admin"))
    assert r.status == 409
    r = await node.client.patch(f"/api/v1/users/{node.users['sup2']}", json={"active": False},
                                headers=node.auth("admin"))
    assert r.status == 200 and (await r.json())["active"] is False
    status, _ = await node.get("sup2", "/api/v1/me")  # the token stops working at once
    assert status == 401
    status, users = await node.get("admin", "/api/v1/users")
    assert all(set(u) == {"id", "username", "role", "team", "active", "created_at"}
               for u in users["items"])


async def test_follow_up_rules(make_node: MakeNode) -> None:
    node = await make_node()
    status, e = await node.post("sup1", "/api/v1/encounters", encounter(
        follow_up_due="2026-06-16", follow_up_owner=str(node.users["sup_b"])))
    assert status == 422 and e["error"]["field"] == "follow_up_owner"  # other team
    status, e = await node.post("sup1", "/api/v1/encounters", encounter(
        follow_up_due="2026-06-16", supporter_was_witness=True))
    assert status == 422 and e["error"]["field"] == "follow_up_owner"  # witness
    status, e = await node.post("sup1", "/api/v1/encounters", encounter(
        follow_up_due="2026-06-16", supporter_was_witness=True,
        follow_up_owner=str(node.users["sup2"])))
    assert status == 201 and e["follow_up_owner"] == str(node.users["sup2"])
    status, fus = await node.get("sup2", "/api/v1/follow-ups")
    fid = fus["items"][0]["id"]
    status, err = await node.post("sup1", f"/api/v1/follow-ups/{fid}/complete", {})
    assert status == 403  # not the owner
    status, err = await node.post("coord_b", f"/api/v1/follow-ups/{fid}/reassign",
                                  {"owner": str(node.users["sup_b"])})
    assert status == 403  # another team's coordinator
    status, err = await node.get("sup1", "/api/v1/follow-ups?scope=team")
    assert status == 403 and err["error"]["field"] == "scope"
    node.clock.advance(3 * DAY)
    status, team = await node.get("coord", "/api/v1/follow-ups?scope=team&due_only=true")
    assert [f["status"] for f in team["items"]] == ["overdue"]
    status, fu = await node.post("sup2", f"/api/v1/follow-ups/{fid}/complete",
                                 {"outcome": "handed_off"})
    assert status == 200 and fu["status"] == "handed_off"
    status, err = await node.post("sup2", f"/api/v1/follow-ups/{fid}/complete", {})
    assert status == 409


async def test_report_holds_aggregates_only(make_node: MakeNode) -> None:
    node = await make_node()
    for i, intervention in enumerate(["defusing", "defusing", "debriefing"]):
        status, e = await node.post("sup1", "/api/v1/encounters", encounter(
            intervention=intervention, recipient=f"X{i}", incident_ref="CAD-2026-77"))
        assert status == 201
    status, rep = await node.get("audit", "/api/v1/report?months=3")
    assert status == 200
    month = rep["months"][-1]
    assert month["month"] == "2026-06" and month["encounters"] == 3
    assert month["by_intervention"]["defusing"] == 2
    text_ = json.dumps(rep)
    assert e["recipient_ref"] not in text_ and "CAD-2026-77" not in text_ and e["id"] not in text_


async def test_audit_cursor_beyond_bigint_is_refused_not_a_server_error(
    make_node: MakeNode,
) -> None:
    node = await make_node()
    top = 2**63 - 1
    status, page = await node.get("audit", f"/api/v1/audit?after_seq={top}")
    assert status == 200 and page["items"] == []
    for bad in (str(2**63), str(2**105), "-1"):
        status, err = await node.get("audit", f"/api/v1/audit?after_seq={bad}")
        assert status == 422 and err["error"]["code"] == "invalid_input", (bad, err)
