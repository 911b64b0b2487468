"""Board key files, one per holder, each sealed under its own holder's passphrase.

A board key is only as safe as the passphrase that seals it; a passphrase shared by all
holders lets any one of them open every key and sign alone, which defeats the threshold. So
`peernet board init --passphrase-per-key` seals key i under holder i's passphrase, and
`peernet board reseal --key FILE` lets a holder replace the passphrase of their own file
(for example the one the person who ran `board init` chose) on their own machine.

A reseal opens the file with the current passphrase first: a wrong one is refused with
`bad_input` and the file is left exactly as it was; otherwise the new file replaces the old
one atomically (`write_private`), so a crash leaves the old or the new file, never neither.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from federation.errors import FedCode, FederationError
from federation.keystore import KeystoreError, open_secret, seal_secret, write_private
from protocol.encoding import b64u, unb64u

__all__ = [
    "MIN_BOARD_PASSPHRASE",
    "check_passphrase",
    "load_board_key",
    "reseal_board_key",
    "write_board_key",
]

# The same floor as a node's key passphrase (node.cli.MIN_PASSPHRASE).
MIN_BOARD_PASSPHRASE = 12


def check_passphrase(passphrase: str, field: str = "passphrase") -> None:
    """Refuse a passphrase shorter than the floor (before anything is written)."""
    if len(passphrase) < MIN_BOARD_PASSPHRASE:
        raise FederationError(
            FedCode.BAD_INPUT,
            f"a board key passphrase needs at least {MIN_BOARD_PASSPHRASE} characters",
            field,
        )


def write_board_key(path: Path, index: int, key: SigningKey, passphrase: str) -> None:
    """Seal one board key (its index and signing key) under `passphrase` into `path`."""
    payload = {"kind": "board-key", "index": index, "signing_key": b64u(bytes(key))}
    write_private(path, seal_secret(payload, passphrase))


def _open(path: Path, passphrase: str) -> dict[str, Any]:
    try:
        payload = open_secret(path.read_bytes(), passphrase)
    except OSError as exc:
        raise FederationError(FedCode.NOT_FOUND, f"cannot read {path}: {exc.strerror}") from None
    except KeystoreError as exc:
        raise FederationError(FedCode.BAD_INPUT, f"{path}: {exc.message}", "passphrase") from None
    if payload.get("kind") != "board-key":
        raise FederationError(FedCode.BAD_INPUT, f"{path} does not hold a board key")
    return payload


def load_board_key(path: Path, passphrase: str) -> SigningKey:
    return SigningKey(unb64u(_open(path, passphrase)["signing_key"]))


def reseal_board_key(path: Path, old_passphrase: str, new_passphrase: str) -> int:
    """Seal the board key in `path` under `new_passphrase`; its index. Nothing changes
    unless the old passphrase opens the file and the new one is long enough."""
    check_passphrase(new_passphrase, "new_passphrase")
    payload = _open(path, old_passphrase)
    key = SigningKey(unb64u(payload["signing_key"]))
    index = int(payload["index"])
    write_board_key(path, index, key, new_passphrase)
    return index
