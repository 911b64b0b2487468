"""Issue 17 item 3: a user changes their own password (current one required; their other
sessions end, their API tokens are revoked), an admin resets one (temporary password,
forced change at next login). Through a real node on SQLite and PostgreSQL, with the
refusals: wrong current password, wrong role, missing CSRF token, each with its stable code
and nothing stored changed."""

from __future__ import annotations

from bench.reliability_report import record
from tests.node.account_browser import Browser, audit_actions, scalar
from tests.node.conftest import PASSWORD, MakeNode, Node

NEW = "a fresh new password"


async def _hash(node: Node, who: str) -> str:
    return str(await scalar(node, "SELECT password_hash FROM users WHERE username = :u", u=who))


async def test_own_password_change_through_the_form(make_node: MakeNode) -> None:
    node = await make_node()
    here, there = Browser(node), Browser(node)
    try:
        assert await here.log_in("sup1") == 303
        assert await there.log_in("sup1") == 303
        await here.page("/account/password")
        before = await _hash(node, "sup1")
        # Refusals: wrong current password, confirmation differs, no CSRF token.
        r = await here.post("/account/password", {"current_password": "not my password",
                                                   "new_password": NEW, "confirm": NEW})
        assert r.status == 403 and 'data-code="wrong_password"' in await r.text()
        r = await here.post("/account/password", {"current_password": PASSWORD,
                                                   "new_password": NEW, "confirm": NEW + "x"})
        assert r.status == 422 and 'data-code="invalid_input"' in await r.text()
        r = await here.post("/account/password", {"current_password": PASSWORD,
                                                   "new_password": NEW, "confirm": NEW},
                            csrf=False)
        assert r.status == 403 and 'data-code="csrf_failed"' in await r.text()
        assert await _hash(node, "sup1") == before
        assert (await there.page("/account"))[0] == 200
        assert (await node.get("sup1", "/api/v1/me"))[0] == 200
        # The change: this session stays, the other ends, the token stops working.
        r = await here.post("/account/password", {"current_password": PASSWORD,
                                                   "new_password": NEW, "confirm": NEW})
        assert r.status == 303 and r.headers["Location"].startswith("/account?changed=")
        status, page = await here.page(r.headers["Location"])
        assert status == 200 and 'id="changed"' in page
        status, _ = await there.page("/account")
        assert status == 303  # to /login
        status, body = await node.get("sup1", "/api/v1/me")
        assert (status, body["error"]["code"]) == (401, "unauthenticated")
        assert (await node.get("sup2", "/api/v1/me"))[0] == 200  # others keep theirs
        fresh = Browser(node)
        assert await fresh.log_in("sup1") == 401
        assert await fresh.log_in("sup1", NEW) == 303
        await fresh.close()
        got = await audit_actions(node, "password.change")
        assert [o for o, _ in got] == ["refused", "ok"]
        assert '"sessions_ended":1' in got[1][1].replace(" ", "")
        assert '"tokens_revoked":1' in got[1][1].replace(" ", "")
    finally:
        await here.close()
        await there.close()


async def test_own_password_change_through_the_api(make_node: MakeNode) -> None:
    node = await make_node()
    path = "/api/v1/account/password"
    before = await _hash(node, "coord")
    status, body = await node.post("coord", path, {"current_password": "wrong one!",
                                                   "new_password": NEW})
    assert (status, body["error"]["code"], body["error"]["field"]) == (
        403, "wrong_password", "current_password")
    status, body = await node.post("coord", path, {"current_password": PASSWORD,
                                                   "new_password": PASSWORD})
    assert (status, body["error"]["field"]) == (422, "new_password")
    status, body = await node.post("coord", path, {"current_password": PASSWORD,
                                                   "new_password": "short"})
    assert (status, body["error"]["code"]) == (422, "invalid_input")
    status, body = await node.post("coord", path, {"current_password": PASSWORD,
                                                   "new_password": NEW, "role": "admin"})
    assert (status, body["error"]["code"]) == (422, "unknown_field")
    assert await _hash(node, "coord") == before
    assert (await node.get("coord", "/api/v1/me"))[0] == 200
    status, body = await node.post("coord", path, {"current_password": PASSWORD,
                                                   "new_password": NEW})
    assert (status, body) == (200, {"sessions_ended": 0, "tokens_revoked": 1})
    assert (await node.get("coord", "/api/v1/me"))[0] == 401


async def test_wrong_current_passwords_are_throttled(make_node: MakeNode) -> None:
    node = await make_node()
    path = "/api/v1/account/password"
    codes = []
    for _ in range(6):
        status, body = await node.post("sup2", path, {"current_password": "guess guess",
                                                      "new_password": NEW})
        codes.append((status, body["error"]["code"]))
    assert codes == [(403, "wrong_password")] * 5 + [(429, "throttled")]
    # Throttled: even the right password is not checked until the delay passes.
    status, body = await node.post("sup2", path, {"current_password": PASSWORD,
                                                  "new_password": NEW})
    assert (status, body["error"]["code"]) == (429, "throttled")
    assert (await node.get("sup2", "/api/v1/me"))[0] == 200
    record("security-password-change-guessing",
           area="security", case="Guessing the current password through a stolen session",
           how="6 wrong current passwords to POST /api/v1/account/password with a valid token "
               "(real node, SQLite and PostgreSQL)",
           result="5 refused wrong_password, then 429 throttled before any check; password "
                  "unchanged", figures={"attempts": 6, "checked": 5})


