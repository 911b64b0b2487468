"""Typed keys for what `hub.app.create_app` puts on the application.

from hub.appkeys import CLOCK, DB, FEDERATION, SETTINGS
db = request.app[DB]                 # hub.db.Database: .engine, .sessions, .write()
fed = request.app[FEDERATION]        # federation.service.FederationService
role = await request.app[AUTHORIZE](request, frozenset({"operator"}))
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from federation.clock import Clock
from federation.keystore import NodeKeys
from federation.service import FederationService
from hub.config import HubSettings
from hub.db import Database
from hub.relay.forwarding import Relay

__all__ = ["AUTHORIZE", "Authorize", "CLOCK", "DB", "FEDERATION", "KEYS", "RELAY", "SETTINGS"]

# (request, allowed roles) -> the caller's role; raises HubError unauthenticated/forbidden.
Authorize = Callable[[web.Request, frozenset[str]], Awaitable[str]]

SETTINGS = web.AppKey("peernet_hub_settings", HubSettings)
DB = web.AppKey("peernet_hub_db", Database)
CLOCK = web.AppKey("peernet_hub_clock", Clock)
KEYS = web.AppKey("peernet_hub_keys", NodeKeys)
FEDERATION = web.AppKey("peernet_hub_federation", FederationService)
RELAY = web.AppKey("peernet_hub_relay", Relay)
AUTHORIZE: web.AppKey[Authorize] = web.AppKey("peernet_hub_authorize")
