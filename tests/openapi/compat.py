"""What a client of /api/v1 relies on, and the check that none of it disappears.

`removals(published, served)` lists what the published copy has and the served document
lacks or narrowed: an operation (path + method) or its operationId, a query or path
parameter, a schema, a property of a schema, an enum value, a success response's schema,
and a query parameter that became required. Additions are never listed. Used by
test_compat.py against tests/openapi/node-v1.json and hub-v1.json.
"""

from __future__ import annotations

from typing import Any

METHODS = {"get", "put", "post", "delete", "patch"}


def _ops(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(p, m): op for p, item in doc["paths"].items() for m, op in item.items()
            if m in METHODS}


def _enum(schema: Any) -> set[Any]:
    return set(schema.get("enum", [])) if isinstance(schema, dict) else set()


def removals(published: dict[str, Any], served: dict[str, Any]) -> list[str]:
    out: list[str] = []
    now_ops = _ops(served)
    for key, old in _ops(published).items():
        where = f"{key[1].upper()} {key[0]}"
        new = now_ops.get(key)
        if new is None:
            out.append(f"operation {where}")
            continue
        if new.get("operationId") != old.get("operationId"):
            out.append(f"operationId {old.get('operationId')} of {where}")
        params = {(p["in"], p["name"]): p for p in new.get("parameters", [])}
        for p in old.get("parameters", []):
            got = params.get((p["in"], p["name"]))
            if got is None:
                out.append(f"parameter {p['name']} of {where}")
            elif got.get("required") and not p.get("required"):
                out.append(f"parameter {p['name']} of {where} became required")
            elif _enum(p.get("schema")) - _enum(got.get("schema")):
                out.append(f"values of parameter {p['name']} of {where}")
        for status in old.get("responses", {}):
            if status not in new.get("responses", {}):
                out.append(f"response {status} of {where}")
    old_schemas = published.get("components", {}).get("schemas", {})
    new_schemas = served.get("components", {}).get("schemas", {})
    for name, old_s in old_schemas.items():
        new_s = new_schemas.get(name)
        if new_s is None:
            out.append(f"schema {name}")
            continue
        for prop in old_s.get("properties", {}):
            if prop not in new_s.get("properties", {}):
                out.append(f"field {name}.{prop}")
        if _enum(old_s) - _enum(new_s):
            out.append(f"values of {name}: {sorted(_enum(old_s) - _enum(new_s))}")
    return out
