"""`peernet node release --month` in a shared network (SQLite and PostgreSQL): the month is
split and its two shares queued in the node's outbox (ledger scale `shared`), never a local
release; the running node then delivers them, the hub and the helper each store one share,
and the CLI again makes nothing new."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from federation.clock import SystemClock
from federation.settings import write_config
from helper.store import HelperShare
from hub.stats.aggregates import AggregateRelease
from hub.stats.rounds import HubShare
from node.core.pseudonym import create_key_file
from node.privacy.ledger import LedgerRow
from peernet.cli import main
from tests.shared_agg.conftest import SharedFactory
from tests.shared_agg.rounds_support import MONTH, count, seed

PHRASE = "node cli passphrase 15"


async def test_release_cli_in_a_shared_network_sends_shares(
    shared_net: SharedFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    net = await shared_net(1)
    # The CLI reads the wall clock; here it reads the network's (May 2026), as a node would.
    monkeypatch.setattr(SystemClock, "now_ms", lambda _self: net.clock.now_ms())
    a = net.nodes[0]
    await seed(a, 8)
    await a.stop()
    assert a.settings is not None
    a.keys.save(a.settings.key_path, PHRASE)
    create_key_file(a.settings.pseudonym_key_path, PHRASE)
    cfg = tmp_path / "node.toml"
    write_config(cfg, a.settings.to_toml())

    def release() -> str:
        out = CliRunner().invoke(main, ["node", "release", "--month", MONTH, "--config",
                                        str(cfg)], env={"PEERNET_PASSPHRASE": PHRASE})
        assert out.exit_code == 0, out.output
        return out.output

    first = await asyncio.to_thread(release)
    assert 'recorded' in first and '"scale": "shared"' in first
    await a.start()
    await net.settle()
    assert await count(net.hub, HubShare) == 1
    assert await count(net.helper, HelperShare) == 1
    assert await count(net.hub, AggregateRelease) == 0
    await a.stop()
    again = await asyncio.to_thread(release)
    assert 'already recorded' in again
    await a.start()
    async with a.db.read() as conn:
        rows = (await conn.execute(select(LedgerRow.scale))).all()
    assert [r.scale for r in rows] == ["shared"]
