"""Accepted compact versions in the database (`fed_compact`), mirrored in a `CompactState`.

`CompactStore.accept` offers a chain to `CompactState.offer` (every rule of
`federation.compact_acceptance`, split views alarmed) and only then writes the versions that
passed, in one write transaction; a refused document changes nothing stored (an alarm, when
the refusal is a split view, is the one row written). `load` reads the held chain at
startup. `compact_routes` serves the documents as the roster is served:
`GET /fed/v1/compact` (newest) and `GET /fed/v1/compact/{version}`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from federation.clock import Clock
from federation.compact_acceptance import CompactPin, parse_compact_document
from federation.compact_state import CompactState
from federation.errors import FedCode, error_body
from federation.interstate_tables import compacts
from federation.roster_alarms import store_alarms
from federation.version_store import OwnWrite, store_new_versions, stored_document
from protocol.compact import SignedCompact

__all__ = ["COMPACT_PATH", "CompactStore", "compact_routes"]

log = logging.getLogger("peernet.federation.compact")

COMPACT_PATH = "/fed/v1/compact"


class CompactStore:
    """Accepted compact versions in the database, mirrored in `state`."""

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        pin: CompactPin,
        write: Callable[[], AbstractAsyncContextManager[AsyncConnection]] | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.write = write or OwnWrite(engine)
        self.state = CompactState(clock, pin)

    async def load(self) -> None:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(select(compacts.c.document).order_by(compacts.c.version))
            ).all()
        self.state.load(parse_compact_document(bytes(r.document)) for r in rows)

    async def accept(
        self, chain: list[SignedCompact], source: str | None = None, *, partial: bool = False
    ) -> list[SignedCompact]:
        try:
            fresh = self.state.offer(chain, source, partial=partial)
        finally:
            await self.flush_alarms()
        if not fresh:
            return []
        async with self.write() as conn:
            await store_new_versions(conn, compacts, fresh, self.clock.now_ms(),
                                     lock="fed_compact", label="compact")
        log.info("compact version %d accepted", fresh[-1].version)
        return fresh

    async def accept_document(self, data: bytes, source: str | None = None) -> list[SignedCompact]:
        return await self.accept([parse_compact_document(data)], source)

    async def flush_alarms(self) -> None:
        pending = self.state.take_alarms()
        if pending:
            async with self.write() as conn:
                await store_alarms(conn, pending)

    async def document(self, version: int | None = None) -> bytes | None:
        return await stored_document(self.engine, compacts, version)

    async def count(self) -> int:
        async with self.engine.connect() as conn:
            return len((await conn.execute(select(compacts.c.version))).all())


def compact_routes(store: CompactStore) -> list[web.RouteDef]:
    """`GET /fed/v1/compact` (newest) and `GET /fed/v1/compact/{version}`."""

    async def latest(_request: web.Request) -> web.StreamResponse:
        doc = await store.document()
        if doc is None:
            return web.json_response(error_body(FedCode.NO_COMPACT, "no compact yet"), status=503)
        return web.Response(body=doc, content_type="application/json")

    async def one(request: web.Request) -> web.StreamResponse:
        raw = request.match_info["version"]
        if not raw.isdigit() or len(raw) > 16:
            return web.json_response(
                error_body(FedCode.BAD_INPUT, "version must be an integer", "version"), status=400
            )
        doc = await store.document(int(raw))
        if doc is None:
            return web.json_response(
                error_body(FedCode.NOT_FOUND, "no such compact version"), status=404
            )
        return web.Response(body=doc, content_type="application/json")

    return [web.get(COMPACT_PATH, latest), web.get(COMPACT_PATH + "/{version}", one)]
