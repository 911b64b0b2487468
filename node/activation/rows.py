"""Activation rows: the tables, the reads and the row types every activation module shares.

`ActRow` (one activation, as one side holds it) and `LegRow` (one requester-responder
pair) are frozen snapshots read in the caller's transaction; writers hand them back so
that each conditional update names the state it moves from (`activation_writes`). The
reads of the inbound hot path are `Prepared` statements built once. `wire_body` and
`json_text` turn plain JSON values into wire bodies and stored JSON text the same way on
every path (local operations and inbound messages).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ValidationError
from sqlalchemy import Row, Table, bindparam, select

from federation.prepared import Prepared
from node.activation.context import Db
from node.activation.db import Activation, ActivationEarly, ActivationEvent, ActivationLeg, Side
from node.activation.errors import ActivationCode, ActivationError
from protocol.activation_bodies import ActivationOfferBody, ActivationRequestBody
from protocol.vocabulary import ActivationState

__all__ = [
    "A",
    "ActRow",
    "E",
    "EARLY",
    "L",
    "LegRow",
    "S",
    "find",
    "json_text",
    "leg_of",
    "legs_of",
    "load",
    "wire_body",
]

S = ActivationState
A = cast(Table, Activation.__table__)
L = cast(Table, ActivationLeg.__table__)
E = cast(Table, ActivationEvent.__table__)
EARLY = cast(Table, ActivationEarly.__table__)

# The statements of the inbound hot path, built once: building a statement and computing
# its cache key on every call costs more than SQLite takes to run it.
_FIND = Prepared(select(A).where(A.c.activation_id == bindparam("b_aid")).limit(2))
_FIND_BY = Prepared(
    select(A)
    .where(A.c.activation_id == bindparam("b_aid"), A.c.requester == bindparam("b_req"))
    .limit(2)
)
_LOAD = Prepared(
    select(A).where(A.c.requester == bindparam("b_req"), A.c.activation_id == bindparam("b_aid"))
)
_LEGS = Prepared(
    select(L).where(L.c.activation_key == bindparam("b_key")).order_by(L.c.responder)
)
_LEG = Prepared(
    select(L).where(L.c.activation_key == bindparam("b_key"), L.c.responder == bindparam("b_resp"))
)


@dataclass(frozen=True)
class ActRow:
    key: uuid.UUID
    activation_id: str
    requester: str
    side: Side
    own_state: ActivationState
    request: ActivationRequestBody
    expires_ts: int
    coordinator_id: uuid.UUID | None
    created_at: int
    updated_at: int

    @classmethod
    def of(cls, row: Row[Any]) -> ActRow:
        return cls(
            key=row.key,
            activation_id=row.activation_id,
            requester=row.requester,
            side=Side(row.side),
            own_state=S(row.own_state),
            request=ActivationRequestBody.model_validate(json.loads(row.request)),
            expires_ts=row.expires_ts,
            coordinator_id=row.coordinator_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@dataclass(frozen=True)
class LegRow:
    id: uuid.UUID
    responder: str
    state: ActivationState
    request_msg_id: str | None
    offer_msg_id: str | None
    offer: ActivationOfferBody | None
    offer_peers: int
    accept_msg_id: str | None
    decline_reason: str | None
    declined_by: str | None
    cancel_reason: str | None
    cancelled_by: str | None
    updated_at: int

    @classmethod
    def of(cls, row: Row[Any]) -> LegRow:
        return cls(
            id=row.id,
            responder=row.responder,
            state=S(row.state),
            request_msg_id=row.request_msg_id,
            offer_msg_id=row.offer_msg_id,
            offer=(
                ActivationOfferBody.model_validate(json.loads(row.offer)) if row.offer else None
            ),
            offer_peers=row.offer_peers,
            accept_msg_id=row.accept_msg_id,
            decline_reason=row.decline_reason,
            declined_by=row.declined_by,
            cancel_reason=row.cancel_reason,
            cancelled_by=row.cancelled_by,
            updated_at=row.updated_at,
        )


W = TypeVar("W", bound=BaseModel)


def wire_body(model: type[W], data: dict[str, Any]) -> W:
    """A wire body from plain JSON values; what the API let through but the wire model
    refuses becomes `invalid_input` naming the field (never a 500)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(p) for p in err.get("loc", ()) if not isinstance(p, int)) or None
        raise ActivationError(
            ActivationCode.INVALID_INPUT, f"{field or 'body'}: {err.get('msg', 'invalid')}",
            field,
        ) from None


def json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


async def find(db: Db, activation_id: str, requester: str | None = None) -> ActRow:
    """The activation with this id (`requester` disambiguates, rarely needed)."""
    if requester is None:
        rows = (await _FIND.run(db, {"b_aid": activation_id})).all()
    else:
        rows = (await _FIND_BY.run(db, {"b_aid": activation_id, "b_req": requester})).all()
    if not rows:
        raise ActivationError(ActivationCode.NOT_FOUND, "no such activation", "activation_id")
    if len(rows) > 1:
        raise ActivationError(
            ActivationCode.CONFLICT, "several activations have this id: name the requester",
            "requester",
        )
    return ActRow.of(rows[0])


async def load(db: Db, requester: str, activation_id: str) -> ActRow | None:
    row = (await _LOAD.run(db, {"b_req": requester, "b_aid": activation_id})).first()
    return ActRow.of(row) if row else None


async def legs_of(db: Db, key: uuid.UUID) -> list[LegRow]:
    rows = (await _LEGS.run(db, {"b_key": key})).all()
    return [LegRow.of(r) for r in rows]


async def leg_of(db: Db, key: uuid.UUID, responder: str) -> LegRow | None:
    row = (await _LEG.run(db, {"b_key": key, "b_resp": responder})).first()
    return LegRow.of(row) if row else None
