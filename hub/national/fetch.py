"""Fetching the other members' state statistics: per-hop signed GET, verify, keep.

For each peer network (`hub.national.peers`) this hub asks
`GET <endpoint>/fed/v1/state-statistics?from=&to=` with a per-hop signature
(`protocol.request_auth`: origin this hub, destination the peer's hub id), then checks the
answer with `protocol.state_stats.open_state_stats` against the hub keys the compact lists
for that network: right network and hub, a listed key, a valid signature, the asked range,
issued recently. A refused or unreachable peer is reported with its stable code and nothing
of it is stored; a verified document is kept (`hub.national.store`) in its own transaction,
so one bad peer never undoes another's figures.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from federation.clock import Clock
from federation.database import Database
from federation.errors import FedCode
from federation.transport import read_bounded
from hub.national.peers import Peer
from hub.national.store import store_document
from protocol.errors import ProtocolError
from protocol.request_auth import sign_request
from protocol.state_stats import MAX_DOCUMENT_BYTES, open_state_stats

__all__ = ["MAX_AGE_MS", "STATS_PATH", "FetchOutcome", "fetch_all", "fetch_peer"]

log = logging.getLogger("peernet.hub.national")

STATS_PATH = "/fed/v1/state-statistics"
MAX_AGE_MS = 15 * 60_000  # a document is made on request: an old one is a replay
_TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5)


@dataclass(frozen=True)
class FetchOutcome:
    network_id: str
    status: str  # stored | refused | unreachable
    code: str | None = None
    months: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"network_id": self.network_id, "status": self.status, "code": self.code,
                "months_stored": self.months}


@dataclass(frozen=True)
class Fetcher:
    me: str
    signer: Any  # () -> (key_version, SigningKey)
    http: aiohttp.ClientSession
    db: Database
    clock: Clock


async def fetch_peer(f: Fetcher, peer: Peer, month_from: str,
                     month_to: str) -> FetchOutcome:
    now = f.clock.now_ms()
    version, key = f.signer()
    auth = sign_request(signing_key=key, key_version=version, method="GET", path=STATS_PATH,
                        origin=f.me, destination=peer.hub_id, ts=now, body=b"")
    url = peer.endpoint.rstrip("/") + STATS_PATH
    try:
        async with f.http.get(url, params={"from": month_from, "to": month_to},
                              headers={"Authorization": auth}, timeout=_TIMEOUT,
                              allow_redirects=False) as resp:
            status = resp.status
            data = await read_bounded(resp, MAX_DOCUMENT_BYTES)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        log.warning("state statistics of %s unreachable: %s", peer.network_id,
                    type(exc).__name__)
        return FetchOutcome(peer.network_id, "unreachable", FedCode.PEER_UNREACHABLE.value)
    if status != 200 or data is None:
        return FetchOutcome(peer.network_id, "unreachable", FedCode.PEER_ERROR.value)
    try:
        doc = open_state_stats(data, keys=peer.hub_sign_keys, network_id=peer.network_id,
                               hub_id=peer.hub_id, now_ms=f.clock.now_ms(),
                               max_age_ms=MAX_AGE_MS, month_range=(month_from, month_to))
    except ProtocolError as exc:
        log.warning("state statistics of %s refused: %s", peer.network_id, exc.code.value)
        return FetchOutcome(peer.network_id, "refused", exc.code.value)
    async with f.db.write() as conn:
        n = await store_document(conn, doc, data, f.clock.now_ms())
    return FetchOutcome(peer.network_id, "stored", None, n)


async def fetch_all(f: Fetcher, peers: Sequence[Peer], month_from: str,
                    month_to: str) -> list[FetchOutcome]:
    """Every peer at once (each on its own; results in the peers' order)."""
    return list(await asyncio.gather(*(fetch_peer(f, p, month_from, month_to)
                                       for p in peers)))
