"""Golden vectors of the signed roster (docs/WIRE.md §13): `roster.json`.

A board of three keys (threshold 2, seeds from `generate._secret("board <i>")`); version 1
lists a hub and two agencies and is signed by board keys 1 and 2; version 2 names version 1's
hash, adds a third agency, rotates agency-a to key version 2 (the old key kept until
`valid_until`), revokes an unrelated key and is signed by board keys 2 and 3. Each version
records the `roster` value, its canonical bytes (the bytes the signatures and `sha256`
cover), the signatures, and the whole document's canonical bytes (what a server serves at
`GET /fed/v1/roster/{version}`). Ed25519 is deterministic, so every byte is reproducible.
"""

from __future__ import annotations

from typing import Any

import nacl.signing

from protocol import Context, b64u, canonical_bytes, sha256_b64u, sign
from tests.vectors.generate import DAY, T0, _secret, enc_key, signing_key


def board_key(i: int) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(_secret(f"board {i}"))


def _pub(key: nacl.signing.SigningKey) -> str:
    return b64u(bytes(key.verify_key))


def _entry(node_id: str, *, roles: list[str], disciplines: list[str], region: str,
           version: int = 1, old_until: int | None = None) -> dict[str, Any]:
    old = {} if old_until is None else {
        f"ed25519:{v}": {"key": _pub(signing_key(node_id, v)), "valid_until": old_until}
        for v in range(1, version)
    }
    return {
        "node_id": node_id,
        "name": node_id.replace("-", " ").title(),
        "disciplines": disciplines,
        "region": region,
        "roles": roles,
        "endpoint": f"https://{node_id}.example.org",
        "sign_keys": {f"ed25519:{version}": {"key": _pub(signing_key(node_id, version)),
                                             "valid_until": None}},
        "old_sign_keys": old,
        "enc_key": b64u(bytes(enc_key(node_id).public_key)),
    }


_POLICY = {
    "retention_max_days": 1095,
    "activation_rules": [{"requesters": ["*"], "responders": ["*"]}],
    "privacy": {"measure": "zcdp", "budget_per_node_year": "1.0", "per_person_month": 4,
                "per_cell": 1},
    "release_schedule": {"day_of_month": 5},
}


def _signed(value: dict[str, Any], signers: list[int]) -> dict[str, Any]:
    rbytes = canonical_bytes(value)
    sigs = [{"key": _pub(board_key(i)),
             "value": b64u(sign(board_key(i), Context.ROSTER, rbytes))} for i in signers]
    return {
        "signed_by": signers,
        "roster": value,
        "roster_canonical": rbytes.decode("utf-8"),
        "sha256": sha256_b64u(rbytes),
        "signatures": sigs,
        "document": canonical_bytes({"roster": value, "signatures": sigs}).decode("utf-8"),
    }


def build() -> dict[str, Any]:
    board = {"keys": [_pub(board_key(i)) for i in (1, 2, 3)], "threshold": 2}
    v1: dict[str, Any] = {
        "version": 1,
        "prev_sha256": None,
        "issued_ts": T0,
        "expires_ts": T0 + 30 * DAY,
        "board": board,
        "nodes": [
            _entry("hub-east", roles=["hub"], disciplines=[], region="east"),
            _entry("agency-a", roles=["agency"], disciplines=["fire", "ems"], region="east"),
            _entry("agency-b", roles=["agency"], disciplines=["law_enforcement"],
                   region="east"),
        ],
        "revoked": [],
        "policy": _POLICY,
    }
    first = _signed(v1, [1, 2])
    v2 = {
        **v1,
        "version": 2,
        "prev_sha256": first["sha256"],
        "issued_ts": T0 + DAY,
        "expires_ts": T0 + 31 * DAY,
        "nodes": [
            v1["nodes"][0],
            _entry("agency-a", roles=["agency"], disciplines=["fire", "ems"], region="east",
                   version=2, old_until=T0 + 8 * DAY),
            v1["nodes"][2],
            _entry("agency-c", roles=["agency"], disciplines=["dispatch_911"], region="west"),
        ],
        "revoked": [{"key": _pub(signing_key("agency-z")), "revoked_ts": T0 + DAY,
                     "reason": "key lost"}],
    }
    return {
        "description": "signed roster versions 1 and 2 (WIRE.md §13); signature input is "
                       "b'peernet/v1/roster\\x00' + roster_canonical",
        "board_seeds": {str(i): b64u(_secret(f"board {i}")) for i in (1, 2, 3)},
        "pinned": board,
        "versions": [first, _signed(v2, [2, 3])],
    }
