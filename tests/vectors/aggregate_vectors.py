"""Golden vectors of shared aggregation (WIRE section 14): sample bodies of `aggregate_share`,
`aggregate_round` and `aggregate_result`, and `aggregate_shares.json` (a split with fixed
random bytes, the wire encoding of each share, and the combination back to the vector).

Every random byte comes from SHA-256 of a label, so the file is reproducible; another
implementation should decode both shares, add them mod 2^64 and read the vector back.
"""

from __future__ import annotations

import hashlib
from typing import Any

from protocol import shares
from protocol.canonical import canonical_bytes
from protocol.encoding import sha256_b64u
from protocol.ids import new_ulid
from protocol.messages import MessageType
from protocol.workload import GROUP_NAMES, SCHEMA, WORKLOAD_KEYS

__all__ = ["AGGREGATE_TYPES", "bodies", "build", "fixed_random", "sample_vector"]

AGGREGATE_TYPES = (MessageType.AGGREGATE_SHARE, MessageType.AGGREGATE_ROUND,
                   MessageType.AGGREGATE_RESULT)
_T0 = 1_767_225_600_000
_ROUND_ID = new_ulid(_T0 + 950, hashlib.sha256(b"ulid 950").digest()[:10])


def fixed_random(label: str) -> shares.RandomBytes:
    """A deterministic stand-in for the CSPRNG: SHA-256 counter-mode bytes of `label`."""

    def draw(n: int) -> bytes:
        out = b""
        i = 0
        while len(out) < n:
            out += hashlib.sha256(f"peernet/v1 vector {label} {i}".encode()).digest()
            i += 1
        return out[:n]

    return draw


def sample_vector() -> list[int]:
    """A truncated workload vector: small counts, all keys, `WORKLOAD_KEYS` order."""
    return [(7 * i + 3) % 11 for i in range(len(WORKLOAD_KEYS))]


def _split() -> tuple[list[int], list[int]]:
    return shares.split(sample_vector(), fixed_random("share agency-a 2025-12"))


_GROUPS = {"north": ["agency-a", "agency-b"], "south": ["agency-c"]}


def bodies() -> dict[MessageType, dict[str, Any]]:
    hub_share, helper_share = _split()
    noisy = shares.add(helper_share, shares.to_uint64([1] * len(WORKLOAD_KEYS)))
    return {
        MessageType.AGGREGATE_SHARE: {
            "month": "2025-12", "schema": SCHEMA, "share": shares.encode(hub_share),
            "bounds": {"per_person_month": 4, "per_cell": 1}, "measure": "zcdp",
        },
        MessageType.AGGREGATE_ROUND: {
            "round_id": _ROUND_ID, "month": "2025-12", "schema": SCHEMA, "groups": _GROUPS,
        },
        MessageType.AGGREGATE_RESULT: {
            "round_id": _ROUND_ID,
            "set_sha256": sha256_b64u(canonical_bytes(_GROUPS)),
            "results": {"north": {"sum": shares.encode(noisy)},
                        "south": {"missing": ["agency-c"]}},
            "scales": {g: "17.888543819998317" for g in GROUP_NAMES},
        },
    }


def build() -> dict[str, Any]:
    x = sample_vector()
    hub_share, helper_share = _split()
    return {
        "about": "x = vector (WORKLOAD_KEYS order); share_hub = r (little-endian uint64 "
        "from random_label's SHA-256 counter bytes), share_helper = (x - r) mod 2^64; each "
        "share on the wire is unpadded base64url of K little-endian uint64; decode both, "
        "add mod 2^64, read as int64: x.",
        "schema": SCHEMA,
        "keys": list(WORKLOAD_KEYS),
        "cases": [{
            "random_label": "share agency-a 2025-12",
            "vector": x,
            "share_hub": shares.encode(hub_share),
            "share_helper": shares.encode(helper_share),
            "negative": {"vector": [-5] * len(WORKLOAD_KEYS),
                         "uint64_first": shares.to_uint64([-5])[0],
                         "wire": shares.encode([-5] * len(WORKLOAD_KEYS))},
        }],
    }
