"""Activation events notify through real federation: a hub and two agency nodes on
ephemeral ports (SQLite and PostgreSQL), each node sending to a real SMTP server and a real
webhook receiver that verifies every signature. A request arriving reaches the responder's
coordinators and its on-duty CAD webhook; the offer arriving reaches the requester's
coordinator; the acceptance reaches the responder's; the hand-off reaches the assigned
coordinator. No mail or webhook body holds any field of the request or the sealed note."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench.reliability_report import record
from node.activation import handoff
from node.activation import requester as requesting
from node.activation import responder as responding
from node.activation.models import HandoffIn
from node.core.vocabulary import Role
from protocol.vocabulary import Stage
from tests.activations.helpers import request_in
from tests.activations.netutil import actx, add_user, offer, view
from tests.federation.network import NodeHandle, make_network
from tests.notify.conftest import Mailbox, Receiver, notifier, notify_settings, payloads

NOTE = "Call back re shift change; ask for B-shift captain at station 7"


async def _call(node: NodeHandle, token: str, method: str, path: str, body: Any) -> Any:
    async with aiohttp.ClientSession() as s, s.request(
            method, node.url + path, json=body,
            headers={"Authorization": f"Bearer {token}"}) as r:
        out = await r.json()
        assert r.status in (200, 201), out
        return out


def _record_fields() -> list[str]:
    """Every value of the request that could identify the incident, and the sealed note."""
    req = request_in(["agency-2"]).model_dump(mode="json")
    out = [NOTE, "B-shift", req["incident_ref"], req["reporting_location"],
           req["contact"]["phone"], req["approver"], req["incident_type"]]
    return [v for v in out if isinstance(v, str) and len(v) >= 4]


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_activation_events_notify_without_content(
        tmp_path: Path, request: Any, db: str, mailbox: Mailbox, receiver: Receiver) -> None:
    pg = request.getfixturevalue("pg_admin_url") if db == "postgres" else None
    net = await make_network(2, tmp_path=tmp_path, db=db, pg_admin_url=pg)
    try:
        a, b = net.node("agency-1"), net.node("agency-2")
        for n in (a, b):
            await n.stop()
            assert n.settings is not None
            n.settings = n.settings.model_copy(update=notify_settings(mailbox, public_url=n.url))
            await n.start()
        assert a.app is not None and b.app is not None
        send_a, send_b = await notifier(a.app), await notifier(b.app)
        coord_a, tok_a = await add_user(a, "coord", Role.COORDINATOR)
        _, tok_b = await add_user(b, "coord", Role.COORDINATOR)
        await add_user(b, "coord2", Role.COORDINATOR)  # no preferences: nothing for them
        _, admin_b = await add_user(b, "admin", Role.ADMIN)
        await _call(a, tok_a, "PUT", "/api/v1/notify/preferences",
                    {"email": "coord@agency-1.example", "channels": ["email"]})
        prefs = await _call(b, tok_b, "PUT", "/api/v1/notify/preferences", {
            "email": "coord@agency-2.example", "channels": ["email", "webhook"],
            "webhook_url": receiver.hook("coord-b")})
        receiver.secrets["coord-b"] = prefs["webhook_secret"]
        cad = await _call(b, admin_b, "POST", "/api/v1/notify/endpoints", {
            "label": "County CAD", "channel": "webhook", "target": receiver.hook("cad"),
            "kinds": ["activation_request"]})
        receiver.secrets["cad"] = cad["secret"]

        # 1. agency-1 asks agency-2: its coordinator (mail + pager) and the CAD hear of it
        async with a.db.write() as conn:
            act = await requesting.create_request(conn, actx(a), request_in(["agency-2"]),
                                                  user_id=coord_a)
        aid = act.activation_id
        await net.settle()
        assert await send_b.run_once() == 3
        assert [m[0] for m in mailbox.messages] == [["coord@agency-2.example"]]
        assert "Activation request needs attention" in mailbox.texts()[0]
        assert f"{b.url}/activations/{aid}" in mailbox.texts()[0]
        hooks = {g["name"]: g["body"] for g in receiver.delivered()}
        assert set(hooks) == {"coord-b", "cad"}
        assert hooks["cad"]["type"] == "peernet.activation_request"
        assert receiver.refused == []
        assert await send_b.run_once() == 0  # nothing twice

        # 2. the offer reaches the requester's coordinator
        await offer(b, aid, "agency-1", {"fire": 2})
        await net.settle()
        assert await send_a.run_once() == 1
        assert mailbox.messages[-1][0] == ["coord@agency-1.example"]
        assert "Activation update" in mailbox.texts()[-1]

        # 3. the acceptance reaches the responder's coordinator (not the CAD: not subscribed)
        leg = (await view(a, aid)).legs[0]
        assert leg.offer is not None
        async with a.db.write() as conn:
            await requesting.accept_offer(conn, actx(a), aid, leg.offer.msg_id)
        await net.settle()
        assert await send_b.run_once() == 2
        assert "Offer accepted" in mailbox.texts()[-1]
        assert [g["name"] for g in receiver.delivered()].count("cad") == 1

        # 4. a follow-up handed back reaches the activation's coordinator on agency-1
        for stage in (Stage.MOBILIZED, Stage.ON_SCENE, Stage.DEMOBILIZED):
            async with b.db.write() as conn:
                await responding.send_update(conn, actx(b), aid, stage)
        async with b.db.write() as conn:
            await handoff.send_handoff(conn, actx(b), aid, HandoffIn(
                to="agency-1", due="2026-06-01", discipline="fire", contact_note=NOTE))
        await net.settle()
        await send_a.run_once()
        handed = [t for t in mailbox.texts() if "Follow-up handed to you" in t]
        assert len(handed) == 1 and f"{a.url}/activations/handoffs" in handed[0]

        sent = payloads(mailbox, receiver)
        for value in _record_fields():
            assert not any(value in text for text in sent), value
    finally:
        await net.close()
    record(f"security-notify-content-{db}", area="security",
           case="notifications carry no record content",
           how="a request, offer, acceptance, updates and a sealed hand-off across a real hub "
               "and two nodes; every mail at a real SMTP server and every webhook at a real "
               "receiver (signature verified) searched for the request's fields and the note",
           result="kind and link only; none of the fields or the note in any body",
           figures={"mails": len(mailbox.messages), "webhooks": len(receiver.delivered())})


TRANSFER_NOTE = "Prefers calls after 18:00 via the station line"


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_a_transfer_arriving_notifies_the_assigned_coordinator(
        tmp_path: Path, request: Any, db: str, mailbox: Mailbox) -> None:
    pg = request.getfixturevalue("pg_admin_url") if db == "postgres" else None
    net = await make_network(2, tmp_path=tmp_path, db=db, pg_admin_url=pg)
    try:
        a, b = net.node("agency-1"), net.node("agency-2")
        await b.stop()
        assert b.settings is not None
        b.settings = b.settings.model_copy(update=notify_settings(mailbox, public_url=b.url))
        await b.start()
        assert b.app is not None
        send_b = await notifier(b.app)
        _, tok_a = await add_user(a, "coord", Role.COORDINATOR)
        sup_a, _ = await add_user(a, "sup", Role.PEER_SUPPORTER)
        _, tok_b = await add_user(b, "coordb", Role.COORDINATOR)
        await _call(b, tok_b, "PUT", "/api/v1/notify/preferences",
                    {"email": "coordb@agency-2.example", "channels": ["email"]})
        enc = await _call(a, tok_a, "POST", "/api/v1/encounters", {
            "occurred_at": "2026-05-20T11:30:00Z", "duration_bucket": "15-30m",
            "activation_type": "self", "intervention": "one_on_one",
            "recipient_discipline": "fire", "recipient_category": "own_agency",
            "recipient": "E-77123", "topics": ["work_stress"], "referral": None,
            "follow_up_due": "2026-06-22", "follow_up_owner": str(sup_a),
            "notice_given": True})
        fus = await _call(a, tok_a, "GET", "/api/v1/follow-ups?scope=team", None)
        fid = next(f["id"] for f in fus["items"] if f["encounter_id"] == enc["id"])
        await _call(a, tok_a, "POST", f"/api/v1/follow-ups/{fid}/transfer-consent",
                    {"to": "agency-2"})
        await _call(a, tok_a, "POST", f"/api/v1/follow-ups/{fid}/transfer",
                    {"to": "agency-2", "contact_note": TRANSFER_NOTE})
        await net.settle()
        assert await send_b.run_once() == 1
        [(to, raw)] = mailbox.messages
        text = raw.decode()
        assert to == ["coordb@agency-2.example"] and "Follow-up handed to you" in text
        assert f"{b.url}/transfers" in text
        for secret in (TRANSFER_NOTE, "E-77123", "18:00", "2026-06-22"):
            assert secret not in text
    finally:
        await net.close()
