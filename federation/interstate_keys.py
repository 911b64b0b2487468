"""Key resolvers that join a server's own roster with the compact (WIRE section 16).

- `NetworkKeys`: the `protocol.envelope_interstate.InterstateResolver` of a server of
  network `own`: a node of its own network resolves through its own `RosterState` (the
  roster it already trusts), any other network through `ForeignRosters` (the roster of that
  network verified against the board the compact lists). `check_network` asks the compact
  for every network, its own included: a network that left the compact relays nothing.
- `HopKeys`: the `protocol.envelope.KeyResolver` of a hub's send route: a member of its own
  roster by the roster, anyone else as a member hub by the keys the compact lists for it
  (`CompactState.verify_key`), so another network's hub can relay to this one.
"""

from __future__ import annotations

from federation.compact_state import CompactState
from federation.foreign_rosters import ForeignRosters
from federation.roster_state import RosterState

__all__ = ["HopKeys", "NetworkKeys"]


class NetworkKeys:
    """`InterstateResolver` over this server's own roster and the foreign rosters."""

    def __init__(self, own: str, roster: RosterState, foreign: ForeignRosters) -> None:
        self.own = own
        self.roster = roster
        self.foreign = foreign

    def check_network(self, network_id: str) -> None:
        self.foreign.compact.check_network(network_id)

    def verify_key(self, network_id: str, node_id: str, key_id: str, at_ms: int) -> bytes:
        if network_id == self.own:
            self.check_network(network_id)
            return self.roster.verify_key(node_id, key_id, at_ms)
        return self.foreign.verify_key(network_id, node_id, key_id, at_ms)

    def check_roster(self, network_id: str, version: int, sha256: str) -> None:
        if network_id == self.own:
            self.roster.check_roster(version, sha256)
            return
        self.foreign.check_roster(network_id, version, sha256)


class HopKeys:
    """Per-hop signers a hub accepts: its own roster's members, then member hubs."""

    def __init__(self, roster: RosterState, compact: CompactState) -> None:
        self.roster = roster
        self.compact = compact

    def verify_key(self, node_id: str, key_id: str, at_ms: int) -> bytes:
        if self.roster.has_node(node_id):
            return self.roster.verify_key(node_id, key_id, at_ms)
        return self.compact.verify_key(node_id, key_id, at_ms)
