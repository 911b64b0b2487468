"""`peernet board compact ...`: a thin click layer over `federation.board_compact`.

Mirrors the roster commands of `federation.board_cli`: a draft edited in a directory, each
board member signs with their own passphrase-sealed board key (`--passphrase-env`, default
`PEERNET_BOARD_PASSPHRASE`, else a prompt), `combine` checks before it writes, `verify`
prints a plain report per member network and exits 1 when the compact would be refused.
Expected failures print one line (`error: <code>: <message>`) and exit 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import ParamSpec, TypeVar

import click

from federation.board_compact import (
    CompactDir,
    member_from,
    network_report,
    read_board_file,
    verify_compact_file,
)
from federation.board_keys import load_board_key
from federation.cli_prompts import ask_passphrase
from federation.clock import SystemClock
from federation.compact_acceptance import CompactPin, parse_compact_document
from federation.errors import FederationError
from federation.node_info import parse_node_info
from protocol.canonical import parse_json
from protocol.errors import ProtocolError

__all__ = ["compact_group"]

P = ParamSpec("P")
R = TypeVar("R")
DAY_MS = 86_400_000

_DIR = click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
                    required=True, help="Compact directory.")
_PASS_ENV = click.option("--passphrase-env", default="PEERNET_BOARD_PASSPHRASE",
                         show_default=True,
                         help="Environment variable holding the key file passphrase.")


def _now() -> int:
    return SystemClock().now_ms()


def _expected(fn: Callable[P, R]) -> Callable[P, R]:
    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except FederationError as exc:
            raise click.ClickException(f"{exc.code}: {exc.message}") from None

    return wrapper


@click.group("compact")
def compact_group() -> None:
    """Interstate compact: member networks, drafts, signatures of every member board."""


@compact_group.command("init")
@_DIR
@click.option("--compact-id", required=True, help="The compact's id (e.g. us-peer-compact).")
@click.option("--validity-days", type=int, default=365, show_default=True,
              help="Days version 1 stays valid.")
@_expected
def init_cmd(directory: Path, compact_id: str, validity_days: int) -> None:
    """Start the draft of compact version 1 (no members yet)."""
    CompactDir(directory).init(compact_id, _now(), validity_days)
    click.echo(f"compact {compact_id}: draft version 1 in {directory}")


@compact_group.command("add-network")
@_DIR
@click.option("--network-id", required=True, help="The network's id (e.g. tx).")
@click.option("--name", required=True, help="The network's name (e.g. Texas).")
@click.option("--board", "board_file", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="The network board's board.json (public keys, threshold).")
@click.option("--hub-info", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The network hub's public info JSON.")
@click.option("--endpoint", default=None, help="The hub's public endpoint (default: its info's).")
@click.option("--replace", is_flag=True, help="Replace the entry of a network already listed.")
@_expected
def add_network_cmd(directory: Path, network_id: str, name: str, board_file: Path,
                    hub_info: Path, endpoint: str | None, replace: bool) -> None:
    """List a member network (its board and its hub) in the draft."""
    try:
        info = hub_info.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {hub_info}: {exc.strerror}") from None
    member = member_from(network_id, name, read_board_file(board_file), parse_node_info(info),
                         endpoint)
    draft = CompactDir(directory).add_network(member, _now(), replace=replace)
    click.echo(f"{network_id} listed in draft version {draft['version']} "
               f"({len(draft['networks'])} networks)")


@compact_group.command("remove-network")
@_DIR
@click.argument("network_id")
@_expected
def remove_network_cmd(directory: Path, network_id: str) -> None:
    """Remove a network from the draft: from the version it is combined into on, the
    network is refused (network_not_in_compact)."""
    draft = CompactDir(directory).remove_network(network_id, _now())
    click.echo(f"{network_id} removed from draft version {draft['version']}")


@compact_group.command("sign")
@_DIR
@click.option("--network", "network_id", required=True, help="Your network (whose board key).")
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="Your board key file.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the signature file (hand it to whoever combines).")
@_PASS_ENV
@_expected
def sign_cmd(directory: Path, network_id: str, key_file: Path, out: Path,
             passphrase_env: str) -> None:
    """Sign the draft with one board key of your network into a signature file."""
    key = load_board_key(key_file, ask_passphrase(passphrase_env, what="Board key passphrase"))
    doc = CompactDir(directory).sign(network_id, key, _now())
    out.write_text(json.dumps(doc, sort_keys=True, indent=1) + "\n", encoding="utf-8")
    click.echo(f"{network_id} signed compact draft version {doc['version']} ({doc['sha256']}): "
               f"{out}")


@compact_group.command("combine")
@_DIR
@click.argument("signatures", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@_expected
def combine_cmd(directory: Path, signatures: tuple[Path, ...]) -> None:
    """Combine signature files into the signed compact (every member board's threshold is
    checked before it is written)."""
    docs = []
    for p in signatures:
        try:
            docs.append(parse_json(p.read_bytes()))
        except (OSError, ProtocolError):
            raise click.ClickException(f"cannot read signature file {p}") from None
    cdir = CompactDir(directory)
    signed = cdir.combine(docs, _now())
    click.echo(f"compact version {signed.version} ({signed.sha256}): "
               f"{cdir.compact_file(signed.version)}")


@compact_group.command("verify")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--prev", type=click.Path(dir_okay=False, path_type=Path),
              help="The previous signed version (checks the chain and board changes).")
@click.option("--network", "network_id", default=None, help="Your network (with --pin).")
@click.option("--pin", type=click.Path(dir_okay=False, path_type=Path),
              help="Your board's board.json: your board must have signed it.")
@_expected
def verify_cmd(path: Path, prev: Path | None, network_id: str | None, pin: Path | None) -> None:
    """Check a signed compact and print a report per member network."""
    if (network_id is None) != (pin is None):
        raise click.UsageError("give --network and --pin together")
    try:
        signed = parse_compact_document(path.read_bytes())
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from None
    c = signed.compact
    days = (c.expires_ts - _now()) / DAY_MS
    click.echo(f"compact {c.compact_id} version {c.version}, sha256 {signed.sha256}, "
               f"{len(c.networks)} networks, expires in {days:.1f} days")
    for r in network_report(signed):
        mark = "ok" if r.ok else "TOO FEW"
        extra = f", {r.broken} not verifying" if r.broken else ""
        click.echo(f"  {r.network_id} ({r.name}): {r.valid} of {r.threshold} board "
                   f"signatures needed{extra}: {mark}")
    compact_pin = None
    if network_id is not None and pin is not None:
        board = read_board_file(pin)
        compact_pin = CompactPin.of(network_id, board.keys, board.threshold)
    if prev is None and c.version > 1:
        click.echo("  chain: not checked (give --prev)")
    verify_compact_file(path, _now(), prev=prev, pin=compact_pin)
    click.echo(f"ok: compact version {c.version} is acceptable")
