"""Every route x every role, from the app's own route table (DESIGN section 3).

`EXPECTED` names who may call each route; a route in the app without an entry here fails
the test, so a new route cannot ship without a decision about who may use it. "public"
routes need no login. A refusal is 403 `forbidden` before the handler runs (and audited);
anything else (200, 404 for a made-up id, 422 for an empty body, ...) means the role got
through the gate.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from node.core.appkeys import ROUTES
from tests.node.conftest import MakeNode

SUP, COORD, ADMIN, AUDIT = "sup1", "coord", "admin", "audit"
ROLES = {"peer_supporter": SUP, "coordinator": COORD, "admin": ADMIN, "auditor": AUDIT}
SUPPORTERS = {"peer_supporter", "coordinator"}
ALL = set(ROLES)

EXPECTED: dict[str, set[str] | str] = {
    "healthz": "public",
    # JSON API
    "api.openapi": "public",
    "api.me": ALL,
    "api.encounters.create": SUPPORTERS,
    "api.encounters.list": SUPPORTERS,
    "api.encounters.get": SUPPORTERS,
    "api.follow_ups.list": SUPPORTERS,
    "api.follow_ups.complete": SUPPORTERS,
    "api.follow_ups.reassign": {"coordinator"},
    "api.users.list": {"admin"},
    "api.users.create": {"admin"},
    "api.users.update": {"admin"},
    "api.tokens.create": ALL,
    "api.tokens.list": ALL,
    "api.tokens.revoke": ALL,
    "api.disclosures.list": {"coordinator"},
    "api.disclosures.create": {"coordinator"},
    "api.disclosures.get": {"coordinator"},
    "api.audit.list": {"auditor"},
    "api.audit.verify": {"auditor"},
    "api.report": {"coordinator", "auditor"},
    "api.retention.purge": {"admin"},
    # pages
    "page.home": ALL,
    "page.login": "public",
    "page.favicon": "public",
    "page.login.post": "public",
    "page.logout": ALL,
    "page.encounters.new": SUPPORTERS,
    "page.encounters.post": SUPPORTERS,
    "page.encounters": SUPPORTERS,
    "page.encounter": SUPPORTERS,
    "page.follow_ups": SUPPORTERS,
    "page.follow_ups.complete": SUPPORTERS,
    "page.follow_ups.reassign": {"coordinator"},
    "page.team": {"coordinator"},
    "page.admin.users": {"admin"},
    "page.admin.users.create": {"admin"},
    "page.admin.users.change": {"admin"},
    "page.admin.users.unlock": {"admin"},
    "page.leadership": {"coordinator", "auditor"},
    # records: amendments, disclosures page, audit-log page (issue 17 item 4)
    "api.encounters.amend": SUPPORTERS,
    "page.encounter.amend": SUPPORTERS,
    "page.encounter.amend.post": SUPPORTERS,
    "page.disclosures": {"coordinator"},
    "page.disclosures.post": {"coordinator"},
    "page.audit": {"auditor"},
    "page.audit.export": {"auditor"},
    # accounts (own password, sessions, tokens; admin resets)
    "api.account.password": ALL,
    "api.sessions.list": ALL,
    "api.sessions.end": ALL,
    "api.users.reset_password": {"admin"},
    "page.account": ALL,
    "page.account.sessions.end": ALL,
    "page.account.tokens.revoke": ALL,
    "page.account.password": ALL,
    "page.account.password.post": ALL,
    "page.admin.users.tokens": {"admin"},
    "page.admin.users.reset": {"admin"},
    # notifications (DESIGN section 12): every role its own preferences, the on-duty list
    # and the delivery queue are admin pages
    "api.notify.prefs": ALL,
    "api.notify.prefs.set": ALL,
    "page.notify.prefs": ALL,
    "page.notify.prefs.post": ALL,
    **{n: {"admin"} for n in (
        "api.notify.deliveries", "api.notify.retry", "api.notify.endpoints",
        "api.notify.endpoints.add", "api.notify.endpoints.remove", "page.notify.admin",
        "page.notify.endpoints.post", "page.notify.endpoints.remove", "page.notify.retry")},
    # sign-in through the agency's identity provider (only with an [oidc] table)
    "page.login.oidc": "public",
    "page.login.oidc.callback": "public",
    # federation (federation engineer's routes)
    "fed_send": "public",
    "fed_roster": "public",
    "fed_roster_version": "public",
    "fed_alarms": {"admin", "auditor"},
    "fed_outbox": {"admin", "auditor"},
    # interagency activation (activation engineer's routes)
    **{f"api.activations.{n}": {"coordinator"} for n in (
        "list", "create", "targets", "handoffs", "handoffs.complete", "get", "submit", "offer",
        "accept", "decline", "update", "cancel", "close", "handoffs.send")},
    # interstate activation (issue 19 item 4)
    "api.activations.interstate.directory": {"coordinator"},
    "api.activations.interstate.policy": {"coordinator", "admin"},
    "api.activations.interstate.policy.set": {"admin"},
    "api.activations.approve": {"coordinator", "admin"},
    **{f"api.transfers.{n}": {"coordinator"} for n in (
        "consent", "send", "list", "accept", "decline")},
    **{n: {"coordinator"} for n in (
        "page.activations", "page.activations.new", "page.activations.post",
        "page.activations.handoffs", "page.activations.handoffs.done", "page.activation",
        "page.activation.post")},
    **{n: {"coordinator"} for n in (
        "page.transfers.new", "page.transfers.send", "page.transfers",
        "page.transfers.accept", "page.transfers.decline")},
}


def _fill(path: str) -> str:
    return (path.replace("{id}", str(uuid.uuid4())).replace("{version}", "1")
            .replace("{activation_id}", "01ARZ3NDEKTSV4RRFFQ69G5FAV"))


# A node signing in through an identity provider mounts its sign-in routes too.
OIDC = {"issuer": "https://idp.example.gov", "client_id": "peernet",
        "rules": [{"group": "peernet-admins", "role": "admin"}]}


@pytest.mark.parametrize("oidc", [None, OIDC], ids=["local", "oidc"])
async def test_every_route_has_an_expectation_and_the_gate_matches(
        make_node: MakeNode, oidc: dict[str, Any] | None) -> None:
    node = await make_node(oidc=oidc)
    if oidc is not None:
        assert {"page.login.oidc", "page.login.oidc.callback"} <= {
            r.name for r in node.client.app[ROUTES]}
    routes = list(node.client.app[ROUTES])
    missing = sorted(r.name for r in routes if r.name not in EXPECTED)
    assert missing == [], f"routes without a role-matrix entry: {missing}"
    for route in routes:
        expected = EXPECTED[route.name]
        if expected == "public":
            assert route.roles is None, route.name
            continue
        assert route.roles is not None, f"{route.name} is public but expected {expected}"
        assert {r.value for r in route.roles} == expected, route.name
        path = _fill(route.path)
        r = await node.client.request(route.method, path, json={} if route.is_unsafe else None)
        assert r.status == 401, (route.name, "anonymous", r.status)
        for role, who in ROLES.items():
            r = await node.client.request(route.method, path, headers=node.auth(who),
                                          json={} if route.is_unsafe else None,
                                          allow_redirects=False)
            refused = r.status == 403 and (await r.json())["error"]["code"] == "forbidden"
            assert refused == (role not in expected), (route.name, role, r.status)


async def test_refusals_by_role_are_audited(make_node: MakeNode) -> None:
    node = await make_node()
    before = await node.count("audit_log")
    status, _ = await node.get("admin", "/api/v1/encounters")
    assert status == 403
    status, _ = await node.get("sup1", "/api/v1/audit")
    assert status == 403
    status, page = await node.get("audit", f"/api/v1/audit?after_seq={before}")
    actions = [(e["action"], e["outcome"], e["target_id"]) for e in page["items"]]
    assert actions == [("access.refused", "refused", "api.encounters.list"),
                       ("access.refused", "refused", "api.audit.list")]
