"""Login throttling in the database, shared by the node and the hub.

Why in the database, and why before the password check: a throttle that checks a lock-out
first and counts the failure after the (slow, off-loop) password check lets every attempt
already in flight through: 40 concurrent wrong passwords were all checked against a limit
of 5. Here `acquire` counts the attempt and decides, in one write transaction, BEFORE the
password is verified; rows are locked (`FOR UPDATE` on PostgreSQL, the single writer on
SQLite), so the limit holds across concurrent requests, across several server processes
over one PostgreSQL, and across restarts.

Three counters per attempt, each a row of `login_throttle`:

- the pair (username, client address): `PAIR_FREE` attempts, then each further attempt
  starts a delay that doubles (`BASE_DELAY_MS` .. `MAX_DELAY_MS`). This is the throttle an
  attacker at one address meets; it does not lock the user out from other addresses, so 5
  bad passwords no longer deny a supporter their login;
- the user from any address: a much higher ceiling (`USER_FREE`) with the same growing
  delays, so guessing from many addresses stays slow without a cheap lock-out;
- the address for any user (`ADDRESS_FREE`): one address spraying many usernames.

An attempt while any of its counters is delayed is refused without a password check (the
caller answers 429 `throttled` with `Retry-After`) and is not counted. A success removes
the pair's counter and takes its attempts off the user's and the address's. A counter is
forgotten once it has been quiet for `WINDOW_MS` after its last attempt or delay.
`unlock(name)` (admins: `peernet node|hub user unlock`) removes a user's counters.

Rows hold no typed username or address, only keyed-by-purpose SHA-256 digests: people type
passwords into the username field by mistake.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.database import NAMING, Database
from protocol.encoding import b64u

__all__ = [
    "METADATA",
    "LoginThrottle",
    "login_throttle",
    "user_digest",
]

METADATA = MetaData(naming_convention=NAMING)

login_throttle = Table(
    "login_throttle",
    METADATA,
    Column("key", String(48), primary_key=True),  # "p:"/"u:"/"a:" + digest
    Column("user_digest", String(43), nullable=True),  # pair and user rows: for unlock
    Column("attempts", Integer, nullable=False),
    Column("last_ts", BigInteger, nullable=False),
    Column("locked_until", BigInteger, nullable=False),
    Index("ix_login_throttle_user_digest", "user_digest"),
    Index("ix_login_throttle_last_ts", "last_ts"),
)


def _digest(*parts: str) -> str:
    data = b"peernet/v1/login-throttle\0" + "\0".join(parts).encode("utf-8", "surrogatepass")
    return b64u(hashlib.sha256(data).digest())


def _name(username: str) -> str:
    return username.strip().casefold()


def user_digest(username: str) -> str:
    """What identifies a username's counters (never the name itself)."""
    return _digest("u", _name(username))


@dataclass
class LoginThrottle:
    """The throttle's policy (see module docstring); state lives in the database."""

    pair_free: int = 5
    user_free: int = 100
    address_free: int = 30
    base_delay_ms: int = 60_000
    max_delay_ms: int = 15 * 60_000
    window_ms: int = 60 * 60_000
    prune_every: int = 64
    _since_prune: int = 0

    def _delay(self, attempts: int, free: int) -> int:
        if attempts < free:
            return 0
        return min(self.max_delay_ms, self.base_delay_ms << min(attempts - free, 20))

    def _rows(self, username: str, address: str) -> list[tuple[str, str | None, int]]:
        name, ud = _name(username), user_digest(username)
        return sorted([  # one lock order for every transaction: no deadlocks
            ("p:" + _digest("p", name, address), ud, self.pair_free),
            ("u:" + ud, ud, self.user_free),
            ("a:" + _digest("a", address), None, self.address_free),
        ])

    async def acquire(self, db: Database, username: str, address: str, now: int) -> int:
        """Count an attempt before its password is checked: 0 when it may go on (counted),
        else milliseconds until one may (not counted)."""
        rows = self._rows(username, address)
        async with db.write() as conn:
            state = await _lock_rows(conn, rows, now)
            wait = max((r.locked_until - now for r in state.values()), default=0)
            if wait > 0:
                return wait
            for key, _ud, free in rows:
                r = state[key]
                quiet = max(r.last_ts, r.locked_until) + self.window_ms <= now
                n = 1 if quiet else r.attempts + 1
                delay = self._delay(n, free)
                await conn.execute(login_throttle.update().where(
                    login_throttle.c.key == key).values(
                    attempts=n, last_ts=now, locked_until=now + delay if delay else 0))
        await self._maybe_prune(db, now)
        return 0

    async def succeeded(self, db: Database, username: str, address: str, now: int) -> None:
        """The password was right: forget the pair's attempts everywhere."""
        rows = self._rows(username, address)
        async with db.write() as conn:
            state = await _lock_rows(conn, rows, now)
            pair_key = next(k for k in state if k.startswith("p:"))
            spent = state[pair_key].attempts
            await conn.execute(delete(login_throttle).where(login_throttle.c.key == pair_key))
            for key, _ud, free in rows:
                if key == pair_key:
                    continue
                left = max(0, state[key].attempts - spent)
                values: dict[str, Any] = {"attempts": left}
                if left < free:
                    values["locked_until"] = 0
                await conn.execute(login_throttle.update().where(
                    login_throttle.c.key == key).values(**values))

    async def delayed_users(self, db: Database, usernames: list[str], now: int) -> set[str]:
        """Which of `usernames` a delay of their own holds back right now."""
        by_digest = {user_digest(n): n for n in usernames}
        async with db.read() as conn:
            got = (await conn.execute(select(login_throttle.c.user_digest).where(
                login_throttle.c.user_digest.in_(list(by_digest)),
                login_throttle.c.locked_until > now))).scalars().all()
        return {by_digest[d] for d in got if d in by_digest}

    async def unlock(self, db: Database, username: str) -> int:
        """Remove every counter of `username` (any address); how many were removed."""
        async with db.write() as conn:
            res = await conn.execute(delete(login_throttle).where(
                login_throttle.c.user_digest == user_digest(username)))
        return int(res.rowcount or 0)

    async def _maybe_prune(self, db: Database, now: int) -> None:
        # Its own transaction, never inside `acquire`'s (no second lock order on PostgreSQL).
        self._since_prune += 1
        if self._since_prune < self.prune_every:
            return
        self._since_prune = 0
        cut = now - self.window_ms
        async with db.write() as conn:
            await conn.execute(delete(login_throttle).where(
                login_throttle.c.last_ts < cut, login_throttle.c.locked_until < cut))


async def _lock_rows(conn: AsyncConnection, rows: list[tuple[str, str | None, int]],
                     now: int) -> dict[str, Any]:
    """Make sure the rows exist, then read them locked (in key order)."""
    values = [{"key": k, "user_digest": ud, "attempts": 0, "last_ts": now, "locked_until": 0}
              for k, ud, _free in rows]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    await conn.execute(dialect.insert(login_throttle).values(values).on_conflict_do_nothing(
        index_elements=["key"]))
    got = (await conn.execute(select(login_throttle).where(
        login_throttle.c.key.in_([k for k, _ud, _f in rows])).order_by(
        login_throttle.c.key).with_for_update())).all()
    return {r.key: r for r in got}
