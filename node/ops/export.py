"""`peernet node export --out DIR`: all of the agency's own records, readable without peernet.

For each table of `node.ops.export_schema.TABLES` present in the database: `<table>.csv`
(UTF-8 with a byte order mark so spreadsheets pick the encoding; a header row; a readable
`<name>_utc` column beside every millisecond time) and `<table>.json` (a list of objects,
raw values: times in ms, ids and dates as strings). Also `schema.md` (what each file and
column means, for a spreadsheet user) and `manifest.json` (node id, export time, rows and
SHA-256 per file). No secret keys, password hashes, tokens or sealed notes are written
(`export_schema` says what stays out and why).

All tables are read in one snapshot (a read transaction; REPEATABLE READ on PostgreSQL),
so the files agree with one another while the node serves. The directory must be empty
(`dir_not_empty`) unless `--force`, which overwrites the files of an earlier export and
leaves any other file alone. The audit log records `node.export` (row count only).
"""

from __future__ import annotations

import csv
import enum
import hashlib
import json
import os
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.clock import Clock
from node.core import audit
from node.core.db import Base, Database, import_table_modules
from node.ops.errors import OpsError
from node.ops.export_schema import COMMON, DROPPED, TABLES, TIME_NOTE, ExportTable

__all__ = ["export_records"]


def _is_time(name: str) -> bool:
    return name == "ts" or name.endswith(("_at", "_ts"))


def _plain(value: Any) -> Any:
    """A JSON-ready value: enums by value, ids and dates as strings, sets joined."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, frozenset | set):
        return ",".join(sorted(_plain(v) for v in value))
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _utc(ms: Any) -> str:
    if not isinstance(ms, int) or isinstance(ms, bool):
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _columns(table: Table) -> list[str]:
    dropped = DROPPED.get(table.name, frozenset())
    return [c.name for c in table.columns
            if c.name not in dropped and getattr(c.type, "python_type", None) is not bytes
            and c.type.__class__.__name__ != "LargeBinary"]


def _private(path: Path) -> Path:
    """`path` emptied (or created) readable by its owner only: the records are sensitive
    whatever the umask or an earlier file's mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    os.close(fd)
    return path


class _Out:
    """One table's CSV and JSON files, written row by row."""

    def __init__(self, out: Path, name: str, columns: list[str]) -> None:
        self.columns = columns
        self.header = [h for c in columns for h in ([c, f"{c}_utc"] if _is_time(c) else [c])]
        self.csv_path, self.json_path = out / f"{name}.csv", out / f"{name}.json"
        self.csv_f = _private(self.csv_path).open("w", encoding="utf-8-sig", newline="")
        self.json_f = _private(self.json_path).open("w", encoding="utf-8")
        self.writer = csv.writer(self.csv_f)
        self.writer.writerow(self.header)
        self.json_f.write("[")
        self.rows = 0

    def add(self, row: dict[str, Any]) -> None:
        plain = {c: _plain(row[c]) for c in self.columns}
        cells: list[str] = []
        for c in self.columns:
            cells.append(_cell(plain[c]))
            if _is_time(c):
                cells.append(_utc(plain[c]))
        self.writer.writerow(cells)
        self.json_f.write(("\n" if not self.rows else ",\n")
                          + json.dumps(plain, ensure_ascii=False, sort_keys=True))
        self.rows += 1

    def close(self) -> None:
        self.json_f.write("\n]\n")
        self.csv_f.close()
        self.json_f.close()


def _check_dir(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OpsError("dir_not_empty", f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OpsError("dir_not_empty", f"{out} is not empty: choose an empty directory or "
                                        "pass --force to overwrite an earlier export there")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)


async def _snapshot(db: Database) -> Any:
    conn = await db.engine.connect()
    if conn.dialect.name == "postgresql":
        await conn.execution_options(isolation_level="REPEATABLE READ")
    return conn


async def export_records(db: Database, out: Path, clock: Clock, *, node_id: str,
                         force: bool = False) -> dict[str, int]:
    """Write the export (module docstring); rows per table."""
    _check_dir(out, force)
    import_table_modules()
    tables = Base.metadata.tables
    counts: dict[str, int] = {}
    described: list[tuple[ExportTable, list[str]]] = []
    conn: AsyncConnection = await _snapshot(db)
    try:
        async with conn.begin():
            present = set(await conn.run_sync(
                lambda c: c.dialect.get_table_names(c)))
            for spec in TABLES:
                table = tables.get(spec.name)
                if table is None or spec.name not in present:
                    continue
                columns = _columns(table)
                writer = _Out(out, spec.name, columns)
                try:
                    order = list(table.primary_key.columns)
                    result = await conn.stream(select(*[table.c[c] for c in columns])
                                               .order_by(*order))
                    async for row in result.mappings():
                        writer.add(dict(row))
                finally:
                    writer.close()
                counts[spec.name] = writer.rows
                described.append((spec, columns))
    finally:
        await conn.close()
    now = clock.now_ms()
    _finish(out, node_id, now, described, counts)
    async with db.write() as wconn:
        await audit.append(wconn, ts=now, action="node.export", target_type="export",
                           detail={"tables": len(counts), "rows": sum(counts.values())})
    return counts


def _finish(out: Path, node_id: str, now: int,
            described: list[tuple[ExportTable, list[str]]], counts: dict[str, int]) -> None:
    """schema.md, then manifest.json with the digest of every data file."""
    _private(out / "schema.md").write_text(_schema_md(node_id, now, described, counts), "utf-8")
    files = {}
    for name in counts:
        for path in (out / f"{name}.csv", out / f"{name}.json"):
            files[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest = {"format": "peernet-node-export-v1", "node_id": node_id, "exported_ts": now,
                "rows": counts, "sha256": files}
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    _private(out / "manifest.json").write_text(text, "utf-8")


def _schema_md(node_id: str, now: int, described: Iterable[tuple[ExportTable, list[str]]],
               counts: dict[str, int]) -> str:
    lines = [
        f"# Records of node `{node_id}`, exported {_utc(now)}", "",
        "Every table is here twice: `<table>.csv` opens in a spreadsheet (UTF-8, first row "
        "the column names) and `<table>.json` is the same rows for programs. "
        "`manifest.json` lists the files with their SHA-256, to check a copy is whole.", "",
        TIME_NOTE, "",
        "Not exported, on purpose: passwords, sign-in sessions and API tokens, the node's "
        "keys (signing, encryption and the pseudonym key), sealed hand-off notes, and the "
        "federation's message queues. Ids that name another table say which.", "",
    ]
    for spec, columns in described:
        lines += [f"## {spec.title}: `{spec.name}.csv` ({counts[spec.name]} rows)", "",
                  spec.about, "", "| column | meaning |", "|---|---|"]
        for c in columns:
            meaning = spec.columns.get(c) or COMMON.get(c) or "Not described yet (added by " \
                "a later peernet version)."
            lines.append(f"| `{c}` | {meaning} |")
            if _is_time(c):
                lines.append(f"| `{c}_utc` | The same moment, readable (UTC). |")
        lines.append("")
    return "\n".join(lines)
