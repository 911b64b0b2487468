"""The hub's statistics: declared variances match OpenDP's noise, 95% intervals cover the
true totals about 95% of the time, rates by the delta method, display-only clamping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hub.stats.estimates import (
    CELL_KEYS,
    Estimate,
    cell_indices,
    display_interval,
    ratio,
    release_variance,
)
from hub.stats.summary import MonthSums, summarise
from node.privacy.noise import calibrate, truncated_counts
from node.privacy.schema import CELL_KEYS as NODE_CELL_KEYS
from node.privacy.schema import ReleasePolicy
from protocol.vocabulary import Measure
from tests.privacy.synthetic import synthetic_columns

TRIALS = 300
NODES = 6


def test_hub_and_node_share_the_schema() -> None:
    assert CELL_KEYS == NODE_CELL_KEYS


def test_variance_formulas() -> None:
    b = 3.0
    q = math.exp(-1 / b)
    assert release_variance("laplace", b) == pytest.approx(2 * q / (1 - q) ** 2)
    assert release_variance("gaussian", 10.0) == pytest.approx(100.0)
    assert release_variance("gaussian", 0.5) < 0.25  # discrete Gaussian below sigma^2
    with pytest.raises(ValueError):
        release_variance("gaussian", 0.0)


@pytest.mark.parametrize("measure", [Measure.ZCDP, Measure.PURE_DP])
def test_interval_coverage_over_simulated_releases(measure: Measure) -> None:
    policy = ReleasePolicy(measure=measure)
    cal = calibrate(policy)
    var = release_variance(cal.mechanism.value, cal.scale)
    exact = [truncated_counts(synthetic_columns(400, 150, seed=s), 4, 1) for s in range(NODES)]
    truth = np.sum(exact, axis=0).astype(np.float64)
    enc = cell_indices("enc")
    covered_cells = 0
    covered_margin = 0
    for _ in range(TRIALS):
        noisy = np.sum([np.asarray(cal.measurement(e), dtype=np.float64) for e in exact],
                       axis=0)
        half = 1.959963984540054 * math.sqrt(NODES * var)
        covered_cells += int((np.abs(noisy - truth) <= half).sum())
        margin = Estimate(float(noisy[enc].sum()), NODES * var * len(enc))
        covered_margin += int(margin.low <= truth[enc].sum() <= margin.high)
    n_cells = TRIALS * len(CELL_KEYS)
    # binomial standard error of a 95% coverage rate, 4.5 of them (cells of one trial are
    # independent: separate noise draws); a sum of six discrete Laplace noises is close to
    # normal, but allow for the residual shape with 0.01 more.
    tol_cells = 4.5 * math.sqrt(0.95 * 0.05 / n_cells) + (0.01 if measure is Measure.PURE_DP
                                                          else 0.0)
    # The noisy sum is an integer, so a cell is covered when |error| <= floor(half): the
    # expected rate is the continuity-corrected normal probability of that, a little above
    # 0.95 (0.9522 for the default zCDP scale). Against 0.95 itself the test failed about
    # one run in twenty on that bias alone.
    expected = math.erf((math.floor(half) + 0.5) / math.sqrt(2 * NODES * var))
    assert abs(covered_cells / n_cells - expected) < tol_cells, (covered_cells / n_cells,
                                                                 expected)
    tol_margin = 4.5 * math.sqrt(0.95 * 0.05 / TRIALS)
    assert abs(covered_margin / TRIALS - 0.95) < tol_margin


def test_ratio_delta_method_and_display_clamps() -> None:
    r = ratio(Estimate(20.0, 4.0), Estimate(100.0, 25.0))
    assert r is not None
    assert r.value == pytest.approx(0.2)
    assert r.variance == pytest.approx(4 / 100**2 + 20**2 * 25 / 100**4)
    assert ratio(Estimate(1.0, 1.0), Estimate(-3.0, 1.0)) is None
    neg = Estimate(-4.0, 9.0).count_json()
    assert neg["estimate"] == -4.0 and neg["display"]["estimate"] == 0
    assert neg["display"]["interval"][0] == 0
    high = Estimate(1.2, 0.01).rate_json()
    assert high["display"]["estimate"] == 1.0
    # with a covariance: Var(a/b) gains -2 a Cov(a, b) / b^3
    rc = ratio(Estimate(20.0, 4.0), Estimate(100.0, 25.0), cov=3.0)
    assert rc is not None and r is not None
    assert rc.variance == pytest.approx(r.variance - 2 * 20 * 3.0 / 100**3)


def test_display_interval_is_never_narrower_than_the_noise() -> None:
    """Issue 15 item 5: a count whose raw interval lies below zero showed as "0 [0, 0]"."""
    se = 37 / (2 * 1.959963984540054)  # a 95% interval 37 wide
    below = Estimate(-25.0, se * se).count_json()["display"]
    assert below == {"estimate": 0, "interval": [0, 37]}
    straddle = Estimate(5.0, se * se).count_json()["display"]
    assert straddle["interval"][0] == 0 and straddle["interval"][1] >= 37
    for value in np.linspace(-100, 100, 41):
        for s in (0.3, 2.0, 9.8, 131.0):
            d = Estimate(float(value), s * s).count_json()["display"]
            lo, hi = d["interval"]
            assert hi - lo >= 2 * 1.959963984540054 * s - 1e-9  # rounded outward, not in
            assert lo <= d["estimate"] <= hi and lo >= 0
    # rates stay inside [0, 1] at full width, cut only when wider than [0, 1]
    above = Estimate(1.3, 0.05**2).rate_json()["display"]
    assert above["estimate"] == 1.0 and above["interval"][1] == 1.0
    assert above["interval"][1] - above["interval"][0] >= 2 * 1.959963984540054 * 0.05 - 1e-9
    wide = Estimate(0.5, 0.6**2).rate_json()["display"]
    assert wide["interval"] == [0.0, 1.0]
    assert display_interval(-2.0, 3.0, 0.0, None) == (0.0, 5.0)
    assert display_interval(2.0, 3.0, 0.0, None) == (2.0, 3.0)


def test_summary_document_shape() -> None:
    n = len(CELL_KEYS)
    v = np.zeros(n)
    v[cell_indices("enc", "fire")] = 2.0
    v[cell_indices("ref", "fire")] = 1.0
    doc = summarise({"2026-01": MonthSums(v, np.full(n, 4.0), 3)}, ["fire"])
    m = doc["months"][0]
    assert m["nodes_reporting"] == 3
    assert m["encounters"]["estimate"] == 2.0 * 30
    assert m["referrals"]["estimate"] == 5.0
    assert m["referral_rate"]["estimate"] == pytest.approx(5 / 60)
    assert m["follow_up_on_time_rate"] is None
    assert list(m["by_discipline"]) == ["fire"]
