"""One paging convention for every list of the node's JSON API: `limit` + `cursor`.

A list operation takes `limit` (its own default and maximum, both in the schema) and an
opaque `cursor`, and answers `{"items": [...], "next_cursor": "..."}`; `next_cursor` is
null once a page comes back shorter than `limit` (a full last page is followed by an
empty one). Filters are plain named query parameters; each list has one fixed order,
written in its OpenAPI description, and no sort parameter.

The cursor is a position in that order, written as digits; clients pass it back as given
and never build one, so a list can move to a keyset cursor later without a new API
version. The audit log's cursor is the last `seq` seen (its `after_seq` parameter, kept
for the clients that use it, means the same thing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, TypeVar

from pydantic import Field

__all__ = ["CURSOR_PATTERN", "Cursor", "NextCursor", "next_cursor", "offset_of", "page_of"]

CURSOR_PATTERN = r"^[0-9]{1,18}$"
T = TypeVar("T")

Cursor = Annotated[str | None, Field(
    pattern=CURSOR_PATTERN,
    description="Opaque: the `next_cursor` of the previous page; absent for the first page",
    examples=["50"],
)]

NextCursor = Annotated[str | None, Field(
    description="Pass as `cursor` for the next page; null: no more pages")]


def offset_of(cursor: str | None) -> int:
    return int(cursor) if cursor else 0


def next_cursor(offset: int, limit: int, got: int) -> str | None:
    return str(offset + got) if got >= limit else None


def page_of(items: Sequence[T], cursor: str | None, limit: int) -> tuple[list[T], str | None]:
    """One page of a list already read in its order."""
    start = offset_of(cursor)
    chunk = list(items[start:start + limit])
    return chunk, next_cursor(start, limit, len(chunk))
