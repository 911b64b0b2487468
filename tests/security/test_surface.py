"""Role escalation on every route, path traversal on static files, oversize and slow bodies.

- Roles: every node route x every role outside its `roles`, through a cookie session *with*
  a valid CSRF token (the token path is covered by tests/node/test_role_matrix.py): 403
  `forbidden`, nothing stored changed but the audit log. Named escalations: a supporter
  making itself admin, a token minted for someone else, a forged bearer token. On the hub,
  every API route x anonymous / board analyst / operator token.
- Static files: `..` in every spelling the router might decode, on both servers: never a
  file outside the static folder.
- Bodies: a declared Content-Length over the limit and a chunked body over it are refused
  with 413 before the handler runs; a body that dribbles in is cut off with 408
  `request_timeout` after the deadline while the server keeps answering others; an
  oversize header line is refused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from bench.reliability_report import record
from federation import websecurity
from hub.appkeys import DB as HUB_DB
from node.core.appkeys import DB as NODE_DB
from node.core.appkeys import ROUTES
from tests.security.conftest import NODE_ROLES, MakeApp, fill, login, page_csrf, snapshot


async def test_node_role_escalation_on_every_route_by_session(node_app: MakeApp) -> None:
    node = await node_app()
    engine = node.app[NODE_DB].engine
    jar = node.client.session.cookie_jar
    sessions: dict[str, tuple[str, str]] = {}
    for role, name in NODE_ROLES.items():
        jar.clear()
        r = await login(node.client, name)
        cookie = r.cookies["peernet_session"].value
        sessions[role] = (cookie, await page_csrf(node.client, "/"))
    tried = 0
    for route in node.app[ROUTES]:
        if route.roles is None:
            continue
        allowed = {r.value for r in route.roles}
        for role, (cookie, csrf) in sessions.items():
            if role in allowed:
                continue
            jar.clear()
            jar.update_cookies({"peernet_session": cookie}, node.client.make_url("/"))
            before = await snapshot(engine)
            unsafe = route.method not in ("GET", "HEAD")
            r = await node.client.request(
                route.method, fill(route.path), headers={"X-CSRF-Token": csrf},
                json={} if unsafe and route.is_api else None,
                data={"csrf": csrf} if unsafe and not route.is_api else None,
                allow_redirects=False)
            assert r.status == 403 and "forbidden" in await r.text(), (route.name, role)
            after = await snapshot(engine)
            assert {k for k in after if after[k] != before[k]} <= {"audit_log", "audit_head"}
            tried += 1
    # named escalations with a supporter's own credentials
    sup = node.bearer("sup")
    before = await snapshot(engine)
    r = await node.client.patch(f"/api/v1/users/{node.users['sup']}", json={"role": "admin"},
                                headers=sup)
    assert r.status == 403
    r = await node.client.post("/api/v1/tokens", json={"label": "x",
                                                       "user_id": str(node.users["admin"])},
                               headers=sup)
    assert r.status == 422 and "unknown_field" in await r.text()
    for forged in ("pn_" + "A" * 43, node.tokens["admin"][:-1] + "x", "", "null"):
        r = await node.client.get("/api/v1/users", headers={"Authorization": f"Bearer {forged}"})
        assert r.status == 401, forged
    r = await node.client.get("/api/v1/users", headers={
        "Authorization": f"Basic {node.tokens['admin']}"})
    assert r.status == 401
    after = await snapshot(engine)
    assert {k for k in after if after[k] != before[k]} <= {"audit_log", "audit_head"}
    me = await node.client.get("/api/v1/me", headers=sup)
    assert (await me.json())["role"] == "peer_supporter"
    record("security-roles-node", area="security", case="role escalation on every node route",
           how="every route x every role outside its roles through a logged-in session with a "
               "valid CSRF token; a supporter PATCHing itself to admin; a token for another "
               "user; forged and truncated bearer tokens",
           result="403 forbidden / 401 every time; no table changed but the audit log",
           figures={"attempts": tried + 7})


HUB_EXPECT: dict[tuple[str, str], set[str]] = {
    ("GET", "/api/v1/activation-log"): {"operator", "board_analyst"},
    ("GET", "/api/v1/relay/queue"): {"operator"},
    ("GET", "/api/v1/federation/alarms"): {"operator"},
    ("POST", "/api/v1/roster"): {"operator"},
    ("GET", "/api/v1/stats"): {"operator", "board_analyst"},
    ("GET", "/api/v1/stats.csv"): {"operator", "board_analyst"},
    ("POST", "/api/v1/rounds/{month}"): {"operator"},
    ("GET", "/api/v1/shared-figures"): {"operator", "board_analyst"},
    ("GET", "/api/v1/national"): {"operator", "board_analyst"},
    ("POST", "/api/v1/national/refresh"): {"operator"},
    ("POST", "/api/v1/compact"): {"operator"},
    ("GET", "/api/v1/interstate"): {"operator"},
}
HUB_PUBLIC = {("GET", "/healthz"), ("GET", "/api/v1/directory"), ("GET", "/api/v1/openapi.json")}


async def test_hub_roles_on_every_api_route(hub_app: MakeApp) -> None:
    hub = await hub_app()
    engine = hub.app[HUB_DB].engine
    api = sorted({(r.method, r.resource.canonical) for r in hub.app.router.routes()
                  if r.resource is not None and r.resource.canonical.startswith("/api/")
                  and r.method != "HEAD"})
    unknown = [x for x in api if x not in HUB_EXPECT and x not in HUB_PUBLIC]
    # routes added later still get checked: anything not listed must refuse the analyst
    tried = 0
    for method, path in api:
        if (method, path) in HUB_PUBLIC:
            continue
        allowed = HUB_EXPECT.get((method, path), {"operator"})
        before = await snapshot(engine)
        url = fill(path)
        r = await hub.client.request(method, url)
        assert r.status == 401, (path, "anonymous", r.status)
        r = await hub.client.request(method, url, headers={"Authorization": "Bearer forged"})
        assert r.status == 401, (path, "forged", r.status)
        r = await hub.client.request(method, url, headers=hub.bearer("analyst"))
        if "board_analyst" in allowed:
            assert r.status != 403, (path, r.status)
        else:
            assert r.status == 403 and "forbidden" in await r.text(), (path, r.status)
        assert await snapshot(engine) == before, path
        tried += 3
    record("security-roles-hub", area="security", case="role escalation on every hub API route",
           how="every /api/ route of the hub's router: anonymous, a forged token, a board "
               "analyst's token (operator-only routes)",
           result="401 / 403 forbidden as the role table says; nothing stored changed",
           figures={"routes": len(api), "attempts": tried, "unlisted_routes": len(unknown)})


TRAVERSALS = [
    "/static/../app.py", "/static/%2e%2e/app.py", "/static/%2E%2E%2Fapp.py",
    "/static/..%2fapp.py", "/static/..%252fapp.py", "/static/....//app.py",
    "/static/%2e%2e/%2e%2e/pyproject.toml", "/static/../../pyproject.toml",
    "/static//etc/passwd", "/static/%2fetc%2fpasswd", "/static/..\\app.py",
    "/static/%c0%ae%c0%ae/app.py", "/static/./../config.py", "/static/%00../app.py",
    "/static/../../../../../../etc/passwd",
]
OUTSIDE = ("def create_app", "[project]", "root:x:", "import ", "BaseSettings")


@pytest.mark.parametrize("server", ["node", "hub"])
async def test_static_path_traversal(server: str, node_app: MakeApp, hub_app: MakeApp) -> None:
    import yarl

    app = await (node_app() if server == "node" else hub_app())
    statuses = []
    for path in TRAVERSALS:
        url = app.client.make_url("/").join(yarl.URL(path, encoded=True))
        r = await app.client.session.get(url, allow_redirects=False)
        body = await r.text(errors="replace")
        statuses.append(r.status)
        assert r.status in (400, 403, 404), (path, r.status)
        assert not any(m in body for m in OUTSIDE), path
    # the static folder itself still serves
    css = "/static/app.css" if server == "node" else "/static/hub.css"
    r = await app.client.get(css)
    record(f"security-traversal-{server}", area="security",
           case=f"path traversal on {server} static files",
           how=f"{len(TRAVERSALS)} spellings of `..`, encoded slashes, overlong UTF-8, NUL, "
               "absolute paths, sent unnormalised",
           result="never a file outside the static folder (400/403/404)",
           figures={"attempts": len(TRAVERSALS), "statuses": sorted(set(statuses)),
                    "static_still_served": r.status})


async def _raw(port: int, payload: bytes, then: bytes = b"", wait: float = 0.0,
               read_timeout: float = 15.0) -> tuple[bytes, float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.monotonic()
    try:
        writer.write(payload)
        await writer.drain()
        if then:
            await asyncio.sleep(wait)
            writer.write(then)
            await writer.drain()
        data = await asyncio.wait_for(reader.read(4096), read_timeout)
        return data, time.monotonic() - t0
    finally:
        writer.close()


@pytest.mark.parametrize("server", ["node", "hub"])
async def test_oversize_and_slow_bodies(server: str, node_app: MakeApp, hub_app: MakeApp,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(websecurity, "BODY_READ_TIMEOUT_S", 1.0)
    import federation.transport as transport

    monkeypatch.setattr(transport, "BODY_READ_TIMEOUT_S", 1.0)
    app = await (node_app() if server == "node" else hub_app())
    engine = app.app[NODE_DB if server == "node" else HUB_DB].engine
    port = app.client.port
    path = "/api/v1/encounters" if server == "node" else "/api/v1/roster"
    auth = f"Authorization: Bearer {app.tokens['coord' if server == 'node' else 'op']}\r\n"
    before = await snapshot(engine)
    # declared too large: refused before reading
    big = 200 * 1024
    data, _ = await _raw(port, (f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: "
                                f"application/json\r\nContent-Length: {big}\r\n\r\n").encode())
    assert data.startswith(b"HTTP/1.1 413"), data[:200]
    # chunked, no length, too large: cut at client_max_size
    r = await app.client.post(path, data=_chunks(big), headers={
        "Authorization": auth.split(": ", 1)[1].strip(), "Content-Type": "application/json"})
    assert r.status == 413, r.status
    # slowloris body: a few bytes then silence; 408 after the deadline
    data, took = await _raw(port, (f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: "
                                   "application/json\r\nContent-Length: 1000\r\n\r\n{").encode())
    assert data.startswith(b"HTTP/1.1 408") and b"request_timeout" in data, data[:300]
    assert took < 10, took
    # ... the same on the federation send route (it reads its own larger batches)
    data, took = await _raw(port, (b"PUT /fed/v1/send/t1 HTTP/1.1\r\nHost: x\r\n"
                                   b"Content-Length: 5000\r\n\r\n{\"env"))
    assert data.startswith(b"HTTP/1.1 408"), data[:300]
    # while a slow client waits, others are served
    slow = asyncio.create_task(_raw(port, (f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}"
                                           "Content-Length: 100\r\n\r\n").encode()))
    r = await app.client.get("/healthz")
    assert r.status == 200
    assert (await slow)[0].startswith(b"HTTP/1.1 408")
    # an oversize header line
    data, _ = await _raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000
                         + b"\r\n\r\n")
    assert data.split(b" ", 2)[1] in (b"400", b"431"), data[:100]
    assert await snapshot(engine) == before
    record(f"security-bodies-{server}", area="security",
           case=f"oversize and slowloris bodies ({server})",
           how="raw sockets: Content-Length 200 KiB; 200 KiB chunked without a length; 1 byte "
               "of a 1000-byte body then silence (API and federation send route); a 20 KB "
               "header line (deadline lowered to 1 s for the test; 30 s in service)",
           result="413 before reading; 413 at client_max_size; 408 request_timeout after the "
                  "deadline with other requests served meanwhile; 400 for the header; nothing "
                  "stored", figures={"slow_body_cut_after_s": round(took, 2)})


@pytest.mark.parametrize("server", ["node", "hub"])
async def test_a_sender_hanging_up_mid_batch_is_not_a_server_error(
    server: str, node_app: MakeApp, hub_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    app = await (node_app() if server == "node" else hub_app())
    engine = app.app[NODE_DB if server == "node" else HUB_DB].engine
    before = await snapshot(engine)
    reader, writer = await asyncio.open_connection("127.0.0.1", app.client.port)
    writer.write(b"PUT /fed/v1/send/t1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
                 b'{"envelopes": [')
    await writer.drain()
    await asyncio.sleep(0.2)  # the handler is reading the body
    writer.transport.abort()  # a reset, as a sender whose own timeout fired
    await asyncio.sleep(0.3)
    r = await app.client.get("/healthz")
    assert r.status == 200
    assert await snapshot(engine) == before
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert errors == [], [rec.getMessage() for rec in errors]


async def _chunks(total: int) -> Any:
    sent = 0
    while sent < total:
        yield b"x" * 8192
        sent += 8192
