"""Fixture factories for the hub side: a key resolver, an aggregate store, signed releases."""

from __future__ import annotations

import hashlib
from typing import Any

import nacl.signing
from sqlalchemy.ext.asyncio import AsyncEngine

from federation.database import make_engine, migrate
from node.privacy.noise import EncounterColumns
from node.privacy.release import build_release
from node.privacy.schema import SCHEMA, ReleasePolicy
from protocol.errors import Code, ProtocolError
from tests.privacy.synthetic import synthetic_columns


def node_key(node_id: str) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(hashlib.sha256(node_id.encode()).digest())


class Keys:
    """KeyResolver over a fixed set of nodes (key version 1)."""

    def __init__(self, nodes: list[str]) -> None:
        self.nodes = {n: bytes(node_key(n).verify_key) for n in nodes}

    def verify_key(self, node_id: str, key_id: str, at_ms: int) -> bytes:
        if node_id not in self.nodes:
            raise ProtocolError(Code.UNKNOWN_SENDER, "not in roster")
        if key_id != "ed25519:1":
            raise ProtocolError(Code.UNKNOWN_KEY, "no such key")
        return self.nodes[node_id]


async def make_hub_store(url: str) -> AsyncEngine:
    engine = make_engine(url)
    await migrate(engine, "hub:migrations")
    return engine


def release_body(
    node_id: str,
    month: str,
    *,
    cols: EncounterColumns | None = None,
    policy: ReleasePolicy | None = None,
    now_ms: int = 1_790_000_000_000,
    seed: int = 0,
    schema: str = SCHEMA,
) -> dict[str, Any]:
    """A signed release body: v1 cells by default (the hub's v1 path; stored v1 releases),
    `schema=protocol.workload.SCHEMA` for the workload v2 nodes send now."""
    signed = build_release(
        cols if cols is not None else synthetic_columns(200, 60, seed=seed),
        node_id=node_id, month=month, policy=policy or ReleasePolicy(),
        signing_key=node_key(node_id), key_version=1, now_ms=now_ms, schema=schema,
    )
    return signed.body
