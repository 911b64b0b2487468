"""`peernet node public-info`: the node-info document an agency hands its state board.

`peernet board add-node --info FILE` reads a `peernet-node-info-v1` document
(`federation.roster.node_info_document`): node id, name, disciplines, region, endpoint and
the public halves of the node's keys. `peernet hub init` writes the hub's; nothing in the
node CLI wrote a node's yet, so the README's deployment steps and the Docker entrypoint
had no way to list a node. This command fills that gap from the node's config and key file
(opened with `PEERNET_PASSPHRASE`; only public keys are written).

It is attached to `peernet node` when `peernet.demo` is imported (as `peernet.cli` does),
and only if the node CLI does not have a `public-info` command of its own.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import NoReturn

import click

from federation.errors import FederationError
from federation.keystore import KeystoreError, NodeKeys
from federation.roster import node_info_document
from node.config import NodeSettings
from node.errors import NodeError

__all__ = ["public_info_command", "register"]


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@click.command("public-info")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default=lambda: os.environ.get("PEERNET_NODE_CONFIG", "peernet-node.toml"),
              show_default="$PEERNET_NODE_CONFIG or peernet-node.toml", help="Node config file.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write it (default: <data_dir>/node-info.json).")
def public_info_command(config_path: Path, out: Path | None) -> None:
    """Write this node's public info (endpoint, public keys) for `peernet board add-node`."""
    try:
        settings = NodeSettings.load(config_path)
    except NodeError as exc:
        _fail(exc.message)
    if not settings.public_url:
        _fail("set public_url in the config (or PEERNET_PUBLIC_URL): the roster lists it")
    phrase = os.environ.get("PEERNET_PASSPHRASE") or (
        settings.passphrase.get_secret_value() if settings.passphrase else None)
    if not phrase:
        phrase = click.prompt("Key passphrase", hide_input=True, err=True)
    try:
        keys = NodeKeys.load(settings.key_path, str(phrase))
        doc = node_info_document(
            node_id=settings.node_id, name=settings.name,
            disciplines=[d.value for d in settings.disciplines], region=settings.region,
            endpoint=settings.public_url, key_id=keys.key_id,
            verify_key=keys.verify_key_bytes, enc_public_key=keys.enc_public_bytes,
        )
    except KeystoreError as exc:
        _fail(exc.message)
    except FederationError as exc:
        _fail(exc.message)
    path = out or settings.data_dir / "node-info.json"
    try:
        path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror}")
    click.echo(f"node info for the board: {path}")


def register() -> None:
    """Attach `public-info` to `peernet node` unless it already has one."""
    try:
        from node.cli import node_group
    except ImportError:
        return
    if "public-info" not in node_group.commands:
        node_group.add_command(public_info_command)
