"""The central activation log: metadata only (who asked whom, when, states, counts).

Nodes send `activation_status` messages addressed to the hub (sealed to the hub's key, so it
opens them), several at once as one `activation_statuses` after a burst. The handler stores
each body's fields plus who reported it and when; a node may only report activations it is
a party to (`from` must be the requester or the responder), anything else is refused as
`bad_body`. Nothing here can hold a name, a narrative or a record: the body model
(`protocol.hub_bodies.ActivationStatusBody`) has no such field.

Operators (and board analysts) read it through `GET /api/v1/activation-log`.

Interstate threads (issue 19 item 4): a thread whose requester or responder belongs to
another network names that party qualified (`tx/agency-a`); each side's node reports to its
own hub, so both hubs log the thread. When the hub knows its own network (`network_id`,
from the compact), the bare names of such a thread (its own agencies) are stored
qualified too, so both hubs' rows name every party the same way. Intra-network threads
keep bare names. Name columns hold up to 95 characters (`activation_log_interstate_0001`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.errors import FederationError
from federation.prepared import Prepared
from hub.db import Base
from protocol.envelope import Opened
from protocol.errors import Code
from protocol.hub_bodies import ActivationStatusBody, ActivationStatusesBody
from protocol.transfer_bodies import FollowupTransferStatusBody

__all__ = ["activation_log", "list_entries", "record_status", "record_transfer"]

activation_log = Table(
    "hub_activation_log",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("activation_id", String(26), nullable=False),
    Column("requester", String(95), nullable=False),
    Column("responder", String(95), nullable=True),
    Column("state", String(32), nullable=False),
    Column("incident_type", String(32), nullable=False),
    Column("affected", Integer, nullable=False),
    Column("peers_needed", Integer, nullable=False),
    Column("peers_offered", Integer, nullable=False),
    Column("status_ts", BigInteger, nullable=False),
    Column("reported_by", String(95), nullable=False),
    Column("msg_id", String(26), nullable=False),
    Column("received_ts", BigInteger, nullable=False),
    Index("ix_hub_activation_log_activation", "activation_id", "status_ts"),
    Index("ix_hub_activation_log_status_ts", "status_ts"),
)


# Built once: a status arrives per activation state change, in bursts after an incident.
_INSERT = Prepared(insert(activation_log))


def _is_interstate(body: ActivationStatusBody) -> bool:
    names = [body.requester, body.responder, *(body.responders or ())]
    return any(n is not None and "/" in n for n in names)


def _qualifier(body: ActivationStatusBody, network_id: str | None, known: set[str]) -> Any:
    if network_id is None or not (_is_interstate(body) or body.activation_id in known):
        return lambda n: n
    return lambda n: n if n is None or "/" in n else f"{network_id}/{n}"


async def _interstate_threads(conn: AsyncConnection, ids: set[str]) -> set[str]:
    """Which of these activations the log already holds as interstate (a later status of
    the requester's own state names no other party: it is qualified like the first)."""
    t = activation_log.c
    rows = await conn.execute(
        select(t.activation_id).distinct().where(
            t.activation_id.in_(sorted(ids)),
            t.requester.contains("/") | t.responder.contains("/"),
        )
    )
    return {r.activation_id for r in rows}


def _rows(body: ActivationStatusBody, reporter: str, msg_id: str, received_ts: int,
          network_id: str | None = None, known: set[str] | None = None
          ) -> list[dict[str, Any]]:
    if reporter not in (body.requester, body.responder):
        raise FederationError(Code.BAD_BODY, "a node may only report activations it is party to")
    q = _qualifier(body, network_id, known or set())
    row = {
        "activation_id": body.activation_id,
        "requester": q(body.requester),
        "responder": q(body.responder),
        "state": body.state.value,
        "incident_type": body.incident_type.value,
        "affected": body.counts.affected,
        "peers_needed": body.counts.peers_needed,
        "peers_offered": body.counts.peers_offered,
        "status_ts": body.ts,
        "reported_by": q(reporter),
        "msg_id": msg_id,
        "received_ts": received_ts,
    }
    # A submit's report names every agency asked: the log keeps one row for the activation
    # and one per agency, as if each had been reported on its own.
    return [row, *({**row, "responder": q(r)} for r in body.responders or ())]


async def record_status(conn: AsyncConnection, opened: Opened, *, received_ts: int,
                        network_id: str | None = None) -> None:
    """An `activation_status`, or an `activation_statuses` (each of its statuses logged as if
    it had come alone; one that the reporter is not party to refuses the whole message)."""
    body = opened.body
    inner = opened.inner
    if isinstance(body, ActivationStatusesBody):
        bodies = body.statuses
    else:
        assert isinstance(body, ActivationStatusBody)
        bodies = [body]
    known: set[str] = set()
    if network_id is not None:
        plain = {b.activation_id for b in bodies if not _is_interstate(b)}
        known = await _interstate_threads(conn, plain) if plain else set()
        known |= {b.activation_id for b in bodies if _is_interstate(b)}  # same batch
    rows = [r for b in bodies
            for r in _rows(b, inner.from_, inner.msg_id, received_ts, network_id, known)]
    await _INSERT.run(conn, rows)


async def record_transfer(conn: AsyncConnection, opened: Opened, *, received_ts: int) -> None:
    """A follow-up transfer between agencies (issue 21), logged like an activation status:
    the transfer id, sender as requester, receiver as responder, state `transferred`, kind
    `followup_transfer`, zero counts. Only the sending agency reports it."""
    body = opened.body
    assert isinstance(body, FollowupTransferStatusBody)
    if opened.inner.from_ != body.sender:
        raise FederationError(Code.BAD_BODY, "only the sending agency reports a transfer")
    await _INSERT.run(conn, [{
        "activation_id": body.transfer_id, "requester": body.sender,
        "responder": body.receiver, "state": "transferred",
        "incident_type": "followup_transfer", "affected": 0, "peers_needed": 0,
        "peers_offered": 0, "status_ts": body.ts, "reported_by": body.sender,
        "msg_id": opened.inner.msg_id, "received_ts": received_ts,
    }])


async def list_entries(
    conn: AsyncConnection,
    *,
    activation_id: str | None = None,
    node: str | None = None,
    since_ts: int | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    q = select(activation_log).order_by(
        activation_log.c.status_ts.desc(), activation_log.c.id.desc()
    )
    if activation_id is not None:
        q = q.where(activation_log.c.activation_id == activation_id)
    if node is not None:
        q = q.where((activation_log.c.requester == node) | (activation_log.c.responder == node))
    if since_ts is not None:
        q = q.where(activation_log.c.status_ts >= since_ts)
    rows = (await conn.execute(q.limit(limit))).all()
    return [
        {
            "activation_id": r.activation_id,
            "requester": r.requester,
            "responder": r.responder,
            "state": r.state,
            "incident_type": r.incident_type,
            "counts": {
                "affected": r.affected,
                "peers_needed": r.peers_needed,
                "peers_offered": r.peers_offered,
            },
            "ts": r.status_ts,
            "reported_by": r.reported_by,
            "msg_id": r.msg_id,
            "received_ts": r.received_ts,
        }
        for r in rows
    ]
