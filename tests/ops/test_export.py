"""Issue 18 item 4, export: every record of the agency as CSV and JSON with schema.md, no
secret keys or password hashes, refused into a non-empty directory unless --force.
Real node and real CLI, SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench.reliability_report import record
from federation.keystore import open_secret
from protocol.encoding import b64u
from tests.ops.helpers import PHRASE, OpsNet, cli, make_ops_net, post_encounter, scalar


@pytest.fixture
async def ops(tmp_path: Path, db_url: str, request: pytest.FixtureRequest) -> Any:
    o = await make_ops_net(tmp_path, db_url, request)
    try:
        yield o
    finally:
        await o.net.close()


async def test_export_writes_every_record_and_no_secret(ops: OpsNet, tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as http:
        for i in range(4):
            assert await post_encounter(ops, http, follow_up_due="2026-07-01" if i == 0
                                        else None)
    out = tmp_path / "export"
    code, text = await cli("export", "--config", str(ops.cfg), "--out", str(out))
    assert code == 0, text
    manifest = json.loads((out / "manifest.json").read_text())
    for table in ("encounters", "users", "audit_log"):
        rows = list(csv.DictReader((out / f"{table}.csv").open(encoding="utf-8-sig")))
        data = json.loads((out / f"{table}.json").read_text())
        assert len(rows) == len(data) == manifest["rows"][table]
    n_enc = await scalar(ops.node, "SELECT count(*) FROM encounters")
    assert manifest["rows"]["encounters"] == n_enc == 4
    # The audit log as exported, up to the export's own entry (written after the snapshot).
    assert manifest["rows"]["audit_log"] == await scalar(
        ops.node, "SELECT count(*) FROM audit_log WHERE action <> 'node.export'")
    enc = list(csv.DictReader((out / "encounters.csv").open(encoding="utf-8-sig")))
    assert {"occurred_at", "occurred_at_utc", "intervention", "recipient_ref"} <= set(enc[0])
    assert enc[0]["occurred_at_utc"].endswith("Z")
    assert manifest["rows"]["follow_ups"] == 1
    schema = (out / "schema.md").read_text()
    for table in manifest["rows"]:
        assert f"`{table}.csv`" in schema
    assert "| `recipient_ref` |" in schema and "| `occurred_at_utc` |" in schema
    # No secret: no password hash column, no key material in any file.
    users = list(csv.DictReader((out / "users.csv").open(encoding="utf-8-sig")))
    assert "password_hash" not in users[0]
    assert ops.node.settings is not None
    secrets = [b64u(bytes(ops.node.keys.signing_key)), b64u(bytes(ops.node.keys.enc_key)),
               open_secret(ops.node.settings.pseudonym_key_path.read_bytes(), PHRASE)["key"]]
    blob = "".join(p.read_text("utf-8") for p in out.iterdir())
    assert not [s for s in secrets if s in blob]
    assert "$argon2" not in blob and "scrypt" not in blob
    assert await scalar(ops.node, "SELECT count(*) FROM audit_log WHERE action = "
                                  "'node.export'") == 1

    # A non-empty directory is refused and left as it was; --force writes again.
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, text = await cli("export", "--config", str(ops.cfg), "--out", str(out))
    assert code == 1 and "[dir_not_empty]" in text, text
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert await scalar(ops.node, "SELECT count(*) FROM audit_log WHERE action = "
                                  "'node.export'") == 1
    code, text = await cli("export", "--config", str(ops.cfg), "--out", str(out), "--force")
    assert code == 0, text
    record("ops-export-" + ops.kind, area="bad-input",
           case=f"export of every record, refused into a non-empty directory ({ops.kind})",
           how="real node and CLI; encounters posted through the API; export read back",
           result="CSV and JSON rows equal the database's; schema.md names every file and "
                  "column; no key, pseudonym key or password hash in any file; a second "
                  "export without --force refused dir_not_empty with the files unchanged")
    assert all(p.stat().st_mode & 0o077 == 0 for p in out.iterdir())
