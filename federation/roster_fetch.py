"""Fetching newer roster versions from a hub or a peer, with every cost bounded.

A peer's roster answer is untrusted until it passes the acceptance rules, and it names the
version it claims to be. Unbounded, a peer claiming version 2^53 made a server walk (and
keep in memory) every version up to it. So a fetch (`fetch_chain`):

- reads the newest document first (unverified: only a walk from ours can check it) and walks
  at most `MAX_ROSTER_GAP` versions past ours, starting at the one after ours: a server
  further behind stores what verified and the next fetch continues from there, so it catches
  up in steps, while a peer claiming version 2^53 costs one bounded walk, never a loop;
- checks each link as it arrives (`check_link`: `accept_first` / `accept_next` against the
  previous link;
  expiry only for the claimed newest, the others are links of the chain), so a bad link ends
  the walk before the next request;
- reads each answer with a byte limit (`MAX_ROSTER_BYTES`, checked against Content-Length
  and the bytes as they arrive) and the whole walk with `MAX_CHAIN_BYTES` (`bad_roster`);
- finishes within `FETCH_TIMEOUT_S` in all (`asyncio.timeout`) -> `peer_unreachable`;
- never follows a redirect (`allow_redirects=False`): a 3xx is a `peer_error`, and no other
  server is ever asked on a peer's say-so.
- names the version it holds (`?have=N&have_sha256=H`) in every request, so a server that
  holds the same N answers N+1 as a delta (`federation.roster_delta`); the delta is applied
  to N and the document it rebuilds is checked as a fetched one. A delta for another base
  (`bad_roster_delta`) is asked again without `have`, as the whole document. When the
  newest is the version it holds, with the same hash, the answer is 304 Not Modified (no
  body: the poll every node makes every 10 minutes no longer carries the whole roster).

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
from federation.roster import SignedRoster, signed_from_value
from federation.roster_checks import check_link
from federation.roster_delta import apply_delta, is_delta, parse_answer
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


async def _get(
    http: aiohttp.ClientSession, url: str, limit: int, *, unchanged: bool = False
) -> bytes | None:
    """The answer's bytes; None for 304 Not Modified when `unchanged` may be answered."""
    try:
        async with http.get(url, timeout=_REQUEST_TIMEOUT, allow_redirects=False) as resp:
            if unchanged and resp.status == 304:
                return None
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


async def _link(
    http: aiohttp.ClientSession, url: str, base: SignedRoster | None, limit: int
) -> tuple[SignedRoster, int]:
    """One roster answer (and its size): asked as a delta from `base` when there is one,
    applied to it; a delta for another base is asked again as the whole document."""
    ask = url if base is None else f"{url}?have={base.version}&have_sha256={base.sha256}"
    data = await _get(http, ask, limit, unchanged=base is not None and url.endswith(ROSTER_PATH))
    if data is None:  # the newest is the version we hold, same hash
        assert base is not None
        return base, 0
    doc = parse_answer(data)
    if not is_delta(doc):
        return signed_from_value(doc), len(data)
    if base is None:
        raise FederationError(FedCode.BAD_ROSTER_DELTA, "a delta nobody asked for")
    try:
        return apply_delta(base, doc), len(data)
    except FederationError as exc:
        if exc.code != FedCode.BAD_ROSTER_DELTA:
            raise
    whole = await _get(http, url, max(limit - len(data), 0))
    assert whole is not None
    return signed_from_value(parse_answer(whole)), len(data) + len(whole)


async def _walk(http: aiohttp.ClientSession, url: str, state: RosterState) -> Fetched:
    latest, size = await _link(http, url, state.current, MAX_ROSTER_BYTES)
    have = state.version
    if latest.version <= have:
        return Fetched([latest], latest.version)
    last = min(latest.version, have + MAX_ROSTER_GAP)
    now = state.clock.now_ms()
    budget = MAX_CHAIN_BYTES - size
    prev = state.current
    chain: list[SignedRoster] = []
    for v in range(have + 1, last + 1):
        if v == latest.version:
            link = latest
        else:
            link, size = await _link(http, f"{url}/{v}", prev, min(MAX_ROSTER_BYTES, budget))
            budget -= size
        # As `RosterState.offer` will: an edited link is `bad_signatures`, not a threshold.
        check_link(link, prev, state.pin, now, check_expiry=link is latest)
        chain.append(link)
        prev = link
    return Fetched(chain, latest.version)
