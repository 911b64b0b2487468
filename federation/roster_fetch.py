"""Fetching newer roster versions from a hub or a peer, with every cost bounded.

A peer's roster answer is untrusted until it passes the acceptance rules, and it names the
version it claims to be. Unbounded, a peer claiming version 2^53 made a server walk (and
keep in memory) every version up to it. So a fetch (`fetch_chain`):

- reads the newest document first (unverified: only a walk from ours can check it) and walks
  at most `MAX_ROSTER_GAP` versions past ours, starting at the one after ours: a server
  further behind stores what verified and the next fetch continues from there, so it catches
  up in steps, while a peer claiming version 2^53 costs one bounded walk, never a loop;
- checks each link as it arrives (`accept_first` / `accept_next` against the previous link;
  expiry only for the claimed newest, the others are links of the chain), so a bad link ends
  the walk before the next request;
- reads each answer with a byte limit (`MAX_ROSTER_BYTES`, checked against Content-Length
  and the bytes as they arrive) and the whole walk with `MAX_CHAIN_BYTES` (`bad_roster`);
- finishes within `FETCH_TIMEOUT_S` in all (`asyncio.timeout`) -> `peer_unreachable`;
- never follows a redirect (`allow_redirects=False`): a 3xx is a `peer_error`, and no other
  server is ever asked on a peer's say-so.

The caller (`RosterStore.fetch_from`) then offers the checked links to `RosterState.offer`,
which checks them again as a whole and stores nothing unless all of them pass; a partial walk
(`Fetched.partial`) is offered without the expiry check on its last link, which is not the
newest.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp

from federation.errors import FedCode, FederationError
from federation.roster import SignedRoster, parse_signed_roster
from federation.roster_acceptance import accept_first, accept_next
from federation.roster_state import RosterState
from federation.transport import read_bounded

__all__ = [
    "FETCH_TIMEOUT_S",
    "MAX_CHAIN_BYTES",
    "MAX_ROSTER_BYTES",
    "MAX_ROSTER_GAP",
    "ROSTER_PATH",
    "Fetched",
    "fetch_chain",
]

ROSTER_PATH = "/fed/v1/roster"
# Versions one fetch may walk past ours (a server further behind continues on the next
# fetch). The board publishes a version per membership or key change and per renewal; 64
# covers months offline in one fetch.
MAX_ROSTER_GAP = 64
MAX_ROSTER_BYTES = 8 * 1024 * 1024  # one document (10,000 nodes fit)
MAX_CHAIN_BYTES = 32 * 1024 * 1024  # all the documents of one fetch together
FETCH_TIMEOUT_S = 30.0  # the whole fetch, every request included
_REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5, sock_read=5)


@dataclass(frozen=True)
class Fetched:
    """What one fetch brought: the checked links, oldest first (or the newest alone when it
    is not newer than ours), and the version the peer claims as its newest."""

    links: list[SignedRoster]
    claimed: int

    @property
    def partial(self) -> bool:
        """The walk stopped at `MAX_ROSTER_GAP` before the claimed newest."""
        return bool(self.links) and self.links[-1].version < self.claimed


async def _get(http: aiohttp.ClientSession, url: str, limit: int) -> bytes:
    try:
        async with http.get(url, timeout=_REQUEST_TIMEOUT, allow_redirects=False) as resp:
            if resp.status != 200:
                raise FederationError(FedCode.PEER_ERROR, f"roster fetch answered {resp.status}")
            data = await read_bounded(resp, limit)
    except (aiohttp.ClientError, OSError) as exc:
        raise FederationError(
            FedCode.PEER_UNREACHABLE, f"roster fetch failed: {type(exc).__name__}"
        ) from None
    if data is None:
        raise FederationError(FedCode.BAD_ROSTER, "roster document too large")
    return data


async def fetch_chain(
    http: aiohttp.ClientSession, base_url: str, state: RosterState
) -> Fetched:
    """Up to `MAX_ROSTER_GAP` versions `base_url` has past `state`'s, each link checked,
    oldest first; or the newest alone when it is not newer (the caller compares its hash).
    Raises `FederationError` (see module docstring) on the first thing wrong."""
    try:
        async with asyncio.timeout(FETCH_TIMEOUT_S):
            return await _walk(http, base_url.rstrip("/") + ROSTER_PATH, state)
    except TimeoutError:
        raise FederationError(
            FedCode.PEER_UNREACHABLE, f"roster fetch took longer than {FETCH_TIMEOUT_S:g} s"
        ) from None


async def _walk(http: aiohttp.ClientSession, url: str, state: RosterState) -> Fetched:
    latest = parse_signed_roster(await _get(http, url, MAX_ROSTER_BYTES))
    have = state.version
    if latest.version <= have:
        return Fetched([latest], latest.version)
    last = min(latest.version, have + MAX_ROSTER_GAP)
    now = state.clock.now_ms()
    budget = MAX_CHAIN_BYTES - len(latest.roster_bytes)
    prev = state.current
    chain: list[SignedRoster] = []
    for v in range(have + 1, last + 1):
        if v == latest.version:
            link = latest
        else:
            data = await _get(http, f"{url}/{v}", min(MAX_ROSTER_BYTES, budget))
            budget -= len(data)
            link = parse_signed_roster(data)
        newest = link is latest
        if prev is None:
            if state.pin is None:
                raise FederationError(FedCode.NO_ROSTER, "no pinned board keys configured")
            accept_first(link, state.pin, now, check_expiry=newest)
        else:
            accept_next(prev, link, now, check_expiry=newest)
        chain.append(link)
        prev = link
    return Fetched(chain, latest.version)
