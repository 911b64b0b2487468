"""Golden vectors of the signed state statistics document (WIRE section 16.5,
`protocol.state_stats`): a valid document and refusals with their stable codes.

Regenerate with `.venv/bin/python -m tests.vectors.state_stats_vectors` (writes
tests/vectors/state_stats.json); tests/interstate/test_national_vectors.py checks the file
equals what this module builds and that a reader gives the listed answers. The hub key seed
is SHA-256('peernet/v1 vector hub-tx sign 1'), as in keys.json.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import nacl.signing

from protocol.canonical import canonical_bytes, parse_json
from protocol.encoding import b64u
from protocol.signing import Context, sign, signing_input
from protocol.state_stats import FIGURES, MonthFigures, StateStats, sign_state_stats

__all__ = ["PATH", "build", "hub_key"]

PATH = Path(__file__).with_name("state_stats.json")
_T = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def hub_key(name: str = "hub-tx") -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(
        hashlib.sha256(f"peernet/v1 vector {name} sign 1".encode()).digest())


def _doc() -> StateStats:
    n = len(FIGURES)
    est = tuple(float(10 * i) + 0.25 for i in range(n))
    est = (-3.5,) + est[1:]  # an estimate may be negative (noise)
    var = tuple(100.0 + i for i in range(n))
    cov = {"referrals/encounters": 0.0, "follow_ups_on_time/follow_ups_due": 1.125}
    return StateStats(
        network_id="tx", hub_id="hub-tx", issued_ts=_T, month_from="2025-11",
        month_to="2025-12",
        policy={"measure": "zcdp", "budget_per_node_year": "1", "per_person_month": 4,
                "per_cell": 1, "roster_version": 3},
        months=(MonthFigures("2025-11", 12, est, var, cov),
                MonthFigures("2025-12", 0, None, None, None)))


def _edited(signed: bytes, edit: Any) -> str:
    value = parse_json(signed)
    edit(value)
    return canonical_bytes(value).decode()


def build() -> dict[str, Any]:
    key = hub_key()
    signed = sign_state_stats(_doc(), key, 1)
    body = parse_json(signed)["state_statistics"]

    def tamper(v: Any) -> None:
        v["state_statistics"]["months"][0]["estimate"][0] = "-3.4"

    def other_net(v: Any) -> None:
        v["state_statistics"]["network_id"] = "hi"

    def float_fig(v: Any) -> None:
        v["state_statistics"]["months"][0]["variance"][0] = "1e2"

    def resigned(edit: Any) -> str:
        value = parse_json(signed)
        edit(value)
        value["signature"]["sig"] = b64u(sign(key, Context.STATE_STATS,
                                              canonical_bytes(value["state_statistics"])))
        return canonical_bytes(value).decode()

    def swap_months(v: Any) -> None:
        v["state_statistics"]["months"].reverse()

    def negative_variance(v: Any) -> None:
        v["state_statistics"]["months"][0]["variance"][1] = "-1"

    other_key = sign_state_stats(_doc(), hub_key("hub-evil"), 1).decode()
    return {
        "about": "Signed state statistics (WIRE 16.5). Verify with `hub_public` under key id "
                 "ed25519:1 for network tx, hub hub-tx, now_ms = issued_ts, range as given.",
        "hub_public": b64u(bytes(key.verify_key)),
        "now_ms": _T,
        "valid": {
            "signed": signed.decode(),
            "signing_input_b64u": b64u(signing_input(Context.STATE_STATS,
                                                     canonical_bytes(body))),
        },
        "refused": [
            {"why": "a figure changed after signing", "code": "bad_signature",
             "signed": _edited(signed, tamper)},
            {"why": "signed by a key the compact does not list", "code": "bad_signature",
             "signed": other_key},
            {"why": "network id edited", "code": "bad_signature",
             "signed": _edited(signed, other_net)},
            {"why": "a figure in exponent form", "code": "bad_signature",
             "signed": _edited(signed, float_fig)},
            {"why": "validly signed, months out of order", "code": "bad_body",
             "signed": resigned(swap_months)},
            {"why": "validly signed, a negative variance", "code": "bad_body",
             "signed": resigned(negative_variance)},
            {"why": "not canonical (a space)", "code": "not_canonical",
             "signed": signed.decode().replace('{"signature":', '{ "signature":', 1)},
        ],
    }


if __name__ == "__main__":  # pragma: no cover - regenerates the file
    PATH.write_text(json.dumps(build(), indent=2, ensure_ascii=False) + "\n")
