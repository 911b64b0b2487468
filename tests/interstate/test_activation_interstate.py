"""Interstate activation through real servers (two boards, two hubs, nodes on both sides;
`tests.interstate.relay_networks`) on SQLite and PostgreSQL: browsing the other network's
directory, the whole lifecycle across the line with qualified names (request, offer,
accept, updates, sealed hand-off, completion, close), both hubs' logs, approval required on
each side, wrong roles and bad input refused with stable codes and nothing stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from node.activation.approval_db import ActivationApproval
from node.activation.db import Activation, ActivationLeg, Handoff
from node.core.vocabulary import Role
from tests.activations.netutil import add_user
from tests.federation.network import NodeHandle
from tests.interstate.relay_networks import OPERATOR_TOKEN, Pair, make_pair

HOUR = 3_600_000


@pytest.fixture(params=["sqlite", "postgres"])
async def pair(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    pg = request.getfixturevalue("pg_admin_url") if request.param == "postgres" else None
    p = await make_pair(tmp_path, db=request.param, pg_admin_url=pg)
    try:
        yield p
    finally:
        await p.close()


class Api:
    """A user's bearer token on one node, and JSON calls to its API."""

    def __init__(self, http: aiohttp.ClientSession, base: str, token: str) -> None:
        self.http, self.base, self.token = http, base, token

    async def call(self, method: str, path: str, body: Any = None,
                   **params: str) -> tuple[int, Any]:
        async with self.http.request(
            method, self.base + path, json=body, params=params or None,
            headers={"Authorization": f"Bearer {self.token}"},
        ) as r:
            return r.status, await r.json()


async def user(http: aiohttp.ClientSession, node: NodeHandle, name: str,
               role: Role = Role.COORDINATOR) -> tuple[str, Api]:
    uid, token = await add_user(node, name, role)
    return str(uid), Api(http, node.url, token)


def request_body(now: int, targets: list[str]) -> dict[str, Any]:
    return {
        "incident_ref": "INC-2026-0042", "incident_type": "line_of_duty_death",
        "event_ts": now - 2 * HOUR, "affected": {"fire": 40, "ems": 12},
        "interventions": ["defusing", "one_on_one"], "window_start_ts": now,
        "window_end_ts": now + 6 * HOUR, "peers_needed": 6, "reporting_location": "STA-7",
        "priority": "urgent", "contact": {"role": "coordinator", "phone": "+1 555 0100"},
        "approver": "deputy_chief", "expires_ts": now + 4 * HOUR, "targets": targets,
    }


async def count(node: NodeHandle, model: Any) -> int:
    async with node.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(model))).scalar_one())


async def hub_log(http: aiohttp.ClientSession, pair: Pair, nid: str, aid: str
                  ) -> list[dict[str, Any]]:
    async with http.get(pair.hub(nid).url + "/api/v1/activation-log",
                        params={"activation_id": aid},
                        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}) as r:
        assert r.status == 200
        return list((await r.json())["entries"])


