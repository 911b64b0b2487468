"""The signed roster document: the state board's list of members, keys and policy
(DESIGN section 5), its strict parsing and its signatures.

Document on the wire and on disk:

    {"roster": {...}, "signatures": [{"key": "<b64u 32-byte Ed25519 key>", "value": "<b64u>"}]}

Each signature (context `roster`) covers the canonical bytes of the `roster` value exactly as
received (never a re-serialized model). `roster.sha256` (the hash every envelope names) is the
unpadded base64url SHA-256 of those same bytes, and a version's `prev_sha256` is that hash of
the previous version.

Whether a signed roster may replace the current one is `federation.roster_acceptance`; the
node-info document a node hands the board is `federation.node_info`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Self

import nacl.signing
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from federation.errors import FedCode, FederationError
from protocol.canonical import MAX_SAFE_INT, canonical_bytes, canonical_bytes_of_parsed, parse_json
from protocol.encoding import DECIMAL_PATTERN, b64u, sha256_b64u, unb64u
from protocol.errors import ProtocolError
from protocol.ids import KeyId, NodeId
from protocol.signing import Context, sign, verify
from protocol.vocabulary import Discipline, Measure
from protocol.wire_types import SHA256_PATTERN, SIGNATURE_PATTERN
from protocol.workload import check_weights

__all__ = [
    "MAX_OLD_SIGN_KEYS",
    "ActivationRule",
    "Board",
    "NodeEntry",
    "NodeRole",
    "Policy",
    "PrivacyPolicy",
    "ReleaseSchedule",
    "Revocation",
    "Roster",
    "RosterSignature",
    "SignKey",
    "SignedRoster",
    "build_signed",
    "parse_signed_roster",
    "roster_signature",
    "signed_from_value",
]


# 32 bytes in unpadded base64url has the same shape as a SHA-256.
PublicKey = Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]
Sha256 = Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]
SigValue = Annotated[str, StringConstraints(pattern=SIGNATURE_PATTERN)]
Ts = Annotated[int, Field(ge=0, le=MAX_SAFE_INT)]
Name = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1F\x7F]+$")
]
Region = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Endpoint = Annotated[
    str, StringConstraints(max_length=500, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
]
Reason = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1F\x7F]+$")
]
Selector = Annotated[
    str,
    StringConstraints(
        pattern=r"^(\*|[a-z0-9][a-z0-9-]{2,62}|region:[a-z0-9][a-z0-9-]{0,62}|discipline:[a-z0-9_]{1,32})$"
    ),
]

def _member_of(cls: type[StrEnum]) -> Any:
    """A strict string that must be one of the enum's values (kept as a plain `str`)."""
    values = frozenset(m.value for m in cls)

    def check(value: str) -> str:
        if value not in values:
            raise ValueError(f"not a valid {cls.__name__}")
        return value

    return AfterValidator(check)


DisciplineField = Annotated[str, _member_of(Discipline)]
MeasureField = Annotated[str, _member_of(Measure)]
AggregationField = Annotated[str, StringConstraints(pattern=r"^(local|shared)$")]
GroupName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
DecimalStr = Annotated[str, StringConstraints(pattern=DECIMAL_PATTERN)]


class NodeRole(StrEnum):
    AGENCY = "agency"
    HUB = "hub"
    HELPER = "helper"  # the helper aggregator of shared aggregation (DESIGN 7.1 item 2)


NodeRoleField = Annotated[str, _member_of(NodeRole)]


def _unique(items: list[Any]) -> list[Any]:
    if len(set(items)) != len(items):
        raise ValueError("items must be unique")
    return items


