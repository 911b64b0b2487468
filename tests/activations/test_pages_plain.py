"""Activation pages and bodies say and carry no more than they should (issue 13 items 5, 11,
12), through real node servers and a real hub on SQLite and PostgreSQL:

- a request form refuses free text where a role or a code belongs, and an empty count
  table, with a sentence (no pydantic text), storing nothing;
- a request sent through the form says to how many agencies it went; pages show agency
  names from the roster and times with their zone; the decline reason has a visible label;
- `own_state` follows this node's part after an accept (it stayed `requested`);
- a peer whose request body carries a name in `approver`, or a hand-off note with a story,
  is refused `bad_body` on the wire, and the API refuses such a note with a field error.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from node.activation.db import Activation, Handoff
from node.core.vocabulary import Role
from protocol.activation_bodies import ActivationRequestBody
from protocol.messages import MessageType
from tests.activations.helpers import HOUR
from tests.activations.netutil import PASSWORD, actx, add_user, offer, view
from tests.federation.network import Network, NodeHandle, make_network

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
JARGON = re.compile(r"should (have|match|be)|after validation|pattern|\^|\[A-Z|dictionary",
                    re.IGNORECASE)


@pytest.fixture(params=["sqlite", "postgres"])
async def net(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Network]:
    admin = request.getfixturevalue("pg_admin_url") if request.param == "postgres" else None
    network = await make_network(3, tmp_path=tmp_path, db=request.param, pg_admin_url=admin)
    try:
        yield network
    finally:
        await network.close()


async def session(node: NodeHandle, who: str) -> tuple[aiohttp.ClientSession, str]:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                 headers={"Accept": "text/html"})
    async with http.get(node.url + "/login") as r:
        m = _CSRF.search(await r.text())
    assert m is not None
    async with http.post(node.url + "/login", data={
            "csrf": m.group(1), "username": who, "password": PASSWORD}) as r:
        assert r.status == 200
    async with http.get(node.url + "/activations/new") as r:
        m = _CSRF.search(await r.text())
    assert m is not None
    return http, m.group(1)


def request_form(csrf: str, now_local: str, **over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "csrf": csrf, "targets": ["agency-2", "agency-3"], "incident_ref": "INC-5",
        "incident_type": "mass_casualty", "event_at": now_local, "affected_fire": "12",
        "interventions": "defusing", "peers_needed": "3", "window_start": now_local,
        "window_end": now_local,
        "reporting_location": "sta-7", "priority": "urgent", "contact_role": "coordinator",
        "contact_phone": "+1 555 0100", "approver": "deputy_chief", "expires_in": "4",
        "action": "send",
    }
    data.update(over)
    return data


async def activations(node: NodeHandle) -> int:
    async with node.db.read() as conn:
        return int((await conn.execute(
            select(func.count()).select_from(Activation.__table__))).scalar_one())


def alert(html: str) -> tuple[str, str]:
    m = re.search(r'role="alert" data-code="([a-z_]+)">([^<]*)<', html)
    assert m, html[:3000]
    return m.group(1), m.group(2)


async def test_request_form_refuses_free_text_with_sentences(net: Network) -> None:
    a = net.node("agency-1")
    await add_user(a, "coord", Role.COORDINATOR)
    http, csrf = await session(a, "coord")
    now_local = "2026-01-01T10:00"
    try:
        cases = [
            ({"affected_fire": ""}, "Affected personnel: choose or fill in at least one."),
            ({"reporting_location": "Station 7, 100 Main St"},
             "Enter the reporting location as a short code"),
            ({"approver": "Deputy Chief Jim Smith"},
             "Approved by: choose one of the offered options."),
            ({"contact_role": "Jane Doe"}, "Contact role: choose one of the offered options."),
            ({"incident_ref": "#1 bad"}, "Enter the incident number as letters and digits"),
            ({"peers_needed": "three"}, "Peers needed must be a whole number."),
        ]
        for change, expected in cases:
            async with http.post(a.url + "/activations",
                                 data=request_form(csrf, now_local, **change)) as r:
                html = await r.text()
            assert r.status == 422, change
            code, text = alert(html)
            assert code in ("invalid_input", "invalid_enum"), change
            assert text.startswith(expected), (change, text)
            assert not JARGON.search(text), text
        assert await activations(a) == 0
    finally:
        await http.close()


async def test_sent_request_names_agencies_and_zones(net: Network) -> None:
    a, b = net.node("agency-1"), net.node("agency-2")
    await add_user(a, "coord", Role.COORDINATOR)
    await add_user(b, "coord", Role.COORDINATOR)
    http, csrf = await session(a, "coord")
    try:
        async with http.post(a.url + "/activations", allow_redirects=False,
                             data=request_form(csrf, "2026-01-01T10:00")) as r:
            assert r.status == 303
            location = r.headers["Location"]
        assert location.endswith("?sent=2")
        async with http.get(a.url + location) as r:
            html = await r.text()
        assert re.search(r'id="notice">Request sent to 2 agencies\.<', html)
        assert "Saved." not in html
        assert "Agency 2" in html and ">agency-2<" not in html
        assert re.search(r"Jan 01 10:00 UTC", html)  # local time with its zone
        assert "STA-7" in html and "Deputy chief" in html
        aid = location.split("/activations/")[1].split("?")[0]
    finally:
        await http.close()
    await net.settle()
    http, _ = await session(b, "coord")
    try:
        async with http.get(f"{b.url}/activations/{aid}?requester=agency-1") as r:
            html = await r.text()
        assert "Requested by" in html and "Agency 1" in html
        label = re.search(r'<label([^>]*) for="decline-reason">([^<]+)</label>', html)
        assert label is not None and 'class="sr"' not in label.group(1)
        assert label.group(2) == "Reason for declining"
        async with http.get(b.url + "/activations") as r:
            assert "From Agency 1" in await r.text()
    finally:
        await http.close()


async def test_own_state_follows_the_accept(net: Network) -> None:
    a, b = net.node("agency-1"), net.node("agency-2")
    _, token = await add_user(a, "coord", Role.COORDINATOR)
    _, token_b = await add_user(b, "coord", Role.COORDINATOR)
    api = aiohttp.ClientSession()
    try:
        body = {
            "incident_ref": "INC-6", "incident_type": "line_of_duty_death",
            "event_ts": net.clock.now_ms() - HOUR, "affected": {"fire": 4},
            "interventions": ["defusing"], "window_start_ts": net.clock.now_ms(),
            "window_end_ts": net.clock.now_ms() + 6 * HOUR, "peers_needed": 2,
            "reporting_location": "EOC", "priority": "urgent",
            "contact": {"role": "duty_officer", "phone": "+1 555 0100"},
            "approver": "chief", "expires_ts": net.clock.now_ms() + 4 * HOUR,
            "targets": ["agency-2"]}
        async with api.post(a.url + "/api/v1/activations", json=body,
                            headers={"Authorization": f"Bearer {token}"}) as r:
            out = await r.json()
            assert r.status == 201, out
        aid = out["activation_id"]
        await net.settle()
        await offer(b, aid, "agency-1", {"fire": 2})
        await net.settle()
        offered = (await view(a, aid)).legs[0].offer
        assert offered is not None
        async with api.post(f"{a.url}/api/v1/activations/{aid}/accept",
                            json={"offer_msg_id": offered.msg_id},
                            headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200, await r.text()
        await net.settle()
        async with api.get(f"{b.url}/api/v1/activations/{aid}?requester=agency-1",
                           headers={"Authorization": f"Bearer {token_b}"}) as r:
            theirs = await r.json()
        async with api.get(f"{a.url}/api/v1/activations/{aid}",
                           headers={"Authorization": f"Bearer {token}"}) as r:
            ours = await r.json()
        assert (theirs["state"], theirs["own_state"]) == ("accepted", "accepted")
        assert (ours["state"], ours["own_state"]) == ("accepted", "accepted")
    finally:
        await api.close()


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")  # model_construct's strings
async def test_names_and_stories_are_refused_on_the_wire(net: Network) -> None:
    from federation.store import outbox

    a, b = net.node("agency-1"), net.node("agency-2")
    now = net.clock.now_ms()
    wire = {
        "incident_ref": "INC-7", "requesting_agency": "agency-2",
        "incident_type": "line_of_duty_death", "event_ts": now - HOUR,
        "affected": {"fire": 3}, "interventions": ["defusing"], "window_start_ts": now,
        "window_end_ts": now + HOUR, "peers_needed": 1, "reporting_location": "STA-7",
        "priority": "urgent", "contact": {"role": "coordinator", "phone": "+1 555 0100"},
        "approver": "chief", "expires_ts": now + 4 * HOUR}
    # A peer running other code: the body is built unchecked (model_construct), as a
    # modified sender would, so only the receiver's check stands in the way.
    bad = {"approver": "Deputy Chief Jim Smith",
           "reporting_location": "Jim's house, 12 Elm St",
           "contact": {"role": "Jane Doe (wife)", "phone": "+1 555 0100"}}
    sent = []
    for field, value in bad.items():
        body = ActivationRequestBody.model_construct(**{**wire, field: value})
        async with b.db.write() as conn:
            sent.append(await b.fed.send(conn, "agency-1", MessageType.ACTIVATION_REQUEST,
                                         body, thread_id=None))
    await net.settle()
    async with b.db.read() as conn:
        for msg_id in sent:
            row = (await conn.execute(select(outbox.c.state, outbox.c.failed_code)
                                      .where(outbox.c.msg_id == msg_id))).one()
            assert tuple(row) == ("failed", "bad_body")
    assert await activations(a) == 0
    # The API refuses a story in a hand-off note before anything is sealed or stored.
    _, token = await add_user(b, "coord", Role.COORDINATOR)
    async with aiohttp.ClientSession() as api:
        async with api.post(
                f"{b.url}/api/v1/activations/01ARZ3NDEKTSV4RRFFQ69G5FAV/handoffs?requester=x",
                json={"to": "agency-1", "due": "2026-06-01", "discipline": "fire",
                      "contact_note": "Jim cried about his divorce; call his wife "
                                      "jane@example.org"},
                headers={"Authorization": f"Bearer {token}"}) as r:
            err = (await r.json())["error"]
    assert (r.status, err["code"], err["field"]) == (422, "invalid_input", "contact_note")
    assert err["message"].startswith("Keep the contact note to callback details")
    async with b.db.read() as conn:
        assert (await conn.execute(select(Handoff.__table__))).all() == []
    assert actx(b).node_id == "agency-2"
