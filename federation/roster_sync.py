"""Roster storage, alarms, serving and fetching (node and hub alike).

- `RosterStore` keeps accepted versions in `fed_roster` and governance alarms in `fed_alarm`,
  and keeps a `RosterState` in step with them. Every accepted version is stored as the
  document bytes it arrived as, so the same bytes are served onwards.
- Newer versions come from the hub (`GET /fed/v1/roster`, `GET /fed/v1/roster/{version}`) or
  from any peer serving the same routes: `fetch_from(base_url)` reads the newest, walks the
  missing versions in between (at most 64 per fetch, continued by the next; each link
  checked as it arrives, no redirects: `federation.roster_fetch`), and offers the chain to
  the acceptance rules; nothing is stored unless the whole chain passes.
- `roster_routes(store)` serves the accepted versions (public: the roster is signed and holds
  only public keys and endpoints).
- A request naming the version it holds (`?have=N&have_sha256=H`) for version N+1 (the
  newest, or `/{N+1}`) is answered with a delta from N when this server holds that same N
  (`federation.roster_delta`, computed once per pair and kept); otherwise, and whenever a
  delta cannot rebuild N+1 byte for byte, with the whole document as before. When the newest
  is that same N, the answer is 304 Not Modified.

Several processes over one database (two `peernet node serve` behind one address):

- Storing is atomic per version: `accept` reads which of its versions are stored and inserts
  the others in one write transaction, and that read-then-insert is serialised across
  processes (SQLite: the transaction's BEGIN IMMEDIATE; PostgreSQL: a transaction advisory
  lock taken first, `federation.leader_lock.serialise_writers`). A process that finds a
  version already stored with the same hash skips it; with another hash it is a split view.
  Two processes accepting the same version at once therefore both succeed and store it once
  (without the lock, both would read "absent" and the second INSERT would fail on the
  primary key). The compact and the foreign rosters are stored the same way
  (`federation.compact_store`, `federation.foreign_rosters`).
- Each process keeps its own `RosterState` in memory. `catch_up()` adopts the versions another
  process stored since (one indexed query on the primary key), so a process that did not
  fetch a version itself still moves to it. The periodic refresh from the hub
  (`FederationService`) catches up first and then asks the hub only in the process holding
  the `roster-refresh` leader lock (`federation.leader_lock`), like the sweeper and the
  release pass: one request to the hub per period, not one per process.

Alarms: a split view found while checking an envelope is queued in memory by `RosterState`;
`flush_alarms()` persists the queue (the inbox calls it after each batch, in a transaction of
its own so a refused envelope still leaves its alarm behind).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from federation.clock import Clock
from federation.errors import FedCode, error_body
from federation.roster import SignedRoster, parse_signed_roster
from federation.roster_acceptance import BoardPin
from federation.roster_alarms import list_alarms as list_alarm_rows
from federation.roster_alarms import store_alarms
from federation.roster_delta import make_delta
from federation.roster_fetch import ROSTER_PATH, fetch_chain
from federation.roster_state import Alarm, RosterState
from federation.store import alarms, rosters
from federation.version_store import OwnWrite, store_new_versions, stored_document

__all__ = ["ROSTER_PATH", "RosterStore", "persist_alarms", "roster_routes"]

log = logging.getLogger("peernet.federation.roster")

_DELTAS_KEPT = 16  # computed deltas kept per server, keyed by (base hash, target hash)
_SHA256 = re.compile(r"[A-Za-z0-9_-]{43}")


async def persist_alarms(session: AsyncConnection | AsyncSession, pending: list[Alarm]) -> None:
    await store_alarms(session, pending)  # with reason, once while active: roster_alarms


class RosterStore:
    """Accepted roster versions in the database, mirrored in `state`."""

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        pin: BoardPin | None,
        write: Callable[[], AbstractAsyncContextManager[AsyncConnection]] | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        # Writes go through the server's write discipline (SQLite: one writer, BEGIN
        # IMMEDIATE); reads through a plain connection (`federation.version_store`).
        self.write = write or OwnWrite(engine)
        self.state = RosterState(clock, pin)
        self._deltas: dict[tuple[str, str], bytes | None] = {}

    async def load(self) -> None:
        """Read every accepted version (startup, or to catch up with another process)."""
        async with self.engine.connect() as session:
            rows = (
                await session.execute(select(rosters.c.document).order_by(rosters.c.version))
            ).all()
        self.state.load(parse_signed_roster(bytes(r.document)) for r in rows)

    async def catch_up(self) -> int:
        """Adopt the versions another process stored after ours; how many there were."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                select(rosters.c.document).where(rosters.c.version > self.state.version)
                .order_by(rosters.c.version))).all()
        if rows:
            self.state.load(parse_signed_roster(bytes(r.document)) for r in rows)
        return len(rows)

    async def accept(
        self, chain: list[SignedRoster], source: str | None = None, *, partial: bool = False
    ) -> list[SignedRoster]:
        """Offer `chain` to the acceptance rules; store and adopt what passes (`partial`:
        a step of a catch-up, its last link not the newest: `RosterState.offer`)."""
        try:
            fresh = self.state.offer(chain, source, partial=partial)
        finally:
            await self.flush_alarms()
        if fresh:
            async with self.write() as conn:
                await store_new_versions(conn, rosters, fresh, self.clock.now_ms(),
                                         lock="fed_roster", label="roster")  # module notes
            log.info("roster version %d accepted", fresh[-1].version)
        return fresh

    async def accept_document(self, data: bytes, source: str | None = None) -> list[SignedRoster]:
        return await self.accept([parse_signed_roster(data)], source)

    async def flush_alarms(self) -> None:
        pending = self.state.take_alarms()
        if pending:
            async with self.write() as conn:
                await persist_alarms(conn, pending)

    async def document(self, version: int | None = None) -> bytes | None:
        return await stored_document(self.engine, rosters, version)

    async def newest_ref(self) -> tuple[int, str] | None:
        """The newest stored version and its hash."""
        async with self.engine.connect() as session:
            row = (await session.execute(
                select(rosters.c.version, rosters.c.sha256)
                .order_by(rosters.c.version.desc()).limit(1))).first()
        return None if row is None else (int(row.version), str(row.sha256))

    async def delta(self, have: int, have_sha256: str, version: int | None) -> bytes | None:
        """The delta from version `have` (when ours has hash `have_sha256`) to `version`
        (None: the newest) when that is `have + 1`; None: serve the whole document."""
        async with self.engine.connect() as session:
            q = select(rosters.c.version, rosters.c.sha256)
            q = (q.order_by(rosters.c.version.desc()).limit(1) if version is None
                 else q.where(rosters.c.version == version))
            target = (await session.execute(q)).first()
            if target is None or target.version != have + 1:
                return None
            base_sha = (await session.execute(
                select(rosters.c.sha256).where(rosters.c.version == have))).scalar_one_or_none()
        if base_sha != have_sha256:
            return None
        key = (have_sha256, str(target.sha256))
        if key not in self._deltas:
            base = await self._signed(have, have_sha256)
            nxt = await self._signed(target.version, str(target.sha256))
            if len(self._deltas) >= _DELTAS_KEPT:
                self._deltas.pop(next(iter(self._deltas)))
            self._deltas[key] = None if base is None or nxt is None else make_delta(base, nxt)
        return self._deltas[key]

    async def _signed(self, version: int, sha256: str) -> SignedRoster | None:
        held = self.state.accepted(version)
        if held is not None and held.sha256 == sha256:
            return held
        doc = await self.document(version)  # accepted by another process meanwhile
        signed = None if doc is None else parse_signed_roster(doc)
        return signed if signed is not None and signed.sha256 == sha256 else None

    async def list_alarms(self, limit: int = 100) -> list[dict[str, Any]]:
        """Alarms newest first, with reason and acknowledgement (`roster_alarms`)."""
        return await list_alarm_rows(self.engine, limit=limit)

    async def count_alarms(self) -> int:
        async with self.engine.connect() as session:
            return int(
                (await session.execute(select(func.count()).select_from(alarms))).scalar_one()
            )

    # --- fetching -----------------------------------------------------------------------

    async def fetch_from(
        self, http: aiohttp.ClientSession, base_url: str, source: str | None = None
    ) -> list[SignedRoster]:
        """Fetch newer versions from a hub or peer at `base_url` (at most `MAX_ROSTER_GAP`
        past ours, bounded in bytes and time, each link checked as it arrives:
        `federation.roster_fetch`) and accept them. A server further behind stores the
        links that verified and continues from there on its next fetch."""
        got = await fetch_chain(http, base_url, self.state)
        chain = got.links
        if len(chain) == 1 and chain[0].version <= self.state.version:
            # Same version: compare hashes (a different one is a split view).
            latest = chain[0]
            if self.state.known_hash(latest.version) not in (None, latest.sha256):
                return await self.accept([latest], source)
            return []
        return await self.accept(chain, source, partial=got.partial)


