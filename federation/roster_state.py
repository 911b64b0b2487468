"""The roster a server currently trusts: key resolution, roster checks and the directory.

`RosterState` is what `protocol.envelope` asks while checking envelopes:

- `verify_key(node_id, key_id, at_ms)` (`KeyResolver`): the key must be listed for that node
  in the *current* roster, under `sign_keys` or `old_sign_keys`, with `valid_until`
  (inclusive) not before `at_ms`. A key whose bytes appear in `revoked` is refused whatever
  `at_ms` says (a stolen key can backdate). Unknown node -> `unknown_sender`; unknown key id
  or not valid at that time -> `unknown_key`; revoked -> `revoked_key`.
- `check_roster(version, sha256)` (`RosterChecker`): the envelope's roster must be a version
  this server accepted, with the same hash, and not expired. A known version with another
  hash is a split view: it is logged as a warning, queued as an alarm with a reason in words
  (persisted by whoever next flushes `take_alarms()`, see `federation.roster_sync` and
  `federation.roster_alarms`), and refused as `roster_mismatch`. An unknown newer version
  is `roster_mismatch` too (the sender retries; the receiver fetches the newer roster
  meanwhile from the peer that sent it and from the hub: `take_newer()`,
  `FederationService`).

`offer(chain)` judges every document on its own first (`federation.roster_checks`): a
document for a version already held, with another hash, raises the split-view alarm only when
it passes the same acceptance rules the held version passed; an edited copy is refused with
its own code (`bad_signatures`, `roster_threshold`, `roster_chain`, ...) and raises nothing.

Both methods are synchronous and touch no database: the state is loaded from `fed_roster` at
startup and replaced in memory when a newer version is accepted.

The directory part answers "who is out there": nodes by discipline, region and role, their
endpoints and encryption keys, the hubs, and the activation rules of the policy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from federation.clock import Clock
from federation.errors import FedCode, FederationError
from federation.roster import NodeEntry, NodeRole, Policy, SignedRoster
from federation.roster_acceptance import BoardPin
from federation.roster_alarms import Alarm, split_view_reason
from federation.roster_checks import check_link
from protocol.encoding import unb64u
from protocol.errors import Code, ProtocolError
from protocol.messages import RosterRef

__all__ = ["Alarm", "RosterState"]

log = logging.getLogger("peernet.federation.roster")


class RosterState:
    """In-memory view of the accepted roster chain (see module docstring)."""

    def __init__(self, clock: Clock, pin: BoardPin | None = None) -> None:
        self.clock = clock
        self.pin = pin
        self.current: SignedRoster | None = None
        self._hashes: dict[int, str] = {}
        self._accepted: dict[int, SignedRoster] = {}  # what a twin is checked against
        self._expires: dict[int, int] = {}
        self._nodes: dict[str, NodeEntry] = {}
        self._revoked: frozenset[bytes] = frozenset()
        self._pending: list[Alarm] = []
        self._alarmed: set[tuple[int, str]] = set()
        self._newer_seen = 0  # the highest unknown newer version an envelope named

    # --- loading and accepting ----------------------------------------------------------

    def load(self, accepted: Iterable[SignedRoster]) -> None:
        """Adopt versions accepted earlier (from the database); the newest becomes current."""
        for signed in accepted:
            self._remember(signed)
            if self.current is None or signed.version > self.current.version:
                self._set_current(signed)

    def _remember(self, signed: SignedRoster) -> None:
        self._hashes[signed.version] = signed.sha256
        self._accepted[signed.version] = signed
        self._expires[signed.version] = signed.roster.expires_ts

    def _set_current(self, signed: SignedRoster) -> None:
        self.current = signed
        self._nodes = {n.node_id: n for n in signed.roster.nodes}
        self._revoked = signed.roster.revoked_keys()

    def known_hash(self, version: int) -> str | None:
        return self._hashes.get(version)

    def accepted(self, version: int) -> SignedRoster | None:
        """An accepted version held in memory (what a delta is computed from)."""
        return self._accepted.get(version)

    def offer(
        self, chain: list[SignedRoster], source: str | None = None, *, partial: bool = False
    ) -> list[SignedRoster]:
        """Check newer versions (in order, consecutive) against the acceptance rules and
        adopt them. A version already known with another hash is checked as a twin of the
        held one (`_check_twin`): only if it passes is it a split view (alarm and
        `split_view` error); otherwise its own refusal is raised and nothing is alarmed.
        Returns the newly accepted versions, oldest first; nothing is adopted unless the
        whole chain passes. `partial`: the chain stops short of the newest (a catch-up in
        steps), so its last link is not checked for expiry either."""
        chain = sorted(chain, key=lambda s: s.version)
        now = self.clock.now_ms()
        fresh: list[SignedRoster] = []
        for signed in chain:
            known = self._hashes.get(signed.version)
            if known is None:
                fresh.append(signed)
            elif known != signed.sha256:
                self._check_twin(signed, now)
                self._split_view(signed.version, signed.sha256, source, "document")
                raise FederationError(
                    FedCode.SPLIT_VIEW,
                    f"two different rosters, both validly signed, claim version {signed.version}",
                )
        if not fresh:
            return []
        prev = self.current
        for i, signed in enumerate(fresh):
            last = not partial and i == len(fresh) - 1
            check_link(signed, prev, self.pin, now, check_expiry=last)
            prev = signed
        for signed in fresh:
            self._remember(signed)
        self._set_current(fresh[-1])
        return fresh

    def _check_twin(self, signed: SignedRoster, now: int) -> None:
        """Raise unless `signed` passes the rules the held version of its number passed.

        Dates are not checked: a validly signed twin proves the board signed two rosters for
        one version whether or not it has expired since."""
        held = self._accepted[signed.version]
        if signed.version == 1:
            board = held.roster.board  # without a pin, the board the held version 1 names
            pin = self.pin or BoardPin(board.key_bytes(), board.threshold)
            check_link(signed, None, pin, now, check_expiry=False)
            return
        prev = self._accepted.get(signed.version - 1)
        if prev is None:
            raise FederationError(
                FedCode.ROSTER_CHAIN, f"version {signed.version - 1} is not held to check against"
            )
        check_link(signed, prev, self.pin, now, check_expiry=False)

    # --- alarms -------------------------------------------------------------------------

    def _split_view(self, version: int, sha256: str, source: str | None, evidence: str) -> None:
        key = (version, sha256)
        if key in self._alarmed:
            return
        self._alarmed.add(key)
        log.warning(
            "roster split view: version %d seen with hash %s (ours %s), source %s",
            version,
            sha256,
            self._hashes.get(version),
            source or "unknown",
        )
        detail: dict[str, object] = {
            "version": version,
            "seen_sha256": sha256,
            "our_sha256": self._hashes.get(version),
            "evidence": evidence,
        }
        self._pending.append(
            Alarm(
                kind=FedCode.SPLIT_VIEW.value,
                ts=self.clock.now_ms(),
                source=source,
                detail=detail,
                reason=split_view_reason(detail, source),
            )
        )

    def take_alarms(self) -> list[Alarm]:
        """Alarms raised since the last call (to be persisted)."""
        pending, self._pending = self._pending, []
        return pending

    def take_newer(self) -> int:
        """The highest unknown newer roster version envelopes named since the last call
        (0: none); the server then fetches it from the peer that sent them."""
        newer, self._newer_seen = self._newer_seen, 0
        return newer if newer > self.version else 0

    def forget_alarm_keys(self) -> None:
        self._alarmed.clear()

    # --- protocol.envelope.KeyResolver / RosterChecker ----------------------------------

    def verify_key(self, node_id: str, key_id: str, at_ms: int) -> bytes:
        node = self._nodes.get(node_id)
        if node is None:
            raise ProtocolError(Code.UNKNOWN_SENDER, "sender is not in the roster")
        entry = node.sign_keys.get(key_id) or node.old_sign_keys.get(key_id)
        if entry is None:
            raise ProtocolError(Code.UNKNOWN_KEY, "key id is not listed for the sender")
        key = unb64u(entry.key)
        if key in self._revoked:
            raise ProtocolError(Code.REVOKED_KEY, "signing key is revoked")
        if entry.valid_until is not None and at_ms > entry.valid_until:
            raise ProtocolError(Code.UNKNOWN_KEY, "signing key was not valid at that time")
        return key

    def check_roster(self, version: int, sha256: str, source: str | None = None) -> None:
        known = self._hashes.get(version)
        if known is None:
            if version > self.version:
                self._newer_seen = max(self._newer_seen, version)
            raise ProtocolError(Code.ROSTER_MISMATCH, "unknown roster version")
        if known != sha256:
            self._split_view(version, sha256, source, "envelope")
            raise ProtocolError(Code.ROSTER_MISMATCH, "roster hash differs from ours (split view)")
        if self.clock.now_ms() > self._expires[version]:
            raise ProtocolError(Code.ROSTER_MISMATCH, "roster version has expired")

    # --- directory ----------------------------------------------------------------------

    def require(self) -> SignedRoster:
        if self.current is None:
            raise FederationError(FedCode.NO_ROSTER, "no accepted roster yet")
        return self.current

    def ref(self) -> RosterRef:
        """The roster reference new envelopes carry (current version and hash)."""
        cur = self.require()
        return RosterRef(version=cur.version, sha256=cur.sha256)

    @property
    def version(self) -> int:
        return self.current.version if self.current else 0

    @property
    def policy(self) -> Policy:
        return self.require().roster.policy

    def node(self, node_id: str) -> NodeEntry:
        entry = self._nodes.get(node_id)
        if entry is None:
            raise FederationError(FedCode.UNKNOWN_NODE, f"{node_id} is not in the roster")
        return entry

    def has_node(self, node_id: str) -> bool:
        return node_id in self._nodes

    def sign_keys_of(self, node_id: str) -> dict[str, str] | None:
        """The current signing keys the roster lists for `node_id` (key id -> base64url
        public key), None when it is not listed: what `NodeKeys.signer` chooses from."""
        entry = self._nodes.get(node_id)
        return None if entry is None else {kid: sk.key for kid, sk in entry.sign_keys.items()}

    def nodes(
        self,
        *,
        discipline: str | None = None,
        region: str | None = None,
        role: NodeRole | str | None = None,
    ) -> list[NodeEntry]:
        out = []
        for n in self._nodes.values():
            if discipline is not None and discipline not in n.disciplines:
                continue
            if region is not None and n.region != region:
                continue
            if role is not None and role not in n.roles:
                continue
            out.append(n)
        return sorted(out, key=lambda n: n.node_id)

    def hubs(self) -> list[NodeEntry]:
        return self.nodes(role=NodeRole.HUB)

    def endpoint(self, node_id: str) -> str:
        return self.node(node_id).endpoint

    def enc_key(self, node_id: str) -> bytes:
        return unb64u(self.node(node_id).enc_key)

    def may_request(self, requester: str, responder: str) -> bool:
        """Whether the policy's activation rules let `requester` ask `responder`."""
        a, b = self._nodes.get(requester), self._nodes.get(responder)
        if a is None or b is None:
            return False
        return any(
            any(_matches(s, a) for s in rule.requesters)
            and any(_matches(s, b) for s in rule.responders)
            for rule in self.policy.activation_rules
        )


def _matches(selector: str, node: NodeEntry) -> bool:
    if selector == "*":
        return True
    if selector.startswith("region:"):
        return node.region == selector[7:]
    if selector.startswith("discipline:"):
        return selector[11:] in node.disciplines
    return node.node_id == selector
