"""Regressions of out-of-order delivery, on both databases: each message fed by hand."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from node.activation import ending, views
from node.activation import requester as requesting
from node.activation import responder as responding
from node.activation import rows as act_rows
from node.activation.db import ActivationEarly
from node.activation.errors import ActivationError
from node.activation.inbound import EARLY_WINDOW_MS, apply_inbound
from node.activation.models import OfferIn
from node.activation.states import Event, TransitionRefused, merge
from node.core.db import Database
from protocol.ids import new_ulid
from protocol.messages import MessageType
from protocol.vocabulary import ActivationState, CancelReason, DeclineReason
from tests.activations.helpers import HOUR, T0, make_ctx, node_db, request_in
from tests.activations.test_service import OFFER, OFFER_IN, inbound, snapshot

S = ActivationState
MT = MessageType
EARLY = ActivationEarly.__table__


def _request_body() -> dict[str, object]:
    body = request_in(["agency-b"]).model_dump(mode="json", exclude={"targets", "draft"})
    return {**body, "requesting_agency": "agency-a"}


async def _history(db: Database) -> list[tuple[str, str | None]]:
    async with db.read() as conn:
        events = act_rows.E
        rows = (await conn.execute(select(events.c.state, events.c.note).order_by(events.c.id)))
        return [(r.state, r.note) for r in rows.all()]


async def test_cancel_before_request_is_kept_and_the_request_is_stored_cancelled(
    db_url: str
) -> None:
    ctx, rec = make_ctx("agency-b")
    aid = new_ulid(T0, b"\x05" * 10)
    async with node_db(db_url) as db:
        cancel = inbound(MT.ACTIVATION_CANCEL, "agency-a", {"reason": "no_longer_needed"},
                         thread=aid)
        async with db.write() as conn:
            await apply_inbound(conn, ctx, cancel)  # accepted, not refused
        async with db.read() as conn:
            kept = (await conn.execute(select(EARLY))).all()
            assert [(r.peer, r.thread_id, r.msg_id) for r in kept] == [
                ("agency-a", aid, cancel.msg_id)]
            assert (await conn.execute(select(act_rows.A))).all() == []  # no activation yet
        async with db.write() as conn:
            await apply_inbound(conn, ctx, inbound(
                MT.ACTIVATION_REQUEST, "agency-a", _request_body(), thread=aid))
        async with db.read() as conn:
            view = await views.get(conn, ctx, aid, "agency-a")
            assert (await conn.execute(select(EARLY))).all() == []
        assert view.state is S.CANCELLED and view.legs[0].state is S.CANCELLED
        assert view.legs[0].cancelled_by == "agency-a"
        assert view.legs[0].cancel_reason == "no_longer_needed"
        assert await _history(db) == [
            ("requested", None), ("cancelled", "the cancellation arrived before the request")]
        listed = await _list(db, ctx)
        assert listed == [S.CANCELLED]  # never shown as open
        before = await snapshot(db)
        with pytest.raises(ActivationError) as info:  # and never offered on
            async with db.write() as conn:
                await responding.make_offer(conn, ctx, aid, OfferIn.model_validate(OFFER_IN),
                                     requester="agency-a")
        assert str(info.value.code) == "terminal_state" and await snapshot(db) == before
        assert rec.of(MT.ACTIVATION_OFFER) == []


async def _list(db: Database, ctx: object) -> list[S]:
    async with db.read() as conn:
        return [a.state for a in await views.list_activations(conn, ctx)]  # type: ignore[arg-type]


async def test_an_early_message_whose_request_never_comes_is_swept(db_url: str) -> None:
    ctx, _ = make_ctx("agency-b")
    async with node_db(db_url) as db:
        async with db.write() as conn:
            await apply_inbound(conn, ctx, inbound(
                MT.ACTIVATION_CANCEL, "agency-a", {"reason": "other"},
                thread=new_ulid(T0, b"\x06" * 10)))
        ctx.clock.advance(EARLY_WINDOW_MS - 1)  # type: ignore[attr-defined]
        async with db.write() as conn:
            await ending.expire_due(conn, ctx)
            assert len((await conn.execute(select(EARLY))).all()) == 1  # may still come
        ctx.clock.advance(2)  # type: ignore[attr-defined]
        async with db.write() as conn:
            await ending.expire_due(conn, ctx)
            assert (await conn.execute(select(EARLY))).all() == []


async def _accepted(db: Database, ctx: object) -> str:
    """A requester activation to agency-b whose offer was accepted."""
    async with db.write() as conn:
        aid = (await requesting.create_request(conn, ctx, request_in(["agency-b"]),  # type: ignore[arg-type]
                                        user_id=None)).activation_id
        offer = inbound(MT.ACTIVATION_OFFER, "agency-b", OFFER, thread=aid)
        await apply_inbound(conn, ctx, offer)  # type: ignore[arg-type]
        await requesting.accept_offer(conn, ctx, aid, offer.msg_id)  # type: ignore[arg-type]
    return aid


async def test_on_scene_before_mobilized_implies_it_and_the_late_one_is_stale(
    db_url: str
) -> None:
    ctx, _ = make_ctx("agency-a")
    async with node_db(db_url) as db:
        aid = await _accepted(db, ctx)
        on_scene = inbound(MT.ACTIVATION_UPDATE, "agency-b", {"stage": "on_scene"}, thread=aid)
        async with db.write() as conn:
            await apply_inbound(conn, ctx, on_scene)
            assert (await views.get(conn, ctx, aid)).legs[0].state is S.ON_SCENE
        hist = await _history(db)
        assert hist[-2:] == [
            ("mobilized", "implied by the on_scene update (that message had not arrived)"),
            ("on_scene", None)]
        leg_before = (await snapshot(db))[:2]
        late = inbound(MT.ACTIVATION_UPDATE, "agency-b", {"stage": "mobilized"}, thread=aid)
        async with db.write() as conn:
            await apply_inbound(conn, ctx, late)  # accepted, not refused
        assert (await snapshot(db))[:2] == leg_before  # no state change
        assert (await _history(db))[-1] == (
            "mobilized", "stale: the mobilized update arrived when the leg was already "
            "on_scene; no change")


async def test_genuinely_invalid_messages_are_still_refused(db_url: str) -> None:
    ctx_b, _ = make_ctx("agency-b")
    ctx_b.directory.forbidden.add(("agency-c", "agency-b"))  # type: ignore[attr-defined]
    ctx_a, _ = make_ctx("agency-a")
    aid = new_ulid(T0, b"\x07" * 10)
    async with node_db(db_url) as db:
        before = await snapshot(db)
        cases = [
            # an acceptance of an offer this node never made (it has not seen the thread)
            (inbound(MT.ACTIVATION_ACCEPT, "agency-a", {"offer_msg_id": aid}, thread=aid),
             "unknown_offer"),
            # an early cancel from a node the roster does not let ask us
            (inbound(MT.ACTIVATION_CANCEL, "agency-c", {"reason": "other"}, thread=aid),
             "not_a_party"),
            # a cancel naming no activation at all
            (inbound(MT.ACTIVATION_CANCEL, "agency-a", {"reason": "other"}, thread=None),
             "not_a_party"),
        ]
        for message, code in cases:
            with pytest.raises(ActivationError) as info:
                async with db.write() as conn:
                    await apply_inbound(conn, ctx_b, message)
            assert str(info.value.code) == code
            assert await snapshot(db) == before
    async with node_db(db_url) as db:
        aid = await _accepted(db, ctx_a)
        async with db.write() as conn:
            await apply_inbound(conn, ctx_a, inbound(
                MT.ACTIVATION_UPDATE, "agency-b", {"stage": "mobilized"}, thread=aid))
        before = await snapshot(db)
        bad = [
            # a responder that reported mobilized cannot decline any more
            (inbound(MT.ACTIVATION_DECLINE, "agency-b", {"reason": "other"}, thread=aid),
             "illegal_transition"),
            # a second, different offer from the same responder
            (inbound(MT.ACTIVATION_OFFER, "agency-b", OFFER, thread=aid), "illegal_transition"),
            # a node that was not asked
            (inbound(MT.ACTIVATION_CANCEL, "agency-c", {"reason": "other"}, thread=aid),
             "not_a_party"),
        ]
        for message, code in bad:
            with pytest.raises(ActivationError) as info:
                async with db.write() as conn:
                    await apply_inbound(conn, ctx_a, message)
            assert str(info.value.code) == code
            assert await snapshot(db) == before


async def test_concurrent_terminals_settle_on_the_same_state(db_url: str) -> None:
    """The requester cancels while the responder declines: both end cancelled."""
    ctx_a, _ = make_ctx("agency-a")
    async with node_db(db_url) as db:
        async with db.write() as conn:
            aid = (await requesting.create_request(conn, ctx_a, request_in(["agency-b"]),
                                            user_id=None)).activation_id
            await ending.cancel(conn, ctx_a, aid, CancelReason.OTHER)
            await apply_inbound(conn, ctx_a, inbound(
                MT.ACTIVATION_DECLINE, "agency-b", {"reason": "no_capacity"}, thread=aid))
            assert (await views.get(conn, ctx_a, aid)).legs[0].state is S.CANCELLED
    ctx_b, _ = make_ctx("agency-b")
    async with node_db(db_url) as db:
        aid = new_ulid(T0, b"\x08" * 10)
        async with db.write() as conn:
            await apply_inbound(conn, ctx_b, inbound(
                MT.ACTIVATION_REQUEST, "agency-a", _request_body(), thread=aid))
            await responding.decline_request(conn, ctx_b, aid, DeclineReason.NO_CAPACITY,
                                      requester="agency-a")
            await apply_inbound(conn, ctx_b, inbound(
                MT.ACTIVATION_CANCEL, "agency-a", {"reason": "other"}, thread=aid))
            leg = (await views.get(conn, ctx_b, aid, "agency-a")).legs[0]
        assert leg.state is S.CANCELLED and leg.cancelled_by == "agency-a"


async def test_timely_acceptance_undoes_the_responders_own_expiry(db_url: str) -> None:
    ctx, _ = make_ctx("agency-b")
    aid = new_ulid(T0, b"\x09" * 10)
    async with node_db(db_url) as db:
        async with db.write() as conn:
            await apply_inbound(conn, ctx, inbound(
                MT.ACTIVATION_REQUEST, "agency-a", _request_body(), thread=aid))
            out = await responding.make_offer(conn, ctx, aid, OfferIn.model_validate(OFFER_IN),
                                       requester="agency-a")
        offer_id = out.legs[0].offer.msg_id  # type: ignore[union-attr]
        ctx.clock.set(T0 + 5 * HOUR)  # type: ignore[attr-defined]
        async with db.write() as conn:
            assert await ending.expire_due(conn, ctx) == 1
        late = inbound(MT.ACTIVATION_ACCEPT, "agency-a", {"offer_msg_id": offer_id},
                       thread=aid, created=T0 + 3 * HOUR)
        async with db.write() as conn:
            await apply_inbound(conn, ctx, late)
            leg = (await views.get(conn, ctx, aid, "agency-a")).legs[0]
        assert leg.state is S.ACCEPTED and leg.accept_msg_id == late.msg_id
        assert (await _history(db))[-1] == (
            "accepted", "accepted before the expiry: the local expiry is undone")


def test_merge_table() -> None:
    assert merge(S.ACCEPTED, Event.ARRIVE) == (S.ON_SCENE, (S.MOBILIZED,), False)
    assert merge(S.ON_SCENE, Event.MOBILIZE) == (S.ON_SCENE, (), True)
    assert merge(S.REQUESTED, Event.CANCEL) == (S.CANCELLED, (), False)
    assert merge(S.CANCELLED, Event.OFFER) == (S.CANCELLED, (), True)
    assert merge(S.CANCELLED, Event.DECLINE) == (S.CANCELLED, (), True)
    assert merge(S.DECLINED, Event.CANCEL) == (S.CANCELLED, (), False)
    assert merge(S.CLOSED, Event.CANCEL) == (S.CANCELLED, (), False)
    assert merge(S.EXPIRED, Event.DECLINE) == (S.DECLINED, (), False)
    assert merge(S.ACCEPTED, Event.DEMOBILIZE) == (
        S.DEMOBILIZED, (S.MOBILIZED, S.ON_SCENE), False)
    with pytest.raises(TransitionRefused):  # nobody can speak about a draft
        merge(S.DRAFT, Event.OFFER)
