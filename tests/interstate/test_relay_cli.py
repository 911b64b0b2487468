"""`peernet hub install-compact FILE` through the real CLI on SQLite and PostgreSQL: a
compact signed by both boards is stored once; one signed by too few of one board, an edited
one, and one not listing the hub's network are refused with their codes and nothing stored;
a hub without `network_id` is told so."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select

from federation.database import make_engine
from federation.interstate_tables import compacts
from hub.cli import hub_group
from tests.interstate.compacts import TestNetwork, compact_value, sign_compact

ENV = {"PEERNET_HUB_PASSPHRASE": "hub passphrase here"}


def _config(tmp_path: Path, db_url: str, tx: TestNetwork, network: bool = True) -> Path:
    cfg = tmp_path / ("hub.toml" if network else "hub-plain.toml")
    lines = ['hub_id = "hub-tx"', 'name = "Texas hub"', f"db_url = {json.dumps(db_url)}",
             f"data_dir = {json.dumps(str(tmp_path / 'hub'))}",
             f"board_keys = {json.dumps(tx.board.board().keys)}",
             f"board_threshold = {tx.board.threshold}"]
    if network:
        lines.append('network_id = "tx"')
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


def _run(cfg: Path, doc: Path) -> tuple[int, str]:
    res = CliRunner().invoke(hub_group, ["install-compact", "--config", str(cfg), str(doc)],
                             env=ENV)
    return res.exit_code, res.output


def _held(db_url: str) -> int:
    async def count() -> int:
        engine = make_engine(db_url)
        try:
            async with engine.connect() as conn:
                return int((await conn.execute(
                    select(func.count()).select_from(compacts))).scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(count())


def test_install_compact_cli(tmp_path: Path, db_url: str) -> None:
    tx, hi, ny = TestNetwork.make("tx"), TestNetwork.make("hi"), TestNetwork.make("ny")
    cfg = _config(tmp_path, db_url, tx)
    value = compact_value([tx, hi])
    files = {}
    for name, signed in {
        "too_few": sign_compact(value, [tx]),  # hi's board did not sign
        "other": sign_compact(compact_value([hi, ny]), [hi, ny]),  # tx not a member
        "good": sign_compact(value, [tx, hi]),
    }.items():
        files[name] = tmp_path / f"{name}.json"
        files[name].write_bytes(signed.to_bytes())
    edited = tmp_path / "edited.json"
    edited.write_bytes(files["good"].read_bytes().replace(b"Network HI", b"Network XX"))

    code, out = _run(cfg, files["too_few"])
    assert code == 1 and "compact_threshold" in out
    code, out = _run(cfg, edited)
    assert code == 1 and "bad_signatures" in out
    code, out = _run(cfg, files["other"])
    assert code == 1 and "network_not_in_compact" in out
    assert _held(db_url) == 0
    code, out = _run(cfg, files["good"])
    assert code == 0 and "[1]" in out, out
    code, out = _run(cfg, files["good"])
    assert code == 0 and "none new" in out
    assert _held(db_url) == 1
    code, out = _run(_config(tmp_path, db_url, tx, network=False), files["good"])
    assert code == 1 and "network_id" in out