async def test_admin_reset_forces_a_change_at_next_login(make_node: MakeNode) -> None:
    node = await make_node()
    victim = Browser(node)
    admin = Browser(node)
    try:
        assert await victim.log_in("sup1") == 303
        # A supporter cannot reset another user: refused, audited, nothing changed.
        before = await _hash(node, "sup2")
        status, body = await node.post("sup1", f"/api/v1/users/{node.users['sup2']}"
                                               "/reset-password", {})
        assert (status, body["error"]["code"]) == (403, "forbidden")
        assert await _hash(node, "sup2") == before
        assert (await node.get("sup2", "/api/v1/me"))[0] == 200
        # The admin's page form without its CSRF token: refused, nothing changed.
        assert await admin.log_in("admin") == 303
        await admin.page("/admin/users")
        r = await admin.post(f"/admin/users/{node.users['sup1']}/reset", {}, csrf=False)
        assert r.status == 403
        assert (await victim.page("/account"))[0] == 200
        # The reset: a temporary password shown once, sessions and tokens gone.
        r = await admin.post(f"/admin/users/{node.users['sup1']}/reset", {})
        page = await r.text()
        assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
        temp = page.split('id="temporary-password">')[1].split("<")[0]
        assert len(temp) == 19
        assert (await victim.page("/account"))[0] == 303
        assert (await node.get("sup1", "/api/v1/me"))[0] == 401
        assert temp not in str(await audit_actions(node, "password.reset"))
        # Next login: every page leads to the change page; other posts are refused.
        assert await victim.log_in("sup1", temp) == 303
        for path in ("/", "/encounters/new", "/follow-ups", "/account"):
            r = await victim.http.get(path, headers={"Accept": "text/html"},
                                      allow_redirects=False)
            assert (r.status, r.headers["Location"]) == (303, "/account/password"), path
        status, page = await victim.page("/account/password")
        assert status == 200 and 'id="forced"' in page
        r = await victim.post("/encounters", {"recipient": "E-1"})
        assert r.status == 403 and 'data-code="password_change_required"' in await r.text()
        status, body = await victim.api("GET", "/api/v1/encounters")
        assert (status, body["error"]["code"]) == (403, "password_change_required")
        assert await node.count("encounters") == 0
        r = await victim.post("/account/password", {"current_password": temp,
                                                     "new_password": NEW, "confirm": NEW})
        assert r.status == 303
        assert (await victim.page("/encounters/new"))[0] == 200
        assert await scalar(node, "SELECT must_change_password FROM users WHERE username = "
                                  "'sup1'") in (False, 0)
        assert [o for o, _ in await audit_actions(node, "password.reset")] == ["ok"]
        record("security-reset-forced-change", area="security",
               case="Temporary password after an admin's reset",
               how="a supporter logs in with the temporary password and opens pages, posts "
                   "an encounter form and calls the API (real node, SQLite and PostgreSQL); "
                   "a supporter calls the reset route; the admin's form without CSRF",
               result="pages redirect to the change page, the post and the API are refused "
                      "403 password_change_required and nothing is stored; the supporter's "
                      "reset is refused forbidden and the CSRF-less form csrf_failed",
               figures={"pages_redirected": 4, "encounters_stored": 0})
        assert await scalar(node, "SELECT count(*) FROM audit_log WHERE action = "
                                  "'access.refused' AND target_id = "
                                  "'api.users.reset_password'") == 1
    finally:
        await victim.close()
        await admin.close()


async def test_reset_through_the_api_refuses_tokens_until_changed(make_node: MakeNode) -> None:
    node = await make_node()
    status, body = await node.post("admin", f"/api/v1/users/{node.users['coord']}"
                                            "/reset-password", {})
    assert status == 200 and body["username"] == "coord" and body["tokens_revoked"] == 1
    temp = body["temporary_password"]
    from node.accounts.users import create_token
    from node.core.schemas import TokenIn

    token = (await create_token(node.ctx, node.users["coord"], TokenIn(label="after"))).token
    headers = {"Authorization": f"Bearer {token}"}
    r = await node.client.get("/api/v1/follow-ups", headers=headers)
    assert (r.status, (await r.json())["error"]["code"]) == (403, "password_change_required")
    r = await node.client.post("/api/v1/account/password", headers=headers,
                               json={"current_password": temp, "new_password": NEW})
    assert r.status == 200
    status, body = await node.post("admin", f"/api/v1/users/{__import__('uuid').uuid4()}"
                                            "/reset-password", {})
    assert (status, body["error"]["code"]) == (404, "not_found")
    # An admin's PATCH with a password also forces the change.
    r = await node.client.patch(f"/api/v1/users/{node.users['sup2']}",
                                json={"password": "set by the admin"},
                                headers=node.auth("admin"))
    assert r.status == 200
    assert await scalar(node, "SELECT must_change_password FROM users WHERE username = "
                              "'sup2'") in (True, 1)


async def test_a_user_an_admin_creates_changes_the_password_first(make_node: MakeNode) -> None:
    node = await make_node()
    status, _ = await node.post("admin", "/api/v1/users", {
        "username": "newbie", "password": "given by the admin", "role": "peer_supporter"})
    assert status == 201
    newbie = Browser(node)
    try:
        assert await newbie.log_in("newbie", "given by the admin") == 303
        status, page = await newbie.page("/encounters/new")
        assert status == 303
        status, page = await newbie.page("/account/password")
        assert 'id="forced"' in page
        r = await newbie.post("/account/password", {"current_password": "given by the admin",
                                                     "new_password": NEW, "confirm": NEW})
        assert r.status == 303
        assert (await newbie.page("/encounters/new"))[0] == 200
    finally:
        await newbie.close()
