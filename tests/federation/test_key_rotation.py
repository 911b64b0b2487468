"""Signing key rotation: `rotate-key` adds the next key, the node signs with the newest key
its roster lists, the board keeps a dropped key as an old key for a grace period."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from federation.board import ROTATION_GRACE_MS, replace_entry
from federation.keystore import KeystoreError, NodeKeys, rotate_key_file
from federation.roster import NodeEntry, Revocation
from protocol.canonical import parse_json
from protocol.encoding import b64u
from tests.federation.boards import node_entry
from tests.federation.helpers import (
    TEST_TYPE,
    Recorder,
    counts,
    envelope,
    outbox_rows,
    put_batch,
    send,
)
from tests.federation.network import Network, NodeHandle

NetworkFactory = Callable[..., Awaitable[Network]]


def _key_id(env: bytes) -> str:
    return str(parse_json(env)["sig"]["key_id"])  # type: ignore[index]


def _listed(keys: NodeKeys, *versions: int) -> dict[str, str]:
    all_keys = keys.signing_keys()
    return {f"ed25519:{v}": b64u(bytes(all_keys[v].verify_key)) for v in versions}


def test_signer_is_the_newest_key_the_roster_lists() -> None:
    keys = NodeKeys.generate().rotated().rotated()  # versions 1, 2, 3
    assert keys.signer(_listed(keys, 1))[0] == 1
    assert keys.signer(_listed(keys, 1, 2))[0] == 2
    assert keys.signer(_listed(keys, 1, 2, 3))[0] == 3
    assert keys.signer(None)[0] == 3  # not listed yet: the newest
    # A listed key id whose public key is not this file's is never chosen.
    other = NodeKeys.generate().rotated()
    assert keys.signer({**_listed(keys, 1), "ed25519:2": b64u(other.verify_key_bytes)})[0] == 1


def test_rotate_key_file_keeps_the_old_keys(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    first = NodeKeys.generate()
    first.save(path, "correct horse")
    rotated = rotate_key_file(path, "correct horse")
    again = NodeKeys.load(path, "correct horse")
    assert (rotated.key_version, again.key_version) == (2, 2)
    assert again.verify_key_bytes == rotated.verify_key_bytes != first.verify_key_bytes
    assert bytes(again.old_signing_keys[1]) == bytes(first.signing_key)
    assert again.enc_public_bytes == first.enc_public_bytes  # sealing keys do not rotate


def test_rotate_key_file_with_a_wrong_passphrase_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    NodeKeys.generate().save(path, "correct horse")
    before = path.read_bytes()
    with pytest.raises(KeystoreError) as err:
        rotate_key_file(path, "wrong")
    assert err.value.code == "wrong_passphrase"
    assert path.read_bytes() == before


def test_replace_entry_keeps_dropped_keys_as_old_for_the_grace(tmp_path: Path) -> None:
    from tests.federation.boards import TestBoard

    board = TestBoard.make()
    keys = NodeKeys.generate()
    prev = node_entry("agency-a", keys)
    gone = NodeKeys.generate()
    stolen = b64u(gone.verify_key_bytes)
    draft = board.roster(1, nodes=[prev], now=1_000, revoked=[
        Revocation(key=stolen, revoked_ts=1_000, reason="lost laptop")])
    rotated = keys.rotated()
    new = NodeEntry.model_validate(replace_entry(draft, prev, node_entry("agency-a", rotated)
                                                 .model_copy(update={"old_sign_keys": {}}),
                                                 now_ms=5_000))
    assert set(new.sign_keys) == {"ed25519:2"}
    assert {k: (v.key, v.valid_until) for k, v in new.old_sign_keys.items()} == {
        "ed25519:1": (b64u(keys.verify_key_bytes), 5_000 + ROTATION_GRACE_MS)}
    # A revoked key that the new info drops is not kept.
    prev2 = NodeEntry.model_validate({**prev.model_dump(mode="json"), "sign_keys": {
        "ed25519:1": {"key": stolen, "valid_until": None}}})
    new2 = NodeEntry.model_validate(replace_entry(draft, prev2, new, now_ms=6_000))
    assert "ed25519:1" not in new2.sign_keys
    assert stolen not in {v.key for v in new2.old_sign_keys.values()}


async def _restart_with(node: NodeHandle, keys: NodeKeys) -> None:
    await node.stop()
    node.keys = keys
    await node.start()


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_rotation_end_to_end_with_nothing_refused(network: NetworkFactory, db: str) -> None:
    net = await network(3, db=db)
    rec = Recorder()
    for node in net.nodes:
        node.on(TEST_TYPE, rec)
    a, b, c = net.nodes
    old = a.keys
    await _restart_with(a, old.rotated())  # `rotate-key`, then a restart loads the new key

    # The roster still lists only ed25519:1: a keeps signing with it.
    m1 = await send(a, b.node_id)
    await net.settle()
    assert m1 in rec.seen

    # A message queued before the board publishes the new key, sent after.
    a.fed.run_worker = False
    m2 = await send(a, b.node_id)
    [row2] = [r for r in await outbox_rows(a) if r.msg_id == m2]
    assert _key_id(row2.envelope) == "ed25519:1"

    now = net.clock.now_ms()
    prev = net.roster.roster.node(a.node_id)
    assert prev is not None
    entry = replace_entry(net.roster.roster, prev, node_entry(
        a.node_id, a.keys, prev.endpoint).model_copy(update={"old_sign_keys": {}}), now)
    nodes = [entry if n.node_id == a.node_id else n.model_dump(mode="json")
             for n in net.roster.roster.nodes]
    v2 = net.board.sign(net.board.next(net.roster, now=now, nodes=nodes))
    await net.publish(v2)
    await net.settle()
    assert m2 in rec.seen  # signed by the now-old key before it was retired: still valid

    m3 = await send(a, b.node_id)
    [row3] = [r for r in await outbox_rows(a) if r.msg_id == m3]
    assert _key_id(row3.envelope) == "ed25519:2"  # switched with the roster
    await net.settle()
    assert m3 in rec.seen
    assert all(r.state == "done" for r in await outbox_rows(a, TEST_TYPE.value))

    # Past the grace, the old key signs nothing more: refused, nothing stored.
    net.clock.advance(ROTATION_GRACE_MS + 1)
    late = envelope(net, a, b, keys=NodeKeys(old.signing_key, 1, old.enc_key))
    before = {s.node_id: await counts(s) for s in net.servers()}
    status, body = await put_batch(c, b.url, b.node_id, [late])
    assert status == 200
    assert [(r["status"], r["code"]) for r in body["results"]] == [("refused", "unknown_key")]
    assert {s.node_id: await counts(s) for s in net.servers()} == before
