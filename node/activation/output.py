"""How `peernet node activation ...` shows a node's answer to a person.

The node answers JSON with epoch-millisecond times, which is right for scripts (`--json`
prints it unchanged) and unreadable for a coordinator at a terminal. By default the CLI
prints it instead as text: a list (`{"items": [...]}`, with its `next_cursor` and `total`
when paged) as a table, one activation as `field: value` lines with its legs as a table,
and every `*_ts` / `*_at` time in local time with its zone (`2026-11-26 09:00 CET`; set
`TZ` to choose the zone). The rendering is generic over the answer's fields, so a field
the API adds shows up without a change here.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["local_time", "render"]

# A nested object with more fields than this gets its own indented block, not one cell.
_INLINE_FIELDS = 4


def local_time(ms: int, tz: datetime.tzinfo | None = None) -> str:
    """Epoch milliseconds as `YYYY-MM-DD HH:MM ZONE` in `tz` (default: the local zone)."""
    at = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).astimezone(tz)
    zone = at.strftime("%Z")
    if not zone or not zone.isalpha():
        zone = "UTC" + at.strftime("%z")[:3] + ":" + at.strftime("%z")[3:]
    return at.strftime("%Y-%m-%d %H:%M ") + zone


def _is_time(key: str, value: Any) -> bool:
    return (key.endswith(("_ts", "_at")) and isinstance(value, int)
            and not isinstance(value, bool))


def _label(key: str) -> str:
    return key.removesuffix("_ts").replace("_", " ")


def _cell(key: str, value: Any, tz: datetime.tzinfo | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if _is_time(key, value):
        return local_time(value, tz)
    if isinstance(value, Mapping):
        return " ".join(f"{k}={_nested(k, v, tz)}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        if any(isinstance(v, Mapping) for v in value):
            return f"{len(value)} entries"
        return ", ".join(_cell(key, v, tz) for v in value) or "-"
    return str(value)


def _nested(key: str, value: Any, tz: datetime.tzinfo | None) -> str:
    text = _cell(key, value, tz)
    return f"({text})" if isinstance(value, Mapping) or " " in text else text


def _table(rows: list[Mapping[str, Any]], tz: datetime.tzinfo | None) -> list[str]:
    if not rows:
        return ["(none)"]
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    # Columns empty in every row say nothing (a leg's decline fields before any decline).
    keys = [k for k in keys if any(row.get(k) not in (None, [], {}) for row in rows)]
    cells = [[_cell(k, row.get(k), tz) for k in keys] for row in rows]
    widths = [max(len(_label(k)), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = ["  ".join(_label(k).upper().ljust(w) for k, w in zip(keys, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
              for row in cells]
    return [line.rstrip() for line in lines]


def _is_rows(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _block(doc: Mapping[str, Any], tz: datetime.tzinfo | None, indent: str = "") -> list[str]:
    lines: list[str] = []
    later: list[tuple[str, Any]] = []
    width = max((len(_label(k)) for k in doc), default=0)
    for key, value in doc.items():
        big = isinstance(value, Mapping) and (
            len(value) > _INLINE_FIELDS
            or any(isinstance(v, Mapping | list) for v in value.values())
        )
        if _is_rows(value) or big:
            later.append((key, value))
        else:
            lines.append(f"{indent}{(_label(key) + ':').ljust(width + 1)} {_cell(key, value, tz)}")
    for key, value in later:
        lines.append(f"{indent}{_label(key)}:")
        if isinstance(value, Mapping):
            lines += _block(value, tz, indent + "  ")
        else:
            lines += [indent + "  " + line for line in _table(value, tz)]
    return lines


def render(doc: Any, tz: datetime.tzinfo | None = None) -> str:
    """The answer as text for a person (see module docstring)."""
    if isinstance(doc, Mapping):
        if set(doc) <= {"items", "next_cursor", "total"} and isinstance(doc.get("items"), list):
            more = doc.get("next_cursor")  # a page of a longer list (API paging)
            total = doc.get("total")  # how many match the filters, over every page
            notes = [f"{total} in all" if total is not None and more else "",
                     f"more: cursor {more}" if more else ""]
            note = "; ".join(n for n in notes if n)
            return "\n".join(_table(doc["items"], tz) + ([f"({note})"] if note else []))
        return "\n".join(_block(doc, tz))
    return json.dumps(doc, indent=2, sort_keys=True)
