"""Shared aggregation on the node (DESIGN 7.1 item 2): split the month, charge it, send shares.

When the roster policy says `aggregation = "shared"`, the monthly job calls `record_shares`
instead of `node.privacy.ledger.record_release`. In one write transaction it:

1. refuses what `record_release` refuses (an unfinished month, a tampered ledger, a month
   already left the node, a year over budget) and returns the stored ledger row when the
   month was already recorded, in either mode: a node-month goes into a round or into a
   local release, never both, and its vector is split once;
2. truncates the month's workload vector exactly as a local release does
   (`node.privacy.workload.truncated_workload`: no noise, the aggregators add it), and splits
   it into two additive shares mod 2^64 with the CSPRNG (`protocol.shares`);
3. charges the ledger once for the month: one `release_ledger` row (scale `shared`, the
   whole monthly allowance, the per-group calibration in `release_ledger_groups`) whose body
   is a small record of what left (mode, schema, the two share bodies' SHA-256), never a
   share; attested in the audit chain like any release;
4. queues `aggregate_share` to the hub and to the helper (sealed to the helper; the hub relays
   it and cannot open it) in the same transaction. The outbox builds each envelope once and
   resends the same bytes until the recipient's ack; the row is marked delivered so the
   local-release delivery never sends it as an `aggregate_release`.

Neither share is kept anywhere but in the outbox's sealed envelopes.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from node.core.db import Database
from node.core.errors import Code, NodeError
from node.privacy.budget import spent_against
from node.privacy.ledger import (
    LedgerEntry,
    LedgerRow,
    _mark_delivered,
    _stored,
    month_columns,
)
from node.privacy.ledger_attest import attest_recorded, attest_sent, guard
from node.privacy.ledger_groups import insert_groups
from node.privacy.release import month_bounds_ms, query_sha256
from node.privacy.schema import UNIT, ReleasePolicy
from node.privacy.workload import calibrate_groups, mechanism_of, truncated_workload
from protocol import shares
from protocol.canonical import canonical_bytes
from protocol.encoding import format_decimal, sha256_b64u
from protocol.ids import new_ulid
from protocol.messages import MessageType
from protocol.workload import SCHEMA

__all__ = ["SHARED_SCALE", "SendShares", "ShareSender", "record_shares",
           "record_shares_offline", "run_shared", "share_bodies"]

log = logging.getLogger("peernet.node.privacy")

SHARED_SCALE = "shared"  # the ledger's scale column for a shared month
# (conn, hub body, helper body) -> the two outbox msg ids
SendShares = Callable[[AsyncConnection, dict[str, Any], dict[str, Any]], Awaitable[list[str]]]


def share_bodies(
    x: list[int], *, month: str, policy: ReleasePolicy,
    rand: Callable[[int], bytes] = secrets.token_bytes,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(to the hub, to the helper): `aggregate_share` bodies of the split of `x`."""
    hub_part, helper_part = shares.split(x, rand)
    common = {"month": month, "schema": SCHEMA, "measure": policy.measure.value,
              "bounds": {"per_person_month": policy.per_person_month,
                         "per_cell": policy.per_cell}}
    return ({**common, "share": shares.encode(hub_part)},
            {**common, "share": shares.encode(helper_part)})


