"""`protocol.canonical._check` takes an exact-type fast path; it must accept and refuse
exactly what the general walk does (the wire contract), subclasses (enums) included."""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.canonical import MAX_DEPTH, MAX_SAFE_INT, _check
from protocol.errors import Code, ProtocolError


def reference(value: object, depth: int) -> None:
    """The walk before the fast path, kept verbatim as the oracle."""
    if depth > MAX_DEPTH:
        raise ProtocolError(Code.MALFORMED, "refused")
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            return
        raise ProtocolError(Code.MALFORMED, "refused")
    if isinstance(value, list | tuple):
        for item in value:
            reference(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise ProtocolError(Code.MALFORMED, "refused")
            reference(item, depth + 1)
        return
    raise ProtocolError(Code.MALFORMED, "refused")


class Colour(StrEnum):
    RED = "red"


class Size(IntEnum):
    BIG = 2**60  # out of the safe range: refused on both paths


def accepted(fn: Any, value: object) -> bool:
    try:
        fn(value, 0)
    except ProtocolError:
        return False
    return True


leaves = st.one_of(
    st.none(), st.booleans(), st.text(max_size=5),
    st.integers(min_value=-2**60, max_value=2**60), st.floats(allow_nan=False),
    st.just(Colour.RED), st.just(Size.BIG), st.binary(max_size=3))
values = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner, inner),
    st.dictionaries(st.one_of(st.text(max_size=4), st.just(Colour.RED), st.integers()),
                    inner, max_size=4)), max_leaves=20)


@settings(max_examples=600, deadline=None)
@given(values)
def test_fast_path_decides_as_the_general_walk(value: object) -> None:
    assert accepted(_check, value) == accepted(reference, value)


def test_depth_and_edges() -> None:
    deep: object = "x"
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    assert not accepted(_check, deep) and not accepted(reference, deep)
    for v in (MAX_SAFE_INT, -MAX_SAFE_INT, {"é": 1}, {Colour.RED: Colour.RED}, Size.BIG,
              MAX_SAFE_INT + 1, (1, "a"), 1.5, b"x"):
        assert accepted(_check, v) == accepted(reference, v), v
    # Flat members of an object are decided inline: at the depth limit they are still
    # one level too deep, at any depth an out-of-range integer is still refused.
    for leaf in ("x", 1, None, True, MAX_SAFE_INT + 1, 1.5):
        for levels in (MAX_DEPTH - 1, MAX_DEPTH):
            nested: object = {"k": leaf}
            for _ in range(levels):
                nested = [nested]
            assert accepted(_check, nested) == accepted(reference, nested), (leaf, levels)
