"""Rosters of other member networks, trusted only through the compact (WIRE section 16).

A hub (or node) keeps the rosters of the other networks in `fed_foreign_roster`. A foreign
roster is accepted when

- its network is a member of the current compact (`unknown_network` /
  `network_not_in_compact`, from `CompactState.check_network`), and is not this server's
  own network (its own roster is `federation.roster_state`'s);
- it parses, is unexpired and not issued in the future, and carries a threshold of valid
  signatures (context `roster`, distinct unrevoked keys) by the board keys the *compact*
  lists for that network, and of the board the roster names itself (the roster rules);
- its version is newer than the one held for that network, or the same version with the
  same hash (nothing to do). An older version is a rollback.

Any failure of the roster itself is `foreign_roster_invalid`; nothing is stored. The chain
of a foreign network's rosters is not walked: the compact's board keys are the anchor, so
a hub may skip versions it never saw. The same version with another hash, both verifying,
is refused too and raises a split-view alarm (`detail.document = "foreign_roster"`).

`ForeignRosters` is the `protocol.envelope_interstate.InterstateResolver` the relay and the
interstate envelope checks use: keys and roster references of `<network>/<node>` resolve
through a `RosterState` per network (the roster's own lookups, reused). When the compact
changes a network's board, a held roster is checked again against the new board on its
next use; one that no longer verifies answers `foreign_roster_invalid`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from federation.clock import Clock
from federation.compact_state import CompactState
from federation.errors import FedCode, FederationError
from federation.interstate_tables import foreign_rosters
from federation.leader_lock import serialise_writers
from federation.roster import NodeEntry, SignedRoster, parse_signed_roster
from federation.roster_acceptance import check_time, valid_signers
from federation.roster_alarms import Alarm, store_alarms
from federation.roster_state import RosterState
from federation.version_store import OwnWrite
from protocol.compact import MemberNetwork
from protocol.errors import Code, ProtocolError

__all__ = ["ForeignRosters", "verify_foreign_roster"]

log = logging.getLogger("peernet.federation.foreign_rosters")


def _invalid(message: str) -> ProtocolError:
    return ProtocolError(Code.FOREIGN_ROSTER_INVALID, message)


def verify_foreign_roster(
    signed: SignedRoster, member: MemberNetwork, now_ms: int, *, check_expiry: bool = True
) -> None:
    """Raise `foreign_roster_invalid` unless `signed` verifies against the board the
    compact lists for `member` (and its own board, and its dates)."""
    if check_expiry:
        try:
            check_time(signed, now_ms)
        except FederationError as exc:
            raise _invalid(f"{member.network_id} roster: {exc.message}") from None
    revoked = signed.roster.revoked_keys()
    n = len(valid_signers(signed, member.board_keys, revoked))
    if n < member.threshold:
        raise _invalid(
            f"{member.network_id} roster version {signed.version} has {n} valid signatures "
            f"of the board the compact lists, needs {member.threshold}"
        )
    own = signed.roster.board
    if len(valid_signers(signed, own.key_bytes(), revoked)) < own.threshold:
        raise _invalid(f"{member.network_id} roster is not signed by its own board")


def _twins(network_id: str, version: int) -> FederationError:
    return FederationError(
        FedCode.SPLIT_VIEW,
        f"two {network_id} rosters, both validly signed, claim version {version}")


class ForeignRosters:
    """Other networks' rosters in the database and in memory (see module docstring)."""

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        compact: CompactState,
        write: Callable[[], AbstractAsyncContextManager[AsyncConnection]] | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.compact = compact
        self.write = write or OwnWrite(engine)
        self._states: dict[str, RosterState] = {}
        self._verified_under: dict[str, tuple[frozenset[bytes], int]] = {}
        self._pending: list[Alarm] = []

    async def load(self) -> None:
        """Read the held foreign rosters (startup); each is checked on its first use."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(foreign_rosters.c.network_id, foreign_rosters.c.document).order_by(
                        foreign_rosters.c.network_id, foreign_rosters.c.version
                    )
                )
            ).all()
        for r in rows:
            state = self._states.setdefault(r.network_id, RosterState(self.clock))
            state.load([parse_signed_roster(bytes(r.document))])

    def _member(self, network_id: str) -> MemberNetwork:
        if network_id == self.compact.pin.network_id:
            raise _invalid("this server's own roster is not a foreign roster")
        return self.compact.check_network(network_id)

    async def accept_document(
        self, network_id: str, data: bytes, source: str | None = None
    ) -> bool:
        """Verify and store another network's roster; True when it is new. Refusals:
        `unknown_network`, `network_not_in_compact`, `foreign_roster_invalid`,
        `split_view` (alarmed); nothing is stored on any of them."""
        member = self._member(network_id)
        try:
            signed = parse_signed_roster(data)
        except FederationError as exc:
            raise _invalid(f"{network_id} roster does not parse: {exc.message}") from None
        now = self.clock.now_ms()
        verify_foreign_roster(signed, member, now)
        state = self._states.get(network_id)
        if state is not None and state.current is not None:
            held = state.known_hash(signed.version)
            if held == signed.sha256:
                return False
            if held is not None:
                await self._split_view(network_id, signed, held, source)
                raise _twins(network_id, signed.version)
            if signed.version < state.version:
                raise _invalid(
                    f"{network_id} roster version {signed.version} is older than the held "
                    f"{state.version} (a rollback)"
                )
        # Another process over this database may have stored this version since we loaded
        # (its own refresh): take it, or find the split view (federation.roster_sync notes).
        async with self.write() as conn:
            await serialise_writers(conn, "fed_foreign_roster")
            stored = (await conn.execute(select(foreign_rosters.c.sha256).where(
                foreign_rosters.c.network_id == network_id,
                foreign_rosters.c.version == signed.version))).scalar_one_or_none()
            if stored is None:
                await conn.execute(
                    insert(foreign_rosters).values(
                        network_id=network_id, version=signed.version, sha256=signed.sha256,
                        document=signed.to_bytes(), compact_version=self.compact.version,
                        accepted_ts=now,
                    )
                )
        if stored is not None and stored != signed.sha256:
            await self._split_view(network_id, signed, stored, source)
            raise _twins(network_id, signed.version)
        state = self._states.setdefault(network_id, RosterState(self.clock))
        state.load([signed])
        self._verified_under[network_id] = (member.board_keys, member.threshold)
        log.info("roster version %d of network %s accepted", signed.version, network_id)
        return True

    async def _split_view(
        self, network_id: str, signed: SignedRoster, held: str, source: str | None
    ) -> None:
        detail: dict[str, object] = {
            "document": "foreign_roster", "network_id": network_id, "version": signed.version,
            "seen_sha256": signed.sha256, "our_sha256": held, "evidence": "document",
        }
        alarm = Alarm(
            kind=FedCode.SPLIT_VIEW.value, ts=self.clock.now_ms(), source=source, detail=detail,
            reason=(
                f"Two rosters of network {network_id}, both validly signed by its board, claim "
                f"version {signed.version}. Ask that network's board which roster is real."
            ),
        )
        async with self.write() as conn:
            await store_alarms(conn, [alarm])

    # --- lookups (protocol.envelope_interstate.InterstateResolver) ------------------------

    def roster_of(self, network_id: str) -> RosterState:
        """The held roster of a current member network, verified against the board the
        current compact lists for it (checked again when that board changed)."""
        member = self._member(network_id)
        state = self._states.get(network_id)
        if state is None or state.current is None:
            raise _invalid(f"no verified roster of network {network_id} is held")
        board = (member.board_keys, member.threshold)
        if self._verified_under.get(network_id) != board:
            verify_foreign_roster(state.current, member, self.clock.now_ms(), check_expiry=False)
            self._verified_under[network_id] = board
        return state

    def has_roster(self, network_id: str) -> bool:
        state = self._states.get(network_id)
        return state is not None and state.current is not None

    def version(self, network_id: str) -> int:
        state = self._states.get(network_id)
        return 0 if state is None else state.version

    def check_network(self, network_id: str) -> None:
        self.compact.check_network(network_id)

    def verify_key(self, network_id: str, node_id: str, key_id: str, at_ms: int) -> bytes:
        return self.roster_of(network_id).verify_key(node_id, key_id, at_ms)

    def check_roster(self, network_id: str, version: int, sha256: str) -> None:
        self.roster_of(network_id).check_roster(version, sha256, source=network_id)

    def node(self, network_id: str, node_id: str) -> NodeEntry:
        """A foreign node's roster entry (endpoint, keys); `unknown_sender` if not listed."""
        state = self.roster_of(network_id)
        if not state.has_node(node_id):
            raise ProtocolError(Code.UNKNOWN_SENDER, f"{node_id} is not in that network's roster")
        return state.node(node_id)
