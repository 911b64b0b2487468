"""The national document and whose figures go into it (shared by the API and the page).

`national(app, month_from, month_to)`: this state's figures computed now from hub.stats
(`hub.national.publish`), the peers' stored verified months (`hub.national.store`), summed
by `hub.national.sums`. Read only: nothing is written, no budget is spent. Peers come from
`app[PEER_NETWORKS]` (`hub.national.peers.PeerNetworks`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.appkeys import CLOCK, DB, FEDERATION, SETTINGS
from hub.national import peers as peers_mod
from hub.national.publish import build_state_stats
from hub.national.store import load_months
from hub.national.sums import StateMonth, national_document
from hub.stats.query import months_between

__all__ = ["FALLBACK_NETWORK", "PEER_NETWORKS", "READERS", "national", "own_network",
           "peer_list"]

PEER_NETWORKS: web.AppKey[peers_mod.PeerNetworks] = web.AppKey("peernet_hub_peer_networks")
READERS = frozenset({"operator", "board_analyst"})
FALLBACK_NETWORK = "own"


def own_network(app: web.Application) -> str:
    return app[PEER_NETWORKS].own_network_id() or FALLBACK_NETWORK


def peer_list(app: web.Application) -> list[peers_mod.Peer]:
    own = own_network(app)
    return [p for p in app[PEER_NETWORKS].members() if p.network_id != own]


async def national(app: web.Application, month_from: str, month_to: str) -> dict[str, Any]:
    """The national document (module docstring): nothing is written, no budget spent."""
    own = own_network(app)
    peer_ids = sorted({p.network_id for p in peer_list(app)})
    async with app[DB].read() as conn:
        mine = await build_state_stats(
            conn, network_id=own, hub_id=app[SETTINGS].hub_id,
            state=app[FEDERATION].roster.state, month_from=month_from, month_to=month_to,
            now_ms=app[CLOCK].now_ms())
        stored = await load_months(conn, month_from, month_to, peer_ids)
    rows = [StateMonth(own, m.month, m.nodes, m.estimate, m.variance,
                       None if m.covariance is None else dict(m.covariance))
            for m in mine.months]
    rows += [StateMonth(s.network_id, s.month, s.nodes, s.estimate, s.variance, s.covariance)
             for s in stored]
    doc = national_document(months_between(month_from, month_to), [own, *peer_ids], rows)
    return {"own_network": own, "filter": {"month_from": month_from, "month_to": month_to},
            **doc}
