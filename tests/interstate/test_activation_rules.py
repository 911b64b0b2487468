"""Interstate activation rules on both databases, each message fed to the inbound handler by
hand (the real-server lifecycle is tests/interstate/test_activation_interstate.py): qualified
requesters up to 95 characters stored (the widened columns), a sender of another network
naming someone else's agency refused with nothing stored, a home agency posing as another
network refused, an early cancellation from another network applied to its request, the
responder's report to its own hub, and the held incoming request."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from bench.reliability_report import record
from node.activation import approval, views
from node.activation import requester as requesting
from node.activation import responder as responding
from node.activation.context import ActivationContext
from node.activation.errors import ActivationError
from node.activation.inbound import apply_inbound
from node.activation.interstate import PEER_NAME_MAX, agency_of, is_peer_name, normalize
from node.activation.models import OfferIn
from protocol.ids import new_ulid
from protocol.messages import MessageType
from protocol.vocabulary import ActivationState
from tests.activations.helpers import T0, Entry, Recorder, make_ctx, node_db, request_in
from tests.activations.test_service import OFFER_IN, inbound, snapshot

S = ActivationState
MT = MessageType
LONG_NET = "n" + "x" * 30  # 31 characters, the longest network id
LONG_NODE = "a" + "g" * 62  # 63 characters, the longest node id
LONG = f"{LONG_NET}/{LONG_NODE}"


@dataclass
class Foreign:
    """An `InterstateDirectory` over plain lists."""

    by_network: dict[str, list[Entry]] = field(default_factory=dict)

    def networks(self) -> list[str]:
        return sorted(self.by_network)

    def agencies(self, network_id: str, *, discipline: str | None = None,
                 region: str | None = None) -> list[Entry]:
        return self.by_network.get(network_id, [])

    def has_agency(self, network_id: str, node_id: str) -> bool:
        return any(e.node_id == node_id for e in self.agencies(network_id))


def _ctx(node_id: str = "agency-b", network_id: str = "hi") -> tuple[ActivationContext, Recorder]:
    ctx, rec = make_ctx(node_id)
    ctx.network_id = network_id
    ctx.interstate = Foreign()
    return ctx, rec


def _body(agency: str) -> dict[str, object]:
    body = request_in(["agency-b"]).model_dump(mode="json", exclude={"targets", "draft"})
    return {**body, "requesting_agency": agency}


def test_names() -> None:
    assert len(LONG) == PEER_NAME_MAX == 95
    assert is_peer_name(LONG) and is_peer_name("agency-a") and is_peer_name("tx/agency-a")
    for bad in ("tx/", "/agency-a", "tx/agency-a/x", "TX/agency-a", "t/agency-a", "tx/ab",
                LONG + "g"):
        assert not is_peer_name(bad), bad
    assert agency_of("tx/agency-a") == "agency-a" and agency_of("agency-a") == "agency-a"
    assert normalize("hi/agency-b", "hi") == "agency-b"
    assert normalize("tx/agency-a", "hi") == "tx/agency-a"


async def test_request_from_another_network_longest_name_and_reports(db_url: str) -> None:
    ctx, rec = _ctx()
    aid = new_ulid(T0, b"\x07" * 10)
    async with node_db(db_url) as db:
        async with db.write() as conn:
            await apply_inbound(conn, ctx, inbound(MT.ACTIVATION_REQUEST, LONG,
                                                   _body(LONG_NODE), thread=aid))
        async with db.read() as conn:
            out = await views.get(conn, ctx, aid, LONG)
        assert out.requester == LONG and out.side == "in" and out.approval is None
        # The responder of an interstate thread reports its leg to its own hub.
        [status] = rec.of(MT.ACTIVATION_STATUS, "hub-one")
        assert (status.body["requester"], status.body["responder"]) == (LONG, "agency-b")
        async with db.write() as conn:
            await responding.make_offer(conn, ctx, aid, OfferIn.model_validate(OFFER_IN),
                                        requester=LONG)
        [offer] = rec.of(MT.ACTIVATION_OFFER)
        assert offer.to == LONG
        assert [s.body["state"] for s in rec.of(MT.ACTIVATION_STATUS)] == [
            "requested", "offered"]


async def test_refused_inbound_requests_store_nothing(db_url: str) -> None:
    ctx, rec = _ctx()
    async with node_db(db_url) as db:
        before = await snapshot(db)
        cases = [
            # another network's agency naming a different agency as the requester
            (inbound(MT.ACTIVATION_REQUEST, "tx/agency-c", _body("agency-a"),
                     thread=new_ulid(T0, b"\x01" * 10)), "not_a_party"),
            # a home agency cannot arrive dressed as its own network's qualified name
            (inbound(MT.ACTIVATION_REQUEST, "hi/agency-a", _body("agency-a"),
                     thread=new_ulid(T0, b"\x02" * 10)), "bad_target"),
        ]
        for m, code in cases:
            with pytest.raises(ActivationError) as info:
                async with db.write() as conn:
                    await apply_inbound(conn, ctx, m)
            assert str(info.value.code) == code
        assert await snapshot(db) == before and rec.sent == []
    record("security-interstate-activation-sender", area="security",
           case="an agency of another network cannot request in another agency's name, and "
                "a home agency cannot pose as another network",
           how="inbound activation_request handler on SQLite and PostgreSQL with a qualified "
               "sender naming a different requesting_agency, and a sender qualified with "
               "the receiver's own network",
           result="not_a_party and bad_target; no activation, leg, event or message stored")


async def test_early_cancel_from_another_network(db_url: str) -> None:
    ctx, _ = _ctx()
    aid = new_ulid(T0, b"\x09" * 10)
    async with node_db(db_url) as db:
        async with db.write() as conn:
            await apply_inbound(conn, ctx, inbound(
                MT.ACTIVATION_CANCEL, "tx/agency-a", {"reason": "no_longer_needed"},
                thread=aid))
            await apply_inbound(conn, ctx, inbound(
                MT.ACTIVATION_REQUEST, "tx/agency-a", _body("agency-a"), thread=aid))
        async with db.read() as conn:
            out = await views.get(conn, ctx, aid)
        assert out.state is S.CANCELLED and out.legs[0].cancelled_by == "tx/agency-a"


async def test_held_incoming_request_then_approved(db_url: str) -> None:
    ctx, rec = _ctx()
    aid = new_ulid(T0, b"\x0b" * 10)
    async with node_db(db_url) as db:
        async with db.write() as conn:
            await approval.write_policy(conn, ctx, approval.Policy(False, True), None)
            await apply_inbound(conn, ctx, inbound(
                MT.ACTIVATION_REQUEST, "tx/agency-a", _body("agency-a"), thread=aid))
            # a home request is not held
            await apply_inbound(conn, ctx, inbound(
                MT.ACTIVATION_REQUEST, "agency-a", _body("agency-a"),
                thread=new_ulid(T0, b"\x0c" * 10)))
        async with db.read() as conn:
            held = await views.get(conn, ctx, aid)
            approvals = (await conn.execute(select(approval.APPROVALS))).all()
        assert held.approval == "pending" and len(approvals) == 1
        before = await snapshot(db)
        with pytest.raises(ActivationError) as info:
            async with db.write() as conn:
                await responding.make_offer(conn, ctx, aid, OfferIn.model_validate(OFFER_IN),
                                            requester="tx/agency-a")
        assert str(info.value.code) == "approval_required" and await snapshot(db) == before
        assert rec.of(MT.ACTIVATION_OFFER) == []


async def test_outgoing_targets_of_other_networks(db_url: str) -> None:
    ctx, rec = _ctx("agency-a", "tx")
    ctx.interstate = Foreign({"hi": [Entry("agency-b", "B", "north", ("fire",))]})
    async with node_db(db_url) as db:
        before = await snapshot(db)
        for targets in (["hi/agency-x"], ["ca/agency-b"], ["tx/agency-a"]):
            with pytest.raises(ActivationError) as info:
                async with db.write() as conn:
                    await requesting.create_request(conn, ctx, request_in(targets),
                                                    user_id=None)
            assert str(info.value.code) == "bad_target", targets
        assert await snapshot(db) == before
        async with db.write() as conn:
            out = await requesting.create_request(
                conn, ctx, request_in(["hi/agency-b", "tx/agency-b"]), user_id=None)
        # a home agency named qualified is stored bare
        assert sorted(leg.responder for leg in out.legs) == ["agency-b", "hi/agency-b"]
        assert sorted(s.to for s in rec.of(MT.ACTIVATION_REQUEST)) == ["agency-b",
                                                                       "hi/agency-b"]
