"""Timing guardrails for crisis interventions (DESIGN section 6), shown as warnings.

CISM practice times its group interventions from the event: a *defusing* belongs within
about 12 hours, a *debriefing* between 1 and 10 days after. A coordinator may still have
good reasons to ask outside those bands (a prolonged incident, a late request), so these
are warnings on the request and its pages, never refusals.

A warning fires when the requested time window cannot meet the band (no overlap), or when
the band has already passed at `now_ms`. Pure: the caller passes the clock reading.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from protocol.vocabulary import Intervention

__all__ = [
    "DAY_MS",
    "DEBRIEFING_EARLIEST_MS",
    "DEBRIEFING_LATEST_MS",
    "DEFUSING_LATEST_MS",
    "GuardrailWarning",
    "WarningCode",
    "timing_warnings",
]

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
DEFUSING_LATEST_MS = 12 * HOUR_MS
DEBRIEFING_EARLIEST_MS = 1 * DAY_MS
DEBRIEFING_LATEST_MS = 10 * DAY_MS


class WarningCode(StrEnum):
    DEFUSING_WINDOW_LATE = "defusing_window_late"  # window starts after event + 12 h
    DEFUSING_BAND_PASSED = "defusing_band_passed"  # it is already later than event + 12 h
    DEBRIEFING_WINDOW_EARLY = "debriefing_window_early"  # window ends before event + 1 day
    DEBRIEFING_WINDOW_LATE = "debriefing_window_late"  # window starts after event + 10 days
    DEBRIEFING_BAND_PASSED = "debriefing_band_passed"  # it is already later than event + 10 d


_MESSAGES: dict[WarningCode, str] = {
    WarningCode.DEFUSING_WINDOW_LATE: "A defusing works best within 12 hours of the event; "
    "the requested window starts later.",
    WarningCode.DEFUSING_BAND_PASSED: "More than 12 hours have passed since the event: "
    "consider a debriefing or one-on-one support instead of a defusing.",
    WarningCode.DEBRIEFING_WINDOW_EARLY: "A debriefing works best 1 to 10 days after the "
    "event; the requested window ends before the first day is over.",
    WarningCode.DEBRIEFING_WINDOW_LATE: "A debriefing works best 1 to 10 days after the "
    "event; the requested window starts after day 10.",
    WarningCode.DEBRIEFING_BAND_PASSED: "More than 10 days have passed since the event: "
    "consider one-on-one support and follow-up instead of a debriefing.",
}


@dataclass(frozen=True, slots=True)
class GuardrailWarning:
    code: WarningCode
    message: str


def _warn(code: WarningCode) -> GuardrailWarning:
    return GuardrailWarning(code, _MESSAGES[code])


def timing_warnings(
    *,
    event_ts: int,
    interventions: Iterable[Intervention],
    window_start_ts: int,
    window_end_ts: int,
    now_ms: int,
) -> list[GuardrailWarning]:
    """Warnings for a request's timing, in a stable order (empty when all is well)."""
    wanted = set(interventions)
    out: list[GuardrailWarning] = []
    if Intervention.DEFUSING in wanted:
        latest = event_ts + DEFUSING_LATEST_MS
        if now_ms > latest:
            out.append(_warn(WarningCode.DEFUSING_BAND_PASSED))
        elif window_start_ts > latest:
            out.append(_warn(WarningCode.DEFUSING_WINDOW_LATE))
    if Intervention.DEBRIEFING in wanted:
        earliest = event_ts + DEBRIEFING_EARLIEST_MS
        latest = event_ts + DEBRIEFING_LATEST_MS
        if now_ms > latest:
            out.append(_warn(WarningCode.DEBRIEFING_BAND_PASSED))
        elif window_start_ts > latest:
            out.append(_warn(WarningCode.DEBRIEFING_WINDOW_LATE))
        elif window_end_ts < earliest:
            out.append(_warn(WarningCode.DEBRIEFING_WINDOW_EARLY))
    return out
