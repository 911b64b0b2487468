"""Password hashing: argon2id through libsodium (`nacl.pwhash.argon2id`).

Stored form is libsodium's own `$argon2id$v=19$m=...,t=...,p=1$salt$hash` string, which holds
its cost, so raising the cost later never breaks old hashes (`needs_rehash` tells when to
re-hash after a successful login).

Unknown users: `verify(None, password)` checks the password against a dummy hash of the
same cost and returns False, so a login for a name that does not exist costs the same time
as a wrong password (no username enumeration by timing).

Hashing is CPU and memory heavy on purpose (about 0.1 s and 64 MiB at the interactive cost):
call `hash_async` / `verify_async` from servers so the event loop keeps serving. The `MIN`
cost exists for tests only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import nacl.exceptions
import nacl.pwhash

__all__ = ["INTERACTIVE", "MIN", "MODERATE", "PasswordHasher"]

MAX_PASSWORD_BYTES = 1024


@dataclass(frozen=True)
class _Cost:
    opslimit: int
    memlimit: int


_A = nacl.pwhash.argon2id
INTERACTIVE = _Cost(_A.OPSLIMIT_INTERACTIVE, _A.MEMLIMIT_INTERACTIVE)
MODERATE = _Cost(_A.OPSLIMIT_MODERATE, _A.MEMLIMIT_MODERATE)
MIN = _Cost(_A.OPSLIMIT_MIN, _A.MEMLIMIT_MIN)


@dataclass
class PasswordHasher:
    cost: _Cost = INTERACTIVE
    _dummy: bytes | None = field(default=None, init=False, repr=False)

    def hash(self, password: str) -> str:
        data = password.encode("utf-8")
        if len(data) > MAX_PASSWORD_BYTES:
            raise ValueError("password too long")
        return nacl.pwhash.argon2id.str(
            data, opslimit=self.cost.opslimit, memlimit=self.cost.memlimit
        ).decode("ascii")

    def verify(self, stored: str | None, password: str) -> bool:
        """True only for a stored hash that matches; False (same cost) for `stored=None`."""
        data = password.encode("utf-8", "surrogatepass")[:MAX_PASSWORD_BYTES + 1]
        if stored is None or len(data) > MAX_PASSWORD_BYTES:
            if self._dummy is None:
                self._dummy = self.hash("peernet dummy password").encode("ascii")
            target, result = self._dummy, False
        else:
            target, result = stored.encode("ascii", "replace"), True
        try:
            nacl.pwhash.argon2id.verify(target, data)
        except (nacl.exceptions.InvalidkeyError, nacl.exceptions.CryptoError, ValueError):
            return False
        return result

    def needs_rehash(self, stored: str) -> bool:
        want = f"m={self.cost.memlimit // 1024},t={self.cost.opslimit},"
        return want not in stored

    async def hash_async(self, password: str) -> str:
        return await asyncio.to_thread(self.hash, password)

    async def verify_async(self, stored: str | None, password: str) -> bool:
        return await asyncio.to_thread(self.verify, stored, password)
