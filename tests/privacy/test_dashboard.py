"""The board dashboard and hub logins over real HTTP: a board analyst sees the charts and the
activation log and nothing operator-only; CSRF, roles, bad filters and bad logins are
refused with stable codes and change nothing; and in headless Chromium on a phone-sized
screen, with screenshots in test-artifacts/."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, insert, select

from federation import passwords
from hub.appkeys import CLOCK
from hub.relay.activation_log import activation_log
from hub.stats.aggregates import accept_release
from hub.users import accounts as users
from node.privacy.release import build_release
from node.privacy.schema import ReleasePolicy
from tests.conftest import ARTIFACTS
from tests.federation.network import Network, make_network
from tests.privacy.synthetic import synthetic_columns

PASSWORD = "a long calm passphrase"
MONTHS = [f"{2025 + (i + 4) // 12}-{(i + 4) % 12 + 1:02d}" for i in range(12)]  # 2025-05..2026-04


async def seed_hub(net: Network) -> None:
    """A year of releases from every node but one missing month, two activation entries,
    an analyst and an operator."""
    hub = net.hub
    state = hub.fed.state
    policy = ReleasePolicy.from_roster_policy(state.policy)
    now = net.clock.now_ms()
    for k, node in enumerate(net.nodes):
        for i, month in enumerate(MONTHS):
            if k == 1 and month == MONTHS[-1]:
                continue  # agency-2 has not reported the latest month yet
            signed = build_release(
                synthetic_columns(150 + 40 * k + 9 * i, 60, seed=100 * k + i),
                node_id=node.node_id, month=month, policy=policy,
                signing_key=node.keys.signing_key, key_version=node.keys.key_version,
                now_ms=now)
            async with hub.db.write() as conn:
                await accept_release(conn, signed.body, sender=node.node_id, keys=state,
                                     region=state.node(node.node_id).region, now_ms=now)
    async with hub.db.write() as conn:
        for j, (state_name, offered) in enumerate([("requested", 0), ("accepted", 3)]):
            await conn.execute(insert(activation_log).values(
                activation_id=f"01J{j:023d}", requester="agency-1", responder="agency-2",
                state=state_name, incident_type="line_of_duty_death", affected=14,
                peers_needed=4, peers_offered=offered, status_ts=now - 3_600_000 * (2 - j),
                reported_by="agency-1", msg_id=f"01K{j:023d}", received_ts=now))
    app = hub.app
    assert app is not None
    for name, role in (("analyst", "board_analyst"), ("operator", "operator")):
        await users.create_user(app[hub_db_key()], app[users.HASHER], username=name,
                                password=PASSWORD, role=role, now_ms=app[CLOCK].now_ms())


def hub_db_key() -> Any:
    from hub.appkeys import DB

    return DB


@pytest.fixture
async def hubnet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Network]:
    """A real hub and two real nodes, the hub seeded (see `seed_hub`); cheap password cost."""
    monkeypatch.setattr(users, "PASSWORD_COST", passwords.MIN)
    net = await make_network(2, tmp_path=tmp_path)
    try:
        await seed_hub(net)
        yield net
    finally:
        await net.close()


def client() -> aiohttp.ClientSession:
    """A client keeping cookies from 127.0.0.1 (aiohttp's default jar drops IP hosts')."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def login(http: aiohttp.ClientSession, base: str, username: str,
                password: str = PASSWORD) -> aiohttp.ClientResponse:
    async with http.get(base + "/login") as resp:
        token = _CSRF.search(await resp.text())
    assert token is not None
    async with http.post(base + "/login", data={"csrf": token.group(1), "username": username,
                                                "password": password},
                         allow_redirects=False) as resp:
        await resp.read()
        return resp


def code_of(html: str) -> str | None:
    m = re.search(r'data-code="([a-z_]+)"', html)
    return m.group(1) if m else None


async def user_count(net: Network) -> int:
    async with net.hub.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(users.U))).scalar_one())


