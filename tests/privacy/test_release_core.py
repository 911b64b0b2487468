"""The release builder's core: cell schema, truncation inside OpenDP, noise at the declared
scale, and no way to release without noise."""

from __future__ import annotations

import inspect
import math
from decimal import Decimal

import nacl.signing
import numpy as np
import pytest
from pydantic import ValidationError

from node.privacy.noise import (
    EncounterColumns,
    EncounterFacts,
    calibrate,
    encode,
    noisy_counts,
    sensitivity,
    truncated_counts,
)
from node.privacy.release import build_release
from node.privacy.schema import CELL_KEYS, FAMILIES, SCHEMA, ReleasePolicy
from protocol.canonical import canonical_bytes
from protocol.encoding import unb64u
from protocol.signing import Context, verify
from protocol.vocabulary import Measure
from tests.privacy.synthetic import synthetic_columns

TRIALS = 400  # releases of one fixed data set per measure


def _declared_variance(measure: Measure, scale: float) -> float:
    if measure is Measure.ZCDP:
        # discrete Gaussian: exact variance by summing the (normalised) support
        r = int(40 * scale) + 10
        xs = np.arange(-r, r + 1, dtype=np.float64)
        w = np.exp(-(xs**2) / (2 * scale * scale))
        return float((w * xs**2).sum() / w.sum())
    q = math.exp(-1 / scale)
    return 2 * q / (1 - q) ** 2


def test_schema_is_fixed_and_complete() -> None:
    assert len(CELL_KEYS) == 222 == len(set(CELL_KEYS))
    assert [len(f.keys) for f in FAMILIES] == [180, 30, 6, 6]
    empty = synthetic_columns(0, 0)
    values, _ = noisy_counts(empty, ReleasePolicy())
    assert len(values) == 222  # zeros included, all cells present


def test_sensitivity_figures() -> None:
    assert sensitivity(4, 1) == (16, 4.0)
    l1, l2 = sensitivity(4, 2)
    assert l1 == 16 and l2 == pytest.approx(math.sqrt(4 * 8))
    assert sensitivity(1, 1) == (4, 2.0)


@pytest.mark.parametrize("measure", [Measure.ZCDP, Measure.PURE_DP])
def test_noise_matches_declared_variance(measure: Measure) -> None:
    policy = ReleasePolicy(measure=measure, budget_per_node_year=Decimal("2.4"))
    cols = synthetic_columns(2_000, 600, seed=7)
    exact = truncated_counts(cols, policy.per_person_month, policy.per_cell)
    cal = calibrate(policy)
    assert cal.scale > 0 and cal.budget_spent <= float(policy.monthly_allowance) + 1e-12
    noise = np.empty((TRIALS, len(CELL_KEYS)), dtype=np.float64)
    for t in range(TRIALS):
        values, _ = noisy_counts(cols, policy)
        noise[t] = np.asarray(values) - exact
    var = _declared_variance(measure, cal.scale)
    k = len(CELL_KEYS)
    # Var(sample variance) ~ sigma^4 (2/(n-1) + excess_kurtosis/n); discrete Laplace has
    # excess kurtosis ~3, the discrete Gaussian ~0. Allow 5 standard errors.
    kurt = 3.0 if measure is Measure.PURE_DP else 0.0
    per_cell_se = math.sqrt(2 / (TRIALS - 1) + kurt / TRIALS)
    pooled_se = per_cell_se / math.sqrt(k)
    cell_var = noise.var(axis=0, ddof=1)
    assert abs(cell_var.mean() / var - 1) < 5 * pooled_se
    assert np.all(np.abs(cell_var / var - 1) < 5 * per_cell_se + 0.05)
    # and unbiased: the pooled mean is within 5 standard errors of zero
    assert abs(noise.mean()) < 5 * math.sqrt(var / (TRIALS * k))
    # noise is really there: a release differs from the exact counts almost everywhere
    assert (noise != 0).mean() > 0.5


def test_no_way_to_disable_noise() -> None:
    for bad in ("0", "-1", "NaN", "Infinity", "1e9"):
        with pytest.raises(ValidationError):
            ReleasePolicy(budget_per_node_year=Decimal(bad))
    for fn in (noisy_counts, build_release, calibrate):
        params = set(inspect.signature(fn).parameters)
        assert not params & {"noise", "scale", "epsilon", "rho", "sigma", "exact", "raw"}


