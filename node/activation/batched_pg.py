"""PostgreSQL: the batched activation writes (`node.activation.batched`) as one statement
with one parameter.

Why one statement: on PostgreSQL each statement is a round trip, and under load each round
trip is also a turn of the node's event loop behind every other request in flight, so an
activation's latency grew with its statement count more than with the work. A
data-modifying CTE (`WITH a AS (INSERT ...), l AS (INSERT ...), ... SELECT ...`) writes the
activation, its legs, its history, its outbox rows and its audit entry in one statement.

Why one parameter: the rows travelled as one array parameter per column (about sixty a
statement), each through SQLAlchemy's array bind processors and asyncpg's array encoding.
Now every row of the statement is in ONE JSON document (`json.dumps`, in C), and the
database reads each table's rows out of it with `ROWS FROM (jsonb_to_recordset(doc ->
'<part>') AS (<the columns with their types>)) WITH ORDINALITY ORDER BY ordinality`: each
value goes through its column type's own input (uuid, bigint, bytea from `\\x<hex>`,
varchar(n) with its length check), serial ids (the history's order) follow the given
order, and the statement text is one per operation whatever the number of rows (one
prepared statement on each connection). In autocommit (the API's path) the statement goes
to asyncpg directly (`run`). Measured on a create and its cancel (client CPU per pair,
same database): arrays through SQLAlchemy 1.1 ms, one JSON parameter 0.93 ms, and sent
directly 0.74 ms; the server's CPU for the pair grows by about 0.2 ms (the JSON is parsed
there).

The cancel's conditional moves are CTEs too (`UPDATE ... FROM jsonb_to_recordset(the moves)
WHERE id = ANY(the ids) AND (id, state) = the move's RETURNING`), and the statement answers whether
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
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import Table, TextClause, text
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.store import outbox
from node.activation.context import Db
from node.activation.errors import ActivationCode, ActivationError
from node.activation.rows import A, E, L
from node.core.audit_pg_append import hash_parts
from node.core.audit_staged import AuditStaged
from node.core.db import table_of

__all__ = ["OUTBOX_COLUMNS", "Statement", "cancel_statement", "create_statement",
           "direct_driver", "fetch_direct", "run", "staged_row"]

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

_PG = PGDialect()  # type: ignore[no-untyped-call]
_DOC = "CAST($1 AS jsonb)"  # the one parameter


@dataclass(frozen=True)
class Statement:
    """One statement: its SQL for asyncpg (`$1`) and the same as a SQLAlchemy clause."""

    sql: str
    clause: TextClause

    @classmethod
    def of(cls, sql: str) -> Statement:
        return cls(sql, text(sql.replace("$1", ":doc")))


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _defs(table: Table, columns: Sequence[str]) -> str:
    """`"column" TYPE, ...`: the record a part's JSON objects are read as, each value
    through its column type's own input (varchar(n) with its length check)."""
    return ", ".join(f"{_q(c)} {table.c[c].type.compile(dialect=_PG)}" for c in columns)


def _insert(part: str, table: Table, columns: Sequence[str]) -> str:
    """`part AS (INSERT INTO table (columns) SELECT ... FROM the document's rows <part>, in
    their order)`."""
    names = ", ".join(_q(c) for c in columns)
    values = ", ".join(f"r.{_q(c)}" for c in columns)
    return (f"{part} AS (INSERT INTO {_q(table.name)} ({names}) SELECT {values} "  # noqa: S608 - our own tables
            f"FROM ROWS FROM (jsonb_to_recordset({_DOC} -> '{part}') AS ({_defs(table, columns)})) "
            f"WITH ORDINALITY AS r({names}, ordinality) ORDER BY r.ordinality)")


# Parts: a (the activation), o (outbox rows), l (legs), e (history), s (audit entries).
_CREATE = Statement.of("WITH " + ",\n".join([
    _insert("a", A, _ACT_COLUMNS), _insert("o", outbox, OUTBOX_COLUMNS),
    _insert("l", L, _LEG_COLUMNS), _insert("e", E, _EVENT_COLUMNS),
    _insert("s", STAGED, _STAGED_COLUMNS),
]) + "\nSELECT 1")

# Parts: o, e, s as above; v (the new values), m (the legs moved: id and the state read),
# w (the activation's own move: key, the state read, the new state; none or one). The rows
# are found by primary key (`= ANY(ARRAY(...))`, an index scan): joined on the document's
# rows alone, the planner, which guesses 100 rows for a JSON function, scans the table.
_VALUES = (f"jsonb_to_record({_DOC} -> 'v') AS v("
           f"{_defs(L, ('state', 'cancel_reason', 'cancelled_by', 'updated_at'))})")