async def test_analyst_sees_statistics_and_log_but_not_operator_pages(hubnet: Network) -> None:
    base = hubnet.hub.url
    async with client() as http:
        resp = await login(http, base, "analyst")
        assert resp.status == 303 and resp.headers["Location"] == "/dashboard"
        cookie = resp.cookies[users.SESSION_COOKIE]
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        async with http.get(base + "/dashboard") as r:
            html = await r.text()
            assert r.status == 200
            assert "Content-Security-Policy" in r.headers
        assert html.count('class="chart series"') == 1 + 6  # all, then one per discipline
        assert html.count('class="chart rows"') == 2
        assert "95% interval" in html and "Line of duty death" in html
        assert "Agency 2" in html and "missing" in html  # agency-2 missed April
        assert "<script" not in html
        async with http.get(base + "/dashboard/activations") as r:
            assert r.status == 200 and "agency-2" in await r.text()
        async with http.get(base + "/dashboard/about") as r:
            assert r.status == 200 and "one twelfth" in await r.text()
        async with http.get(base + "/api/v1/stats.csv?month_from=2026-01&month_to=2026-04") as r:
            assert r.status == 200 and r.content_type == "text/csv"
            assert (await r.text()).startswith("month,metric,estimate,low_95,high_95")
        async with http.get(base + "/operator") as r:
            assert (r.status, code_of(await r.text())) == (403, "forbidden")
        for path in ("/api/v1/relay/queue", "/api/v1/stats/alarms", "/api/v1/federation/alarms"):
            async with http.get(base + path) as r:
                assert (r.status, (await r.json())["error"]["code"]) == (403, "forbidden")
        async with http.get(base + "/api/v1/activation-log") as r:
            assert r.status == 200 and len((await r.json())["entries"]) == 2


async def test_filters_narrow_the_figures_and_bad_filters_are_refused(hubnet: Network) -> None:
    base = hubnet.hub.url
    async with client() as http:
        await login(http, base, "analyst")
        q = "?month_from=2026-01&month_to=2026-04&region=north&discipline=fire"
        async with http.get(base + "/dashboard" + q) as r:
            html = await r.text()
        assert r.status == 200
        assert html.count('class="chart series"') == 2  # all selected + fire
        assert "Agency 2" not in html  # the south is filtered out
        assert "discipline=fire" in html and "region=north" in html  # the CSV link follows
        for bad in ("?month_from=2026-13", "?colour=blue", "?discipline=pilots",
                    "?month_from=2026-04&month_to=2026-01", "?region=a&region=b"):
            async with http.get(base + "/dashboard" + bad) as r:
                assert (r.status, code_of(await r.text())) == (400, "invalid_input"), bad


async def test_operator_adds_a_user_only_with_csrf_and_role(hubnet: Network) -> None:
    base = hubnet.hub.url
    before = await user_count(hubnet)
    form = {"username": "newboard", "password": PASSWORD, "role": "board_analyst"}
    async with client() as op, client() as an:
        await login(op, base, "operator")
        async with op.post(base + "/operator/users", data=form) as r:
            assert (r.status, code_of(await r.text())) == (403, "csrf_failed")
        async with op.post(base + "/operator/users", data={**form, "csrf": "forged"}) as r:
            assert (r.status, code_of(await r.text())) == (403, "csrf_failed")
        await login(an, base, "analyst")
        async with an.get(base + "/dashboard") as r:
            analyst_csrf = _CSRF.search(await r.text())
        assert analyst_csrf is not None
        async with an.post(base + "/operator/users",
                           data={**form, "csrf": analyst_csrf.group(1)}) as r:
            assert (r.status, code_of(await r.text())) == (403, "forbidden")
        assert await user_count(hubnet) == before

        async with op.get(base + "/operator") as r:
            html = await r.text()
            assert r.status == 200 and "Conflicting releases" in html
        token = _CSRF.search(html)
        assert token is not None
        async with op.post(base + "/operator/users", data={**form, "csrf": token.group(1)}) as r:
            assert r.status == 200 and "Added newboard" in await r.text()
        async with op.post(base + "/operator/users", data={**form, "csrf": token.group(1)}) as r:
            assert (r.status, code_of(await r.text())) == (409, "conflict")
        async with op.post(base + "/operator/users",
                           data={**form, "username": "x!", "csrf": token.group(1)}) as r:
            assert (r.status, code_of(await r.text())) == (400, "invalid_input")
        async with op.post(base + "/operator/users",
                           data={**form, "role": "admin", "username": "someone",
                                 "csrf": token.group(1)}) as r:
            assert (r.status, code_of(await r.text())) == (400, "invalid_input")
    assert await user_count(hubnet) == before + 1


