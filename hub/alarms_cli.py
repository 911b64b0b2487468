"""`peernet hub alarm ...`: the hub's governance alarms from the command line.

- `list [--active] [--json]`: a table (id, when raised, kind, source, status, then the
  reason in words), or JSON for scripts (times in epoch milliseconds);
- `ack ID --note TEXT [--by NAME]`: acknowledge an alarm once, recording who (default: the
  login name), when and why. The alarm is kept; it stops counting as active.

Thin over `federation.roster_alarms`; expected failures print one line (`<code>: <message>`)
and exit non-zero, and change nothing.
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
from hub.config import HubSettings
from hub.db import Database
from hub.errors import HubError

__all__ = ["alarm_group"]

T = TypeVar("T")

_config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
    default=Path("hub.toml"), show_default=True, help="The hub's TOML config file.",
)


def _run(config_path: Path, fn: Callable[[Database], Awaitable[T]]) -> T:
    async def go() -> T:
        settings = HubSettings.load(config_path)
        db = Database(make_engine(settings.db_url))
        try:
            await migrate(db.engine, "hub:migrations")
            return await fn(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(go())
    except HubError as exc:
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
    rows = _run(config_path, lambda db: list_alarms(db.engine, active_only=active_only))
    echo_alarms(rows, active_only=active_only, as_json=as_json)


@alarm_group.command("ack")
@_config_option
@click.argument("alarm_id", type=int)
@click.option("--note", required=True,
              help=f"Why it is acknowledged (what was checked, who was told); "
                   f"at most {MAX_NOTE} characters.")
@click.option("--by", "by", default=None, help="Who acknowledges it (default: your login name).")
def ack_cmd(config_path: Path, alarm_id: int, note: str, by: str | None) -> None:
    """Acknowledge an alarm: kept, with who, when and why; no longer active."""
    who = by if by is not None else getpass.getuser()

    async def go(db: Database) -> dict[str, Any]:
        async with db.write() as conn:
            return await acknowledge(conn, alarm_id, by=who, note=note,
                                     now_ms=SystemClock().now_ms())

    row = _run(config_path, go)
    click.echo(f"acknowledged alarm {row['id']} ({row['kind']}) as {row['acknowledged_by']}")
