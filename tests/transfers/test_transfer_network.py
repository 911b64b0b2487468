"""Issue 21: consented transfer of an open follow-up between member agencies, through real
servers (a hub and three agency nodes, `make_network`) on SQLite and PostgreSQL, over the
JSON API with real tokens: consent first, one sealed message, accept or decline, the sending
follow-up closing as `transferred` only on acceptance, metadata only at the hub, no
pseudonym or typed identifier on the wire or at the receiver; refusals (no consent, unknown
agency, revoked agency, duplicate transfer, decline, expiry) change nothing stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from node.activation.api import ACTIVATIONS
from node.activation.db import Handoff
from node.activation.runtime import handler_for, sweep
from node.activation.transfer import TRANSFER_TTL_MS
from node.activation.transfer_db import Transfer, TransferConsent
from node.core.db import Encounter, FollowUp
from node.core.vocabulary import Role
from protocol.canonical import canonical_bytes
from protocol.encoding import b64u
from protocol.messages import MessageType
from tests.activations.netutil import add_user, hub_log
from tests.federation.network import Network, make_network

NOTE = "Prefers calls after 18:00 via the station line"
TYPED = "E-77123"


@pytest.fixture(params=["sqlite", "postgres"])
async def net(request: Any, tmp_path: Path) -> Any:
    pg = request.getfixturevalue("pg_admin_url") if request.param == "postgres" else None
    n = await make_network(3, tmp_path=tmp_path, db=request.param, pg_admin_url=pg)
    try:
        yield n
    finally:
        await n.close()


class Api:
    def __init__(self, http: aiohttp.ClientSession, base: str, token: str) -> None:
        self.http, self.base, self.h = http, base, {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, self.base + path, json=body, headers=self.h) as r:
            return r.status, await r.json()


async def _rows(node: Any, model: Any) -> list[Any]:
    async with node.db.read() as conn:
        return list((await conn.execute(select(model.__table__))).all())


async def _snapshot(node: Any) -> Any:
    return [await _rows(node, m) for m in (TransferConsent, Transfer, Handoff, FollowUp)]


async def _follow_up(api: Api, owner: str) -> str:
    st, enc = await api.call("POST", "/api/v1/encounters", {
        "occurred_at": "2026-05-20T11:30:00Z", "duration_bucket": "15-30m",
        "activation_type": "self", "intervention": "one_on_one",
        "recipient_discipline": "fire", "recipient_category": "own_agency",
        "recipient": TYPED, "topics": ["work_stress"], "referral": None,
        "follow_up_due": "2026-06-22", "follow_up_owner": owner, "notice_given": True,
    })
    assert st == 201, enc
    st, fus = await api.call("GET", "/api/v1/follow-ups?scope=team")
    return str(next(f["id"] for f in fus["items"] if f["encounter_id"] == enc["id"]))


def _capture(node: Any, seen: list[bytes]) -> None:
    """Record the canonical wire body of every transfer the node opens, then apply it."""
    assert node.app is not None
    real = handler_for(node.app[ACTIVATIONS])

    async def handle(conn: Any, opened: Any) -> None:
        seen.append(canonical_bytes(opened.inner.body))
        await real(conn, opened)

    node.on(MessageType.FOLLOWUP_TRANSFER, handle)


async def test_transfer_end_to_end_and_refusals(net: Network) -> None:
    a, b, c = (net.node(f"agency-{i}") for i in (1, 2, 3))
    coord_a, tok_a = await add_user(a, "coord", Role.COORDINATOR)
    sup_a, _ = await add_user(a, "sup", Role.PEER_SUPPORTER)
    coord_b, tok_b = await add_user(b, "coordb", Role.COORDINATOR)
    sup_b, _ = await add_user(b, "supb", Role.PEER_SUPPORTER)
    _, tok_c = await add_user(c, "coordc", Role.COORDINATOR)
    sup_c, _ = await add_user(c, "supc", Role.PEER_SUPPORTER)
    wire: list[bytes] = []
    _capture(b, wire)
    _, tok_sup = await add_user(a, "sup2", Role.PEER_SUPPORTER)
    async with aiohttp.ClientSession() as http:
        A, B, C = Api(http, a.url, tok_a), Api(http, b.url, tok_b), Api(http, c.url, tok_c)
        fid = await _follow_up(A, str(sup_a))
        send = {"to": "agency-2", "contact_note": NOTE}
        # refusals before anything is sent: nothing stored changes
        before = await _snapshot(a)
        st, body = await A.call("POST", f"/api/v1/follow-ups/{fid}/transfer", send)
        assert (st, body["error"]["code"]) == (409, "no_consent")
        for to, code in (("agency-9", "unknown_agency"), ("hub-state", "unknown_agency"),
                         ("agency-1", "unknown_agency")):
            st, body = await A.call("POST", f"/api/v1/follow-ups/{fid}/transfer-consent",
                                    {"to": to})
            assert (st, body["error"]["code"]) == (422, code)
        st, body = await Api(http, a.url, tok_sup).call(
            "POST", f"/api/v1/follow-ups/{fid}/transfer-consent", {"to": "agency-2"})
        assert st == 403
        st, body = await A.call("POST", f"/api/v1/follow-ups/{fid}/transfer",
                                {**send, "contact_note": "Mail j.doe@example.org"})
        assert (st, body["error"]["code"]) == (422, "invalid_input")
        assert await _snapshot(a) == before
        # consent (who asked, when), then one sealed message
        st, consent = await A.call("POST", f"/api/v1/follow-ups/{fid}/transfer-consent",
                                   {"to": "agency-2"})
        assert st == 201 and consent["asked_by"] == str(coord_a)
        assert consent["consented_at"] == net.clock.now_ms()
        st, sent = await A.call("POST", f"/api/v1/follow-ups/{fid}/transfer", send)
        assert st == 201 and sent["state"] == "pending", sent
        st, body = await A.call("POST", f"/api/v1/follow-ups/{fid}/transfer", send)
        assert (st, body["error"]["code"]) == (409, "duplicate_transfer")
        await net.settle()
        # the wire body: only the fields the receiving team needs; no pseudonym, no typed id
        (enc_row,) = await _rows(a, Encounter)
        (body_bytes,) = wire
        assert sorted(json.loads(body_bytes)) == [
            "answer_by_ts", "consent_ts", "contact_note", "discipline", "due", "intervention"]
        ref = str(enc_row.recipient_ref).encode()
        assert TYPED.encode() not in body_bytes and ref not in body_bytes
        # the receiver: the note sealed in a hand-off row, shown to its coordinator only
        st, got = await B.call("GET", "/api/v1/transfers")
        (t,) = got["items"]
        assert t["direction"] == "in" and t["contact_note"] == NOTE
        assert (t["intervention"], t["discipline"], t["due"]) == ("one_on_one", "fire",
                                                                  "2026-06-22")
        stored_b = repr(await _snapshot(b)).encode()
        for secret in (TYPED.encode(), ref, NOTE.encode()):
            assert secret not in stored_b
        # accept with an owner on B's team; the sender closes as transferred
        st, body = await B.call("POST", f"/api/v1/transfers/{t['id']}/accept",
                                {"owner": str(sup_a)})
        assert (st, body["error"]["code"]) == (422, "invalid_input")  # not B's user
        st, acc = await B.call("POST", f"/api/v1/transfers/{t['id']}/accept",
                               {"owner": str(sup_b)})
        assert st == 200 and acc["state"] == "accepted" and acc["owner"] == str(sup_b)
        st, body = await B.call("POST", f"/api/v1/transfers/{t['id']}/decline",
                                {"reason": "no_capacity"})
        assert st == 409
        await net.settle()
        st, mine = await A.call("GET", "/api/v1/transfers")
        assert mine["items"][0]["state"] == "accepted"
        assert mine["items"][0]["contact_note"] is None
        st, fus = await A.call("GET", "/api/v1/follow-ups?scope=team")
        assert next(f for f in fus["items"] if f["id"] == fid)["status"] == "transferred"
        # completing the received hand-off purges the note
        st, hs = await B.call("GET", "/api/v1/activations/handoffs")
        (h,) = hs["items"]
        st, _ = await B.call("POST", f"/api/v1/activations/handoffs/{h['id']}/complete")
        assert st == 200
        assert all(r.note_ct is None for r in await _rows(b, Handoff))
        # the hub: that it happened, between which agencies, when; nothing else
        (entry,) = await hub_log(net, sent["msg_id"])
        assert (entry["requester"], entry["responder"], entry["state"]) == (
            "agency-1", "agency-2", "transferred")
        assert NOTE not in repr(entry) and TYPED not in repr(entry)

        # decline: a second follow-up to agency-3; the sender's follow-up stays open
        fid2 = await _follow_up(A, str(sup_a))
        await A.call("POST", f"/api/v1/follow-ups/{fid2}/transfer-consent", {"to": "agency-3"})
        st, sent2 = await A.call("POST", f"/api/v1/follow-ups/{fid2}/transfer",
                                 {"to": "agency-3", "contact_note": NOTE})
        assert st == 201
        await net.settle()
        st, got = await C.call("GET", "/api/v1/transfers")
        (t2,) = got["items"]
        st, dec = await C.call("POST", f"/api/v1/transfers/{t2['id']}/decline",
                               {"reason": "not_a_member"})
        assert st == 200 and dec["state"] == "declined"
        assert all(r.note_ct is None for r in await _rows(c, Handoff))  # purged at once
        await net.settle()
        st, fus = await A.call("GET", "/api/v1/follow-ups?scope=team")
        assert next(f for f in fus["items"] if f["id"] == fid2)["status"] == "open"
        st, mine = await A.call("GET", "/api/v1/transfers")
        out2 = next(x for x in mine["items"] if x["msg_id"] == sent2["msg_id"])
        assert (out2["state"], out2["reason"]) == ("declined", "not_a_member")
        assert await hub_log(net, sent2["msg_id"]) == []

        # expiry: consent again, send, nobody answers; after answer_by both sides expire
        await A.call("POST", f"/api/v1/follow-ups/{fid2}/transfer-consent", {"to": "agency-3"})
        st, sent3 = await A.call("POST", f"/api/v1/follow-ups/{fid2}/transfer",
                                 {"to": "agency-3", "contact_note": NOTE})
        assert st == 201
        await net.settle()
        st, got = await C.call("GET", "/api/v1/transfers")
        t3 = next(x for x in got["items"] if x["state"] == "pending")
        net.clock.advance(TRANSFER_TTL_MS + 1)
        before_c = await _snapshot(c)
        st, body = await C.call("POST", f"/api/v1/transfers/{t3['id']}/accept",
                                {"owner": str(sup_c)})
        assert (st, body["error"]["code"]) == (409, "transfer_expired")
        assert await _snapshot(c) == before_c
        assert a.app is not None and c.app is not None
        assert await sweep(a.app) >= 1 and await sweep(c.app) >= 1
        st, mine = await A.call("GET", "/api/v1/transfers")
        assert next(x for x in mine["items"] if x["msg_id"] == sent3["msg_id"])["state"] == \
            "expired"
        assert all(r.note_ct is None for r in await _rows(c, Handoff))
        st, fus = await A.call("GET", "/api/v1/follow-ups?scope=team")
        assert next(f for f in fus["items"] if f["id"] == fid2)["status"] == "open"


async def test_transfer_to_a_revoked_agency_is_refused(net: Network) -> None:
    from federation.roster import Revocation

    a, b = net.node("agency-1"), net.node("agency-2")
    _, tok_a = await add_user(a, "coord", Role.COORDINATOR)
    sup_a, _ = await add_user(a, "sup", Role.PEER_SUPPORTER)
    async with aiohttp.ClientSession() as http:
        A = Api(http, a.url, tok_a)
        fid = await _follow_up(A, str(sup_a))
        st, _ = await A.call("POST", f"/api/v1/follow-ups/{fid}/transfer-consent",
                             {"to": "agency-2"})
        assert st == 201
        rev = Revocation(key=b64u(b.keys.verify_key_bytes), revoked_ts=net.clock.now_ms(),
                         reason="agency left the network")
        await net.publish(net.board.sign(
            net.board.next(net.roster, now=net.clock.now_ms(), revoked=[rev.model_dump()])))
        before = await _snapshot(a)
        st, body = await A.call("POST", f"/api/v1/follow-ups/{fid}/transfer",
                                {"to": "agency-2", "contact_note": NOTE})
        assert (st, body["error"]["code"]) == (422, "revoked_agency")
        st, body = await A.call("POST", f"/api/v1/follow-ups/{fid}/transfer-consent",
                                {"to": "agency-2"})
        assert (st, body["error"]["code"]) == (422, "revoked_agency")
        assert await _snapshot(a) == before
