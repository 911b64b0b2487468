"""The interstate envelope (WIRE section 16): version 2 of the envelope, between networks.

Inside one network nothing changes: envelopes are `v: 1` with bare node ids and keep their
bytes and golden vectors. An envelope from a node of one network to a node of another is
`v: 2`, and differs from `v: 1` only by two fields present in both layers:

- `from_network`, `to_network`: network ids (`protocol.ids.NETWORK_ID_PATTERN`), different
  from each other; `from`/`to` stay bare node ids, so the qualified names are
  `<from_network>/<from>` and `<to_network>/<to>`;
- `roster` (outer) and `roster_version` (inner) name the *sender's* network roster, which
  the receiver holds as a foreign roster verified against the compact.

Both signatures (contexts `inner` and `outer`) cover the network fields, so a relay cannot
re-address an envelope to another network. A `v: 2` envelope whose two networks are equal
is `malformed`: one form per case.

Receivers resolve a foreign sender through an `InterstateResolver` (the compact and the
foreign rosters, `federation.foreign_rosters.ForeignRosters`): `check_network` answers
`unknown_network` / `network_not_in_compact`; `verify_key` additionally
`foreign_roster_invalid` (the network's roster held does not verify against the board the
current compact names) and the roster refusals; `check_roster` answers `roster_mismatch`.

This module holds the builder and the shared shapes; checking is
`protocol.envelope_interstate_check`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from protocol.canonical import MAX_SAFE_INT, canonical_bytes
from protocol.encoding import b64u, sha256_b64u
from protocol.envelope import Sender, body_json, is_ts, malformed, signed_outer
from protocol.errors import Code, ProtocolError
from protocol.ids import check_msg_id, check_network_id, check_node_id, qualified_name
from protocol.messages import MessageType, RosterRef
from protocol.sealing import pad, seal
from protocol.signing import Context, sign

__all__ = [
    "INTERSTATE_V",
    "InterstateOuter",
    "InterstateResolver",
    "OpenedInterstate",
    "build_interstate_envelope",
    "build_interstate_inner",
    "seal_interstate_outer",
]

INTERSTATE_V = 2


class InterstateResolver(Protocol):
    """A foreign network's membership, keys and roster (backed by the compact and the
    foreign rosters verified against it)."""

    def check_network(self, network_id: str) -> None:
        """Raise ProtocolError unknown_network / network_not_in_compact unless
        `network_id` is a member of the current compact."""
        ...

    def verify_key(self, network_id: str, node_id: str, key_id: str, at_ms: int) -> bytes:
        """The 32-byte Ed25519 key `key_id` of `<network_id>/<node_id>` valid at `at_ms`;
        raise ProtocolError unknown_network / network_not_in_compact /
        foreign_roster_invalid / unknown_sender / unknown_key / revoked_key otherwise."""
        ...

    def check_roster(self, network_id: str, version: int, sha256: str) -> None:
        """Raise ProtocolError roster_mismatch unless this roster version/hash of
        `network_id` is held (verified against the compact) and unexpired."""
        ...


@dataclass(frozen=True)
class InterstateOuter:
    """A checked `v: 2` outer envelope."""

    msg_id: str
    from_: str
    from_network: str
    to: str
    to_network: str
    created_ts: int
    expires_ts: int
    roster: RosterRef
    ct: str
    ct_sha256: str
    key_id: str

    @property
    def sender(self) -> str:
        """The qualified name of the sender, e.g. `tx/austin-fire`."""
        return qualified_name(self.from_network, self.from_)

    @property
    def recipient(self) -> str:
        return qualified_name(self.to_network, self.to)


@dataclass(frozen=True)
class OpenedInterstate:
    """A verified, decrypted `v: 2` envelope: the inner fields as plain values (`inner`),
    the body model and the signed inner bytes as received."""

    outer: InterstateOuter
    inner: dict[str, Any]
    msg_type: MessageType
    body: BaseModel
    inner_bytes: bytes
    body_json: dict[str, Any]


def _networks(from_network: str, to_network: str) -> None:
    check_network_id(from_network)
    check_network_id(to_network)
    if from_network == to_network:
        raise malformed("an interstate envelope joins two different networks")


def build_interstate_inner(
    *,
    sender: Sender,
    from_network: str,
    to_network: str,
    to: str,
    msg_type: MessageType,
    body: BaseModel | Mapping[str, Any],
    msg_id: str,
    created_ts: int,
    expires_ts: int,
    roster_version: int,
    thread_id: str | None = None,
    in_reply_to: str | None = None,
) -> tuple[bytes, bytes]:
    """Inner `v: 2` canonical bytes and their 64-byte `inner` signature."""
    try:
        msg_type = MessageType(msg_type)
    except ValueError as exc:
        raise ProtocolError(Code.UNKNOWN_TYPE, "unknown message type") from exc
    _networks(from_network, to_network)
    check_node_id(sender.node_id)
    check_node_id(to)
    check_msg_id(msg_id)
    for ref in (thread_id, in_reply_to):
        if ref is not None:
            check_msg_id(ref)
    if not (is_ts(created_ts) and is_ts(expires_ts)) or expires_ts < created_ts:
        raise malformed("times must be ms integers with expires_ts >= created_ts")
    if type(roster_version) is not int or not 1 <= roster_version <= MAX_SAFE_INT:
        raise malformed("roster version must be a positive integer")
    inner = {
        "v": INTERSTATE_V,
        "type": msg_type.value,
        "msg_id": msg_id,
        "from": sender.node_id,
        "from_network": from_network,
        "to": to,
        "to_network": to_network,
        "created_ts": created_ts,
        "expires_ts": expires_ts,
        "thread_id": thread_id,
        "in_reply_to": in_reply_to,
        "roster_version": roster_version,
        "body": body_json(msg_type, body),
    }
    inner_bytes = canonical_bytes(inner)
    return inner_bytes, sign(sender.signing_key, Context.INNER, inner_bytes)


def seal_interstate_outer(
    *,
    sender: Sender,
    from_network: str,
    to_network: str,
    to: str,
    recipient_enc_key: bytes,
    sealed_plaintext: bytes,
    msg_id: str,
    created_ts: int,
    expires_ts: int,
    roster: RosterRef,
    ephemeral_seed: bytes | None = None,
) -> bytes:
    """Pad and seal `sealed_plaintext`, wrap it in a signed `v: 2` outer envelope, return
    its canonical bytes (exposed for tests that build inconsistent layers)."""
    if not isinstance(roster, RosterRef):
        raise malformed("roster must be a RosterRef")
    _networks(from_network, to_network)
    ct = seal(pad(sealed_plaintext), recipient_enc_key, ephemeral_seed=ephemeral_seed)
    outer: dict[str, Any] = {
        "v": INTERSTATE_V,
        "msg_id": check_msg_id(msg_id),
        "from": check_node_id(sender.node_id),
        "from_network": from_network,
        "to": check_node_id(to),
        "to_network": to_network,
        "created_ts": created_ts,
        "expires_ts": expires_ts,
        "roster": {"version": roster.version, "sha256": roster.sha256},
        "ct": b64u(ct),
        "ct_sha256": sha256_b64u(ct),
    }
    return signed_outer(outer, sender)


def build_interstate_envelope(
    *,
    sender: Sender,
    from_network: str,
    to_network: str,
    to: str,
    recipient_enc_key: bytes,
    msg_type: MessageType,
    body: BaseModel | Mapping[str, Any],
    msg_id: str,
    created_ts: int,
    expires_ts: int,
    roster: RosterRef,
    thread_id: str | None = None,
    in_reply_to: str | None = None,
    ephemeral_seed: bytes | None = None,
) -> bytes:
    """A complete `v: 2` envelope from `<from_network>/<sender>` to `<to_network>/<to>`
    (`roster`: the sender's own network roster). Build once, store, resend the same bytes.
    `ephemeral_seed` is for test vectors only."""
    if not isinstance(roster, RosterRef):
        raise malformed("roster must be a RosterRef")
    inner_bytes, inner_sig = build_interstate_inner(
        sender=sender, from_network=from_network, to_network=to_network, to=to,
        msg_type=msg_type, body=body, msg_id=msg_id, created_ts=created_ts,
        expires_ts=expires_ts, roster_version=roster.version, thread_id=thread_id,
        in_reply_to=in_reply_to,
    )
    return seal_interstate_outer(
        sender=sender, from_network=from_network, to_network=to_network, to=to,
        recipient_enc_key=recipient_enc_key, sealed_plaintext=inner_sig + inner_bytes,
        msg_id=msg_id, created_ts=created_ts, expires_ts=expires_ts, roster=roster,
        ephemeral_seed=ephemeral_seed,
    )
