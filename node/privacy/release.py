"""The release builder: the only place where raw encounter records become aggregates.

One release per node-month on a fixed schema (DESIGN section 7). Everything below runs on
the node; the hub sees only the signed noisy vector this module produces: `build_release`
takes the month's encounter columns through `node.privacy.noise` (truncation to the
policy's contribution bounds, then calibrated noise that cannot be turned off), names the
query it answered (`query_sha256`: schema, cells, unit, bounds, truncation, measure, from
`node.privacy.schema`) and signs the result (`protocol.release.sign_release`). Month
helpers (UTC calendar months in epoch milliseconds) are here too: the ledger and the
release service name releases by month.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import nacl.signing

from node.privacy.noise import Calibration, EncounterColumns, noisy_counts
from node.privacy.schema import CELL_KEYS, SCHEMA, TRUNCATION, UNIT, ReleasePolicy
from node.privacy.workload import GroupCalibration, noisy_workload
from protocol.canonical import canonical_bytes
from protocol.encoding import format_decimal, sha256_b64u
from protocol.ids import new_ulid
from protocol.release import sign_release
from protocol.wire_types import wire_json
from protocol.workload import SCHEMA as WORKLOAD_SCHEMA
from protocol.workload import WORKLOAD_KEYS, check_weights

__all__ = [
    "SignedRelease",
    "build_release",
    "month_bounds_ms",
    "month_of_ms",
    "opendp_version",
    "previous_month",
    "query_sha256",
]


def opendp_version() -> str:
    return importlib.metadata.version("opendp")


def query_sha256(policy: ReleasePolicy, schema: str = SCHEMA) -> str:
    """SHA-256 of the query definition: schema, cells (v2: keys and group weights), unit,
    bounds, truncation, measure."""
    what: dict[str, Any] = {"cells": list(CELL_KEYS)}
    if schema == WORKLOAD_SCHEMA:
        weights = check_weights(policy.workload_weights)
        what = {"cells": list(WORKLOAD_KEYS),
                "weights": {g: format_decimal(w) for g, w in weights.items()}}
    return sha256_b64u(
        canonical_bytes(
            {
                "schema": schema,
                **what,
                "unit": UNIT,
                "truncation": TRUNCATION,
                "bounds": {
                    "per_person_month": policy.per_person_month,
                    "per_cell": policy.per_cell,
                },
                "measure": policy.measure.value,
                "mechanism": policy.mechanism.value,
            }
        )
    )


@dataclass(frozen=True)
class SignedRelease:
    release_id: str
    month: str
    body: dict[str, Any]  # {"release": {...}, "sig": {...}}: the aggregate_release body
    body_bytes: bytes  # canonical bytes of `body`, stored and resent as they are
    calibration: Calibration | None  # v1
    query_sha256: str
    groups: tuple[GroupCalibration, ...] = ()  # v2: one per workload group


def build_release(
    cols: EncounterColumns,
    *,
    node_id: str,
    month: str,
    policy: ReleasePolicy,
    signing_key: nacl.signing.SigningKey,
    key_version: int,
    now_ms: int,
    rand: Callable[[int], bytes] = os.urandom,
    schema: str = WORKLOAD_SCHEMA,
) -> SignedRelease:
    """A signed monthly release of `cols` (already restricted to `month`): the workload v2
    (what nodes send), or the v1 cell vector when `schema` asks for it (old hubs, tests)."""
    if schema == WORKLOAD_SCHEMA:
        return _build_workload(cols, node_id=node_id, month=month, policy=policy,
                               signing_key=signing_key, key_version=key_version,
                               release_id=new_ulid(now_ms, rand(10)))
    if schema != SCHEMA:
        raise ValueError("unknown release schema")
    values, cal = noisy_counts(cols, policy)
    release_id = new_ulid(now_ms, rand(10))
    qh = query_sha256(policy)
    release = {
        "release_id": release_id,
        "node_id": node_id,
        "month": month,
        "schema": SCHEMA,
        "query_sha256": qh,
        "measure": cal.measure.value,
        "mechanism": cal.mechanism.value,
        "scale": format_decimal(cal.scale),
        "budget_spent": format_decimal(cal.budget_spent),
        "bounds": {"per_person_month": policy.per_person_month, "per_cell": policy.per_cell},
        "opendp_version": opendp_version(),
        "cells": dict(zip(CELL_KEYS, values, strict=True)),
    }
    body = wire_json(sign_release(release, signing_key=signing_key, key_version=key_version))
    return SignedRelease(release_id, month, body, canonical_bytes(body), cal, qh)


def _build_workload(
    cols: EncounterColumns, *, node_id: str, month: str, policy: ReleasePolicy,
    signing_key: nacl.signing.SigningKey, key_version: int, release_id: str,
) -> SignedRelease:
    values, cals = noisy_workload(cols, policy)
    qh = query_sha256(policy, WORKLOAD_SCHEMA)
    spent = sum((c.budget_spent for c in cals), Decimal(0))
    release = {
        "release_id": release_id,
        "node_id": node_id,
        "month": month,
        "schema": WORKLOAD_SCHEMA,
        "query_sha256": qh,
        "measure": policy.measure.value,
        "mechanism": policy.mechanism.value,
        "groups": {c.group: {"scale": format_decimal(c.scale),
                             "budget_spent": format_decimal(c.budget_spent)} for c in cals},
        "budget_spent": format_decimal(spent),
        "bounds": {"per_person_month": policy.per_person_month, "per_cell": policy.per_cell},
        "opendp_version": opendp_version(),
        "cells": dict(zip(WORKLOAD_KEYS, values, strict=True)),
    }
    body = wire_json(sign_release(release, signing_key=signing_key, key_version=key_version))
    return SignedRelease(release_id, month, body, canonical_bytes(body), None, qh, cals)


# --- months --------------------------------------------------------------------------------


def _parse_month(month: str) -> tuple[int, int]:
    if len(month) != 7 or month[4] != "-" or not (month[:4] + month[5:]).isdigit():
        raise ValueError("month must be YYYY-MM")
    y, m = int(month[:4]), int(month[5:])
    if not (1 <= m <= 12 and 1970 <= y <= 9999):
        raise ValueError("month must be YYYY-MM")
    return y, m


def month_bounds_ms(month: str) -> tuple[int, int]:
    """[start, end) of a UTC calendar month in epoch milliseconds."""
    y, m = _parse_month(month)
    start = datetime(y, m, 1, tzinfo=UTC)
    end = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def month_of_ms(ms: int) -> str:
    d = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return f"{d.year:04d}-{d.month:02d}"


def previous_month(month: str) -> str:
    y, m = _parse_month(month)
    return f"{y - (m == 1):04d}-{(m - 2) % 12 + 1:02d}"


