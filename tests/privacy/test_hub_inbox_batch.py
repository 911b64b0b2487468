"""Releases arriving through the real federation inbox are ingested as one batch (issue 16
item 3): the hub registers a batch handler for `aggregate_release`
(`hub.stats.release_inbox`), so every release of an inbound batch goes through one
`hub.stats.ingest.accept_batch` call inside the inbox's transaction. A bad release in the
batch (pure DP under a zCDP policy, a tampered signature, a conflicting second release) is
refused alone with its code and writes nothing; the good ones are stored, a repeat in the
same batch answers `duplicate`; a resend of the whole batch stores nothing more. Real hub
and node servers on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.stats import release_inbox
from hub.stats.aggregates import AggregateRelease
from node.privacy.release import build_release
from node.privacy.schema import ReleasePolicy
from protocol.messages import MessageType
from protocol.vocabulary import Measure
from tests.federation.helpers import envelope, put_batch
from tests.federation.network import Network, NodeHandle, make_network
from tests.privacy.synthetic import synthetic_columns
from tests.privacy.test_e2e_release import _count


@pytest.fixture(params=["sqlite", "postgres"])
async def net(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Network]:
    pg = request.getfixturevalue("pg_admin_url") if request.param == "postgres" else None
    network = await make_network(1, tmp_path=tmp_path, db=request.param, pg_admin_url=pg)
    yield network
    await network.close()


def _offer(net: Network, node: NodeHandle, month: str, seed: int,
           policy: ReleasePolicy | None = None) -> dict[str, Any]:
    pol = policy or ReleasePolicy.from_roster_policy(node.fed.state.policy)
    return build_release(synthetic_columns(40, 10, seed=seed), node_id=node.node_id,
                         month=month, policy=pol, signing_key=node.keys.signing_key,
                         key_version=node.keys.key_version, now_ms=net.clock.now_ms()).body


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch the hub's inbox handler ingests (the real function runs)."""
    sizes: list[int] = []
    real = release_inbox.accept_batch

    async def counting(conn: Any, offers: Any, **kw: Any) -> Any:
        sizes.append(len(offers))
        return await real(conn, offers, **kw)

    monkeypatch.setattr(release_inbox, "accept_batch", counting)
    return sizes


async def test_a_bad_release_in_an_inbound_batch_is_refused_alone(
        net: Network, monkeypatch: pytest.MonkeyPatch) -> None:
    a = net.nodes[0]
    sizes = _spy(monkeypatch)
    policy = ReleasePolicy.from_roster_policy(a.fed.state.policy)
    assert policy.measure is Measure.ZCDP
    pure = policy.model_copy(update={"measure": Measure.PURE_DP})
    tampered = _offer(net, a, "2026-03", 4)
    tampered["release"]["cells"] = {k: v + 1 for k, v in tampered["release"]["cells"].items()}
    bodies = [_offer(net, a, "2026-01", 1), _offer(net, a, "2026-02", 2, pure),
              tampered, _offer(net, a, "2026-04", 5)]
    envs = [envelope(net, a, net.hub, msg_type=MessageType.AGGREGATE_RELEASE, body=b)
            for b in bodies]
    repeat = envs[0]
    status, body = await put_batch(a, net.hub.url, net.hub.node_id, [*envs, repeat])
    assert status == 200, body
    got = [(r["status"], r.get("code")) for r in body["results"]]
    assert [s for s, _ in got] == ["accepted", "refused", "refused", "accepted", "duplicate"], got
    assert got[1][1] and got[2][1], got  # each refusal carries its stable code
    assert sizes == [4], sizes  # the four distinct releases in one ingest call
    assert await _count(net, AggregateRelease) == 2
    # The whole batch again (the sender missed our acks): stored results, nothing more.
    status, again = await put_batch(a, net.hub.url, net.hub.node_id, envs)
    assert status == 200
    assert [r["status"] for r in again["results"]] == [
        "duplicate", "refused", "refused", "duplicate"]
    assert await _count(net, AggregateRelease) == 2
    # A different second release of a stored month is refused alone, nothing changes.
    other = envelope(net, a, net.hub, msg_type=MessageType.AGGREGATE_RELEASE,
                     body=_offer(net, a, "2026-01", 9))
    fresh = envelope(net, a, net.hub, msg_type=MessageType.AGGREGATE_RELEASE,
                     body=_offer(net, a, "2025-12", 10))
    status, third = await put_batch(a, net.hub.url, net.hub.node_id, [other, fresh])
    assert [(r["status"], r.get("code")) for r in third["results"]][1] == ("accepted", None)
    assert third["results"][0]["status"] == "refused" and third["results"][0]["code"]
    assert await _count(net, AggregateRelease) == 3
