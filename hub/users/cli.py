"""`peernet hub user ...`: hub users from the command line (thin over `hub.users.accounts`).

- `add USERNAME --role operator|board_analyst`: the password from a hidden prompt (or
  `--password-stdin`);
- `token USERNAME [--label L] [--days N]`: a new API token for scripts, printed once;
- `disable USERNAME`: ends the user's sessions and revokes their tokens (never the last
  active operator); `enable USERNAME` lets them log in again;
- `unlock USERNAME`: clears the user's login delays (`federation.login_throttle`);
- `list [--role R] [--active|--disabled] [--search TEXT]`: users by name, with a count;
- `reset-password USERNAME`: a temporary password, printed once, that the user must change
  at their next login; their sessions end and their tokens are revoked.

Account actions are logged on `peernet.hub.users` (the hub has no audit chain).

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
from hub.users import passwords

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


@user_group.command("enable")
@_config_option
@click.argument("username")
def enable_cmd(config_path: Path, username: str) -> None:
    """Enable a disabled user (they log in again; their old tokens stay revoked)."""
    _run(config_path, lambda db: users.set_active(db, username, True, SystemClock().now_ms()))
    click.echo(f"enabled {username}")


@user_group.command("list")
@_config_option
@click.option("--role", type=click.Choice([r.value for r in users.HubRole]), default=None,
              help="Only this role.")
@click.option("--active/--disabled", "active", default=None,
              help="Only active (or only disabled) users.")
@click.option("--search", default=None, help="Part of the username.")
def list_cmd(config_path: Path, role: str | None, active: bool | None,
             search: str | None) -> None:
    """List hub users by username (role, status), with how many match."""
    f = passwords.UserFilter(users.HubRole(role) if role else None, active,
                             search.strip().casefold() if search else None)
    rows, total = _run(config_path, lambda db: passwords.page_users(db, f, 0, 100_000))
    click.echo(f"{'USERNAME':30}  {'ROLE':14}  STATUS")
    for u in rows:
        status = "active" if u["active"] else "disabled"
        if u["must_change_password"]:
            status += ", must change password"
        click.echo(f"{u['username']:30}  {u['role']:14}  {status}")
    click.echo(f"{total} user{'s' if total != 1 else ''}")


@user_group.command("reset-password")
@_config_option
@click.argument("username")
def reset_password_cmd(config_path: Path, username: str) -> None:
    """Give a user a temporary password (printed once) they must change at next login;
    ends their sessions and revokes their API tokens."""
    def reset(db: Database) -> Awaitable[passwords.Reset]:
        oidc = HubSettings.load(config_path).oidc  # loaded (and checked) by _run already
        return passwords.reset_password(
            db, PasswordHasher(users.PASSWORD_COST), username, now_ms=SystemClock().now_ms(),
            oidc_only=oidc is not None and oidc.only)

    out = _run(config_path, reset)
    click.echo(f"temporary password for {out.username} (shown once; they must change it at "
               f"next login): {out.temporary_password}")
