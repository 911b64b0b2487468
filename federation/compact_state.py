"""The interstate compact a server currently trusts, in memory (WIRE section 16).

`CompactState` holds the accepted chain (loaded from `fed_compact` at startup by
`federation.compact_store`, extended by `offer`), answers the lookups the relay and the
interstate envelope checks need, and raises the split-view alarm:

- `current -> Compact | None`; `signed -> SignedCompact | None`;
- `check_network(network_id) -> MemberNetwork`: a member of the current version; a network
  named in an older held version but not in the current one (it left or was removed) is
  `network_not_in_compact`; a network never held (or no compact at all) is
  `unknown_network` (both `ProtocolError`, they travel in batch results);
- `member_of_hub(hub_id)`, `verify_key(hub_id, key_id, at_ms)`: a `KeyResolver` over
  the member hubs' keys, for per-hop request signatures between hubs;
- `offer(chain, source)`: consecutive newer versions checked link by link
  (`federation.compact_acceptance`) and adopted only if all pass. A version already held
  with another hash is judged on its own signatures against the held version's
  predecessor: only when it passes is it a split view (`split_view`, an `Alarm` of kind
  `split_view` with `detail.document = "compact"`, persisted by whoever flushes
  `take_alarms()` with `federation.roster_alarms.store_alarms`); an edited copy is refused
  with its own code and alarms nothing. An older version than the current, not held, is a
  rollback (`compact_version`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from federation.clock import Clock
from federation.compact_acceptance import CompactPin, accept_compact
from federation.errors import FedCode, FederationError
from federation.roster_alarms import Alarm
from protocol.compact import Compact, MemberNetwork, SignedCompact
from protocol.errors import Code, ProtocolError

__all__ = ["CompactState"]

log = logging.getLogger("peernet.federation.compact")


def _reason(version: int, ours: str | None, seen: str, source: str | None) -> str:
    who = source or "an unknown source"
    return (
        f"Two interstate compacts validly signed by their member boards both claim version "
        f"{version}: the one this server holds (hash {str(ours)[:12]}…) and one offered by "
        f"{who} (hash {seen[:12]}…). Ask the member boards which compact is real before "
        "trusting either."
    )


class CompactState:
    """In-memory view of the accepted compact chain (see module docstring)."""

    def __init__(self, clock: Clock, pin: CompactPin) -> None:
        self.clock = clock
        self.pin = pin
        self.signed: SignedCompact | None = None
        self._accepted: dict[int, SignedCompact] = {}
        self._ever: set[str] = set()  # every network id any held version listed
        self._pending: list[Alarm] = []
        self._alarmed: set[tuple[int, str]] = set()

    @property
    def current(self) -> Compact | None:
        return None if self.signed is None else self.signed.compact

    @property
    def version(self) -> int:
        return 0 if self.signed is None else self.signed.version

    def require(self) -> Compact:
        if self.signed is None:
            raise FederationError(FedCode.NO_COMPACT, "no accepted compact yet")
        return self.signed.compact

    def held(self, version: int) -> SignedCompact | None:
        return self._accepted.get(version)

    def load(self, accepted: Iterable[SignedCompact]) -> None:
        """Adopt versions accepted earlier (from the database); the newest becomes current."""
        for signed in accepted:
            self._remember(signed)
            if self.signed is None or signed.version > self.signed.version:
                self.signed = signed

    def _remember(self, signed: SignedCompact) -> None:
        self._accepted[signed.version] = signed
        self._ever.update(n.network_id for n in signed.compact.networks)

    # --- lookups --------------------------------------------------------------------------

    def check_network(self, network_id: str) -> MemberNetwork:
        """The current member `network_id` (see module docstring for the refusals)."""
        cur = self.current
        if cur is not None and cur.has(network_id):
            return cur.network(network_id)
        if network_id in self._ever:
            raise ProtocolError(
                Code.NETWORK_NOT_IN_COMPACT, "network is not in the current compact"
            )
        raise ProtocolError(Code.UNKNOWN_NETWORK, "network is not known to this server")

    def member_of_hub(self, hub_id: str) -> MemberNetwork:
        """The current member whose hub is `hub_id`; `unknown_sender` when none is."""
        cur = self.current
        found = [] if cur is None else [m for m in cur.networks if m.hub_id == hub_id]
        if len(found) != 1:
            raise ProtocolError(Code.UNKNOWN_SENDER, "not the hub of a member network")
        return found[0]

    def verify_key(self, node_id: str, key_id: str, at_ms: int) -> bytes:
        """`protocol.envelope.KeyResolver` over member hubs (by hub id), for per-hop
        request signatures between hubs (`protocol.request_auth.verify_request`):
        `unknown_sender` for a hub no current member names, `unknown_key` for a key id the
        compact does not list for it. `at_ms` plays no part: the compact lists current keys."""
        key = self.member_of_hub(node_id).hub_sign_keys.get(key_id)
        if key is None:
            raise ProtocolError(Code.UNKNOWN_KEY, "the compact lists no such hub key")
        return key

    def is_member(self, network_id: str) -> bool:
        cur = self.current
        return cur is not None and cur.has(network_id)

    # --- accepting ------------------------------------------------------------------------

    def offer(
        self, chain: list[SignedCompact], source: str | None = None, *, partial: bool = False
    ) -> list[SignedCompact]:
        """Check newer versions (consecutive, in order) and adopt them; the newly accepted
        versions, oldest first. Nothing is adopted unless the whole chain passes."""
        chain = sorted(chain, key=lambda s: s.version)
        now = self.clock.now_ms()
        fresh: list[SignedCompact] = []
        for signed in chain:
            held = self._accepted.get(signed.version)
            if held is None:
                if signed.version < self.version:
                    raise FederationError(
                        FedCode.COMPACT_VERSION,
                        f"compact version {signed.version} is older than the held "
                        f"{self.version} (a rollback)",
                    )
                fresh.append(signed)
            elif held.sha256 != signed.sha256:
                self._check_twin(signed, now)
                self._split_view(signed, held, source)
                raise FederationError(
                    FedCode.SPLIT_VIEW,
                    f"two different compacts, both validly signed, claim version "
                    f"{signed.version}",
                )
        if not fresh:
            return []
        prev = self.signed
        for i, signed in enumerate(fresh):
            last = not partial and i == len(fresh) - 1
            accept_compact(signed, prev, self.pin, now, check_expiry=last)
            prev = signed
        for signed in fresh:
            self._remember(signed)
        self.signed = fresh[-1]
        return fresh

    def _check_twin(self, signed: SignedCompact, now: int) -> None:
        """Raise unless `signed` passes the rules the held version of its number passed
        (dates aside: a validly signed twin proves a double signing even once expired)."""
        prev = self._accepted.get(signed.version - 1)
        accept_compact(signed, prev, self.pin, now, check_expiry=False)

    def _split_view(self, signed: SignedCompact, held: SignedCompact, source: str | None) -> None:
        key = (signed.version, signed.sha256)
        if key in self._alarmed:
            return
        self._alarmed.add(key)
        log.warning(
            "compact split view: version %d seen with hash %s (ours %s), source %s",
            signed.version, signed.sha256, held.sha256, source or "unknown",
        )
        detail: dict[str, object] = {
            "document": "compact",
            "version": signed.version,
            "seen_sha256": signed.sha256,
            "our_sha256": held.sha256,
            "evidence": "document",
        }
        self._pending.append(
            Alarm(
                kind=FedCode.SPLIT_VIEW.value,
                ts=self.clock.now_ms(),
                source=source,
                detail=detail,
                reason=_reason(signed.version, held.sha256, signed.sha256, source),
            )
        )

    def take_alarms(self) -> list[Alarm]:
        """Alarms raised since the last call (to be persisted)."""
        pending, self._pending = self._pending, []
        return pending
