"""PostgreSQL: the batched activation writes (`node.activation.batched`) as one statement
with one parameter.

Why one statement: on PostgreSQL each statement is a round trip, and under load each round
trip is also a turn of the node's event loop behind every other request in flight, so an
activation's latency grew with its statement count more than with the work. A
data-modifying CTE (`WITH a AS (INSERT ...), l AS (INSERT ...), ... SELECT ...`) writes the
activation, its legs, its history, its outbox rows and its audit entry in one statement.

Why one parameter: the rows travelled as one array parameter per column (about sixty a
statement), and encoding them (SQLAlchemy's array bind processors, then asyncpg's per-array
encoding) was about 12 % of the node's event loop under `bench.load` (issue 16). Now every
row of the statement is in ONE JSON document (`json.dumps`, in C), and PostgreSQL reads each
table's rows out of it with `json_populate_recordset(NULL::<table>, doc -> '<part>') WITH
ORDINALITY ORDER BY ordinality`: each value goes through its column's own input function
(uuid, bigint, bytea from `\\x<hex>`, varchar(n) with its length check), serial ids (the
history's order) follow the given order, and the statement text is one per operation
whatever the number of rows (one prepared statement on each connection).

The cancel's conditional moves are CTEs too (`UPDATE ... FROM json_to_recordset(the moves)
WHERE id = move.id AND state = move.from RETURNING`), and the statement answers whether
each matched as many rows as named: fewer means another transaction moved one first, the
statement fails (a division by zero, so that in autocommit it writes nothing) and `run`
raises `conflict`.

The values are exactly those of the SQLite path (`batched`); the outbox rows are the
federation service's own (`FederationService.stage_many`: envelopes built, the worker
woken at commit). tests/activations/test_batched.py compares both paths row for row on
PostgreSQL; tests/activations/test_batched_pg_json.py compares these statements with the
array statements they replace (tests/activations/array_statements.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.exc import DBAPIError

from federation.store import outbox
from node.activation.context import Db
from node.activation.errors import ActivationCode, ActivationError
from node.activation.rows import A, E, L
from node.core.audit_pg_append import hash_parts
from node.core.audit_staged import AuditStaged
from node.core.db import table_of

__all__ = ["OUTBOX_COLUMNS", "cancel_statement", "create_statement", "run", "staged_row"]

STAGED = table_of(AuditStaged)
DIVISION_BY_ZERO = "22012"

_ACT_COLUMNS = ("key", "activation_id", "requester", "side", "own_state", "request",
                "incident_ref", "incident_type", "event_ts", "expires_ts", "peers_needed",
                "affected_total", "coordinator_id", "created_at", "updated_at")
_LEG_COLUMNS = ("id", "activation_key", "responder", "state", "request_msg_id",
                "offer_peers", "updated_at")
_EVENT_COLUMNS = ("activation_key", "responder", "state", "actor_node", "msg_id", "ts", "note")
OUTBOX_COLUMNS = ("destination", "msg_id", "msg_type", "envelope", "intent", "state",
                  "attempts", "next_attempt_ts", "created_ts", "expires_ts")
_STAGED_COLUMNS = ("ts", "actor", "role", "action", "target_type", "target_id", "outcome",
                   "detail", "a", "b", "c")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _insert(cte: str, table: Table, columns: Sequence[str]) -> str:
    """`cte AS (INSERT INTO table (columns) SELECT ... FROM the document's part <cte>, in
    its order)`."""
    names = ", ".join(_q(c) for c in columns)
    values = ", ".join(f"r.{_q(c)}" for c in columns)
    return (f"{cte} AS (INSERT INTO {_q(table.name)} ({names}) SELECT {values} FROM p, "  # noqa: S608 - our own tables
            f"json_populate_recordset(NULL::{_q(table.name)}, p.j -> '{cte}') "
            f"WITH ORDINALITY AS r ORDER BY r.ordinality)")


_DOC = "p AS (SELECT CAST(:doc AS json) AS j)"

# Parts: a (the activation), o (outbox rows), l (legs), e (history), s (audit entries).
_CREATE = text("WITH " + ",\n".join([
    _DOC, _insert("a", A, _ACT_COLUMNS), _insert("o", outbox, OUTBOX_COLUMNS),
    _insert("l", L, _LEG_COLUMNS), _insert("e", E, _EVENT_COLUMNS),
    _insert("s", STAGED, _STAGED_COLUMNS),
]) + "\nSELECT 1")

# Parts: o, e, s as above; v (the legs' new values), m (the legs moved: id and the state
# read), w (the activation's own move: key, the state read, the new state; none or one).
_MOVE_LEGS = (
    f"m AS (UPDATE {_q(L.name)} AS t SET state = v.state, cancel_reason = v.cancel_reason, "  # noqa: S608
    "cancelled_by = v.cancelled_by, updated_at = v.updated_at FROM p, "
    f"json_populate_record(NULL::{_q(L.name)}, p.j -> 'v') AS v, "
    f"json_populate_recordset(NULL::{_q(L.name)}, p.j -> 'm') AS x "
    "WHERE t.id = x.id AND t.state = x.state RETURNING t.id)"
)
_MOVE_OWN = (
    f"w AS (UPDATE {_q(A.name)} AS t SET own_state = x.to_state, "  # noqa: S608
    "cancel_reason = v.cancel_reason, updated_at = v.updated_at FROM p, "
    f"json_populate_record(NULL::{_q(L.name)}, p.j -> 'v') AS v, "
    "json_to_recordset(p.j -> 'w') AS x(key uuid, from_state text, to_state text) "
    "WHERE t.key = x.key AND t.own_state = x.from_state RETURNING t.key)"
)
# Every move matched, or the statement fails (division by zero) and writes nothing: in
# autocommit there is no transaction around it for the caller to roll back.
_GUARD = (
    "SELECT 1 / CASE WHEN (SELECT count(*) FROM m) = json_array_length(p.j -> 'm') "
    "AND (SELECT count(*) FROM w) = json_array_length(p.j -> 'w') THEN 1 ELSE 0 END AS ok "
    "FROM p"
)
_CANCEL = text("WITH " + ",\n".join([
    _DOC, _insert("o", outbox, OUTBOX_COLUMNS), _MOVE_LEGS, _MOVE_OWN,
    _insert("e", E, _EVENT_COLUMNS), _insert("s", STAGED, _STAGED_COLUMNS),
]) + "\n" + _GUARD)


def _json_value(v: Any) -> str:
    """The JSON form of what `json.dumps` does not know: a uuid as its text, bytes as
    bytea's hex input (`\\x...`)."""
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, bytes | bytearray | memoryview):
        return "\\x" + bytes(v).hex()
    raise TypeError(f"no JSON form for a {type(v).__name__} value")


