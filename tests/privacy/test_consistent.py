"""Consistent estimates from v2 workload releases (`hub.stats.consistent`, issue 15 item 2).

Statistical tests run with fixed seeds, so each is deterministic; the false-failure rate
stated with each is the chance that the check fails for a random seed although the estimator
is exactly right (what a reviewer should expect if the seed were changed).
"""

from __future__ import annotations

import math
from decimal import Decimal
from statistics import NormalDist

import numpy as np
import pytest

from hub.stats.consistent import LINKED, combine, estimator
from hub.stats.estimates import Z95, release_variance
from hub.stats.summary import MonthSums, summarise
from protocol.vocabulary import Measure
from protocol.workload import (
    DISCIPLINES,
    GROUPS,
    INTERVENTIONS,
    KEY_GROUP,
    WORKLOAD_KEYS,
    group_scales,
)
from tests.privacy.synthetic_state import State, discrete_gaussian, synthetic_state

K = {k: n for n, k in enumerate(WORKLOAD_KEYS)}
ALLOWANCE = Decimal(1) / 12
OTHER_WEIGHTS = {"total": Decimal("0.1"), "discipline": Decimal("0.2"),
                 "intervention": Decimal("0.1"), "activation_type": Decimal("0.2"),
                 "referral": Decimal("0.1"), "fu_due": Decimal("0.1"),
                 "fu_on_time": Decimal("0.1"), "cross": Decimal("0.1")}


def scales(weights: dict[str, Decimal] | None = None) -> np.ndarray:
    sc = group_scales(Measure.ZCDP, ALLOWANCE, weights, 4, 1)
    return np.array([sc[KEY_GROUP[k]] for k in WORKLOAD_KEYS])


def variances(weights: dict[str, Decimal] | None = None) -> np.ndarray:
    return np.array([release_variance("gaussian", s) for s in scales(weights)])


def keys(prefix: str) -> list[int]:
    return [K[k] for k in WORKLOAD_KEYS if k.split(":")[0] == prefix]


def assert_consistent(est: np.ndarray) -> None:
    tol = 1e-9 * max(1.0, float(np.abs(est).max()))
    total = est[K["total"]]
    for g in ("discipline", "intervention", "activation_type", "cross"):
        assert abs(est[keys(g)].sum() - total) <= tol, g
    for d in DISCIPLINES:
        row = sum(est[K[f"cross:{d}:{i}"]] for i in INTERVENTIONS)
        assert abs(row - est[K[f"discipline:{d}"]]) <= tol
    for i in INTERVENTIONS:
        col = sum(est[K[f"cross:{d}:{i}"]] for d in DISCIPLINES)
        assert abs(col - est[K[f"intervention:{i}"]]) <= tol


def test_margins_sum_to_totals_exactly_and_other_groups_pass_through() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        var = rng.uniform(1, 5000, len(WORKLOAD_KEYS))  # any variances, not proportional
        y = rng.normal(0, 300, len(WORKLOAD_KEYS)).round()
        c = combine(y, var)
        assert_consistent(c.estimate)
        other = [n for n in range(len(WORKLOAD_KEYS)) if n not in LINKED]
        assert np.array_equal(c.estimate[other], y[other])
        assert np.allclose(np.diag(c.covariance)[other], var[other])
    # consistent input is returned unchanged: P fixes every consistent vector
    t = synthetic_state(agencies=1, seed=3).v2[0].astype(float)
    assert np.allclose(combine(t, variances()).estimate, t)


def test_the_combination_is_tighter_than_the_direct_total() -> None:
    var = variances()
    _, cov = estimator(var)
    assert cov[K["total"], K["total"]] < var[K["total"]]
    # and no key's variance grows
    assert np.all(np.diag(cov) <= var * (1 + 1e-12))


