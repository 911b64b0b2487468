"""Roster alarms on the hub's operator page, over real HTTP on SQLite and PostgreSQL.

A genuine split view (a second v1 validly signed by the board, offered by a peer) shows as a
readable row (title, reason in words, when, from whom), never a mapping's repr. The
acknowledge button needs the operator role and the session's CSRF token: a board analyst is
refused 403 `forbidden`, a missing or forged token 403 `csrf_failed`, a bad note 400, an
unknown alarm 404, a second acknowledgement 409, none of which changes anything. An
acknowledged alarm is kept, shown with who, when and the note, and no longer active.
An edited copy of the roster offered the same way raises nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bench.reliability_report import record
from federation import passwords
from federation.errors import FederationError
from federation.roster import parse_signed_roster
from federation.store import alarms
from hub.appkeys import CLOCK, DB
from hub.users import accounts as users
from tests.federation.network import Network, make_network

PASSWORD = "a long calm passphrase"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(params=["sqlite", "postgres"])
async def hubnet(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Network]:
    monkeypatch.setattr(users, "PASSWORD_COST", passwords.MIN)
    pg = request.getfixturevalue("pg_admin_url") if request.param == "postgres" else None
    net = await make_network(1, tmp_path=tmp_path, db=request.param, pg_admin_url=pg)
    try:
        app = net.hub.app
        assert app is not None
        for name, role in (("analyst", "board_analyst"), ("operator", "operator")):
            await users.create_user(app[DB], app[users.HASHER], username=name,
                                    password=PASSWORD, role=role, now_ms=app[CLOCK].now_ms())
        yield net
    finally:
        await net.close()


def _client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _login(http: aiohttp.ClientSession, base: str, username: str) -> str:
    """Log in; the page CSRF token of the new session."""
    async with http.get(base + "/login") as r:
        m = _CSRF.search(await r.text())
    assert m is not None
    async with http.post(base + "/login", data={"csrf": m.group(1), "username": username,
                                                "password": PASSWORD},
                         allow_redirects=False) as r:
        assert r.status == 303
    async with http.get(base + "/dashboard") as r:
        m = _CSRF.search(await r.text())
    assert m is not None
    return m.group(1)


def _code(html: str) -> str | None:
    m = re.search(r'data-code="([a-z_]+)"', html)
    return m.group(1) if m else None


async def _rows(net: Network) -> list[Any]:
    async with net.hub.db.read() as conn:
        return list((await conn.execute(select(alarms).order_by(alarms.c.id))).all())


async def test_operator_page_shows_and_acknowledges_a_split_view(hubnet: Network) -> None:
    net, base = hubnet, hubnet.hub.url
    store = net.hub.fed.roster
    # An edited copy of our own v1, offered by a peer: refused, no alarm.
    doc = json.loads(net.roster.to_bytes())
    doc["roster"]["expires_ts"] += 1
    with pytest.raises(FederationError) as e:
        await store.accept([parse_signed_roster(json.dumps(doc).encode())], source="agency-1")
    assert e.value.code == "bad_signatures"
    assert await _rows(net) == []
    # A second v1 validly signed by the board: one alarm.
    twin = net.board.sign(net.board.roster(1, now=net.clock.now_ms() + 5))
    with pytest.raises(FederationError) as e:
        await store.accept([twin], source="agency-1")
    assert e.value.code == "split_view"
    [row] = await _rows(net)
    aid = row.id

    async with _client() as op, _client() as an:
        op_csrf = await _login(op, base, "operator")
        async with op.get(base + "/operator") as r:
            html = await r.text()
        assert r.status == 200
        assert "Split view" in html and "both claim version 1" in html and "from agency-1" in html
        assert f'action="/operator/alarms/{aid}/ack"' in html
        assert "{&#39;" not in html and "{'" not in html and "seen_sha256" not in html

        path = f"{base}/operator/alarms/{aid}/ack"
        note = "Board confirmed our v1; agency-1 had a draft."
        an_csrf = await _login(an, base, "analyst")
        for http, data, want in [
            (an, {"csrf": an_csrf, "note": note}, (403, "forbidden")),
            (op, {"note": note}, (403, "csrf_failed")),
            (op, {"csrf": "forged", "note": note}, (403, "csrf_failed")),
            (op, {"csrf": op_csrf, "note": "  "}, (400, "invalid_input")),
            (op, {"csrf": op_csrf, "note": note, "by": "someone"}, (400, "invalid_input")),
        ]:
            async with http.post(path, data=data, allow_redirects=False) as r:
                assert (r.status, _code(await r.text())) == want, data
        async with op.post(f"{base}/operator/alarms/999999/ack", data={"csrf": op_csrf,
                           "note": note}, allow_redirects=False) as r:
            assert (r.status, _code(await r.text())) == (404, "not_found")
        assert await _rows(net) == [row]  # nothing changed

        async with op.post(path, data={"csrf": op_csrf, "note": note},
                           allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/operator"
        async with op.post(path, data={"csrf": op_csrf, "note": "again"},
                           allow_redirects=False) as r:
            assert (r.status, _code(await r.text())) == (409, "conflict")
        async with op.get(base + "/operator") as r:
            html = await r.text()
        assert "None active." in html and "Acknowledged by operator" in html
        assert "agency-1 had a draft" in html and f'action="/operator/alarms/{aid}/ack"' not in html

    [acked] = await _rows(net)
    assert acked.id == aid and acked.acknowledged_by == "operator" and acked.ack_note == note
    assert acked.acknowledged_ts is not None
    listed = await store.list_alarms()
    assert [(a["id"], a["active"]) for a in listed] == [(aid, False)]
    engine = "postgresql" if net.hub.db_url.startswith("postgresql") else "sqlite"
    record(f"security-alarm-ack-page-{engine}", area="security",
           case=f"acknowledging a roster alarm on the hub operator page ({engine})",
           how="POST /operator/alarms/{id}/ack as a board analyst, without and with a forged "
               "CSRF token, with a blank note, an unknown field, an unknown id, then twice",
           result="403 forbidden / 403 csrf_failed / 400 / 404, nothing changed; one "
                  "acknowledgement stored with who and note; the second is 409 conflict",
           figures={"refused": 7, "acknowledged": 1})
