"""Helpers for activation tests over `make_network`: the activation context of a node, users
and API tokens, and short-hands for the service calls each side makes."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from hub.relay.activation_log import list_entries
from node.accounts.users import create_token, create_user
from node.activation import responder as responding
from node.activation import views
from node.activation.api import ACTIVATIONS
from node.activation.context import ActivationContext
from node.activation.models import ActivationOut, OfferIn
from node.activation.runtime import sweep
from node.core.context import NodeContext
from node.core.schemas import TokenIn, UserIn
from node.core.vocabulary import Role
from protocol.vocabulary import ActivationState
from tests.federation.network import Network, NodeHandle

PASSWORD = "correct horse battery"


def actx(node: NodeHandle) -> ActivationContext:
    assert node.app is not None
    return node.app[ACTIVATIONS]


async def add_user(node: NodeHandle, username: str, role: Role) -> tuple[uuid.UUID, str]:
    assert node.app is not None
    ctx = NodeContext.of(node.app)
    u = await create_user(ctx, None, UserIn(username=username, password=PASSWORD, role=role,
                                            team="main"))
    t = await create_token(ctx, u.id, TokenIn(label="test"))
    return u.id, t.token


async def view(node: NodeHandle, aid: str, requester: str | None = None) -> ActivationOut:
    async with node.db.read() as conn:
        return await views.get(conn, actx(node), aid, requester)


async def state_of(node: NodeHandle, aid: str, requester: str | None = None) -> ActivationState:
    return (await view(node, aid, requester)).state


async def offer(node: NodeHandle, aid: str, requester: str, counts: dict[str, int],
                eta: int = 45) -> ActivationOut:
    async with node.db.write() as conn:
        return await responding.make_offer(conn, actx(node), aid, OfferIn.model_validate(
            {"disciplines": counts, "eta_minutes": eta, "conditions": []}), requester=requester)


async def run_sweep(node: NodeHandle) -> int:
    assert node.app is not None
    return await sweep(node.app)


async def hub_log(net: Network, aid: str) -> list[dict[str, Any]]:
    async with net.hub.db.read() as conn:
        rows = await list_entries(conn, activation_id=aid, limit=1000)
    return sorted(rows, key=lambda r: (r["ts"], r["received_ts"]))


async def rows(node: NodeHandle, table: Any) -> list[Any]:
    async with node.db.read() as conn:
        return list((await conn.execute(select(table))).all())
