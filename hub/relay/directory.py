"""The directory as the hub serves it: who is in the current roster (public information:
the roster is signed and holds only names, regions, disciplines, endpoints and public keys).

`GET /api/v1/directory?discipline=&region=&role=` -> `{"roster_version": n, "nodes": [...]}`.

Interstate (issue 19 item 4): `GET /api/v1/directory?network=hi` answers the public
directory of another member network of the compact, from that network's roster as this hub
holds it, verified against the board the current compact lists for it
(`federation.foreign_rosters`): `{"network_id", "roster_version", "nodes": [{node_id,
qualified (`hi/<node_id>`), name, disciplines, region, roles}]}` (agencies by default, the
same filters). A coordinator's node asks its own hub; the other network's hub is never
asked on the coordinator's behalf at browse time (the roster travelled already, signed).
Refusals: `unknown_network` 404, `network_not_in_compact` 403, `foreign_roster_invalid`
409 (none held, or it no longer verifies), `invalid_input` for a malformed network id. The
hub's own network id answers its own roster in the same interstate shape.
"""

from __future__ import annotations

from typing import Any

from federation.foreign_rosters import ForeignRosters
from federation.roster_state import RosterState
from protocol.errors import Code, ProtocolError
from protocol.ids import is_network_id

__all__ = ["directory_listing", "find_foreign_rosters", "network_listing", "own_network"]


def directory_listing(
    state: RosterState,
    *,
    discipline: str | None = None,
    region: str | None = None,
    role: str | None = None,
) -> dict[str, Any]:
    nodes = state.nodes(discipline=discipline, region=region, role=role) if state.current else []
    return {
        "roster_version": state.version,
        "nodes": [
            {
                "node_id": n.node_id,
                "name": n.name,
                "disciplines": list(n.disciplines),
                "region": n.region,
                "roles": list(n.roles),
                "endpoint": n.endpoint,
            }
            for n in nodes
        ],
    }


def find_foreign_rosters(holders: Any) -> ForeignRosters | None:
    """The `ForeignRosters` a hub holds: an attribute `foreign` of any of `holders` (the
    federation service) or one of them itself (the application's values)."""
    for h in holders:
        if isinstance(h, ForeignRosters):
            return h
        got = getattr(h, "foreign", None)
        if isinstance(got, ForeignRosters):
            return got
    return None


def own_network(foreign: ForeignRosters | None) -> str | None:
    return None if foreign is None else foreign.compact.pin.network_id


def network_listing(
    foreign: ForeignRosters | None,
    own: RosterState,
    network_id: str,
    *,
    discipline: str | None = None,
    region: str | None = None,
    role: str | None = "agency",
) -> dict[str, Any]:
    """The public directory of member network `network_id` (module notes)."""
    if not is_network_id(network_id):
        raise ProtocolError(Code.MALFORMED, "network is a network id")
    if foreign is None:
        raise ProtocolError(Code.UNKNOWN_NETWORK, "this hub holds no compact")
    if network_id == own_network(foreign):
        state = own
    else:
        state = foreign.roster_of(network_id)  # the compact's refusals, verified roster
    nodes = state.nodes(discipline=discipline, region=region, role=role) if state.current else []
    return {
        "network_id": network_id,
        "roster_version": state.version,
        "nodes": [
            {
                "node_id": n.node_id,
                "qualified": f"{network_id}/{n.node_id}",
                "name": n.name,
                "disciplines": list(n.disciplines),
                "region": n.region,
                "roles": list(n.roles),
            }
            for n in nodes
        ],
    }
