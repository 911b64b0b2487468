"""A bounded, seeded stream of real API traffic against a `Cluster`, tolerant of dead servers.

`Traffic` talks to the nodes only through their JSON API with coordinator tokens, exactly as
a script or the web pages would. Every call either gets an answer (recorded by status) or
fails to connect / times out (recorded as *unknown*: the server may have committed before it
died). What it keeps:

- encounters: the ids answered 201 per node, and the number of writes with no answer;
- activations: every activation the requester (`agency-1`) holds (adopted from its own list,
  so one created just before a crash is driven too); each tick moves every leg one step on
  whichever side is up: offer, accept the first offer and decline the others, mobilize,
  on scene, demobilize, hand a follow-up back, close; every fourth activation is cancelled
  by the requester after its offers arrive;
- hand-offs answered 201.

Refusals that only mean "not yet" (409 while the other side has not caught up, 404 before a
request arrived) are retried on a later tick. Any 5xx is counted: the checks require none.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from tests.chaos.cluster import Cluster, Server

REQUESTER = "agency-1"
TERMINAL = {"declined", "expired", "closed", "cancelled"}
ENGAGED = {"accepted", "mobilized", "on_scene", "demobilized", "closed"}
HOUR = 3_600_000
CONTACT_NOTE = "Call back about shift change at station 3"


@dataclass
class Traffic:
    cluster: Cluster
    rng: random.Random
    http: aiohttp.ClientSession
    encounters: dict[str, list[str]] = field(default_factory=dict)
    encounter_unknown: Counter[str] = field(default_factory=Counter)
    activations: dict[str, int] = field(default_factory=dict)  # aid -> ordinal
    created_ok: int = 0
    created_unknown: int = 0
    handoffs_ok: set[str] = field(default_factory=set)  # activation ids with a 201 hand-off
    handoffs_unknown: int = 0
    handoff_tried: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    unanswered: int = 0
    calls: int = 0
    latencies: list[float] = field(default_factory=list)
    create_refused: Counter[str] = field(default_factory=Counter)
    typed: set[str] = field(default_factory=set)  # typed pseudonym inputs (must never leak)

    # --- plumbing -------------------------------------------------------------------------

    async def call(self, node: Server, method: str, path: str,
                   body: Any = None) -> tuple[int, Any] | None:
        """One API call; None when the server did not answer (down, killed mid-request)."""
        if not node.alive:
            return None
        self.calls += 1
        t0 = time.monotonic()
        try:
            async with self.http.request(
                method, node.url + path, json=body,
                headers={"Authorization": f"Bearer {node.token}"},
                timeout=aiohttp.ClientTimeout(total=20),
            ) as r:
                data = await r.json(content_type=None)
                self.statuses[r.status] += 1
                self.latencies.append(time.monotonic() - t0)
                if r.status >= 500:
                    self.server_errors.append(f"{node.name} {method} {path}: {r.status} {data}")
                return r.status, data
        except (aiohttp.ClientError, TimeoutError, ValueError):
            self.unanswered += 1
            return None

    # --- encounters -----------------------------------------------------------------------

    def _typed(self, value: str) -> str:
        self.typed.add(value)
        return value

    def encounter_body(self) -> dict[str, Any]:
        r = self.rng
        return {
            "occurred_at": datetime.now(UTC).isoformat(),
            "duration_bucket": r.choice(["<15m", "15-30m", "30-60m", "1-2h"]),
            "activation_type": r.choice(["self", "supervisor", "post_critical_incident"]),
            "intervention": r.choice(["one_on_one", "defusing", "follow_up"]),
            "recipient_discipline": r.choice(["fire", "ems", "law_enforcement"]),
            "recipient_category": "own_agency",
            "recipient": self._typed(f"EMP-{r.randrange(10_000, 99_999)}"),
            "topics": [r.choice(["work_stress", "critical_incident", "family"])],
            "notice_given": True,
        }

    async def write_encounter(self, node: Server) -> None:
        if not node.alive:
            return
        res = await self.call(node, "POST", "/api/v1/encounters", self.encounter_body())
        if res is None:
            self.encounter_unknown[node.name] += 1
        elif res[0] == 201:
            self.encounters.setdefault(node.name, []).append(str(res[1]["id"]))

    # --- activations ----------------------------------------------------------------------

    def request_body(self, targets: list[str]) -> dict[str, Any]:
        now = int(time.time() * 1000)
        return {
            "incident_ref": f"INC-{self.rng.randrange(1000, 9999)}",
            "incident_type": "line_of_duty_death",
            "event_ts": now - HOUR,
            "affected": {"fire": 20, "ems": 5},
            "interventions": ["defusing", "one_on_one"],
            "window_start_ts": now,
            "window_end_ts": now + 6 * HOUR,
            "peers_needed": 4,
            "reporting_location": "STA-3",
            "priority": "urgent",
            "contact": {"role": "coordinator", "phone": "+1 555 0100"},
            "approver": "deputy_chief",
            "expires_ts": now + 2 * HOUR,
            "targets": targets,
        }

    async def create_activation(self, targets: list[str]) -> None:
        node = self.cluster.node(REQUESTER)
        if not node.alive:
            return
        res = await self.call(node, "POST", "/api/v1/activations", self.request_body(targets))
        if res is None:
            self.created_unknown += 1
        elif res[0] == 201:
            self.created_ok += 1
            self.activations.setdefault(res[1]["activation_id"], len(self.activations))
        else:
            self.create_refused[str(res[1].get("error", {}).get("code"))] += 1

    async def adopt(self) -> None:
        """Drive every activation the requester holds (one made just before a crash too)."""
        res = await self.call(self.cluster.node(REQUESTER), "GET",
                              "/api/v1/activations?side=out&limit=1000")
        if res is not None and res[0] == 200:
            for item in res[1]["items"]:
                self.activations.setdefault(item["activation_id"], len(self.activations))

    async def advance(self, aid: str, ordinal: int) -> None:
        """Move this activation one step on every side that is up."""
        req = self.cluster.node(REQUESTER)
        mine = await self.call(req, "GET", f"/api/v1/activations/{aid}")
        legs: dict[str, dict[str, Any]] = {}
        if mine is not None and mine[0] == 200:
            legs = {leg["responder"]: leg for leg in mine[1]["legs"]}
            own = mine[1]["state"]
            if own not in TERMINAL:
                await self._requester_step(req, aid, ordinal, legs)
        for responder in [n for n in self.cluster.nodes if n.name != REQUESTER]:
            await self._responder_step(responder, aid)

    async def _requester_step(self, req: Server, aid: str, ordinal: int,
                              legs: dict[str, dict[str, Any]]) -> None:
        states = {r: leg["state"] for r, leg in legs.items()}
        cancel_this = ordinal % 4 == 3
        if cancel_this and any(s == "offered" for s in states.values()):
            await self.call(req, "POST", f"/api/v1/activations/{aid}/cancel",
                            {"reason": "resolved_locally"})
            return
        accepted = any(s in ENGAGED for s in states.values())
        for responder, leg in sorted(legs.items()):
            if leg["state"] != "offered" or leg["offer"] is None:
                continue
            if not accepted:
                await self.call(req, "POST", f"/api/v1/activations/{aid}/accept",
                                 {"offer_msg_id": leg["offer"]["msg_id"]})
                accepted = True
            else:
                await self.call(req, "POST", f"/api/v1/activations/{aid}/decline",
                                {"reason": "no_capacity", "responder": responder})
        if states and all(s in TERMINAL or s == "demobilized" for s in states.values()) and \
                any(s == "demobilized" for s in states.values()):
            await self.call(req, "POST", f"/api/v1/activations/{aid}/close")

    async def _responder_step(self, node: Server, aid: str) -> None:
        res = await self.call(node, "GET", f"/api/v1/activations/{aid}?requester={REQUESTER}")
        if res is None or res[0] != 200:
            return
        state = _leg_state(res[1])
        path = f"/api/v1/activations/{aid}"
        q = f"?requester={REQUESTER}"
        if state == "requested":
            disc = self.rng.choice(["fire", "ems", "law_enforcement"])
            await self.call(node, "POST", f"{path}/offer{q}",
                            {"disciplines": {disc: self.rng.randint(1, 3)},
                             "eta_minutes": 30, "conditions": []})
        elif state in ("accepted", "mobilized", "on_scene"):
            stage = {"accepted": "mobilized", "mobilized": "on_scene",
                     "on_scene": "demobilized"}[state]
            await self.call(node, "POST", f"{path}/update{q}", {"stage": stage})
        elif state == "demobilized":
            key = f"{aid}:{node.name}"
            if key not in self.handoff_tried:
                out = await self.call(node, "POST", f"{path}/handoffs{q}", {
                    "to": REQUESTER, "due": "2027-01-15", "discipline": "fire",
                    "contact_note": CONTACT_NOTE})
                if out is None:
                    self.handoffs_unknown += 1
                    return  # try again next tick (a lost answer may have been committed)
                if out[0] == 201:
                    self.handoffs_ok.add(key)
                    self.handoff_tried.add(key)
                return
            await self.call(node, "POST", f"{path}/close{q}")

    async def tick(self, *, create: bool, encounters: int) -> None:
        for node in self.cluster.nodes:
            for _ in range(encounters):
                await self.write_encounter(node)
        if create:
            await self.create_activation([n.name for n in self.cluster.nodes
                                          if n.name != REQUESTER])
        await self.adopt()
        for aid, ordinal in list(self.activations.items()):
            await self.advance(aid, ordinal)

    async def states(self) -> dict[str, dict[str, str | None]]:
        """Per activation: the requester's own state and every leg on both sides."""
        out: dict[str, dict[str, str | None]] = {}
        req = self.cluster.node(REQUESTER)
        for aid in self.activations:
            row: dict[str, str | None] = {}
            res = await self.call(req, "GET", f"/api/v1/activations/{aid}")
            row["requester"] = res[1]["state"] if res and res[0] == 200 else None
            legs = {leg["responder"]: leg["state"] for leg in res[1]["legs"]} \
                if res and res[0] == 200 else {}
            for node in self.cluster.nodes:
                if node.name == REQUESTER:
                    continue
                row[f"leg:{node.name}"] = legs.get(node.name)
                r = await self.call(node, "GET", f"/api/v1/activations/{aid}?requester="
                                    f"{REQUESTER}")
                row[node.name] = _leg_state(r[1]) if r and r[0] == 200 else None
            out[aid] = row
        return out


def _leg_state(view: dict[str, Any]) -> str:
    """A responder's copy of its leg (its one leg; the activation's state without one)."""
    legs = view.get("legs") or []
    return str(legs[0]["state"] if legs else view["state"])


def settled(states: dict[str, dict[str, str | None]]) -> bool:
    """Every activation over on the requester, and each leg in the same terminal state on
    both sides (a leg's two copies agree)."""
    for row in states.values():
        if row["requester"] not in TERMINAL:
            return False
        for key, value in row.items():
            if key.startswith("leg:"):
                other = row.get(key[4:])
                if value not in TERMINAL or other != value:
                    return False
    return True


async def wait_until(pred: Any, timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if await pred():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
