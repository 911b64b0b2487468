"""The directory as the hub serves it: who is in the current roster (public information:
the roster is signed and holds only names, regions, disciplines, endpoints and public keys).

`GET /api/v1/directory?discipline=&region=&role=` -> `{"roster_version": n, "nodes": [...]}`.
"""

from __future__ import annotations

from typing import Any

from federation.roster_state import RosterState

__all__ = ["directory_listing"]


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
