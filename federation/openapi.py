"""A small OpenAPI 3.1 builder: a route table in, one document out (node and hub).

Each `Operation` names its method, path (aiohttp and OpenAPI share the `{name}` template
syntax), pydantic models for the query string, the JSON body and the response, and whether
it needs authentication. Schemas come from pydantic (`models_json_schema`, JSON Schema
2020-12, which OpenAPI 3.1 uses as is) and are shared under `components/schemas`: request
models in validation mode, responses in serialization mode. Query models are flattened into
`in: query` parameters. Every operation lists the error responses in the common shape
`{"error": {"code", "message", "field"}}`.

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

__all__ = ["ERROR_SCHEMA", "Operation", "build_document"]

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

_ERROR_TEXT = {
    400: "Malformed request",
    401: "Not authenticated",
    403: "Refused (role, record or CSRF)",
    404: "Not found",
    409: "Conflict",
    413: "Body too large",
    422: "Invalid input",
    429: "Throttled",
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
    errors: tuple[int, ...] = (400, 401, 403, 404, 413, 422)


def _openapi_path(path: str) -> str:
    return _PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def build_document(
    title: str,
    version: str,
    operations: Iterable[Operation],
    *,
    description: str = "",
    servers: list[dict[str, str]] | None = None,
    cookie_name: str = "peernet_session",
) -> dict[str, Any]:
    ops = sorted(operations, key=lambda o: (o.path, o.method))
    models: list[tuple[type[BaseModel], Any]] = []
    seen: set[tuple[type[BaseModel], str]] = set()
    for op in ops:
        for model, mode in ((op.body, "validation"), (op.response, "serialization")):
            if model is not None and (model, mode) not in seen:
                seen.add((model, mode))
                models.append((model, mode))
    keyed, defs = models_json_schema(models, ref_template=_REF) if models else ({}, {})
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    schemas["Error"] = ERROR_SCHEMA

    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        item: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
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
            qs = op.query.model_json_schema(ref_template=_REF)
            required = set(qs.get("required", []))
            for name, schema in qs.get("properties", {}).items():
                params.append(
                    {"name": name, "in": "query", "required": name in required, "schema": schema}
                )
        if params:
            item["parameters"] = params
        if op.body is not None:
            item["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": keyed[(op.body, "validation")]}},
            }
        ok: dict[str, Any] = {"description": "OK"}
        if op.response is not None:
            ok["content"] = {"application/json": {"schema": keyed[(op.response, "serialization")]}}
        responses: dict[str, Any] = {str(op.status): ok}
        for status in op.errors:
            if status == 401 and not op.secured:
                continue
            responses[str(status)] = {
                "description": _ERROR_TEXT.get(status, "Error"),
                "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}},
            }
        item["responses"] = responses
        item["security"] = [{"bearerAuth": []}, {"sessionCookie": []}] if op.secured else []
        paths.setdefault(_openapi_path(op.path), {})[op.method.lower()] = item

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
