"""schemathesis against the node's and the hub's OpenAPI documents (`/api/v1/openapi.json`),
valid and invalid generated requests, each with a caller of an allowed role:

- no 5xx answer;
- no uncaught exception (no ERROR record from the servers' loggers or aiohttp's);
- no state change on refusal: every table's row count is the same before and after a request
  answered 4xx (the audit log and login-throttle count of the refusal aside).

Bounded: a few examples per operation, derandomized.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode

from bench.reliability_report import record
from hub.appkeys import DB as HUB_DB
from node.core.appkeys import DB as NODE_DB
from node.core.appkeys import ROUTES
from tests.security.conftest import NODE_ROLES, MakeApp, snapshot

# The record a refusal leaves: its audit entry, and a wrong current password's count in the
# login throttle (POST /api/v1/account/password counts a guess before checking it).
AUDIT_TABLES = {"audit_log", "audit_head", "login_throttle"}


def _fuzz(doc: dict[str, Any], base_url: str, auth_for: Any, loop: asyncio.AbstractEventLoop,
          engine: Any, examples: int) -> dict[str, Any]:
    schema = schemathesis.openapi.from_dict(doc)
    out: dict[str, Any] = {"calls": 0, "server_errors": [], "changed_on_refusal": [],
                           "statuses": Counter()}
    for result in schema.get_all_operations():
        op = result.ok()
        headers = auth_for(op.definition.raw.get("operationId", ""), op.method.upper(),
                           op.path)
        strategy = st.one_of(op.as_strategy(generation_mode=GenerationMode.POSITIVE),
                             op.as_strategy(generation_mode=GenerationMode.NEGATIVE))

        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def check(case: Any) -> None:
            before = asyncio.run_coroutine_threadsafe(snapshot(engine), loop).result()
            resp = case.call(base_url=base_url, headers=headers, timeout=15)  # noqa: B023
            out["calls"] += 1
            out["statuses"][resp.status_code // 100 * 100] += 1
            if resp.status_code >= 500:
                out["server_errors"].append(
                    f"{case.method} {case.formatted_path}: {resp.status_code} {resp.text[:200]}")
            if 400 <= resp.status_code < 500:
                after = asyncio.run_coroutine_threadsafe(snapshot(engine), loop).result()
                changed = {k for k in after if after[k] != before.get(k)} - AUDIT_TABLES
                if changed:
                    out["changed_on_refusal"].append(
                        f"{case.method} {case.formatted_path} {resp.status_code}: {changed}")

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check()
    return out


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records
            if r.levelno >= logging.ERROR]


async def test_node_openapi_fuzz(node_app: MakeApp, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    node = await node_app()
    doc = await (await node.client.get("/api/v1/openapi.json")).json()
    by_path = {(r.method, r.path): r for r in node.app[ROUTES] if r.is_api}
    order = ["coordinator", "admin", "peer_supporter", "auditor"]

    def auth_for(_op_id: str, method: str, path: str) -> dict[str, str]:
        route = by_path.get((method, path))
        roles = {r.value for r in route.roles} if route and route.roles else {"coordinator"}
        who = NODE_ROLES[next(r for r in order if r in roles)]
        return node.bearer(who)

    base = str(node.client.make_url("/")).rstrip("/")
    out = await asyncio.to_thread(_fuzz, doc, base, auth_for, asyncio.get_running_loop(),
                                  node.app[NODE_DB].engine, 8)
    errors = _errors(caplog)
    _record("fuzz-openapi-node", "node", out, errors)
    assert out["server_errors"] == [], out["server_errors"][:5]
    assert out["changed_on_refusal"] == [], out["changed_on_refusal"][:5]
    assert errors == [], errors[:5]
    assert out["calls"] >= 100


async def test_hub_openapi_fuzz(hub_app: MakeApp, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    hub = await hub_app()
    doc = await (await hub.client.get("/api/v1/openapi.json")).json()

    def auth_for(_op_id: str, _method: str, _path: str) -> dict[str, str]:
        return hub.bearer("op")

    base = str(hub.client.make_url("/")).rstrip("/")
    out = await asyncio.to_thread(_fuzz, doc, base, auth_for, asyncio.get_running_loop(),
                                  hub.app[HUB_DB].engine, 12)
    errors = _errors(caplog)
    _record("fuzz-openapi-hub", "hub", out, errors)
    assert out["server_errors"] == [], out["server_errors"][:5]
    assert out["changed_on_refusal"] == [], out["changed_on_refusal"][:5]
    assert errors == [], errors[:5]
    assert out["calls"] >= 20


def _record(case_id: str, server: str, out: dict[str, Any], errors: list[str]) -> None:
    ok = not (out["server_errors"] or out["changed_on_refusal"] or errors)
    record(case_id, area="bad-input", case=f"schemathesis against the {server}'s OpenAPI",
           how="every operation of /api/v1/openapi.json, positive and negative generated "
               "requests, caller of an allowed role; table row counts compared around every "
               "4xx; server ERROR logs captured",
           result="no 5xx, no uncaught exception, no state change on refusal" if ok else
           f"FAILED: {out['server_errors'][:3]} {out['changed_on_refusal'][:3]} {errors[:3]}",
           figures={"requests": out["calls"], **{f"http_{k}": v for k, v in
                                                 sorted(out["statuses"].items())},
                    "5xx": len(out["server_errors"]),
                    "changed_on_refusal": len(out["changed_on_refusal"]),
                    "logged_errors": len(errors)}, passed=ok)
