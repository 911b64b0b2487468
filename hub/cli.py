"""`peernet hub ...`: a thin click layer over `hub.app.create_app` and the roster store.

- `init`: hub keys (sealed with `PEERNET_HUB_PASSPHRASE`), the TOML config (board keys pinned
  from the board's `board.json`) and `hub-info.json` for `peernet board add-node`;
- `install-roster FILE`: store a signed roster version (checked by the acceptance rules; an
  edited file is refused as `bad_signatures`, a validly signed second roster for a version
  already held raises the split-view alarm: `peernet hub alarm list|ack`);
- `serve`: run the hub (uvloop when installed).

Expected failures print one line `Error: <sentence> [code]` and exit 1
(`federation.cli_errors`). `init` checks the config and data directories, the passphrase and
the database (reachable and writable) before it writes; a key file left by an init that did
not finish is reused when it opens with the same passphrase, and the config file is written
last (0600), so running the same init again after a failure completes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from federation.board import read_pin
from federation.cli_errors import guard
from federation.cli_prompts import ask_passphrase
from federation.clock import SystemClock
from federation.database import make_engine, migrate
from federation.db_errors import probe_database
from federation.init_checks import check_passphrase, leftover_keys, prepare_config_path, prepare_dir
from federation.keystore import KeystoreError, NodeKeys, rotate_key_file
from federation.node_info import node_info_document
from federation.roster_sync import RosterStore
from federation.server_process import run_server
from federation.settings import write_config
from hub.config import HubSettings
from hub.db import Database
from protocol.encoding import b64u

__all__ = ["hub_group"]

T = TypeVar("T")

_config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("hub.toml"),
    show_default=True,
    help="Hub config file (TOML).",
)


def _guard(fn: Callable[[], T], db_url: str | None = None) -> T:
    """Expected failures as one line (`Error: <sentence> [code]`), exit status 1."""
    return guard(fn, db_url)


def _passphrase(confirm: bool = False) -> str:
    return ask_passphrase("PEERNET_HUB_PASSPHRASE", what="Hub key passphrase", confirm=confirm)


@click.group("hub")
def hub_group() -> None:
    """Run and manage a hub (relay, roster, activation log)."""


@hub_group.command("init")
@_config_option
@click.option("--hub-id", required=True, help="Roster id of the hub, e.g. state-hub.")
@click.option("--name", required=True, help="Name shown on pages.")
@click.option("--region", default="state", show_default=True, help="The hub's region.")
@click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("./peernet-hub"),
    help="Where the hub keeps its key file, hub-info.json and (by default) its SQLite database.",
)
@click.option("--db-url", default="", help="Database URL (default: SQLite in data dir).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8090, show_default=True, type=int, help="Port to listen on.")
@click.option("--public-url", required=True, help="URL nodes reach this hub at.")
@click.option(
    "--board",
    "board_file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The board's board.json (keys and threshold to pin).",
)
def init_cmd(
    config_path: Path,
    hub_id: str,
    name: str,
    region: str,
    data_dir: Path,
    db_url: str,
    host: str,
    port: int,
    public_url: str,
    board_file: Path,
) -> None:
    """Create the hub's keys, config and public info (checks first; safe to re-run)."""
    _guard(lambda: prepare_config_path(config_path))
    pin = _guard(lambda: read_pin(board_file))
    board_doc = json.loads(board_file.read_text(encoding="utf-8"))
    settings = _guard(
        lambda: HubSettings.load(
            None,
            hub_id=hub_id,
            name=name,
            region=region,
            data_dir=data_dir.resolve(),
            db_url=db_url,
            host=host,
            port=port,
            public_url=public_url,
            board_keys=board_doc["keys"],
            board_threshold=pin.threshold,
        )
    )
    phrase = _passphrase(confirm=True)
    check_passphrase(phrase)
    prepare_dir(settings.data_dir, "data directory")
    prepare_dir(settings.key_path.parent, "key directory")
    leftover = leftover_keys(settings.key_path, phrase)
    _guard(lambda: asyncio.run(probe_database(settings.db_url)), settings.db_url)
    # Checks done: the key, the public info, then the config file (its presence = finished).
    keys = leftover or NodeKeys.generate()
    if leftover is None:
        _guard(lambda: keys.save(settings.key_path, phrase))
    info_path = _guard(lambda: _write_info(settings, keys))
    _guard(lambda: write_config(config_path, settings.to_toml()))
    click.echo(f"hub {hub_id} initialised: {config_path}")
    click.echo(f"  signing key {keys.key_id}: {b64u(keys.verify_key_bytes)}")
    click.echo(f"  public info for the board: {info_path}")


