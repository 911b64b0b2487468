"""A stored release's values and noise variances, read back from its signed body.

Why: the hub keeps each release's canonical signed body (`aggregate_releases.body`, so the
board can re-verify it), and the body holds everything a per-release reader needs: the
cells and, per v2 group, the noise scale. Reading it back gives exactly what the ingest
checks computed (`hub.stats.release_check`: `release_variance` of the release's mechanism at
the scale, read as a Decimal then a float), so there is no per-key copy to write on ingest.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from hub.stats.estimates import release_variance
from protocol.canonical import parse_json
from protocol.workload import KEY_GROUP
from protocol.workload import SCHEMA as WORKLOAD_SCHEMA

__all__ = ["body_values"]


def body_values(
    schema: str, mechanism: str, variance: float, body: bytes
) -> Mapping[str, tuple[int, float]]:
    """{key: (value, noise variance)} of a stored release: a v2 key's variance is its
    group's; every v1 cell has the release's one variance (stored as `variance`)."""
    release: dict[str, Any] = parse_json(body)["release"]
    cells: dict[str, int] = release["cells"]
    if schema != WORKLOAD_SCHEMA:
        v = float(variance)
        return {k: (int(x), v) for k, x in cells.items()}
    groups = {g: release_variance(mechanism, float(Decimal(n["scale"])))
              for g, n in release["groups"].items()}
    return {k: (int(x), groups[KEY_GROUP[k]]) for k, x in cells.items()}
