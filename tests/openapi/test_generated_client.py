"""A Python client generated from each served document (openapi-python-client, the way an
agency's IT would) used against a live node and hub on SQLite (issue 20 item 2).

Real servers on ephemeral ports (make_network: a hub and two agency nodes). Through the
generated code only: a peer supporter logs an encounter with a follow-up, lists the
follow-ups and completes one; a coordinator creates a draft activation request and submits
it, and reads the agency report; the hub's statistics are read with the operator token.
Refusals come back as the generated `Error` model with the `ErrorCode` enum: wrong role
(403 forbidden, nothing stored), bad input (422 / 400 invalid_input), not found (404).
"""

from __future__ import annotations

import importlib
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text

from node.core.vocabulary import Role
from node.web.openapi_examples import BODY_EXAMPLES
from tests.activations.netutil import add_user
from tests.federation.network import OPERATOR_TOKEN, NodeHandle, make_network


def _mod(name: str) -> Any:
    return importlib.import_module(name)


async def _count(node: NodeHandle, table: str) -> int:
    async with node.db.read() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def test_generated_clients_against_live_servers(
        generated_clients: Path, tmp_path: Path) -> None:
    nc = "peernet_node_client"
    client_mod, models = _mod(nc), _mod(f"{nc}.models")
    api = f"{nc}.api"
    create_enc = _mod(f"{api}.encounters.api_encounters_create")
    get_enc = _mod(f"{api}.encounters.api_encounters_get")
    list_fu = _mod(f"{api}.follow_ups.api_follow_ups_list")
    complete_fu = _mod(f"{api}.follow_ups.api_follow_ups_complete")
    create_act = _mod(f"{api}.activations.api_activations_create")
    submit_act = _mod(f"{api}.activations.api_activations_submit")
    report = _mod(f"{api}.report.api_report")
    code = models.ErrorCode

    net = await make_network(2, tmp_path=tmp_path)
    try:
        node = net.node("agency-1")
        _, sup_token = await add_user(node, "sup", Role.PEER_SUPPORTER)
        _, coord_token = await add_user(node, "coord", Role.COORDINATOR)

        def as_(token: str) -> Any:
            return client_mod.AuthenticatedClient(base_url=node.url, token=token)

        sup, coord = as_(sup_token), as_(coord_token)

        # an encounter with a follow-up, through the generated model of the example body
        body = models.EncounterIn.from_dict(
            {**BODY_EXAMPLES["api.encounters.create"], "follow_up_due": "2026-05-30"})
        r = await create_enc.asyncio_detailed(client=sup, body=body)
        assert r.status_code == 201, r.content
        enc = r.parsed
        assert isinstance(enc, models.EncounterOut) and enc.follow_up_status.value == "open"

        # follow-ups: listed (one page, no next), then completed
        r = await list_fu.asyncio_detailed(client=sup, limit=10)
        assert r.status_code == 200, r.content
        page = r.parsed
        assert [f.encounter_id for f in page.items] == [enc.id]
        assert page.next_cursor is None
        r = await complete_fu.asyncio_detailed(
            page.items[0].id, client=sup, body=models.CompleteIn.from_dict({"outcome": "done"}))
        assert r.status_code == 200, r.content
        assert r.parsed.status.value == "done"

        # an activation request: a draft, then submitted to agency-2
        draft = models.RequestIn.from_dict(
            {**BODY_EXAMPLES["api.activations.create"], "targets": ["agency-2"], "draft": True})
        r = await create_act.asyncio_detailed(client=coord, body=draft)
        assert r.status_code == 201, r.content
        assert r.parsed.state.value == "draft"
        aid = r.parsed.activation_id
        r = await submit_act.asyncio_detailed(aid, client=coord)
        assert r.status_code == 200, r.content
        assert r.parsed.state.value == "requested"

        # the agency report: aggregates only
        r = await report.asyncio_detailed(client=coord, months=1)
        assert r.status_code == 200, r.content
        assert isinstance(r.parsed, models.ReportOut) and len(r.parsed.months) == 1

        # refusals, typed: wrong role (nothing stored), bad input, not found
        before = await _count(node, "activations")
        r = await create_act.asyncio_detailed(client=sup, body=draft)
        assert r.status_code == 403
        assert isinstance(r.parsed, models.Error) and r.parsed.error.code is code.FORBIDDEN
        assert await _count(node, "activations") == before
        r = await list_fu.asyncio_detailed(client=sup, limit=0)
        assert r.status_code == 422 and r.parsed.error.code is code.INVALID_INPUT
        assert r.parsed.error.field == "limit"
        r = await get_enc.asyncio_detailed(uuid.uuid4(), client=sup)
        assert r.status_code == 404 and r.parsed.error.code is code.NOT_FOUND
        r = await submit_act.asyncio_detailed("0" * 26, client=coord)
        assert r.status_code == 404 and r.parsed.error.code is code.NOT_FOUND

        # the hub: statistics with the operator token; a bad month is a typed refusal
        hc = "peernet_hub_client"
        hub_client = _mod(hc).AuthenticatedClient(base_url=net.hub.url, token=OPERATOR_TOKEN)
        stats = _mod(f"{hc}.api.stats.get_stats")
        hub_models = _mod(f"{hc}.models")
        r = await stats.asyncio_detailed(client=hub_client, month_from="2026-01",
                                         month_to="2026-04")
        assert r.status_code == 200, r.content
        assert isinstance(r.parsed, hub_models.StatsDocument)
        assert [m.month for m in r.parsed.months] == ["2026-01", "2026-02", "2026-03", "2026-04"]
        r = await stats.asyncio_detailed(client=hub_client, month_from="April")
        assert r.status_code == 400
        assert r.parsed.error.code is hub_models.ErrorCode.INVALID_INPUT
        anonymous = _mod(hc).Client(base_url=net.hub.url)
        r = await stats.asyncio_detailed(client=anonymous)
        assert r.status_code == 401
        assert r.parsed.error.code is hub_models.ErrorCode.UNAUTHENTICATED
    finally:
        await net.close()
