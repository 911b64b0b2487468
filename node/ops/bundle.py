"""The encrypted backup bundle: a sealed header, then an authenticated stream of chunks.

Layout of a bundle file:

    b"PEERNET-BACKUP-1\\n"
    4-byte big-endian length, then the header: a `federation.keystore` sealed secret
        (argon2id over the backup passphrase + SecretBox, the key files' format and cost
        rules) holding {"kind": "backup-key", "key": b64u(32 random bytes),
        "prefix": b64u(16 random bytes)}
    chunks: 4-byte big-endian length, then SecretBox(key) ciphertext (MAC included) with
        nonce = prefix || chunk number (8 bytes big-endian)

Only the 32-byte data key goes through the slow KDF; the data is encrypted in chunks of at
most `CHUNK` bytes, so a bundle of any size streams through constant memory (pg_dump's
output is never held whole). The chunk number in the nonce makes a reordered, dropped or
replayed chunk fail to open, and the last chunk says it is the last, so a cut file is
refused too (`bad_backup`). A wrong passphrase fails on the header (`wrong_passphrase`,
before any chunk is read).

Inside, each chunk's first byte says what it holds: `M` a member starts (its name, UTF-8),
`D` member data, `E` the member ends (JSON `{"size", "sha256"}` of its data, checked on
reading), `Z` the end of the bundle (JSON `{"members": n}`). Members are named like
paths (`manifest.json`, `keys/node.key`, `db/node.sqlite`, `db/node.pgdump`).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import nacl.exceptions
import nacl.secret

from federation.keystore import KEYFILE_COST, KdfCost, KeystoreError, open_secret, seal_secret
from node.ops.errors import OpsError
from protocol.encoding import b64u, unb64u

__all__ = ["CHUNK", "MAGIC", "BundleReader", "BundleWriter", "Member"]

MAGIC = b"PEERNET-BACKUP-1\n"
CHUNK = 1 << 20
_MAX_HEADER = 64 * 1024
_MAX_CHUNK = CHUNK + 64
_LEN = struct.Struct(">I")


def _nonce(prefix: bytes, n: int) -> bytes:
    return prefix + n.to_bytes(8, "big")


class BundleWriter:
    """Write a bundle to `out` (an open binary file): `add_bytes`, `add_stream`, `close`."""

    def __init__(self, out: BinaryIO, passphrase: str, *, cost: KdfCost = KEYFILE_COST) -> None:
        key, prefix = os.urandom(nacl.secret.SecretBox.KEY_SIZE), os.urandom(16)
        header = seal_secret({"kind": "backup-key", "key": b64u(key), "prefix": b64u(prefix)},
                             passphrase, cost=cost)
        out.write(MAGIC + _LEN.pack(len(header)) + header)
        self._out, self._box, self._prefix = out, nacl.secret.SecretBox(key), prefix
        self._n = 0
        self._members = 0

    def _chunk(self, kind: bytes, data: bytes) -> None:
        ct = self._box.encrypt(kind + data, _nonce(self._prefix, self._n)).ciphertext
        self._n += 1
        self._out.write(_LEN.pack(len(ct)) + ct)

    def add_stream(self, name: str, data: Iterable[bytes]) -> int:
        """Add a member from chunks of bytes; its size."""
        self._chunk(b"M", name.encode("utf-8"))
        digest, size = hashlib.sha256(), 0
        for piece in data:
            for i in range(0, len(piece), CHUNK):
                part = piece[i:i + CHUNK]
                digest.update(part)
                size += len(part)
                self._chunk(b"D", part)
        self._chunk(b"E", json.dumps({"size": size, "sha256": digest.hexdigest()}).encode())
        self._members += 1
        return size

    def add_bytes(self, name: str, data: bytes) -> int:
        return self.add_stream(name, [data])

    def close(self) -> None:
        self._chunk(b"Z", json.dumps({"members": self._members}).encode())
        self._out.flush()


@dataclass(frozen=True)
class Member:
    """One member while it is read: its name and its data, chunk by chunk (read it whole
    before asking the reader for the next member)."""

    name: str
    chunks: Iterator[bytes]

    def read(self) -> bytes:
        return b"".join(self.chunks)


def _bad(message: str) -> OpsError:
    return OpsError("bad_backup", f"the backup file is damaged or not a peernet backup: "
                                  f"{message}")


class BundleReader:
    """Open a bundle (the passphrase is checked on the header) and walk its members."""

    def __init__(self, src: BinaryIO, passphrase: str) -> None:
        self._src = src
        if src.read(len(MAGIC)) != MAGIC:
            raise _bad("it does not start as a peernet backup")
        length = self._length(_MAX_HEADER)
        header = src.read(length)
        if len(header) != length:
            raise _bad("the header is cut")
        try:
            payload = open_secret(header, passphrase)
        except KeystoreError as exc:
            if exc.code == "wrong_passphrase":
                raise OpsError("wrong_passphrase", "wrong passphrase for this backup "
                               "(nothing was changed)") from None
            raise _bad(exc.message) from None
        try:
            if payload.get("kind") != "backup-key":
                raise ValueError("kind")
            self._box = nacl.secret.SecretBox(unb64u(payload["key"]))
            self._prefix = unb64u(payload["prefix"])
        except Exception:
            raise _bad("the header holds no backup key") from None
        self._n = 0

    def _length(self, limit: int) -> int:
        raw = self._src.read(_LEN.size)
        if len(raw) != _LEN.size:
            raise _bad("it ends before its last part")
        (n,) = _LEN.unpack(raw)
        if not 0 < n <= limit:
            raise _bad("a part has an impossible length")
        return int(n)

    def _chunk(self) -> tuple[bytes, bytes]:
        length = self._length(_MAX_CHUNK)
        ct = self._src.read(length)
        if len(ct) != length:
            raise _bad("it ends inside a part")
        try:
            plain = self._box.decrypt(ct, _nonce(self._prefix, self._n))
        except nacl.exceptions.CryptoError:
            raise _bad(f"part {self._n} does not open (altered, reordered or "
                       f"from another backup)") from None
        self._n += 1
        if not plain:
            raise _bad("an empty part")
        return plain[:1], plain[1:]

    def members(self) -> Iterator[Member]:
        """Every member in order; the end marker and each member's size and digest are
        checked (a damaged bundle raises `bad_backup` while it is read)."""
        count = 0
        while True:
            kind, data = self._chunk()
            if kind == b"Z":
                try:
                    declared = json.loads(data)["members"]
                except Exception:
                    raise _bad("the end marker is unreadable") from None
                if declared != count:
                    raise _bad("members are missing")
                if self._src.read(1):
                    raise _bad("data follows the end marker")
                return
            if kind != b"M":
                raise _bad("a member does not start where expected")
            count += 1
            yield Member(data.decode("utf-8", "replace"), self._data())

    def _data(self) -> Iterator[bytes]:
        digest, size = hashlib.sha256(), 0
        while True:
            kind, data = self._chunk()
            if kind == b"D":
                digest.update(data)
                size += len(data)
                yield data
                continue
            if kind != b"E":
                raise _bad("a member is not closed")
            try:
                end = json.loads(data)
            except ValueError:
                raise _bad("a member's end is unreadable") from None
            if end != {"size": size, "sha256": digest.hexdigest()}:
                raise _bad("a member's size or digest does not match")
            return
