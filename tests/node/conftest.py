"""Fixture factories for node tests: `make_node` starts a real node app (aiohttp test server
on an ephemeral port) over the `db_url` database with a FakeClock and seeded users."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from federation.clock import FakeClock
from federation.keystore import NodeKeys
from federation.passwords import MIN, PasswordHasher
from node.accounts.users import create_token, create_user
from node.core.access import Principal
from node.core.config import NodeSettings
from node.core.context import NodeContext
from node.core.pseudonym import Pseudonymizer
from node.core.schemas import TokenIn, UserIn
from node.core.vocabulary import Role
from node.web.app import create_app

# 2026-06-15 12:00 UTC
START_MS = 1_781_524_800_000
PASSWORD = "correct horse battery"

USERS = [
    ("admin", Role.ADMIN, "main"),
    ("coord", Role.COORDINATOR, "main"),
    ("sup1", Role.PEER_SUPPORTER, "main"),
    ("sup2", Role.PEER_SUPPORTER, "main"),
    ("audit", Role.AUDITOR, "main"),
    ("coord_b", Role.COORDINATOR, "b"),
    ("sup_b", Role.PEER_SUPPORTER, "b"),
]


@dataclass
class Node:
    client: TestClient[Any, Any]
    ctx: NodeContext
    clock: FakeClock
    settings: NodeSettings
    keys: NodeKeys
    users: dict[str, uuid.UUID] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def principal(self, who: str) -> Principal:
        role, team = next((r, t) for n, r, t in USERS if n == who)
        return Principal(self.users[who], who, role, team, "token")

    async def get(self, who: str, path: str, **kw: Any) -> tuple[int, Any]:
        r = await self.client.get(path, headers=self.auth(who), **kw)
        return r.status, await r.json()

    async def post(self, who: str, path: str, body: Any, **kw: Any) -> tuple[int, Any]:
        r = await self.client.post(path, json=body, headers=self.auth(who), **kw)
        return r.status, await r.json()

    async def count(self, table: str) -> int:
        from sqlalchemy import text

        async with self.ctx.db.read() as conn:
            return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


MakeNode = Callable[..., Awaitable[Node]]


def settings_for(tmp_path: Path, db_url: str, **kw: Any) -> NodeSettings:
    base: dict[str, Any] = {"node_id": "test-fire", "name": "Test Fire Dept",
                            "data_dir": tmp_path, "db_url": db_url}
    base.update(kw)
    return NodeSettings.load(None, **base)


@pytest.fixture
async def make_node(
    aiohttp_client: Any, tmp_path: Path, db_url: str
) -> AsyncIterator[MakeNode]:
    async def factory(seed: bool = True, **kw: Any) -> Node:
        settings = settings_for(tmp_path, db_url, **kw)
        clock = FakeClock(START_MS)
        keys = NodeKeys.generate()
        app = create_app(settings, clock=clock, keys=keys,
                         pseudonyms=Pseudonymizer(b"k" * 32), hasher=PasswordHasher(MIN))
        client = await aiohttp_client(app)
        node = Node(client, NodeContext.of(app), clock, settings, keys)
        if seed:
            for name, role, team in USERS:
                u = await create_user(node.ctx, None, UserIn(
                    username=name, password=PASSWORD, role=role, team=team))
                node.users[name] = u.id
                t = await create_token(node.ctx, u.id, TokenIn(label="test"))
                node.tokens[name] = t.token
        return node

    yield factory


def encounter(**kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "occurred_at": "2026-06-15T11:30:00Z",
        "duration_bucket": "15-30m",
        "activation_type": "self",
        "intervention": "one_on_one",
        "recipient_discipline": "fire",
        "recipient_category": "own_agency",
        "recipient": "E-1234",
        "topics": ["work_stress"],
        "notice_given": True,
    }
    body.update(kw)
    return body
