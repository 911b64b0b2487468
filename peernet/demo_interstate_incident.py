"""The interstate incident of `peernet demo --interstate`, through the real activation
services of nodes in two networks.

A wind-driven wildfire burns through a town on Maui. Maui's own peer teams are among the
affected, so the Maui Police Department's coordinator (network `hi`) looks across the
compact:

1. browses California's public directory on her own node (agency names, disciplines,
   regions: the roster of network `ca` her node verified against California's board keys
   in the compact);
2. the Los Angeles County Fire Department's policy requires its admin's approval of
   interstate requests (`node.activation.approval`, `require_in`): its offer is refused
   (`approval_required`) until the admin approves;
3. requests teams from three California agencies, addressed by qualified name
   (`ca/la-fire`, `ca/sac-ems`, `ca/sd-911`): each envelope is sealed end to end to the
   agency and relayed hub to hub (`hi-hub` -> `ca-hub`, per-hop signatures);
4. the California agencies offer peers (counts by discipline, never names); the Maui
   coordinator accepts; the teams mobilize, arrive and demobilize;
5. a California team hands a follow-up to the Maui Police Department across the line
   (`followup_handoff`, sealed end to end), and Maui closes the activation;
6. both hubs log the thread's metadata (who asked whom, when, state, counts).

Each step runs the same service calls as the one-state demo (`peernet.demo_incident`).
When a step is refused because a piece of the interstate layer is not in the running code
yet, the demo stops the incident there and records which step and why (`missing`), so the
rest of the demo (compact, rosters, national view) still runs and says what did not.
"""

from __future__ import annotations

import datetime
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pydantic import ValidationError

from node.activation import approval, ending, handoff, views
from node.activation import requester as requesting
from node.activation import responder as responding
from node.activation.api import ACTIVATIONS
from node.activation.errors import ActivationError
from node.activation.interstate_api import approve_activation
from node.activation.models import HandoffIn, OfferIn, RequestIn
from node.core.appkeys import DB
from peernet.demo_interstate_network import StateNet, settle_all
from peernet.demo_network import OPERATOR_TOKEN, Server
from peernet.demo_seed import UserSet
from protocol.vocabulary import Stage

__all__ = ["InterstateIncident", "play_interstate_incident"]

MIN = 60_000
HOUR = 60 * MIN
# Modules the other halves of the interstate layer add (issue 19 items 3 and 4).
PIECES = {"hub-to-hub relay": "hub.interstate",
          "interstate activation": "node.activation.interstate"}


@dataclass
class InterstateIncident:
    activation_id: str | None = None
    requester: str = ""
    targets: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    offers: int = 0
    handoffs: int = 0
    hub_log: dict[str, int] = field(default_factory=dict)
    directory: list[dict[str, Any]] = field(default_factory=list)
    approval: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"activation_id": self.activation_id, "requester": self.requester,
                "targets": self.targets, "steps": self.steps, "offers": self.offers,
                "handoffs": self.handoffs, "hub_log_entries": self.hub_log,
                "directory_at_requester": self.directory, "approval": self.approval,
                "completed": not self.missing and "closed" in self.steps}


class _Stop(Exception):
    pass


def _ctx(server: Server) -> Any:
    assert server.app is not None
    return server.app[ACTIVATIONS]


def _db(server: Server) -> Any:
    assert server.app is not None
    return server.app[DB]


async def _hub_log(st: StateNet) -> int:
    headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(f"{st.net.hub.url}/api/v1/activation-log",
                            params={"limit": "1000"}) as r:
            r.raise_for_status()
            entries = (await r.json())["entries"]
    return sum(1 for e in entries if "/" in str(e.get("requester", "")) + str(
        e.get("responder", "")) or e.get("interstate"))


