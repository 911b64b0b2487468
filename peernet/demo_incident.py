"""The demo's large incident, played through the activation services of real nodes.

A mass-casualty shooting at a river-front festival in River City. The police department
(law enforcement, south region) has dozens of officers involved and asks the network for
peer support (DESIGN section 6):

1. its coordinator drafts the request (ICS-213RR-style: incident, affected personnel by
   discipline, interventions wanted, window, peers needed, reporting location, contact,
   approver, expiry) to the fire department, EMS, the 911 center and corrections, and
   submits it;
2. fire, EMS and 911 offer peers (counts by discipline, never names), corrections declines
   (no capacity: its team is covering a lockdown);
3. the requester accepts the three offers; each accepted agency's peers mobilize, arrive
   on scene, work (they log their defusings on their own nodes, as interagency contacts),
   and demobilize;
4. each visiting team hands its follow-ups to the police department's team
   (`followup_handoff`: a due date and a minimal contact note, sealed end to end and kept
   encrypted at rest by the receiver); the requester closes the activation.

Two smaller activations run alongside so every state of the lifecycle shows up: corrections
asks EMS after a staff assault with a short expiry and nobody answers in time (expired);
the 911 center asks the fire department to support its call-takers, the fire department
offers, and the 911 center calls it off because its own team covered it (cancelled).

Every operation is one write transaction of the acting node (rows, history and outbox rows
together); the demo waits for each step's messages to be acked end to end before the next.
Time moves on the shared `DemoClock`, so hours of activation pass in seconds.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from node.activation import ending, handoff, views
from node.activation import requester as requesting
from node.activation import responder as responding
from node.activation.api import ACTIVATIONS
from node.activation.db import ActivationEvent
from node.activation.models import HandoffIn, OfferIn, RequestIn
from node.activation.runtime import sweep
from node.core.appkeys import DB
from node.core.context import NodeContext
from node.core.schemas import EncounterIn
from node.records.encounters import create_encounter
from peernet.demo_network import DemoNetwork, Server
from peernet.demo_seed import UserSet
from protocol.vocabulary import CancelReason, DeclineReason, Stage

__all__ = ["IncidentResult", "play_incident", "states_reached"]

MIN = 60_000
HOUR = 60 * MIN


@dataclass
class IncidentResult:
    activations: dict[str, str] = field(default_factory=dict)  # label -> activation id
    handoffs: int = 0
    field_encounters: int = 0


async def _settle(net: DemoNetwork, what: str) -> None:
    left = await net.settle()
    if left:
        raise RuntimeError(f"{left} message(s) not acknowledged after {what}")


def _ctx(server: Server) -> Any:
    assert server.app is not None
    return server.app[ACTIVATIONS]


def _db(server: Server) -> Any:
    assert server.app is not None
    return server.app[DB]


def _request(
    net: DemoNetwork, *, incident_ref: str, incident_type: str, event_ago_ms: int,
    affected: dict[str, int], interventions: list[str], peers: int, location: str,
    priority: str, expires_in_ms: int, targets: list[str], draft: bool,
) -> RequestIn:
    now = net.clock.now_ms()
    return RequestIn.model_validate({
        "incident_ref": incident_ref, "incident_type": incident_type,
        "event_ts": now - event_ago_ms, "affected": affected, "interventions": interventions,
        "window_start_ts": now + HOUR, "window_end_ts": now + 72 * HOUR,
        "peers_needed": peers, "reporting_location": location, "priority": priority,
        "contact": {"role": "coordinator", "phone": "+1 555 0100"},
        "approver": "deputy_chief", "expires_ts": now + expires_in_ms,
        "targets": targets, "draft": draft,
    })


async def play_incident(
    net: DemoNetwork, users: dict[str, UserSet], progress: Callable[[str], None]
) -> IncidentResult:
    res = IncidentResult()
    le = net.by_discipline("law_enforcement")
    fire = net.by_discipline("fire")
    ems = net.by_discipline("ems")
    d911 = net.by_discipline("dispatch_911")
    doc = net.by_discipline("corrections")

    # A side request first: corrections asks EMS, short expiry, never answered.
    req = _request(
        net, incident_ref="DOC-S-4471", incident_type="violent_incident",
        event_ago_ms=2 * HOUR, affected={"corrections": 6}, interventions=["defusing"],
        peers=2, location="SOUTH-FAC", priority="routine",
        expires_in_ms=30 * MIN, targets=[ems.node_id], draft=False,
    )
    async with _db(doc).write() as conn:
        out = await requesting.create_request(conn, _ctx(doc), req, user_id=users[doc.node_id]
                                       .coordinator.user_id)
    res.activations["corrections staff assault"] = out.activation_id
    await _settle(net, "the corrections request")
    progress(f"{doc.node_id} asks {ems.node_id} for 2 peers after a staff assault "
             "(expires in 30 min)")

    # The festival shooting: the police department drafts, then submits.
    targets = [fire.node_id, ems.node_id, d911.node_id, doc.node_id]
    req = _request(
        net, incident_ref="RPD-2024-118803", incident_type="mass_casualty",
        event_ago_ms=3 * HOUR, affected={"law_enforcement": 46, "dispatch_911": 9},
        interventions=["defusing", "debriefing", "one_on_one"], peers=8,
        location="PD-TRAINING", priority="urgent",
        expires_in_ms=6 * HOUR, targets=targets, draft=True,
    )
    le_coord = users[le.node_id].coordinator
    async with _db(le).write() as conn:
        out = await requesting.create_request(conn, _ctx(le), req, user_id=le_coord.user_id)
    aid = out.activation_id
    res.activations["festival shooting"] = aid
    progress(f"{le.node_id} drafts a request for 8 peers (mass casualty, 46 officers and "
             "9 call-takers affected)")
    async with _db(le).write() as conn:
        await requesting.submit(conn, _ctx(le), aid)
    await _settle(net, "the request")
    progress(f"{le.node_id} submits it to {', '.join(targets)}: sealed, signed, acked")

    net.clock.advance(12 * MIN)
    offers = {fire: ({"fire": 3}, 45, ["briefing_required"]),
              ems: ({"ems": 3}, 30, []),
              d911: ({"dispatch_911": 2}, 60, ["max_one_shift"])}
    for server, (disc, eta, cond) in offers.items():
        offer = OfferIn.model_validate({"disciplines": disc, "eta_minutes": eta,
                                        "conditions": cond})
        async with _db(server).write() as conn:
            await responding.make_offer(conn, _ctx(server), aid, offer, requester=le.node_id,
                                 user_id=users[server.node_id].coordinator.user_id)
    async with _db(doc).write() as conn:
        await responding.decline_request(conn, _ctx(doc), aid, DeclineReason.NO_CAPACITY,
                                  requester=le.node_id)
    await _settle(net, "the offers")
    progress(f"offers: {fire.node_id} 3 peers (ETA 45 min), {ems.node_id} 3 (30 min), "
             f"{d911.node_id} 2 (60 min); {doc.node_id} declines (no capacity)")

    net.clock.advance(5 * MIN)
    async with _db(le).read() as conn:
        view = await views.get(conn, _ctx(le), aid)
    for leg in view.legs:
        if leg.offer is not None:
            async with _db(le).write() as conn:
                await requesting.accept_offer(conn, _ctx(le), aid, leg.offer.msg_id)
    await _settle(net, "the acceptances")
    progress(f"{le.node_id} accepts the three offers (8 peers)")

    # Meanwhile the 911 center asks the fire department for its own call-takers, then
    # calls it off: its own team covered the shift.
    req = _request(
        net, incident_ref="TC-2024-0932", incident_type="mass_casualty",
        event_ago_ms=3 * HOUR, affected={"dispatch_911": 9}, interventions=["defusing"],
        peers=2, location="METRO-911", priority="urgent",
        expires_in_ms=4 * HOUR, targets=[fire.node_id], draft=False,
    )
    async with _db(d911).write() as conn:
        out = await requesting.create_request(conn, _ctx(d911), req,
                                       user_id=users[d911.node_id].coordinator.user_id)
    aid_911 = out.activation_id
    res.activations["911 call-takers"] = aid_911
    await _settle(net, "the 911 request")
    async with _db(fire).write() as conn:
        await responding.make_offer(conn, _ctx(fire), aid_911,
                             OfferIn.model_validate({"disciplines": {"fire": 1},
                                                     "eta_minutes": 90}),
                             requester=d911.node_id)
    await _settle(net, "the fire offer to 911")
    async with _db(d911).write() as conn:
        await ending.cancel(conn, _ctx(d911), aid_911, CancelReason.RESOLVED_LOCALLY)
    await _settle(net, "the 911 cancellation")
    progress(f"{d911.node_id} asks {fire.node_id} for its call-takers, gets an offer, "
             "cancels (resolved locally)")

    responders = list(offers)
    for stage, gap, words in ((Stage.MOBILIZED, 10 * MIN, "mobilized"),
                              (Stage.ON_SCENE, 40 * MIN, "on scene"),
                              (Stage.DEMOBILIZED, 7 * HOUR, "demobilized")):
        net.clock.advance(gap)
        if stage is Stage.DEMOBILIZED:
            res.field_encounters = await _field_work(net, users, responders, le)
            progress(f"visiting peers log {res.field_encounters} defusings and one-on-ones "
                     "on their own nodes (interagency, recipients pseudonymized at home)")
        for server in responders:
            async with _db(server).write() as conn:
                await responding.send_update(conn, _ctx(server), aid, stage, requester=le.node_id)
        await _settle(net, f"the {words} updates")
        progress(f"fire, EMS and 911 peers {words}")

    # The corrections request expired long ago: both sides' sweeps record it.
    for server in (doc, ems):
        assert server.app is not None
        await sweep(server.app)
    await _settle(net, "the expiry sweep")
    progress(f"{doc.node_id}'s request to {ems.node_id} expired unanswered")

    due = (datetime.datetime.fromtimestamp(net.clock.now_ms() / 1000, tz=datetime.UTC).date()
           + datetime.timedelta(days=2)).isoformat()
    notes = ["Call back after second shift back; desk phone preferred",
             "Check in before the debriefing; asked for a peer from patrol",
             "Family member asked about resources; follow up by end of week"]
    for i, server in enumerate(responders):
        for j in range(2):
            h = HandoffIn.model_validate({"to": le.node_id, "due": due,
                                          "discipline": "law_enforcement",
                                          "contact_note": notes[(i + j) % len(notes)]})
            async with _db(server).write() as conn:
                await handoff.send_handoff(conn, _ctx(server), aid, h, requester=le.node_id)
            res.handoffs += 1
    await _settle(net, "the hand-offs")
    progress(f"{res.handoffs} follow-ups handed off to {le.node_id} (notes sealed end to end, "
             "encrypted at rest)")

    net.clock.advance(30 * MIN)
    async with _db(le).write() as conn:
        await ending.close(conn, _ctx(le), aid)
    for server in responders:
        async with _db(server).write() as conn:
            await ending.close(conn, _ctx(server), aid, requester=le.node_id)
    await _settle(net, "the close")
    progress(f"{le.node_id} closes the activation; the hub's log has every step")
    return res


async def _field_work(
    net: DemoNetwork, users: dict[str, UserSet], responders: list[Server], le: Server
) -> int:
    """The visiting peers' contacts, logged on their own nodes through the services."""
    import random

    rng = random.Random(4242)
    n = 0
    for server in responders:
        assert server.app is not None
        ctx = NodeContext.of(server.app)
        for k in range(rng.randint(5, 9)):
            peer = users[server.node_id].peers[k % len(users[server.node_id].peers)]
            occurred = datetime.datetime.fromtimestamp(
                (net.clock.now_ms() - rng.randint(10, 300) * MIN) / 1000, tz=datetime.UTC)
            data = EncounterIn.model_validate({
                "occurred_at": occurred, "duration_bucket": rng.choice(["15-30m", "30-60m"]),
                "incident_ref": "RPD-2024-118803", "activation_type": "interagency",
                "intervention": rng.choice(["defusing", "defusing", "one_on_one"]),
                "recipient_discipline": "law_enforcement", "recipient_category": "other_agency",
                "recipient": f"RPD-{rng.randint(1000, 9999)}",
                "topics": {"critical_incident"}, "notice_given": True,
            }, strict=False)
            await create_encounter(ctx, peer, data)
            n += 1
    del le
    return n


async def states_reached(net: DemoNetwork) -> dict[str, list[str]]:
    """Per node, the activation states its local history recorded (leg or activation)."""
    table = ActivationEvent.__table__
    out: dict[str, list[str]] = {}
    for s in net.nodes:
        async with _db(s).read() as conn:
            rows = (await conn.execute(select(table.c.state).distinct())).all()
        out[s.node_id] = sorted(r[0] for r in rows)
    return out
