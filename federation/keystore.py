"""Secrets at rest: key files sealed under a passphrase.

File format (JSON, one object): `{"format": "peernet-keyfile-v1", "kdf": "argon2id",
"salt": b64u, "opslimit": int, "memlimit": int, "nonce_in_box": true, "box": b64u}` where
`box` is a SecretBox (XSalsa20-Poly1305) of the canonical JSON secret payload under a key from
argon2id(passphrase, salt, opslimit, memlimit).

Cost: the limits live in the header so a file written with stronger limits still opens, but
the header is not authenticated before the KDF runs, so it is held to a range: at least
libsodium's INTERACTIVE limits (`COST_FLOOR`; a copied file whose header names a tiny cost
would make a stolen file cheap to guess) -> `weak_keyfile`, at most SENSITIVE's
(`COST_CEILING`; a header naming terabytes would exhaust the machine) -> `bad_keyfile`.
Files written before the floor existed used INTERACTIVE and still open. Key files live for
years, so they are sealed at a higher cost than login passwords (`federation.passwords`,
INTERACTIVE per login): `KEYFILE_COST`, MODERATE's passes with twice INTERACTIVE's memory
(3 passes, 128 MiB; about 1.6x INTERACTIVE's time). Full MODERATE (256 MiB, about 4x)
was measured too: every init, rotation and start pays it, and the CLI tests that make a
network's key files went from 2 s to 17 s. Tests may pass `cost=COST_FLOOR`.

`write_private` never writes through a link or into a file someone else prepared: a fresh
temp name in the target's directory, created with O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600
(fchmod'ed, whatever the umask), then an atomic rename over the target (a rename replaces a
symlink at the target rather than following it).

A node's keys: an Ed25519 signing key with a version (`ed25519:<version>`) and a separate
X25519 encryption key; old signing keys stay in the file after a rotation so that what they
signed can still be checked.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from protocol.encoding import b64u, unb64u
from protocol.ids import key_id

FORMAT = "peernet-keyfile-v1"
_A = nacl.pwhash.argon2id


@dataclass(frozen=True)
class KdfCost:
    """argon2id limits: passes and memory in bytes."""

    opslimit: int
    memlimit: int


COST_FLOOR = KdfCost(_A.OPSLIMIT_INTERACTIVE, _A.MEMLIMIT_INTERACTIVE)
COST_CEILING = KdfCost(_A.OPSLIMIT_SENSITIVE, _A.MEMLIMIT_SENSITIVE)
KEYFILE_COST = KdfCost(_A.OPSLIMIT_MODERATE, 2 * _A.MEMLIMIT_INTERACTIVE)


class KeystoreError(Exception):
    """A key file that cannot be opened: wrong passphrase, damaged or unknown format."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _check_cost(cost: KdfCost) -> None:
    if cost.opslimit < COST_FLOOR.opslimit or cost.memlimit < COST_FLOOR.memlimit:
        raise KeystoreError(
            "weak_keyfile",
            "key file names an argon2id cost below the minimum (INTERACTIVE); "
            "it was not written by peernet",
        )
    if cost.opslimit > COST_CEILING.opslimit or cost.memlimit > COST_CEILING.memlimit:
        raise KeystoreError("bad_keyfile", "key file names an argon2id cost above the maximum")


def seal_secret(
    payload: dict[str, Any], passphrase: str, *, cost: KdfCost = KEYFILE_COST
) -> bytes:
    _check_cost(cost)
    salt = nacl.utils.random(_A.SALTBYTES)
    key = _A.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase.encode("utf-8"), salt,
        opslimit=cost.opslimit, memlimit=cost.memlimit,
    )
    box = nacl.secret.SecretBox(key).encrypt(
        json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
    )
    doc = {
        "format": FORMAT, "kdf": "argon2id", "salt": b64u(salt),
        "opslimit": cost.opslimit, "memlimit": cost.memlimit, "box": b64u(bytes(box)),
    }
    return (json.dumps(doc, sort_keys=True, indent=1) + "\n").encode("utf-8")


