"""Session fixation and CSRF on the node's and the hub's pages.

- Session fixation: a session id chosen before login (planted cookie, or the pre-session
  cookie of the login form) never becomes the logged-in session; every login issues a new
  id; logout kills the id server-side.
- CSRF: every unsafe route that a cookie session can reach, enumerated from the node's route
  table and the hub's router, refuses a request without the session's CSRF token, or with
  another session's, with 403 `csrf_failed`, and changes nothing stored but the audit entry.
"""

from __future__ import annotations

from typing import Any

from bench.reliability_report import record
from hub.appkeys import DB as HUB_DB
from node.core.appkeys import DB as NODE_DB
from node.core.appkeys import ROUTES
from tests.security.conftest import (
    HUB_ROLES,
    NODE_ROLES,
    PASSWORD,
    MakeApp,
    fill,
    login,
    page_csrf,
    snapshot,
)

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def _cookie(client: Any, name: str) -> str | None:
    for c in client.session.cookie_jar:
        if c.key == name:
            return str(c.value)
    return None


async def _fixation(app: Any, *, session_cookie: str, pre_cookie: str, home: str,
                    login_path: str = "/login") -> dict[str, Any]:
    client = app.client
    user = "admin" if "admin" in app.users else "op"
    jar = client.session.cookie_jar
    jar.update_cookies({session_cookie: "attacker-chosen-id"}, client.make_url("/"))
    r = await client.get(login_path)
    pre = r.cookies[pre_cookie].value if pre_cookie in r.cookies else _cookie(client, pre_cookie)
    r = await login(client, user)
    assert r.status == 303, await r.text()
    first = r.cookies[session_cookie].value
    assert first not in ("", "attacker-chosen-id", pre)
    r = await client.get(home, allow_redirects=False)
    assert r.status == 200
    # the planted id and the pre-session id are not sessions
    for planted in ("attacker-chosen-id", pre):
        jar.clear()
        jar.update_cookies({session_cookie: planted or "x"}, client.make_url("/"))
        r = await client.get(home, allow_redirects=False)
        assert r.status in (303, 302, 401), r.status
    # a second login gets another id
    jar.clear()
    r = await login(client, user)
    second = r.cookies[session_cookie].value
    assert second not in ("", first)
    csrf = await page_csrf(client, home)
    r = await client.post("/logout", data={"csrf": csrf}, allow_redirects=False)
    assert r.status == 303
    jar.clear()
    jar.update_cookies({session_cookie: second}, client.make_url("/"))
    r = await client.get(home, allow_redirects=False)
    assert r.status in (303, 302, 401), r.status  # dead after logout
    return {"rotated": True}


async def test_node_session_fixation(node_app: MakeApp) -> None:
    node = await node_app()
    await _fixation(node, session_cookie="peernet_session", pre_cookie="peernet_pre",
                    home="/admin/users")


async def test_hub_session_fixation(hub_app: MakeApp) -> None:
    hub = await hub_app()
    await _fixation(hub, session_cookie="peernet_hub_session", pre_cookie="peernet_hub_pre",
                    home="/operator")


def _user_for(roles: Any) -> str:
    order = ["coordinator", "admin", "peer_supporter", "auditor"]
    names = {r.value for r in roles}
    return NODE_ROLES[next(r for r in order if r in names)]


