"""Each aggregator's noise (`federation.aggregate_noise`): OpenDP lands on the analytic scale
of `protocol.workload.group_scales`, and the published key's variance is 2 sigma^2.

Statistical check: 4000 pairs of draws of the `total` group (sigma 17.9 at the default
policy). The sample variance of the sum of two draws, over 2 sigma^2, is a chi-square / n
with n = 4000 (the discrete Gaussian's variance is at most sigma^2): outside [0.90, 1.08]
with probability under 1e-6 when the noise is as stated. No seed can be fixed (OpenDP draws
from the OS CSPRNG, as it must), so the false-failure rate is that stated 1e-6."""

from __future__ import annotations

from decimal import Decimal

from federation.aggregate_noise import calibrate, key_variances
from protocol.vocabulary import Measure
from protocol.workload import GROUP_NAMES, WORKLOAD_KEYS, group_scales


def test_scales_match_the_workload_and_variances_double() -> None:
    noise = calibrate("zcdp", "1.0", None, 4, 1)
    analytic = group_scales(Measure.ZCDP, Decimal("1.0") / 12, None, 4, 1)
    for g in noise.groups:
        assert analytic[g.name] * (1 - 1e-9) <= g.scale <= analytic[g.name] * 1.01
    assert set(noise.scales()) == set(GROUP_NAMES)
    v = key_variances(noise)
    assert len(v) == len(WORKLOAD_KEYS) and v[0] == 2 * noise.groups[0].scale ** 2


def test_two_aggregators_noise_has_variance_two_sigma_squared() -> None:
    noise = calibrate("zcdp", "1.0", None, 4, 1)
    total = noise.groups[0]
    n = 4000
    sums = [int(total.measurement([0])[0]) + int(total.measurement([0])[0]) for _ in range(n)]
    mean = sum(sums) / n
    var = sum((s - mean) ** 2 for s in sums) / (n - 1)
    ratio = var / key_variances(noise)[0]
    assert 0.90 < ratio < 1.08, ratio
    assert abs(mean) < 6 * (2 * total.scale ** 2 / n) ** 0.5


def test_pure_dp_policy_calibrates_laplace() -> None:
    noise = calibrate("pure_dp", "1.0", None, 4, 1)
    analytic = group_scales(Measure.PURE_DP, Decimal("1.0") / 12, None, 4, 1)
    for g in noise.groups:
        assert analytic[g.name] * (1 - 1e-9) <= g.scale <= analytic[g.name] * 1.01


def test_published_variance_uses_the_helpers_declared_scales() -> None:
    noise = calibrate("zcdp", "1.0", None, 4, 1)
    same = key_variances(noise, noise.scales())
    assert same == key_variances(noise)
    wider = {**noise.scales(), "total": "40"}
    v = key_variances(noise, wider)
    assert v[0] == noise.groups[0].scale ** 2 + 40.0 ** 2 and v[1:] == same[1:]
