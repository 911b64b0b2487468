"""`peernet node ...`: a thin click layer over `node.web.app.create_app` and the node services.

    peernet node init   --config node.toml --node-id metro-fire --name "Metro Fire" ...
    peernet node serve  --config node.toml
    peernet node user add USERNAME --role peer_supporter [--team main]
    peernet node user unlock USERNAME
    peernet node token create --user USERNAME [--label cli] [--expires-days N]
    peernet node token list [--user USERNAME]
    peernet node token revoke TOKEN_ID
    peernet node audit verify
    peernet node purge [--days N]

The passphrase that opens the key files comes from `PEERNET_PASSPHRASE` or a hidden prompt
that names it; new passwords come from a hidden prompt (or `--password-stdin`). The config
file defaults to `$PEERNET_NODE_CONFIG` or `./peernet-node.toml`.

Expected failures (missing config, wrong passphrase, unreachable database, port in use, a
refused value) print one line `Error: <sentence> [code]` on stderr and exit with status 1
(`federation.cli_errors`); a traceback means a bug. `init` checks everything before it
writes, and a retry after a failure completes (`node.commands.init`); `serve` refuses a database
that was never initialised.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from pydantic import SecretStr, ValidationError

from federation.cli_errors import CliError, guard
from federation.cli_prompts import ask_passphrase, read_password
from federation.clock import SystemClock
from federation.database import is_sqlite, make_engine, migrate
from federation.init_checks import check_passphrase, prepare_config_path, prepare_dir
from federation.keystore import NodeKeys
from federation.passwords import INTERACTIVE, PasswordHasher
from federation.server_process import run_workers
from federation.settings import write_config
from node.accounts.users import create_token, create_user
from node.activation import cli as activation_cli
from node.commands import alarms as alarms_cli
from node.commands import audit as audit_cli
from node.commands.init import check_database, load_leftovers, require_initialised, write_node
from node.core.config import NodeSettings
from node.core.context import NodeContext
from node.core.db import Database
from node.core.errors import Code, NodeError
from node.core.pseudonym import Pseudonymizer
from node.core.schemas import TokenIn, UserIn
from node.core.vocabulary import RecipientDiscipline, Role
from node.ops import cli as ops_cli
from node.privacy import cli as release_cli
from node.records import retention

__all__ = ["node_group"]

T = TypeVar("T")
DEFAULT_CONFIG = "peernet-node.toml"
PASSPHRASE_ENV = "PEERNET_PASSPHRASE"  # noqa: S105 - the variable's name


def _fail(message: str, code: str = "failed") -> NoReturn:
    raise CliError(message, code)


# The database of the command's settings (set by `_load`), named in database errors.
_DB_URL: list[str] = []


def _guard(fn: Callable[[], T]) -> T:
    """Run `fn`, turning expected failures into one line on stderr and exit status 1."""
    return guard(fn, _DB_URL[-1] if _DB_URL else None)


def _run(coro: Awaitable[T]) -> T:
    return _guard(lambda: asyncio.run(_as_coro(coro)))


async def _as_coro(aw: Awaitable[T]) -> T:
    return await aw


def _config_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
        default=lambda: os.environ.get("PEERNET_NODE_CONFIG", DEFAULT_CONFIG),
        show_default=f"$PEERNET_NODE_CONFIG or {DEFAULT_CONFIG}", help="Node config file.",
    )(fn)


def _passphrase(confirm: bool = False) -> str:
    return ask_passphrase(PASSPHRASE_ENV, confirm=confirm)


def _password(stdin: bool, prompt: str = "Password") -> str:
    return read_password(stdin, prompt)


def _load(config_path: Path, with_passphrase: bool = False) -> NodeSettings:
    settings = _guard(lambda: NodeSettings.load(config_path))
    _DB_URL.append(settings.db_url)
    if with_passphrase and settings.passphrase is None:
        phrase = _passphrase()
        settings = settings.model_copy(update={"passphrase": SecretStr(phrase)})
    return settings


def _secrets(settings: NodeSettings) -> tuple[NodeKeys, Pseudonymizer]:
    from node.web.app import load_secrets

    return _guard(lambda: load_secrets(settings))


async def _with_context(settings: NodeSettings, fn: Callable[[NodeContext], Awaitable[T]],
                        keys: NodeKeys | None = None,
                        pseudonyms: Pseudonymizer | None = None, *, sign: bool = True) -> T:
    await require_initialised(settings, None)  # never create an empty node silently
    db = Database(make_engine(settings.db_url))
    try:
        await migrate(db.engine, "node:migrations")
        ctx = NodeContext(db, SystemClock(), settings, pseudonyms or Pseudonymizer.generate(),
                          PasswordHasher(INTERACTIVE), keys)
        out = await fn(ctx)
        if sign:  # the entries it appended (never after verify: it would bless what it read)
            await audit_cli.sign_moved_head(db, settings, keys, ctx.now())
        return out
    finally:
        await db.dispose()


@click.group()
def node_group() -> None:
    """Run and manage an agency node."""


@node_group.command("init")
@_config_option
@click.option("--node-id", required=True, help="Roster id, e.g. metro-fire.")
@click.option("--name", required=True, help="Agency name shown on pages.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("./peernet-node"), show_default=True,
              help="Where the node keeps its key file and (by default) its SQLite database.")
@click.option("--db-url", default="", help="Database URL (default: SQLite in data dir).")
@click.option("--discipline", "disciplines", multiple=True,
              type=click.Choice([d.value for d in RecipientDiscipline]),
              help="A discipline the agency's peers serve (repeat).")
@click.option("--region", default="", help="The agency's region, as the board names it.")
@click.option("--timezone", default="UTC", show_default=True,
              help="IANA zone for times on pages, e.g. America/Chicago.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option("--admin", "admin_name", default="admin", show_default=True,
              help="Username of the first admin.")
@click.option("--password-stdin", is_flag=True, help="Read the admin password from stdin.")
def init_cmd(config_path: Path, node_id: str, name: str, data_dir: Path, db_url: str,
             disciplines: tuple[str, ...], region: str, timezone: str, host: str, port: int,
             admin_name: str, password_stdin: bool) -> None:
    """Create the config file, key files, database and first admin.

    Everything is checked before anything is written (directories, passphrase, database
    reachable, writable and empty); the config file is written last. After a failure, run
    the same command again: it reuses what the failed run left, or says what to remove."""
    data_dir = data_dir.resolve()
    settings = _guard(lambda: NodeSettings.load(
        None, node_id=node_id, name=name, data_dir=data_dir, db_url=db_url,
        disciplines=list(disciplines), region=region, timezone=timezone, host=host, port=port,
    ))
    _DB_URL.append(settings.db_url)
    _guard(lambda: prepare_config_path(config_path))
    admin = _guard(lambda: _user_in(admin_name, "x" * 10, Role.ADMIN.value, "main"))
    phrase = _passphrase(confirm=True)
    check_passphrase(phrase)
    password = _password(password_stdin, f"Password for {admin.username}")
    admin = _guard(lambda: _user_in(admin_name, password, Role.ADMIN.value, "main"))
    prepare_dir(data_dir, "data directory")
    for path in (settings.key_path, settings.pseudonym_key_path):
        prepare_dir(path.parent, "key directory")
    plan = _guard(lambda: load_leftovers(settings, phrase))
    _run(check_database(settings, plan, admin.username))
    # Checks done: write keys, database, then the config file (its presence = finished).
    _run(write_node(settings, plan, admin, phrase))
    _guard(lambda: write_config(config_path, settings.to_toml()))
    keys = plan.keys
    from protocol.encoding import b64u

    click.echo(f"node {settings.node_id} initialised")
    click.echo(f"  config:     {config_path}")
    click.echo(f"  database:   {settings.db_url if 'sqlite' in settings.db_url else 'postgresql'}")
    click.echo(f"  signing key {keys.key_id}: {b64u(keys.verify_key_bytes)}")
    click.echo(f"  encryption key: {b64u(keys.enc_public_bytes)}")
    click.echo(f"  admin user: {admin.username}")


def _user_in(username: str, password: str, role: str, team: str) -> UserIn:
    try:
        return UserIn(username=username, password=password, role=Role(role), team=team)
    except (ValidationError, ValueError) as exc:
        field = ""
        if isinstance(exc, ValidationError):
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise NodeError(Code.INVALID_INPUT, f"{field}: {err['msg']}", field) from None
        raise NodeError(Code.INVALID_INPUT, str(exc)) from None


@node_group.command("serve")
@_config_option
@click.option("--host", default=None, help="Override the configured host.")
@click.option("--port", default=None, type=int, help="Override the configured port.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Processes serving the address (PostgreSQL only; one per core).")
def serve_cmd(config_path: Path, host: str | None, port: int | None, workers: int) -> None:
    """Serve the node's pages and API (uvloop when installed)."""
    from node.web.app import create_app

    settings = _load(config_path, with_passphrase=True)
    port = port or settings.port
    if workers > 1 and is_sqlite(settings.db_url):
        _fail("--workers: a SQLite database is served by one process; use PostgreSQL for "
              "several workers", Code.INVALID_INPUT.value)
    if workers > 1 and port == 0:
        _fail("--workers: give a port (each worker listens on the same one)",
              Code.INVALID_INPUT.value)
    keys, pseudonyms = _secrets(settings)
    _run(require_initialised(settings, config_path))  # never create an empty node silently
    status = guard(lambda: run_workers(
        lambda: _guard(lambda: create_app(settings, keys=keys, pseudonyms=pseudonyms)),
        workers=workers, host=host or settings.host, port=port,
        echo=lambda m: click.echo(m, err=True), log_format=settings.log_format,
        log_level=settings.log_level))
    if status:
        raise SystemExit(status)


