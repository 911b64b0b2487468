"""`peernet node alarm ...`: the node's governance alarms (split view) from the command line.

A node keeps the split-view alarms it raises in `fed_alarm` as the hub does (admins and
auditors read them at `GET /api/v1/federation/alarms`, each with its reason in words), so it
gets the same tools:

- `list [--active] [--json]`: a table (id, when raised, kind, source, status, then the
  reason), or JSON for scripts (times in epoch milliseconds);
- `ack ID --note TEXT [--by NAME]`: acknowledge an alarm once, recording who (default: the
  login name), when and why on the alarm, and an `alarm.acknowledge` entry in the node's
  audit log in the same transaction (its detail names who, never the note). The head is then
  signed when the key's passphrase is at hand, as for every node command.

Thin over `federation.roster_alarms`; expected failures print one line and exit non-zero,
and change nothing.
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from federation.alarm_text import echo_alarms
from federation.clock import SystemClock
from federation.database import make_engine, migrate
from federation.errors import FederationError
from federation.roster_alarms import MAX_NOTE, acknowledge, list_alarms
from node.core import audit
from node.core.config import NodeSettings
from node.core.db import Database
from node.core.errors import NodeError

__all__ = ["alarm_group"]

T = TypeVar("T")

_config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
    default=Path("node.toml"), show_default=True, help="The node's TOML config file.",
)


def _run(config_path: Path, fn: Callable[[NodeSettings, Database], Awaitable[T]]) -> T:
    async def go() -> T:
        settings = NodeSettings.load(config_path)
        db = Database(make_engine(settings.db_url))
        try:
            await migrate(db.engine, "node:migrations")
            return await fn(settings, db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(go())
    except NodeError as exc:
        raise click.ClickException(f"{exc.code.value}: {exc.message}") from None
    except FederationError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from None


@click.group("alarm")
def alarm_group() -> None:
    """Governance alarms (split view): list and acknowledge."""


@alarm_group.command("list")
@_config_option
@click.option("--active", "active_only", is_flag=True, help="Only alarms not acknowledged.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (times in epoch ms).")
def list_cmd(config_path: Path, active_only: bool, as_json: bool) -> None:
    """List governance alarms, newest first."""
    rows = _run(config_path, lambda _s, db: list_alarms(db.engine, active_only=active_only))
    echo_alarms(rows, active_only=active_only, as_json=as_json)


@alarm_group.command("ack")
@_config_option
@click.argument("alarm_id", type=int)
@click.option("--note", required=True,
              help=f"Why it is acknowledged (what was checked, who was told); "
                   f"at most {MAX_NOTE} characters.")
@click.option("--by", "by", default=None, help="Who acknowledges it (default: your login name).")
def ack_cmd(config_path: Path, alarm_id: int, note: str, by: str | None) -> None:
    """Acknowledge an alarm: kept, with who, when and why (audited); no longer active."""
    who = by if by is not None else getpass.getuser()

    async def go(settings: NodeSettings, db: Database) -> dict[str, Any]:
        now = SystemClock().now_ms()
        async with db.write() as conn:
            row = await acknowledge(conn, alarm_id, by=who, note=note, now_ms=now)
            await audit.append(conn, ts=now, action="alarm.acknowledge", target_type="fed_alarm",
                               target_id=str(alarm_id), detail={"by": row["acknowledged_by"]})
        from node.commands import (
            audit as audit_cli,  # the head signer (issue 13 item 1), as every command
        )

        await audit_cli.sign_moved_head(db, settings, None, now)
        return row

    row = _run(config_path, go)
    click.echo(f"acknowledged alarm {row['id']} ({row['kind']}) as {row['acknowledged_by']}")
