"""A small OpenAPI 3.1 builder: a route table in, one document out (node and hub).

Each `Operation` names its method, path (aiohttp and OpenAPI share the `{name}` template
syntax), pydantic models for the query string, the JSON body and the response, and whether
it needs authentication. Schemas come from pydantic (`models_json_schema`, JSON Schema
2020-12, which OpenAPI 3.1 uses as is) and are shared under `components/schemas`: request
models in validation mode, responses in serialization mode. Query models are flattened into
`in: query` parameters. Every operation lists the error responses in the common shape
`{"error": {"code", "message", "field"}}`; `code` is the server's enum of stable codes
(`ErrorCode`), and each error response names the codes its status carries.

Query models go through the same `models_json_schema` call as bodies and responses, so a
`$ref` inside a query parameter (an enum such as the activation `Side`) points at a schema
that the document defines; the query models themselves are flattened into parameters and
not kept as schemas. A request body carries the example its operation names
(`body_example`), checked against the body model by the tests.

List operations share one paging convention (`PAGING_TEXT`): `limit` and an opaque
`cursor`, answered with `next_cursor`.

The document describes what the server really accepts because the same models validate the
requests (strict, `extra="forbid"`: `additionalProperties: false` in the schema).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

__all__ = ["ERROR_SCHEMA", "PAGING_TEXT", "Operation", "build_document", "error_schemas"]

_PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}")
_REF = "#/components/schemas/{model}"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "field"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
            },
        }
    },
}

PAGING_TEXT = (
    "Paged: `limit` items at most per page; pass the answer's `next_cursor` back as "
    "`cursor` for the next page (`next_cursor` is null once a page comes back short). "
    "Cursors are opaque. Filters are plain query parameters; the order is fixed: "
)

_ERROR_TEXT = {
    400: "Malformed request",
    401: "Not authenticated",
    403: "Refused (role, record or CSRF)",
    404: "Not found",
    409: "Conflict",
    413: "Body too large",
    422: "Invalid input",
    429: "Throttled",
    500: "Internal error",
    503: "Unavailable (database)",
}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str = ""
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    secured: bool = True
    tags: tuple[str, ...] = ()
    path_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    errors: tuple[int, ...] = (400, 401, 403, 404, 413, 422, 500)
    body_example: Mapping[str, Any] | None = None
    description: str = ""


def _openapi_path(path: str) -> str:
    return _PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def error_schemas(codes: Iterable[str]) -> dict[str, Any]:
    """`Error` (the common shape) with its `code` an enum of the server's stable codes."""
    detail = ERROR_SCHEMA["properties"]["error"]
    return {
        "ErrorCode": {"type": "string", "enum": sorted(set(codes)),
                      "description": "Stable refusal code (never renamed; new codes may "
                                     "be added within a major version)"},
        "ErrorDetail": {**detail, "title": "ErrorDetail", "properties": {
            **detail["properties"], "code": {"$ref": _REF.format(model="ErrorCode")}}},
        "Error": {**ERROR_SCHEMA, "title": "Error",
                  "properties": {"error": {"$ref": _REF.format(model="ErrorDetail")}}},
    }


def _error_text(status: int, status_of: Mapping[str, int]) -> str:
    codes = sorted(c for c, s in status_of.items() if s == status)
    text = _ERROR_TEXT.get(status, "Error")
    return f"{text}: " + ", ".join(f"`{c}`" for c in codes) if codes else text


def build_document(
    title: str,
    version: str,
    operations: Iterable[Operation],
    *,
    description: str = "",
    servers: list[dict[str, str]] | None = None,
    cookie_name: str = "peernet_session",
    error_status: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The document of `operations`. `error_status` maps every stable error code of the
    server to its HTTP status: it becomes the `ErrorCode` enum and each error response's
    list of codes (without it, `code` is any string)."""
    ops = sorted(operations, key=lambda o: (o.path, o.method))
    models: list[tuple[type[BaseModel], Any]] = []
    seen: set[tuple[type[BaseModel], str]] = set()
    for op in ops:
        for model, mode in ((op.query, "validation"), (op.body, "validation"),
                            (op.response, "serialization")):
            if model is not None and (model, mode) not in seen:
                seen.add((model, mode))
                models.append((model, mode))
    keyed, defs = models_json_schema(models, ref_template=_REF) if models else ({}, {})
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    query_names = {keyed[(op.query, "validation")]["$ref"].rsplit("/", 1)[1]: op.query
                   for op in ops if op.query is not None}
    query_schemas = {name: schemas[name] for name in query_names}
    status_of = dict(error_status or {})
    if status_of:
        schemas.update(error_schemas(status_of))
    else:
        schemas["Error"] = ERROR_SCHEMA

    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        item: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
        if op.description:
            item["description"] = op.description
        if op.tags:
            item["tags"] = list(op.tags)
        params: list[dict[str, Any]] = []
        for name in _PATH_PARAM.findall(op.path):
            params.append(
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": dict(op.path_params.get(name, {"type": "string"})),
                }
            )
        if op.query is not None:
            ref = keyed[(op.query, "validation")]["$ref"].rsplit("/", 1)[1]
            qs = query_schemas[ref]
            required = set(qs.get("required", []))
            for name, schema in qs.get("properties", {}).items():
                param: dict[str, Any] = {"name": name, "in": "query",
                                         "required": name in required, "schema": schema}
                if "description" in schema:
                    param["description"] = schema["description"]
                if schema.get("deprecated"):
                    param["deprecated"] = True
                params.append(param)
        if params:
            item["parameters"] = params
        if op.body is not None:
            media: dict[str, Any] = {"schema": keyed[(op.body, "validation")]}
            if op.body_example is not None:
                media["example"] = dict(op.body_example)
            item["requestBody"] = {"required": True, "content": {"application/json": media}}
        ok: dict[str, Any] = {"description": "OK"}
        if op.response is not None:
            ok["content"] = {"application/json": {"schema": keyed[(op.response, "serialization")]}}
        responses: dict[str, Any] = {str(op.status): ok}
        for status in op.errors:
            if status == 401 and not op.secured:
                continue
            responses[str(status)] = {
                "description": _error_text(status, status_of),
                "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}},
            }
        item["responses"] = responses
        item["security"] = [{"bearerAuth": []}, {"sessionCookie": []}] if op.secured else []
        paths.setdefault(_openapi_path(op.path), {})[op.method.lower()] = item

    for name in query_names:  # flattened into parameters, never referenced
        if not _referenced(name, schemas, paths):
            schemas.pop(name, None)
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer"},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": cookie_name},
            },
        },
    }
    if servers:
        doc["servers"] = servers
    return doc


def _referenced(name: str, *parts: Any) -> bool:
    target = _REF.format(model=name)

    def walk(node: Any) -> bool:
        if isinstance(node, dict):
            return node.get("$ref") == target or any(walk(v) for v in node.values())
        if isinstance(node, list):
            return any(walk(v) for v in node)
        return False

    return any(walk({k: v for k, v in p.items() if k != name}) for p in parts)
