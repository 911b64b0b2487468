"""Golden vectors of the signed state statistics document (tests/vectors/state_stats.json):
the file is what the builder makes, the valid document opens to its figures, each refusal
gives its stable code; and the document's other refusals (key not listed, another network,
issued too early or late, another month range) through `open_state_stats`."""

from __future__ import annotations

import json

import pytest

from hub.stats.estimates import DISCIPLINES
from hub.stats.figures import figure_names
from protocol.errors import ProtocolError
from protocol.state_stats import FIGURES, format_signed, open_state_stats
from tests.vectors.state_stats_vectors import PATH, build, hub_key

V = json.loads(PATH.read_text())
KEYS = {"ed25519:1": bytes(hub_key().verify_key)}
NOW = V["now_ms"]


def _open(signed: str, **kw: object) -> object:
    args: dict[str, object] = {"keys": KEYS, "network_id": "tx", "hub_id": "hub-tx",
                               "now_ms": NOW, "max_age_ms": 60_000,
                               "month_range": ("2025-11", "2025-12")}
    args.update(kw)
    return open_state_stats(signed.encode(), **args)  # type: ignore[arg-type]


def test_the_file_is_what_the_builder_makes() -> None:
    assert build() == V
    assert figure_names(DISCIPLINES) == FIGURES  # the hub's figures are the wire's


def test_valid_vector_opens() -> None:
    doc = _open(V["valid"]["signed"])
    m = doc.months[0]  # type: ignore[attr-defined]
    assert m.nodes == 12 and m.estimate[0] == -3.5 and m.variance[0] == 100.0
    assert doc.months[1].estimate is None  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", V["refused"], ids=lambda c: c["why"])
def test_refused_vectors(case: dict[str, str]) -> None:
    with pytest.raises(ProtocolError) as exc:
        _open(case["signed"])
    assert exc.value.code.value == case["code"]


@pytest.mark.parametrize(("kw", "code"), [
    ({"keys": {"ed25519:2": KEYS["ed25519:1"]}}, "unknown_key"),
    ({"network_id": "hi"}, "sender_mismatch"),
    ({"hub_id": "hub-hi"}, "sender_mismatch"),
    ({"now_ms": NOW - 3_600_000}, "from_future"),
    ({"now_ms": NOW + 3_600_000}, "expired"),
    ({"month_range": ("2025-10", "2025-12")}, "bad_body"),
])
def test_other_refusals(kw: dict[str, object], code: str) -> None:
    with pytest.raises(ProtocolError) as exc:
        _open(V["valid"]["signed"], **kw)
    assert exc.value.code.value == code


def test_too_large_is_refused() -> None:
    with pytest.raises(ProtocolError) as exc:
        open_state_stats(b" " * (1 << 20 + 1), keys=KEYS, network_id="tx", hub_id="hub-tx",
                         now_ms=NOW, max_age_ms=1)
    assert exc.value.code.value == "too_large"


def test_format_signed() -> None:
    assert [format_signed(x) for x in (0.0, -0.0, 1.5, -2.25, 1e-9, 123456.0000004)] == [
        "0", "0", "1.5", "-2.25", "0", "123456"]
