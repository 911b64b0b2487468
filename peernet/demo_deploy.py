"""`peernet node public-info` and `peernet node rotate-key`: the node-info document an
agency hands its state board, and a signing key rotation that produces the next one.

`peernet board add-node --info FILE` reads a `peernet-node-info-v1` document
(`federation.node_info.node_info_document`): node id, name, disciplines, region, endpoint and
the public halves of the node's keys. `peernet hub init` writes the hub's; nothing in the
node CLI wrote a node's yet, so the README's deployment steps and the Docker entrypoint
had no way to list a node. This command fills that gap from the node's config and key file
(opened with `PEERNET_PASSPHRASE`; only public keys are written).

`rotate-key` adds the next signing key version to the key file (`rotate_key_file`) and
writes the node info listing it. The node signs with the newest of its keys that its
roster lists (`NodeKeys.signer`), so it switches once the board publishes the new key; the
board keeps the dropped key as an old key for a grace period (`board.ROTATION_GRACE_MS`).

Both are attached to `peernet node` when `peernet.demo` is imported (as `peernet.cli`
does), and only if the node CLI does not have commands of those names of its own.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NoReturn

import click

from federation.cli_errors import CliError
from federation.errors import FederationError
from federation.keystore import KeystoreError, NodeKeys, rotate_key_file
from federation.node_info import node_info_document
from node.core.config import NodeSettings
from node.core.errors import NodeError
from protocol.encoding import b64u

__all__ = ["public_info_command", "register", "rotate_key_command"]


def _fail(message: str, code: object = "failed") -> NoReturn:
    """The CLI's one error style (`federation.cli_errors`): `Error: <message> [code]`."""
    raise CliError(message, str(getattr(code, "value", code)))


_CONFIG = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
    default=lambda: os.environ.get("PEERNET_NODE_CONFIG", "peernet-node.toml"),
    show_default="$PEERNET_NODE_CONFIG or peernet-node.toml", help="Node config file.")


@click.command("public-info")
@_CONFIG
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write it (default: <data_dir>/node-info.json).")
def public_info_command(config_path: Path, out: Path | None) -> None:
    """Write this node's public info (endpoint, public keys) for `peernet board add-node`."""
    settings = _settings(config_path)
    try:
        keys = NodeKeys.load(settings.key_path, _phrase(settings))
    except KeystoreError as exc:
        _fail(exc.message, exc.code)
    path = _write_info(settings, keys, out)
    click.echo(f"node info for the board: {path}")


def _settings(config_path: Path) -> NodeSettings:
    try:
        settings = NodeSettings.load(config_path)
    except NodeError as exc:
        _fail(exc.message, exc.code)
    if not settings.public_url:
        _fail("set public_url in the config (or PEERNET_PUBLIC_URL): the roster lists it",
              "config")
    return settings


def _phrase(settings: NodeSettings) -> str:
    phrase = os.environ.get("PEERNET_PASSPHRASE") or (
        settings.passphrase.get_secret_value() if settings.passphrase else None)
    if not phrase:
        phrase = click.prompt("Key passphrase", hide_input=True, err=True)
    return str(phrase)


@click.command("rotate-key")
@_CONFIG
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the new node info (default: <data_dir>/node-info.json).")
def rotate_key_command(config_path: Path, out: Path | None) -> None:
    """Make the node's next signing key and write node info listing it for the board.

    The old keys stay in the key file. Restart the node to load the new key: it keeps
    signing with the key the roster lists until the board publishes the new one
    (`board add-node --replace`), then switches by itself; the old key stays valid as an
    old key for a grace period so nothing in flight is refused."""
    settings = _settings(config_path)
    try:
        keys = rotate_key_file(settings.key_path, _phrase(settings))
    except KeystoreError as exc:
        _fail(exc.message, exc.code)
    path = _write_info(settings, keys, out)
    click.echo(f"new signing key {keys.key_id}: {b64u(keys.verify_key_bytes)}")
    click.echo(f"node info for the board (add-node --replace): {path}")


def _write_info(settings: NodeSettings, keys: NodeKeys, out: Path | None) -> Path:
    try:
        doc = node_info_document(
            node_id=settings.node_id, name=settings.name,
            disciplines=[d.value for d in settings.disciplines], region=settings.region,
            endpoint=str(settings.public_url), key_id=keys.key_id,
            verify_key=keys.verify_key_bytes, enc_public_key=keys.enc_public_bytes,
        )
    except FederationError as exc:
        _fail(exc.message, exc.code)
    path = out or settings.data_dir / "node-info.json"
    try:
        path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror}", "os_error")
    return path


def register() -> None:
    """Attach `public-info` and `rotate-key` to `peernet node` unless it has its own."""
    try:
        from node.cli import node_group
    except ImportError:
        return
    for command in (public_info_command, rotate_key_command):
        if command.name not in node_group.commands:
            node_group.add_command(command)
