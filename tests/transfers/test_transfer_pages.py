"""Issue 21 pages through real servers (a hub and agency nodes) on SQLite and PostgreSQL:
the sending coordinator records consent and sends from a form, the receiving coordinator
reads the sealed note (audited), accepts with an owner or declines with a labelled reason,
the new owner sees the follow-up in "my follow-ups", the sender sees the outcome.
Refusals: wrong role 403, missing CSRF 403, no consent as a sentence, a bad note as a
sentence; each leaves nothing stored changed. Also: a follow-up with a pending transfer is
locked (`transfer_pending`), and inbound transfer messages are in the audit log without
the note."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import aiohttp
from sqlalchemy import select

from node.core.db import AuditEntry
from node.core.vocabulary import Role
from tests.activations.netutil import PASSWORD, add_user
from tests.activations.test_pages_plain import JARGON, alert, session
from tests.federation.network import Network
from tests.transfers.test_transfer_network import NOTE, Api, _follow_up, _snapshot, net

__all__ = ["net"]


async def _audit(node: Any) -> list[Any]:
    async with node.db.read() as conn:
        return list((await conn.execute(
            select(AuditEntry.__table__).order_by(AuditEntry.seq))).all())


async def _post(http: aiohttp.ClientSession, url: str, data: dict[str, str]
                ) -> tuple[int, str, str]:
    async with http.post(url, data=data, allow_redirects=False) as r:
        return r.status, r.headers.get("Location", ""), await r.text()


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as r:
        return r.status, await r.text()


async def test_transfer_pages_end_to_end_with_refusals(net: Network) -> None:
    a, b = net.node("agency-1"), net.node("agency-2")
    _, tok_a = await add_user(a, "coord", Role.COORDINATOR)
    sup_a, tok_sup_a = await add_user(a, "sup", Role.PEER_SUPPORTER)
    await add_user(b, "coordb", Role.COORDINATOR)
    sup_b, _ = await add_user(b, "supb", Role.PEER_SUPPORTER)
    async with aiohttp.ClientSession() as api_http:
        A = Api(api_http, a.url, tok_a)
        fid = await _follow_up(A, str(sup_a))
        fid2 = await _follow_up(A, str(sup_a))
        http_a, csrf_a = await session(a, "coord")
        try:
            # the team page links to the form; the form names agencies and says what
            # consent means
            st, team = await _get(http_a, f"{a.url}/team")
            assert st == 200 and f"/follow-ups/{fid}/transfer" in team
            st, form = await _get(http_a, f"{a.url}/follow-ups/{fid}/transfer")
            assert st == 200 and "Agency 2" in form and "What consent means" in form
            assert "No names" in form and 'maxlength="140"' in form
            assert 'value="agency-1"' not in form and 'value="hub-state"' not in form
            good = {"csrf": csrf_a, "to": "agency-2", "due": "2026-06-22",
                    "contact_note": NOTE, "consent": "yes"}
            before = await _snapshot(a)
            # no consent: refused as a sentence, nothing written
            st, _, html = await _post(http_a, f"{a.url}/follow-ups/{fid}/transfer",
                                      {k: v for k, v in good.items() if k != "consent"})
            code, words = alert(html)
            assert (st, code) == (409, "no_consent")
            assert words.startswith("Consent: ask the responder first") and words.endswith(".")
            # a note with an e-mail address: a sentence, never a pattern
            st, _, html = await _post(http_a, f"{a.url}/follow-ups/{fid}/transfer",
                                      {**good, "contact_note": "Mail j.doe@example.org"})
            code, words = alert(html)
            assert (st, code) == (422, "invalid_input") and "callback details" in words
            assert not JARGON.search(words)
            # unknown agency (a hand-edited form)
            st, _, html = await _post(http_a, f"{a.url}/follow-ups/{fid}/transfer",
                                      {**good, "to": "agency-9"})
            assert (st, alert(html)[0]) == (422, "unknown_agency")
            # missing CSRF token
            st, _, html = await _post(http_a, f"{a.url}/follow-ups/{fid}/transfer",
                                      {k: v for k, v in good.items() if k != "csrf"})
            assert st == 403 and "csrf_failed" in html
            assert await _snapshot(a) == before
        finally:
            await http_a.close()
        # wrong role: a peer supporter is refused every transfer page, nothing changes
        sup_http, sup_csrf = await _supporter_session(a)
        try:
            for path in (f"/follow-ups/{fid}/transfer", "/transfers"):
                st, _ = await _get(sup_http, a.url + path)
                assert st == 403, path
            st, _, _ = await _post(sup_http, f"{a.url}/follow-ups/{fid}/transfer",
                                   {**good, "csrf": sup_csrf})
            assert st == 403
            assert await _snapshot(a) == before
        finally:
            await sup_http.close()

        http_a, csrf_a = await session(a, "coord")
        try:
            good["csrf"] = csrf_a
            st, where, _ = await _post(http_a, f"{a.url}/follow-ups/{fid}/transfer", good)
            assert (st, where) == (303, "/transfers?done=sent")
            st, page = await _get(http_a, f"{a.url}/transfers?done=sent")
            assert "Transfer sent." in page and "Waiting for an answer" in page
            assert "to Agency 2" in page
            # locked while pending: completing or reassigning is refused, nothing changes
            locked = await _snapshot(a)
            SupA = Api(api_http, a.url, tok_sup_a)
            st, body = await SupA.call("POST", f"/api/v1/follow-ups/{fid}/complete",
                                       {"outcome": "done"})
            assert (st, body["error"]["code"]) == (409, "transfer_pending")
            st, body = await A.call("POST", f"/api/v1/follow-ups/{fid}/reassign",
                                    {"owner": str(sup_a)})
            assert (st, body["error"]["code"]) == (409, "transfer_pending")
            st, _, html = await _post(http_a, f"{a.url}/follow-ups/{fid}/complete",
                                      {"csrf": csrf_a, "outcome": "done"})
            assert st == 409 and "transfer_pending" in html
            assert await _snapshot(a) == locked
            # the other follow-up is not locked
            st, _ = await A.call("POST", f"/api/v1/follow-ups/{fid2}/reassign",
                                 {"owner": str(sup_a)})
            assert st == 200
        finally:
            await http_a.close()
        await net.settle()

        # the receiving coordinator: the note (each read audited), accept with an owner
        http_b, csrf_b = await session(b, "coordb")
        try:
            st, page = await _get(http_b, f"{b.url}/transfers")
            assert st == 200 and NOTE in page and "from Agency 1" in page
            assert "The person is not with our agency" in page  # labels, not codes
            tid = re.search(r'data-transfer="([0-9a-f-]{36})" data-state="pending"',
                            page)
            assert tid is not None
            t = tid.group(1)
            entries = await _audit(b)
            (received,) = [e for e in entries if e.action == "transfer.received"]
            detail = json.loads(received.detail)
            assert detail["agency"] == "agency-1" and detail["outcome"] == "pending"
            assert received.actor is None and received.target_type == "transfer"
            assert [e for e in entries if e.action == "handoff.read"
                    and e.target_id == t]
            # refusals on the answer forms: a reason off the list, an owner off the team
            st, _, html = await _post(http_b, f"{b.url}/transfers/{t}/decline",
                                      {"csrf": csrf_b, "reason": "busy"})
            code, words = alert(html)
            assert (st, code) == (422, "invalid_input") and words.startswith("Reason:")
            st, _, html = await _post(http_b, f"{b.url}/transfers/{t}/accept",
                                      {"csrf": csrf_b, "owner": str(uuid.uuid4())})
            assert (st, alert(html)[0]) == (422, "invalid_input")
            st, _, html = await _post(http_b, f"{b.url}/transfers/{t}/accept",
                                      {"owner": str(sup_b)})
            assert st == 403 and "csrf_failed" in html
            st, where, _ = await _post(http_b, f"{b.url}/transfers/{t}/accept",
                                       {"csrf": csrf_b, "owner": str(sup_b)})
            assert (st, where) == (303, "/transfers?done=accepted")
            st, page = await _get(http_b, f"{b.url}/transfers")
            assert "Accepted" in page and "owner supb" in page
        finally:
            await http_b.close()
        # the new owner sees it in "my follow-ups" (no note)
        http_sb, _ = await _supporter_session(b, "supb")
        try:
            st, mine = await _get(http_sb, f"{b.url}/follow-ups")
            assert st == 200 and "Transferred to you" in mine and 'id="transferred"' in mine
            assert "One-on-one" in mine and NOTE not in mine
        finally:
            await http_sb.close()
        await net.settle()

        # the sender sees the outcome; the reply is in its audit log, never the note
        http_a, csrf_a = await session(a, "coord")
        try:
            st, page = await _get(http_a, f"{a.url}/transfers")
            assert re.search(r'data-outcome>Accepted<', page)
        finally:
            await http_a.close()
        st, fus = await A.call("GET", "/api/v1/follow-ups?scope=team")
        assert next(f for f in fus["items"] if f["id"] == fid)["status"] == "transferred"
        entries = await _audit(a)
        (reply,) = [e for e in entries if e.action == "transfer.reply_received"]
        assert json.loads(reply.detail)["outcome"] == "accepted"
        assert json.loads(reply.detail)["agency"] == "agency-2"
        for node in (a, b):
            assert NOTE not in repr(await _audit(node))


async def _supporter_session(node: Any, who: str = "sup") -> tuple[aiohttp.ClientSession, str]:
    """A logged-in peer supporter (their own pages give the CSRF token)."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                 headers={"Accept": "text/html"})
    async with http.get(node.url + "/login") as r:
        m = re.search(r'name="csrf" value="([^"]+)"', await r.text())
    assert m is not None
    async with http.post(node.url + "/login", data={
            "csrf": m.group(1), "username": who, "password": PASSWORD}) as r:
        assert r.status == 200
    async with http.get(node.url + "/follow-ups") as r:
        m = re.search(r'name="csrf" value="([^"]+)"', await r.text())
    return http, m.group(1) if m else ""


