"""Dashboard figures a reader can trust (issue 13 items 11 and 12), over a real hub on SQLite
and PostgreSQL: an empty period says nothing was reported (not "0, 95%: 0-0"); the CSV shows
exactly the page's rounded, clamped figures (never a negative or unrounded bound); a bad
month filter is refused with a sentence, not a regular expression; /favicon.ico is served."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from federation import passwords
from hub.appkeys import CLOCK, DB
from hub.stats.aggregates import accept_release
from hub.users import accounts as users
from node.privacy.release import build_release
from node.privacy.schema import ReleasePolicy
from tests.federation.network import Network, make_network
from tests.privacy.synthetic import synthetic_columns
from tests.privacy.test_dashboard import PASSWORD, client, code_of, login

MONTH = "2026-03"


@pytest.fixture(params=["sqlite", "postgres"])
async def bare_hub(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Network]:
    """A real hub and two nodes, no releases yet, one board analyst."""
    monkeypatch.setattr(users, "PASSWORD_COST", passwords.MIN)
    admin = request.getfixturevalue("pg_admin_url") if request.param == "postgres" else None
    net = await make_network(2, tmp_path=tmp_path, db=request.param, pg_admin_url=admin)
    try:
        app = net.hub.app
        assert app is not None
        await users.create_user(app[DB], app[users.HASHER], username="analyst",
                                password=PASSWORD, role="board_analyst",
                                now_ms=app[CLOCK].now_ms())
        yield net
    finally:
        await net.close()


async def release_tiny_month(net: Network) -> None:
    """Each node releases a month of a handful of encounters: noise dominates, so raw
    interval bounds go below zero."""
    hub = net.hub
    state = hub.fed.state
    policy = ReleasePolicy.from_roster_policy(state.policy)
    now = net.clock.now_ms()
    for k, node in enumerate(net.nodes):
        signed = build_release(
            synthetic_columns(3, 3, seed=k), node_id=node.node_id, month=MONTH,
            policy=policy, signing_key=node.keys.signing_key,
            key_version=node.keys.key_version, now_ms=now)
        async with hub.db.write() as conn:
            await accept_release(conn, signed.body, sender=node.node_id, keys=state,
                                 region=state.node(node.node_id).region, now_ms=now)


async def test_an_empty_period_says_nothing_was_reported(bare_hub: Network) -> None:
    base = bare_hub.hub.url
    async with client() as http:
        await login(http, base, "analyst")
        async with http.get(base + "/dashboard") as r:
            html = await r.text()
        assert r.status == 200
        assert "Nothing reported for this period" in html
        assert "95%: 0" not in html and "encounters</span>" not in html
        await release_tiny_month(bare_hub)
        async with http.get(base + f"/dashboard?month_from={MONTH}&month_to={MONTH}") as r:
            html = await r.text()
        assert "Nothing reported for this period" not in html and "95%:" in html


async def test_csv_shows_the_figures_the_page_shows(bare_hub: Network) -> None:
    await release_tiny_month(bare_hub)
    base = bare_hub.hub.url
    q = f"?month_from=2026-02&month_to={MONTH}"
    async with client() as http:
        await login(http, base, "analyst")
        async with http.get(base + "/api/v1/stats.csv" + q) as r:
            rows = list(csv.DictReader(io.StringIO(await r.text())))
        async with http.get(base + "/api/v1/stats" + q) as r:
            doc = await r.json()
    shown = {}
    for m in doc["months"]:
        for metric in ("encounters", "referrals", "referral_rate"):
            if m[metric] is not None and m["nodes_reporting"]:
                shown[(m["month"], metric)] = m[metric]["display"]
        for d, fig in m["by_discipline"].items():
            if m["nodes_reporting"]:
                shown[(m["month"], f"encounters.{d}")] = fig["display"]
    raw_lows = [fig["interval"][0] for m in doc["months"] if m["nodes_reporting"]
                for fig in m["by_discipline"].values()]
    assert min(raw_lows) < 0  # the case the CSV used to print as is
    seen = 0
    for row in rows:
        key = (row["month"], row["metric"])
        if row["month"] == "2026-02":  # nobody reported: blank, as the page's gap
            assert (row["estimate"], row["low_95"], row["high_95"]) == ("", "", "")
            continue
        if key not in shown:
            continue
        d = shown[key]
        assert [row["estimate"], row["low_95"], row["high_95"]] == [
            str(d["estimate"]), str(d["interval"][0]), str(d["interval"][1])], key
        values = [float(row[k]) for k in ("estimate", "low_95", "high_95")]
        assert min(values) >= 0
        if not row["metric"].endswith("_rate"):
            assert all(v == int(v) for v in values) and "." not in row["low_95"]
        seen += 1
    assert seen >= 8


async def test_bad_month_filter_is_a_sentence(bare_hub: Network) -> None:
    base = bare_hub.hub.url
    async with client() as http:
        await login(http, base, "analyst")
        for bad in ("?month_from=2026-13", "?month_to=March"):
            async with http.get(base + "/dashboard" + bad) as r:
                html = await r.text()
            assert (r.status, code_of(html)) == (400, "invalid_input")
            assert "Choose a month, for example 2026-03." in html
            assert "pattern" not in html.lower() and "[0-9]" not in html
        async with http.get(base + "/api/v1/stats?month_from=2026-13") as r:
            err = (await r.json())["error"]
        assert (r.status, err["code"], err["field"]) == (400, "invalid_input", "month_from")
        assert err["message"] == "Choose a month, for example 2026-03."


async def test_favicon_is_served(bare_hub: Network) -> None:
    async with client() as http:
        async with http.get(bare_hub.hub.url + "/favicon.ico") as r:
            body = await r.read()
        assert (r.status, r.content_type) == (200, "image/x-icon")
        assert body[:4] == b"\x00\x00\x01\x00"