@hub_group.command("rotate-key")
@_config_option
def rotate_key_cmd(config_path: Path) -> None:
    """Make the hub's next signing key and write hub info listing it for the board.

    The old keys stay in the key file. Restart the hub to load the new key: it keeps
    signing with the key the roster lists until the board publishes the new one
    (`board add-node --replace`), then switches by itself."""
    settings = _guard(lambda: HubSettings.load(config_path))
    if not settings.public_url:
        raise click.ClickException("set public_url in the config: the roster lists it")
    try:
        keys = rotate_key_file(settings.key_path, _passphrase())
    except KeystoreError as exc:
        raise click.ClickException(exc.message) from None
    info_path = _write_info(settings, keys)
    click.echo(f"new signing key {keys.key_id}: {b64u(keys.verify_key_bytes)}")
    click.echo(f"hub info for the board (add-node --replace): {info_path}")


def _write_info(settings: HubSettings, keys: NodeKeys) -> Path:
    info = _guard(
        lambda: node_info_document(
            node_id=settings.hub_id,
            name=settings.name,
            disciplines=[],
            region=settings.region,
            endpoint=str(settings.public_url),
            key_id=keys.key_id,
            verify_key=keys.verify_key_bytes,
            enc_public_key=keys.enc_public_bytes,
            roles=["hub"],
        )
    )
    info_path = settings.data_dir / "hub-info.json"
    info_path.write_text(json.dumps(info, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return info_path


@hub_group.command("install-roster")
@_config_option
@click.argument("roster_file", type=click.Path(dir_okay=False, path_type=Path))
def install_roster_cmd(config_path: Path, roster_file: Path) -> None:
    """Store a signed roster version (it must pass the acceptance rules)."""
    settings = _guard(lambda: HubSettings.load(config_path))

    try:
        data = roster_file.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {roster_file}: {exc.strerror}") from None

    async def run() -> list[int]:
        engine = make_engine(settings.db_url)
        try:
            await migrate(engine, "hub:migrations")
            from federation.roster_acceptance import BoardPin

            pin = BoardPin.from_strings(
                settings.board_keys, settings.board_threshold or len(settings.board_keys)
            )
            store = RosterStore(engine, SystemClock(), pin, Database(engine).write)
            await store.load()
            return [s.version for s in await store.accept_document(data, "operator")]
        finally:
            await engine.dispose()

    accepted = _guard(lambda: asyncio.run(run()), settings.db_url)
    click.echo(f"accepted roster versions: {accepted or 'none new'}")


@hub_group.command("serve")
@_config_option
@click.option("--host", default=None, help="Override the configured host.")
@click.option("--port", default=None, type=int, help="Override the configured port.")
def serve_cmd(config_path: Path, host: str | None, port: int | None) -> None:
    """Serve the hub (relay, roster, activation log, API)."""
    from hub.app import create_app

    settings = _guard(lambda: HubSettings.load(config_path))
    if settings.passphrase is None:
        from pydantic import SecretStr

        settings = settings.model_copy(update={"passphrase": SecretStr(_passphrase())})
    # Name the database in one line when it cannot be reached or written.
    _guard(lambda: asyncio.run(probe_database(settings.db_url)), settings.db_url)
    app = _guard(lambda: create_app(settings))
    _guard(lambda: run_server(  # a port in use or an unreachable database: one line
        app, host=host or settings.host, port=port or settings.port,
        echo=lambda m: click.echo(m, err=True),
        log_format=settings.log_format, log_level=settings.log_level,
    ))


# `peernet hub user add|token|disable` (hub users; see hub.users.cli).
from hub.users.cli import user_group  # noqa: E402

hub_group.add_command(user_group)

# `peernet hub alarm list|ack` (governance alarms; see hub.alarms_cli).
from hub.alarms_cli import alarm_group  # noqa: E402

hub_group.add_command(alarm_group)

# `peernet hub install-compact FILE` (the interstate compact; see hub.interstate.cli).
from hub.interstate.cli import install_compact_cmd  # noqa: E402

hub_group.add_command(install_compact_cmd)
