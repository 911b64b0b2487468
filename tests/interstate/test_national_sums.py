"""The national sum (pure math): estimates, variances and rate covariances add; rates by the
delta method from the sums; a state without a report for a month is named missing and adds
nothing; a range with no report at all has null figures."""

from __future__ import annotations

import pytest

from hub.national.sums import StateMonth, national_document
from hub.stats.estimates import Estimate, ratio
from protocol.state_stats import FIGURES

N = len(FIGURES)
IX = {n: i for i, n in enumerate(FIGURES)}


def month(nid: str, m: str, scale: float, nodes: int = 3) -> StateMonth:
    est = [scale * (i + 1) for i in range(N)]
    var = [scale * 2.0 + i for i in range(N)]
    return StateMonth(nid, m, nodes, est, var,
                      {"referrals/encounters": scale, "follow_ups_on_time/follow_ups_due": -scale})


def test_sum_of_states_and_rates() -> None:
    rows = [month("tx", "2026-01", 10.0), month("hi", "2026-01", 1.0),
            month("tx", "2026-02", 10.0), StateMonth("hi", "2026-02", 0, None, None, None)]
    doc = national_document(["2026-01", "2026-02"], ["tx", "hi", "ca"], rows)
    jan, feb = doc["months"]
    assert jan["states_reporting"] == ["hi", "tx"] and jan["states_missing"] == ["ca"]
    assert feb["states_reporting"] == ["tx"] and feb["states_missing"] == ["ca", "hi"]
    assert jan["nodes_reporting"] == 6
    e = IX["encounters"]
    assert jan["encounters"]["estimate"] == pytest.approx(11.0 * (e + 1))
    assert jan["encounters"]["se"] ** 2 == pytest.approx(22.0 + 2 * e)
    a, b = IX["referrals"], IX["encounters"]
    want = ratio(Estimate(11.0 * (a + 1), 22.0 + 2 * a), Estimate(11.0 * (b + 1), 22.0 + 2 * b),
                 11.0)
    assert want is not None
    assert jan["referral_rate"]["estimate"] == pytest.approx(want.value)
    assert jan["referral_rate"]["se"] == pytest.approx(want.se)
    assert jan["by_discipline"]["fire"]["estimate"] == pytest.approx(
        11.0 * (IX["by_discipline:fire"] + 1))
    total = doc["total"]
    assert total["node_months"] == 9
    assert total["encounters"]["estimate"] == pytest.approx(21.0 * (e + 1))


def test_nothing_reported_is_null_not_zero() -> None:
    doc = national_document(["2026-01"], ["tx"], [])
    assert doc["months"][0]["encounters"] is None
    assert doc["months"][0]["states_missing"] == ["tx"]
    assert doc["total"]["encounters"] is None and doc["total"]["node_months"] == 0
