"""The delta format's rules (WIRE.md §13.1) without a server: where new entries go (also
in a base that is not sorted), a version that reorders nodes is served whole, malformed
deltas are `bad_roster_delta`, and the golden vectors (`tests/vectors/roster_delta.json`)
rebuild version 2 byte for byte and pass the acceptance rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from federation.errors import FedCode, FederationError
from federation.keystore import NodeKeys
from federation.roster import SignedRoster, parse_signed_roster
from federation.roster_acceptance import BoardPin, accept_first, accept_next
from federation.roster_delta import DELTA_KEY, apply_delta, make_delta, parse_answer
from protocol.canonical import canonical_bytes
from tests.federation.boards import TestBoard, node_entry
from tests.vectors import roster_delta_vectors

NOW = 1_780_000_000_000
VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def _entry(node_id: str) -> dict[str, Any]:
    return node_entry(node_id, NodeKeys.generate()).model_dump(mode="json")


def _pair(board: TestBoard, before: list[str], after: list[dict[str, Any]] | None = None,
          order: list[str] | None = None) -> tuple[SignedRoster, SignedRoster, dict[str, Any]]:
    entries = {i: _entry(i) for i in before}
    v1 = board.sign(board.roster(now=NOW, nodes=[node_entry_of(entries[i]) for i in before]))
    nodes = after if after is not None else [entries[i] for i in order or before]
    v2 = board.sign(board.next(v1, now=NOW + 1, nodes=nodes))
    return v1, v2, entries


def node_entry_of(value: dict[str, Any]) -> Any:
    from federation.roster import NodeEntry

    return NodeEntry.model_validate(value)


def test_inserted_entries_land_at_their_index_sorted_or_not() -> None:
    board = TestBoard.make(3, 2)
    base = ["delta-fd", "alpha-fd", "mike-fd"]  # not sorted: the board never writes this
    v1 = board.sign(board.roster(now=NOW, nodes=[node_entry_of(_entry(i)) for i in base]))
    listed = [n.model_dump(mode="json") for n in v1.roster.nodes]
    new_b, new_z, new_e = _entry("bravo-fd"), _entry("zulu-fd"), _entry("echo-fd")
    after = [new_b, listed[0], new_e, new_z, listed[2]]  # alpha removed, three inserted
    v2 = board.sign(board.next(v1, now=NOW + 1, nodes=after))
    delta = make_delta(v1, v2)
    assert delta is not None
    d = parse_answer(delta)[DELTA_KEY]
    assert d["remove"] == ["alpha-fd"] and [i for i, _ in d["insert"]] == [0, 2, 3]
    assert apply_delta(v1, parse_answer(delta)).to_bytes() == v2.to_bytes()


def test_a_reordered_version_is_served_whole() -> None:
    board = TestBoard.make(3, 2)
    v1, v2, _ = _pair(board, ["a-fd", "b-fd", "c-fd"], order=["c-fd", "a-fd", "b-fd"])
    assert make_delta(v1, v2) is None


def test_removal_replacement_and_policy_change_rebuild() -> None:
    board = TestBoard.make(3, 2)
    ids = [f"agency-{i:02d}" for i in range(20)]
    v1 = board.sign(board.roster(now=NOW, nodes=[node_entry_of(_entry(i)) for i in ids]))
    listed = [n.model_dump(mode="json") for n in v1.roster.nodes]
    listed[5] = _entry(ids[5])
    del listed[9]
    listed.append(_entry("agency-99"))
    policy = v1.roster.policy.model_dump(mode="json")
    policy["retention_max_days"] = 30
    v2 = board.sign(board.next(v1, now=NOW + 1, nodes=listed, policy=policy))
    delta = make_delta(v1, v2)
    assert delta is not None
    d = parse_answer(delta)[DELTA_KEY]
    assert d["remove"] == [ids[9]] and [n["node_id"] for n in d["replace"]] == [ids[5]]
    assert [(i, n["node_id"]) for i, n in d["insert"]] == [(19, "agency-99")]
    assert set(d["set"]) == {"version", "prev_sha256", "issued_ts", "expires_ts", "policy"}
    assert apply_delta(v1, parse_answer(delta)).to_bytes() == v2.to_bytes()


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d[DELTA_KEY].update(remove=["no-such-node"]),
        lambda d: d[DELTA_KEY].update(remove=["agency-01", "agency-01"]),
        lambda d: d[DELTA_KEY].update(replace=[{"name": "no id"}]),
        lambda d: d[DELTA_KEY].update(replace=[d[DELTA_KEY]["insert"][0][1]]),
        lambda d: d[DELTA_KEY]["insert"][0].__setitem__(0, 9),
        lambda d: d[DELTA_KEY]["insert"].append(d[DELTA_KEY]["insert"][0]),
        lambda d: d[DELTA_KEY]["insert"][0].__setitem__(0, True),
        lambda d: d[DELTA_KEY]["set"].update(nodes=[]),
        lambda d: d[DELTA_KEY].update(from_version=True),
        lambda d: d[DELTA_KEY].update(extra=1),
        lambda d: d.update(more=1),
    ],
)
def test_malformed_deltas_are_bad_roster_delta(edit: Any) -> None:
    board = TestBoard.make(3, 2)
    ids = [f"agency-{i:02d}" for i in range(4)]
    v1 = board.sign(board.roster(now=NOW, nodes=[node_entry_of(_entry(i)) for i in ids]))
    listed = [n.model_dump(mode="json") for n in v1.roster.nodes] + [_entry("agency-09")]
    delta = make_delta(v1, board.sign(board.next(v1, now=NOW + 1, nodes=listed)))
    assert delta is not None
    doc = parse_answer(delta)
    edit(doc)
    with pytest.raises(FederationError) as e:
        apply_delta(v1, parse_answer(canonical_bytes(doc)))
    assert e.value.code == FedCode.BAD_ROSTER_DELTA


DOC: dict[str, Any] = json.loads((VECTORS / "roster_delta.json").read_text(encoding="utf-8"))


def test_vectors_rebuild_version_2_and_pass_acceptance() -> None:
    pin = BoardPin.from_strings(DOC["pinned"]["keys"], DOC["pinned"]["threshold"])
    v1 = parse_signed_roster(DOC["base_document"].encode())
    rebuilt = apply_delta(v1, parse_answer(DOC["delta"].encode()))
    assert rebuilt.to_bytes() == DOC["target_document"].encode()
    assert rebuilt.sha256 == DOC["target_sha256"]
    accept_first(v1, pin, DOC["now"])
    accept_next(v1, rebuilt, DOC["now"])
    assert make_delta(v1, parse_signed_roster(DOC["target_document"].encode())) == \
        DOC["delta"].encode()


def test_vectors_tampered_delta_fails_the_signatures() -> None:
    v1 = parse_signed_roster(DOC["base_document"].encode())
    tampered = apply_delta(v1, parse_answer(DOC["tampered_delta"].encode()))
    assert tampered.sha256 != DOC["target_sha256"]
    with pytest.raises(FederationError) as e:
        accept_next(v1, tampered, DOC["now"])
    assert e.value.code == FedCode.ROSTER_THRESHOLD


def test_the_generator_reproduces_the_file() -> None:
    text = json.dumps(roster_delta_vectors.build(), indent=2, ensure_ascii=False) + "\n"
    assert (VECTORS / "roster_delta.json").read_text(encoding="utf-8") == text
