"""Both servers' OpenAPI documents as an integrator's tools see them (issue 20 item 1):

- they validate with openapi-spec-validator and every `$ref` resolves (the node's used to
  name `#/components/schemas/Side` without defining it, so generators stopped);
- every operation has an operationId, a summary and tags; every error response is the
  common `Error` shape whose `code` is the server's enum of stable codes, with each code of
  the server's table in it;
- every request body has an example, and the example is a body the route accepts;
- every list operation pages the same way (`limit` + `cursor` in, `next_cursor` out) and
  says its order.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from openapi_spec_validator import validate

from hub.errors import HTTP_STATUS as HUB_STATUS
from node.activation.api import api_routes
from node.web.openapi import LIST_ORDER, error_status
from node.web.openapi_examples import BODY_EXAMPLES

SERVERS = ("node", "hub")
METHODS = {"get", "put", "post", "delete", "patch"}


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(p, m, op) for p, item in doc["paths"].items() for m, op in item.items()
            if m in METHODS]


@pytest.mark.parametrize("server", SERVERS)
def test_document_validates_and_every_ref_resolves(
        served_documents: dict[str, Any], server: str) -> None:
    doc = served_documents[server]
    validate(doc)  # raises on an invalid document
    refs = _refs(doc)
    assert refs
    for ref in refs:
        assert _resolve(doc, ref) is not None, ref


def test_a_dangling_ref_is_caught() -> None:
    # The check above is not vacuous: the node's old defect is an error here.
    doc = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {},
           "components": {"schemas": {"A": {"$ref": "#/components/schemas/Side"}}}}
    with pytest.raises(KeyError):
        for ref in _refs(doc):
            _resolve(doc, ref)


@pytest.mark.parametrize("server", SERVERS)
def test_every_operation_is_named_summarised_tagged_with_typed_errors(
        served_documents: dict[str, Any], server: str) -> None:
    doc = served_documents[server]
    schemas = doc["components"]["schemas"]
    table = error_status() if server == "node" else {c.value: s for c, s in HUB_STATUS.items()}
    assert set(schemas["ErrorCode"]["enum"]) == set(table)
    assert schemas["ErrorDetail"]["properties"]["code"] == {
        "$ref": "#/components/schemas/ErrorCode"}
    ids = []
    for path, method, op in _operations(doc):
        where = f"{method.upper()} {path}"
        ids.append(op["operationId"])
        assert op["summary"].strip(), where
        assert op["tags"], where
        for status, resp in op["responses"].items():
            if int(status) < 400:
                continue
            schema = resp["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, where
            for code, st in table.items():  # the description names the status's codes
                assert (f"`{code}`" in resp["description"]) == (st == int(status)), (where, code)
        if op.get("security"):
            assert {"401", "403", "400"} <= set(op["responses"]), where
    assert len(ids) == len(set(ids))


def test_every_request_body_has_an_example_the_route_accepts(
        served_documents: dict[str, Any]) -> None:
    doc = served_documents["node"]
    with_body = {op["operationId"]: op for _, _, op in _operations(doc) if "requestBody" in op}
    assert with_body
    for op_id, op in with_body.items():
        media = op["requestBody"]["content"]["application/json"]
        assert media.get("example") == BODY_EXAMPLES.get(op_id), op_id
    models = _body_models()
    assert set(models) == set(with_body)
    for op_id, model in models.items():
        model.model_validate_json(json.dumps(BODY_EXAMPLES[op_id]))  # raises if refused


def _body_models() -> dict[str, Any]:
    """Route name -> body model of every node API route (the node's own and activations')."""
    from aiohttp import web

    import node.web.api as core_api
    from node.core.appkeys import ROUTES
    from node.core.routes import RouteTable

    app = web.Application()
    app[ROUTES] = RouteTable()
    core_api.setup(app)
    from node.accounts.api import routes as account_routes
    from node.activation.interstate_api import interstate_routes
    from node.activation.transfer_api import transfer_routes
    from node.notify.api import api_routes as notify_routes
    from node.records.amendment_pages import routes as record_routes

    routes = [*app[ROUTES], *api_routes(), *transfer_routes(), *notify_routes(),
              *record_routes(), *account_routes(), *interstate_routes()]
    return {r.name: r.body for r in routes if r.body is not None}


@pytest.mark.parametrize("server", SERVERS)
def test_list_operations_page_one_way(served_documents: dict[str, Any], server: str) -> None:
    doc = served_documents[server]
    lists = 0
    for path, method, op in _operations(doc):
        ok = op["responses"].get("200", {}).get("content", {}).get("application/json")
        if method != "get" or not ok or "$ref" not in ok["schema"]:
            continue
        schema = _resolve(doc, ok["schema"]["$ref"])
        props = schema.get("properties", {})
        array_keys = [k for k, v in props.items() if v.get("type") == "array"]
        if not {"items", "entries"} & set(array_keys):
            continue
        lists += 1
        params = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
        assert {"limit", "cursor"} <= params, path
        assert "next_cursor" in props, path
        assert "order is fixed" in op.get("description", ""), path
    assert lists >= (len(LIST_ORDER) if server == "node" else 1)
