"""`create_app(settings, *, clock=None, keys=None)`: the node's aiohttp application.

Wiring: the database (`node.core.db.Database` over `federation.database.make_engine`, migrated to
all heads on start), the clock, the node keys, the pseudonymizer, the password hasher and
login throttle, the route table, templates (`node/web/templates/` over the shared web kit's,
`federation.webkit.pages`) and the static files (`/static/`). Everything is reachable
through the typed keys of `node.core.appkeys`.

Extension points for other features (one line each, no other edits):

- routes: write `def setup(app: web.Application) -> None` that calls
  `node.core.routes.add_routes(app, [Route(...)])` (and optionally `add_nav`), then append it to
  `FEATURES` below. Declare `roles` per DESIGN section 3, and pydantic `body` / `query` /
  `response` models for API routes so the OpenAPI document shows them; add an expectation
  for each new route to tests/node/test_role_matrix.py (the test fails without one).
- startup / shutdown work: in `setup`, append to `app.cleanup_ctx` (runs after the core's
  own context, so the database is migrated and `app[DB]` is ready).
- tables: see `node.core.db` (`TABLE_MODULES`, migration branch off `0001_node_core`).
- templates: put `<feature>_*.html` files in `node/web/templates/` extending `base.html`
  (blocks `title` and `content`); render with `node.web.plumbing.render`. `base.html` fills
  the web kit's `kit_base.html`; login.html and error.html come from `federation/webkit/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from federation.client_address import TRUSTED_PROXIES, parse_trusted
from federation.clock import Clock, SystemClock
from federation.database import is_sqlite, make_engine, migrate
from federation.keystore import KeystoreError, NodeKeys
from federation.login_throttle import LoginThrottle
from federation.passwords import INTERACTIVE, PasswordHasher
from federation.webkit.csrf import login_secret
from federation.webkit.pages import Site, setup_pages
from federation.websecurity import body_limit, security_headers
from federation.worker import stop_task
from node.accounts import feature as accounts_feature
from node.activation import feature as activations
from node.auditlog import pages as auditlog_pages
from node.core import audit
from node.core.appkeys import (
    CLOCK,
    DB,
    ENGINE,
    HASHER,
    KEYS,
    LOGIN_SECRET,
    NAV,
    PSEUDONYMS,
    ROUTES,
    SESSIONS,
    SETTINGS,
    THROTTLE,
)
from node.core.audit_verify import SIGNER_PASSES, SignerPasses
from node.core.auth_cache import listen as listen_for_auth_changes
from node.core.config import NodeSettings
from node.core.db import Database
from node.core.errors import Code, NodeError
from node.core.pseudonym import Pseudonymizer, load_key_file
from node.core.routes import RouteTable
from node.notify import feature as notify_feature
from node.oidc import feature as oidc_feature
from node.ops import feature as ops_feature
from node.privacy import runtime as release_service
from node.records import feature as records_feature
from node.web import audit_anchor, observe
from node.web import federation as federation_service
from node.web.plumbing import auth_middleware, error_middleware

__all__ = ["FEATURES", "create_app", "engine_options", "load_secrets"]

log = logging.getLogger("peernet.node")
HERE = Path(__file__).resolve().parent

Setup = Callable[[web.Application], None]


def _core_features() -> list[Setup]:
    from node.web import api, pages

    return [api.setup, pages.setup]


# Feature setups run in this order after the core's; append yours here (one line).
FEATURES: list[Setup] = [federation_service.setup, observe.setup, release_service.setup,
                         activations.setup, audit_anchor.setup, records_feature.setup,
                         auditlog_pages.setup]
FEATURES.append(accounts_feature.setup)  # own password, sessions, resets (node.accounts)
FEATURES.append(oidc_feature.setup)  # sign-in through the agency's provider (node.oidc)
FEATURES.append(notify_feature.setup)  # email and signed webhooks (node.notify)
FEATURES.append(ops_feature.setup)  # a detached node runs alone (node.ops)


def load_secrets(settings: NodeSettings) -> tuple[NodeKeys, Pseudonymizer]:
    """Open the node key file and the pseudonym key file with `PEERNET_PASSPHRASE`."""
    if settings.passphrase is None:
        raise NodeError(Code.KEYS, "set PEERNET_PASSPHRASE to open the node key file")
    phrase = settings.passphrase.get_secret_value()
    try:
        keys = NodeKeys.load(settings.key_path, phrase)
        pseudonyms = load_key_file(settings.pseudonym_key_path, phrase)
    except KeystoreError as exc:
        raise NodeError(Code.KEYS, exc.message) from None
    return keys, pseudonyms


def engine_options(settings: NodeSettings) -> dict[str, Any]:
    """Pool settings. At most `db_pool_size` connections, kept open; a request that finds
    them all busy waits for one. No overflow: overflow connections are closed as soon as
    they are returned, so under sustained load each burst opened new ones, and each new
    PostgreSQL connection costs a server process, asyncpg's type introspection and every
    statement prepared again (bench.load: 30 backends started and 55 ended in 5 s; with the
    churn gone, load p99 650-700 -> 440-500 ms and 25 % more writes). On SQLite the pool's
    reset-on-return rollback is skipped: it costs a round trip to aiosqlite's thread per
    checkout, and every connection here is returned through SQLAlchemy, which has already
    committed or rolled back its transaction."""
    opts: dict[str, Any] = {"pool_size": settings.db_pool_size, "max_overflow": 0}
    if is_sqlite(settings.db_url):
        opts["pool_reset_on_return"] = None
    return opts


def create_app(
    settings: NodeSettings,
    *,
    clock: Clock | None = None,
    keys: NodeKeys | None = None,
    pseudonyms: Pseudonymizer | None = None,
    hasher: PasswordHasher | None = None,
) -> web.Application:
    """The node application. Without `keys`, keys and pseudonym secret are loaded from the
    key files with `PEERNET_PASSPHRASE`; with `keys` (tests, embedding) a missing
    `pseudonyms` is a fresh random secret, so refs are stable only for this app's life."""
    if keys is None:
        keys, loaded = load_secrets(settings)
        pseudonyms = pseudonyms or loaded
    if pseudonyms is None:
        pseudonyms = Pseudonymizer.generate()
    clock = clock or SystemClock()

    app = web.Application(
        middlewares=[security_headers(), error_middleware,
                     body_limit(settings.max_body_bytes), auth_middleware],
        client_max_size=settings.max_body_bytes,
    )
    db = Database(make_engine(settings.db_url, **engine_options(settings)))
    app[SETTINGS] = settings
    app[DB] = db
    app[ENGINE] = db.engine
    app[SESSIONS] = db.sessions
    app[CLOCK] = clock
    app[KEYS] = keys
    app[PSEUDONYMS] = pseudonyms
    app[HASHER] = hasher or PasswordHasher(INTERACTIVE)
    app[THROTTLE] = LoginThrottle()  # counters in the database
    app[TRUSTED_PROXIES] = parse_trusted(settings.trusted_proxies)  # the throttle's address
    app[LOGIN_SECRET] = login_secret(bytes(keys.signing_key))  # same in every process
    app[ROUTES] = RouteTable()
    app[NAV] = []
    app[SIGNER_PASSES] = SignerPasses()

    setup_pages(app, "node.web", Site(name=settings.name, stylesheet="/static/style.css",
                                      home="/", home_label="Back to start"))
    app.router.add_static("/static/", HERE / "static", name="static")
    app.cleanup_ctx.append(_database_ctx)
    for setup in [*_core_features(), *FEATURES]:
        setup(app)
    return app


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    db = app[DB]
    await migrate(db.engine, "node:migrations")
    await _sign_head(app)
    task = asyncio.create_task(_sign_periodically(app))
    # The token cache: on at once with one process per SQLite file; on PostgreSQL only
    # while it listens for changes made by any process (node.core.auth_cache).
    listener = None
    if db.is_sqlite:
        db.auth_cache.set_enabled(True)
    else:
        listener = asyncio.create_task(listen_for_auth_changes(db.engine, db.auth_cache))
    try:
        yield
    finally:
        if listener is not None:
            await stop_task(listener)
        await stop_task(task)
        with contextlib.suppress(Exception):
            await _sign_head(app)
        await db.dispose()


async def _sign_head(app: web.Application) -> None:
    app[SIGNER_PASSES].last_ms = app[CLOCK].now_ms()
    async with app[DB].read() as conn:
        if not await audit.head_moved(conn):
            return  # the common case on an idle node: no write lock taken
    async with app[DB].write() as conn:
        await audit.sign_head(conn, app[KEYS], app[SETTINGS].node_id, app[CLOCK].now_ms())


async def _sign_periodically(app: web.Application) -> None:
    interval = app[SETTINGS].audit_sign_interval_s
    while True:
        await asyncio.sleep(interval)
        try:
            await _sign_head(app)
        except Exception:
            log.exception("signing the audit head failed")
