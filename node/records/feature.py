"""The records room's routes beyond the core's: amendments (API and form) and the
coordinators' disclosures page. `setup(app)` is listed in `node.web.app.FEATURES`."""

from __future__ import annotations

from aiohttp import web

from node.core.routes import add_nav, add_routes
from node.records import amendment_pages, disclosure_pages

__all__ = ["setup"]


def setup(app: web.Application) -> None:
    add_routes(app, [*amendment_pages.routes(), *disclosure_pages.routes()])
    add_nav(app, disclosure_pages.NAV)
