"""Issue 17 item 3: a user sees their own active sessions (created, last seen, address) and
ends any of them; tokens are listed and revoked from the account page; nobody reaches
another user's session or token. Real node, SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

from bench.reliability_report import record
from tests.node.account_browser import Browser, audit_actions, scalar
from tests.node.conftest import MakeNode


async def test_own_sessions_listed_and_ended(make_node: MakeNode) -> None:
    node = await make_node()
    phone, desk = Browser(node), Browser(node)
    try:
        assert await phone.log_in("sup1") == 303
        node.clock.advance(60_000)
        assert await desk.log_in("sup1") == 303
        status, body = await phone.api("GET", "/api/v1/sessions")
        assert status == 200 and len(body["items"]) == 2
        first = body["items"][0]
        assert set(first) == {"id", "created_at", "last_seen_at", "expires_at", "address",
                              "current"}
        assert [s["current"] for s in body["items"]] == [False, True]  # desk used last
        assert {s["address"] for s in body["items"]} == {"127.0.0.1"}
        # Last seen moves when the session is used again (at most every 5 minutes).
        node.clock.advance(10 * 60_000)
        await phone.page("/account")
        status, body = await phone.api("GET", "/api/v1/sessions")
        mine = next(s for s in body["items"] if s["current"])
        assert body["items"][0] == mine and mine["last_seen_at"] > first["last_seen_at"]
        desk_id = next(s["id"] for s in body["items"] if not s["current"])
        # Another user cannot end it (no such session for them), nor a made-up id.
        for who in ("sup2", "admin"):
            r = await node.client.delete(f"/api/v1/sessions/{desk_id}", headers=node.auth(who))
            assert (r.status, (await r.json())["error"]["code"]) == (404, "not_found")
        r = await node.client.delete(f"/api/v1/sessions/{uuid.uuid4()}",
                                     headers=node.auth("sup1"))
        assert r.status == 404
        # The page's form without the CSRF token: refused, the session lives.
        page = (await phone.page("/account"))[1]
        assert f'data-session="{desk_id}"' in page
        r = await phone.post(f"/account/sessions/{desk_id}/end", {}, csrf=False)
        assert r.status == 403
        assert (await desk.page("/account"))[0] == 200
        assert await node.count("web_sessions") == 2
        r = await phone.post(f"/account/sessions/{desk_id}/end", {})
        assert (r.status, r.headers["Location"]) == (303, "/account")
        assert (await desk.page("/account"))[0] == 303  # logged out
        assert (await phone.page("/account"))[0] == 200
        # Ending the current one logs this browser out.
        [me] = (await phone.api("GET", "/api/v1/sessions"))[1]["items"]
        r = await phone.post(f"/account/sessions/{me['id']}/end", {})
        assert (r.status, r.headers["Location"]) == (303, "/login")
        assert (await phone.page("/account"))[0] == 303
        assert await node.count("web_sessions") == 0
        assert [o for o, _ in await audit_actions(node, "session.end")] == ["ok", "ok"]
        record("security-session-end-other-user", area="security",
               case="Ending another user's session by its listed id",
               how="another supporter and an admin send DELETE /api/v1/sessions/{id} with the "
                   "id sup1's list shows; the page form without its CSRF token (real node, "
                   "SQLite and PostgreSQL)",
               result="404 not_found for both, 403 csrf_failed for the form; the session "
                      "lives until its owner ends it", figures={"sessions_ended_by_others": 0})
    finally:
        await phone.close()
        await desk.close()


async def test_tokens_on_the_account_page(make_node: MakeNode) -> None:
    node = await make_node()
    sup, admin = Browser(node), Browser(node)
    try:
        assert await sup.log_in("sup1") == 303
        status, page = await sup.page("/account")
        [own] = [t for t in (await node.get("sup1", "/api/v1/tokens"))[1]["items"]]
        assert status == 200 and f'data-token="{own["id"]}"' in page
        assert node.tokens["sup1"] not in page
        [theirs] = (await node.get("admin", "/api/v1/tokens?user=sup2"))[1]["items"]
        # A supporter cannot revoke another user's token; refused, audited, token works.
        r = await sup.post(f"/account/tokens/{theirs['id']}/revoke", {})
        assert r.status == 403 and 'data-code="forbidden"' in await r.text()
        r = await sup.post(f"/account/tokens/{own['id']}/revoke", {}, csrf=False)
        assert r.status == 403 and 'data-code="csrf_failed"' in await r.text()
        assert (await node.get("sup2", "/api/v1/me"))[0] == 200
        assert (await node.get("sup1", "/api/v1/me"))[0] == 200
        r = await sup.post(f"/account/tokens/{own['id']}/revoke", {"back": "https://evil.example"})
        assert (r.status, r.headers["Location"]) == (303, "/account")
        assert (await node.get("sup1", "/api/v1/me"))[0] == 401
        # An admin sees a user's tokens and revokes one from there.
        assert await admin.log_in("admin") == 303
        back = f"/admin/users/{node.users['sup2']}/tokens"
        status, page = await admin.page(back)
        assert status == 200 and theirs["id"] in page
        r = await admin.post(f"/account/tokens/{theirs['id']}/revoke", {"back": back})
        assert (r.status, r.headers["Location"]) == (303, back)
        assert (await node.get("sup2", "/api/v1/me"))[0] == 401
        assert await scalar(node, "SELECT count(*) FROM audit_log WHERE action = "
                                  "'token.revoke'") == 2
        status, _ = await sup.page(back)
        assert status == 403
    finally:
        await sup.close()
        await admin.close()
