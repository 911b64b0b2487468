"""Roster golden vectors (`tests/vectors/roster.json`, WIRE.md §13): every byte recomputed
independently (canonical bytes, SHA-256, Ed25519 under the `roster` context from the board
seeds), each document accepted by the acceptance rules as version 1 under the pinned board and
version 2 after it, an edited copy refused, and the generator reproducing the file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import nacl.signing
import pytest

from federation.errors import FederationError
from federation.roster import parse_signed_roster
from federation.roster_acceptance import BoardPin, accept_first, accept_next
from protocol import b64u, canonical_bytes, unb64u
from tests.vectors import generate, roster_vectors

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
DOC: dict[str, Any] = json.loads((VECTORS / "roster.json").read_text(encoding="utf-8"))
T0 = 1_767_225_600_000


def test_every_byte_is_recomputed() -> None:
    keys = {b64u(bytes(nacl.signing.SigningKey(unb64u(s)).verify_key)): unb64u(s)
            for s in DOC["board_seeds"].values()}
    prev = None
    for v in DOC["versions"]:
        rbytes = json.dumps(v["roster"], sort_keys=True, separators=(",", ":"),
                            ensure_ascii=False).encode()
        assert rbytes == v["roster_canonical"].encode() == canonical_bytes(v["roster"])
        assert v["sha256"] == b64u(hashlib.sha256(rbytes).digest())
        assert v["roster"]["prev_sha256"] == prev
        for sig in v["signatures"]:
            key = nacl.signing.SigningKey(keys[sig["key"]])
            expect = key.sign(b"peernet/v1/roster\x00" + rbytes).signature
            assert unb64u(sig["value"]) == expect  # Ed25519 is deterministic
        whole = {"roster": v["roster"], "signatures": v["signatures"]}
        assert v["document"].encode() == canonical_bytes(whole)
        prev = v["sha256"]


def test_the_documents_pass_the_acceptance_rules() -> None:
    pin = BoardPin.from_strings(DOC["pinned"]["keys"], DOC["pinned"]["threshold"])
    v1, v2 = (parse_signed_roster(v["document"].encode()) for v in DOC["versions"])
    assert v1.sha256 == DOC["versions"][0]["sha256"] and v2.to_bytes() == \
        DOC["versions"][1]["document"].encode()
    accept_first(v1, pin, T0)
    accept_next(v1, v2, T0 + 86_400_000)
    edited = json.loads(DOC["versions"][1]["document"])
    edited["roster"]["nodes"][1]["endpoint"] = "https://attacker.example.org"
    with pytest.raises(FederationError) as e:
        accept_next(v1, parse_signed_roster(canonical_bytes(edited)), T0 + 86_400_000)
    assert e.value.code == "roster_threshold"


def test_the_generator_reproduces_the_file() -> None:
    assert generate.render(roster_vectors.build()) == (VECTORS / "roster.json").read_text(
        encoding="utf-8")
