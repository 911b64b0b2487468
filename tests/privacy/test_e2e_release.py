"""End to end through real servers: encounters logged on two nodes, each node's monthly
release, delivery through the outbox to the hub, statistics with intervals from the hub's
API; a resend after a lost ack changes nothing; a different second release for the same
node-month is refused over HTTP and its alarm is stored before the hub answers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from federation.outbox import AWAIT_ACK_MS
from federation.store import outbox
from hub.stats.aggregates import AggregateAlarm, AggregateRelease
from hub.stats.models import StatsDocument
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
    Referral,
    Role,
)
from node.privacy.ledger import ledger_entries
from node.privacy.release import build_release
from node.privacy.runtime import run_once
from node.privacy.schema import ReleasePolicy
from node.records import encounters
from protocol.messages import MessageType
from tests.federation.helpers import envelope, put_batch
from tests.federation.network import OPERATOR_TOKEN, Network, NodeHandle, make_network
from tests.privacy.synthetic import synthetic_columns

NetworkFactory = Callable[..., Awaitable[Network]]
AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
MONTH = "2026-04"  # the network's clock starts on 2026-05-28: April's release is due


@pytest.fixture
async def network(tmp_path: Path) -> AsyncIterator[NetworkFactory]:
    """`await network(n)`: a real hub and n real nodes (`make_network`), closed after."""
    made: list[Network] = []

    async def factory(n: int) -> Network:
        sub = tmp_path / f"net{len(made)}"
        sub.mkdir()
        made.append(await make_network(n, tmp_path=sub))
        return made[-1]

    yield factory
    for net in made:
        await net.close()


async def _seed(node: NodeHandle, n: int) -> None:
    """`n` encounters in April through the node's own services (a supporter logs them)."""
    assert node.app is not None
    ctx = NodeContext.of(node.app)
    user = await accounts.create_user(ctx, None, UserIn(
        username="supporter", password="correct horse battery", role=Role.PEER_SUPPORTER))
    who = Principal(user.id, user.username, Role.PEER_SUPPORTER, user.team, "session")
    start = datetime(2026, 4, 2, 9, tzinfo=UTC)
    disciplines = list(RecipientDiscipline)
    for i in range(n):
        await encounters.create_encounter(ctx, who, EncounterIn(
            occurred_at=start + timedelta(hours=17 * i),
            duration_bucket=DurationBucket.M15_30,
            activation_type=ActivationType.SELF,
            intervention=Intervention.ONE_ON_ONE,
            recipient_discipline=disciplines[i % 3],
            recipient_category=RecipientCategory.OWN_AGENCY,
            recipient=f"E{i % 9:04d}",
            referral=Referral.EAP if i % 4 == 0 else None,
            notice_given=True,
        ))


async def _release(node: NodeHandle, net: Network) -> list[str]:
    assert node.app is not None
    return await run_once(node.db, node.fed, node_id=node.node_id, keys=node.keys,
                          now_ms=net.clock.now_ms())


async def _stats(net: Network, query: str = f"month_from={MONTH}&month_to={MONTH}") -> Any:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{net.hub.url}/api/v1/stats?{query}", headers=AUTH) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()


async def _count(net: Network, table: Any) -> int:
    async with net.hub.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_two_nodes_release_and_the_hub_answers_with_intervals(
    network: NetworkFactory,
) -> None:
    net = await network(2)
    a, b = net.nodes
    await _seed(a, 24)
    await _seed(b, 12)
    [ra] = await _release(a, net)
    [rb] = await _release(b, net)
    await net.settle()

    doc = await _stats(net)
    StatsDocument.model_validate(doc)  # the documented response model, strictly
    [april] = doc["months"]
    assert april["month"] == MONTH and april["nodes_reporting"] == 2
    enc = april["encounters"]
    low, high = enc["interval"]
    assert low < enc["estimate"] < high and enc["se"] > 0
    # The noise is calibrated, not huge: 36 encounters are well inside a few standard errors.
    assert abs(enc["estimate"] - 36) < 6 * enc["se"]
    # A rate is defined exactly when its (noisy) denominator is positive.
    assert (april["referral_rate"] is None) == (enc["estimate"] <= 0)
    async with net.hub.db.read() as conn:
        stored = {r.node_id: r.release_id for r in await conn.execute(
            select(AggregateRelease.node_id, AggregateRelease.release_id))}
    assert stored == {a.node_id: ra, b.node_id: rb}
    # Both nodes' outbox rows are done: the hub's signed ack came back end to end.
    for n in (a, b):
        async with n.db.read() as conn:
            states = [r.state for r in await conn.execute(
                select(outbox.c.state).where(outbox.c.msg_type == "aggregate_release"))]
        assert states == ["done"]
    # By region: the roster puts agency-1 in the north, agency-2 in the south.
    north = await _stats(net, f"month_from={MONTH}&month_to={MONTH}&region=north")
    assert north["months"][0]["nodes_reporting"] == 1


