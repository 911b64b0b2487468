"""`peernet helper init|serve`: a thin click layer over `helper.app.create_app`.

- `init`: the helper's keys (sealed with `PEERNET_HELPER_PASSPHRASE`), its TOML config (the
  board's keys pinned from `board.json`) and `helper-info.json` (role `helper`) for
  `peernet board add-node`; checks the directories, the passphrase and the database before
  it writes, reuses a key file an unfinished init left, and writes the config last, so a
  re-run after a failure completes (as `peernet hub init`);
- `serve`: run the helper (roster from the hub, shares in, results out).

Expected failures print one line `Error: <sentence> [code]` and exit 1.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from federation.board import read_pin
from federation.cli_errors import guard
from federation.cli_prompts import ask_passphrase
from federation.db_errors import probe_database
from federation.init_checks import check_passphrase, leftover_keys, prepare_config_path, prepare_dir
from federation.keystore import NodeKeys
from federation.node_info import node_info_document
from federation.server_process import run_server
from federation.settings import write_config
from helper.config import HelperSettings
from protocol.encoding import b64u

__all__ = ["helper_group"]

_config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
    default=Path("helper.toml"), show_default=True, help="Helper config file (TOML).",
)


def _passphrase(confirm: bool = False) -> str:
    return ask_passphrase("PEERNET_HELPER_PASSPHRASE", what="Helper key passphrase",
                          confirm=confirm)


@click.group("helper")
def helper_group() -> None:
    """Run a helper aggregator (shared aggregation: shares in, noisy sums out)."""


@helper_group.command("init")
@_config_option
@click.option("--helper-id", required=True, help="Roster id of the helper, e.g. state-helper.")
@click.option("--name", required=True, help="Name shown on pages.")
@click.option("--region", default="state", show_default=True, help="The helper's region.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("./peernet-helper"),
              help="Where the helper keeps its key file, helper-info.json and (by default) "
                   "its SQLite database.")
@click.option("--db-url", default="", help="Database URL (default: SQLite in data dir).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8091, show_default=True, type=int, help="Port to listen on.")
@click.option("--public-url", required=True, help="URL the hub reaches this helper at.")
@click.option("--hub-url", required=True, help="The hub's URL (the roster comes from it).")
@click.option("--board", "board_file", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="The board's board.json (keys and threshold to pin).")
def init_cmd(config_path: Path, helper_id: str, name: str, region: str, data_dir: Path,
             db_url: str, host: str, port: int, public_url: str, hub_url: str,
             board_file: Path) -> None:
    """Create the helper's keys, config and public info (checks first; safe to re-run)."""
    guard(lambda: prepare_config_path(config_path))
    pin = guard(lambda: read_pin(board_file))
    board_doc = json.loads(board_file.read_text(encoding="utf-8"))
    settings = guard(lambda: HelperSettings.load(
        None, helper_id=helper_id, name=name, region=region, data_dir=data_dir.resolve(),
        db_url=db_url, host=host, port=port, public_url=public_url, hub_url=hub_url,
        board_keys=board_doc["keys"], board_threshold=pin.threshold))
    phrase = _passphrase(confirm=True)
    check_passphrase(phrase)
    prepare_dir(settings.data_dir, "data directory")
    prepare_dir(settings.key_path.parent, "key directory")
    leftover = leftover_keys(settings.key_path, phrase)
    guard(lambda: asyncio.run(probe_database(settings.db_url)), settings.db_url)
    keys = leftover or NodeKeys.generate()
    if leftover is None:
        guard(lambda: keys.save(settings.key_path, phrase))
    info = guard(lambda: node_info_document(
        node_id=settings.helper_id, name=settings.name, disciplines=[],
        region=settings.region, endpoint=str(settings.public_url), key_id=keys.key_id,
        verify_key=keys.verify_key_bytes, enc_public_key=keys.enc_public_bytes,
        roles=["helper"]))
    info_path = settings.data_dir / "helper-info.json"
    info_path.write_text(json.dumps(info, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    guard(lambda: write_config(config_path, settings.to_toml()))
    click.echo(f"helper {helper_id} initialised: {config_path}")
    click.echo(f"  signing key {keys.key_id}: {b64u(keys.verify_key_bytes)}")
    click.echo(f"  public info for the board: {info_path}")


@helper_group.command("serve")
@_config_option
@click.option("--host", default=None, help="Override the configured host.")
@click.option("--port", default=None, type=int, help="Override the configured port.")
def serve_cmd(config_path: Path, host: str | None, port: int | None) -> None:
    """Serve the helper aggregator."""
    from pydantic import SecretStr

    from helper.app import create_app

    settings = guard(lambda: HelperSettings.load(config_path))
    if settings.passphrase is None:
        settings = settings.model_copy(update={"passphrase": SecretStr(_passphrase())})
    guard(lambda: asyncio.run(probe_database(settings.db_url)), settings.db_url)
    app = guard(lambda: create_app(settings))
    guard(lambda: run_server(app, host=host or settings.host, port=port or settings.port,
                             echo=lambda m: click.echo(m, err=True),
                             log_format=settings.log_format, log_level=settings.log_level))
