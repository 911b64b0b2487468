"""The interstate compact: the signed list of member networks (WIRE section 16, DESIGN 11).

A compact names every member network ("state") with its board (keys and threshold) and its
hub (id, endpoint, signing and encryption keys). It is shaped like the roster:

    {"compact": C, "signatures": {"<network_id>": [{"key": b64u, "sig": b64u}, ...], ...}}

    C = {"v": 1, "compact_id": str, "version": int >= 1, "prev_sha256": b64u | null,
         "issued_ts": ms, "expires_ts": ms,
         "networks": [{"network_id", "name", "board": {"keys", "threshold"},
                       "hub": {"hub_id", "endpoint", "keys": [{"kid", "sign", "enc"}]}}]}

`compact_bytes` are the canonical bytes of `C` exactly as received and `sha256` their
unpadded base64url SHA-256 (what `prev_sha256` of the next version names). Each member
board signs those bytes under context `compact`; a signature is filed under the network
whose board made it and counts only for that network's listed keys. Whether a signed
compact may replace the current one (thresholds, chain, freeze, rollback, split view) is
`federation.compact_acceptance`; this module only parses, builds and checks signatures.

Parsing failures are `ProtocolError(malformed)`; the federation layer answers them as
`bad_compact`. Asking a compact for a network it does not list is
`network_not_in_compact`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

import nacl.signing
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from protocol.canonical import MAX_SAFE_INT, canonical_bytes, canonical_bytes_of_parsed, parse_json
from protocol.encoding import b64u, sha256_b64u, unb64u
from protocol.errors import Code, ProtocolError
from protocol.ids import KeyId, NetworkId, NodeId, is_network_id
from protocol.signing import Context, sign, verify
from protocol.wire_types import SHA256_PATTERN, SIGNATURE_PATTERN

__all__ = [
    "COMPACT_ID_PATTERN",
    "MAX_NETWORKS",
    "Compact",
    "CompactBoard",
    "CompactHub",
    "CompactSignature",
    "HubKey",
    "MemberNetwork",
    "SignedCompact",
    "build_signed_compact",
    "compact_signature",
    "compact_signers",
    "parse_signed_compact",
]

COMPACT_ID_PATTERN = r"^[a-z][a-z0-9-]{1,62}$"
MAX_NETWORKS = 256
MAX_SIGNATURES_PER_NETWORK = 64

PublicKey = Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]
SigValue = Annotated[str, StringConstraints(pattern=SIGNATURE_PATTERN)]
Ts = Annotated[int, Field(ge=0, le=MAX_SAFE_INT)]
Name = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1F\x7F]+$")
]
# https, or plain http to a loopback host only (local test rigs and the demo).
Endpoint = Annotated[
    str,
    StringConstraints(
        max_length=500,
        pattern=r"^(https://[^\s/?#]+|http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]{1,5})?)"
        r"(/[^\s?#]*)?$",
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid", hide_input_in_errors=True)


def _unique(items: list[Any]) -> list[Any]:
    if len(set(items)) != len(items):
        raise ValueError("items must be unique")
    return items


class CompactBoard(_Model):
    keys: list[PublicKey] = Field(min_length=1, max_length=64)
    threshold: Annotated[int, Field(ge=1, le=64)]

    _keys_unique = field_validator("keys")(_unique)

    @model_validator(mode="after")
    def _threshold(self) -> Self:
        if self.threshold > len(self.keys):
            raise ValueError("threshold exceeds the number of board keys")
        return self


class HubKey(_Model):
    kid: KeyId
    sign: PublicKey
    enc: PublicKey


class CompactHub(_Model):
    hub_id: NodeId
    endpoint: Endpoint
    keys: list[HubKey] = Field(min_length=1, max_length=8)

    @model_validator(mode="after")
    def _kids(self) -> Self:
        _unique([k.kid for k in self.keys])
        return self


class MemberNetwork(_Model):
    """One member network: its board and its hub."""

    network_id: NetworkId
    name: Name
    board: CompactBoard
    hub: CompactHub

    @property
    def board_keys(self) -> frozenset[bytes]:
        return frozenset(unb64u(k) for k in self.board.keys)

    @property
    def threshold(self) -> int:
        return self.board.threshold

    @property
    def hub_id(self) -> str:
        return self.hub.hub_id

    @property
    def endpoint(self) -> str:
        return self.hub.endpoint

    @property
    def hub_sign_keys(self) -> dict[str, bytes]:
        """Key id -> 32-byte Ed25519 key of the hub (what its per-hop signatures use)."""
        return {k.kid: unb64u(k.sign) for k in self.hub.keys}

    @property
    def hub_enc_keys(self) -> dict[str, bytes]:
        """Key id -> 32-byte X25519 key of the hub."""
        return {k.kid: unb64u(k.enc) for k in self.hub.keys}


class Compact(_Model):
    v: Literal[1]
    compact_id: Annotated[str, StringConstraints(pattern=COMPACT_ID_PATTERN)]
    version: Annotated[int, Field(ge=1, le=MAX_SAFE_INT)]
    prev_sha256: Annotated[str, StringConstraints(pattern=SHA256_PATTERN)] | None
    issued_ts: Ts
    expires_ts: Ts
    networks: list[MemberNetwork] = Field(min_length=1, max_length=MAX_NETWORKS)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.expires_ts < self.issued_ts:
            raise ValueError("compact expires before it is issued")
        if (self.version == 1) != (self.prev_sha256 is None):
            raise ValueError("prev_sha256 is null exactly for version 1")
        _unique([n.network_id for n in self.networks])
        return self

    def has(self, network_id: str) -> bool:
        return any(n.network_id == network_id for n in self.networks)

    def network(self, network_id: str) -> MemberNetwork:
        """The member `network_id`; `network_not_in_compact` when it is not listed."""
        for n in self.networks:
            if n.network_id == network_id:
                return n
        raise ProtocolError(Code.NETWORK_NOT_IN_COMPACT, "network is not a member")

    def members(self) -> list[MemberNetwork]:
        return sorted(self.networks, key=lambda n: n.network_id)


class CompactSignature(_Model):
    key: PublicKey
    sig: SigValue


@dataclass(frozen=True)
class SignedCompact:
    """A parsed signed compact with the exact canonical bytes its signatures cover."""

    compact: Compact
    compact_value: dict[str, Any]
    compact_bytes: bytes
    sha256: str
    signatures: Mapping[str, tuple[CompactSignature, ...]]

    @property
    def version(self) -> int:
        return self.compact.version

    def to_bytes(self) -> bytes:
        """Canonical bytes of the whole document (what is stored and served)."""
        return canonical_bytes_of_parsed(
            {
                "compact": self.compact_value,
                "signatures": {
                    nid: [s.model_dump() for s in sigs]
                    for nid, sigs in sorted(self.signatures.items())
                },
            }
        )


def _malformed(detail: str) -> ProtocolError:
    return ProtocolError(Code.MALFORMED, detail)


def _validated(value: Any) -> Compact:
    try:
        return Compact.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise _malformed(
            f"compact does not match the schema at {loc or 'top'}: {first['msg']}"
        ) from None


def _signatures(value: Any) -> dict[str, tuple[CompactSignature, ...]]:
    if not isinstance(value, dict) or len(value) > MAX_NETWORKS:
        raise _malformed("signatures must be an object of network id -> list")
    out: dict[str, tuple[CompactSignature, ...]] = {}
    for nid, sigs in value.items():
        if not is_network_id(nid):
            raise _malformed("signatures are filed under network ids")
        if not isinstance(sigs, list) or len(sigs) > MAX_SIGNATURES_PER_NETWORK:
            raise _malformed("a network's signatures must be a list of at most 64")
        try:
            out[nid] = tuple(CompactSignature.model_validate(s) for s in sigs)
        except ValidationError:
            raise _malformed("a signature is not {key, sig} in base64url") from None
    return out


def parse_signed_compact(data: bytes) -> SignedCompact:
    """Parse a signed compact document strictly (signatures are not checked here)."""
    doc = parse_json(data)
    if not isinstance(doc, dict) or set(doc) != {"compact", "signatures"}:
        raise _malformed("expected exactly the fields compact and signatures")
    value = doc["compact"]
    if not isinstance(value, dict):
        raise _malformed("compact must be an object")
    compact = _validated(value)
    sigs = _signatures(doc["signatures"])
    cbytes = canonical_bytes_of_parsed(value)
    return SignedCompact(compact, value, cbytes, sha256_b64u(cbytes), sigs)


def build_signed_compact(
    compact: Compact | dict[str, Any],
    signatures: Mapping[str, Sequence[CompactSignature]] | None = None,
) -> SignedCompact:
    """A `SignedCompact` from a model (or plain value) built locally, e.g. by the board."""
    value = compact.model_dump(mode="json") if isinstance(compact, Compact) else compact
    model = _validated(value)
    cbytes = canonical_bytes(value)
    sigs = {nid: tuple(s) for nid, s in (signatures or {}).items()}
    return SignedCompact(model, value, cbytes, sha256_b64u(cbytes), sigs)


def compact_signature(key: nacl.signing.SigningKey, compact_bytes: bytes) -> CompactSignature:
    """One board member's signature over the canonical compact bytes."""
    value = sign(key, Context.COMPACT, compact_bytes)
    return CompactSignature(key=b64u(bytes(key.verify_key)), sig=b64u(value))


def compact_signers(
    signed: SignedCompact, network_id: str, allowed: frozenset[bytes]
) -> tuple[frozenset[bytes], int]:
    """(distinct `allowed` keys whose signature filed under `network_id` verifies over the
    compact bytes, number of signatures by `allowed` keys that do not verify)."""
    good: set[bytes] = set()
    broken = 0
    for s in signed.signatures.get(network_id, ()):
        key = unb64u(s.key)
        if key not in allowed or key in good:
            continue
        try:
            verify(key, Context.COMPACT, signed.compact_bytes, unb64u(s.sig))
        except ProtocolError:
            broken += 1
            continue
        good.add(key)
    return frozenset(good), broken