async def test_bad_logins_are_refused_and_throttled(hubnet: Network) -> None:
    base = hubnet.hub.url
    async with client() as http:
        async with http.post(base + "/login", data={"username": "analyst", "password": PASSWORD},
                             allow_redirects=False) as r:
            assert (r.status, code_of(await r.text())) == (403, "csrf_failed")
        for _ in range(5):
            resp = await login(http, base, "analyst", "wrong password!")
            assert resp.status == 401
        resp = await login(http, base, "analyst")  # right password, but locked out now
        assert resp.status == 429
        async with http.get(base + "/dashboard", allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/login"


async def test_logout_ends_the_session_and_tokens_work_for_scripts(hubnet: Network) -> None:
    base, app = hubnet.hub.url, hubnet.hub.app
    assert app is not None
    async with client() as http:
        await login(http, base, "analyst")
        async with http.get(base + "/dashboard") as r:
            token = _CSRF.search(await r.text())
        assert token is not None
        async with http.post(base + "/logout", data={"csrf": token.group(1)},
                             allow_redirects=False) as r:
            assert r.status == 303
        async with http.get(base + "/dashboard", allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/login"
    db = app[hub_db_key()]
    secret = await users.create_token(db, username="analyst", label="nightly export",
                                      now_ms=hubnet.clock.now_ms())
    auth = {"Authorization": f"Bearer {secret}"}
    async with client() as http:
        async with http.get(base + "/api/v1/stats", headers=auth) as r:
            assert r.status == 200 and len((await r.json())["months"]) == 12
        async with http.get(base + "/api/v1/relay/queue", headers=auth) as r:
            assert r.status == 403
        await users.set_active(db, "analyst", False, hubnet.clock.now_ms())
        async with http.get(base + "/api/v1/stats", headers=auth) as r:
            assert (r.status, (await r.json())["error"]["code"]) == (401, "unauthenticated")


async def test_dashboard_in_chromium_on_a_phone(hubnet: Network, browser_page: Any) -> None:
    page = browser_page
    base = hubnet.hub.url
    await page.goto(base + "/dashboard")
    assert page.url.endswith("/login")
    await page.get_by_label("Username").fill("analyst")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(base + "/dashboard")
    charts = page.get_by_role("img")
    assert await charts.count() == 1 + 6 + 2
    label = await charts.first.get_attribute("aria-label")
    assert label is not None and "95% interval" in label
    assert await page.get_by_role("heading", name="Latest interagency activations").is_visible()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing overflows a phone screen sideways
    await page.screenshot(path=str(ARTIFACTS / "hub-dashboard-phone.png"), full_page=True)
    await page.screenshot(path=str(ARTIFACTS / "hub-dashboard-phone-top.png"))
    await page.get_by_role("link", name="About the numbers").click()
    await page.wait_for_url(base + "/dashboard/about")
    await page.screenshot(path=str(ARTIFACTS / "hub-about-phone.png"), full_page=True)
    await page.goto(base + "/operator")
    assert await page.get_by_role("heading", name="Not available to you").is_visible()
    assert await page.get_by_text("Your role may not use this").is_visible()
    await page.screenshot(path=str(ARTIFACTS / "hub-operator-refused-phone.png"))
