"""Fetching the compact and other networks' rosters from member hubs, every cost bounded.

What a hub answers is untrusted until it passes the acceptance rules
(`CompactStore.accept`, `ForeignRosters.accept_document`); these functions only bring the
bytes, with the limits of `federation.roster_fetch`: no redirects (a 3xx is `peer_error`:
no other server is asked on a peer's say-so), a byte limit per answer (`MAX_DOCUMENT_BYTES`,
`too_large` refusals surface as `bad_compact` / `foreign_roster_invalid`), and the whole
fetch within `FETCH_TIMEOUT_S` (`peer_unreachable`).

- `fetch_compact(http, base_url, store)`: the peer's newest compact; when it is more than
  one version past ours, the versions in between oldest first (at most `MAX_COMPACT_GAP`:
  a hub further behind stores what verified and continues on its next fetch). Each chain is
  offered whole, so nothing is stored unless every link passes.
- `fetch_foreign_roster(http, foreign, network_id)`: the newest roster of a member network
  from the hub the *current compact* names for it (`GET <endpoint>/fed/v1/roster`), then
  verified against that network's board in the compact.
"""

from __future__ import annotations

import asyncio

import aiohttp

from federation.compact_acceptance import parse_compact_document
from federation.compact_store import COMPACT_PATH, CompactStore
from federation.errors import FedCode, FederationError
from federation.foreign_rosters import ForeignRosters
from federation.roster_fetch import ROSTER_PATH
from federation.transport import read_bounded
from protocol.compact import SignedCompact
from protocol.errors import Code, ProtocolError

__all__ = [
    "FETCH_TIMEOUT_S",
    "MAX_COMPACT_GAP",
    "MAX_DOCUMENT_BYTES",
    "fetch_compact",
    "fetch_foreign_roster",
]

MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
MAX_COMPACT_GAP = 64
FETCH_TIMEOUT_S = 30.0
_REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5, sock_read=5)


async def _get(http: aiohttp.ClientSession, url: str) -> bytes | None:
    """The answer's bytes; None when it exceeds `MAX_DOCUMENT_BYTES`."""
    try:
        async with http.get(url, timeout=_REQUEST_TIMEOUT, allow_redirects=False) as resp:
            if resp.status != 200:
                raise FederationError(FedCode.PEER_ERROR, f"fetch answered {resp.status}")
            return await read_bounded(resp, MAX_DOCUMENT_BYTES)
    except (aiohttp.ClientError, OSError) as exc:
        raise FederationError(
            FedCode.PEER_UNREACHABLE, f"fetch failed: {type(exc).__name__}"
        ) from None


async def _compact_at(http: aiohttp.ClientSession, url: str) -> SignedCompact:
    data = await _get(http, url)
    if data is None:
        raise FederationError(FedCode.BAD_COMPACT, "compact document too large")
    return parse_compact_document(data)


async def fetch_compact(
    http: aiohttp.ClientSession, base_url: str, store: CompactStore, source: str | None = None
) -> list[SignedCompact]:
    """Fetch and accept newer compact versions from the hub at `base_url`; the versions
    newly accepted (see module docstring)."""
    url = base_url.rstrip("/") + COMPACT_PATH
    try:
        async with asyncio.timeout(FETCH_TIMEOUT_S):
            newest = await _compact_at(http, url)
            held = store.state.version
            if held == 0 or newest.version <= held + 1:
                return await store.accept([newest], source)
            chain: list[SignedCompact] = []
            last = min(newest.version - 1, held + MAX_COMPACT_GAP)
            for v in range(held + 1, last + 1):
                chain.append(await _compact_at(http, f"{url}/{v}"))
            partial = last < newest.version - 1
            if not partial:
                chain.append(newest)
            return await store.accept(chain, source, partial=partial)
    except TimeoutError:
        raise FederationError(
            FedCode.PEER_UNREACHABLE, f"compact fetch took longer than {FETCH_TIMEOUT_S:g} s"
        ) from None


async def fetch_foreign_roster(
    http: aiohttp.ClientSession, foreign: ForeignRosters, network_id: str
) -> bool:
    """Fetch the newest roster of `network_id` from its hub (as the current compact names
    it) and store it when it verifies; True when it was new."""
    member = foreign.compact.check_network(network_id)
    url = member.endpoint.rstrip("/") + ROSTER_PATH
    try:
        async with asyncio.timeout(FETCH_TIMEOUT_S):
            data = await _get(http, url)
    except TimeoutError:
        raise FederationError(
            FedCode.PEER_UNREACHABLE, f"roster fetch took longer than {FETCH_TIMEOUT_S:g} s"
        ) from None
    if data is None:
        raise ProtocolError(Code.FOREIGN_ROSTER_INVALID, "roster document too large")
    return await foreign.accept_document(network_id, data, member.hub_id)
