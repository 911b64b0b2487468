"""Node info: the public key material and listing a node (or hub) hands the board to be
put on the roster (`peernet board add-node` reads it). The entry is validated as a roster
`NodeEntry` on both sides, so a bad value is caught before it reaches the board.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from federation.errors import FedCode, FederationError
from federation.roster import NodeEntry
from protocol.canonical import parse_json
from protocol.encoding import b64u
from protocol.errors import ProtocolError

__all__ = ["NODE_INFO_FORMAT", "node_info_document", "parse_node_info"]

NODE_INFO_FORMAT = "peernet-node-info-v1"


def node_info_document(
    *,
    node_id: str,
    name: str,
    disciplines: list[str],
    region: str,
    endpoint: str,
    key_id: str,
    verify_key: bytes,
    enc_public_key: bytes,
    roles: list[str] | None = None,
) -> dict[str, Any]:
    """The public info JSON a node (or hub) gives the board (`peernet board add-node`).

    `{"format": "peernet-node-info-v1", "node": <a roster node entry>}`; validated here so a
    bad value is caught on the node's side before it reaches the board.
    """
    entry = {
        "node_id": node_id,
        "name": name,
        "disciplines": disciplines,
        "region": region,
        "roles": roles or ["agency"],
        "endpoint": endpoint,
        "sign_keys": {key_id: {"key": b64u(verify_key), "valid_until": None}},
        "old_sign_keys": {},
        "enc_key": b64u(enc_public_key),
    }
    try:
        NodeEntry.model_validate(entry)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise FederationError(
            FedCode.BAD_INPUT, f"invalid node info at {loc}: {first['msg']}", loc
        ) from None
    return {"format": NODE_INFO_FORMAT, "node": entry}


def parse_node_info(data: bytes) -> NodeEntry:
    try:
        doc = parse_json(data)
    except ProtocolError as exc:
        raise FederationError(
            FedCode.BAD_INPUT, f"node info is not strict JSON: {exc.detail}"
        ) from None
    if (
        not isinstance(doc, dict)
        or doc.get("format") != NODE_INFO_FORMAT
        or set(doc) != {"format", "node"}
    ):
        raise FederationError(FedCode.BAD_INPUT, f"not a {NODE_INFO_FORMAT} document")
    try:
        return NodeEntry.model_validate(doc["node"])
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise FederationError(
            FedCode.BAD_INPUT, f"invalid node info at {loc}: {first['msg']}", loc
        ) from None