@pytest.mark.parametrize("mixed", [False, True])
def test_unbiased_with_the_exact_covariance_by_simulation(mixed: bool) -> None:
    """20,000 simulated releases of a region of 10 agencies with OpenDP's discrete Gaussian
    at each group's scale (mixed: half the agencies on other policy weights, so the summed
    variances are not proportional). Checks, for every published key, that the mean error
    is within 5 standard errors of 0 and the sample variance within 5 of its own standard
    errors of the exact variance, and the same for the covariance of the total with each
    discipline. False-failure rate (a correct estimator failing for a random seed): per check
    2(1 - Phi(5)) = 5.7e-7, over the 148 checks below 1e-4."""
    n_trials, agencies = 20_000, 10
    state = synthetic_state(agencies=agencies, regions=1, seed=7)
    truth = state.v2.sum(axis=0).astype(float)
    per_agency = [scales(OTHER_WEIGHTS if mixed and a % 2 else None) for a in range(agencies)]
    var = sum(np.array([release_variance("gaussian", s) for s in sc]) for sc in per_agency)
    rng = np.random.default_rng(15)
    drawn = sum(noise(rng, sc, 1, n_trials) for sc in per_agency)
    proj, cov = estimator(var)
    est = (truth + drawn) @ proj.T
    err = est - truth @ proj.T
    assert np.allclose(truth @ proj.T, truth)  # truth is consistent: P leaves it alone
    sd = np.sqrt(np.diag(cov))
    z_mean = err.mean(axis=0) / (sd / math.sqrt(n_trials))
    assert np.abs(z_mean).max() < 5, float(np.abs(z_mean).max())
    ratio = err.var(axis=0, ddof=1) / np.diag(cov)
    # Var of a sample variance of a near-normal variable: 2 sigma^4 / (n - 1)
    assert np.abs(ratio - 1).max() < 5 * math.sqrt(2 / (n_trials - 1)), float(
        np.abs(ratio - 1).max())
    t = K["total"]
    for d in DISCIPLINES:
        j = K[f"discipline:{d}"]
        sample = float(np.cov(err[:, t], err[:, j])[0, 1])
        # se of a sample covariance: sqrt((s_tt s_jj + s_tj^2) / n)
        se = math.sqrt((cov[t, t] * cov[j, j] + cov[t, j] ** 2) / n_trials)
        assert abs(sample - cov[t, j]) < 5 * se
    assert_consistent(est[0])


def binom_outside(n: int, p: float, lo: int, hi: int) -> float:
    """P(Binomial(n, p) < lo or > hi), exactly."""
    inside = sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(lo, hi + 1))
    return 1.0 - inside


def noise(rng: np.random.Generator, sc: np.ndarray, draws: int, trials: int) -> np.ndarray:
    """(trials, keys): per key the sum of `draws` discrete Gaussian noises at its scale."""
    out = np.zeros((trials, len(sc)), dtype=np.int64)
    for s in np.unique(sc):
        cols = np.flatnonzero(sc == s)
        out[:, cols] = discrete_gaussian(rng, float(s), (draws, trials, len(cols))).sum(axis=0)
    return out


def trial_months(state: State, rng: np.random.Generator, shared: bool,
                 trials: int) -> list[MonthSums]:
    """`trials` simulated months of `state`, local (one noise per agency) or shared (two
    noises per region: one from each aggregator)."""
    sc, var1 = scales(), variances()
    per_region = {}
    for region in state.regions:
        rows = state.region_rows(region)
        draws = 2 if shared else len(rows)
        truth = state.v2[rows].sum(axis=0)
        per_region[region] = (truth + noise(rng, sc, draws, trials), var1 * draws)
    n = state.v1.shape[1]
    return [
        MonthSums(np.zeros(n), np.zeros(n), len(state.sizes),
                  {r: (y[t].astype(float), v) for r, (y, v) in per_region.items()})
        for t in range(trials)
    ]


@pytest.mark.parametrize("shared", [False, True])
def test_interval_coverage_of_the_state_total(shared: bool) -> None:
    """1,000 simulated months of a 40-agency, 4-region state through `summarise` (local: one
    noise per agency; shared: two per region). The 95% interval of the state total must
    cover the truncated true total in 930 to 970 of them. False-failure rate for an exactly
    95% interval: P(Binomial(1000, 0.95) outside [930, 970]) = 0.004."""
    state = synthetic_state(seed=21)
    truth = float(state.v2[:, K["total"]].sum())
    rng = np.random.default_rng(2015 + int(shared))
    hits = 0
    trials = 1000
    for month in trial_months(state, rng, shared, trials):
        doc = summarise({"2026-01": month})
        lo, hi = doc["total"]["encounters"]["interval"]
        hits += int(lo <= truth <= hi)
    assert 930 <= hits <= 970, hits
    assert binom_outside(trials, 0.95, 930, 970) < 0.005


