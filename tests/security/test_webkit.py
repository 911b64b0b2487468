"""The shared web kit (`federation/webkit/`): one login page and one CSRF rule on both servers.

- The node's and the hub's login pages are the kit's `login.html` (its `data-kit` marker,
  byte-identical forms once the per-request token is blanked, the kit's stylesheet and the
  same favicon bytes); only the hub's intro line and each server's name differ.
- A forged CSRF token is refused the same way on both servers: on the login form (a token
  made with another secret, and a real token replayed with another pre-session cookie) and
  on logout with a live session (another value than the session's); 403 `csrf_failed` on the
  kit's error page, no session cookie issued, the session still alive, nothing stored
  (the node's audit entry of the refusal aside).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from bench.reliability_report import record
from federation.websecurity import login_csrf, new_token
from hub.appkeys import DB as HUB_DB
from node.core.appkeys import DB as NODE_DB
from tests.security.conftest import CSRF_RE, App, MakeApp, login, page_csrf, snapshot

HTML = {"Accept": "text/html"}
FORM_RE = re.compile(r'<form method="post" action="/login">.*?</form>', re.S)
SERVERS: dict[str, dict[str, Any]] = {
    "node": {"pre": "peernet_pre", "session": "peernet_session", "home": "/admin/users",
             "user": "admin", "db": NODE_DB},
    "hub": {"pre": "peernet_hub_pre", "session": "peernet_hub_session", "home": "/operator",
            "user": "op", "db": HUB_DB},
}


async def _both(node_app: MakeApp, hub_app: MakeApp) -> dict[str, App]:
    return {"node": await node_app(), "hub": await hub_app()}


async def test_both_login_pages_come_from_the_kit(node_app: MakeApp, hub_app: MakeApp) -> None:
    apps = await _both(node_app, hub_app)
    forms, icons = {}, {}
    for name, app in apps.items():
        r = await app.client.get("/login", headers=HTML)
        page = await r.text()
        assert r.status == 200
        assert page.count('data-kit="login"') == 1, name
        assert '<link rel="stylesheet" href="/static/kit/kit.css">' in page, name
        form = FORM_RE.search(page)
        assert form is not None, name
        forms[name] = CSRF_RE.sub('name="csrf" value=""', form.group(0))
        css = await app.client.get("/static/kit/kit.css")
        assert css.status == 200 and ".card" in await css.text()
        icon = await app.client.get("/favicon.ico")
        assert icon.status == 200
        icons[name] = await icon.read()
    assert forms["node"] == forms["hub"]
    assert icons["node"] == icons["hub"]
    hub_page = await (await apps["hub"].client.get("/login", headers=HTML)).text()
    assert "Statewide peer support statistics" in hub_page  # the hub's intro line
    assert '<a class="skip" href="#main">' in hub_page
    record("security-webkit-login-page", area="security",
           case="node and hub login pages come from the one web kit template",
           how="GET /login on a real node and a real hub; the forms compared with the "
               "per-request token blanked; kit.css and favicon fetched from both",
           result="both carry the kit's marker; identical forms; same stylesheet and icon",
           figures={"servers": len(apps)})


async def _forged_login(app: App, pre_cookie: str) -> list[Any]:
    """Two forged login posts: a token under another secret, a token of another pre-session."""
    client = app.client
    out = []
    r = await client.get("/login")
    pre = r.cookies[pre_cookie].value
    forged = login_csrf(b"not the server's secret" + b"\0" * 8, pre)
    out.append(await client.post("/login", headers=HTML, allow_redirects=False,
                                 data={"username": "x", "password": "y", "csrf": forged}))
    real = CSRF_RE.search(await r.text())
    assert real is not None
    client.session.cookie_jar.update_cookies({pre_cookie: new_token()}, client.make_url("/"))
    out.append(await client.post("/login", headers=HTML, allow_redirects=False,
                                 data={"username": "x", "password": "y",
                                       "csrf": real.group(1)}))
    return out


@pytest.mark.parametrize("server", ["node", "hub"])
async def test_a_forged_csrf_token_is_refused(server: str, node_app: MakeApp,
                                              hub_app: MakeApp) -> None:
    s = SERVERS[server]
    app = await (node_app() if server == "node" else hub_app())
    engine = app.app[s["db"]].engine
    before = await snapshot(engine)
    refused = await _forged_login(app, s["pre"])
    assert await snapshot(engine) == before  # no throttle counter, no session
    # a live session, then logout with a token that is not the session's
    r = await login(app.client, s["user"])
    assert r.status == 303
    assert await page_csrf(app.client, s["home"])
    during = await snapshot(engine)
    refused.append(await app.client.post("/logout", headers=HTML, allow_redirects=False,
                                         data={"csrf": new_token()}))
    for r in refused:
        body = await r.text()
        assert r.status == 403, (server, r.status)
        assert 'data-code="csrf_failed"' in body and 'data-kit="error"' in body, server
        assert s["session"] not in r.cookies
    after = await snapshot(engine)
    # only the node's audit entry of the refusal (csrf.refused) is written
    assert {k for k in after if after[k] != during[k]} <= {"audit_log"}
    r = await app.client.get(s["home"], allow_redirects=False)
    assert r.status == 200  # the forged logout did not end the session
    record(f"security-webkit-csrf-{server}", area="security",
           case=f"forged CSRF tokens on the {server}'s login and logout (shared web kit)",
           how="login posts with a token under another secret and with a token replayed "
               "under another pre-session cookie; logout from a live session with another "
               "token; real server, real database",
           result="403 csrf_failed on the kit's error page each time, no session cookie, "
                  "the session alive, nothing stored but the node's audit entry",
           figures={"attempts": len(refused)})