async def test_directory_and_whole_lifecycle_across_the_line(pair: Pair) -> None:
    a, b = pair.node("tx", "agency-a"), pair.node("hi", "agency-b")
    async with aiohttp.ClientSession() as http:
        _, ca = await user(http, a, "coord-a")
        _, cb = await user(http, b, "coord-b")

        # The other network's public directory: at the own hub (from the verified roster it
        # holds) and on the node (verified there against the compact).
        async with http.get(pair.hub("tx").url + "/api/v1/directory",
                            params={"network": "hi"}) as r:
            assert r.status == 200
            listing = await r.json()
        assert listing["network_id"] == "hi"
        assert [(n["qualified"], n["region"], n["disciplines"]) for n in listing["nodes"]] == [
            ("hi/agency-b", "north", ["fire"])]
        st, d = await ca.call("GET", "/api/v1/activations/interstate/directory", network="hi")
        assert st == 200, d
        assert [i["node_id"] for i in d["items"]] == ["hi/agency-b"]

        # Request across the line.
        now = pair.clock.now_ms()
        st, out = await ca.call("POST", "/api/v1/activations",
                                request_body(now, ["hi/agency-b"]))
        assert st == 201, out
        aid = out["activation_id"]
        assert out["state"] == "requested" and out["approval"] is None
        assert [leg["responder"] for leg in out["legs"]] == ["hi/agency-b"]
        await pair.settle()

        st, got = await cb.call("GET", f"/api/v1/activations/{aid}")
        assert st == 200, got
        assert got["requester"] == "tx/agency-a" and got["side"] == "in"
        assert got["request"]["requesting_agency"] == "agency-a"

        st, got = await cb.call("POST", f"/api/v1/activations/{aid}/offer",
                                {"disciplines": {"fire": 3}, "eta_minutes": 90},
                                requester="tx/agency-a")
        assert st == 200, got
        await pair.settle()
        st, got = await ca.call("GET", f"/api/v1/activations/{aid}")
        [leg] = got["legs"]
        assert leg["state"] == "offered" and leg["offer"]["peers"] == 3

        st, acc = await ca.call("POST", f"/api/v1/activations/{aid}/accept",
                                {"offer_msg_id": leg["offer"]["msg_id"]})
        assert st == 200 and acc["responder"] == "hi/agency-b", acc
        await pair.settle()
        for stage in ("mobilized", "on_scene", "demobilized"):
            st, got = await cb.call("POST", f"/api/v1/activations/{aid}/update",
                                    {"stage": stage}, requester="tx/agency-a")
            assert st == 200, got
            await pair.settle()
        st, got = await ca.call("GET", f"/api/v1/activations/{aid}")
        assert got["legs"][0]["state"] == "demobilized"

        # Hand-off with a sealed note, across the line, then completed (note purged).
        st, h = await cb.call("POST", f"/api/v1/activations/{aid}/handoffs",
                              {"to": "tx/agency-a", "due": "2026-06-22", "discipline": "fire",
                               "contact_note": "Call back re shift change"},
                              requester="tx/agency-a")
        assert st == 201, h
        await pair.settle()
        st, inbox = await ca.call("GET", "/api/v1/activations/handoffs")
        [item] = [i for i in inbox["items"] if i["direction"] == "in"]
        assert item["peer"] == "hi/agency-b"
        assert item["contact_note"] == "Call back re shift change"
        async with a.db.read() as conn:
            [ct] = (await conn.execute(select(Handoff.note_ct))).scalars().all()
        assert ct is not None and b"shift" not in ct  # only ciphertext at rest
        st, done = await ca.call("POST", f"/api/v1/activations/handoffs/{item['id']}/complete")
        assert st == 200 and done["status"] == "done", done
        st, closed = await ca.call("POST", f"/api/v1/activations/{aid}/close")
        assert st == 200 and closed["state"] == "closed", closed
        st, got = await cb.call("POST", f"/api/v1/activations/{aid}/close",
                                requester="tx/agency-a")  # each side closes its own part
        assert st == 200 and got["legs"][0]["state"] == "closed", got
        await pair.settle()

        # Both hubs log the thread, naming both parties qualified.
        for nid in ("tx", "hi"):
            entries = await hub_log(http, pair, nid, aid)
            assert entries, nid
            assert {e["requester"] for e in entries} == {"tx/agency-a"}, nid
            assert {e["responder"] for e in entries} - {None} == {"hi/agency-b"}, nid
        tx_states = {e["state"] for e in await hub_log(http, pair, "tx", aid)}
        hi_states = {e["state"] for e in await hub_log(http, pair, "hi", aid)}
        assert {"requested", "offered", "accepted", "closed"} <= tx_states
        assert {"requested", "offered", "mobilized", "demobilized", "closed"} <= hi_states


