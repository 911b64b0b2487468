"""`peernet hub user ...`: hub users from the command line (thin over `hub.users.accounts`).

- `add USERNAME --role operator|board_analyst`: the password from a hidden prompt (or
  `--password-stdin`);
- `token USERNAME [--label L] [--days N]`: a new API token for scripts, printed once;
- `disable USERNAME`: ends the user's sessions and revokes their tokens;
- `unlock USERNAME`: clears the user's login delays (`federation.login_throttle`).

Expected failures print one line (`<code>: <message>`) and exit non-zero.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from federation.clock import SystemClock
from federation.database import make_engine, migrate
from federation.login_throttle import LoginThrottle
from federation.passwords import PasswordHasher
from hub.config import HubSettings
from hub.db import Database
from hub.errors import HubError
from hub.users import accounts as users

__all__ = ["user_group"]

T = TypeVar("T")

_config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
    default=Path("hub.toml"), show_default=True, help="Hub config file (TOML).",
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


@click.group("user")
def user_group() -> None:
    """Hub users: operators and board analysts."""


@user_group.command("add")
@_config_option
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in users.HubRole]), required=True,
              help="operator: the roster and alarms; board_analyst: the statistics.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
def add_cmd(config_path: Path, username: str, role: str, password_stdin: bool) -> None:
    """Add a hub user."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    made = _run(config_path, lambda db: users.create_user(
        db, PasswordHasher(users.PASSWORD_COST), username=username, password=password,
        role=role, now_ms=SystemClock().now_ms()))
    click.echo(f"added {made['username']} ({made['role']})")


@user_group.command("token")
@_config_option
@click.argument("username")
@click.option("--label", default="script", show_default=True,
              help="A name to tell tokens apart.")
@click.option("--days", type=click.IntRange(1, 3650), default=None,
              help="Expire after this many days (default: never).")
def token_cmd(config_path: Path, username: str, label: str, days: int | None) -> None:
    """Create an API token (shown once; send it as `Authorization: Bearer <token>`)."""
    token = _run(config_path, lambda db: users.create_token(
        db, username=username, label=label, now_ms=SystemClock().now_ms(), expires_days=days))
    click.echo(token)


@user_group.command("disable")
@_config_option
@click.argument("username")
def disable_cmd(config_path: Path, username: str) -> None:
    """Disable a user: their sessions end and their tokens stop working."""
    _run(config_path, lambda db: users.set_active(db, username, False, SystemClock().now_ms()))
    click.echo(f"disabled {username}")


@user_group.command("unlock")
@_config_option
@click.argument("username")
def unlock_cmd(config_path: Path, username: str) -> None:
    """Clear a user's login delays (after too many wrong passwords), from every address."""
    removed = _run(config_path, lambda db: users.unlock_login(db, LoginThrottle(), username))
    click.echo(f"unlocked {username} ({removed} counters cleared)")
