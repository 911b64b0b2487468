"""`peernet board ...` and `peernet roster ...`: a thin click layer over `federation.board`.

Passphrases for board key files come from the environment variable named by
`--passphrase-env` (default `PEERNET_BOARD_PASSPHRASE`) or, when it is unset, from a hidden
prompt. Each holder may use their own: `board init --passphrase-per-key` takes key i's from
`<env>_<i>` (or a prompt per key), and `board reseal --key FILE` changes one file's.
Expected failures print one line (`error: <code>: <message>`) and exit 1.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from federation.board import DAY_MS, BoardDir, read_pin, verify_roster_file
from federation.board_keys import load_board_key, reseal_board_key
from federation.clock import SystemClock
from federation.errors import FederationError
from federation.node_info import parse_node_info
from protocol.canonical import parse_json
from protocol.errors import ProtocolError

__all__ = ["board_group", "roster_group"]

P = ParamSpec("P")
R = TypeVar("R")

_DIR = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Board directory.",
)
_PASS_ENV = click.option(
    "--passphrase-env",
    default="PEERNET_BOARD_PASSPHRASE",
    show_default=True,
    help="Environment variable holding the key file passphrase.",
)


def _now() -> int:
    return SystemClock().now_ms()


def _passphrase(env: str, confirm: bool = False, what: str = "Board key passphrase") -> str:
    value = os.environ.get(env)
    if value:
        return value
    entered: str = click.prompt(
        f"{what} (or set {env})", hide_input=True, confirmation_prompt=confirm
    )
    return entered


def _expected(fn: Callable[P, R]) -> Callable[P, R]:
    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except FederationError as exc:
            raise click.ClickException(f"{exc.code}: {exc.message}") from None

    return wrapper


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, sort_keys=True, indent=1))


@click.group("board")
def board_group() -> None:
    """State board tools: keys, roster drafts, signatures."""


@board_group.command("init")
@_DIR
@click.option(
    "--keys", "n_keys", type=int, default=5, show_default=True, help="Number of board keys."
)
@click.option("--threshold", type=int, default=3, show_default=True, help="Signatures needed.")
@click.option("--validity-days", type=int, default=90, show_default=True,
              help="Days the first roster stays valid.")
@_PASS_ENV
@click.option("--passphrase-per-key", is_flag=True,
              help="Seal key i under its holder's own passphrase: from the variable "
              "<passphrase-env>_<i> (e.g. PEERNET_BOARD_PASSPHRASE_2) or a prompt per key.")
@_expected
def init_cmd(
    directory: Path, n_keys: int, threshold: int, validity_days: int, passphrase_env: str,
    passphrase_per_key: bool,
) -> None:
    """Create board keys (sealed at rest) and the draft of roster version 1.

    Passphrases need at least 12 characters."""
    phrases: str | list[str]
    if passphrase_per_key:
        phrases = [_passphrase(f"{passphrase_env}_{i}", confirm=True,
                               what=f"Passphrase of board key {i}'s holder")
                   for i in range(1, n_keys + 1)]
    else:
        phrases = _passphrase(passphrase_env, confirm=True)
    paths = BoardDir(directory).init(
        keys=n_keys,
        threshold=threshold,
        passphrase=phrases,
        now_ms=_now(),
        validity_days=validity_days,
    )
    click.echo(f"board of {n_keys} keys, threshold {threshold}: {directory / 'board.json'}")
    for p in paths:
        click.echo(f"key file: {p}")


@board_group.command("reseal")
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="The board key file to re-seal (yours).")
@_PASS_ENV
@click.option("--new-passphrase-env", default="PEERNET_BOARD_NEW_PASSPHRASE", show_default=True,
              help="Environment variable holding the new passphrase (else a prompt).")
@_expected
def reseal_cmd(key_file: Path, passphrase_env: str, new_passphrase_env: str) -> None:
    """Seal one board key file under a new passphrase (its holder's own).

    The current passphrase must open the file; a wrong one changes nothing. The new one needs
    at least 12 characters."""
    old = _passphrase(passphrase_env, what="Current passphrase")
    new = _passphrase(new_passphrase_env, confirm=True, what="New passphrase")
    index = reseal_board_key(key_file, old, new)
    click.echo(f"board key {index} re-sealed under the new passphrase: {key_file}")


@board_group.command("add-node")
@_DIR
@click.option(
    "--info",
    "info",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="A node's public info JSON (peernet node public-info).",
)
@click.option("--replace", is_flag=True, help="Replace an entry with the same node id (a signing "
              "key it drops stays valid as an old key for 7 days: a key rotation).")
@_expected
def add_node_cmd(directory: Path, info: Path, replace: bool) -> None:
    """Add a node (or hub) to the draft from its public info JSON."""
    try:
        data = info.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {info}: {exc.strerror}") from None
    entry = parse_node_info(data)
    draft = BoardDir(directory).add_node(entry, _now(), replace=replace)
    click.echo(f"{entry.node_id} added to draft version {draft.version} ({len(draft.nodes)} nodes)")


@board_group.command("remove-node")
@_DIR
@click.argument("node_id")
@_expected
def remove_node_cmd(directory: Path, node_id: str) -> None:
    """Remove a node from the draft."""
    draft = BoardDir(directory).remove_node(node_id, _now())
    click.echo(f"{node_id} removed from draft version {draft.version}")


@board_group.command("accept-leave")
@_DIR
@click.option("--request", "request", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="The leave request a node wrote (peernet node detach).")
@_expected
def accept_leave_cmd(directory: Path, request: Path) -> None:
    """Check a node's signed leave request; remove it from the draft and revoke its keys."""
    from federation.board_leave import accept_leave

    try:
        data = request.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {request}: {exc.strerror}") from None
    node_id, draft = accept_leave(BoardDir(directory), data, _now())
    click.echo(f"{node_id} left: removed from draft version {draft.version}, its signing keys "
               "revoked; sign and combine the draft to publish it")


@board_group.command("revoke")
@_DIR
@click.option("--key", required=True, help="The revoked public key (base64url).")
@click.option("--reason", required=True,
              help="Why, in a few words (it is published in the roster).")
@_expected
def revoke_cmd(directory: Path, key: str, reason: str) -> None:
    """Revoke a signing key (by its bytes) in the draft."""
    draft = BoardDir(directory).revoke(key, reason, _now())
    click.echo(f"key revoked in draft version {draft.version}")


@board_group.command("renew")
@_DIR
@click.option("--validity-days", type=int, default=90, show_default=True,
              help="Days the next roster version stays valid.")
@_expected
def renew_cmd(directory: Path, validity_days: int) -> None:
    """Start (or re-time) the next version's draft: issued now, valid N days."""
    draft = BoardDir(directory).renew(_now(), validity_days)
    click.echo(f"draft version {draft.version} expires in {validity_days} days")


@board_group.group("policy")
def policy_group() -> None:
    """Policy in the draft roster."""


@policy_group.command("set")
@_DIR
@click.argument("pairs", nargs=-1, required=True, metavar="PATH VALUE [PATH VALUE]...")
@_expected
def policy_set_cmd(directory: Path, pairs: tuple[str, ...]) -> None:
    """Set policy field PATH (dotted, e.g. privacy.per_cell) to VALUE (JSON, or a string).

    Several PATH VALUE pairs are set in one edit, for fields that must change together:
    `privacy.aggregation shared privacy.helper HELPER-ID` (the helper a roster node with
    role helper); `privacy.aggregation local privacy.helper null` goes back (null omits an
    optional field)."""
    if len(pairs) % 2:
        raise click.UsageError("give PATH VALUE pairs (an odd number of arguments was given)")
    edits: list[tuple[str, Any]] = []
    for path, value in zip(pairs[::2], pairs[1::2], strict=True):
        try:
            parsed: Any = parse_json(value.encode("utf-8"))
        except ProtocolError:
            parsed = value
        edits.append((path, parsed))
    draft = BoardDir(directory).set_policies(edits, _now())
    click.echo(f"policy {', '.join(p for p, _ in edits)} set in draft version {draft.version}")


@policy_group.command("show")
@_DIR
@_expected
def policy_show_cmd(directory: Path) -> None:
    """Print the draft's policy."""
    _echo_json(BoardDir(directory).draft(_now()).policy.model_dump(mode="json"))


@board_group.command("sign")
@_DIR
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Your board key file.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the signature file (hand it to whoever combines).")
@_PASS_ENV
@_expected
def sign_cmd(directory: Path, key_file: Path, out: Path, passphrase_env: str) -> None:
    """Sign the draft with one board key into a signature file."""
    key = load_board_key(key_file, _passphrase(passphrase_env))
    doc = BoardDir(directory).sign(key, _now())
    out.write_text(json.dumps(doc, sort_keys=True, indent=1) + "\n", encoding="utf-8")
    click.echo(f"signed draft version {doc['version']} ({doc['sha256']}): {out}")


@board_group.command("combine")
@_DIR
@click.argument(
    "signatures", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path)
)
@_expected
def combine_cmd(directory: Path, signatures: tuple[Path, ...]) -> None:
    """Combine signature files into the signed roster (checked before it is written)."""
    docs = []
    for p in signatures:
        try:
            docs.append(parse_json(p.read_bytes()))
        except (OSError, ProtocolError):
            raise click.ClickException(f"cannot read signature file {p}") from None
    board = BoardDir(directory)
    signed = board.combine(docs, _now())
    click.echo(
        f"roster version {signed.version} ({signed.sha256}): {board.roster_file(signed.version)}"
    )


@click.group("roster")
def roster_group() -> None:
    """Signed roster tools."""


@roster_group.command("verify")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--pin",
    type=click.Path(dir_okay=False, path_type=Path),
    help="board.json with the pinned keys (for version 1).",
)
@click.option(
    "--prev",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The previous signed version (for later versions).",
)
@_expected
def verify_cmd(path: Path, pin: Path | None, prev: Path | None) -> None:
    """Check a signed roster against the acceptance rules."""
    signed = verify_roster_file(path, _now(), pin=read_pin(pin) if pin else None, prev=prev)
    r = signed.roster
    days = (r.expires_ts - _now()) / DAY_MS
    click.echo(
        f"ok: version {r.version}, {len(r.nodes)} nodes, board {r.board.threshold}-of-"
        f"{len(r.board.keys)}, sha256 {signed.sha256}, expires in {days:.1f} days"
    )


def _attach_compact() -> None:
    from federation.board_compact_cli import compact_group  # interstate (WIRE section 16)

    board_group.add_command(compact_group)


_attach_compact()