def roster_routes(store: RosterStore) -> list[web.RouteDef]:
    """`GET /fed/v1/roster` (newest) and `GET /fed/v1/roster/{version}`."""

    async def latest(request: web.Request) -> web.StreamResponse:
        have = _have(request)
        if isinstance(have, web.StreamResponse):
            return have
        if have is not None:
            if await store.newest_ref() == have:
                return web.Response(status=304)
            if (delta := await store.delta(*have, None)) is not None:
                return web.Response(body=delta, content_type="application/json")
        doc = await store.document()
        if doc is None:
            return web.json_response(error_body(FedCode.NO_ROSTER, "no roster yet"), status=503)
        return web.Response(body=doc, content_type="application/json")

    async def one(request: web.Request) -> web.StreamResponse:
        raw = request.match_info["version"]
        if not raw.isdigit() or len(raw) > 16:
            return web.json_response(
                error_body(FedCode.BAD_INPUT, "version must be an integer", "version"), status=400
            )
        have = _have(request)
        if isinstance(have, web.StreamResponse):
            return have
        if have is not None and (delta := await store.delta(*have, int(raw))) is not None:
            return web.Response(body=delta, content_type="application/json")
        doc = await store.document(int(raw))
        if doc is None:
            return web.json_response(
                error_body(FedCode.NOT_FOUND, "no such roster version"), status=404
            )
        return web.Response(body=doc, content_type="application/json")

    return [web.get(ROSTER_PATH, latest), web.get(ROSTER_PATH + "/{version}", one)]


def _have(request: web.Request) -> tuple[int, str] | web.StreamResponse | None:
    """`?have=N&have_sha256=H` (both or neither): the version the requester holds."""
    have, sha = request.query.get("have"), request.query.get("have_sha256")
    if have is None and sha is None:
        return None
    if have is None or not have.isdigit() or len(have) > 16:
        return web.json_response(
            error_body(FedCode.BAD_INPUT, "have must be a version number", "have"), status=400
        )
    if sha is None or not _SHA256.fullmatch(sha):
        return web.json_response(
            error_body(FedCode.BAD_INPUT, "have_sha256 must be a roster hash", "have_sha256"),
            status=400,
        )
    return int(have), sha
