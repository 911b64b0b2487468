"""Compact acceptance: whether a signed compact may become the current one (WIRE section 16).

A hub (or node) accepting compact version N checks, in this order:

- the document parses (`bad_compact`) and names the accepting server's own network
  (`network_not_in_compact`: a network that left holds no compact of the others);
- chain: with no compact held, any version is taken as the start (the server's own pinned
  board is the anchor, as the pinned board is for roster version 1); otherwise N must be
  exactly the held version + 1 (lower or equal: a rollback, `compact_version`) and
  `prev_sha256` must name the held version's hash (`compact_chain`);
- time: `now > expires_ts` is a frozen compact (`compact_expired`); issued more than the
  skew window ahead is `compact_not_yet_valid`. Only the newest of a catch-up chain is
  checked for expiry (the older ones are links);
- signatures, each network's filed under its own id and counted by distinct key bytes:
  every listed network needs its own threshold of its own listed board keys; a network
  listed in the held version too needs a threshold of the board the held version lists for
  it (a board cannot be swapped by the other members alone); and the server's own network
  needs its pinned board's threshold (`compact_threshold`). A network removed in N signs
  nothing: leaving or removal is a new version signed by the others. When a threshold is
  missed and some signature by a counted key does not verify, the document was edited after
  signing (`bad_signatures`).

The document itself is `protocol.compact`; the held chain, split views and lookups are
`federation.compact_state`.
"""

from __future__ import annotations

from dataclasses import dataclass

from federation.errors import FedCode, FederationError
from federation.roster_acceptance import SKEW_MS, BoardPin
from protocol.compact import SignedCompact, compact_signers, parse_signed_compact
from protocol.errors import Code, ProtocolError
from protocol.ids import check_network_id

__all__ = ["CompactPin", "accept_compact", "check_compact_time", "parse_compact_document"]


@dataclass(frozen=True)
class CompactPin:
    """The accepting server's own network id and its pinned board (keys, threshold)."""

    network_id: str
    board: BoardPin

    @classmethod
    def of(cls, network_id: str, keys: list[str], threshold: int) -> CompactPin:
        try:
            check_network_id(network_id)
        except ProtocolError:
            raise FederationError(FedCode.BAD_INPUT, "invalid network id", "network_id") from None
        return cls(network_id, BoardPin.from_strings(keys, threshold))


def parse_compact_document(data: bytes) -> SignedCompact:
    """`protocol.compact.parse_signed_compact` with its refusal as `bad_compact`."""
    try:
        return parse_signed_compact(data)
    except ProtocolError as exc:
        raise FederationError(FedCode.BAD_COMPACT, exc.detail or "not a compact") from None


def check_compact_time(signed: SignedCompact, now_ms: int) -> None:
    c = signed.compact
    if now_ms > c.expires_ts:
        raise FederationError(
            FedCode.COMPACT_EXPIRED, f"compact version {c.version} has expired (frozen)"
        )
    if c.issued_ts > now_ms + SKEW_MS:
        raise FederationError(
            FedCode.COMPACT_NOT_YET_VALID, f"compact version {c.version} is issued in the future"
        )


def _threshold(
    signed: SignedCompact, network_id: str, keys: frozenset[bytes], threshold: int, which: str
) -> None:
    good, broken = compact_signers(signed, network_id, keys)
    if len(good) >= threshold:
        return
    if broken:
        raise FederationError(
            FedCode.BAD_SIGNATURES,
            f"compact version {signed.version} has {broken} signature(s) of {which} that do "
            "not verify: the document was changed after it was signed",
        )
    raise FederationError(
        FedCode.COMPACT_THRESHOLD,
        f"compact version {signed.version} has {len(good)} valid signatures of {which}, "
        f"needs {threshold}",
    )


def accept_compact(
    signed: SignedCompact,
    prev: SignedCompact | None,
    pin: CompactPin,
    now_ms: int,
    *,
    check_expiry: bool = True,
) -> None:
    """Raise unless `signed` is acceptable after `prev` (None: the first compact held)."""
    c = signed.compact
    if not c.has(pin.network_id):
        raise FederationError(
            Code.NETWORK_NOT_IN_COMPACT,
            f"compact version {c.version} does not list this server's network {pin.network_id}",
        )
    if prev is not None:
        if c.compact_id != prev.compact.compact_id:
            raise FederationError(FedCode.COMPACT_CHAIN, "another compact (compact_id differs)")
        if c.version != prev.version + 1:
            what = "a rollback" if c.version <= prev.version else "a gap"
            raise FederationError(
                FedCode.COMPACT_VERSION,
                f"expected compact version {prev.version + 1}, got {c.version} ({what})",
            )
        if c.prev_sha256 != prev.sha256:
            raise FederationError(
                FedCode.COMPACT_CHAIN, f"compact version {c.version} does not follow the held one"
            )
    if check_expiry:
        check_compact_time(signed, now_ms)
    for member in c.members():
        nid = member.network_id
        _threshold(signed, nid, member.board_keys, member.threshold, f"{nid}'s board")
        if prev is not None and prev.compact.has(nid):
            before = prev.compact.network(nid)
            if before.board_keys != member.board_keys or before.threshold != member.threshold:
                _threshold(
                    signed, nid, before.board_keys, before.threshold,
                    f"{nid}'s board of version {prev.version}",
                )
    _threshold(
        signed, pin.network_id, pin.board.keys, pin.board.threshold,
        f"this server's pinned board ({pin.network_id})",
    )
