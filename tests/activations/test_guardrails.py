"""Timing guardrails: warnings, never refusals."""

from __future__ import annotations

from node.activation.guardrails import DAY_MS, WarningCode, timing_warnings
from protocol.vocabulary import Intervention as I

H = 3_600_000
EVENT = 1_780_000_000_000


def codes(interventions: list[I], start: int, end: int, now: int) -> list[WarningCode]:
    return [
        w.code
        for w in timing_warnings(
            event_ts=EVENT, interventions=interventions, window_start_ts=start,
            window_end_ts=end, now_ms=now,
        )
    ]


def test_timely_requests_have_no_warning() -> None:
    assert codes([I.DEFUSING], EVENT + 2 * H, EVENT + 8 * H, EVENT + H) == []
    assert codes([I.DEBRIEFING], EVENT + 2 * DAY_MS, EVENT + 4 * DAY_MS, EVENT + H) == []
    assert codes([I.ONE_ON_ONE], EVENT + 30 * DAY_MS, EVENT + 31 * DAY_MS, EVENT) == []


def test_defusing_outside_12_hours() -> None:
    assert codes([I.DEFUSING], EVENT + 13 * H, EVENT + 20 * H, EVENT + H) == [
        WarningCode.DEFUSING_WINDOW_LATE
    ]
    assert codes([I.DEFUSING], EVENT + 2 * H, EVENT + 20 * H, EVENT + 13 * H) == [
        WarningCode.DEFUSING_BAND_PASSED
    ]


def test_debriefing_outside_1_to_10_days() -> None:
    assert codes([I.DEBRIEFING], EVENT + H, EVENT + 20 * H, EVENT) == [
        WarningCode.DEBRIEFING_WINDOW_EARLY
    ]
    assert codes([I.DEBRIEFING], EVENT + 11 * DAY_MS, EVENT + 12 * DAY_MS, EVENT) == [
        WarningCode.DEBRIEFING_WINDOW_LATE
    ]
    assert codes([I.DEBRIEFING], EVENT + 2 * DAY_MS, EVENT + 3 * DAY_MS, EVENT + 11 * DAY_MS) == [
        WarningCode.DEBRIEFING_BAND_PASSED
    ]


def test_both_at_once_in_stable_order() -> None:
    got = codes([I.DEBRIEFING, I.DEFUSING], EVENT + 13 * H, EVENT + 14 * H, EVENT)
    assert got == [WarningCode.DEFUSING_WINDOW_LATE, WarningCode.DEBRIEFING_WINDOW_EARLY]
    assert all(w.message for w in timing_warnings(
        event_ts=EVENT, interventions=[I.DEFUSING], window_start_ts=EVENT + 13 * H,
        window_end_ts=EVENT + 14 * H, now_ms=EVENT))
