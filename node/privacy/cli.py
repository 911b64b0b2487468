"""`peernet node release --month YYYY-MM` and `peernet node ledger`.

Register with one line in `node.cli`: `release_cli.register(node_group)`.

`release` records the month's release in the ledger (or shows the stored one: the noise is
drawn once per node-month) under the roster policy the node has accepted (the defaults of
`federation.roster.Policy` before any roster); the running node queues it to the hub on its
next pass (`node.privacy.runtime`). `ledger` lists the ledger without the bodies. Neither
prints anything about a record.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click
from sqlalchemy import func, select

from federation.clock import SystemClock
from federation.database import make_engine, migrate
from federation.roster import Policy
from node.commands.init import require_initialised
from node.core.audit import sign_head
from node.core.db import Database
from node.core.errors import Code, NodeError
from node.privacy.ledger import ledger_entries, record_release
from node.privacy.ledger_attest import check as check_ledger
from node.privacy.schema import ReleasePolicy
from node.privacy.shared import record_shares_offline

__all__ = ["ledger_command", "register", "release_command"]


def _settings(config: str | None) -> Any:
    from node.core.config import NodeSettings

    return NodeSettings.load(Path(config) if config else None)


def _config_path(config: str | None) -> Path | None:
    return Path(config) if config else None


async def _roster_view(db: Database, node_id: str) -> tuple[ReleasePolicy, dict[str, str] | None]:
    """The release policy and this node's listed signing keys, from the roster the node
    accepted; with no roster accepted yet, the board's default policy and no listed keys.
    A roster that is stored but cannot be loaded is `roster_unreadable`: releasing under a
    default policy instead could spend another budget than the board set."""
    from federation.roster_sync import RosterStore
    from federation.store import rosters

    async with db.read() as conn:
        if not await conn.scalar(select(func.count()).select_from(rosters)):
            return ReleasePolicy.from_roster_policy(Policy()), None
    try:
        store = RosterStore(db.engine, SystemClock(), None)
        await store.load()
        policy = ReleasePolicy.from_roster_policy(store.state.policy)
        return policy, store.state.sign_keys_of(node_id)
    except Exception as exc:
        raise NodeError(Code.ROSTER_UNREADABLE, "the roster this node accepted could not be "
                        f"loaded ({type(exc).__name__}); no release is made under a default "
                        "policy") from None


async def _release(config: str | None, month: str) -> dict[str, Any]:
    from node.web.app import load_secrets

    settings = _settings(config)
    keys, _ = load_secrets(settings)
    await require_initialised(settings, _config_path(config))
    db = Database(make_engine(settings.db_url))
    try:
        await migrate(db.engine, "node:migrations")
        policy, listed = await _roster_view(db, settings.node_id)
        key_version, signing_key = keys.signer(listed)
        if policy.aggregation == "shared":  # shares, never also a local release
            entry = await record_shares_offline(
                db, node_id=settings.node_id, keys=keys, month=month, policy=policy,
                now_ms=SystemClock().now_ms())
        else:
            entry = await record_release(
                db, node_id=settings.node_id, month=month, policy=policy,
                signing_key=signing_key, key_version=key_version,
                now_ms=SystemClock().now_ms(),
            )
        if entry.created:  # its audit entry (node.privacy.ledger_attest): sign the new head
            async with db.write() as conn:
                await sign_head(conn, keys, settings.node_id, SystemClock().now_ms())
        return {"created": entry.created, **entry.summary()}
    finally:
        await db.dispose()


async def _ledger(config: str | None) -> list[dict[str, Any]]:
    settings = _settings(config)
    await require_initialised(settings, _config_path(config))
    db = Database(make_engine(settings.db_url))
    try:
        await migrate(db.engine, "node:migrations")
        return [e.summary() for e in await ledger_entries(db)]
    finally:
        await db.dispose()


async def _verify(config: str | None) -> dict[str, Any]:
    settings = _settings(config)
    await require_initialised(settings, _config_path(config))
    db = Database(make_engine(settings.db_url))
    try:
        await migrate(db.engine, "node:migrations")
        async with db.read() as conn:
            return (await check_ledger(conn, settings.node_id)).as_dict()
    finally:
        await db.dispose()


@click.command("release")
@click.option("--month", required=True, help="Calendar month to release, YYYY-MM (UTC).")
@click.option("--config", type=click.Path(dir_okay=False), default=None,
              help="Node config file (default: none, settings from PEERNET_* variables).")
def release_command(month: str, config: str | None) -> None:
    """Record the month's differentially private release in the ledger."""
    try:
        out = asyncio.run(_release(config, month))
    except NodeError as exc:
        raise click.ClickException(f"{exc.code.value}: {exc.message}") from None
    verb = "recorded" if out.pop("created") else "already recorded"
    click.echo(f"{out['month']}: {verb} (release {out['release_id']})")
    click.echo(json.dumps(out, indent=2, sort_keys=True))


@click.command("ledger")
@click.option("--config", type=click.Path(dir_okay=False), default=None,
              help="Node config file (default: none, settings from PEERNET_* variables).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--verify", is_flag=True,
              help="Compare the ledger with its audit-log attestations; fail on a gap.")
def ledger_command(config: str | None, as_json: bool, verify: bool) -> None:
    """List the privacy ledger: one line per released month."""
    try:
        if verify:
            report = asyncio.run(_verify(config))
        else:
            rows = asyncio.run(_ledger(config))
    except NodeError as exc:
        raise click.ClickException(f"{exc.code.value}: {exc.message}") from None
    if verify:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        if not report["ok"]:
            raise click.ClickException(
                f"ledger_tampered: {len(report['problems'])} problem(s) in the ledger")
        return
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    click.echo(f"{'month':<8} {'measure':<8} {'scale':<22} {'spent':<22} release")
    for r in rows:
        click.echo(f"{r['month']:<8} {r['measure']:<8} {r['scale']:<22} "
                   f"{r['budget_spent']:<22} {r['release_id']}")


def register(group: click.Group) -> None:
    group.add_command(release_command)
    group.add_command(ledger_command)
