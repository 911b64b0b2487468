"""Roster privacy policy: workload weights, aggregation mode and helper (issue 15 item 1).

Old rosters parse and keep their bytes (the new fields are absent, never null); bad weights
and a shared mode without its helper are refused."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from federation.roster import Policy, PrivacyPolicy
from node.privacy.schema import ReleasePolicy
from protocol.canonical import canonical_bytes
from protocol.workload import DEFAULT_WEIGHTS, GROUP_NAMES

EVEN = {g: "0.125" for g in GROUP_NAMES}


def test_old_policy_parses_and_keeps_its_bytes() -> None:
    old = {"measure": "zcdp", "budget_per_node_year": "1.0", "per_person_month": 4,
           "per_cell": 1}
    p = PrivacyPolicy.model_validate(old)
    assert canonical_bytes(p.model_dump(mode="json")) == canonical_bytes(old)
    rp = ReleasePolicy.from_roster_policy(Policy(privacy=p))
    assert rp.aggregation == "local" and rp.helper is None and rp.workload_weights is None


def test_weights_and_shared_mode_reach_the_release_policy() -> None:
    p = PrivacyPolicy.model_validate(
        {"workload_weights": EVEN, "aggregation": "shared", "helper": "helper-univ"})
    assert p.model_dump(mode="json")["workload_weights"] == EVEN
    rp = ReleasePolicy.from_roster_policy(Policy(privacy=p))
    assert rp.aggregation == "shared" and rp.helper == "helper-univ"
    assert rp.workload_weights == {g: Decimal("0.125") for g in GROUP_NAMES}
    local = PrivacyPolicy.model_validate({"aggregation": "local"})
    assert ReleasePolicy.from_roster_policy(Policy(privacy=local)).aggregation == "local"


@pytest.mark.parametrize("bad", [
    {"workload_weights": {**EVEN, "nope": "0.1"}},                       # unknown group
    {"workload_weights": {g: "0.125" for g in GROUP_NAMES[1:]}},          # missing group
    {"workload_weights": {**EVEN, "total": "0", "cross": "0.25"}},        # a zero weight
    {"workload_weights": {**EVEN, "total": "0.13"}},                      # sums to 1.005
    {"workload_weights": {**EVEN, "total": 0.125}},                       # not a string
    {"workload_weights": None},                                           # null
    {"aggregation": "shared"},                                            # no helper
    {"aggregation": "local", "helper": "helper-univ"},                    # helper, not shared
    {"aggregation": "central"},                                           # unknown mode
    {"aggregation": "shared", "helper": "Not An Id"},                     # bad node id
])
def test_bad_policy_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PrivacyPolicy.model_validate(bad)


def test_default_weights_documented_sum() -> None:
    assert sum(DEFAULT_WEIGHTS.values()) == 1
