from __future__ import annotations

import logging
from pathlib import Path

import pytest

from federation.keystore import KeystoreError
from node.core.identifier import unit_key
from node.core.pseudonym import Pseudonymizer, create_key_file, load_key_file, normalise
from tests.node.conftest import MakeNode, encounter


def test_stable_normalised_and_keyed() -> None:
    a = Pseudonymizer(b"a" * 32)
    b = Pseudonymizer(b"b" * 32)
    assert a.ref("E-1234") == a.ref("  e-1234 ") == a.ref("Ｅ-1234")  # NFKC, trim, casefold
    assert a.ref("E-1234") != a.ref("E-1235")
    assert a.ref("E-1234") != b.ref("E-1234")
    assert len(a.ref("x")) == 43 and "=" not in a.ref("x")
    assert "a" * 10 not in repr(a)
    assert normalise(" ÅB ") == "åb"


def test_key_file_round_trip_and_wrong_passphrase(tmp_path: Path) -> None:
    p = create_key_file(tmp_path / "p.key", "passphrase one")
    assert load_key_file(tmp_path / "p.key", "passphrase one").ref("x") == p.ref("x")
    assert b"key" in (tmp_path / "p.key").read_bytes()  # JSON envelope, sealed payload
    with pytest.raises(KeystoreError) as err:
        load_key_file(tmp_path / "p.key", "wrong")
    assert err.value.code == "wrong_passphrase"


async def test_typed_value_never_stored_or_logged(
    make_node: MakeNode, db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    node = await make_node()
    secret = "EMPNO-98765-ZQX"
    status, body = await node.post("sup1", "/api/v1/encounters", encounter(recipient=secret))
    assert status == 201
    # bad input carrying the value must not echo it either
    status, err = await node.post("sup1", "/api/v1/encounters",
                                  encounter(recipient=secret, intervention="nope"))
    assert status == 422 and secret not in str(err)
    status, again = await node.post("sup1", "/api/v1/encounters",
                                    encounter(recipient=f"  {secret.lower()} "))
    assert again["recipient_ref"] == body["recipient_ref"]
    assert secret.casefold() not in caplog.text.casefold()
    assert body["recipient_ref"] == node.ctx.pseudonyms.ref(unit_key(secret))
    if db_url.startswith("sqlite"):
        await node.client.close()  # checkpoint the WAL so every byte is in the files
        files = list(tmp_path.glob("test.db*"))
        assert files
        for f in files:
            data = f.read_bytes().lower()
            assert secret.lower().encode() not in data, f.name
            assert b"98765" not in data, f.name


async def test_refs_differ_across_nodes(make_node: MakeNode) -> None:
    one = await make_node()
    other = Pseudonymizer.generate()
    assert one.ctx.pseudonyms.ref("E-1") != other.ref("E-1")
