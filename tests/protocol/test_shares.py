"""Additive shares mod 2^64 (`protocol.shares`) and the shared-aggregation bodies.

The uniformity test is statistical: with a fixed seed it is deterministic; over seeds, each
chi-square check below fails by chance with probability 0.001 (critical values for that
level), so the test as a whole (4 checks) has a false-failure rate under 0.4%.
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from protocol import shares
from protocol.aggregate_bodies import AggregateResultBody, AggregateRoundBody, AggregateShareBody
from protocol.errors import ProtocolError
from protocol.workload import SCHEMA, WORKLOAD_KEYS
from tests.vectors.aggregate_vectors import bodies, fixed_random
from tests.vectors.generate import MessageType

K = len(WORKLOAD_KEYS)
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "aggregate_shares.json"
# chi-square upper 0.001 quantiles
CHI2_DF15_P001 = 37.697
CHI2_DF255_P001 = 330.52


def _chi2(counts: list[int]) -> float:
    n = sum(counts)
    e = n / len(counts)
    return sum((c - e) ** 2 / e for c in counts)


def _helper_shares(x: list[int], n: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [shares.split(x, rng.randbytes)[1] for _ in range(n)]


@pytest.mark.parametrize("x", [[0] * 4, [4, 300, 0, 9_000_000]], ids=["zeros", "counts"])
def test_each_share_alone_is_uniform(x: list[int]) -> None:
    """The helper's share (x - r) mod 2^64 looks uniform whatever x is: its top 4 bits and
    every byte are uniform (chi-square at the 0.001 level)."""
    n = 4000
    helper = _helper_shares(x, n, seed=20261204)
    top = [0] * 16
    byte_counts = [0] * 256
    for s in helper:
        for v in s:
            top[v >> 60] += 1
            for b in struct.pack("<Q", v):
                byte_counts[b] += 1
    assert _chi2(top) < CHI2_DF15_P001
    assert _chi2(byte_counts) < CHI2_DF255_P001


def test_split_and_combine_round_trip() -> None:
    rng = random.Random(7)
    for _ in range(200):
        x = [rng.randint(-(2**40), 2**40) for _ in range(K)]
        hub, helper = shares.split(x, rng.randbytes)
        assert all(0 <= v < shares.MOD for v in hub + helper)
        assert shares.combine(hub, helper) == x
        # through the wire encoding too
        assert shares.combine(shares.decode(shares.encode(hub), K),
                              shares.decode(shares.encode(helper), K)) == x


def test_sums_of_shares_are_shares_of_sums() -> None:
    rng = random.Random(8)
    xs = [[rng.randint(0, 50) for _ in range(K)] for _ in range(30)]
    pairs = [shares.split(x, rng.randbytes) for x in xs]
    hub_sum, helper_sum = shares.zeros(K), shares.zeros(K)
    for h, p in pairs:
        hub_sum, helper_sum = shares.add(hub_sum, h), shares.add(helper_sum, p)
    noise_hub = shares.to_uint64([-3] * K)
    noise_helper = shares.to_uint64([5] * K)
    got = shares.combine(shares.add(hub_sum, noise_hub), shares.add(helper_sum, noise_helper))
    assert got == [sum(col) + 2 for col in zip(*xs, strict=True)]


def test_to_int64_edges() -> None:
    assert shares.to_int64([2**63 - 1, 2**63, 2**64 - 1, 0]) == [2**63 - 1, -(2**63), -1, 0]


@pytest.mark.parametrize("text", ["AAAA", shares.encode([1] * (K - 1)),
                                  shares.encode([1] * (K + 1)), shares.encode([1] * K) + "="])
def test_decode_refuses_wrong_lengths(text: str) -> None:
    with pytest.raises(ProtocolError) as e:
        shares.decode(text, K)
    assert e.value.code.value == "bad_body"


def test_vector_file_recomputes() -> None:
    doc = json.loads(VECTORS.read_text("utf-8"))
    assert doc["keys"] == list(WORKLOAD_KEYS) and doc["schema"] == SCHEMA
    for case in doc["cases"]:
        hub, helper = shares.split(case["vector"], fixed_random(case["random_label"]))
        assert shares.encode(hub) == case["share_hub"]
        assert shares.encode(helper) == case["share_helper"]
        assert shares.combine(shares.decode(case["share_hub"], K),
                              shares.decode(case["share_helper"], K)) == case["vector"]
        assert shares.encode(case["negative"]["vector"]) == case["negative"]["wire"]


SAMPLES = bodies()


def _bad(model: Any, body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(body)


def test_share_body_refusals() -> None:
    good = SAMPLES[MessageType.AGGREGATE_SHARE]
    AggregateShareBody.model_validate(good)
    _bad(AggregateShareBody, {**good, "share": shares.encode([0] * (K - 1))})
    _bad(AggregateShareBody, {**good, "schema": "peernet.monthly/v1"})
    _bad(AggregateShareBody, {**good, "month": "2025-13"})
    _bad(AggregateShareBody, {**good, "extra": 1})


def test_round_body_refusals() -> None:
    good = SAMPLES[MessageType.AGGREGATE_ROUND]
    AggregateRoundBody.model_validate(good)
    _bad(AggregateRoundBody, {**good, "groups": {"north": ["agency-b", "agency-a"]}})
    _bad(AggregateRoundBody, {**good, "groups": {"north": ["agency-a", "agency-a"]}})
    _bad(AggregateRoundBody, {**good, "groups": {"north": ["agency-a"], "south": ["agency-a"]}})
    _bad(AggregateRoundBody, {**good, "groups": {}})
    _bad(AggregateRoundBody, {**good, "groups": {"North": ["agency-a"]}})


def test_result_body_refusals() -> None:
    good = SAMPLES[MessageType.AGGREGATE_RESULT]
    AggregateResultBody.model_validate(good)
    _bad(AggregateResultBody, {**good, "results": {"north": {"sum": "AAAA"}}})
    _bad(AggregateResultBody, {**good, "results": {"north": {"sum": good["results"]["north"][
        "sum"], "missing": ["agency-a"]}}})
    _bad(AggregateResultBody, {**good, "scales": {"total": "1.0"}})
