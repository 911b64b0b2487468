"""The PostgreSQL activation statements as `node.activation.batched_pg` built them before
it passed its rows as one JSON parameter: one array parameter per column
(`INSERT ... SELECT FROM unnest(arrays) WITH ORDINALITY`) and one pair of parameters per
moved leg. Test code only: the oracle the JSON statements must match row for row
(tests/activations/test_batched_pg_json.py), as `stepwise_cancel` is for the cancel."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    LargeBinary,
    Table,
    Text,
    Uuid,
    and_,
    bindparam,
    case,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.selectable import CTE
from sqlalchemy.types import TypeEngine

from federation.store import outbox
from node.activation.context import Db
from node.activation.errors import ActivationCode, ActivationError
from node.activation.rows import A, E, L
from node.core.audit_staged import AuditStaged
from node.core.db import table_of

__all__ = ["cancel_statement", "create_statement", "run"]

STAGED = table_of(AuditStaged)

_ACT_COLUMNS = ("key", "activation_id", "requester", "side", "own_state", "request",
                "incident_ref", "incident_type", "event_ts", "expires_ts", "peers_needed",
                "affected_total", "coordinator_id", "created_at", "updated_at")
_LEG_COLUMNS = ("id", "activation_key", "responder", "state", "request_msg_id",
                "offer_peers", "updated_at")
_EVENT_COLUMNS = ("activation_key", "responder", "state", "actor_node", "msg_id", "ts", "note")
OUTBOX_COLUMNS = ("destination", "msg_id", "msg_type", "envelope", "intent", "state",
                  "attempts", "next_attempt_ts", "created_ts", "expires_ts")


def _element(t: TypeEngine[Any]) -> TypeEngine[Any]:
    if isinstance(t, Uuid):
        return Uuid()
    if isinstance(t, BigInteger):
        return BigInteger()
    if isinstance(t, Integer):
        return Integer()
    if isinstance(t, LargeBinary):
        return LargeBinary()
    return Text()  # strings, and enums stored as their string values


def _rows_cte(table: Table, columns: Sequence[str], name: str) -> CTE:
    """`INSERT INTO table (columns) SELECT ... FROM unnest(one array per column) WITH
    ORDINALITY ORDER BY ordinality`; parameters `<name>_<column>`."""
    arrays = [bindparam(f"{name}_{c}", type_=ARRAY(_element(table.c[c].type))) for c in columns]
    rows = func.unnest(*arrays).table_valued(*columns, with_ordinality="ord").render_derived(
        name=f"u_{name}")
    query = select(*(rows.c[c] for c in columns)).order_by(rows.c.ord)
    return insert(table).from_select(list(columns), query).cte(name)


def _params(name: str, columns: Sequence[str],
            rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    return {f"{name}_{c}": [r.get(c) for r in rows] for c in columns}


_STAGED_COLUMNS = ("ts", "actor", "role", "action", "target_type", "target_id", "outcome",
                   "detail", "a", "b", "c")


def _with_audit(ctes: list[CTE], audited: bool) -> list[CTE]:
    return [*ctes, _rows_cte(STAGED, _STAGED_COLUMNS, "s")] if audited else ctes


_CREATES = {
    audited: select(literal(1)).add_cte(*_with_audit([
        _rows_cte(A, _ACT_COLUMNS, "a"), _rows_cte(outbox, OUTBOX_COLUMNS, "o"),
        _rows_cte(L, _LEG_COLUMNS, "l"), _rows_cte(E, _EVENT_COLUMNS, "e")], audited))
    for audited in (False, True)
}


def create_statement(act: Mapping[str, Any], legs: Sequence[Mapping[str, Any]],
                     events: Sequence[Mapping[str, Any]], outbox_rows: Sequence[Mapping[str, Any]],
                     staged: Mapping[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """A new activation's rows in one statement (and its audit entry, `staged_row`, when
    given): the statement and its parameters."""
    params = {
        **_params("a", _ACT_COLUMNS, [act]), **_params("o", OUTBOX_COLUMNS, outbox_rows),
        **_params("l", _LEG_COLUMNS, legs), **_params("e", _EVENT_COLUMNS, events),
    }
    if staged is not None:
        params.update(_params("s", _STAGED_COLUMNS, [staged]))
    return _CREATES[staged is not None], params


_CANCELS: dict[tuple[int, bool, bool], Any] = {}


def _cancel(n: int, own: bool, audited: bool) -> Any:
    stmt = _CANCELS.get((n, own, audited))
    if stmt is not None:
        return stmt
    values: dict[str, Any] = {"state": bindparam("m_state"), "cancel_reason": bindparam("m_reason"),
                              "cancelled_by": bindparam("m_by"), "updated_at": bindparam("m_now")}
    moved = update(L).where(or_(false(), *(
        and_(L.c.id == bindparam(f"m_id{i}"), L.c.state == bindparam(f"m_from{i}"))
        for i in range(n)
    ))).values(values).returning(L.c.id).cte("m")
    ctes = [_rows_cte(outbox, OUTBOX_COLUMNS, "o"), moved]
    matched = [select(func.count()).select_from(moved).scalar_subquery() == n]
    if own:
        mine = update(A).where(A.c.key == bindparam("w_key"),
                               A.c.own_state == bindparam("w_from")).values(
            own_state=bindparam("w_state"), cancel_reason=bindparam("m_reason"),
            updated_at=bindparam("m_now")).returning(A.c.key).cte("w")
        ctes.append(mine)
        matched.append(select(func.count()).select_from(mine).scalar_subquery() == 1)
    ctes.append(_rows_cte(E, _EVENT_COLUMNS, "e"))
    # Every move matched, or the statement fails (division by zero) and writes nothing: in
    # autocommit there is no transaction around it for the caller to roll back.
    guard = literal(1) / case((and_(*matched), 1), else_=0)
    stmt = _CANCELS[(n, own, audited)] = select(guard.label("ok")).add_cte(
        *_with_audit(ctes, audited))
    return stmt


def cancel_statement(
    legs: Sequence[tuple[uuid.UUID, str]], values: Mapping[str, Any],
    own: tuple[uuid.UUID, str, str] | None, events: Sequence[Mapping[str, Any]],
    outbox_rows: Sequence[Mapping[str, Any]], staged: Mapping[str, Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The cancel's writes in one statement (and its audit entry, when given): `legs` (id,
    state read) all move to `values["state"]`; `own` (key, state read, new state) moves the
    activation. If a move matches fewer rows than named (another transaction moved one
    first), the statement fails and `run` raises `conflict`."""
    params: dict[str, Any] = {
        "m_state": values["state"], "m_reason": values["cancel_reason"],
        "m_by": values["cancelled_by"], "m_now": values["updated_at"],
        **_params("o", OUTBOX_COLUMNS, outbox_rows), **_params("e", _EVENT_COLUMNS, events),
    }
    for i, (leg_id, state) in enumerate(legs):
        params[f"m_id{i}"] = leg_id
        params[f"m_from{i}"] = state
    if own is not None:
        params.update(w_key=own[0], w_from=own[1], w_state=own[2])
    if staged is not None:
        params.update(_params("s", _STAGED_COLUMNS, [staged]))
    return _cancel(len(legs), own is not None, staged is not None), params


async def run(db: Db, stmt: Any, params: dict[str, Any]) -> None:
    """Execute; the guard's failure (a row moved meanwhile) as `conflict`."""
    try:
        await db.execute(stmt, params)
    except DBAPIError as exc:
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if code != "22012":
            raise
        raise ActivationError(ActivationCode.CONFLICT,
                              "the activation changed meanwhile: try again", "state") from None