def open_secret(blob: bytes, passphrase: str) -> dict[str, Any]:
    try:
        doc = json.loads(blob)
        if doc.get("format") != FORMAT or doc.get("kdf") != "argon2id":
            raise KeystoreError("bad_keyfile", "not a peernet key file")
        cost = KdfCost(int(doc["opslimit"]), int(doc["memlimit"]))
        _check_cost(cost)  # before the KDF: the header is not authenticated
        key = _A.kdf(
            nacl.secret.SecretBox.KEY_SIZE, passphrase.encode("utf-8"), unb64u(doc["salt"]),
            opslimit=cost.opslimit, memlimit=cost.memlimit,
        )
        plain = nacl.secret.SecretBox(key).decrypt(unb64u(doc["box"]))
    except nacl.exceptions.CryptoError:
        raise KeystoreError("wrong_passphrase", "wrong passphrase for key file") from None
    except KeystoreError:
        raise
    except Exception:
        raise KeystoreError("bad_keyfile", "key file is damaged or not a peernet file") from None
    payload: dict[str, Any] = json.loads(plain)
    return payload


def write_private(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only, replacing `path` atomically (see the module
    docstring: fresh exclusive temp file, no symlink followed, mode 0600 whatever exists)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o600)
            break
        except FileExistsError:  # someone holds that name: take another
            continue
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass
class NodeKeys:
    """A node's (or hub's) current signing key, its old ones, and its encryption key."""

    signing_key: SigningKey
    key_version: int
    enc_key: PrivateKey
    old_signing_keys: dict[int, SigningKey] = field(default_factory=dict)

    @classmethod
    def generate(cls, key_version: int = 1) -> NodeKeys:
        return cls(SigningKey.generate(), key_version, PrivateKey.generate())

    @property
    def key_id(self) -> str:
        return f"ed25519:{self.key_version}"

    @property
    def verify_key_bytes(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    @property
    def enc_public_bytes(self) -> bytes:
        return bytes(self.enc_key.public_key)

    def signing_keys(self) -> dict[int, SigningKey]:
        """Every signing key in the file by version, the newest included."""
        return {**self.old_signing_keys, self.key_version: self.signing_key}

    def signer(self, listed: Mapping[str, str] | None) -> tuple[int, SigningKey]:
        """The key to sign with: the newest of this file's keys that the roster lists for
        this node (`listed`: key id -> base64url public key, its `sign_keys`), so a key made
        by a rotation is used only once the board has published it; the newest key when
        the roster does not list the node (yet)."""
        if listed:
            for version, key in sorted(self.signing_keys().items(), reverse=True):
                if listed.get(key_id(version)) == b64u(bytes(key.verify_key)):
                    return version, key
        return self.key_version, self.signing_key

    def rotated(self) -> NodeKeys:
        """A new signing key with the next version; the current one is kept as old."""
        old = dict(self.old_signing_keys)
        old[self.key_version] = self.signing_key
        return NodeKeys(SigningKey.generate(), self.key_version + 1, self.enc_key, old)

    def to_payload(self) -> dict[str, Any]:
        return {
            "kind": "node-keys",
            "signing_key": b64u(bytes(self.signing_key)),
            "key_version": self.key_version,
            "enc_key": b64u(bytes(self.enc_key)),
            "old_signing_keys": {str(v): b64u(bytes(k)) for v, k in self.old_signing_keys.items()},
        }

    @classmethod
    def from_payload(cls, p: dict[str, Any]) -> NodeKeys:
        if p.get("kind") != "node-keys":
            raise KeystoreError("bad_keyfile", "key file does not hold node keys")
        return cls(
            SigningKey(unb64u(p["signing_key"])),
            int(p["key_version"]),
            PrivateKey(unb64u(p["enc_key"])),
            {int(v): SigningKey(unb64u(k)) for v, k in p.get("old_signing_keys", {}).items()},
        )

    def save(self, path: Path, passphrase: str, *, cost: KdfCost = KEYFILE_COST) -> None:
        write_private(path, seal_secret(self.to_payload(), passphrase, cost=cost))

    @classmethod
    def load(cls, path: Path, passphrase: str) -> NodeKeys:
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise KeystoreError(
                "missing_keyfile", f"cannot read key file {path}: {exc.strerror}"
            ) from None
        return cls.from_payload(open_secret(blob, passphrase))


def rotate_key_file(
    path: Path, passphrase: str, *, cost: KdfCost = KEYFILE_COST
) -> NodeKeys:
    """Add the next signing key version to a sealed key file, the old keys kept (they
    signed what is already stored and queued); the file is replaced atomically (and sealed
    with today's cost). The keys as written."""
    keys = NodeKeys.load(path, passphrase).rotated()
    keys.save(path, passphrase, cost=cost)
    return keys
