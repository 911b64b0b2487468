"""The demo's releases under shared aggregation (`peernet demo --aggregation shared`).

Each node records each seeded month as shares (`node.privacy.shared.record_shares`: the
truncated workload split mod 2^64, the ledger charged once, one share to the hub and one
sealed to the helper and relayed by the hub); then the hub runs each month's round with the
helper (`hub.stats.rounds`): both add their own noise to their share-sums and the hub
publishes each region's combined figures, which the board's statistics read.

What the two modes protect, said once in the demo's output (`MODES`): local releases keep
each node's noisy counts safe on their own (no one ever sees an un-noised count, even if
hub and helper collude), at the price of noise added once per node; shared aggregation adds
noise twice per region, so state figures are far tighter, and neither aggregator alone sees
any node's counts, but if the hub and the helper collude they see each node's truncated
counts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hub.stats.rounds_feature import ROUNDS
from node.core.appkeys import DB
from node.privacy.schema import ReleasePolicy
from node.privacy.shared import record_shares
from peernet.demo_network import HUB_ID, DemoNetwork
from protocol.messages import MessageType

__all__ = ["MODES", "make_shared"]

MODES = ("Shared aggregation: each agency's month leaves as two random-looking shares, one "
         "to the hub and one to the helper; each adds its own noise, so the state and "
         "regional figures carry two noises per region instead of one per agency. Neither "
         "server alone learns an agency's counts; if the hub and the helper collude they "
         "see each agency's (truncated) counts. Local releases (the default) never expose "
         "an un-noised count to anyone, at the price of much wider state intervals.")


async def make_shared(
    net: DemoNetwork, months: list[str], progress: Callable[[str], None]
) -> int:
    """Every node shares every month, then the hub runs each month's round; the count."""
    assert net.helper is not None and net.hub.app is not None
    helper = net.helper.node_id
    n = 0
    for s in net.nodes:
        assert s.app is not None
        fed = s.fed
        policy = ReleasePolicy.from_roster_policy(fed.state.policy)

        async def send(conn: Any, to_hub: dict[str, Any], to_helper: dict[str, Any],
                       fed: Any = fed) -> list[str]:
            return [await fed.send(conn, HUB_ID, MessageType.AGGREGATE_SHARE, to_hub),
                    await fed.send(conn, helper, MessageType.AGGREGATE_SHARE, to_helper)]

        for month in months:
            await record_shares(s.app[DB], node_id=s.node_id, month=month, policy=policy,
                                now_ms=net.clock.now_ms(), send=send)
            n += 1
    left = await net.settle()
    if left:
        raise RuntimeError(f"{left} share message(s) not acknowledged")
    rounds = net.hub.app[ROUNDS]
    for month in months:
        await rounds.run_once(month)
        left = await net.settle()
        if left:
            raise RuntimeError(f"the round of {month} did not finish ({left} messages left)")
    progress(f"{n} node-months shared: shares to the hub and (relayed) to the helper "
             f"{helper}, one round per month, each region's figures published by the hub")
    progress(MODES)
    return n
