"""`federation.bind_lookups.fast_processor` converts exactly as SQLAlchemy's own bind
processor does, values and errors alike, for every column of the node's and the hub's
tables, on both engines' dialects."""

from __future__ import annotations

import enum
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import asyncpg
from sqlalchemy.dialects.sqlite import aiosqlite

from federation.bind_lookups import fast_processor
from federation.prepared import insert_shape
from hub.db import Base as HubBase
from hub.db import import_table_modules as import_hub_tables
from node.core.db import Base, import_table_modules
from node.core.vocabulary import FollowUpStatus, Topic

_DIALECTS = {"sqlite": aiosqlite.dialect(),
             "postgresql": asyncpg.dialect()}  # type: ignore[no-untyped-call]


class _Other(enum.Enum):
    X = "x"


def _probes(type_: Any) -> list[Any]:
    common = ["nope", "", 3, 1.5, [1], uuid.UUID(int=7), _Other.X, FollowUpStatus.OPEN]
    if isinstance(type_, sa.Enum):
        members = list(type_.enum_class) if type_.enum_class else []
        return [*members, *type_.enums, *[str(m) for m in members], *common]
    if isinstance(type_, sa.Boolean):
        return [True, False, 1, 0, 1.0, 0.0, 2, -1, "yes", *common]
    return [uuid.uuid4(), uuid.UUID(int=0), "not-a-uuid", b"bytes", *common]


def _outcome(proc: Any, value: Any) -> tuple[Any, ...]:
    try:
        out = proc(value)
    except Exception as exc:  # noqa: BLE001 - the error itself is compared
        return ("error", type(exc), str(exc))
    return ("value", type(out), out)


def _columns() -> list[sa.Column[Any]]:
    import_table_modules()
    import_hub_tables()
    tables = [*Base.metadata.sorted_tables, *HubBase.metadata.sorted_tables]
    return [c for t in tables for c in t.columns
            if isinstance(c.type, sa.Enum | sa.Boolean | sa.Uuid)]


@pytest.mark.parametrize("dialect_name", sorted(_DIALECTS))
def test_every_value_converts_and_fails_as_sqlalchemy_has_it(dialect_name: str) -> None:
    dialect = _DIALECTS[dialect_name]
    columns = _columns()
    assert {type(c.type) for c in columns} == {sa.Enum, sa.Boolean, sa.Uuid}
    replaced = 0
    for column in columns:
        slow = column.type.bind_processor(dialect)
        fast = fast_processor(column.type, dialect, slow)
        if slow is None:
            assert fast is None
            continue
        replaced += fast is not slow
        for value in _probes(column.type):
            assert _outcome(fast, value) == _outcome(slow, value), (column, value)
    if dialect_name == "sqlite":  # enums, booleans and UUIDs all convert in C there
        assert replaced == sum(1 for c in columns if c.type.bind_processor(dialect))


def test_the_encounter_insert_uses_the_lookups_and_writes_the_same_values() -> None:
    from node.records.encounters import E

    dialect = _DIALECTS["sqlite"]
    row = {"id": uuid.uuid4(), "created_by": uuid.uuid4(), "created_at": 1, "updated_at": 1,
           "occurred_at": 1, "duration_bucket": "15-30m", "incident_ref": None,
           "activation_type": "self", "intervention": "defusing",
           "recipient_discipline": "fire", "recipient_category": "own_agency",
           "recipient_ref": "r", "topics": frozenset({Topic.WORK_STRESS}),
           "referral": None, "notice_given": True, "supporter_was_witness": False}
    shape = insert_shape(E, frozenset(row), dialect)
    compiled = sa.insert(E).compile(dialect=dialect, column_keys=sorted(row))
    slow = compiled._bind_processors
    expected = [row[c.key] if slow.get(c.key) is None or row[c.key] is None
                else slow[c.key](row[c.key]) for c in shape.columns]  # type: ignore[operator]
    assert shape.params(row) == expected
    assert any(type(p).__name__ == "method-wrapper" or "attrgetter" in type(p).__name__
               or getattr(p, "__self__", None) is not None for p in shape.procs if p)
