"""Typed keys for what `node.web.app.create_app` puts on the application and the request.

Other features read these instead of reaching into module globals:

    from node.core.appkeys import CLOCK, DB, KEYS, SETTINGS
    db = request.app[DB]            # node.core.db.Database: .engine, .sessions, .write(), .read()
    now = request.app[CLOCK].now_ms()
    principal = request[PRINCIPAL]  # node.core.access.Principal (set on authenticated routes)
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from federation.clock import Clock
from federation.keystore import NodeKeys
from federation.login_throttle import LoginThrottle
from federation.passwords import PasswordHasher
from node.core.access import Principal
from node.core.config import NodeSettings
from node.core.db import Database
from node.core.pseudonym import Pseudonymizer
from node.core.routes import NAV, ROUTES

__all__ = [
    "CLOCK",
    "DB",
    "ENGINE",
    "HASHER",
    "KEYS",
    "LOGIN_SECRET",
    "NAV",
    "PRINCIPAL",
    "PSEUDONYMS",
    "ROUTES",
    "SESSIONS",
    "SETTINGS",
    "THROTTLE",
]

SETTINGS = web.AppKey("peernet_settings", NodeSettings)
DB = web.AppKey("peernet_db", Database)
ENGINE = web.AppKey("peernet_engine", AsyncEngine)
SESSIONS = web.AppKey("peernet_sessions", async_sessionmaker[AsyncSession])
CLOCK = web.AppKey("peernet_clock", Clock)
KEYS = web.AppKey("peernet_keys", NodeKeys)
PSEUDONYMS = web.AppKey("peernet_pseudonyms", Pseudonymizer)
HASHER = web.AppKey("peernet_hasher", PasswordHasher)
THROTTLE = web.AppKey("peernet_throttle", LoginThrottle)
LOGIN_SECRET = web.AppKey("peernet_login_secret", bytes)

PRINCIPAL = web.RequestKey("peernet_principal", Principal)
