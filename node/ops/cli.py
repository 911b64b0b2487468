"""`peernet node backup | restore | export | detach`: the operations commands (click layer).

    peernet node backup  --config node.toml --out node-2026-12-04.pnbak [--force]
    peernet node restore --config node.toml --from node-2026-12-04.pnbak
    peernet node export  --config node.toml --out ./export [--force]
    peernet node detach  --config node.toml [--out leave-request.json] [--reason TEXT]

The backup passphrase comes from `PEERNET_BACKUP_PASSPHRASE` or a hidden prompt (asked
twice for a new backup; at least 12 characters); the node's key passphrase from
`PEERNET_PASSPHRASE` (restore signs its audit entry with the node key, detach signs the
leave request). Expected failures print one line `Error: <sentence> [code]` and exit 1
(`node.ops.errors` lists the codes), having changed nothing.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from federation.cli_errors import guard
from federation.cli_prompts import ask_passphrase
from federation.clock import SystemClock
from federation.database import make_engine, migrate
from federation.init_checks import check_passphrase
from federation.keystore import KeystoreError, NodeKeys
from node.commands.audit import sign_moved_head
from node.commands.init import require_initialised
from node.core.config import NodeSettings
from node.core.db import Database
from node.ops.backup import write_backup
from node.ops.detach import detach_node
from node.ops.errors import OpsError
from node.ops.export import export_records
from node.ops.restore import restore_backup

__all__ = ["register"]

T = TypeVar("T")
BACKUP_ENV = "PEERNET_BACKUP_PASSPHRASE"  # noqa: S105 - the variable's name
NODE_ENV = "PEERNET_PASSPHRASE"  # noqa: S105 - the variable's name


def _config_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
        default=lambda: os.environ.get("PEERNET_NODE_CONFIG", "peernet-node.toml"),
        show_default="$PEERNET_NODE_CONFIG or peernet-node.toml", help="Node config file.",
    )(fn)


def _load(config_path: Path) -> NodeSettings:
    return guard(lambda: NodeSettings.load(config_path))


def _run(settings: NodeSettings, coro: Callable[[], Awaitable[T]]) -> T:
    async def go() -> T:
        return await coro()

    return guard(lambda: asyncio.run(go()), settings.db_url)


def _node_keys(settings: NodeSettings) -> tuple[NodeKeys, str]:
    phrase = ask_passphrase(NODE_ENV)
    try:
        return NodeKeys.load(settings.key_path, phrase), phrase
    except KeystoreError as exc:
        raise OpsError(exc.code, f"{exc.message} (the node passphrase, {NODE_ENV})") from None


async def _with_db(settings: NodeSettings, config_path: Path | None,
                   fn: Callable[[Database], Awaitable[T]]) -> T:
    await require_initialised(settings, config_path)
    db = Database(make_engine(settings.db_url))
    try:
        await migrate(db.engine, "node:migrations")
        out = await fn(db)
        await sign_moved_head(db, settings, None, SystemClock().now_ms())
        return out
    finally:
        await db.dispose()


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


@click.command("backup")
@_config_option
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="The encrypted backup file to write.")
@click.option("--force", is_flag=True, help="Replace an existing file at --out.")
def backup_cmd(config_path: Path, out: Path, force: bool) -> None:
    """Write an encrypted backup of the database and key files (while the node serves)."""
    settings = _load(config_path)
    phrase = ask_passphrase(BACKUP_ENV, what="Backup passphrase", confirm=True)
    check_passphrase(phrase)
    config_text = config_path.read_text("utf-8") if config_path.is_file() else None
    res = _run(settings, lambda: _with_db(settings, config_path, lambda _db: write_backup(
        settings, out, phrase, SystemClock(), config_text=config_text, force=force)))
    click.echo(f"backup {res.backup_id} written: {res.path} ({res.size} bytes, {res.engine}, "
               f"audit head {res.head_seq} or later)")
    click.echo(f"keep the backup passphrase ({BACKUP_ENV}) and the node passphrase apart "
               "from the file: both are needed to restore")


@click.command("restore")
@_config_option
@click.option("--from", "src", required=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The backup file to restore.")
def restore_cmd(config_path: Path, src: Path) -> None:
    """Restore a backup into an EMPTY database (and missing key files); audited."""
    settings = _load(config_path)
    phrase = ask_passphrase(BACKUP_ENV, what="Backup passphrase")
    node_phrase = ask_passphrase(NODE_ENV)
    res = _run(settings, lambda: restore_backup(settings, src, phrase, node_phrase,
                                                SystemClock()))
    click.echo(f"restored backup {res.backup_id} of {_when(res.backup_ts)}: audit log to entry "
               f"{res.restored_seq}, restore recorded as entry {res.restore_entry}")
    for path in res.written_keys:
        click.echo(f"  key file written: {path}")
    for path in res.kept_keys:
        click.echo(f"  key file kept: {path}")
    click.echo(f"  {res.outbox_pending} queued messages will be sent again when the node "
               "starts (peers drop copies they already have)")
    click.echo(f"  anything recorded or received after {_when(res.backup_ts)} is not in this "
               "backup: check activations since then with the agencies involved")


@click.command("export")
@_config_option
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the CSV/JSON files and schema.md (must be empty).")
@click.option("--force", is_flag=True, help="Write into a non-empty directory, replacing "
                                            "the files of an earlier export.")
def export_cmd(config_path: Path, out: Path, force: bool) -> None:
    """Export all of the agency's records as CSV and JSON, with schema.md; no keys."""
    settings = _load(config_path)
    counts = _run(settings, lambda: _with_db(settings, config_path, lambda db: export_records(
        db, out, SystemClock(), node_id=settings.node_id, force=force)))
    click.echo(f"exported {sum(counts.values())} rows from {len(counts)} tables to {out}")
    for name, n in counts.items():
        click.echo(f"  {name}: {n}")
    click.echo(f"  what each column means: {out / 'schema.md'}")


@click.command("detach")
@_config_option
@click.option("--out", "out", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the signed leave request for the board "
                   "(default: <data_dir>/leave-request.json).")
@click.option("--reason", default="the agency leaves the network", show_default=True,
              help="A few words for the board (no record content).")
def detach_cmd(config_path: Path, out: Path | None, reason: str) -> None:
    """Leave the network: a signed leave request for the board; the node keeps working
    alone with all its records (nothing is sent any more, releases stop)."""
    settings = _load(config_path)
    keys, _ = guard(lambda: _node_keys(settings))
    res = _run(settings, lambda: _with_db(settings, config_path, lambda db: detach_node(
        db, settings, keys, SystemClock(), out=out, reason=reason[:200])))
    click.echo(f"node {settings.node_id} left the network (roster version "
               f"{res.roster_version})")
    click.echo(f"  hand {res.request_path} to the state board: `peernet board accept-leave "
               f"--dir BOARD --request {res.request_path.name}` removes the node and revokes "
               "its keys in the next roster")
    click.echo(f"  {res.dropped} queued messages were not sent (kept as failed: detached)")
    click.echo("  restart the node: it serves its pages and API alone from now on")


def register(group: click.Group) -> None:
    """Attach the commands to `peernet node`."""
    for cmd in (backup_cmd, restore_cmd, export_cmd, detach_cmd):
        group.add_command(cmd)
