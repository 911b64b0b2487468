"""One roster version checked against the acceptance rules of its place in the chain.

`RosterState.offer` runs every document it is given through `check_link` before it looks at
what it already holds, so a document is judged on its own signatures first:

- a document for a version the server already holds, with another hash, is a split view only
  when it passes the same rules the held version passed (version 1: a threshold of the
  pinned board and of its own board; version N: chained to the held N-1 and signed by a
  threshold of N-1's board and of its own). Anything else is refused with its code and
  raises no alarm: an edited copy of a roster file is a bad file, not proof that the board
  signed two rosters.
- a refusal for too few valid signatures is told apart: when a signature by one of the
  boards' keys does not verify over the document's bytes, the document was changed after it
  was signed (`bad_signatures`); otherwise it was not signed by enough of the board
  (`roster_threshold`).
"""

from __future__ import annotations

from federation.errors import FedCode, FederationError
from federation.roster import SignedRoster
from federation.roster_acceptance import BoardPin, accept_first, accept_next
from protocol.encoding import unb64u

__all__ = ["broken_board_signatures", "check_link"]


def check_link(
    signed: SignedRoster,
    prev: SignedRoster | None,
    pin: BoardPin | None,
    now_ms: int,
    *,
    check_expiry: bool,
) -> None:
    """Raise unless `signed` is acceptable after `prev` (None: as version 1 under `pin`)."""
    try:
        if prev is None:
            if pin is None:
                raise FederationError(FedCode.NO_ROSTER, "no pinned board keys configured")
            accept_first(signed, pin, now_ms, check_expiry=check_expiry)
        else:
            accept_next(prev, signed, now_ms, check_expiry=check_expiry)
    except FederationError as exc:
        if exc.code != FedCode.ROSTER_THRESHOLD:
            raise
        boards = signed.roster.board.key_bytes()
        boards |= pin.keys if prev is None and pin is not None else frozenset()
        boards |= prev.roster.board.key_bytes() if prev is not None else frozenset()
        broken = broken_board_signatures(signed, boards)
        if not broken:
            raise
        raise FederationError(
            FedCode.BAD_SIGNATURES,
            f"roster version {signed.version} has {broken} board signature(s) that do not "
            "verify: the document was changed after it was signed",
        ) from None


def broken_board_signatures(signed: SignedRoster, board_keys: frozenset[bytes]) -> int:
    """How many signatures by `board_keys` do not verify over the roster's bytes."""
    broken = 0
    for s in signed.signatures:
        key = unb64u(s.key)
        if key in board_keys and not signed.signature_ok(key, s.value):
            broken += 1
    return broken
