"""Factories for protocol tests: deterministic nodes, a key directory, a roster checker and
`make_envelope`. Identities are the vector identities (tests/vectors/generate.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import nacl.public

from protocol import (
    Code,
    Context,
    MessageType,
    Opened,
    ProtocolError,
    RosterRef,
    Sender,
    b64u,
    build_envelope,
    canonical_bytes,
    key_id,
    open_envelope,
    seal,
    sha256_b64u,
    sign,
)
from tests.vectors.generate import (
    DAY,
    ROSTER,
    T0,
    enc_key,
    sample_bodies,
    sender,
    signing_key,
    ulid,
)

__all__ = [
    "DAY",
    "ROSTER",
    "T0",
    "Directory",
    "KnownRoster",
    "Node",
    "make_envelope",
    "make_node",
    "open_as",
    "sample_bodies",
    "ulid",
    "wrap_ct",
]


@dataclass(frozen=True)
class Node:
    node_id: str
    sender: Sender
    enc: nacl.public.PrivateKey

    @property
    def enc_public(self) -> bytes:
        return bytes(self.enc.public_key)


def make_node(node_id: str, version: int = 1) -> Node:
    return Node(node_id, sender(node_id, version), enc_key(node_id))


@dataclass
class Directory:
    """A `KeyResolver` over the vector identities; `revoked` holds (node, key_id) pairs."""

    keys: dict[str, dict[str, bytes]] = field(default_factory=dict)
    revoked: set[tuple[str, str]] = field(default_factory=set)
    calls: int = 0

    @classmethod
    def default(cls) -> Directory:
        d = cls()
        for node in ("agency-a", "agency-b", "agency-c", "hub-east"):
            d.keys[node] = {key_id(1): bytes(signing_key(node).verify_key)}
        d.keys["agency-a"][key_id(0)] = bytes(signing_key("agency-a", 0).verify_key)
        d.revoked.add(("agency-a", key_id(0)))
        return d

    def verify_key(self, node_id: str, key_id: str, at_ms: int) -> bytes:
        self.calls += 1
        if node_id not in self.keys:
            raise ProtocolError(Code.UNKNOWN_SENDER, "not in roster")
        if key_id not in self.keys[node_id]:
            raise ProtocolError(Code.UNKNOWN_KEY, "no such key")
        if (node_id, key_id) in self.revoked:
            raise ProtocolError(Code.REVOKED_KEY, "revoked")
        return self.keys[node_id][key_id]


@dataclass
class KnownRoster:
    version: int = ROSTER.version
    sha256: str = ROSTER.sha256

    def check_roster(self, version: int, sha256: str) -> None:
        if (version, sha256) != (self.version, self.sha256):
            raise ProtocolError(Code.ROSTER_MISMATCH, "unknown roster")


def make_envelope(
    src: str = "agency-a",
    dst: str = "agency-b",
    msg_type: MessageType = MessageType.ACTIVATION_UPDATE,
    body: Any = None,
    *,
    n: int = 100,
    created_ts: int = T0,
    expires_ts: int = T0 + DAY,
    roster: RosterRef = ROSTER,
    **kw: Any,
) -> bytes:
    return build_envelope(
        sender=sender(src),
        to=dst,
        recipient_enc_key=bytes(enc_key(dst).public_key),
        msg_type=msg_type,
        body=sample_bodies()[msg_type] if body is None else body,
        msg_id=ulid(n),
        created_ts=created_ts,
        expires_ts=expires_ts,
        roster=roster,
        **kw,
    )


def open_as(
    envelope: bytes | dict[str, Any],
    me: str = "agency-b",
    *,
    now_ms: int = T0,
    keys: Directory | None = None,
    roster: KnownRoster | None = None,
) -> Opened:
    return open_envelope(
        envelope,
        me=me,
        enc_key=enc_key(me),
        keys=keys or Directory.default(),
        roster=roster or KnownRoster(),
        now_ms=now_ms,
    )


def wrap_ct(
    src: Sender,
    to: str,
    ct: bytes,
    *,
    msg_id: str,
    created_ts: int = T0,
    expires_ts: int = T0 + DAY,
    roster: RosterRef = ROSTER,
    ct_sha256: str | None = None,
    extra: dict[str, Any] | None = None,
) -> bytes:
    """An outer envelope around arbitrary ciphertext, signed by `src` (written from the
    spec, independently of `protocol.envelope`)."""
    outer: dict[str, Any] = {
        "v": 1,
        "msg_id": msg_id,
        "from": src.node_id,
        "to": to,
        "created_ts": created_ts,
        "expires_ts": expires_ts,
        "roster": {"version": roster.version, "sha256": roster.sha256},
        "ct": b64u(ct),
        "ct_sha256": ct_sha256 or sha256_b64u(ct),
        **(extra or {}),
    }
    signature = sign(src.signing_key, Context.OUTER, canonical_bytes(outer))
    outer["sig"] = {"key_id": src.key_id, "value": b64u(signature)}
    return canonical_bytes(outer)


def seal_plain(plaintext: bytes, to: str) -> bytes:
    """Seal without padding (for bad-padding tests)."""
    return seal(plaintext, bytes(enc_key(to).public_key))