@node_group.group("user")
def user_group() -> None:
    """Manage users."""


@user_group.command("add")
@_config_option
@click.argument("username")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]),
              help="What the user may do.")
@click.option("--team", default="main", show_default=True, help="The user's peer team.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
def user_add_cmd(config_path: Path, username: str, role: str, team: str,
                 password_stdin: bool) -> None:
    """Add a user (any role)."""
    settings = _load(config_path)
    _guard(lambda: _user_in(username, "x" * 10, role, team))
    data = _guard(lambda: _user_in(username, _password(password_stdin), role, team))
    out = _run(_with_context(settings, lambda ctx: create_user(ctx, None, data)))
    click.echo(f"user {out.username} ({out.role.value}, team {out.team}) added")


@node_group.group("token")
def token_group() -> None:
    """API tokens for scripts."""


@token_group.command("create")
@_config_option
@click.option("--user", "username", required=True, help="Whose token (their role applies).")
@click.option("--label", default="cli", show_default=True,
              help="A name to tell tokens apart in `token list`.")
@click.option("--expires-days", type=int, default=None,
              help="Days until the token stops working (default: never).")
def token_create_cmd(config_path: Path, username: str, label: str,
                     expires_days: int | None) -> None:
    """Create an API token for a user; printed once, stored only as a hash."""
    from sqlalchemy import select

    from node.core.db import User, table_of

    settings = _load(config_path)
    try:
        data = TokenIn(label=label, expires_days=expires_days)
    except ValidationError as exc:
        _fail(f"{exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")
    users = table_of(User)

    async def make(ctx: NodeContext) -> str:
        async with ctx.db.read() as conn:
            uid = (await conn.execute(select(users.c.id).where(
                users.c.username == username))).scalar()
        if uid is None:
            raise NodeError(Code.NOT_FOUND, f"no user {username}")
        return (await create_token(ctx, uid, data)).token

    click.echo(_run(_with_context(settings, make)))


@user_group.command("unlock")
@_config_option
@click.argument("username")
def user_unlock_cmd(config_path: Path, username: str) -> None:
    """Clear a user's login delays (after wrong passwords), from every address; audited."""
    from federation.login_throttle import LoginThrottle
    from node.accounts.users import unlock_login

    settings = _load(config_path)
    n = _run(_with_context(settings, lambda ctx: unlock_login(ctx, LoginThrottle(), None,
                                                              username)))
    click.echo(f"unlocked {username} ({n} counters cleared)")


@user_group.command("reset-password")
@_config_option
@click.argument("username")
def user_reset_password_cmd(config_path: Path, username: str) -> None:
    """Give a user a temporary password (printed once) they must change at next login;
    ends their sessions and revokes their API tokens; audited."""
    from node.accounts.passwords import reset_password

    settings = _load(config_path)
    out = _run(_with_context(settings, lambda ctx: reset_password(ctx, None, username)))
    click.echo(f"temporary password for {out.username} (shown once; they must change it at "
               f"next login): {out.temporary_password}")


@token_group.command("list")
@_config_option
@click.option("--user", "username", default=None, help="Only this user's tokens.")
def token_list_cmd(config_path: Path, username: str | None) -> None:
    """List API tokens (id, user, label, state, times in UTC); never their values."""
    from node.accounts.tokens import list_tokens

    settings = _load(config_path)
    items = _run(_with_context(settings, lambda ctx: list_tokens(ctx, None, username)))
    click.echo(f"{'ID':36}  {'USER':20}  {'LABEL':20}  {'STATE':8}  CREATED (UTC)")
    for t in items:
        click.echo(f"{t.id!s:36}  {t.user:20}  {t.label:20}  {t.state:8}  "
                   f"{t.created_at:%Y-%m-%d %H:%M}")


@token_group.command("revoke")
@_config_option
@click.argument("token_id", type=click.UUID)
def token_revoke_cmd(config_path: Path, token_id: Any) -> None:
    """Revoke an API token by its id (see `token list`); audited."""
    from node.accounts.tokens import revoke_token

    settings = _load(config_path)
    out = _run(_with_context(settings, lambda ctx: revoke_token(ctx, None, token_id)))
    click.echo(f"revoked token {out.id} of {out.user}")


@node_group.group("audit")
def audit_group() -> None:
    """The audit log."""


@audit_group.command("verify")
@_config_option
@click.option("--offline", is_flag=True,
              help="Check only the local log, without the hub's anchor (a log cut back to an "
                   "older signed head then goes unnoticed).")
def audit_verify_cmd(config_path: Path, offline: bool) -> None:
    """Check the hash chain, the signed head and the hub's anchor; exit 1 naming the first
    failed check (problem code and entry)."""
    settings = _load(config_path, with_passphrase=True)
    keys, _ = _secrets(settings)

    async def check(ctx: NodeContext) -> audit_cli.VerifyOutcome:
        return await audit_cli.verify_all(ctx.db, settings, keys, ctx.clock, offline=offline)

    out = _run(_with_context(settings, check, keys=keys, sign=False))
    report = out.report
    if not report.ok:
        _fail(f"audit log broken at entry {report.first_broken} ({report.problem}): "
              f"{report.message}")
    if out.unavailable is not None:
        _fail(f"audit log intact locally, but the hub's anchor could not be checked "
              f"({out.unavailable}); a log cut back to an older signed head would go "
              "unnoticed. Retry when the hub is reachable, or use --offline")
    click.echo(f"audit log intact: {report.entries} entries, head {report.head_seq}, "
               f"signed through {report.signed_seq}; {out.anchor_note}")


@node_group.command("purge")
@_config_option
@click.option("--days", type=click.IntRange(1, 36500), default=None,
              help="Purge encounters older than this (default: retention_days).")
def purge_cmd(config_path: Path, days: int | None) -> None:
    """Delete encounters past the retention period (audited by count)."""
    settings = _load(config_path)
    n_days = days or settings.retention_days
    count = _run(_with_context(settings, lambda ctx: retention.purge_encounters(ctx, n_days)))
    click.echo(f"purged {count} encounters older than {n_days} days")



release_cli.register(node_group)  # `node release --month`, `node ledger`
node_group.add_command(activation_cli.activation_group)  # `node activation ...`
node_group.add_command(alarms_cli.alarm_group)  # `node alarm list|ack`
ops_cli.register(node_group)  # `node backup|restore|export|detach`
