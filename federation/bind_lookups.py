"""SQLAlchemy bind processors for the raw writers' hot path, as C-level lookups.

The raw writers (`federation.prepared.InsertShape`: the encounter group commit on both
engines) convert each value with the column type's own bind processor, as SQLAlchemy does.
For an encounter that is about fifteen Python calls, two or three frames each, on the event
loop (the node's bottleneck). Three processors are pure functions of a small, known set of
inputs; for them `fast_processor` gives a bound `dict.__getitem__` or an `attrgetter`,
which run in C:

- an `Enum`: the type's own value table (`_valid_lookup`: members and their
  strings to the stored string), when the string type under it converts nothing;
- a non-native `Boolean`: True/False (and what equals them, as SQLAlchemy's check allows)
  to 1/0;
- a character-based `Uuid(as_uuid=True)`: the value's `hex`, as SQLAlchemy's processor
  takes it.

A value outside the table goes to SQLAlchemy's processor (`__missing__`), so unknown
strings, wrong types and their errors stay exactly SQLAlchemy's.
`tests/federation/test_bind_lookups.py` compares both over every column of the tables
the raw writers write, with valid and invalid values.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Boolean, Enum, Uuid
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

__all__ = ["fast_processor"]

_Proc = Callable[[Any], Any]


class _Table(dict[Any, Any]):
    """Known inputs to their bound value; a miss is SQLAlchemy's processor's to decide."""

    __slots__ = ("_slow",)

    def __init__(self, known: Mapping[Any, Any], slow: _Proc) -> None:
        super().__init__(known)
        self._slow = slow

    def __missing__(self, key: Any) -> Any:
        return self._slow(key)


def fast_processor(type_: TypeEngine[Any], dialect: Dialect, proc: _Proc | None) -> _Proc | None:
    """A C-level equivalent of `proc` (the bind processor of `type_` on `dialect`), or
    `proc` itself when there is none."""
    if proc is None:
        return None
    kind = type(type_)
    if kind is Enum:
        assert isinstance(type_, Enum)
        under = super(Enum, type_).bind_processor(dialect)
        if under is None:
            return _Table(type_._valid_lookup, proc).__getitem__
    elif kind is Boolean:
        if not dialect.supports_native_boolean:
            return _Table({True: 1, False: 0}, proc).__getitem__
    elif kind is Uuid:
        assert isinstance(type_, Uuid)
        if type_.as_uuid and (not dialect.supports_native_uuid or not type_.native_uuid):
            return operator.attrgetter("hex")
    return proc
