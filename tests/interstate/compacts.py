"""Test builders for interstate compacts: networks (a board, a hub, agencies each),
compact versions signed by chosen board members, and a resolver over plain dicts.

net = TestNetwork.make("tx"); hi = TestNetwork.make("hi")
v1 = sign_compact(compact_value([tx, hi], version=1, now=NOW), [tx, hi])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nacl.signing import SigningKey

from federation.compact_acceptance import CompactPin
from federation.keystore import NodeKeys
from federation.roster import NodeEntry, SignedRoster
from federation.roster_acceptance import BoardPin
from protocol.compact import SignedCompact, build_signed_compact, compact_signature
from protocol.encoding import b64u
from tests.federation.boards import DAY, TestBoard, node_entry

__all__ = ["DAY", "NOW", "TestNetwork", "compact_value", "next_value", "sign_compact"]

NOW = 1_780_000_000_000


@dataclass
class TestNetwork:
    network_id: str
    board: TestBoard
    hub_keys: NodeKeys
    agencies: dict[str, NodeKeys] = field(default_factory=dict)

    __test__ = False

    @classmethod
    def make(cls, network_id: str, n: int = 3, threshold: int = 2,
             agencies: tuple[str, ...] = ("agency-a",)) -> TestNetwork:
        return cls(network_id, TestBoard.make(n, threshold), NodeKeys.generate(),
                   {a: NodeKeys.generate() for a in agencies})

    @property
    def hub_id(self) -> str:
        return f"hub-{self.network_id}"

    def pin(self) -> CompactPin:
        return CompactPin(self.network_id, self.board.pin())

    def member(self) -> dict[str, Any]:
        return {
            "network_id": self.network_id,
            "name": f"Network {self.network_id.upper()}",
            "board": self.board.board().model_dump(mode="json"),
            "hub": {
                "hub_id": self.hub_id,
                "endpoint": f"https://{self.hub_id}.example.org",
                "keys": [{"kid": self.hub_keys.key_id, "sign": b64u(self.hub_keys.verify_key_bytes),
                          "enc": b64u(self.hub_keys.enc_public_bytes)}],
            },
        }

    def entries(self) -> list[NodeEntry]:
        hub = node_entry(self.hub_id, self.hub_keys, roles=["hub"])
        return [hub, *(node_entry(a, k) for a, k in sorted(self.agencies.items()))]

    def roster(self, version: int = 1, *, now: int = NOW,
               prev: SignedRoster | None = None) -> SignedRoster:
        return self.board.sign(self.board.roster(version, nodes=self.entries(), now=now,
                                                 prev=prev))

    def board_pin(self) -> BoardPin:
        return self.board.pin()


def compact_value(networks: list[TestNetwork], *, version: int = 1, now: int = NOW,
                  prev: SignedCompact | None = None, expires_in: int = 365 * DAY,
                  compact_id: str = "us-peer") -> dict[str, Any]:
    return {
        "v": 1, "compact_id": compact_id, "version": version,
        "prev_sha256": prev.sha256 if prev else None, "issued_ts": now,
        "expires_ts": now + expires_in,
        "networks": sorted((n.member() for n in networks), key=lambda m: m["network_id"]),
    }


def next_value(prev: SignedCompact, networks: list[TestNetwork], *, now: int = NOW,
               **changes: Any) -> dict[str, Any]:
    value = compact_value(networks, version=prev.version + 1, now=now, prev=prev,
                          compact_id=prev.compact.compact_id)
    value.update(changes)
    return value


def sign_compact(value: dict[str, Any], signers: list[TestNetwork],
                 only: dict[str, list[SigningKey]] | None = None) -> SignedCompact:
    """Signed by `threshold` keys of each network in `signers` (or the keys in `only`)."""
    unsigned = build_signed_compact(value)
    sigs = {}
    for net in signers:
        keys = (only or {}).get(net.network_id, net.board.keys[: net.board.threshold])
        sigs[net.network_id] = [compact_signature(k, unsigned.compact_bytes) for k in keys]
    for nid, keys in (only or {}).items():
        sigs.setdefault(nid, [compact_signature(k, unsigned.compact_bytes) for k in keys])
    return build_signed_compact(value, sigs)
