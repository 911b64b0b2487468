"""Why the hub refuses an aggregate release: stable codes and the exception carrying them
(`hub.stats.aggregates` and `hub.stats.aggregates_workload` raise it; the statistics API and
the inbox turn it into a refusal)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

__all__ = ["AggregateCode", "AggregateError"]


class AggregateCode(StrEnum):
    BAD_MONTH = "bad_month"
    BAD_CELLS = "bad_cells"
    BAD_NOISE = "bad_noise"
    OVER_BUDGET = "over_budget"
    CONFLICTING_RELEASE = "conflicting_release"
    BAD_GROUPS = "bad_groups"  # v2: unknown or missing workload group
    MIXED_SCHEMA = "mixed_schema"  # a node-month already released under the other schema
    ALREADY_SHARED = "already_shared"  # a node-month the hub holds a shared-round share of


class AggregateError(Exception):
    """A refused release. `code` is a stable string: an `AggregateCode` value or a wire
    refusal code from `protocol.errors.Code`."""

    def __init__(self, code: str, message: str, *, alarm: dict[str, Any] | None = None):
        self.code = str(code)
        self.message = message
        self.alarm = alarm
        super().__init__(f"{self.code}: {message}")
