"""Roster acceptance: whether a signed roster may become the current one (DESIGN section 5).

- version 1 needs a threshold of the board keys pinned at install (and of its own board, so a
  roster can never name a board it was not signed by), and `prev_sha256 = null`;
- version N+1 must be exactly N+1, name version N's hash in `prev_sha256`, and be signed by a
  threshold of version N's board AND a threshold of N+1's board;
- signatures count by distinct key bytes (two signatures by one key count once; key ids play
  no part); a key revoked in either roster does not count;
- `expires_ts` and `valid_until` are inclusive milliseconds: a roster is expired when
  `now > expires_ts`. When catching up over several versions only the newest must be
  unexpired (the older ones are links of the chain);
- a roster issued more than the skew window in the future is refused.

The document itself (models, parsing, signing) is `federation.roster`.
"""

from __future__ import annotations

from dataclasses import dataclass

from federation.errors import FedCode, FederationError
from federation.roster import Board, SignedRoster
from protocol.encoding import unb64u

__all__ = [
    "SKEW_MS",
    "BoardPin",
    "accept_first",
    "accept_next",
    "check_time",
    "valid_signers",
]

SKEW_MS = 5 * 60 * 1000


def valid_signers(
    signed: SignedRoster, allowed: frozenset[bytes], revoked: frozenset[bytes] = frozenset()
) -> frozenset[bytes]:
    """Distinct allowed, unrevoked keys whose signature over the roster bytes verifies."""
    good: set[bytes] = set()
    for s in signed.signatures:
        key = unb64u(s.key)
        if key not in allowed or key in revoked or key in good:
            continue
        if signed.signature_ok(key, s.value):  # verified once per document, then memoised
            good.add(key)
    return frozenset(good)


@dataclass(frozen=True)
class BoardPin:
    """The board keys and threshold pinned in a server's config at install."""

    keys: frozenset[bytes]
    threshold: int

    @classmethod
    def from_strings(cls, keys: list[str], threshold: int) -> BoardPin:
        decoded = frozenset(unb64u(k) for k in keys)
        if threshold < 1 or threshold > len(decoded):
            raise FederationError(FedCode.BAD_INPUT, "pinned board threshold out of range")
        return cls(decoded, threshold)


def check_time(signed: SignedRoster, now_ms: int) -> None:
    r = signed.roster
    if now_ms > r.expires_ts:
        raise FederationError(FedCode.ROSTER_EXPIRED, f"roster version {r.version} has expired")
    if r.issued_ts > now_ms + SKEW_MS:
        raise FederationError(
            FedCode.ROSTER_NOT_YET_VALID, f"roster version {r.version} is issued in the future"
        )


def _threshold(signed: SignedRoster, board: Board, revoked: frozenset[bytes], which: str) -> None:
    n = len(valid_signers(signed, board.key_bytes(), revoked))
    if n < board.threshold:
        raise FederationError(
            FedCode.ROSTER_THRESHOLD,
            f"roster version {signed.version} has {n} valid signatures of {which}, "
            f"needs {board.threshold}",
        )


def accept_first(
    signed: SignedRoster, pin: BoardPin, now_ms: int, *, check_expiry: bool = True
) -> None:
    """Raise unless `signed` is an acceptable version 1 under the pinned board."""
    r = signed.roster
    if r.version != 1:
        raise FederationError(FedCode.ROSTER_VERSION, "the first roster must be version 1")
    if check_expiry:
        check_time(signed, now_ms)
    revoked = r.revoked_keys()
    n = len(valid_signers(signed, pin.keys, revoked))
    if n < pin.threshold:
        raise FederationError(
            FedCode.ROSTER_THRESHOLD,
            f"roster version 1 has {n} valid signatures of the pinned board, needs {pin.threshold}",
        )
    _threshold(signed, r.board, revoked, "its own board")


def accept_next(
    current: SignedRoster, nxt: SignedRoster, now_ms: int, *, check_expiry: bool = True
) -> None:
    """Raise unless `nxt` is an acceptable successor of `current`."""
    if nxt.version != current.version + 1:
        raise FederationError(
            FedCode.ROSTER_VERSION,
            f"expected roster version {current.version + 1}, got {nxt.version}",
        )
    if nxt.roster.prev_sha256 != current.sha256:
        raise FederationError(
            FedCode.ROSTER_CHAIN, f"roster version {nxt.version} does not follow the current one"
        )
    if check_expiry:
        check_time(nxt, now_ms)
    revoked = nxt.roster.revoked_keys() | current.roster.revoked_keys()
    _threshold(nxt, current.roster.board, revoked, f"version {current.version}'s board")
    _threshold(nxt, nxt.roster.board, revoked, "its own board")