_encode = json.JSONEncoder(ensure_ascii=False, check_circular=False, separators=(",", ":"),
                           default=_json_value).encode


def _rows(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{c: r.get(c) for c in columns} for r in rows]


def staged_row(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The `audit_staged` row of an unlinked audit entry (`audit_entry.entry_row`): what
    `audit.append` inserts on PostgreSQL (`audit_pg_append.append_entry`), linked by the
    server's deferred trigger when the statement's transaction commits."""
    a, b, c = hash_parts(entry)
    return {**{k: entry[k] for k in _STAGED_COLUMNS[:8]}, "a": a, "b": b, "c": c}


def _staged(staged: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    return [] if staged is None else _rows(_STAGED_COLUMNS, [staged])


def create_statement(act: Mapping[str, Any], legs: Sequence[Mapping[str, Any]],
                     events: Sequence[Mapping[str, Any]], outbox_rows: Sequence[Mapping[str, Any]],
                     staged: Mapping[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """A new activation's rows in one statement (and its audit entry, `staged_row`, when
    given): the statement and its parameters."""
    doc = {"a": _rows(_ACT_COLUMNS, [act]), "o": _rows(OUTBOX_COLUMNS, outbox_rows),
           "l": _rows(_LEG_COLUMNS, legs), "e": _rows(_EVENT_COLUMNS, events),
           "s": _staged(staged)}
    return _CREATE, {"doc": _encode(doc)}


def cancel_statement(
    legs: Sequence[tuple[uuid.UUID, str]], values: Mapping[str, Any],
    own: tuple[uuid.UUID, str, str] | None, events: Sequence[Mapping[str, Any]],
    outbox_rows: Sequence[Mapping[str, Any]], staged: Mapping[str, Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The cancel's writes in one statement (and its audit entry, when given): `legs` (id,
    state read) all move to `values["state"]`; `own` (key, state read, new state) moves the
    activation. If a move matches fewer rows than named (another transaction moved one
    first), the statement fails and `run` raises `conflict`."""
    doc = {
        "o": _rows(OUTBOX_COLUMNS, outbox_rows), "e": _rows(_EVENT_COLUMNS, events),
        "v": {"state": values["state"], "cancel_reason": values["cancel_reason"],
              "cancelled_by": values["cancelled_by"], "updated_at": values["updated_at"]},
        "m": [{"id": leg_id, "state": state} for leg_id, state in legs],
        "w": [] if own is None else [{"key": own[0], "from_state": own[1], "to_state": own[2]}],
        "s": _staged(staged),
    }
    return _CANCEL, {"doc": _encode(doc)}


async def run(db: Db, stmt: Any, params: dict[str, Any]) -> None:
    """Execute; the guard's failure (a row moved meanwhile) as `conflict`."""
    try:
        await db.execute(stmt, params)
    except DBAPIError as exc:
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if code != DIVISION_BY_ZERO:
            raise
        raise ActivationError(ActivationCode.CONFLICT,
                              "the activation changed meanwhile: try again", "state") from None