async def play_interstate_incident(
    a: StateNet, b: StateNet, users: dict[str, dict[str, UserSet]],
    progress: Callable[[str], None],
) -> InterstateIncident:
    res = InterstateIncident()
    for what, module in PIECES.items():
        if importlib.util.find_spec(module) is None:
            res.missing.append(f"{what}: module {module} is not in the tree")
    le = next(n for n in a.net.nodes if n.discipline == "law_enforcement")
    responders = list(b.net.nodes)
    res.requester = f"{a.network_id}/{le.node_id}"
    res.targets = [f"{b.network_id}/{n.node_id}" for n in responders]

    async def step(name: str, settle: bool = True) -> None:
        res.steps.append(name)
        if settle:
            left = await settle_all([a, b])
            if left:
                res.steps.pop()
                raise _Stop(f"{name}: {left} message(s) not acknowledged end to end")

    approver = responders[0]
    try:
        res.directory = _browse(le, b.network_id)
        progress(f"the {res.requester} coordinator browses {b.network_id}'s directory on "
                 f"its own node (the roster its node verified through the compact): "
                 + "; ".join(f"{d['node_id']} {d['name']} ({', '.join(d['disciplines'])}, "
                             f"{d['region']})" for d in res.directory))
        admin = users[b.network_id][approver.node_id].admin
        async with _db(approver).write() as conn:
            await approval.write_policy(conn, _ctx(approver),
                                        approval.Policy(require_in=True), admin.user_id)
        res.approval = {"agency": f"{b.network_id}/{approver.node_id}",
                        "policy": "require_in"}
        progress(f"{b.network_id}/{approver.node_id}'s policy: interstate requests need its "
                 "admin's approval before it offers")

        now = a.net.clock.now_ms()
        req = RequestIn.model_validate({
            "incident_ref": "MPD-2026-0808", "incident_type": "disaster",
            "event_ts": now - 20 * HOUR, "affected": {"law_enforcement": 38, "fire": 24},
            "interventions": ["defusing", "debriefing", "one_on_one"],
            "window_start_ts": now + 12 * HOUR, "window_end_ts": now + 10 * 24 * HOUR,
            "peers_needed": 8, "reporting_location": "KAHULUI-EOC", "priority": "urgent",
            "contact": {"role": "coordinator", "phone": "+1 555 0100"},
            "approver": "chief", "expires_ts": now + 12 * HOUR,
            "targets": res.targets, "draft": False,
        })
        try:
            async with _db(le).write() as conn:
                out = await requesting.create_request(
                    conn, _ctx(le), req,
                    user_id=users[a.network_id][le.node_id].coordinator.user_id)
        except Exception as exc:  # noqa: BLE001 - reported: the piece that refused
            raise _Stop(f"request to {', '.join(res.targets)}: {_why(exc)}") from None
        aid = out.activation_id
        res.activation_id = aid
        await step("requested")
        progress(f"{res.requester} requests 8 peers from {', '.join(res.targets)}: sealed "
                 f"to each agency, relayed {a.hub_id} -> {b.hub_id}, acked end to end")

        a.net.clock.advance(40 * MIN)
        await _approve(approver, aid, res, admin)
        progress(f"{res.approval['agency']}: an offer before approval is refused "
                 f"({res.approval['before']}); its admin approves the request")
        teams = {responders[0]: {"fire": 3}, responders[1]: {"ems": 3},
                 responders[2]: {"dispatch_911": 2}}
        for server, disc in teams.items():
            offer = OfferIn.model_validate({"disciplines": disc, "eta_minutes": 18 * 60,
                                            "conditions": ["briefing_required"]})
            try:
                async with _db(server).write() as conn:
                    await responding.make_offer(
                        conn, _ctx(server), aid, offer, requester=res.requester,
                        user_id=users[b.network_id][server.node_id].coordinator.user_id)
            except Exception as exc:  # noqa: BLE001
                raise _Stop(f"offer from {b.network_id}/{server.node_id}: {_why(exc)}") from None
            res.offers += 1
        await step("offered")
        progress(f"{', '.join(res.targets)} offer 3 + 3 + 2 peers (ETA 18 h, by air)")

        async with _db(le).read() as conn:
            view = await views.get(conn, _ctx(le), aid)
        for leg in view.legs:
            if leg.offer is not None:
                async with _db(le).write() as conn:
                    await requesting.accept_offer(conn, _ctx(le), aid, leg.offer.msg_id)
        await step("accepted")
        progress(f"{res.requester} accepts the three offers across the line")

        for stage, gap in ((Stage.MOBILIZED, 2 * HOUR), (Stage.ON_SCENE, 18 * HOUR),
                           (Stage.DEMOBILIZED, 40 * HOUR)):
            a.net.clock.advance(gap)
            for server in responders:
                async with _db(server).write() as conn:
                    await responding.send_update(conn, _ctx(server), aid, stage,
                                                 requester=res.requester)
            await step(stage.value)
        progress("California teams mobilized, on scene on Maui, demobilized")

        due = (datetime.datetime.fromtimestamp(a.net.clock.now_ms() / 1000, tz=datetime.UTC)
               .date() + datetime.timedelta(days=3)).isoformat()
        h = HandoffIn.model_validate({"to": res.requester, "due": due,
                                      "discipline": "law_enforcement",
                                      "contact_note": "Check in after the first week back on "
                                                      "patrol; phone preferred"})
        async with _db(responders[0]).write() as conn:
            await handoff.send_handoff(conn, _ctx(responders[0]), aid, h,
                                       requester=res.requester)
        res.handoffs += 1
        await step("handoff")
        progress(f"{res.targets[0]} hands a follow-up to {res.requester} across the line "
                 "(note sealed end to end)")

        a.net.clock.advance(HOUR)
        async with _db(le).write() as conn:
            await ending.close(conn, _ctx(le), aid)
        for server in responders:
            async with _db(server).write() as conn:
                await ending.close(conn, _ctx(server), aid, requester=res.requester)
        await step("closed")
    except _Stop as stop:
        res.missing.append(str(stop))
        progress(f"interstate incident stopped: {stop}")
    except Exception as exc:  # noqa: BLE001 - a later step refused: say which
        res.missing.append(f"after {res.steps[-1] if res.steps else 'start'}: {_why(exc)}")
        progress(f"interstate incident stopped: {res.missing[-1]}")
    for st in (a, b):
        res.hub_log[st.hub_id] = await _hub_log(st)
    if not res.missing:
        progress(f"activation closed; {a.hub_id} logged {res.hub_log[a.hub_id]} and "
                 f"{b.hub_id} {res.hub_log[b.hub_id]} entries of the thread (metadata only)")
    return res