def _one_person(n: int, cell: int = 0) -> EncounterColumns:
    z = np.zeros(n, dtype=np.int64)
    return EncounterColumns(
        person=z, order=np.arange(n, dtype=np.int64), enc=z + cell,
        ref=z + 2, fu_due=z + 1, fu_on_time=z + 1,
    )


@pytest.mark.parametrize("select", [True, False])
@pytest.mark.parametrize(("m", "c"), [(4, 1), (4, 2), (3, 5)])
def test_truncation_bounds_one_heavy_person(select: bool, m: int, c: int) -> None:
    base = synthetic_columns(500, 200, seed=3)
    rng = np.random.default_rng(11)
    n = 100
    heavy = EncounterColumns(
        person=np.full(n, 10_000, dtype=np.int64),
        order=rng.integers(0, 10**9, n),
        enc=rng.integers(0, 3, n),  # crowd a few cells
        ref=rng.integers(0, 2, n),
        fu_due=np.zeros(n, dtype=np.int64),
        fu_on_time=rng.integers(-1, 1, n),
    )
    both = EncounterColumns(
        *(np.concatenate([a, b]) for a, b in zip(
            (base.person, base.order, base.enc, base.ref, base.fu_due, base.fu_on_time),
            (heavy.person, heavy.order, heavy.enc, heavy.ref, heavy.fu_due, heavy.fu_on_time),
            strict=True,
        ))
    )
    diff = truncated_counts(both, m, c, select=select) - truncated_counts(base, m, c,
                                                                          select=select)
    assert diff.min() >= 0
    assert diff.max() <= c
    offset = 0
    for fam in FAMILIES:
        part = diff[offset : offset + len(fam.keys)]
        assert part.sum() <= m
        offset += len(fam.keys)
    l1, l2 = sensitivity(m, c)
    assert diff.sum() <= l1 and math.sqrt(float((diff**2).sum())) <= l2 + 1e-9
    alone = truncated_counts(_one_person(100), m, c, select=select)
    assert alone.max() <= c and alone.sum() <= 4 * m


def test_encode_maps_facts_to_cells() -> None:
    facts = [
        EncounterFacts("a", 5, "ems", "defusing", "supervisor", "eap", True, True),
        EncounterFacts("a", 1, "ems", "defusing", "supervisor", None, True, False),
        EncounterFacts("b", 2, "fire", "one_on_one", "self", "other", False, False),
    ]
    exact = dict(zip(CELL_KEYS, truncated_counts(encode(facts), 4, 2).tolist(), strict=True))
    assert exact["enc:ems:defusing:supervisor"] == 2
    assert exact["enc:fire:one_on_one:self"] == 1
    assert exact["ref:ems:eap"] == 1 and exact["ref:fire:other"] == 1
    assert exact["fu_due:ems"] == 2 and exact["fu_on_time:ems"] == 1
    assert sum(exact.values()) == 2 + 1 + 2 + 2 + 1
    with pytest.raises(KeyError):
        encode([EncounterFacts("a", 1, "pilot", "defusing", "self", None, False, False)])


def test_signed_release_verifies_and_carries_the_ledger_fields() -> None:
    key = nacl.signing.SigningKey(bytes(range(32)))
    signed = build_release(
        synthetic_columns(300, 100), node_id="station-7", month="2026-10",
        policy=ReleasePolicy(), signing_key=key, key_version=3, now_ms=1_790_000_000_000,
        schema=SCHEMA,  # the v1 cell release (old hubs, tests); v2: test_workload_release.py
    )
    rel = signed.body["release"]
    assert list(rel["cells"]) == sorted(CELL_KEYS) or set(rel["cells"]) == set(CELL_KEYS)
    assert rel["measure"] == "zcdp" and rel["mechanism"] == "gaussian"
    assert rel["bounds"] == {"per_person_month": 4, "per_cell": 1}
    assert signed.calibration is not None
    assert float(rel["scale"]) == pytest.approx(signed.calibration.scale)
    assert signed.body["sig"]["key_id"] == "ed25519:3"
    verify(bytes(key.verify_key), Context.RELEASE, canonical_bytes(rel),
           unb64u(signed.body["sig"]["value"]))
    assert signed.body_bytes == canonical_bytes(signed.body)
