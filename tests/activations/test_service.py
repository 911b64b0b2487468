"""Activation services on both databases: one node, inbound messages fed by hand."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text

from node.activation import ending, views
from node.activation import requester as requesting
from node.activation import responder as responding
from node.activation import rows as act_rows
from node.activation.db import Side
from node.activation.errors import ActivationError
from node.activation.inbound import Inbound, apply_inbound
from node.activation.models import OfferIn
from node.core.db import Database
from protocol.ids import new_ulid
from protocol.messages import BODY_MODELS, MessageType
from protocol.vocabulary import ActivationState, CancelReason, DeclineReason, Stage
from tests.activations.helpers import HOUR, T0, add_user, make_ctx, node_db, request_in

S = ActivationState
MT = MessageType
_n = 0


def inbound(msg_type: MessageType, sender: str, body: dict[str, Any], *, thread: str | None,
            reply: str | None = None, created: int = T0) -> Inbound:
    global _n
    _n += 1
    model = BODY_MODELS[msg_type].model_validate(body)
    return Inbound(msg_type, new_ulid(created, (1000 + _n).to_bytes(10, "big")), sender,
                   created, thread, reply, model)


OFFER = {"peers": 3, "disciplines": {"fire": 2, "ems": 1}, "eta_minutes": 45,
         "conditions": ["meals_required"]}
OFFER_IN = {k: v for k, v in OFFER.items() if k != "peers"}


async def snapshot(db: Database) -> list[Any]:
    out = []
    async with db.read() as conn:
        for table in ("activations", "activation_legs", "activation_events", "handoffs"):
            rows = (await conn.execute(text(f"SELECT * FROM {table} ORDER BY 1"))).all()
            out.append([tuple(str(v) for v in r) for r in rows])
    return out


async def test_requester_lifecycle(db_url: str) -> None:
    ctx, rec = make_ctx("agency-a")
    async with node_db(db_url) as db:
        async with db.write() as conn:
            uid = await add_user(conn, "coord")
            act = await requesting.create_request(
                conn, ctx, request_in(["agency-b", "agency-c", "agency-d"]), user_id=uid)
        aid = act.activation_id
        assert act.state is S.REQUESTED
        assert [leg.state for leg in act.legs] == [S.REQUESTED] * 3
        reqs = rec.of(MT.ACTIVATION_REQUEST)
        assert {r.to for r in reqs} == {"agency-b", "agency-c", "agency-d"}
        assert all(r.thread_id == aid and r.body["requesting_agency"] == "agency-a" for r in reqs)
        # timing: defusing 2 h after the event, window within 12 h: no warning
        assert act.warnings == []

        async with db.write() as conn:
            ob = inbound(MT.ACTIVATION_OFFER, "agency-b", OFFER, thread=aid)
            oc = inbound(MT.ACTIVATION_OFFER, "agency-c", {**OFFER, "peers": 1,
                         "disciplines": {"law_enforcement": 1}}, thread=aid)
            await apply_inbound(conn, ctx, ob)
            await apply_inbound(conn, ctx, oc)
        async with db.write() as conn:
            first = await requesting.accept_offer(conn, ctx, aid, ob.msg_id)
        async with db.write() as conn:
            again = await requesting.accept_offer(conn, ctx, aid, ob.msg_id)
        assert not first.repeated and again.repeated
        assert again.accept_msg_id == first.accept_msg_id and again.responder == "agency-b"
        assert len(rec.of(MT.ACTIVATION_ACCEPT)) == 1
        async with db.write() as conn:
            await requesting.decline_offer(conn, ctx, aid, "agency-c", DeclineReason.NO_CAPACITY)
        ctx.clock.advance(5 * HOUR)  # type: ignore[attr-defined]
        async with db.write() as conn:
            assert await ending.expire_due(conn, ctx) == 1
            assert await ending.expire_due(conn, ctx) == 0
        for stage in (Stage.MOBILIZED, Stage.ON_SCENE, Stage.DEMOBILIZED):
            async with db.write() as conn:
                await apply_inbound(conn, ctx, inbound(
                    MT.ACTIVATION_UPDATE, "agency-b", {"stage": stage.value}, thread=aid))
        async with db.read() as conn:
            view = await views.get(conn, ctx, aid)
        assert view.state is S.DEMOBILIZED
        assert {leg.responder: leg.state for leg in view.legs} == {
            "agency-b": S.DEMOBILIZED, "agency-c": S.DECLINED, "agency-d": S.EXPIRED}
        async with db.write() as conn:
            closed = await ending.close(conn, ctx, aid)
        assert closed.state is S.CLOSED
        statuses = [(s.body["responder"], s.body["state"]) for s in rec.of(MT.ACTIVATION_STATUS)]
        # The submit's one report names every agency asked; the later ones one leg each.
        asked = [s.body.get("responders") for s in rec.of(MT.ACTIVATION_STATUS)]
        assert asked == [["agency-b", "agency-c", "agency-d"]] + [None] * 10
        assert statuses == [
            (None, "requested"), ("agency-b", "offered"), ("agency-c", "offered"),
            ("agency-b", "accepted"), ("agency-c", "declined"), ("agency-d", "expired"),
            ("agency-b", "mobilized"), ("agency-b", "on_scene"), ("agency-b", "demobilized"),
            ("agency-b", "closed"), (None, "closed"),
        ]
        assert all(s.to == "hub-one" for s in rec.of(MT.ACTIVATION_STATUS))
        # Metadata only: exactly these fields (the submit's report also names who was asked).
        fields = {"activation_id", "requester", "responder", "state", "counts", "incident_type",
                  "ts"}
        assert {frozenset(s.body) for s in rec.of(MT.ACTIVATION_STATUS)} == {
            frozenset(fields), frozenset(fields | {"responders"})}


async def test_responder_side(db_url: str) -> None:
    ctx, rec = make_ctx("agency-b")
    async with node_db(db_url) as db:
        aid = new_ulid(T0, b"\x01" * 10)
        body = request_in(["agency-b"]).model_dump(mode="json", exclude={"targets", "draft"})
        req = inbound(MT.ACTIVATION_REQUEST, "agency-a",
                      {**body, "requesting_agency": "agency-a"}, thread=aid)
        async with db.write() as conn:
            await apply_inbound(conn, ctx, req)
        async with db.read() as conn:
            incoming = await views.list_activations(conn, ctx, Side.IN)
        assert [(a.activation_id, a.state) for a in incoming] == [(aid, S.REQUESTED)]
        async with db.write() as conn:
            await responding.make_offer(conn, ctx, aid, OfferIn.model_validate(OFFER_IN))
        (offer,) = rec.of(MT.ACTIVATION_OFFER)
        assert offer.to == "agency-a" and offer.in_reply_to == req.msg_id
        assert offer.body == OFFER  # counts by discipline only
        acc = inbound(MT.ACTIVATION_ACCEPT, "agency-a", {"offer_msg_id": offer.msg_id},
                      thread=aid, reply=offer.msg_id)
        async with db.write() as conn:
            await apply_inbound(conn, ctx, acc)
        before = await snapshot(db)
        async with db.write() as conn:  # a second acceptance of the same offer: no change
            await apply_inbound(conn, ctx, inbound(
                MT.ACTIVATION_ACCEPT, "agency-a", {"offer_msg_id": offer.msg_id}, thread=aid))
        assert await snapshot(db) == before
        for stage in (Stage.MOBILIZED, Stage.ON_SCENE, Stage.DEMOBILIZED):
            async with db.write() as conn:
                await responding.send_update(conn, ctx, aid, stage)
        assert [s.body["stage"] for s in rec.of(MT.ACTIVATION_UPDATE)] == [
            "mobilized", "on_scene", "demobilized"]
        async with db.write() as conn:
            done = await ending.close(conn, ctx, aid)
        assert done.state is S.CLOSED
        assert rec.of(MT.ACTIVATION_STATUS) == []  # the requester reports, not the responder


async def test_inbound_refusals_change_nothing(db_url: str) -> None:
    ctx, rec = make_ctx("agency-a")
    async with node_db(db_url) as db:
        async with db.write() as conn:
            act = await requesting.create_request(conn, ctx, request_in(["agency-b"]), user_id=None)
        aid = act.activation_id
        before = await snapshot(db)
        bad = [
            # an update before any acceptance
            (inbound(MT.ACTIVATION_UPDATE, "agency-b", {"stage": "on_scene"}, thread=aid),
             "illegal_transition"),
            # a node that was not asked
            (inbound(MT.ACTIVATION_OFFER, "agency-c", OFFER, thread=aid), "not_a_party"),
            # an unknown thread
            (inbound(MT.ACTIVATION_OFFER, "agency-b", OFFER, thread=new_ulid(T0, b"z" * 10)),
             "not_a_party"),
            # an offer made after the expiry
            (inbound(MT.ACTIVATION_OFFER, "agency-b", OFFER, thread=aid,
                     created=T0 + 5 * HOUR), "request_expired"),
            # an acceptance sent to the requester
            (inbound(MT.ACTIVATION_ACCEPT, "agency-b", {"offer_msg_id": aid}, thread=aid),
             "not_a_party"),
        ]
        for message, code in bad:
            with pytest.raises(ActivationError) as info:
                async with db.write() as conn:
                    await apply_inbound(conn, ctx, message)
            assert str(info.value.code) == code
            assert await snapshot(db) == before


async def test_illegal_operations_are_refused_with_codes(db_url: str) -> None:
    ctx, rec = make_ctx("agency-a")
    async with node_db(db_url) as db:
        async with db.write() as conn:
            act = await requesting.create_request(conn, ctx, request_in(["agency-b"]), user_id=None)
        aid = act.activation_id
        before = await snapshot(db)
        sent = len(rec.sent)

        async def refused(coro: Any, code: str, status: int) -> None:
            with pytest.raises(ActivationError) as info:
                async with db.write() as conn:
                    await coro(conn)
            assert str(info.value.code) == code and info.value.status == status
            assert info.value.body()["error"]["code"] == code
            assert await snapshot(db) == before and len(rec.sent) == sent

        await refused(lambda c: requesting.submit(c, ctx, aid), "illegal_transition", 409)
        await refused(lambda c: ending.close(c, ctx, aid), "illegal_transition", 409)
        await refused(lambda c: requesting.accept_offer(c, ctx, aid, aid), "unknown_offer", 404)
        await refused(lambda c: requesting.decline_offer(c, ctx, aid, "agency-b",
                                                  DeclineReason.OTHER), "illegal_transition", 409)
        await refused(
            lambda c: responding.make_offer(c, ctx, aid, OfferIn.model_validate(OFFER_IN)),
            "wrong_side", 409,
        )
        await refused(
            lambda c: responding.send_update(c, ctx, aid, Stage.MOBILIZED), "wrong_side", 409
        )
        await refused(lambda c: requesting.create_request(c, ctx, request_in(["agency-a"]),
                                                   user_id=None), "bad_target", 422)
        await refused(lambda c: requesting.create_request(c, ctx, request_in(["agency-x"]),
                                                   user_id=None), "bad_target", 422)
        await refused(lambda c: views.get(c, ctx, new_ulid(T0, b"q" * 10)), "not_found", 404)
        async with db.write() as conn:
            await ending.cancel(conn, ctx, aid, CancelReason.RESOLVED_LOCALLY)
        before = await snapshot(db)
        sent = len(rec.sent)
        await refused(
            lambda c: ending.cancel(c, ctx, aid, CancelReason.OTHER), "terminal_state", 409
        )


async def _to_state(db: Database, ctx: Any, target: S) -> str:
    """A requester activation with one leg (agency-b) driven to `target`."""
    async with db.write() as conn:
        act = await requesting.create_request(
            conn, ctx, request_in(["agency-b"], draft=target is S.DRAFT), user_id=None)
    aid = act.activation_id
    path = [S.REQUESTED, S.OFFERED, S.ACCEPTED, S.MOBILIZED, S.ON_SCENE, S.DEMOBILIZED]
    if target is S.DRAFT:
        return aid
    for state in path[1:path.index(target) + 1]:
        async with db.write() as conn:
            if state is S.OFFERED:
                m = inbound(MT.ACTIVATION_OFFER, "agency-b", OFFER, thread=aid)
                await apply_inbound(conn, ctx, m)
                offer_id = m.msg_id
            elif state is S.ACCEPTED:
                await requesting.accept_offer(conn, ctx, aid, offer_id)
            else:
                stage = {S.MOBILIZED: "mobilized", S.ON_SCENE: "on_scene",
                         S.DEMOBILIZED: "demobilized"}[state]
                await apply_inbound(conn, ctx, inbound(
                    MT.ACTIVATION_UPDATE, "agency-b", {"stage": stage}, thread=aid))
    return aid


@pytest.mark.parametrize("state", [S.DRAFT, S.REQUESTED, S.OFFERED, S.ACCEPTED, S.MOBILIZED,
                                   S.ON_SCENE, S.DEMOBILIZED])
async def test_cancel_from_each_open_state(sqlite_url: str, state: S) -> None:
    ctx, rec = make_ctx("agency-a")
    async with node_db(sqlite_url) as db:
        aid = await _to_state(db, ctx, state)
        async with db.read() as conn:
            assert (await views.get(conn, ctx, aid)).state is state
        async with db.write() as conn:
            out = await ending.cancel(conn, ctx, aid, CancelReason.NO_LONGER_NEEDED)
        assert out.state is S.CANCELLED and out.legs[0].state is S.CANCELLED
        cancels = rec.of(MT.ACTIVATION_CANCEL)
        assert len(cancels) == (0 if state is S.DRAFT else 1)
        if state is not S.DRAFT:
            assert rec.of(MT.ACTIVATION_STATUS)[-1].body["state"] == "cancelled"
        else:
            assert rec.of(MT.ACTIVATION_STATUS) == []  # a draft never reaches the hub


async def test_responder_cancel_reaches_requester(db_url: str) -> None:
    ctx, rec = make_ctx("agency-a")
    async with node_db(db_url) as db:
        aid = await _to_state(db, ctx, S.MOBILIZED)
        async with db.write() as conn:
            await apply_inbound(conn, ctx, inbound(
                MT.ACTIVATION_CANCEL, "agency-b", {"reason": "other"}, thread=aid))
            view = await views.get(conn, ctx, aid)
        assert view.legs[0].state is S.CANCELLED and view.legs[0].cancelled_by == "agency-b"
        assert view.state is S.CANCELLED


async def test_warnings_and_targets(db_url: str) -> None:
    ctx, _ = make_ctx("agency-a")
    async with node_db(db_url) as db:
        async with db.write() as conn:
            act = await requesting.create_request(conn, ctx, request_in(
                ["agency-b"], interventions=["defusing", "debriefing"],
                event_ts=T0 - 13 * HOUR), user_id=None)
        assert [w.code for w in act.warnings] == [
            "defusing_band_passed", "debriefing_window_early"]
    got = views.targets(ctx, discipline="ems")
    assert [t.node_id for t in got] == ["agency-b"]  # not ourselves, not the hub
    assert [t.node_id for t in views.targets(ctx, region="south")] == ["agency-c", "agency-d"]


async def test_events_record_history(sqlite_url: str) -> None:
    ctx, _ = make_ctx("agency-a")
    async with node_db(sqlite_url) as db:
        aid = await _to_state(db, ctx, S.ON_SCENE)
        async with db.read() as conn:
            rows = (await conn.execute(select(act_rows.E.c.state, act_rows.E.c.responder)
                                       .order_by(act_rows.E.c.id))).all()
        assert [r.state for r in rows] == ["draft", "requested", "requested", "offered",
                                           "accepted", "mobilized", "on_scene"]
        assert aid


async def test_inbound_requests_refused_by_policy_or_mismatch(db_url: str) -> None:
    ctx, rec = make_ctx("agency-b")
    ctx.directory.forbidden.add(("agency-c", "agency-b"))  # type: ignore[attr-defined]
    async with node_db(db_url) as db:
        body = request_in(["agency-b"]).model_dump(mode="json", exclude={"targets", "draft"})
        aid = new_ulid(T0, b"\x02" * 10)
        cases = [
            (inbound(MT.ACTIVATION_REQUEST, "agency-c", {**body, "requesting_agency": "agency-c"},
                     thread=aid), "bad_target"),
            (inbound(MT.ACTIVATION_REQUEST, "agency-a", {**body, "requesting_agency": "agency-d"},
                     thread=aid), "not_a_party"),
        ]
        for message, code in cases:
            with pytest.raises(ActivationError) as info:
                async with db.write() as conn:
                    await apply_inbound(conn, ctx, message)
            assert str(info.value.code) == code
        assert await snapshot(db) == [[], [], [], []]
        ok = inbound(MT.ACTIVATION_REQUEST, "agency-a", {**body, "requesting_agency": "agency-a"},
                     thread=aid)
        async with db.write() as conn:
            await apply_inbound(conn, ctx, ok)
        before = await snapshot(db)
        with pytest.raises(ActivationError) as info:  # the same activation asked twice
            async with db.write() as conn:
                await apply_inbound(conn, ctx, inbound(
                    MT.ACTIVATION_REQUEST, "agency-a", {**body, "requesting_agency": "agency-a"},
                    thread=aid))
        assert str(info.value.code) == "conflict" and await snapshot(db) == before
        # an acceptance naming some other offer
        async with db.write() as conn:
            await responding.make_offer(conn, ctx, aid, OfferIn.model_validate(OFFER_IN))
        before = await snapshot(db)
        with pytest.raises(ActivationError) as info:
            async with db.write() as conn:
                await apply_inbound(conn, ctx, inbound(
                    MT.ACTIVATION_ACCEPT, "agency-a", {"offer_msg_id": aid}, thread=aid))
        assert str(info.value.code) == "unknown_offer" and await snapshot(db) == before
        assert rec.of(MT.ACTIVATION_ACCEPT) == []


async def test_concurrent_acceptances_of_one_offer_send_one_accept(db_url: str) -> None:
    import asyncio

    ctx, rec = make_ctx("agency-a")
    async with node_db(db_url) as db:
        async with db.write() as conn:
            act = await requesting.create_request(conn, ctx, request_in(["agency-b"]), user_id=None)
        aid = act.activation_id
        m = inbound(MT.ACTIVATION_OFFER, "agency-b", OFFER, thread=aid)
        async with db.write() as conn:
            await apply_inbound(conn, ctx, m)

        async def accept() -> Any:
            async with db.write() as conn:
                out = await requesting.accept_offer(conn, ctx, aid, m.msg_id)
                await asyncio.sleep(0.05)  # hold the transaction open a moment
                return out

        outs = await asyncio.gather(accept(), accept())
        assert sorted(o.repeated for o in outs) == [False, True]
        assert outs[0].accept_msg_id == outs[1].accept_msg_id
        assert len(rec.of(MT.ACTIVATION_ACCEPT)) == 1


async def test_concurrent_submits_of_one_draft_send_once(db_url: str) -> None:
    import asyncio

    ctx, rec = make_ctx("agency-a")
    async with node_db(db_url) as db:
        async with db.write() as conn:
            act = await requesting.create_request(conn, ctx, request_in(["agency-b"], draft=True),
                                           user_id=None)

        async def submit() -> str:
            try:
                async with db.write() as conn:
                    await requesting.submit(conn, ctx, act.activation_id)
                    await asyncio.sleep(0.05)
                return "ok"
            except ActivationError as exc:
                return str(exc.code)

        results = sorted(await asyncio.gather(submit(), submit()))
        assert results[1] == "ok" and results[0] in ("illegal_transition", "conflict")
        async with db.read() as conn:
            legs = (await views.get(conn, ctx, act.activation_id)).legs
        assert [leg.state for leg in legs] == [S.REQUESTED]
