"""Test builders for boards and rosters (used by the roster tests and by `network.py`).

board = TestBoard.make(n=3, threshold=2)
entry = node_entry("alpha-fd", keys, "http://127.0.0.1:1234")
signed = board.sign(board.roster(1, nodes=[entry], now=clock.now_ms()))
v2 = board.sign(board.next(signed, now=...))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nacl.signing import SigningKey

from federation.keystore import NodeKeys
from federation.roster import (
    Board,
    NodeEntry,
    Policy,
    Revocation,
    Roster,
    SignedRoster,
    build_signed,
    roster_signature,
)
from federation.roster_acceptance import BoardPin
from protocol.canonical import canonical_bytes
from protocol.encoding import b64u

DAY = 86_400_000


@dataclass
class TestBoard:
    keys: list[SigningKey]
    threshold: int

    __test__ = False  # not a pytest class

    @classmethod
    def make(cls, n: int = 3, threshold: int = 2) -> TestBoard:
        return cls([SigningKey.generate() for _ in range(n)], threshold)

    def board(self) -> Board:
        return Board(keys=[b64u(bytes(k.verify_key)) for k in self.keys], threshold=self.threshold)

    def pin(self) -> BoardPin:
        return BoardPin(frozenset(bytes(k.verify_key) for k in self.keys), self.threshold)

    def roster(
        self,
        version: int = 1,
        *,
        nodes: list[NodeEntry] | None = None,
        now: int,
        prev: SignedRoster | None = None,
        expires_in: int = 30 * DAY,
        revoked: list[Revocation] | None = None,
        board: Board | None = None,
        policy: Policy | None = None,
    ) -> Roster:
        return Roster(
            version=version,
            prev_sha256=prev.sha256 if prev else None,
            issued_ts=now,
            expires_ts=now + expires_in,
            board=board or self.board(),
            nodes=nodes or [],
            revoked=revoked or [],
            policy=policy or Policy(),
        )

    def next(self, prev: SignedRoster, *, now: int, **changes: Any) -> Roster:
        value = prev.roster.model_dump(mode="json")
        value.update(
            version=prev.version + 1,
            prev_sha256=prev.sha256,
            issued_ts=now,
            expires_ts=now + 30 * DAY,
        )
        for k, v in changes.items():
            value[k] = v.model_dump(mode="json") if hasattr(v, "model_dump") else v
        return Roster.model_validate(value)

    def sign(self, roster: Roster, signers: list[SigningKey] | None = None) -> SignedRoster:
        value = roster.model_dump(mode="json")
        rbytes = canonical_bytes(value)
        keys = self.keys[: self.threshold] if signers is None else signers
        return build_signed(value, [roster_signature(k, rbytes) for k in keys])


def node_entry(
    node_id: str,
    keys: NodeKeys,
    endpoint: str = "http://127.0.0.1:9",
    *,
    roles: list[str] | None = None,
    disciplines: list[str] | None = None,
    region: str = "north",
    valid_until: int | None = None,
) -> NodeEntry:
    sign_keys = {keys.key_id: {"key": b64u(keys.verify_key_bytes), "valid_until": valid_until}}
    old = {
        f"ed25519:{v}": {"key": b64u(bytes(k.verify_key)), "valid_until": 0}
        for v, k in keys.old_signing_keys.items()
    }
    return NodeEntry.model_validate(
        {
            "node_id": node_id,
            "name": node_id.replace("-", " ").title(),
            "disciplines": disciplines if disciplines is not None else ["fire", "ems"],
            "region": region,
            "roles": roles or ["agency"],
            "endpoint": endpoint,
            "sign_keys": sign_keys,
            "old_sign_keys": old,
            "enc_key": b64u(keys.enc_public_bytes),
        }
    )
