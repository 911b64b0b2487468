"""Which networks are peers, and their hubs' keys: a small interface the compact supplies.

The compact (`federation.compact_state`, WIRE section 16) lists each member network with its
hub id, endpoint and hub signing keys. This room needs
only those facts, so it codes against `PeerNetworks` (a Protocol). `StaticPeerNetworks`
serves tests and benchmarks; `hub.national.feature.CompactPeers` reads
`CompactState.current.members()` (no compact: no peers, the national view is this state
alone); `from_member` turns a compact member into a `Peer`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from protocol.encoding import unb64u

__all__ = ["Peer", "PeerNetworks", "StaticPeerNetworks", "from_member"]


@dataclass(frozen=True)
class Peer:
    """One member network as this room needs it: `hub_sign_keys` maps key ids to raw
    Ed25519 public keys."""

    network_id: str
    hub_id: str
    endpoint: str
    hub_sign_keys: Mapping[str, bytes] = field(default_factory=dict)


class PeerNetworks(Protocol):
    def own_network_id(self) -> str | None: ...

    def members(self) -> Sequence[Peer]: ...


@dataclass
class StaticPeerNetworks:
    own: str | None
    peers: list[Peer] = field(default_factory=list)

    def own_network_id(self) -> str | None:
        return self.own

    def members(self) -> Sequence[Peer]:
        return list(self.peers)


def from_member(m: Any) -> Peer:
    """A `Peer` from a compact member (`MemberNetwork`: `.network_id`, `.hub_id`,
    `.endpoint`, `.hub_sign_keys` as {kid: key} or [{"kid", "sign"}] with bytes or b64u)."""
    raw = m.hub_sign_keys
    keys: dict[str, bytes] = {}
    items = raw.items() if isinstance(raw, Mapping) else (
        (k["kid"], k["sign"]) if isinstance(k, Mapping) else (k.kid, k.sign) for k in raw)
    for kid, key in items:
        keys[str(kid)] = key if isinstance(key, bytes) else unb64u(str(key))
    return Peer(m.network_id, m.hub_id, m.endpoint, keys)
