"""`peernet node restore --from FILE`: a backup back into an empty database.

Two passes over the bundle. The first reads and checks all of it without writing anything:
the backup passphrase (`wrong_passphrase`), every chunk and member digest (`bad_backup`),
the manifest (same node id and engine as the config: `backup_mismatch`; no migration this
peernet does not know: `schema_newer`), the target database (no tables: else
`db_not_empty`), the key files already at the configured paths (absent, or holding the
backup's keys: `keys_differ`; a node key file that holds the backup's keys plus newer ones
from a later rotation is kept) and the node passphrase (it must open the backup's key
files: the restore signs its audit entry). Only then the second pass writes: missing key
files, then the database (SQLite: a checked file renamed into place; PostgreSQL:
pg_restore in one transaction), migrated to this peernet's heads.

What restoring an older state means, and what the restore does about it:

- Audit log: the restored log ends where the backup did, while the hub may hold a signed
  head anchored later (`behind_anchor`, or `anchor_mismatch` once the new log grows past
  it). The restore appends `node.restore` (target the backup id; detail: the backup's time
  and the restored head `restored_seq` / `restored_hash`), signed at once, and `peernet
  node audit verify` accepts a hub anchor that is ahead of or differs from the log only
  when it was signed before that entry and lies past the restored head: a documented
  restore point, printed by verify every time (`node.ops.restore_point`). The node's next
  anchors move the hub's copy on once the new log passes the old anchored entry; an anchor
  landing exactly on the old anchored entry number raises the hub's
  `audit_anchor_conflict` alarm, which the operator acknowledges naming the restore.
- Outbox: messages pending at the backup are sent again with the same msg ids and the same
  envelope bytes; a peer that already had them answers from its inbox (`duplicate`), so no
  handler runs twice. Messages acknowledged before the backup stay `done` and are never
  sent again. Messages queued after the backup are not in it: they were either delivered
  (the peer has them) or are lost with the rest of that time; new messages get new ULIDs.
- Inbox: messages received after the backup are gone from this node and their senders hold
  them as delivered, so they are not sent again: the restore prints the backup's time so
  coordinators can check activations since then with the agencies involved.
- Releases: a monthly release made after the backup would be drawn again with new noise;
  the hub refuses a second, different release for a node-month (`conflicting_release`), and
  the README tells the operator to restore before the next release day or check first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.script import ScriptDirectory

from federation.clock import Clock
from federation.database import is_sqlite, make_engine, migrate
from federation.db_errors import probe_database
from federation.keystore import KeystoreError, NodeKeys, open_secret, write_private
from node.core import audit
from node.core.config import NodeSettings
from node.core.db import Database
from node.ops.backup import BACKUP_FORMAT, database_facts
from node.ops.bundle import BundleReader
from node.ops.dump import pg_binary, pg_restore_stream, sqlite_path, sqlite_tables, sqlite_write
from node.ops.errors import OpsError

__all__ = ["RESTORE_ACTION", "RestoreResult", "restore_backup"]

RESTORE_ACTION = "node.restore"
_KEY_MEMBERS = ("keys/node.key", "keys/pseudonym.key")


@dataclass(frozen=True)
class RestoreResult:
    backup_id: str
    backup_ts: int
    restored_seq: int
    restore_entry: int
    outbox_pending: int
    kept_keys: tuple[str, ...]
    written_keys: tuple[str, ...]


@dataclass
class _Checked:
    manifest: dict[str, Any]
    keys: dict[str, bytes]
    db_member: str


def _read_all(src: Path, passphrase: str) -> _Checked:
    """Pass one: read every member, check digests and the manifest; nothing is written."""
    try:
        f = src.open("rb")
    except OSError as exc:
        raise OpsError("bad_backup", f"cannot read {src}: {exc.strerror}") from None
    manifest: dict[str, Any] | None = None
    keys: dict[str, bytes] = {}
    db_member = ""
    with f:
        for member in BundleReader(f, passphrase).members():
            if member.name == "manifest.json":
                try:
                    manifest = json.loads(member.read())
                except ValueError:
                    raise OpsError("bad_backup", "the backup's manifest is unreadable") from None
            elif member.name in _KEY_MEMBERS:
                keys[member.name] = member.read()
            else:
                if member.name.startswith("db/"):
                    db_member = member.name
                for _ in member.chunks:  # read through: the digest is checked at its end
                    pass
    if not isinstance(manifest, dict) or manifest.get("format") != BACKUP_FORMAT:
        raise OpsError("bad_backup", "the backup holds no peernet node manifest")
    if set(keys) != set(_KEY_MEMBERS) or not db_member:
        raise OpsError("bad_backup", "the backup lacks its key files or its database")
    return _Checked(manifest, keys, db_member)


def _known_revisions() -> set[str]:
    cfg = Config()
    cfg.set_main_option("script_location", "node:migrations")
    return {s.revision for s in ScriptDirectory.from_config(cfg).walk_revisions()}


def _check_manifest(settings: NodeSettings, m: dict[str, Any]) -> None:
    engine = "sqlite" if is_sqlite(settings.db_url) else "postgresql"
    if m.get("node_id") != settings.node_id:
        raise OpsError("backup_mismatch", f"the backup is of node {m.get('node_id')!r}, the "
                                          f"config names {settings.node_id!r}")
    if m.get("engine") != engine:
        raise OpsError("backup_mismatch", f"the backup holds a {m.get('engine')} database and "
                       f"the config names a {engine} one: restore into the same engine")
    unknown = sorted(set(m.get("heads") or []) - _known_revisions())
    if unknown:
        raise OpsError("schema_newer", f"the backup was made by a newer peernet (migrations "
                       f"{', '.join(unknown)}): upgrade peernet first")


async def _check_empty(url: str) -> None:
    path = sqlite_path(url)
    tables = sqlite_tables(path) if path is not None else sorted((await probe_database(url)).tables)
    if tables:
        raise OpsError("db_not_empty", f"the target database holds {len(tables)} tables: "
                       "restore only into an empty database (create a new one, or drop and "
                       "re-create this one after making sure nothing in it is needed)")
    if path is None:
        pg_binary("pg_restore")  # missing tools refused before anything is written


def _open(blob: bytes, phrase: str, what: str) -> dict[str, Any]:
    try:
        return open_secret(blob, phrase)
    except KeystoreError as exc:
        if exc.code == "wrong_passphrase":
            raise OpsError("wrong_passphrase", f"the node passphrase (PEERNET_PASSPHRASE) "
                           f"does not open the {what} in the backup") from None
        raise OpsError("bad_backup", f"the {what} in the backup: {exc.message}") from None


def _plan_keys(settings: NodeSettings, keys: dict[str, bytes],
               phrase: str) -> tuple[list[tuple[Path, bytes]], list[str]]:
    """Which key files to write and which existing ones to keep (`keys_differ` when an
    existing file holds other keys)."""
    write: list[tuple[Path, bytes]] = []
    kept: list[str] = []
    backed_node = NodeKeys.from_payload(_open(keys["keys/node.key"], phrase, "node key file"))
    backed_ps = _open(keys["keys/pseudonym.key"], phrase, "pseudonym key file")
    for name, path in (("keys/node.key", settings.key_path),
                       ("keys/pseudonym.key", settings.pseudonym_key_path)):
        if not path.exists():
            write.append((path, keys[name]))
            continue
        existing = path.read_bytes()
        if existing == keys[name]:
            kept.append(str(path))
            continue
        try:
            current = open_secret(existing, phrase)
        except KeystoreError:
            current = {}
        if name == "keys/node.key":
            same = _node_keys_cover(current, backed_node)
        else:
            same = current.get("key") == backed_ps.get("key")
        if not same:
            raise OpsError("keys_differ", f"{path} holds other keys than the backup: move it "
                           "away (keep it: it may be another node's) and restore again")
        kept.append(str(path))
    return write, kept


def _node_keys_cover(payload: dict[str, Any], backed: NodeKeys) -> bool:
    try:
        current = NodeKeys.from_payload(payload)
    except (KeystoreError, KeyError, ValueError, TypeError):
        return False
    mine = {v: bytes(k) for v, k in current.signing_keys().items()}
    return bytes(current.enc_key) == bytes(backed.enc_key) and all(
        mine.get(v) == bytes(k) for v, k in backed.signing_keys().items())


def _load_database(url: str, src: Path, passphrase: str, member_name: str) -> None:
    with src.open("rb") as f:
        for member in BundleReader(f, passphrase).members():
            if member.name != member_name:
                for _ in member.chunks:
                    pass
                continue
            path = sqlite_path(url)
            if path is not None:
                sqlite_write(path, member.chunks)
            else:
                pg_restore_stream(url, member.chunks)
            return


async def restore_backup(settings: NodeSettings, src: Path, passphrase: str, node_phrase: str,
                         clock: Clock) -> RestoreResult:
    """Check everything (pass one), then write keys and database and record the restore."""
    checked = _read_all(src, passphrase)
    m = checked.manifest
    _check_manifest(settings, m)
    await _check_empty(settings.db_url)
    write, kept = _plan_keys(settings, checked.keys, node_phrase)
    for path, blob in write:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(path, blob)
    _load_database(settings.db_url, src, passphrase, checked.db_member)
    keys = NodeKeys.load(settings.key_path, node_phrase)
    db = Database(make_engine(settings.db_url))
    try:
        await migrate(db.engine, "node:migrations")
        facts = await database_facts(db)
        now = clock.now_ms()
        async with db.write() as conn:
            row = await audit.append(
                conn, ts=now, action=RESTORE_ACTION, target_type="backup",
                target_id=str(m.get("backup_id")),
                detail={"backup_ts": int(m.get("created_ts") or 0),
                        "restored_seq": facts["audit_seq"],
                        "restored_hash": facts["audit_hash"]})
            await audit.sign_head(conn, keys, settings.node_id, now)
        pending = await _pending(db)
    finally:
        await db.dispose()
    return RestoreResult(str(m.get("backup_id")), int(m.get("created_ts") or 0),
                         int(facts["audit_seq"]), int(row["seq"]), pending,
                         tuple(kept), tuple(str(p) for p, _ in write))


async def _pending(db: Database) -> int:
    from sqlalchemy import func, select

    from federation.store import OutboxState, outbox

    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(outbox).where(
            outbox.c.state == OutboxState.PENDING))).scalar_one())
