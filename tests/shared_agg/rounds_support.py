"""Helpers of the shared-round tests: seed a node's month, run its monthly job, start the
hub's round, read what was published."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select

from hub.stats.rounds import HubShare, Published, published_figures
from hub.stats.rounds_feature import ROUNDS
from node.accounts import users as accounts
from node.core.access import Principal
from node.core.context import NodeContext
from node.core.schemas import EncounterIn, UserIn
from node.core.vocabulary import (
    ActivationType,
    DurationBucket,
    Intervention,
    RecipientCategory,
    RecipientDiscipline,
    Role,
)
from node.privacy.runtime import run_once
from tests.shared_agg.network import SharedNetwork

MONTH = "2026-04"  # the network clock starts on 2026-05-28: April is due


async def seed(node: Any, n: int) -> None:
    """`n` April encounters, 9 recipients (at most 4 a month each: nothing truncated for
    n <= 36), all self-activated one-on-ones."""
    ctx = NodeContext.of(node.app)
    user = await accounts.create_user(ctx, None, UserIn(
        username="supporter", password="correct horse battery", role=Role.PEER_SUPPORTER))
    who = Principal(user.id, user.username, Role.PEER_SUPPORTER, user.team, "session")
    start = datetime(2026, 4, 2, 9, tzinfo=UTC)
    for i in range(n):
        await ctx_create(ctx, who, start + timedelta(hours=17 * i), i)


async def ctx_create(ctx: Any, who: Any, when: datetime, i: int) -> None:
    from node.records import encounters

    await encounters.create_encounter(ctx, who, EncounterIn(
        occurred_at=when, duration_bucket=DurationBucket.M15_30,
        activation_type=ActivationType.SELF, intervention=Intervention.ONE_ON_ONE,
        recipient_discipline=RecipientDiscipline.FIRE,
        recipient_category=RecipientCategory.OWN_AGENCY, recipient=f"E{i % 9:04d}",
        referral=None, notice_given=True))


async def monthly(net: SharedNetwork, node: Any) -> list[str]:
    return await run_once(node.db, node.fed, node_id=node.node_id, keys=node.keys,
                          now_ms=net.clock.now_ms())


async def hub_round(net: SharedNetwork) -> str | None:
    rid = await net.hub.app[ROUNDS].run_once()
    await net.settle()
    return rid


async def figures(net: SharedNetwork) -> dict[str, Published]:
    async with net.hub.db.read() as conn:
        return {p.region: p for p in await published_figures(conn, MONTH, MONTH)}


async def count(server: Any, table: Any) -> int:
    async with server.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def drop_hub_share(net: SharedNetwork, node_id: str) -> None:
    async with net.hub.db.write() as conn:
        await conn.execute(delete(HubShare).where(HubShare.node_id == node_id))
