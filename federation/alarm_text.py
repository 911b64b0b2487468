"""How the `peernet hub|node alarm list` commands print governance alarms (one shape for both).

Rows are `federation.roster_alarms.list_alarms` dicts. Text: a table (id, when raised, kind,
source, status), then the reason wrapped in words and the acknowledgement note; JSON for
scripts keeps times in epoch milliseconds.
"""

from __future__ import annotations

import datetime
import json
import textwrap
from collections.abc import Sequence
from typing import Any

import click

__all__ = ["echo_alarms", "when"]


def when(ms: int | None) -> str:
    """Epoch milliseconds as the servers show them (UTC, to the minute)."""
    if ms is None:
        return "—"
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).strftime(
        "%Y-%m-%d %H:%M UTC")


def _status(a: dict[str, Any]) -> str:
    if a["active"]:
        return "active"
    return f"acknowledged {when(a['acknowledged_ts'])} by {a['acknowledged_by']}"


def echo_alarms(rows: Sequence[dict[str, Any]], *, active_only: bool, as_json: bool) -> None:
    """Print `rows` newest first as the alarm list commands do."""
    if as_json:
        click.echo(json.dumps({"alarms": list(rows)}, indent=1, sort_keys=True,
                              ensure_ascii=False))
        return
    if not rows:
        click.echo("no active alarms" if active_only else "no alarms")
        return
    click.echo(f"{'ID':>5}  {'RAISED':<20}  {'KIND':<12}  {'SOURCE':<16}  STATUS")
    for a in rows:
        click.echo(f"{a['id']:>5}  {when(a['ts']):<20}  {a['kind']:<12}  "
                   f"{(a['source'] or '—'):<16}  {_status(a)}")
        for line in textwrap.wrap(a["reason"], 90):
            click.echo(f"       {line}")
        if a["ack_note"]:
            click.echo(f"       Note: {a['ack_note']}")