async def test_node_csrf_on_every_unsafe_route(node_app: MakeApp) -> None:
    node = await node_app()
    engine = node.app[NODE_DB].engine
    routes = [r for r in node.app[ROUTES] if r.method in UNSAFE]
    unchecked = sorted(r.name for r in routes if not r.csrf)
    # login: bound to the pre-session cookie instead; fed_send: per-hop signed, no cookies
    assert unchecked == ["fed_send", "page.login.post"]
    sessions = {}
    for name in NODE_ROLES.values():
        c = node.client.session
        c.cookie_jar.clear()
        r = await login(node.client, name)
        assert r.status == 303
        sessions[name] = _cookie(node.client, "peernet_session")
    tried = 0
    for route in routes:
        if route.roles is None:
            continue
        who = _user_for(route.roles)
        other = next(n for n in NODE_ROLES.values() if n != who)
        node.client.session.cookie_jar.clear()
        node.client.session.cookie_jar.update_cookies({"peernet_session": sessions[other]},
                                                      node.client.make_url("/"))
        other_csrf = await page_csrf(node.client, "/")
        node.client.session.cookie_jar.clear()
        node.client.session.cookie_jar.update_cookies({"peernet_session": sessions[who]},
                                                      node.client.make_url("/"))
        before = await snapshot(engine)
        path = fill(route.path)
        for attempt in ({}, {"csrf": "forged"}, {"csrf": other_csrf}):
            if route.is_api:
                headers = {"X-CSRF-Token": attempt["csrf"]} if attempt else {}
                r = await node.client.request(route.method, path, json={}, headers=headers,
                                              allow_redirects=False)
            else:
                r = await node.client.request(route.method, path, data=attempt,
                                              allow_redirects=False)
            assert r.status == 403, (route.name, attempt, r.status)
            assert "csrf_failed" in await r.text(), route.name
            tried += 1
        after = await snapshot(engine)
        changed = {k for k in after if after[k] != before.get(k)}
        assert changed <= {"audit_log", "audit_head"}, (route.name, changed)
    # the login form without its token: refused, no session row made
    node.client.session.cookie_jar.clear()
    before = await snapshot(engine)
    r = await node.client.post("/login", data={"username": "admin", "password": PASSWORD},
                               allow_redirects=False)
    assert r.status == 403 and "csrf_failed" in await r.text()
    assert (await snapshot(engine))["web_sessions"] == before["web_sessions"]
    record("security-csrf-node", area="security",
           case="CSRF on every state-changing node route",
           how="every unsafe route of the node's route table, with a logged-in session of an "
               "allowed role: no token, a forged token, another session's token; and the "
               "login form without its pre-session token",
           result="all refused 403 csrf_failed; no table changed but the audit log",
           figures={"routes": len([r for r in routes if r.roles is not None]) + 1,
                    "attempts": tried + 1})


async def test_hub_csrf_on_every_unsafe_route(hub_app: MakeApp) -> None:
    hub = await hub_app()
    engine = hub.app[HUB_DB].engine
    unsafe = sorted({(r.method, r.resource.canonical) for r in hub.app.router.routes()
                     if r.method in UNSAFE and r.resource is not None
                     and not r.resource.canonical.startswith("/fed/")})
    assert ("POST", "/login") in unsafe and ("POST", "/operator/users") in unsafe
    r = await login(hub.client, "op")
    assert r.status == 303
    tried = 0
    for method, path in unsafe:
        if path == "/login":
            continue
        before = await snapshot(engine)
        for attempt in ({}, {"csrf": "forged"}):
            r = await hub.client.request(method, fill(path), data={**attempt, "username": "x",
                                                                  "password": PASSWORD * 2,
                                                                  "role": "operator"},
                                         allow_redirects=False)
            assert r.status == 403 and "csrf_failed" in await r.text(), (path, r.status)
            tried += 1
        assert await snapshot(engine) == before, path
    hub.client.session.cookie_jar.clear()
    before = await snapshot(engine)
    r = await hub.client.post("/login", data={"username": "op", "password": PASSWORD},
                              allow_redirects=False)
    assert r.status == 403 and "csrf_failed" in await r.text()
    assert await snapshot(engine) == before
    record("security-csrf-hub", area="security",
           case="CSRF on every state-changing hub route",
           how="every unsafe route of the hub's router except the per-hop signed federation "
               "route, with an operator session: no token, a forged token; the login form "
               "without its pre-session token",
           result="all refused 403 csrf_failed; nothing stored changed",
           figures={"routes": len(unsafe), "attempts": tried + 1})


async def test_session_fixation_recorded(node_app: MakeApp, hub_app: MakeApp) -> None:
    node, hub = await node_app(), await hub_app()
    await _fixation(node, session_cookie="peernet_session", pre_cookie="peernet_pre",
                    home="/admin/users")
    await _fixation(hub, session_cookie="peernet_hub_session", pre_cookie="peernet_hub_pre",
                    home="/operator")
    record("security-session-fixation", area="security", case="session fixation",
           how="node and hub: a planted session cookie and the login form's pre-session "
               "cookie before login; two logins; logout; then the old ids replayed",
           result="a new session id at every login; planted, pre-session and logged-out ids "
                  "never authenticate", figures={"servers": 2, "logins": 4})


_ = HUB_ROLES
