"""The node keeps split-view alarms too: `peernet node alarm list|ack` on a real node database
(SQLite and PostgreSQL). An edited roster offered to the node raises nothing; a validly
signed twin raises one alarm with a reason; acknowledging it records who, when and the note
on the alarm and an `alarm.acknowledge` entry in the node's audit log; bad input changes
nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from federation.clock import FakeClock
from federation.database import make_engine, migrate
from federation.errors import FederationError
from federation.roster import parse_signed_roster
from federation.roster_sync import RosterStore
from federation.store import alarms
from node.cli import node_group
from node.core import audit
from node.core.config import NodeSettings
from tests.federation.boards import TestBoard

NOW = 1_780_000_000_000


def _cli(args: list[str]) -> Result:
    return CliRunner().invoke(node_group, args)


def _seed(db_url: str) -> None:
    async def go() -> None:
        engine = make_engine(db_url)
        try:
            await migrate(engine, "node:migrations")
            b = TestBoard.make(3, 2)
            store = RosterStore(engine, FakeClock(NOW), b.pin())
            v1 = b.sign(b.roster(now=NOW))
            await store.accept([v1])
            doc = json.loads(v1.to_bytes())
            doc["roster"]["expires_ts"] += 1
            for bad in (parse_signed_roster(json.dumps(doc).encode()),
                        b.sign(b.roster(now=NOW + 1))):
                with pytest.raises(FederationError):
                    await store.accept([bad], source="agency-7")
        finally:
            await engine.dispose()

    asyncio.run(go())


def _state(db_url: str) -> tuple[list[Any], int]:
    async def go() -> tuple[list[Any], int]:
        engine = make_engine(db_url)
        try:
            async with engine.connect() as conn:
                rows = list((await conn.execute(select(alarms))).all())
                n = len((await conn.execute(select(audit._entries.c.seq).where(
                    audit._entries.c.action == "alarm.acknowledge"))).all())
                return rows, n
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_node_alarm_list_and_audited_ack(tmp_path: Path, db_url: str) -> None:
    _seed(db_url)
    cfg = tmp_path / "node.toml"
    cfg.write_text(NodeSettings.load(None, node_id="agency-1", name="Agency 1",
                                     data_dir=tmp_path, db_url=db_url).to_toml(),
                   encoding="utf-8")
    [alarm] = json.loads(_cli(["alarm", "list", "--config", str(cfg), "--json"]).output)["alarms"]
    assert alarm["active"] and alarm["source"] == "agency-7"  # one: the edited copy raised none
    assert "both claim version 1" in alarm["reason"]
    before = _state(db_url)
    for args in (["999", "--note", "x"], [str(alarm["id"]), "--note", " "]):
        res = _cli(["alarm", "ack", "--config", str(cfg), *args])
        assert res.exit_code == 1 and ("not_found" in res.output or "bad_input" in res.output)
    assert _state(db_url) == before and before[1] == 0
    res = _cli(["alarm", "ack", "--config", str(cfg), str(alarm["id"]), "--by", "kim",
                "--note", "asked the board"])
    assert res.exit_code == 0, res.output
    rows, audited = _state(db_url)
    assert audited == 1 and rows[0].acknowledged_by == "kim"
    assert rows[0].ack_note == "asked the board"
    out = _cli(["alarm", "list", "--config", str(cfg)]).output
    assert "acknowledged" in out and "by kim" in out
