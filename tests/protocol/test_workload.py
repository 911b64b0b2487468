"""The v2 workload definition (protocol.workload): keys, weights, sensitivity per group.

Sensitivity is checked here on person vectors built directly in the fine families (every
fine cell in [0, c], the family's sum at most m: exactly what the truncation guarantees);
tests/privacy/test_workload_release.py checks it again through the node's real truncation
on neighbouring datasets."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.core.vocabulary import ActivationType, Referral
from protocol.vocabulary import Measure
from protocol.workload import (
    ACTIVATION_TYPES,
    DEFAULT_WEIGHTS,
    DISCIPLINES,
    GROUP_NAMES,
    GROUPS,
    INTERVENTIONS,
    REFERRALS,
    SCHEMA,
    WORKLOAD_KEYS,
    check_weights,
    group_budgets,
    group_scales,
    group_sensitivity,
    implied_budget,
)

FAMILIES = {
    "enc": list(itertools.product(DISCIPLINES, INTERVENTIONS, ACTIVATION_TYPES)),
    "ref": list(itertools.product(DISCIPLINES, REFERRALS)),
    "fu_due": [(d,) for d in DISCIPLINES],
    "fu_on_time": [(d,) for d in DISCIPLINES],
}


def key_of(group: str, family: str, cell: tuple[str, ...]) -> str:
    """Which key of `group` a fine cell counts in (independent re-statement of the margins)."""
    if group == "total":
        return "total"
    if group in ("discipline", "fu_due", "fu_on_time"):
        return f"{group}:{cell[0]}"
    if group == "intervention":
        return f"intervention:{cell[1]}"
    if group == "activation_type":
        return f"activation_type:{cell[2]}"
    if group == "referral":
        return f"referral:{cell[1]}"
    assert group == "cross"
    return f"cross:{cell[0]}:{cell[1]}"


def margins(group: str, fine: dict[tuple[str, ...], int]) -> dict[str, int]:
    g = next(x for x in GROUPS if x.name == group)
    out = dict.fromkeys(g.keys, 0)
    for cell, v in fine.items():
        out[key_of(group, g.family, cell)] += v
    return out


def test_keys_and_order() -> None:
    assert SCHEMA == "peernet.workload/v2"
    assert GROUP_NAMES == ("total", "discipline", "intervention", "activation_type",
                           "referral", "fu_due", "fu_on_time", "cross")
    assert len(WORKLOAD_KEYS) == 1 + 6 + 6 + 5 + 5 + 6 + 6 + 36 == len(set(WORKLOAD_KEYS))
    assert WORKLOAD_KEYS[0] == "total" and WORKLOAD_KEYS[-1] == "cross:other:follow_up"
    assert ACTIVATION_TYPES == tuple(a.value for a in ActivationType)
    assert REFERRALS == tuple(r.value for r in Referral)
    for g in GROUPS:
        assert g.family_cells == len(FAMILIES[g.family])


def test_default_sensitivities() -> None:
    got = {g: (s.l1, s.l2) for g in GROUP_NAMES
           for s in [group_sensitivity(g, 4, 1)]}
    assert got == {"total": (4, 4.0), "discipline": (4, 4.0), "intervention": (4, 4.0),
                   "activation_type": (4, 4.0), "referral": (4, 4.0),
                   "fu_due": (4, 2.0), "fu_on_time": (4, 2.0), "cross": (4, 4.0)}
    # c = 2: follow-up cells take two each; m = 3 cannot be split evenly.
    assert group_sensitivity("fu_due", 3, 2).l2_squared == 4 + 1
    assert group_sensitivity("fu_due", 20, 1).l1 == 6  # the family has only 6 cells


@st.composite
def person(draw: st.DrawFn, family: str) -> tuple[int, int, dict[tuple[str, ...], int]]:
    """A person's kept vector in one family: entries in [0, c], sum <= m."""
    m = draw(st.integers(1, 12))
    c = draw(st.integers(1, 4))
    cells = FAMILIES[family]
    fine: dict[tuple[str, ...], int] = {}
    budget = m
    for ix in draw(st.lists(st.integers(0, len(cells) - 1), max_size=12)):
        take = min(c - fine.get(cells[ix], 0), budget, draw(st.integers(0, c)))
        if take > 0:
            fine[cells[ix]] = fine.get(cells[ix], 0) + take
            budget -= take
    return m, c, fine


@pytest.mark.parametrize("group", GROUP_NAMES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_person_within_bound(group: str, data: st.DataObject) -> None:
    g = next(x for x in GROUPS if x.name == group)
    m, c, fine = data.draw(person(g.family))
    sens = group_sensitivity(group, m, c)
    out = margins(group, fine)
    assert sum(abs(v) for v in out.values()) <= sens.l1
    assert sum(v * v for v in out.values()) <= sens.l2_squared


@pytest.mark.parametrize("group", GROUP_NAMES)
@pytest.mark.parametrize(("m", "c"), [(4, 1), (3, 2), (7, 3), (1, 1), (40, 1)])
def test_maximal_person_reaches_bound(group: str, m: int, c: int) -> None:
    """The bound is tight: a person packing m encounters into as few keys as allowed."""
    g = next(x for x in GROUPS if x.name == group)
    sens = group_sensitivity(group, m, c)
    # Fill key by key, each key's fine cells up to c, until m is used.
    fine: dict[tuple[str, ...], int] = {}
    left = m
    by_key: dict[str, list[tuple[str, ...]]] = {}
    for cell in FAMILIES[g.family]:
        by_key.setdefault(key_of(group, g.family, cell), []).append(cell)
    for cells in by_key.values():
        for cell in cells:
            take = min(c, left)
            if take:
                fine[cell] = take
                left -= take
    out = margins(group, fine)
    assert sum(out.values()) == sens.l1
    assert sum(v * v for v in out.values()) == sens.l2_squared


def test_weights() -> None:
    assert sum(DEFAULT_WEIGHTS.values()) == 1
    assert check_weights(None) == dict(DEFAULT_WEIGHTS)
    w = {g: "0.125" for g in GROUP_NAMES}
    assert check_weights(w)["cross"] == Decimal("0.125")
    with pytest.raises(ValueError, match="unknown"):
        check_weights({**w, "nope": "0.1"})
    with pytest.raises(ValueError, match="missing"):
        check_weights({g: "0.125" for g in GROUP_NAMES[1:]})
    with pytest.raises(ValueError, match="> 0"):
        check_weights({**w, "total": "0", "cross": "0.25"})
    with pytest.raises(ValueError, match="sum to 1"):
        check_weights({**w, "total": "0.126"})
    with pytest.raises(ValueError, match="decimal"):
        check_weights({**w, "total": 0.125})  # type: ignore[dict-item]


def test_budgets_and_scales_default_policy() -> None:
    allowance = Decimal("1.0") / 12
    budgets = group_budgets(allowance)
    assert abs(sum(budgets.values()) - allowance) < Decimal("1e-25")
    scales = group_scales(Measure.ZCDP, allowance, None, 4, 1)
    assert math.isclose(scales["total"], 4 / math.sqrt(2 * 0.3 / 12))  # 17.9 (DESIGN 7.1)
    assert round(scales["total"], 1) == 17.9
    for g, s in scales.items():
        spent = implied_budget(Measure.ZCDP, s, group_sensitivity(g, 4, 1))
        assert math.isclose(spent, float(budgets[g]))
    lap = group_scales(Measure.PURE_DP, Decimal(12) / 12, None, 4, 1)
    assert math.isclose(lap["total"], 4 / 0.3)
