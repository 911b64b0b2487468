"""`peernet hub install-compact FILE`: store a signed interstate compact version at the hub.

Like `install-roster`: the document must pass every acceptance rule
(`federation.compact_acceptance`: each member board's threshold, this hub's pinned board,
the chain, dates); an edited file is refused (`bad_signatures`), too few signatures of one
board is `compact_threshold`, a compact not listing this hub's network is
`network_not_in_compact`, a validly signed second compact for a version already held raises
the split-view alarm. Nothing is stored on a refusal. The hub needs `network_id` and its
board keys in its config. A running hub fetches the member networks' rosters on its next
refresh (or at once when the compact is installed through `POST /api/v1/compact`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from federation.cli_errors import guard
from federation.clock import SystemClock
from federation.compact_acceptance import CompactPin
from federation.compact_store import CompactStore
from federation.database import make_engine, migrate
from federation.errors import FedCode, FederationError
from hub.config import HubSettings
from hub.db import Database

__all__ = ["install_compact_cmd"]


@click.command("install-compact")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("hub.toml"), show_default=True, help="Hub config file (TOML).")
@click.argument("compact_file", type=click.Path(dir_okay=False, path_type=Path))
def install_compact_cmd(config_path: Path, compact_file: Path) -> None:
    """Store a signed interstate compact version (it must pass the acceptance rules)."""
    settings = guard(lambda: HubSettings.load(config_path))
    try:
        data = compact_file.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {compact_file}: {exc.strerror}") from None

    def pin() -> CompactPin:
        if not settings.network_id or not settings.board_keys:
            raise FederationError(FedCode.BAD_INPUT, "set network_id and board_keys in the hub "
                                  "config to hold a compact", "network_id")
        return CompactPin.of(settings.network_id, settings.board_keys,
                             settings.board_threshold or len(settings.board_keys))

    compact_pin = guard(pin)

    async def run() -> tuple[list[int], int]:
        engine = make_engine(settings.db_url)
        try:
            await migrate(engine, "hub:migrations")
            store = CompactStore(engine, SystemClock(), compact_pin, Database(engine).write)
            await store.load()
            fresh = await store.accept_document(data, "operator")
            return [s.version for s in fresh], store.state.version
        finally:
            await engine.dispose()

    accepted, version = guard(lambda: asyncio.run(run()), settings.db_url)
    click.echo(f"accepted compact versions: {accepted or 'none new'} (current {version})")