async def record_shares(
    db: Database, *, node_id: str, month: str, policy: ReleasePolicy, now_ms: int,
    send: SendShares, peer_ms: int | None = None,
) -> LedgerEntry:
    """Record the month as shared and queue its two shares (or return the stored row)."""
    try:
        _start, end = month_bounds_ms(month)
    except ValueError as exc:
        raise NodeError(Code.INVALID_INPUT, "month must be YYYY-MM", "month") from exc
    if end > now_ms or (peer_ms is not None and end > peer_ms):
        raise NodeError(Code.MONTH_NOT_FINISHED, f"{month} has not ended (a month is "
                        "shared only after it ends; check the node's clock)", "month")
    try:
        async with db.write() as conn:
            await guard(conn, node_id, month)
            stored = await _stored(conn, node_id, month)
            if stored is not None:
                return stored
            year = int(month[:4])
            spent = await spent_against(conn, node_id, year, policy.measure)
            allowance = policy.monthly_allowance
            if spent + allowance > policy.budget_per_node_year * (1 + Decimal("1e-9")):
                raise NodeError(Code.OVER_BUDGET, f"sharing {month} would spend more than "
                                "the yearly privacy budget", "month")
            x = [int(v) for v in truncated_workload(
                await month_columns(conn, month), policy.per_person_month, policy.per_cell)]
            to_hub, to_helper = share_bodies(x, month=month, policy=policy)
            del x
            cals = calibrate_groups(policy)
            release_id = new_ulid(now_ms, secrets.token_bytes(10))
            record = {"mode": "shared", "month": month, "schema": SCHEMA,
                      "helper": policy.helper,
                      "hub_share_sha256": sha256_b64u(canonical_bytes(to_hub)),
                      "helper_share_sha256": sha256_b64u(canonical_bytes(to_helper))}
            spent_now = sum((Decimal(format_decimal(c.budget_spent)) for c in cals),
                            Decimal(0))
            values: dict[str, Any] = {
                "release_id": release_id, "node_id": node_id, "month": month,
                "query_sha256": query_sha256(policy, SCHEMA), "unit": UNIT,
                "per_person_month": policy.per_person_month, "per_cell": policy.per_cell,
                "measure": policy.measure.value, "mechanism": mechanism_of(policy.measure).value,
                "scale": SHARED_SCALE, "budget_spent": format_decimal(spent_now),
                "budget_per_year": str(policy.budget_per_node_year),
                "opendp_version": _opendp_version(), "created_at": now_ms,
                "body": canonical_bytes(record),
            }
            await conn.execute(insert(LedgerRow).values(**values, year=year))
            await insert_groups(conn, release_id, cals)
            entry = LedgerEntry(**values, created=True)
            await attest_recorded(conn, entry, now_ms)
            msg_ids = await send(conn, to_hub, to_helper)
            await _mark_delivered(conn, release_id, now_ms)
            await attest_sent(conn, entry, msg_ids[0], now_ms)
            return entry
    except IntegrityError:
        async with db.read() as conn:
            stored = await _stored(conn, node_id, month)
        if stored is None:
            raise
        return stored


class ShareSender(Protocol):
    """What `run_shared` needs of the federation service (`FederationService.send`)."""

    async def send(self, conn: AsyncConnection, to: str, msg_type: MessageType,
                   body: dict[str, Any]) -> str: ...


async def run_shared(
    db: Database, fed: Any, *, node_id: str, month: str | None, policy: ReleasePolicy,
    hub: str, now_ms: int, peer_ms: int | None = None,
) -> list[str]:
    """The monthly job in shared mode: record and queue the due month's shares (if any);
    the ledger ids recorded now. The outbox resends what is queued; nothing else to do."""
    if month is None or policy.helper is None:
        return []
    helper = policy.helper

    async def send(conn: AsyncConnection, to_hub: dict[str, Any],
                   to_helper: dict[str, Any]) -> list[str]:
        return [await fed.send(conn, hub, MessageType.AGGREGATE_SHARE, to_hub),
                await fed.send(conn, helper, MessageType.AGGREGATE_SHARE, to_helper)]

    try:
        entry = await record_shares(db, node_id=node_id, month=month, policy=policy,
                                    now_ms=now_ms, send=send, peer_ms=peer_ms)
    except NodeError as exc:
        log.warning("shares of %s not made: %s", month, exc.code.value)
        return []
    return [entry.release_id] if entry.created else []


async def record_shares_offline(
    db: Database, *, node_id: str, keys: Any, month: str, policy: ReleasePolicy,
    now_ms: int,
) -> LedgerEntry:
    """`record_shares` outside the running node (`peernet node release` in a shared network):
    the shares are queued in the node's outbox with a federation service that is loaded but
    not started; the running node's worker delivers them."""
    from federation.clock import SystemClock
    from federation.service import FederationService

    fed = FederationService(me=node_id, keys=keys, engine=db.engine, write=db.write,
                            clock=SystemClock(), pin=None, run_worker=False)
    await fed.roster.load()
    hubs = fed.state.hubs()
    if not hubs or policy.helper is None:
        raise NodeError(Code.INVALID_INPUT, "the roster names no hub or no helper", "month")
    hub, helper = hubs[0].node_id, policy.helper

    async def send(conn: AsyncConnection, to_hub: dict[str, Any],
                   to_helper: dict[str, Any]) -> list[str]:
        return [await fed.send(conn, hub, MessageType.AGGREGATE_SHARE, to_hub),
                await fed.send(conn, helper, MessageType.AGGREGATE_SHARE, to_helper)]

    return await record_shares(db, node_id=node_id, month=month, policy=policy,
                               now_ms=now_ms, send=send)


def _opendp_version() -> str:
    from importlib.metadata import version

    return version("opendp")
