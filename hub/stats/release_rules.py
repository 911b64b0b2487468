"""Two refusals the hub makes before a release is stored (issue 15 item 5), kept apart from
the aggregate store so they read as the rules they are.

- `month_refusal`: a release is for a *finished* month. The month the hub's clock is in is
  not over: its counts would be partial, and the node's ledger would then hold that month
  as released, so its real data could never be released (`month_not_finished`); a month
  not yet begun is `bad_month` as before.
- `measure_refusal`: a release's privacy measure is the roster policy's. Under a zCDP
  policy the hub's budget arithmetic (rho per month) means nothing for a pure-DP release
  (its `budget_spent` is an epsilon), and the reverse (`measure_mismatch`).

Both return `(code, message)` or None; the caller raises its `AggregateError`, so nothing
is stored.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

__all__ = ["MEASURE_MISMATCH", "MONTH_NOT_FINISHED", "measure_refusal", "month_refusal"]

MONTH_NOT_FINISHED = "month_not_finished"
MEASURE_MISMATCH = "measure_mismatch"
BAD_MONTH = "bad_month"


def _index(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:]) - 1


def month_refusal(month: str, now_ms: int) -> tuple[str, str] | None:
    d = datetime.datetime.fromtimestamp(now_ms / 1000, tz=datetime.UTC)
    current = d.year * 12 + d.month - 1
    if _index(month) > current:
        return BAD_MONTH, "release for a month not yet begun"
    if _index(month) == current:
        return MONTH_NOT_FINISHED, f"{month} has not ended: a month is released after it ends"
    return None


def measure_refusal(body: Mapping[str, Any], policy_measure: str) -> tuple[str, str] | None:
    release = body.get("release") if isinstance(body, Mapping) else None
    measure = release.get("measure") if isinstance(release, Mapping) else None
    if measure is not None and str(measure) != str(policy_measure):
        return MEASURE_MISMATCH, (f"the roster policy's measure is {policy_measure}; a "
                                  f"{measure} release is refused")
    return None
