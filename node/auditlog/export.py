"""The audit-log download: CSV or JSON, every entry matching the filters, in chain order.

Each row carries `seq`, the time (RFC 3339 UTC and ms), actor (id and username), role,
action, target, outcome, `detail` (canonical JSON text: counts and codes, never record
contents) and both hashes, so a reader can re-check the links of a complete export with
the chain rule of `node.core.audit`. The export is written in batches as it is read; the
`audit.export` entry (format and count) is appended before the first byte goes out.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from node.core.times import to_dt

__all__ = ["COLUMNS", "csv_rows", "entry_dict", "json_entry"]

COLUMNS = ("seq", "time", "ts_ms", "actor", "actor_username", "role", "action",
           "target_type", "target_id", "outcome", "detail", "prev_hash", "hash")
_EXACT = frozenset({"prev_hash", "hash"})


def entry_dict(row: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    return {
        "seq": row["seq"], "time": to_dt(row["ts"]).isoformat().replace("+00:00", "Z"),
        "ts_ms": row["ts"], "actor": row["actor"],
        "actor_username": names.get(row["actor"] or "", None), "role": row["role"],
        "action": row["action"], "target_type": row["target_type"],
        "target_id": row["target_id"], "outcome": row["outcome"], "detail": row["detail"],
        "prev_hash": row["prev_hash"], "hash": row["hash"],
    }


def csv_rows(rows: list[dict[str, Any]], header: bool) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\r\n")
    if header:
        writer.writeheader()
    for r in rows:
        # A spreadsheet must not run a cell as a formula: such cells get a leading
        # apostrophe. Hashes stay exact (base64url may start with "-").
        writer.writerow({k: ("'" + v if k not in _EXACT and isinstance(v, str)
                             and v[:1] in "=+-@" else v) for k, v in r.items()})
    return buf.getvalue().encode()


def json_entry(entry: Any) -> bytes:
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode()