def test_regions_sum_to_the_state_and_months_to_the_range() -> None:
    state = synthetic_state(seed=5)
    rng = np.random.default_rng(9)
    months = {f"2026-0{m}": s for m, s in zip((1, 2, 3), trial_months(state, rng, False, 3),
                                                strict=True)}
    whole = summarise(months)
    per_region = [
        summarise({m: MonthSums(s.values, s.variances, 0, {r: s.v2[r]}) for m, s in
                   months.items()})
        for r in state.regions
    ]
    for fig in ("encounters", "referrals", "follow_ups_due"):
        state_fig = whole["total"][fig]
        assert state_fig["estimate"] == pytest.approx(
            sum(d["total"][fig]["estimate"] for d in per_region), rel=1e-12)
        assert state_fig["se"] ** 2 == pytest.approx(
            sum(d["total"][fig]["se"] ** 2 for d in per_region), rel=1e-12)
    enc = whole["total"]["encounters"]["estimate"]
    for group in ("by_discipline", "by_intervention", "by_activation_type"):
        assert sum(f["estimate"] for f in whole["total"][group].values()) == pytest.approx(
            enc, rel=1e-12)
    month_sum = sum(m["encounters"]["estimate"] for m in whole["months"])
    assert month_sum == pytest.approx(enc, rel=1e-12)


def test_v1_and_v2_months_mix_and_unmeasured_figures_are_null() -> None:
    state = synthetic_state(agencies=8, regions=2, seed=4)
    var2 = variances()
    n = state.v1.shape[1]
    v1_month = MonthSums(state.v1.sum(axis=0).astype(float), np.full(n, 96.0), 8)
    v2_month = MonthSums(np.zeros(n), np.zeros(n), 8, {
        r: (state.v2[state.region_rows(r)].sum(axis=0).astype(float), var2 * 4)
        for r in state.regions})
    both = summarise({"2026-01": v1_month, "2026-02": v2_month})
    # no noise drawn: both months give the truncated truth, the range their sum
    true_total = float(state.v2[:, K["total"]].sum())
    assert both["months"][0]["encounters"]["estimate"] == pytest.approx(true_total)
    assert both["months"][1]["encounters"]["estimate"] == pytest.approx(true_total)
    assert both["total"]["encounters"]["estimate"] == pytest.approx(2 * true_total)
    assert both["total"]["referral_rate"] is not None
    fire = summarise({"2026-01": v1_month, "2026-02": v2_month}, ["fire"])
    assert fire["months"][0]["by_activation_type"] is not None  # v1 crosses them
    assert fire["months"][1]["by_activation_type"] is None  # v2 does not
    assert fire["total"]["by_activation_type"] is None
    assert fire["total"]["referrals"] is None and fire["total"]["referral_rate"] is None
    assert fire["total"]["follow_up_on_time_rate"] is not None
    assert fire["total"]["by_intervention"] is not None  # from the cross-tab


@pytest.mark.parametrize("bad", [
    np.zeros(len(WORKLOAD_KEYS)), np.full(len(WORKLOAD_KEYS), np.inf),
    np.full(len(WORKLOAD_KEYS) - 1, 1.0), -np.ones(len(WORKLOAD_KEYS)),
])
def test_bad_variances_are_refused(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        combine(np.zeros(len(WORKLOAD_KEYS)), bad)


def test_groups_known_to_the_estimator() -> None:
    """Every encounter-family group is linked; a new workload group fails here first."""
    linked = {KEY_GROUP[WORKLOAD_KEYS[n]] for n in LINKED}
    assert linked == {g.name for g in GROUPS if g.family == "enc"}
    assert Z95 == pytest.approx(NormalDist().inv_cdf(0.975))
