"""The agencies of other member networks, as this node holds them (`InterstateDirectory`).

A node with the interstate layer (`FederationService.interstate`) holds the compact and the
rosters of the other member networks, fetched through its own hub and verified here
against the board keys the compact lists for each network (`federation.foreign_rosters`):
browsing never trusts the hub's word, only signatures. A network whose roster is not held
yet is asked for once through the hub (`refresh`, a background fetch the federation service
runs) and answers `foreign_roster_invalid` meanwhile.

`networks()` lists the current compact's members except this node's own network;
`agencies(network)` that network's agencies (refusals: `unknown_network`,
`network_not_in_compact`, `foreign_roster_invalid`, as `ProtocolError`); `has_agency`
answers False instead of raising.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from federation.foreign_rosters import ForeignRosters
from federation.roster import NodeEntry
from federation.roster_state import RosterState
from protocol.errors import Code, ProtocolError

__all__ = ["CompactDirectory"]


class CompactDirectory:
    """`node.activation.interstate.InterstateDirectory` over the federation service's
    verified foreign rosters (read live on every call: a new compact or roster applies at
    once)."""

    def __init__(self, foreign: Callable[[], ForeignRosters | None],
                 refresh: Callable[[str], Any] | None = None) -> None:
        self._foreign = foreign
        self._refresh = refresh

    def networks(self) -> Sequence[str]:
        f = self._foreign()
        cur = None if f is None else f.compact.current
        if f is None or cur is None:
            return []
        own = f.compact.pin.network_id
        return sorted(m.network_id for m in cur.members() if m.network_id != own)

    def _state(self, network_id: str) -> RosterState:
        f = self._foreign()
        if f is None:
            raise ProtocolError(Code.UNKNOWN_NETWORK, "this node holds no compact")
        if not f.has_roster(network_id) and self._refresh is not None:
            f.check_network(network_id)  # a member: fetch its roster through the hub
            self._refresh(network_id)
        return f.roster_of(network_id)

    def agencies(self, network_id: str, *, discipline: str | None = None,
                 region: str | None = None) -> Sequence[NodeEntry]:
        return self._state(network_id).nodes(discipline=discipline, region=region,
                                             role="agency")

    def roster_version(self, network_id: str) -> int:
        return self._state(network_id).version

    def has_agency(self, network_id: str, node_id: str) -> bool:
        try:
            state = self._state(network_id)
        except ProtocolError:
            return False
        return state.has_node(node_id) and "agency" in state.node(node_id).roles
