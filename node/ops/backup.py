"""`peernet node backup --out FILE`: one encrypted file holding everything a node needs to
come back: its database at one consistent moment and its key files.

The bundle (`node.ops.bundle`) holds, in order:

- `manifest.json`: format, node id, engine, the time, the backup id (a ULID), the
  database's migration heads (restore refuses a backup from a newer peernet) and the audit
  head at the moment the manifest was written (the snapshot that follows may be a few
  entries further: restore reads the real one from the restored database);
- `keys/node.key`, `keys/pseudonym.key`: the key files as they are on disk, still sealed
  under the node's passphrase (the bundle seals them a second time under the backup
  passphrase); without the pseudonym key the restored encounters' recipient refs could
  never be matched again, without the node key the node could not sign;
- `config/node.toml` when the command was given one (no secrets are in it);
- `db/node.sqlite` (SQLite online backup) or `db/node.pgdump` (pg_dump custom format):
  see `node.ops.dump`; both are one consistent snapshot taken while the node serves.

The file is written to a private temporary name (0600) beside `--out` and renamed into
place when complete, so a failed backup never leaves a file that looks whole. Afterwards
the node's audit log records `node.backup` (the backup id, never the passphrase or the
path), so who backed up when is on the record.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text

from federation.clock import Clock
from federation.database import is_sqlite, make_engine
from federation.keystore import KEYFILE_COST, KdfCost
from node.core import audit
from node.core.config import NodeSettings
from node.core.db import AuditHead, Database, table_of
from node.ops.bundle import BundleWriter
from node.ops.dump import pg_dump_stream, sqlite_path, sqlite_snapshot
from node.ops.errors import OpsError
from protocol.ids import new_ulid

__all__ = ["BACKUP_FORMAT", "BackupResult", "database_facts", "write_backup"]

BACKUP_FORMAT = "peernet-node-backup-v1"
_head = table_of(AuditHead)


@dataclass(frozen=True)
class BackupResult:
    backup_id: str
    path: Path
    size: int
    engine: str
    head_seq: int


async def database_facts(db: Database) -> dict[str, Any]:
    """Migration heads and the audit head (what a manifest names)."""
    async with db.read() as conn:
        heads = sorted(str(v) for v in (await conn.execute(
            text("SELECT version_num FROM alembic_version"))).scalars())
        head = (await conn.execute(
            text("SELECT seq, hash FROM audit_head WHERE id = 1"))).one_or_none()
    return {"heads": heads, "audit_seq": int(head[0]) if head else 0,
            "audit_hash": str(head[1]) if head else None}


def _read_keys(settings: NodeSettings, out: Path, force: bool) -> dict[str, bytes]:
    if os.path.lexists(out) and not force:
        raise OpsError("out_exists", f"{out} exists: choose another name or pass --force")
    if out.is_dir():
        raise OpsError("out_exists", f"{out} is a directory")
    keys = {}
    for name, path in (("keys/node.key", settings.key_path),
                       ("keys/pseudonym.key", settings.pseudonym_key_path)):
        try:
            keys[name] = path.read_bytes()
        except OSError as exc:
            raise OpsError("dump_failed", f"cannot read the key file {path}: "
                                          f"{exc.strerror}") from None
    return keys


def _size(path: Path) -> int:
    return path.stat().st_size


def _open_private(out: Path) -> tuple[int, Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(6)}.part")
    fd = os.open(tmp, flags, 0o600)
    os.fchmod(fd, 0o600)
    return fd, tmp


async def write_backup(settings: NodeSettings, out: Path, passphrase: str, clock: Clock, *,
                       config_text: str | None = None, force: bool = False,
                       cost: KdfCost = KEYFILE_COST) -> BackupResult:
    """Write the bundle (module docstring) to `out`; `out_exists` unless `force`."""
    keys = _read_keys(settings, out, force)
    engine = "sqlite" if is_sqlite(settings.db_url) else "postgresql"
    db = Database(make_engine(settings.db_url))
    try:
        facts = await database_facts(db)
        now = clock.now_ms()
        backup_id = new_ulid(now, os.urandom(10))
        manifest = {"format": BACKUP_FORMAT, "backup_id": backup_id, "node_id": settings.node_id,
                    "engine": engine, "created_ts": now, **facts}
        fd, tmp = _open_private(out)
        try:
            with os.fdopen(fd, "wb") as f:
                writer = BundleWriter(f, passphrase, cost=cost)
                writer.add_bytes("manifest.json", json.dumps(manifest, sort_keys=True).encode())
                for name, blob in keys.items():
                    writer.add_bytes(name, blob)
                if config_text is not None:
                    writer.add_bytes("config/node.toml", config_text.encode("utf-8"))
                writer.add_stream(*_database_member(settings.db_url))
                writer.close()
                os.fsync(f.fileno())
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        size = _size(out)
        async with db.write() as conn:
            await audit.append(conn, ts=clock.now_ms(), action="node.backup",
                               target_type="backup", target_id=backup_id,
                               detail={"engine": engine, "bytes": size})
    finally:
        await db.dispose()
    return BackupResult(backup_id, out, size, engine, int(facts["audit_seq"]))


def _database_member(url: str) -> tuple[str, Iterator[bytes]]:
    path = sqlite_path(url)
    if path is not None:
        return "db/node.sqlite", sqlite_snapshot(path)
    return "db/node.pgdump", pg_dump_stream(url)