async def test_approval_required_on_each_side(pair: Pair) -> None:
    a, b = pair.node("tx", "agency-a"), pair.node("hi", "agency-b")
    async with aiohttp.ClientSession() as http:
        _, ca = await user(http, a, "coord-a")
        _, admin_a = await user(http, a, "admin-a", Role.ADMIN)
        _, auditor_a = await user(http, a, "auditor-a", Role.AUDITOR)
        _, cb = await user(http, b, "coord-b")
        approver_b_id, approver_b = await user(http, b, "coord-b2")
        _, admin_b = await user(http, b, "admin-b", Role.ADMIN)

        st, pol = await admin_a.call("PUT", "/api/v1/activations/interstate/policy",
                                     {"require_approval_out": True,
                                      "require_approval_in": False})
        assert st == 200 and pol["require_approval_out"] is True, pol
        st, pol = await admin_b.call("PUT", "/api/v1/activations/interstate/policy",
                                     {"require_approval_out": False,
                                      "require_approval_in": True,
                                      "approvers": [approver_b_id]})
        assert st == 200 and pol["approvers"] == [approver_b_id], pol
        # only admins set the policy
        st, err = await ca.call("PUT", "/api/v1/activations/interstate/policy",
                                {"require_approval_out": False, "require_approval_in": False})
        assert (st, err["error"]["code"]) == (403, "forbidden")

        # Outgoing: held as a draft, not sent until approved.
        now = pair.clock.now_ms()
        st, out = await ca.call("POST", "/api/v1/activations",
                                request_body(now, ["hi/agency-b"]))
        assert st == 201, out
        aid = out["activation_id"]
        assert (out["state"], out["approval"]) == ("draft", "pending")
        st, err = await ca.call("POST", f"/api/v1/activations/{aid}/submit")
        assert (st, err["error"]["code"]) == (409, "approval_required")
        st, err = await ca.call("POST", f"/api/v1/activations/{aid}/approve")
        assert (st, err["error"]["code"]) == (403, "forbidden")  # not an approver
        st, err = await auditor_a.call("POST", f"/api/v1/activations/{aid}/approve")
        assert (st, err["error"]["code"]) == (403, "forbidden")  # wrong role
        await pair.settle()
        assert await count(b, Activation) == 0  # nothing crossed the line
        st, out = await admin_a.call("POST", f"/api/v1/activations/{aid}/approve")
        assert st == 200, out
        assert (out["state"], out["approval"]) == ("requested", "approved")
        st, err = await admin_a.call("POST", f"/api/v1/activations/{aid}/approve")
        assert (st, err["error"]["code"]) == (409, "illegal_transition")
        await pair.settle()

        # Incoming: stored, but nobody offers before approval.
        st, got = await cb.call("GET", f"/api/v1/activations/{aid}")
        assert st == 200 and got["approval"] == "pending", got
        offer = {"disciplines": {"fire": 2}, "eta_minutes": 60}
        st, err = await cb.call("POST", f"/api/v1/activations/{aid}/offer", offer,
                                requester="tx/agency-a")
        assert (st, err["error"]["code"]) == (409, "approval_required")
        async with b.db.read() as conn:
            [leg] = (await conn.execute(select(ActivationLeg))).all()
        assert leg.state == "requested" and leg.offer_msg_id is None  # nothing stored
        st, err = await cb.call("POST", f"/api/v1/activations/{aid}/approve",
                                requester="tx/agency-a")
        assert (st, err["error"]["code"]) == (403, "forbidden")
        st, got = await approver_b.call("POST", f"/api/v1/activations/{aid}/approve",
                                        requester="tx/agency-a")
        assert st == 200 and got["approval"] == "approved", got
        st, got = await cb.call("POST", f"/api/v1/activations/{aid}/offer", offer,
                                requester="tx/agency-a")
        assert st == 200, got
        await pair.settle()
        st, got = await ca.call("GET", f"/api/v1/activations/{aid}")
        assert got["legs"][0]["state"] == "offered"

        # A request to home agencies is never held.
        st, home = await ca.call("POST", "/api/v1/activations", request_body(now, ["agency-c"]))
        assert st == 201 and (home["state"], home["approval"]) == ("requested", None), home


