"""Interagency activation on the node (DESIGN section 6): the feature's `setup(app)`.

Listed in `node.web.app.FEATURES` after the federation service, it mounts the JSON API
(`node.activation.api`), the coordinator pages (`node.activation.pages`) and installs the
inbox handlers, the context and the expiry sweep (`node.activation.runtime`).

Module map: `activation_states` (the pure transition table), `activation_guardrails`
(timing warnings), `activation_db` (tables), `activation_models` (API models),
`activation_rows` (row types and reads), `activation_views` (what is shown),
`activation_writes` (how a change is written), `activation_requester` /
`activation_responder` / `activation_ending` (the operations of each side and of both),
`activation_inbound` (inbound rules),
`handoff` (follow-up hand-off, notes encrypted at rest), `activation_cli` (the CLI client).
Interstate (issue 19 item 4): `interstate` (qualified names, why), `interstate_rules` (who
may ask whom across networks), `interstate_directory` (other networks' agencies from their
verified rosters), `approval` / `approval_db` (the approval policy and holds),
`interstate_api` (directory, policy and approve routes; mounted here too).
"""

from __future__ import annotations

from aiohttp import web

from node.activation.api import setup_api
from node.activation.interstate_api import setup_interstate_api
from node.activation.pages import setup_pages
from node.activation.runtime import install
from node.activation.transfer_api import setup_transfer_api
from node.activation.transfer_pages import setup_transfer_pages
from node.core.appkeys import CLOCK, KEYS, SETTINGS
from node.web.federation import FEDERATION

__all__ = ["setup"]


def setup(app: web.Application) -> None:
    setup_api(app)
    setup_interstate_api(app)
    setup_transfer_api(app)
    setup_pages(app)
    setup_transfer_pages(app)
    if FEDERATION in app:
        install(app, app[FEDERATION], node_id=app[SETTINGS].node_id, clock=app[CLOCK],
                enc_private_key=bytes(app[KEYS].enc_key))
