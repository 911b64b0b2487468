"""`recipient_ref`: a keyed pseudonym of what a supporter types to identify a person.

    ref = b64u(HMAC-SHA256(node_secret, NFKC(typed).strip().casefold() as UTF-8))

The node secret is 32 random bytes made by `peernet node init`, kept only in the node's
pseudonym key file, sealed under the node passphrase (`federation.keystore.seal_secret`,
payload `{"kind": "pseudonym-key", "key": b64u}`). The same typed value gives the same ref
on this node (so follow-ups and per-person privacy bounds work); without the secret a ref
cannot be linked to an employee number, and the same person has unrelated refs on two nodes.

The typed value lives only in the request being handled: it is never stored, logged, audited
or sent; nothing here keeps it.

Unit strength: callers pass the typed value through `node.core.identifier.unit_key` first
(the agency's `identifier_format`: separators removed, placeholders refused), so the HMAC
input is one canonical key per person; `normalise` here is then a no-op on it. Refs made
before that normalisation (HMAC of `normalise(typed)` only) are kept as they are: history
is not rewritten (the typed values were never stored, so it could not be). A typing with
no separators (and, under `employee_number`, no leading zeros) gives the same ref as
before; one typed with separators ("ab-12") now gives the ref of "ab12". So a person may
count as two units once, in the month the node upgraded (their old and new refs), which
at most doubles their bound for that one person-month; from the next month on they are
one unit.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from pathlib import Path

from federation.keystore import KeystoreError, open_secret, seal_secret, write_private
from protocol.encoding import b64u, unb64u

__all__ = ["KEY_BYTES", "Pseudonymizer", "create_key_file", "load_key_file", "normalise"]

KEY_BYTES = 32
_KIND = "pseudonym-key"


def normalise(typed: str) -> str:
    """Unicode NFKC, trimmed, case-folded: `" AB-12 "` and `"ab-12"` are one person."""
    return unicodedata.normalize("NFKC", typed).strip().casefold()


class Pseudonymizer:
    """Computes `recipient_ref` values under one node secret."""

    __slots__ = ("_key", "_keyed")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("pseudonym key must be 32 bytes")
        self._key = key
        # Keyed once; each ref copies it. The one-shot `hmac.digest` sets the key up and looks
        # the digest up in OpenSSL on every call: 4 % of the node's loop under 16 writers.
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    @classmethod
    def generate(cls) -> Pseudonymizer:
        return cls(secrets.token_bytes(KEY_BYTES))

    def ref(self, typed: str) -> str:
        mac = self._keyed.copy()
        mac.update(normalise(typed).encode("utf-8"))
        return b64u(mac.digest())

    def __repr__(self) -> str:  # never show the key
        return "Pseudonymizer(<secret>)"


def create_key_file(path: Path, passphrase: str) -> Pseudonymizer:
    """A new random node secret, sealed into `path` (owner-only permissions)."""
    key = secrets.token_bytes(KEY_BYTES)
    write_private(path, seal_secret({"kind": _KIND, "key": b64u(key)}, passphrase))
    return Pseudonymizer(key)


def load_key_file(path: Path, passphrase: str) -> Pseudonymizer:
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise KeystoreError(
            "missing_keyfile", f"cannot read key file {path}: {exc.strerror}"
        ) from None
    payload = open_secret(blob, passphrase)
    if payload.get("kind") != _KIND:
        raise KeystoreError("bad_keyfile", "key file does not hold a pseudonym key")
    return Pseudonymizer(unb64u(str(payload["key"])))