async def test_bad_input_refused_with_stable_codes_nothing_stored(pair: Pair) -> None:
    a = pair.node("tx", "agency-a")
    async with aiohttp.ClientSession() as http:
        _, ca = await user(http, a, "coord-a")
        _, admin = await user(http, a, "admin-a", Role.ADMIN)
        _, sup = await user(http, a, "sup-a", Role.PEER_SUPPORTER)
        now = pair.clock.now_ms()
        for targets, code in (
            (["hi/agency-zz"], "bad_target"),  # not in that network's roster
            (["zz/agency-b"], "bad_target"),  # not a member network
            (["hi/hub-hi"], "bad_target"),  # a hub, not an agency
            (["hi/Agency-B"], "invalid_input"),
            (["hi/agency-b/x"], "invalid_input"),
            (["h/agency-b"], "invalid_input"),
            (["hi/agency-b", "hi/agency-b"], "invalid_input"),
            (["tx/agency-c", "agency-c"], "invalid_input"),  # the same agency twice
        ):
            st, err = await ca.call("POST", "/api/v1/activations", request_body(now, targets))
            assert (st, err["error"]["code"]) == (422, code), (targets, err)
        st, err = await sup.call("POST", "/api/v1/activations",
                                 request_body(now, ["hi/agency-b"]))
        assert (st, err["error"]["code"]) == (403, "forbidden")
        assert await count(a, Activation) == 0

        for network, st_code in (("zz", (404, "unknown_network")),
                                 ("Bad!", (422, "invalid_input")),
                                 ("tx", (422, "invalid_input"))):
            st, err = await ca.call("GET", "/api/v1/activations/interstate/directory",
                                    network=network)
            assert (st, err["error"]["code"]) == st_code, network
        async with http.get(pair.hub("tx").url + "/api/v1/directory",
                            params={"network": "zz"}) as r:
            assert r.status == 404
            assert (await r.json())["error"]["code"] == "unknown_network"

        st, err = await admin.call("PUT", "/api/v1/activations/interstate/policy",
                                   {"require_approval_out": True, "require_approval_in": True,
                                    "approvers": ["0b6f7a52-3c1e-4d8a-9f2b-6a1d2c3e4f50"]})
        assert (st, err["error"]["code"]) == (422, "invalid_input")
        st, err = await admin.call("PUT", "/api/v1/activations/interstate/policy",
                                   {"require_approval_out": "yes"})
        assert (st, err["error"]["code"]) == (422, "invalid_input")
        st, pol = await ca.call("GET", "/api/v1/activations/interstate/policy")
        assert st == 200 and pol == {"require_approval_out": False,
                                     "require_approval_in": False, "approvers": [],
                                     "updated_at": None}
        assert await count(a, ActivationApproval) == 0


async def test_network_removed_from_the_compact_cannot_be_asked(pair: Pair) -> None:
    a = pair.node("tx", "agency-a")
    async with aiohttp.ClientSession() as http:
        _, ca = await user(http, a, "coord-a")
        st, _ = await ca.call("GET", "/api/v1/activations/interstate/directory", network="hi")
        assert st == 200
        await pair.install(pair.compact(["tx"]), ["tx"])  # version 2 drops hi
        st, err = await ca.call("GET", "/api/v1/activations/interstate/directory",
                                network="hi")
        assert (st, err["error"]["code"]) == (403, "network_not_in_compact")
        async with http.get(pair.hub("tx").url + "/api/v1/directory",
                            params={"network": "hi"}) as r:
            assert r.status == 403
            assert (await r.json())["error"]["code"] == "network_not_in_compact"
        st, err = await ca.call("POST", "/api/v1/activations",
                                request_body(pair.clock.now_ms(), ["hi/agency-b"]))
        assert (st, err["error"]["code"]) == (422, "bad_target")
        assert await count(a, Activation) == 0
