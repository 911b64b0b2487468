"""The hub cannot hold a raw record: no table or column of its schema is a record field, and
no hub source names one or imports the node."""

from __future__ import annotations

import re
from pathlib import Path

from hub.db import Base, import_table_modules

ROOT = Path(__file__).resolve().parents[2]
RECORD_FIELDS = {
    "recipient_ref", "topics", "occurred_at", "duration_bucket", "incident_ref",
    "recipient_category", "notice_given", "supporter_was_witness", "follow_up_due",
    "follow_up_owner", "created_by", "encounter_id", "due_on",
}


def test_hub_schema_has_no_record_field() -> None:
    import_table_modules()
    tables = Base.metadata.tables
    assert {"aggregate_releases", "aggregate_totals", "aggregate_alarms"} <= set(tables)
    columns = {c.name for t in tables.values() for c in t.columns}
    assert not columns & RECORD_FIELDS
    assert not any("encounter" in name for name in tables)


def test_hub_sources_never_name_a_record_field_or_the_node() -> None:
    pattern = re.compile(r"\b(" + "|".join(sorted(RECORD_FIELDS)) + r")\b")
    offenders = []
    for path in sorted((ROOT / "hub").rglob("*")):
        if path.suffix not in {".py", ".html", ".js", ".css"}:
            continue
        text = path.read_text(encoding="utf-8")
        if pattern.search(text) or re.search(r"^\s*(from|import)\s+node\b", text, re.M):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
