"""The OpenAPI document against the live server: generated requests (schemathesis, both valid
and invalid data) never get a 5xx, and the document lists every API route."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode

from node.core.appkeys import ROUTES
from tests.node.conftest import MakeNode

WHO = {"peer_supporter": "sup1", "coordinator": "coord", "admin": "admin", "auditor": "audit"}


async def test_document_lists_every_api_route(make_node: MakeNode) -> None:
    node = await make_node(seed=False)
    r = await node.client.get("/api/v1/openapi.json")
    doc = await r.json()
    assert doc["openapi"] == "3.1.0"
    api = {(rt.path, rt.method.lower()) for rt in node.client.app[ROUTES] if rt.is_api}
    listed = {(p, m) for p, item in doc["paths"].items() for m in item}
    assert listed == api
    body = doc["paths"]["/api/v1/encounters"]["post"]["requestBody"]["content"]
    ref = body["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    schema = doc["components"]["schemas"][ref]
    assert schema["additionalProperties"] is False
    assert "recipient" in schema["required"] and "notes" not in schema["properties"]


def _fuzz(doc: dict[str, Any], base_url: str, tokens: dict[str, str],
          roles: dict[str, str]) -> tuple[list[str], int]:
    schema = schemathesis.openapi.from_dict(doc)
    failures: list[str] = []
    calls = [0]
    for result in schema.get_all_operations():
        op = result.ok()
        who = roles.get(op.definition.raw.get("operationId", ""), "coord")
        auth = {"Authorization": f"Bearer {tokens[who]}"}
        strategy = st.one_of(op.as_strategy(generation_mode=GenerationMode.POSITIVE),
                             op.as_strategy(generation_mode=GenerationMode.NEGATIVE))

        @settings(max_examples=6, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def check(case: Any) -> None:
            resp = case.call(base_url=base_url, headers=auth, timeout=10)  # noqa: B023
            calls[0] += 1
            if resp.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {resp.status_code}")

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check()
    return failures, calls[0]


async def test_generated_requests_never_get_a_server_error(make_node: MakeNode) -> None:
    node = await make_node()
    r = await node.client.get("/api/v1/openapi.json")
    doc = await r.json()
    roles = {rt.name: WHO[sorted(x.value for x in rt.roles)[0]]
             for rt in node.client.app[ROUTES] if rt.is_api and rt.roles}
    base = str(node.client.make_url("/")).rstrip("/")
    failures, calls = await asyncio.to_thread(_fuzz, doc, base, node.tokens, roles)
    assert failures == []
    assert calls >= 60