async def test_resend_after_a_lost_ack_makes_no_second_release(network: NetworkFactory) -> None:
    net = await network(2)
    a = net.nodes[0]
    await _seed(a, 10)
    [release_id] = await _release(a, net)
    await a.fed.run_once()  # delivered to the hub, which queues its ack ...
    await a.stop()  # ... but the node goes down before the ack arrives
    await net.settle()
    assert await _count(net, AggregateRelease) == 1

    await a.start()  # restart: the outbox replays the unacknowledged row
    assert await _release(a, net) == []  # the release pass makes and queues nothing new
    [entry] = await ledger_entries(a.db)
    assert entry.release_id == release_id
    net.clock.advance(AWAIT_ACK_MS + 60_000)
    assert await a.fed.run_once() >= 1  # the node resends the same bytes (hub still waiting)
    net.clock.advance(20 * 60_000)
    await net.settle()  # the hub answers `duplicate` and acks again; now the ack lands

    assert await _count(net, AggregateRelease) == 1
    assert await _count(net, AggregateAlarm) == 0
    async with a.db.read() as conn:
        rows = (await conn.execute(select(outbox.c.state, outbox.c.attempts).where(
            outbox.c.msg_type == "aggregate_release"))).all()
    assert [r.state for r in rows] == ["done"] and rows[0].attempts >= 2  # really resent
    assert (await _stats(net))["months"][0]["nodes_reporting"] == 1


async def test_a_different_second_release_is_refused_and_raises_an_alarm(
    network: NetworkFactory,
) -> None:
    net = await network(2)
    a = net.nodes[0]
    await _seed(a, 10)
    await _release(a, net)
    await net.settle()
    before = await _stats(net)

    # The same node signs a second, different April release (fresh noise) and sends it.
    policy = ReleasePolicy.from_roster_policy(a.fed.state.policy)
    second = build_release(synthetic_columns(40, 10, seed=5), node_id=a.node_id, month=MONTH,
                           policy=policy, signing_key=a.keys.signing_key,
                           key_version=a.keys.key_version, now_ms=net.clock.now_ms())
    env = envelope(net, a, net.hub, msg_type=MessageType.AGGREGATE_RELEASE, body=second.body)
    status, body = await put_batch(a, net.hub.url, net.hub.node_id, [env])
    assert status == 200
    [result] = body["results"]
    assert (result["status"], result["code"]) == ("refused", "bad_body")

    # The alarm is stored by the time the hub answered; nothing else changed.
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{net.hub.url}/api/v1/stats/alarms", headers=AUTH) as resp:
            assert resp.status == 200
            [alarm] = (await resp.json())["alarms"]
    assert alarm["kind"] == "conflicting_release" and alarm["node_id"] == a.node_id
    assert alarm["month"] == MONTH and alarm["offered_release_id"] == second.release_id
    assert await _count(net, AggregateRelease) == 1
    assert await _stats(net) == before

    # Sending the same offer again is the stored refusal: no second alarm.
    status, body = await put_batch(a, net.hub.url, net.hub.node_id, [env])
    assert body["results"][0]["status"] == "refused"
    assert await _count(net, AggregateAlarm) == 1


async def test_stats_api_refuses_bad_input_and_wrong_roles(network: NetworkFactory) -> None:
    net = await network(1)
    url = net.hub.url + "/api/v1/stats"
    async with aiohttp.ClientSession() as http:
        for query, field in [("month_from=2026-13", "month_from"), ("colour=blue", "colour"),
                             ("discipline=pilots", "discipline"),
                             ("region=a&region=b", "region"),
                             ("month_from=2026-05&month_to=2026-01", "month_from")]:
            async with http.get(f"{url}?{query}", headers=AUTH) as resp:
                err = (await resp.json())["error"]
                assert (resp.status, err["code"], err["field"]) == (400, "invalid_input", field)
        async with http.get(url) as resp:
            assert resp.status == 401
        async with http.get(url, headers={"Authorization": f"Bearer {uuid.uuid4().hex}"}) as r:
            assert (r.status, (await r.json())["error"]["code"]) == (401, "unauthenticated")