async def test_decline_from_the_page_shows_the_reason_to_the_sender(net: Network) -> None:
    a, b = net.node("agency-1"), net.node("agency-2")
    _, tok_a = await add_user(a, "coord", Role.COORDINATOR)
    sup_a, tok_sup_a = await add_user(a, "sup", Role.PEER_SUPPORTER)
    await add_user(b, "coordb", Role.COORDINATOR)
    async with aiohttp.ClientSession() as api_http:
        A = Api(api_http, a.url, tok_a)
        fid = await _follow_up(A, str(sup_a))
        http_a, csrf_a = await session(a, "coord")
        try:
            st, _, _ = await _post(http_a, f"{a.url}/follow-ups/{fid}/transfer", {
                "csrf": csrf_a, "to": "agency-2", "due": "2026-06-22",
                "contact_note": NOTE, "consent": "yes"})
            assert st == 303
        finally:
            await http_a.close()
        await net.settle()
        http_b, csrf_b = await session(b, "coordb")
        try:
            st, page = await _get(http_b, f"{b.url}/transfers")
            m = re.search(r'data-transfer="([0-9a-f-]{36})" data-state="pending"', page)
            assert m is not None
            st, where, _ = await _post(http_b, f"{b.url}/transfers/{m.group(1)}/decline",
                                       {"csrf": csrf_b, "reason": "not_a_member"})
            assert (st, where) == (303, "/transfers?done=declined")
            st, page = await _get(http_b, f"{b.url}/transfers")
            assert NOTE not in page  # purged on decline
        finally:
            await http_b.close()
        await net.settle()
        http_a, _ = await session(a, "coord")
        try:
            st, page = await _get(http_a, f"{a.url}/transfers")
            assert "Declined" in page and "The person is not with our agency" in page
        finally:
            await http_a.close()
        # declined: the follow-up is unlocked and stays with the sending team
        st, done = await Api(api_http, a.url, tok_sup_a).call(
            "POST", f"/api/v1/follow-ups/{fid}/complete", {"outcome": "done"})
        assert st == 200 and done["status"] == "done"
        (reply,) = [e for e in await _audit(a) if e.action == "transfer.reply_received"]
        detail = json.loads(reply.detail)
        assert (detail["outcome"], detail["reason"]) == ("declined", "not_a_member")
