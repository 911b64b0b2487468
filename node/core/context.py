"""`NodeContext`: what the core services need from the running node, as one object.

Services are plain async functions over a `NodeContext`, so the same code serves the JSON
API, the pages, the CLI and the benchmark; `NodeContext.of(app)` builds one from an app.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from aiohttp import web

from federation.clock import Clock
from federation.keystore import NodeKeys
from federation.passwords import PasswordHasher
from node.core.appkeys import CLOCK, DB, HASHER, KEYS, PSEUDONYMS, SETTINGS
from node.core.config import NodeSettings
from node.core.db import Database
from node.core.pseudonym import Pseudonymizer
from node.core.times import local_date

__all__ = ["NodeContext"]


@dataclass(frozen=True)
class NodeContext:
    db: Database
    clock: Clock
    settings: NodeSettings
    pseudonyms: Pseudonymizer
    hasher: PasswordHasher
    keys: NodeKeys | None = None

    @classmethod
    def of(cls, app: web.Application) -> NodeContext:
        return cls(app[DB], app[CLOCK], app[SETTINGS], app[PSEUDONYMS], app[HASHER], app[KEYS])

    @property
    def zone(self) -> ZoneInfo:
        return self.settings.zone

    def now(self) -> int:
        return self.clock.now_ms()

    def today(self) -> date:
        return local_date(self.clock.now_ms(), self.zone)
