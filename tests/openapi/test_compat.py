"""Within /api/v1 the API only grows (issue 20 item 3; README, "Integrating with the API").

The published copies tests/openapi/node-v1.json and hub-v1.json are what integrators
generated their clients from. This test fails when an operation, an operationId, a
parameter, a response, a schema, a field or an enum value of a copy is gone from the
served document (or a query parameter became required): that is a breaking change and
belongs in /api/v2.

Adding to the API (a new operation, an optional parameter, a field): update the copies
deliberately, review the diff and commit it with the change:

    PEERNET_UPDATE_OPENAPI=1 .venv/bin/pytest -q tests/openapi/test_compat.py
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.openapi.compat import removals

HERE = Path(__file__).parent
COPIES = {"node": HERE / "node-v1.json", "hub": HERE / "hub-v1.json"}


def _published(doc: dict[str, Any]) -> dict[str, Any]:
    # info holds the node's id and description: not part of the contract
    return {"openapi": doc["openapi"], "paths": doc["paths"], "components": doc["components"]}


@pytest.mark.parametrize("server", sorted(COPIES))
def test_nothing_published_disappears(served_documents: dict[str, Any], server: str) -> None:
    served = _published(served_documents[server])
    path = COPIES[server]
    if os.environ.get("PEERNET_UPDATE_OPENAPI") == "1":
        path.write_text(json.dumps(served, indent=1, sort_keys=True) + "\n")
    published = json.loads(path.read_text())
    gone = removals(published, served)
    assert gone == [], (
        f"{server}: removed from /api/v1 (breaking; needs /api/v2): {gone}. If you only "
        "added, refresh the copy: PEERNET_UPDATE_OPENAPI=1 .venv/bin/pytest -q "
        "tests/openapi/test_compat.py")


def test_each_kind_of_removal_is_caught(served_documents: dict[str, Any]) -> None:
    base = _published(served_documents["node"])
    assert removals(base, base) == []
    grown = copy.deepcopy(base)  # additions are fine
    grown["paths"]["/api/v1/extra"] = {"get": {"operationId": "x", "responses": {}}}
    grown["components"]["schemas"]["EncounterOut"]["properties"]["extra"] = {"type": "string"}
    assert removals(base, grown) == []

    def cut(change: Any) -> list[str]:
        doc = copy.deepcopy(base)
        change(doc)
        return removals(base, doc)

    enc = "/api/v1/encounters"
    assert cut(lambda d: d["paths"][enc].pop("post")) == ["operation POST /api/v1/encounters"]
    assert cut(lambda d: d["paths"][enc]["get"]["parameters"].pop()) == [
        "parameter cursor of GET /api/v1/encounters"]
    assert cut(lambda d: d["components"]["schemas"]["EncounterOut"]["properties"].pop(
        "incident_ref")) == ["field EncounterOut.incident_ref"]
    assert cut(lambda d: d["components"]["schemas"]["ErrorCode"]["enum"].remove(
        "not_found")) == ["values of ErrorCode: ['not_found']"]

    def require(d: Any) -> None:
        d["paths"][enc]["get"]["parameters"][0]["required"] = True

    assert cut(require) == ["parameter scope of GET /api/v1/encounters became required"]