class RosterModel(BaseModel):
    """Strict, frozen, exact field set (as the wire models)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid", hide_input_in_errors=True)


class Board(RosterModel):
    keys: list[PublicKey] = Field(min_length=1, max_length=64)
    threshold: Annotated[int, Field(ge=1, le=64)]

    _keys_unique = field_validator("keys")(_unique)

    @model_validator(mode="after")
    def _threshold(self) -> Self:
        if self.threshold > len(self.keys):
            raise ValueError("threshold exceeds the number of board keys")
        return self

    def key_bytes(self) -> frozenset[bytes]:
        return frozenset(unb64u(k) for k in self.keys)


# Old signing keys a roster entry keeps (to verify what they signed before a rotation).
MAX_OLD_SIGN_KEYS = 64


class SignKey(RosterModel):
    key: PublicKey
    valid_until: Ts | None  # inclusive; null: no end


class NodeEntry(RosterModel):
    node_id: NodeId
    name: Name
    disciplines: list[DisciplineField] = Field(max_length=len(Discipline))
    region: Region
    roles: list[NodeRoleField] = Field(min_length=1, max_length=len(NodeRole))
    endpoint: Endpoint
    sign_keys: dict[KeyId, SignKey] = Field(min_length=1, max_length=8)
    old_sign_keys: dict[KeyId, SignKey] = Field(max_length=MAX_OLD_SIGN_KEYS)
    enc_key: PublicKey

    _disciplines_unique = field_validator("disciplines")(_unique)
    _roles_unique = field_validator("roles")(_unique)

    @model_validator(mode="after")
    def _old_keys(self) -> Self:
        if set(self.sign_keys) & set(self.old_sign_keys):
            raise ValueError("a key id is both current and old")
        for sk in self.old_sign_keys.values():
            if sk.valid_until is None:
                raise ValueError("an old signing key needs valid_until")
        return self

    @property
    def is_hub(self) -> bool:
        return NodeRole.HUB in self.roles


class Revocation(RosterModel):
    key: PublicKey
    revoked_ts: Ts
    reason: Reason


class ActivationRule(RosterModel):
    """Who may request activation from whom. Selectors: `*`, a node id, `region:<r>`,
    `discipline:<d>`. A pair is allowed when some rule matches both sides."""

    requesters: list[Selector] = Field(min_length=1, max_length=256)
    responders: list[Selector] = Field(min_length=1, max_length=256)


class PrivacyPolicy(RosterModel):
    measure: MeasureField = Measure.ZCDP.value
    budget_per_node_year: Annotated[str, StringConstraints(pattern=DECIMAL_PATTERN)] = "1.0"
    per_person_month: Annotated[int, Field(ge=1, le=1_000)] = 4
    per_cell: Annotated[int, Field(ge=1, le=1_000)] = 1
    # Workload releases (protocol.workload, DESIGN 7.1). Absent (never null) means the
    # defaults: documented weights, local aggregation; older rosters keep their bytes.
    workload_weights: dict[GroupName, DecimalStr] | None = Field(
        default=None, max_length=64, exclude_if=lambda v: v is None,
    )
    aggregation: AggregationField | None = Field(default=None, exclude_if=lambda v: v is None)
    helper: NodeId | None = Field(default=None, exclude_if=lambda v: v is None)

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(
            k in data and data[k] is None for k in ("workload_weights", "aggregation", "helper")
        ):
            raise ValueError("workload_weights, aggregation and helper are omitted, never null")
        return data

    @model_validator(mode="after")
    def _workload(self) -> Self:
        if self.workload_weights is not None:
            check_weights(self.workload_weights)  # known groups, each > 0, sum exactly 1
        if (self.aggregation == "shared") != (self.helper is not None):
            raise ValueError("a helper is named exactly when aggregation is shared")
        return self


class ReleaseSchedule(RosterModel):
    day_of_month: Annotated[int, Field(ge=1, le=28)] = 5


class Policy(RosterModel):
    """Governance as data. Defaults are what `peernet board init` writes."""

    retention_max_days: Annotated[int, Field(ge=1, le=36_500)] = 1_095
    activation_rules: list[ActivationRule] = Field(
        default_factory=lambda: [ActivationRule(requesters=["*"], responders=["*"])],
        max_length=256,
    )
    privacy: PrivacyPolicy = Field(default_factory=PrivacyPolicy)
    release_schedule: ReleaseSchedule = Field(default_factory=ReleaseSchedule)


class Roster(RosterModel):
    version: Annotated[int, Field(ge=1, le=MAX_SAFE_INT)]
    prev_sha256: Sha256 | None
    issued_ts: Ts
    expires_ts: Ts
    board: Board
    nodes: list[NodeEntry] = Field(max_length=10_000)
    revoked: list[Revocation] = Field(max_length=10_000)
    policy: Policy

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.expires_ts < self.issued_ts:
            raise ValueError("roster expires before it is issued")
        if (self.version == 1) != (self.prev_sha256 is None):
            raise ValueError("prev_sha256 is null exactly for version 1")
        ids = [n.node_id for n in self.nodes]
        if len(set(ids)) != len(ids):
            raise ValueError("node ids must be unique")
        return self

    def node(self, node_id: str) -> NodeEntry | None:
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        return None

    def revoked_keys(self) -> frozenset[bytes]:
        return frozenset(unb64u(r.key) for r in self.revoked)


class RosterSignature(RosterModel):
    key: PublicKey
    value: SigValue


@dataclass(frozen=True)
class SignedRoster:
    """A parsed signed roster with the exact canonical bytes its signatures cover."""

    roster: Roster
    roster_value: dict[str, Any]
    roster_bytes: bytes
    sha256: str
    signatures: tuple[RosterSignature, ...]
    # (key bytes, b64u signature) -> verifies: each signature is checked once however many
    # rules (pinned board, previous board, own board, fetch then offer) count it.
    _checked: dict[tuple[bytes, str], bool] = field(
        default_factory=dict, compare=False, repr=False
    )
    _document: list[bytes] = field(default_factory=list, compare=False, repr=False)

    @property
    def version(self) -> int:
        return self.roster.version

    def signature_ok(self, key: bytes, value: str) -> bool:
        """Whether `value` (b64u) by `key` verifies over `roster_bytes` (memoised)."""
        ok = self._checked.get((key, value))
        if ok is None:
            try:
                verify(key, Context.ROSTER, self.roster_bytes, unb64u(value))
                ok = True
            except ProtocolError:
                ok = False
            self._checked[(key, value)] = ok
        return ok

    def to_bytes(self) -> bytes:
        """Canonical bytes of the whole document (what is stored and served; encoded once)."""
        if not self._document:
            self._document.append(canonical_bytes_of_parsed(
                {
                    "roster": self.roster_value,
                    "signatures": [s.model_dump() for s in self.signatures],
                }
            ))
        return self._document[0]


def _bad(message: str, field: str | None = None) -> FederationError:
    return FederationError(FedCode.BAD_ROSTER, message, field)


def _validated_roster(value: Any) -> Roster:
    try:
        return Roster.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise _bad(
            f"roster does not match the schema at {loc or 'top'}: {first['msg']}", loc
        ) from None


def parse_signed_roster(data: bytes) -> SignedRoster:
    """Parse a signed roster document strictly (signatures are not checked here)."""
    try:
        doc = parse_json(data)
    except ProtocolError as exc:
        raise _bad(f"not strict JSON: {exc.detail}") from None
    return signed_from_value(doc)


def signed_from_value(doc: Any) -> SignedRoster:
    """`parse_signed_roster` after its JSON step: `doc` is a value `parse_json` returned (or
    one put together from such values, as a roster delta is applied)."""
    if not isinstance(doc, dict) or set(doc) != {"roster", "signatures"}:
        raise _bad("expected exactly the fields roster and signatures")
    value, sigs = doc["roster"], doc["signatures"]
    if not isinstance(value, dict) or not isinstance(sigs, list) or len(sigs) > 256:
        raise _bad("roster must be an object and signatures a list")
    roster = _validated_roster(value)
    try:
        signatures = tuple(RosterSignature.model_validate(s) for s in sigs)
    except ValidationError:
        raise _bad("a signature is not {key, value} in base64url", "signatures") from None
    rbytes = canonical_bytes_of_parsed(value)
    return SignedRoster(roster, value, rbytes, sha256_b64u(rbytes), signatures)


def build_signed(
    roster: Roster | dict[str, Any], signatures: list[RosterSignature]
) -> SignedRoster:
    """A `SignedRoster` from a model (or plain value) built locally, e.g. by the board."""
    value = roster.model_dump(mode="json") if isinstance(roster, Roster) else roster
    model = _validated_roster(value)
    try:
        rbytes = canonical_bytes(value)
    except ProtocolError as exc:
        raise _bad(exc.detail) from None
    return SignedRoster(model, value, rbytes, sha256_b64u(rbytes), tuple(signatures))


def roster_signature(key: nacl.signing.SigningKey, roster_bytes: bytes) -> RosterSignature:
    """One board member's signature over the canonical roster bytes."""
    value = sign(key, Context.ROSTER, roster_bytes)
    return RosterSignature(key=b64u(bytes(key.verify_key)), value=b64u(value))
