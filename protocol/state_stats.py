"""The state statistics document: one network's published noisy figures, signed by its hub.

Why: national figures are the sum of the states' figures (DESIGN section 11). Each state's hub
already holds, per month, estimates and exact noise variances computed from the noisy
releases it received (hub.stats: post-processing only). It publishes those numbers, never a
release or a record, signed by its hub key, to the other hubs of the compact; a hub adds
them up. Nothing here spends privacy budget.

Document (canonical JSON, `protocol.canonical`):

    {"v": 1, "network_id": "tx", "hub_id": "hub-tx", "issued_ts": <ms>,
     "month_from": "2026-01", "month_to": "2026-12",
     "policy": {"measure": "zcdp", "budget_per_node_year": "1.0", "per_person_month": 4,
                "per_cell": 1, "roster_version": 3},
     "figures": ["encounters", "by_discipline:fire", ...],        # == FIGURES
     "months": [{"month": "2026-01", "nodes": 12,
                 "estimate": ["<dec>", ...], "variance": ["<dec>", ...],
                 "covariance": {"referrals/encounters": "<dec>",
                                "follow_ups_on_time/follow_ups_due": "<dec>"}},
                {"month": "2026-02", "nodes": 0, "estimate": null, "variance": null,
                 "covariance": null}, ...]}

- `months` lists every month from `month_from` to `month_to` once, in order; a month no
  agency reported has `nodes` 0 and null figures (never zeros: "no report" is not "none").
- `estimate[i]`, `variance[i]` belong to `figures[i]`; numbers are signed decimal strings
  (`DEC_PATTERN`, at most 6 fractional digits, no exponent) because canonical JSON carries
  no floats. Variances are >= 0. `covariance` holds the covariance of each rate's numerator
  and denominator (`RATE_PAIRS`), so a summed rate keeps the delta method exact.
- `policy` is what a reader needs to interpret the numbers: the measure, the yearly budget
  per node, the truncation bounds (a count is capped per person-month), and the roster
  version in force.

Signed form: `{"signature": {"key_id": "ed25519:<n>", "sig": b64u}, "state_statistics": doc}`,
the signature under context `state-stats` over `canonical_bytes(doc)`, by a hub signing key
the compact lists for `hub_id`. `open_state_stats` refuses, with nothing returned:
not canonical JSON (`malformed` / `not_canonical`), a wrong shape (`bad_body`), a key id the
peer does not list (`unknown_key`), a signature that does not verify (`bad_signature`), a
document naming another network or hub (`sender_mismatch`), one issued too far ahead or too
long ago (`from_future` / `expired`), or one for another month range (`bad_body`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import nacl.signing

from protocol.canonical import MAX_SAFE_INT, canonical_bytes, parse_canonical
from protocol.encoding import b64u, unb64u
from protocol.errors import Code, ProtocolError
from protocol.ids import is_key_id, is_node_id, key_id
from protocol.signing import Context, sign, verify
from protocol.workload import ACTIVATION_TYPES, DISCIPLINES, INTERVENTIONS, REFERRALS

__all__ = [
    "DEC_PATTERN",
    "FIGURES",
    "MAX_DOCUMENT_BYTES",
    "MAX_MONTHS",
    "RATE_PAIRS",
    "MonthFigures",
    "StateStats",
    "format_signed",
    "open_state_stats",
    "sign_state_stats",
]

FIGURES: tuple[str, ...] = (
    ("encounters",)
    + tuple(f"by_discipline:{d}" for d in DISCIPLINES)
    + tuple(f"by_intervention:{i}" for i in INTERVENTIONS)
    + tuple(f"by_activation_type:{a}" for a in ACTIVATION_TYPES)
    + ("referrals",)
    + tuple(f"referrals_by_target:{t}" for t in REFERRALS)
    + ("follow_ups_due", "follow_ups_on_time")
)
RATE_PAIRS: tuple[tuple[str, str], ...] = (
    ("referrals", "encounters"), ("follow_ups_on_time", "follow_ups_due"))
_COV_KEYS = tuple(f"{a}/{b}" for a, b in RATE_PAIRS)
MAX_MONTHS = 120
MAX_DOCUMENT_BYTES = 1 << 20
DEC_PATTERN = r"^-?(0|[1-9][0-9]{0,15})(\.[0-9]{0,5}[1-9])?$"
_DEC = re.compile(DEC_PATTERN[1:-1])
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
_NETWORK = re.compile(r"[a-z][a-z0-9-]{1,30}")
_MEASURES = frozenset({"zcdp", "pure_dp"})
_POLICY_KEYS = frozenset({"measure", "budget_per_node_year", "per_person_month", "per_cell",
                          "roster_version"})
_DOC_KEYS = frozenset({"v", "network_id", "hub_id", "issued_ts", "month_from", "month_to",
                       "policy", "figures", "months"})


def format_signed(x: float) -> str:
    """A float as a signed plain decimal with at most 6 fractional digits (`DEC_PATTERN`)."""
    text = f"{x:.6f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    if _DEC.fullmatch(text) is None:
        raise ProtocolError(Code.MALFORMED, "figure out of range")
    return text


def _bad(detail: str) -> ProtocolError:
    return ProtocolError(Code.BAD_BODY, detail)


def _months(start: str, end: str) -> list[str]:
    y, m = int(start[:4]), int(start[5:])
    out: list[str] = []
    while f"{y:04d}-{m:02d}" <= end and len(out) <= MAX_MONTHS:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


@dataclass(frozen=True)
class MonthFigures:
    """One month of one state: `estimate`/`variance` in `FIGURES` order (None: no report)."""

    month: str
    nodes: int
    estimate: tuple[float, ...] | None
    variance: tuple[float, ...] | None
    covariance: Mapping[str, float] | None

    def to_json(self) -> dict[str, Any]:
        if self.estimate is None or self.variance is None or self.covariance is None:
            return {"month": self.month, "nodes": self.nodes, "estimate": None,
                    "variance": None, "covariance": None}
        return {"month": self.month, "nodes": self.nodes,
                "estimate": [format_signed(x) for x in self.estimate],
                "variance": [format_signed(max(x, 0.0)) for x in self.variance],
                "covariance": {k: format_signed(self.covariance[k]) for k in _COV_KEYS}}


@dataclass(frozen=True)
class StateStats:
    network_id: str
    hub_id: str
    issued_ts: int
    month_from: str
    month_to: str
    policy: Mapping[str, Any]
    months: tuple[MonthFigures, ...]

    def to_json(self) -> dict[str, Any]:
        return {"v": 1, "network_id": self.network_id, "hub_id": self.hub_id,
                "issued_ts": self.issued_ts, "month_from": self.month_from,
                "month_to": self.month_to, "policy": dict(self.policy),
                "figures": list(FIGURES), "months": [m.to_json() for m in self.months]}


def sign_state_stats(doc: StateStats, key: nacl.signing.SigningKey, key_version: int) -> bytes:
    """The signed form's canonical bytes (checks the document's shape first)."""
    body = doc.to_json()
    _parse_doc(body)
    sig = sign(key, Context.STATE_STATS, canonical_bytes(body))
    return canonical_bytes({"signature": {"key_id": key_id(key_version), "sig": b64u(sig)},
                            "state_statistics": body})


def _dec(v: Any, *, nonneg: bool = False) -> float:
    if not isinstance(v, str) or _DEC.fullmatch(v) is None:
        raise _bad("figures are signed decimal strings")
    x = float(Decimal(v))
    if nonneg and x < 0:
        raise _bad("a variance is negative")
    return x


def _parse_month(raw: Any) -> MonthFigures:
    if not isinstance(raw, dict) or raw.keys() != {"month", "nodes", "estimate", "variance",
                                                    "covariance"}:
        raise _bad("a month entry has the wrong fields")
    nodes = raw["nodes"]
    if type(nodes) is not int or not 0 <= nodes <= 1_000_000:
        raise _bad("nodes must be a count")
    est, var, cov = raw["estimate"], raw["variance"], raw["covariance"]
    if nodes == 0:
        if est is not None or var is not None or cov is not None:
            raise _bad("a month without reports has null figures")
        return MonthFigures(raw["month"], 0, None, None, None)
    n = len(FIGURES)
    if not (isinstance(est, list) and isinstance(var, list) and len(est) == n == len(var)):
        raise _bad("estimate and variance list every figure")
    if not isinstance(cov, dict) or cov.keys() != set(_COV_KEYS):
        raise _bad("covariance names each rate pair")
    return MonthFigures(raw["month"], nodes, tuple(_dec(x) for x in est),
                        tuple(_dec(x, nonneg=True) for x in var),
                        {k: _dec(cov[k]) for k in _COV_KEYS})


def _parse_doc(doc: Any) -> StateStats:
    if not isinstance(doc, dict) or doc.keys() != _DOC_KEYS or doc["v"] != 1:
        raise _bad("not a v1 state statistics document")
    if not (isinstance(doc["network_id"], str) and _NETWORK.fullmatch(doc["network_id"])
            and is_node_id(doc["hub_id"])):
        raise _bad("bad network or hub id")
    ts = doc["issued_ts"]
    if type(ts) is not int or not 0 <= ts <= MAX_SAFE_INT:
        raise _bad("issued_ts must be integer milliseconds")
    start, end = doc["month_from"], doc["month_to"]
    if not (isinstance(start, str) and isinstance(end, str) and _MONTH.fullmatch(start)
            and _MONTH.fullmatch(end) and start <= end):
        raise _bad("bad month range")
    months = _months(start, end)
    if len(months) > MAX_MONTHS:
        raise _bad(f"at most {MAX_MONTHS} months")
    pol = doc["policy"]
    if not (isinstance(pol, dict) and pol.keys() == _POLICY_KEYS
            and pol["measure"] in _MEASURES and isinstance(pol["budget_per_node_year"], str)
            and _DEC.fullmatch(pol["budget_per_node_year"])
            and all(type(pol[k]) is int and pol[k] >= 0
                    for k in ("per_person_month", "per_cell", "roster_version"))):
        raise _bad("bad policy facts")
    if doc["figures"] != list(FIGURES):
        raise _bad("figures must be the v1 figure list")
    raw_months = doc["months"]
    if not isinstance(raw_months, list) or [
            m.get("month") if isinstance(m, dict) else None for m in raw_months] != months:
        raise _bad("months must list the range once, in order")
    return StateStats(doc["network_id"], doc["hub_id"], ts, start, end, dict(pol),
                      tuple(_parse_month(m) for m in raw_months))


def open_state_stats(
    data: bytes, *, keys: Mapping[str, bytes], network_id: str, hub_id: str,
    now_ms: int, max_age_ms: int, skew_ms: int = 300_000,
    month_range: Sequence[str] | None = None,
) -> StateStats:
    """Verify a signed document from the hub of `network_id` (module docstring for the
    refusals); `keys` maps the key ids the compact lists for that hub to public keys."""
    if not isinstance(data, bytes) or len(data) > MAX_DOCUMENT_BYTES:
        raise ProtocolError(Code.TOO_LARGE, "state statistics document too large")
    outer = parse_canonical(data)
    if not isinstance(outer, dict) or outer.keys() != {"signature", "state_statistics"}:
        raise _bad("not a signed state statistics document")
    sig = outer["signature"]
    if not (isinstance(sig, dict) and sig.keys() == {"key_id", "sig"}
            and is_key_id(sig["key_id"]) and isinstance(sig["sig"], str)):
        raise _bad("bad signature block")
    vk = keys.get(sig["key_id"])
    if vk is None:
        raise ProtocolError(Code.UNKNOWN_KEY, "the compact lists no such hub key")
    body = outer["state_statistics"]
    verify(vk, Context.STATE_STATS, canonical_bytes(body), unb64u(sig["sig"]))
    doc = _parse_doc(body)
    if doc.network_id != network_id or doc.hub_id != hub_id:
        raise ProtocolError(Code.SENDER_MISMATCH, "document of another network or hub")
    if doc.issued_ts > now_ms + skew_ms:
        raise ProtocolError(Code.FROM_FUTURE, "document issued in the future")
    if doc.issued_ts < now_ms - max_age_ms:
        raise ProtocolError(Code.EXPIRED, "document too old")
    if month_range is not None and (doc.month_from, doc.month_to) != tuple(month_range):
        raise _bad("document for another month range")
    return doc
