"""The interagency activation lifecycle across real servers: a hub and five agency nodes on
ephemeral ports in one event loop (`make_network`, SQLite), one FakeClock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from node.activation import ending, handoff, views
from node.activation import requester as requesting
from node.activation import responder as responding
from node.activation.db import ActivationEarly, Handoff
from node.activation.models import CancelIn, HandoffIn
from node.core.vocabulary import Role
from protocol.vocabulary import ActivationState, DeclineReason, Stage
from tests.activations.helpers import HOUR, request_in
from tests.activations.netutil import actx, add_user, hub_log, offer, run_sweep, state_of, view
from tests.federation.network import make_network

S = ActivationState
NOTE = "Call back re shift change; ask for B-shift captain at station 7"


async def test_full_lifecycle_across_nodes(tmp_path: Path) -> None:
    net = await make_network(5, tmp_path=tmp_path)
    try:
        a, b, c, d = (net.node(f"agency-{i}") for i in (1, 2, 3, 4))
        coord_a, _ = await add_user(a, "coord", Role.COORDINATOR)
        # 1. agency-1 asks three agencies
        async with a.db.write() as conn:
            act = await requesting.create_request(
                conn, actx(a), request_in(["agency-2", "agency-3", "agency-4"]), user_id=coord_a)
        aid = act.activation_id
        await net.settle()
        for n in (b, c, d):
            assert await state_of(n, aid, "agency-1") is S.REQUESTED
        assert (await view(b, aid)).request.incident_ref == "INC-2026-0042"
        # 2. two offers come back; agency-4 stays silent
        await offer(b, aid, "agency-1", {"law_enforcement": 2})
        await offer(c, aid, "agency-1", {"dispatch_911": 1})
        await net.settle()
        legs = {leg.responder: leg for leg in (await view(a, aid)).legs}
        assert legs["agency-2"].state is S.OFFERED and legs["agency-3"].state is S.OFFERED
        assert legs["agency-2"].offer is not None and legs["agency-2"].offer.peers == 2
        # 3. accept one (twice: the same outcome), decline the other
        offer_b = legs["agency-2"].offer.msg_id
        async with a.db.write() as conn:
            first = await requesting.accept_offer(conn, actx(a), aid, offer_b)
        async with a.db.write() as conn:
            second = await requesting.accept_offer(conn, actx(a), aid, offer_b)
        assert second.repeated and second.accept_msg_id == first.accept_msg_id
        async with a.db.write() as conn:
            await requesting.decline_offer(
                conn, actx(a), aid, "agency-3", DeclineReason.NO_CAPACITY
            )
        await net.settle()
        assert await state_of(b, aid, "agency-1") is S.ACCEPTED
        assert await state_of(c, aid, "agency-1") is S.DECLINED
        # 4. the third one expires (both sides sweep on the shared clock)
        net.clock.advance(5 * HOUR)
        assert await run_sweep(a) == 1
        assert await run_sweep(d) == 1
        assert await run_sweep(b) == 0  # accepted legs do not expire
        assert await state_of(d, aid, "agency-1") is S.EXPIRED
        # 5. the responder's updates
        for stage in (Stage.MOBILIZED, Stage.ON_SCENE, Stage.DEMOBILIZED):
            async with b.db.write() as conn:
                await responding.send_update(conn, actx(b), aid, stage)
            await net.settle()
            assert await state_of(a, aid) is S(stage.value)
        # 6. hand-off of a follow-up to the requester, sealed end to end
        async with b.db.write() as conn:
            await handoff.send_handoff(conn, actx(b), aid, HandoffIn(
                to="agency-1", due="2026-06-01", discipline="fire", contact_note=NOTE))
        await net.settle()
        async with a.db.read() as conn:
            (got,) = await handoff.handoff_inbox(conn, actx(a), coord_a)
        assert got.contact_note == NOTE and got.peer == "agency-2"
        # 7. close on both sides
        async with a.db.write() as conn:
            closed = await ending.close(conn, actx(a), aid)
        async with b.db.write() as conn:
            await ending.close(conn, actx(b), aid)
        await net.settle()
        assert closed.state is S.CLOSED
        assert {leg.responder: leg.state for leg in closed.legs} == {
            "agency-2": S.CLOSED, "agency-3": S.DECLINED, "agency-4": S.EXPIRED}
        assert await state_of(b, aid, "agency-1") is S.CLOSED

        # the hub's central log: who asked whom, when, state, counts; nothing else
        log = await hub_log(net, aid)
        seen = [(r["responder"], r["state"]) for r in log]
        for pair in [(None, "requested"), ("agency-2", "requested"), ("agency-3", "requested"),
                     ("agency-4", "requested"), ("agency-2", "offered"),
                     ("agency-3", "offered"), ("agency-2", "accepted"),
                     ("agency-3", "declined"), ("agency-4", "expired"),
                     ("agency-2", "mobilized"), ("agency-2", "on_scene"),
                     ("agency-2", "demobilized"), ("agency-2", "closed"), (None, "closed")]:
            assert pair in seen, pair
        assert len(seen) == 14
        assert {r["requester"] for r in log} == {"agency-1"}
        assert {r["reported_by"] for r in log} == {"agency-1"}
        assert all(r["counts"] == {"affected": 52, "peers_needed": 6,
                                   "peers_offered": r["counts"]["peers_offered"]} for r in log)
        assert {frozenset(r) for r in log} == {frozenset(
            {"activation_id", "requester", "responder", "state", "incident_type", "counts",
             "ts", "reported_by", "msg_id", "received_ts"})}
        flat = repr(log)
        for secret in ("INC-2026-0042", "Station 7", "555", "Deputy", NOTE[:12]):
            assert secret not in flat
    finally:
        await net.close()


async def test_recipient_down_then_restarted_is_delivered_once(tmp_path: Path) -> None:
    net = await make_network(4, tmp_path=tmp_path)
    try:
        a, b = net.node("agency-1"), net.node("agency-2")
        await b.stop()
        async with a.db.write() as conn:
            act = await requesting.create_request(
                conn, actx(a), request_in(["agency-2", "agency-3"]), user_id=None
            )
        aid = act.activation_id
        await net.settle()
        assert await state_of(net.node("agency-3"), aid, "agency-1") is S.REQUESTED
        net.clock.advance(60_000)
        await net.settle()  # still down: retried, not lost
        await b.start()
        for _ in range(6):  # backoff is in clock time
            net.clock.advance(5 * 60_000)
            await net.settle()
        assert await state_of(b, aid, "agency-1") is S.REQUESTED
        async with b.db.read() as conn:
            incoming = await views.list_activations(conn, actx(b))
        assert [x.activation_id for x in incoming] == [aid]  # exactly once
        # and the restarted node can answer
        await offer(b, aid, "agency-1", {"law_enforcement": 1})
        await net.settle()
        legs = {leg.responder: leg.state for leg in (await view(a, aid)).legs}
        assert legs == {"agency-2": S.OFFERED, "agency-3": S.REQUESTED}
    finally:
        await net.close()


async def _note_rows(node: Any) -> list[Any]:
    async with node.db.read() as conn:
        return list((await conn.execute(select(Handoff.__table__))).all())


async def test_handoff_note_encrypted_at_rest_visible_to_assignee_purged(tmp_path: Path) -> None:
    net = await make_network(4, tmp_path=tmp_path)
    try:
        a, b = net.node("agency-1"), net.node("agency-2")
        coord, token = await add_user(a, "coord", Role.COORDINATOR)
        _, other_token = await add_user(a, "coord2", Role.COORDINATOR)
        async with a.db.write() as conn:
            act = await requesting.create_request(
                conn, actx(a), request_in(["agency-2"]), user_id=coord
            )
        aid = act.activation_id
        await net.settle()
        await offer(b, aid, "agency-1", {"law_enforcement": 1})
        await net.settle()
        (leg,) = (await view(a, aid)).legs
        assert leg.offer is not None
        async with a.db.write() as conn:
            await requesting.accept_offer(conn, actx(a), aid, leg.offer.msg_id)
        await net.settle()
        # a hand-off before demobilization is refused, nothing stored
        async with b.db.write() as conn:
            try:
                await handoff.send_handoff(conn, actx(b), aid, HandoffIn(
                    to="agency-1", due="2026-06-01", discipline="fire", contact_note=NOTE))
                raise AssertionError("should be refused")
            except Exception as exc:
                assert getattr(exc, "code", None) == "illegal_transition"
        for stage in (Stage.MOBILIZED, Stage.ON_SCENE, Stage.DEMOBILIZED):
            async with b.db.write() as conn:
                await responding.send_update(conn, actx(b), aid, stage)
        async with b.db.write() as conn:
            await handoff.send_handoff(conn, actx(b), aid, HandoffIn(
                to="agency-1", due="2026-06-01", discipline="fire", contact_note=NOTE))
        await net.settle()

        # encrypted at rest: not in the database file (nor its WAL) on either node
        def on_disk(node: Any) -> bytes:
            path = Path(node.db_url.removeprefix("sqlite:///"))
            return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))

        assert NOTE.encode() not in on_disk(a)
        assert NOTE.encode() not in on_disk(b)
        (row,) = await _note_rows(a)
        assert row.note_ct is not None and NOTE.encode() not in row.note_ct
        assert row.assigned_to == coord
        # only the assigned coordinator sees it (API), the other sees metadata only
        client_headers = {"Authorization": f"Bearer {token}"}
        import aiohttp

        async with aiohttp.ClientSession() as http:
            async with http.get(f"{a.url}/api/v1/activations/handoffs",
                                headers=client_headers) as r:
                mine = (await r.json())["items"]
            async with http.get(f"{a.url}/api/v1/activations/handoffs",
                                headers={"Authorization": f"Bearer {other_token}"}) as r:
                theirs = (await r.json())["items"]
            assert [h["contact_note"] for h in mine] == [NOTE]
            assert [h["contact_note"] for h in theirs] == [None]
            hid = mine[0]["id"]
            async with http.post(f"{a.url}/api/v1/activations/handoffs/{hid}/complete",
                                 headers={"Authorization": f"Bearer {other_token}"}) as r:
                assert r.status == 403 and (await r.json())["error"]["code"] == "forbidden"
            async with http.post(f"{a.url}/api/v1/activations/handoffs/{hid}/complete",
                                 headers=client_headers) as r:
                assert r.status == 200 and (await r.json())["status"] == "done"
            async with http.post(f"{a.url}/api/v1/activations/handoffs/{hid}/complete",
                                 headers=client_headers) as r:
                assert r.status == 409
        (row,) = await _note_rows(a)
        assert row.note_ct is None and row.status == "done"  # purged
        async with a.db.read() as conn:
            assert await handoff.handoff_inbox(conn, actx(a), coord) == []
    finally:
        await net.close()


async def test_roles_and_api(tmp_path: Path) -> None:
    import aiohttp

    net = await make_network(4, tmp_path=tmp_path)
    try:
        a = net.node("agency-1")
        _, coord = await add_user(a, "coord", Role.COORDINATOR)
        _, sup = await add_user(a, "sup", Role.PEER_SUPPORTER)
        body = request_in(["agency-2", "agency-3"]).model_dump(mode="json")
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{a.url}/api/v1/activations", json=body,
                                 headers={"Authorization": f"Bearer {sup}"}) as r:
                assert r.status == 403 and (await r.json())["error"]["code"] == "forbidden"
            async with http.get(f"{a.url}/api/v1/activations",
                                headers={"Authorization": f"Bearer {sup}"}) as r:
                assert r.status == 403
            async with http.post(f"{a.url}/api/v1/activations", json=body,
                                 headers={"Authorization": f"Bearer {coord}"}) as r:
                assert r.status == 201, await r.text()
                out = await r.json()
            aid = out["activation_id"]
            assert out["state"] == "requested" and len(out["legs"]) == 2
            async with http.get(f"{a.url}/api/v1/activations/targets?discipline=corrections",
                                headers={"Authorization": f"Bearer {coord}"}) as r:
                assert [t["node_id"] for t in (await r.json())["items"]] == ["agency-4"]
            # an illegal transition: a stable code and nothing changed
            before = await view(a, aid)
            async with http.post(f"{a.url}/api/v1/activations/{aid}/close",
                                 headers={"Authorization": f"Bearer {coord}"}) as r:
                assert r.status == 409
                assert (await r.json())["error"]["code"] == "illegal_transition"
            async with http.post(f"{a.url}/api/v1/activations/{aid}/update",
                                 json={"stage": "on_scene"},
                                 headers={"Authorization": f"Bearer {coord}"}) as r:
                assert r.status == 409 and (await r.json())["error"]["code"] == "wrong_side"
            async with http.post(f"{a.url}/api/v1/activations", json={**body, "note": "x"},
                                 headers={"Authorization": f"Bearer {coord}"}) as r:
                assert r.status == 422 and (await r.json())["error"]["code"] == "unknown_field"
            assert await view(a, aid) == before
            async with http.post(f"{a.url}/api/v1/activations/{aid}/cancel",
                                 json=CancelIn(reason="resolved_locally").model_dump(mode="json"),
                                 headers={"Authorization": f"Bearer {coord}"}) as r:
                assert r.status == 200 and (await r.json())["state"] == "cancelled"
            async with http.get(f"{a.url}/api/v1/openapi.json") as r:
                paths = (await r.json())["paths"]
            assert "/api/v1/activations" in paths
            assert "/api/v1/activations/{activation_id}/accept" in paths
        await net.settle()
        assert await state_of(net.node("agency-2"), aid, "agency-1") is S.CANCELLED
    finally:
        await net.close()


async def test_refused_inbound_messages_are_acked_with_codes_and_change_nothing(
    tmp_path: Path
) -> None:
    from federation.store import outbox
    from protocol.messages import MessageType

    net = await make_network(4, tmp_path=tmp_path)
    try:
        a, b, c = net.node("agency-1"), net.node("agency-2"), net.node("agency-3")
        async with a.db.write() as conn:
            act = await requesting.create_request(conn, actx(a), request_in(["agency-2"]),
                                           user_id=None)
        aid = act.activation_id
        await net.settle()
        before = await view(a, aid)
        sent = {}
        # raw messages a real service would never send: each must be refused by agency-1
        bad = {
            "update_too_early": (b, MessageType.ACTIVATION_UPDATE, {"stage": "on_scene"}, aid),
            "not_asked": (c, MessageType.ACTIVATION_OFFER, {
                "peers": 1, "disciplines": {"ems": 1}, "eta_minutes": 5, "conditions": []}, aid),
            "no_thread": (b, MessageType.ACTIVATION_CANCEL, {"reason": "other"}, None),
            "accept_to_requester": (b, MessageType.ACTIVATION_ACCEPT,
                                    {"offer_msg_id": aid}, aid),
            "handoff_too_early": (b, MessageType.FOLLOWUP_HANDOFF, {
                "activation_id": aid, "due": "2026-06-01", "contact_note": NOTE,
                "discipline": "fire"}, aid),
        }
        for name, (sender, msg_type, body, thread) in bad.items():
            async with sender.db.write() as conn:
                sent[name] = (sender, await sender.fed.send(
                    conn, "agency-1", msg_type, body, thread_id=thread))
        await net.settle()
        assert await view(a, aid) == before  # nothing changed on the requester
        for name, (sender, msg_id) in sent.items():
            async with sender.db.read() as conn:
                row = (await conn.execute(
                    select(outbox.c.state, outbox.c.failed_code)
                    .where(outbox.c.msg_id == msg_id))).one()
            assert tuple(row) == ("failed", "bad_body"), name  # refused end to end
        async with a.db.read() as conn:
            assert (await conn.execute(select(Handoff.__table__))).all() == []
        # A cancel in a thread agency-1 has not seen is not refused: its request may still
        # be on its way (delivery is not in order), so it is kept until it comes.
        async with b.db.write() as conn:
            early = await b.fed.send(conn, "agency-1", MessageType.ACTIVATION_CANCEL,
                                     {"reason": "other"}, thread_id="01ARZ3NDEKTSV4RRFFQ69G5FAV")
        await net.settle()
        async with b.db.read() as conn:
            row = (await conn.execute(select(outbox.c.state, outbox.c.failed_code)
                                      .where(outbox.c.msg_id == early))).one()
        assert tuple(row) == ("done", None)
        async with a.db.read() as conn:
            kept = (await conn.execute(select(ActivationEarly.__table__))).all()
        assert [(r.peer, r.msg_id, r.msg_type) for r in kept] == [
            ("agency-2", early, "activation_cancel")]
        assert await view(a, aid) == before
    finally:
        await net.close()
