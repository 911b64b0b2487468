"""Many signed releases, fast: one real release per (schema, policy) as a template (built by
the node's own code, OpenDP noise), then copies with their own node, month, release id and
cell values, signed by each node's key (`tests.privacy.hub_fixtures.node_key`).

For the batched-ingest tests and `bench.hub_v2` (tens of thousands of releases, where
building each with OpenDP would take minutes). The hub checks a copy exactly as any release:
its signature, its declared noise (the template's, valid for its policy) and its cells.
"""

from __future__ import annotations

import copy
from typing import Any

import nacl.signing
import numpy as np

from node.privacy.schema import SCHEMA as V1
from node.privacy.schema import ReleasePolicy
from protocol.canonical import canonical_bytes
from protocol.encoding import b64u
from protocol.ids import new_ulid
from protocol.signing import Context, sign
from tests.privacy.hub_fixtures import node_key, release_body

__all__ = ["ReleaseFactory"]

TEMPLATE_NOW_MS = 1_800_000_000_000


class ReleaseFactory:
    """`body(node, month, schema=..., budget=...)`: a fresh signed release body."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self._templates: dict[tuple[str, str], dict[str, Any]] = {}
        self._keys: dict[str, nacl.signing.SigningKey] = {}
        self._n = 0

    def _template(self, schema: str, budget: str) -> dict[str, Any]:
        key = (schema, budget)
        if key not in self._templates:
            from decimal import Decimal

            policy = ReleasePolicy(budget_per_node_year=Decimal(budget))
            self._templates[key] = release_body("template-node", "2026-01", policy=policy,
                                                schema=schema, now_ms=TEMPLATE_NOW_MS)
        return self._templates[key]

    def key(self, node_id: str) -> nacl.signing.SigningKey:
        k = self._keys.get(node_id)
        if k is None:
            k = self._keys[node_id] = node_key(node_id)
        return k

    def body(self, node_id: str, month: str, *, schema: str = V1, budget: str = "1.0",
             cells: dict[str, int] | None = None) -> dict[str, Any]:
        release = copy.deepcopy(self._template(schema, budget)["release"])
        self._n += 1
        release["release_id"] = new_ulid(TEMPLATE_NOW_MS, self._n.to_bytes(10, "big"))
        release["node_id"] = node_id
        release["month"] = month
        if cells is None:
            noise = self.rng.integers(-6, 7, len(release["cells"]))
            cells = {k: int(v + d) for (k, v), d in zip(release["cells"].items(), noise,
                                                         strict=True)}
        release["cells"] = cells
        sig = sign(self.key(node_id), Context.RELEASE, canonical_bytes(release))
        return {"release": release, "sig": {"key_id": "ed25519:1", "value": b64u(sig)}}
