"""Issue 18 item 3, refusals: a wrong backup passphrase, a restore into a database that holds
a node, a damaged bundle, a bundle of another node, an existing output file, and key files
that hold other keys. Each is refused by the real CLI with its stable code and changes
nothing. SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from bench.reliability_report import record
from federation.keystore import COST_FLOOR, NodeKeys
from tests.ops.helpers import BACKUP_PHRASE, ENV, OpsNet, cli, make_ops_net, scalar, wipe


@pytest.fixture
async def ops(tmp_path: Path, db_url: str, request: pytest.FixtureRequest) -> Any:
    o = await make_ops_net(tmp_path, db_url, request)
    try:
        yield o
    finally:
        await o.net.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


async def _db_state(ops: OpsNet) -> tuple[Any, ...]:
    return (await scalar(ops.node, "SELECT count(*) FROM audit_log"),
            await scalar(ops.node, "SELECT count(*) FROM users"),
            await scalar(ops.node, "SELECT hash FROM audit_head"))


async def test_restore_refusals_change_nothing(ops: OpsNet, tmp_path: Path) -> None:
    bundle = tmp_path / "b.pnbak"
    code, out = await cli("backup", "--config", str(ops.cfg), "--out", str(bundle))
    assert code == 0, out
    good = bundle.read_bytes()

    # An existing output file is not replaced without --force.
    code, out = await cli("backup", "--config", str(ops.cfg), "--out", str(bundle))
    assert code == 1 and "[out_exists]" in out, out
    assert bundle.read_bytes() == good

    # Into the node's own, non-empty database: refused, nothing changes.
    before = await _db_state(ops)
    code, out = await cli("restore", "--config", str(ops.cfg), "--from", str(bundle))
    assert code == 1 and "[db_not_empty]" in out, out
    assert await _db_state(ops) == before

    assert ops.node.settings is not None
    keys = (ops.node.settings.key_path, ops.node.settings.pseudonym_key_path)
    await wipe(ops)  # an empty database and no key files from here on
    empty = await _tables(ops)

    async def refused(code_name: str, src: Path, env: dict[str, str] | None = None) -> None:
        code, out = await cli("restore", "--config", str(ops.cfg), "--from", str(src),
                              env=env)
        assert code == 1 and f"[{code_name}]" in out, out
        assert len(out.strip().splitlines()) == 1, out
        assert await _tables(ops) == empty
        assert [_digest(k) for k in keys] == ["absent", "absent"]

    await refused("wrong_passphrase", bundle,
                  {**ENV, "PEERNET_BACKUP_PASSPHRASE": "not the backup passphrase"})
    damaged = tmp_path / "damaged.pnbak"
    raw = bytearray(good)
    raw[-40] ^= 0x01  # inside the database member's last chunk
    damaged.write_bytes(bytes(raw))
    await refused("bad_backup", damaged)
    cut = tmp_path / "cut.pnbak"
    cut.write_bytes(good[: len(good) - 30])
    await refused("bad_backup", cut)
    not_backup = tmp_path / "notes.txt"
    not_backup.write_text("hello")
    await refused("bad_backup", not_backup)

    # A bundle of another node (the config names another node id).
    other = ops.cfg.with_name("other.toml")
    other.write_text(ops.cfg.read_text().replace('node_id = "agency-1"',
                                                 'node_id = "agency-9"'))
    code, out = await cli("restore", "--config", str(other), "--from", str(bundle))
    assert code == 1 and "[backup_mismatch]" in out, out
    assert await _tables(ops) == empty

    # Key files of another node where the backup's would go: refused, left as they are.
    NodeKeys.generate().save(keys[0], ENV["PEERNET_PASSPHRASE"], cost=COST_FLOOR)
    stranger = _digest(keys[0])
    code, out = await cli("restore", "--config", str(ops.cfg), "--from", str(bundle))
    assert code == 1 and "[keys_differ]" in out, out
    assert _digest(keys[0]) == stranger and _digest(keys[1]) == "absent"
    assert await _tables(ops) == empty
    keys[0].unlink()

    # And the good bundle with the right passphrases restores.
    code, out = await cli("restore", "--config", str(ops.cfg), "--from", str(bundle))
    assert code == 0, out
    assert BACKUP_PHRASE not in out and ENV["PEERNET_PASSPHRASE"] not in out
    record("ops-restore-refusals-" + ops.kind, area="bad-input",
           case=f"restore refusals change nothing ({ops.kind})",
           how="real CLI: wrong backup passphrase, one flipped bit, a cut file, a text file, "
               "another node's config, a stranger's key file, the node's own database",
           result="wrong_passphrase, bad_backup, backup_mismatch, keys_differ, db_not_empty; "
                  "database and key files unchanged each time; the good bundle restores")


async def _tables(ops: OpsNet) -> list[str]:
    from sqlalchemy import inspect

    from federation.database import make_engine

    engine = make_engine(ops.node.db_url)
    try:
        async with engine.connect() as conn:
            return sorted(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_backup_without_pg_dump_is_a_clear_error(ops: OpsNet, tmp_path: Path) -> None:
    """PostgreSQL needs pg_dump: with none where the operator pointed, one line naming
    what to install and no file left behind. SQLite needs no tool."""
    out = tmp_path / "b.pnbak"
    env = {**ENV, "PEERNET_PG_BIN": str(tmp_path / "no-such-dir")}
    code, text = await cli("backup", "--config", str(ops.cfg), "--out", str(out), env=env)
    if ops.kind == "sqlite":
        assert code == 0, text
        return
    assert code == 1 and "[pg_dump_missing]" in text and "pg_dump" in text, text
    assert not out.exists() and not list(tmp_path.glob(".b.pnbak.*"))