_MOVE_LEGS = (
    f"m AS (UPDATE {_q(L.name)} AS t SET state = v.state, cancel_reason = v.cancel_reason, "  # noqa: S608
    f"cancelled_by = v.cancelled_by, updated_at = v.updated_at FROM {_VALUES}, "
    f"jsonb_to_recordset({_DOC} -> 'm') AS x({_defs(L, ('id', 'state'))}) "
    f"WHERE t.id = ANY (ARRAY(SELECT CAST(i ->> 'id' AS uuid) "
    f"FROM jsonb_array_elements({_DOC} -> 'm') AS i)) "
    "AND t.id = x.id AND t.state = x.state RETURNING t.id)"
)
_MOVE_OWN = (
    f"w AS (UPDATE {_q(A.name)} AS t SET own_state = x.to_state, "  # noqa: S608
    f"cancel_reason = v.cancel_reason, updated_at = v.updated_at FROM {_VALUES}, "
    f"jsonb_to_recordset({_DOC} -> 'w') AS x(key uuid, from_state text, to_state text) "
    f"WHERE t.key = ANY (ARRAY(SELECT CAST(i ->> 'key' AS uuid) "
    f"FROM jsonb_array_elements({_DOC} -> 'w') AS i)) "
    "AND t.key = x.key AND t.own_state = x.from_state RETURNING t.key)"
)
# Every move matched, or the statement fails (division by zero) and writes nothing: in
# autocommit there is no transaction around it for the caller to roll back.
_GUARD = (
    f"SELECT 1 / CASE WHEN (SELECT count(*) FROM m) = jsonb_array_length({_DOC} -> 'm') "  # noqa: S608
    f"AND (SELECT count(*) FROM w) = jsonb_array_length({_DOC} -> 'w') THEN 1 ELSE 0 END AS ok"
)
_CANCEL = Statement.of("WITH " + ",\n".join([
    _insert("o", outbox, OUTBOX_COLUMNS), _MOVE_LEGS, _MOVE_OWN,
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
                     staged: Mapping[str, Any] | None = None) -> tuple[Statement, str]:
    """A new activation's rows in one statement (and its audit entry, `staged_row`, when
    given): the statement and its parameters."""
    doc = {"a": _rows(_ACT_COLUMNS, [act]), "o": _rows(OUTBOX_COLUMNS, outbox_rows),
           "l": _rows(_LEG_COLUMNS, legs), "e": _rows(_EVENT_COLUMNS, events),
           "s": _staged(staged)}
    return _CREATE, _encode(doc)


def cancel_statement(
    legs: Sequence[tuple[uuid.UUID, str]], values: Mapping[str, Any],
    own: tuple[uuid.UUID, str, str] | None, events: Sequence[Mapping[str, Any]],
    outbox_rows: Sequence[Mapping[str, Any]], staged: Mapping[str, Any] | None = None,
) -> tuple[Statement, str]:
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
    return _CANCEL, _encode(doc)


async def direct_driver(db: AsyncConnection) -> Any:
    """The asyncpg connection under `db` when `db` is in autocommit (no transaction of
    SQLAlchemy's open on it, `batched.autocommit`): the statement can go straight to it.
    None otherwise (a transaction, SQLite)."""
    if db.dialect.driver != "asyncpg":
        return None
    raw = await db.get_raw_connection()
    adapted = raw.dbapi_connection
    return raw.driver_connection if getattr(adapted, "autocommit", False) else None


async def run(db: Db, stmt: Statement, doc: str) -> None:
    """Execute `stmt` with its document; the guard's failure (a row moved meanwhile) as
    `conflict`, any other refusal as SQLAlchemy's error for it (`DBAPIError`).

    In autocommit the statement goes to asyncpg directly (its own prepared statement
    cache): SQLAlchemy's execution (a greenlet, an execution context, a result) was about
    a tenth of a millisecond of the event loop per statement, for a statement whose
    parameter needs no processing and whose result is not read."""
    driver = await direct_driver(db) if isinstance(db, AsyncConnection) else None
    try:
        if driver is None or not isinstance(db, AsyncConnection):
            await db.execute(stmt.clause, {"doc": doc})
        else:
            if not db.in_transaction():
                # No round trip in autocommit; its commit then fires what waits for one
                # (the outbox worker's wake-up, `FederationService.stage_many`).
                await db.begin()
            try:
                await driver.execute(stmt.sql, doc)
            except asyncpg.PostgresError as exc:
                raise _translated(db, exc, stmt.sql, doc) from exc
    except DBAPIError as exc:
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if code != DIVISION_BY_ZERO:
            raise
        raise ActivationError(ActivationCode.CONFLICT,
                              "the activation changed meanwhile: try again", "state") from None


async def fetch_direct(db: AsyncConnection, driver: Any, sql: str, *args: Any) -> list[Any]:
    """The rows of a read sent to `direct_driver(db)` (asyncpg records), its errors as
    SQLAlchemy's."""
    try:
        rows: list[Any] = await driver.fetch(sql, *args)
    except asyncpg.PostgresError as exc:
        raise _translated(db, exc, sql, str(args)) from exc
    return rows


def _translated(db: AsyncConnection, exc: asyncpg.PostgresError, sql: str,
                doc: str) -> StatementError:
    """`exc` as SQLAlchemy raises it for the same statement (e.g. `IntegrityError`, with
    the SQLSTATE on `.orig`), so callers see one kind of error on both paths."""
    dbapi = db.dialect.loaded_dbapi
    orig: Exception = dbapi.Error(str(exc), exc)
    for cls in type(exc).__mro__:
        translate = dbapi._asyncpg_error_translate.get(cls)
        if translate is not None:
            orig = translate(str(exc), exc)
            break
    return DBAPIError.instance(sql, [doc], orig, dbapi.Error)