def _browse(requester: Server, network_id: str) -> list[dict[str, Any]]:
    """Agencies of `network_id` as the requester's node lists them to its coordinator
    (`GET /api/v1/activations/interstate/directory`: its own verified copy of that
    network's roster)."""
    directory = _ctx(requester).interstate
    if directory is None:
        raise _Stop("the requester node has no interstate directory (no compact held)")
    return [{"node_id": f"{network_id}/{n.node_id}", "name": n.name, "region": n.region,
             "disciplines": [str(getattr(d, "value", d)) for d in n.disciplines]}
            for n in directory.agencies(network_id)]


async def _approve(server: Server, aid: str, res: InterstateIncident, admin: Any) -> None:
    """Under `require_in` an offer waits for approval: try one (refused), then approve."""
    offer = OfferIn.model_validate({"disciplines": {"fire": 1}, "eta_minutes": 60})
    try:
        async with _db(server).write() as conn:
            await responding.make_offer(conn, _ctx(server), aid, offer,
                                        requester=res.requester)
        res.approval["before"] = "accepted (no approval was asked)"
    except ActivationError as exc:
        res.approval["before"] = exc.code.value
    async with _db(server).write() as conn:
        out = await approve_activation(conn, _ctx(server), aid, res.requester, admin)
    res.approval["approved"] = True
    res.approval["state_after"] = out.state.value


def _why(exc: BaseException) -> str:
    """One line: the exception's type, stable code and message (no record content)."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        return f"refused by the activation model at {loc}: {first['msg']}"
    code = getattr(exc, "code", None)
    code = getattr(code, "value", code)
    text = getattr(exc, "message", None) or getattr(exc, "detail", None) or str(exc)
    return f"{type(exc).__name__}" + (f" [{code}]" if code else "") + f": {text}"
