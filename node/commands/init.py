"""`peernet node init` in two phases, and the check `peernet node serve` runs first.

Phase one checks everything a node needs (see `federation.init_checks`): the config and data
directories, the passphrase, key files an unfinished init left, and the database:
reachable, writable by its user, and holding no other node. Phase two writes, in an order
that makes a retry complete: key files, then the database (the audit's `node.init` entry and
signed head, then the first admin), then the config file last. A retry after a failure in
phase two finds the key files (reused: they open with the same passphrase) and, when the
admin was already created, a finished database; a database holding users that this retry
cannot account for is refused with what to do.

`serve` refuses a database that holds no node (never initialised): starting would create an
empty schema with no user able to log in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, func, select

from federation.cli_errors import CliError
from federation.clock import SystemClock
from federation.database import make_engine, migrate
from federation.db_errors import database_errors, probe_database
from federation.db_url import parse_db_url, redact
from federation.init_checks import leftover_keys, refuse_leftover
from federation.keystore import KeystoreError, NodeKeys
from federation.passwords import INTERACTIVE, PasswordHasher
from node.accounts.users import create_user
from node.core import audit
from node.core.config import NodeSettings
from node.core.context import NodeContext
from node.core.db import AuditEntry, Database, User, table_of
from node.core.pseudonym import Pseudonymizer, create_key_file, load_key_file
from node.core.schemas import UserIn

__all__ = ["InitPlan", "check_database", "load_leftovers", "require_initialised",
           "write_node"]


@dataclass
class InitPlan:
    """What phase two must still do (filled by the checks)."""

    keys: NodeKeys
    keys_reused: bool
    pseudonyms: Pseudonymizer | None  # reused from an unfinished init, else made in phase two
    database_done: bool = False


def load_leftovers(settings: NodeSettings, phrase: str) -> InitPlan:
    keys = leftover_keys(settings.key_path, phrase)
    pseudonyms = None
    if os.path.lexists(settings.pseudonym_key_path):
        try:
            pseudonyms = load_key_file(settings.pseudonym_key_path, phrase)
        except KeystoreError:
            raise refuse_leftover(settings.pseudonym_key_path) from None
    return InitPlan(keys or NodeKeys.generate(), keys is not None, pseudonyms)


async def _user_names(db: Database) -> list[str]:
    users = table_of(User)
    async with db.read() as conn:
        return list((await conn.execute(select(users.c.username).limit(50))).scalars())


async def check_database(settings: NodeSettings, plan: InitPlan, admin: str) -> None:
    """Reachable, writable, and empty (or finished by an earlier run with these keys)."""
    probe = await probe_database(settings.db_url)
    if "users" not in probe.tables:
        return
    async with database_errors(settings.db_url):
        db = Database(make_engine(settings.db_url))
        try:
            names = await _user_names(db)
        finally:
            await db.dispose()
    if not names:
        return
    if plan.keys_reused and admin in names:
        plan.database_done = True  # an earlier run got this far; only files remain
        return
    raise CliError(f"the database {redact(settings.db_url)} already holds a node "
                   f"({len(names)} users or more): give init an empty database, or drop and "
                   "re-create this one if it is left from an init that did not finish",
                   "db_not_empty")


async def _setup(settings: NodeSettings, keys: NodeKeys, admin: UserIn) -> None:
    db = Database(make_engine(settings.db_url))
    try:
        await migrate(db.engine, "node:migrations")
        clock = SystemClock()
        ctx = NodeContext(db, clock, settings, Pseudonymizer.generate(),
                          PasswordHasher(INTERACTIVE), keys)
        # The audit entry first: a retry after it re-runs this step (the admin is last).
        async with db.write() as conn:
            await audit.append(conn, ts=ctx.now(), action="node.init",
                               detail={"key_id": keys.key_id})
            await audit.sign_head(conn, keys, settings.node_id, ctx.now())
        await create_user(ctx, None, admin)
    finally:
        await db.dispose()


async def write_node(settings: NodeSettings, plan: InitPlan, admin: UserIn,
                     phrase: str) -> None:
    """Phase two, except the config file (the caller writes it last)."""
    if not plan.keys_reused:
        plan.keys.save(settings.key_path, phrase)
    if plan.pseudonyms is None:
        plan.pseudonyms = create_key_file(settings.pseudonym_key_path, phrase)
    if not plan.database_done:
        async with database_errors(settings.db_url):
            await _setup(settings, plan.keys, admin)


def _sqlite_file(url: str) -> Path | None:
    u = parse_db_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def _has_table(conn: Connection, name: str) -> bool:
    return bool(conn.dialect.has_table(conn, name))


async def require_initialised(settings: NodeSettings, config_path: Path | None) -> None:
    """Refuse to serve, or run any other command on, a database that holds no node (every
    command but `init` would otherwise create the schema and act on an empty node)."""
    where = redact(settings.db_url)
    in_config = f"in {config_path}" if config_path is not None else "in the config file"
    hint = (f"the database {where} holds no node (it was never initialised): create the "
            f"node with `peernet node init --config <new file> --db-url ...`, or point db_url "
            f"{in_config} at this node's database")
    path = _sqlite_file(settings.db_url)
    if path is not None and not path.exists():
        raise CliError(hint, "not_initialised")  # connecting would create the file
    async with database_errors(settings.db_url):
        engine = make_engine(settings.db_url)
        try:
            async with engine.connect() as conn:
                count = 0
                # A node holds its users or, at least, its audit log (init's first entry).
                for model in (User, AuditEntry):
                    table = table_of(model)
                    if not count and await conn.run_sync(_has_table, table.name):
                        count = (await conn.execute(
                            select(func.count()).select_from(table))).scalar_one()
        finally:
            await engine.dispose()
    if not count:
        raise CliError(hint, "not_initialised")
