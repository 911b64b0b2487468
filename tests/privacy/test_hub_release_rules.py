"""Issue 15 item 5 (hub side): a release for the current, unfinished month and a pure-DP
release under a zCDP policy are refused with stable codes, and nothing is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from hub.stats.aggregates import AggregateError, AggregateRelease, receive_release
from hub.stats.release_rules import measure_refusal, month_refusal
from node.privacy.release import build_release
from node.privacy.schema import ReleasePolicy
from protocol.messages import MessageType
from protocol.vocabulary import Measure
from tests.federation.helpers import envelope, put_batch
from tests.privacy.hub_fixtures import Keys, make_hub_store, release_body
from tests.privacy.synthetic import synthetic_columns
from tests.privacy.test_e2e_release import NetworkFactory, _count, network

__all__ = ["network"]

NOW = 1_790_000_000_000  # 2026-09-21


def test_rules() -> None:
    assert month_refusal("2026-09", NOW) == ("month_not_finished", month_refusal(
        "2026-09", NOW)[1])  # type: ignore[index]
    assert month_refusal("2026-10", NOW)[0] == "bad_month"  # type: ignore[index]
    assert month_refusal("2026-08", NOW) is None
    body = {"release": {"measure": "pure_dp"}}
    assert measure_refusal(body, "zcdp")[0] == "measure_mismatch"  # type: ignore[index]
    assert measure_refusal(body, "pure_dp") is None


async def test_current_month_refused_nothing_stored(db_url: str) -> None:
    engine = await make_hub_store(db_url)
    try:
        body = release_body("metro-fire", "2026-09", now_ms=NOW)
        with pytest.raises(AggregateError) as err:
            await receive_release(engine, body, sender="metro-fire", keys=Keys(["metro-fire"]),
                                  region="north", now_ms=NOW)
        assert err.value.code == "month_not_finished"
        async with engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(AggregateRelease)) == 0
    finally:
        await engine.dispose()


async def test_real_hub_refuses_pure_dp_under_zcdp_and_the_current_month(
    network: NetworkFactory,
) -> None:
    net = await network(1)
    a = net.nodes[0]
    policy = ReleasePolicy.from_roster_policy(a.fed.state.policy)
    assert policy.measure is Measure.ZCDP
    pure = policy.model_copy(update={"measure": Measure.PURE_DP})
    offers = [
        build_release(synthetic_columns(40, 10, seed=1), node_id=a.node_id, month="2026-04",
                      policy=pure, signing_key=a.keys.signing_key,
                      key_version=a.keys.key_version, now_ms=net.clock.now_ms()),
        build_release(synthetic_columns(40, 10, seed=2), node_id=a.node_id, month="2026-05",
                      policy=policy, signing_key=a.keys.signing_key,
                      key_version=a.keys.key_version, now_ms=net.clock.now_ms()),
    ]
    for offer in offers:
        env = envelope(net, a, net.hub, msg_type=MessageType.AGGREGATE_RELEASE,
                       body=offer.body)
        status, body = await put_batch(a, net.hub.url, net.hub.node_id, [env])
        assert status == 200
        assert body["results"][0]["status"] == "refused", body
    assert await _count(net, AggregateRelease) == 0
