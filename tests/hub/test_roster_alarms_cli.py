"""Issue 13 item 8 through the real CLI on a real hub database (SQLite and PostgreSQL).

- An edited copy of the installed roster file (signatures no longer verify) is refused as
  `bad_signatures`: no split-view alarm, nothing stored changes. Before the fix it was
  reported as "two different rosters claim version 1" and left a permanent alarm.
- A genuine split view (a second v1 validly signed by the pinned board) raises one alarm with
  a reason in words; installing it again adds none; `peernet hub alarm list` shows it,
  `peernet hub alarm ack ID --note ...` acknowledges it once (who, when, note), bad
  acknowledgements are refused with stable codes and change nothing, and the alarm is kept.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from sqlalchemy import select

from bench.reliability_report import record
from federation.database import make_engine
from federation.store import alarms, rosters
from hub.cli import hub_group
from hub.config import HubSettings
from tests.federation.boards import TestBoard


def _setup(tmp_path: Path, db_url: str) -> tuple[TestBoard, Path, int]:
    board = TestBoard.make(3, 2)
    settings = HubSettings.load(
        None, hub_id="hub-state", name="State hub", data_dir=tmp_path / "hub", db_url=db_url,
        board_keys=board.board().keys, board_threshold=board.threshold)
    cfg = tmp_path / "hub.toml"
    cfg.write_text(settings.to_toml(), encoding="utf-8")
    return board, cfg, int(time.time() * 1000)


def _cli(args: list[str]) -> Result:
    return CliRunner().invoke(hub_group, args)


def _write(path: Path, data: bytes | dict[str, Any]) -> str:
    path.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
    return str(path)


def _snapshot(db_url: str) -> dict[str, list[tuple[Any, ...]]]:
    async def go() -> dict[str, list[tuple[Any, ...]]]:
        engine = make_engine(db_url)
        try:
            async with engine.connect() as conn:
                return {t.name: [tuple(r) for r in (await conn.execute(
                    select(t).order_by(*t.primary_key.columns))).all()]
                        for t in (rosters, alarms)}
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_tampered_roster_file_is_bad_signatures_and_raises_no_alarm(
    tmp_path: Path, db_url: str
) -> None:
    board, cfg, now = _setup(tmp_path, db_url)
    v1 = board.sign(board.roster(1, now=now))
    res = _cli(["install-roster", "--config", str(cfg), _write(tmp_path / "v1.json",
                                                               v1.to_bytes())])
    assert res.exit_code == 0 and "[1]" in res.output, res.output
    before = _snapshot(db_url)
    # The same file, edited after signing: a later expiry, the board's signatures kept.
    doc = json.loads(v1.to_bytes())
    doc["roster"]["expires_ts"] += 86_400_000
    res = _cli(["install-roster", "--config", str(cfg), _write(tmp_path / "edited.json", doc)])
    assert res.exit_code == 1
    assert "bad_signatures" in res.output and "do not verify" in res.output
    assert "split_view" not in res.output and "two different" not in res.output
    # An edited next version is refused the same way.
    v2 = board.sign(board.next(v1, now=now))
    doc2 = json.loads(v2.to_bytes())
    doc2["roster"]["policy"]["privacy"]["per_cell"] += 1
    res = _cli(["install-roster", "--config", str(cfg), _write(tmp_path / "v2e.json", doc2)])
    assert res.exit_code == 1 and "bad_signatures" in res.output, res.output
    assert _snapshot(db_url) == before and before["fed_alarm"] == []
    res = _cli(["alarm", "list", "--config", str(cfg)])
    assert res.exit_code == 0 and res.output.strip() == "no alarms"
    engine = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    record(f"roster-edited-file-{engine}", area="bad-input",
           case=f"an edited roster file installed on the hub ({engine})",
           how="peernet hub install-roster on a copy of the installed v1 with a later expiry "
               "and on an edited v2, signatures kept, on a real hub database",
           result="refused as bad_signatures; no split-view alarm; fed_roster and fed_alarm "
                  "unchanged", figures={"files": 2, "alarms": 0})


def test_genuine_split_view_raises_one_alarm_acknowledged_through_the_cli(
    tmp_path: Path, db_url: str
) -> None:
    board, cfg, now = _setup(tmp_path, db_url)
    v1 = board.sign(board.roster(1, now=now))
    twin = board.sign(board.roster(1, now=now + 1000))  # validly signed, another hash
    assert _cli(["install-roster", "--config", str(cfg),
                 _write(tmp_path / "v1.json", v1.to_bytes())]).exit_code == 0
    twin_file = _write(tmp_path / "twin.json", twin.to_bytes())
    for _ in range(2):  # the same conflicting file twice: one alarm
        res = _cli(["install-roster", "--config", str(cfg), twin_file])
        assert res.exit_code == 1 and "split_view" in res.output, res.output
    res = _cli(["alarm", "list", "--config", str(cfg), "--json"])
    assert res.exit_code == 0, res.output
    [alarm] = json.loads(res.output)["alarms"]
    assert alarm["kind"] == "split_view" and alarm["active"] and alarm["source"] == "operator"
    assert alarm["detail"]["seen_sha256"] == twin.sha256
    assert "validly signed by the board both claim version 1" in alarm["reason"]
    assert alarm["acknowledged_by"] is None and alarm["acknowledged_ts"] is None
    res = _cli(["alarm", "list", "--config", str(cfg)])
    assert res.exit_code == 0 and "split_view" in res.output and "active" in res.output
    assert "ask the board which is real" in res.output and "{" not in res.output

    before = _snapshot(db_url)
    aid = str(alarm["id"])
    for args, code in [
        (["999999", "--note", "checked"], "not_found"),
        ([aid, "--note", "   "], "bad_input"),
        ([aid, "--note", "x" * 501], "bad_input"),
        ([aid, "--note", "ok", "--by", ""], "bad_input"),
    ]:
        res = _cli(["alarm", "ack", "--config", str(cfg), *args])
        assert res.exit_code == 1 and f"{code}:" in res.output, (args, res.output)
    res = _cli(["alarm", "ack", "--config", str(cfg), aid])
    assert res.exit_code == 2  # --note is required
    assert _snapshot(db_url) == before

    res = _cli(["alarm", "ack", "--config", str(cfg), aid, "--by", "lee",
                "--note", "Board confirmed v1 of the 3rd; the other file was a draft."])
    assert res.exit_code == 0 and f"acknowledged alarm {aid}" in res.output, res.output
    res = _cli(["alarm", "ack", "--config", str(cfg), aid, "--note", "again"])
    assert res.exit_code == 1 and "conflict:" in res.output and "lee" in res.output
    [acked] = json.loads(_cli(["alarm", "list", "--config", str(cfg), "--json"]).output)["alarms"]
    assert not acked["active"] and acked["acknowledged_by"] == "lee"
    assert acked["ack_note"].startswith("Board confirmed") and acked["acknowledged_ts"] >= now
    assert _cli(["alarm", "list", "--config", str(cfg), "--active"]).output.strip() == \
        "no active alarms"
    table = _cli(["alarm", "list", "--config", str(cfg)]).output
    assert "acknowledged" in table and "by lee" in table and "Note: Board confirmed" in table
    # Kept: the roster and the alarm row are still there, only acknowledged.
    after = _snapshot(db_url)
    assert after["fed_roster"] == before["fed_roster"] and len(after["fed_alarm"]) == 1
