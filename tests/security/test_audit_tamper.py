"""Issue 13 item 1: `peernet node audit verify` against someone who can write the node
database, including an admin who holds the key passphrase.

A real hub and a real node (`make_network`, SQLite and PostgreSQL) exchange a real
`audit_anchor`; the node's key files and config are written as `node init` writes them, and
every check runs the real CLI (`peernet node audit verify`) on the real node database after
the database was tampered with by plain SQL."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, insert, select, text, update

from bench.reliability_report import record
from federation.clock import FakeClock
from federation.store import alarms
from hub.relay.audit_anchors import CONFLICT_KIND, anchors
from node.cli import node_group
from node.core import audit
from node.core.db import GENESIS_HASH, AuditEntry, AuditHead, table_of
from node.core.pseudonym import create_key_file
from node.web.audit_anchor import anchor_once
from protocol.audit_head import sign_head_bytes
from protocol.encoding import b64u, sha256_b64u
from protocol.ids import key_id
from protocol.messages import MessageType
from tests.federation.helpers import outbox_rows
from tests.federation.network import Network, NodeHandle, make_network

PHRASE = "a long enough passphrase"
_entries = table_of(AuditEntry)
_head = table_of(AuditHead)


@pytest.fixture
async def net(tmp_path: Path, db_url: str, request: pytest.FixtureRequest) -> Any:
    kind = "postgres" if db_url.startswith("postgresql") else "sqlite"
    pg = request.getfixturevalue("pg_admin_url") if kind == "postgres" else None
    network = await make_network(1, tmp_path=tmp_path, db=kind, pg_admin_url=pg,
                                 clock=FakeClock(int(time.time() * 1000)))
    try:
        yield network
    finally:
        await network.close()


async def _prepare(net: Network, tmp_path: Path, n: int = 40) -> tuple[NodeHandle, Path]:
    """Key files and config as `node init` writes them; `n` entries (every fifth an
    `access.refused`), the head signed and anchored at the hub."""
    node = net.nodes[0]
    assert node.settings is not None
    node.keys.save(node.settings.key_path, PHRASE)
    create_key_file(node.settings.pseudonym_key_path, PHRASE)
    cfg = tmp_path / "node.toml"
    cfg.write_text(node.settings.to_toml(), encoding="utf-8")
    for i in range(n):
        async with node.db.write() as conn:
            await audit.append(conn, ts=net.clock.now_ms(),
                               action="access.refused" if i % 5 == 2 else "encounter.create",
                               outcome="refused" if i % 5 == 2 else "ok", detail={"i": i})
    await _sign(node, net)
    assert node.app is not None
    assert await anchor_once(node.app)
    await net.settle()
    return node, cfg


async def _sign(node: NodeHandle, net: Network) -> None:
    async with node.db.write() as conn:
        await audit.sign_head(conn, node.keys, node.node_id, net.clock.now_ms())


def _cli(cfg: Path, *extra: str) -> Any:
    return CliRunner().invoke(node_group, ["audit", "verify", "--config", str(cfg), *extra],
                              env={"PEERNET_PASSPHRASE": PHRASE})


async def verify_cli(cfg: Path, *extra: str) -> tuple[int, str]:
    r = await asyncio.to_thread(_cli, cfg, *extra)
    return r.exit_code, r.output


async def _rows(node: NodeHandle) -> list[dict[str, Any]]:
    async with node.db.read() as conn:
        return [dict(r) for r in (await conn.execute(
            select(_entries).order_by(_entries.c.seq))).mappings().all()]


async def _rewrite(node: NodeHandle, rows: list[dict[str, Any]], *,
                   signed: dict[str, Any] | None = None) -> None:
    """Renumber and re-chain `rows`, replace the log with them and fix the head row."""
    prev = GENESIS_HASH
    for i, row in enumerate(rows, start=1):
        row["seq"], row["prev_hash"] = i, prev
        row["hash"] = prev = sha256_b64u(audit.entry_bytes(row))
    async with node.db.write() as conn:
        await conn.execute(delete(_entries))
        await conn.execute(insert(_entries), rows)
        await conn.execute(update(_head).values(seq=len(rows), hash=prev, **(signed or {})))


async def _head_row(node: NodeHandle) -> Any:
    async with node.db.read() as conn:
        return (await conn.execute(select(_head))).one()


async def test_intact_log_verifies_against_the_hub_anchor(net: Network, tmp_path: Path) -> None:
    node, cfg = await _prepare(net, tmp_path)
    code, out = await verify_cli(cfg)
    assert code == 0, out
    assert "audit log intact" in out and "hub anchor at entry 40 matches" in out, out


async def test_a_cut_tail_is_missing(net: Network, tmp_path: Path) -> None:
    """(a) delete the last 20 entries and update the head row."""
    node, cfg = await _prepare(net, tmp_path)
    rows = await _rows(node)
    async with node.db.write() as conn:
        await conn.execute(delete(_entries).where(_entries.c.seq > 20))
        await conn.execute(update(_head).values(seq=20, hash=rows[19]["hash"]))
    code, out = await verify_cli(cfg)
    assert code == 1 and "broken at entry 21 (missing)" in out, out


async def test_a_deleted_refusal_rechained_is_caught(net: Network, tmp_path: Path) -> None:
    """(b) delete one `access.refused` in the middle, renumber and re-chain, fix the head
    (the signed seq and hash too, with the signature left as it was)."""
    node, cfg = await _prepare(net, tmp_path)
    rows = [r for r in await _rows(node) if r["seq"] != 18]
    assert (await _rows(node))[17]["action"] == "access.refused"
    await _rewrite(node, rows)
    head = await _head_row(node)
    async with node.db.write() as conn:
        await conn.execute(update(_head).values(signed_seq=head.seq, signed_hash=head.hash))
    code, out = await verify_cli(cfg)
    assert code == 1 and "broken at entry 39 (bad_signature)" in out, out
    # Leaving the signed seq alone instead: it names an entry past the end of the log.
    async with node.db.write() as conn:
        await conn.execute(update(_head).values(signed_seq=40))
    code, out = await verify_cli(cfg)
    assert code == 1 and "broken at entry 40 (missing)" in out, out


async def test_an_edit_with_the_signature_cleared_is_unsigned(net: Network,
                                                               tmp_path: Path) -> None:
    """(c) edit an entry, recompute the chain, set `signed_seq` to NULL: no key needed."""
    node, cfg = await _prepare(net, tmp_path)
    rows = await _rows(node)
    rows[9]["outcome"] = "ok"
    await _rewrite(node, rows, signed={"signed_seq": None})
    code, out = await verify_cli(cfg)
    assert code == 1 and "(unsigned_head)" in out, out
    assert "intact" not in out


async def test_admin_with_the_passphrase_cutting_back_is_caught_by_the_anchor(
    net: Network, tmp_path: Path
) -> None:
    """(d) the log is cut back to entry 20 and the head re-signed with the real key: the
    local checks pass, the hub's anchor does not."""
    node, cfg = await _prepare(net, tmp_path)
    rows = await _rows(node)
    async with node.db.write() as conn:
        await conn.execute(delete(_entries).where(_entries.c.seq > 20))
        await conn.execute(update(_head).values(seq=20, hash=rows[19]["hash"]))
    await _sign(node, net)
    code, out = await verify_cli(cfg, "--offline")
    assert code == 0 and "truncation cannot be checked" in out, out
    code, out = await verify_cli(cfg)
    assert code == 1 and "broken at entry 21 (behind_anchor)" in out, out
    # Re-written past the anchored entry and re-signed: the anchored entry differs.
    rows = [dict(r) for r in rows[:20]] + [dict(r, detail='{"i":99}') for r in rows[20:]]
    rows += [dict(r) for r in rows[:5]]
    await _rewrite(node, rows)
    await _sign(node, net)
    code, out = await verify_cli(cfg)
    assert code == 1 and "broken at entry 40 (anchor_mismatch)" in out, out
    record("security-audit-tamper", area="security",
           case="audit log tampering through the database is detected by `audit verify`",
           how="real hub and node, real CLI; (a) tail cut and head row fixed, (b) a refusal "
               "deleted and the chain renumbered and re-chained, (c) an edit re-chained and "
               "the signature cleared, (d) cut back and re-signed with the real key",
           result="missing, bad_signature/missing, unsigned_head, behind_anchor and "
                  "anchor_mismatch named with the entry; --offline says truncation is "
                  "not checked")


async def test_unreachable_hub_fails_unless_offline(net: Network, tmp_path: Path) -> None:
    node, cfg = await _prepare(net, tmp_path)
    await net.hub.stop()
    code, out = await verify_cli(cfg)
    assert code == 1 and "could not be checked" in out and "--offline" in out, out
    assert len(out.strip().splitlines()) == 1
    code, out = await verify_cli(cfg, "--offline")
    assert code == 0 and "offline" in out, out


async def test_a_stale_unsigned_tail_fails(net: Network, tmp_path: Path) -> None:
    node, cfg = await _prepare(net, tmp_path, n=5)
    assert node.settings is not None
    old = net.clock.now_ms() - node.settings.audit_sign_interval_s * 1000 - 120_000
    async with node.db.write() as conn:  # an entry the signer never saw, long ago
        await audit.append(conn, ts=old, action="user.create")
    code, out = await verify_cli(cfg)
    assert code == 1 and "broken at entry 6 (stale_signature)" in out, out


async def _anchor_state(net: Network) -> tuple[list[Any], int]:
    async with net.hub.db.read() as conn:
        held = list((await conn.execute(select(anchors))).all())
        n_alarms = (await conn.execute(
            select(text("count(*)")).select_from(alarms))).scalar_one()
    return held, int(n_alarms)


async def _send_anchor(net: Network, node: NodeHandle, seq: int, hash_: str,
                       key: Any = None) -> str:
    signed_at = net.clock.now_ms()
    sig = sign_head_bytes(key or node.keys.signing_key, node.node_id, seq, hash_, signed_at)
    body = {"seq": seq, "hash": hash_, "signed_at": signed_at,
            "sig": {"key_id": key_id(1), "value": b64u(sig)}}
    async with node.db.write() as conn:
        msg_id = await node.fed.send(conn, net.hub.node_id, MessageType.AUDIT_ANCHOR, body)
    await net.settle()
    return msg_id


async def test_hub_ignores_a_late_older_anchor(net: Network, tmp_path: Path) -> None:
    """Anchors travel through the outbox and may arrive out of order (retries, a restart):
    a validly signed lower anchor is accepted (no business refusal for the chaos checker)
    and ignored; the held, higher anchor stays and no alarm is raised. On the code before,
    it failed with `bad_body`."""
    node, cfg = await _prepare(net, tmp_path)
    rows = await _rows(node)
    before = await _anchor_state(net)
    assert [(r.seq, r.hash) for r in before[0]] == [(40, rows[39]["hash"])]
    msg_id = await _send_anchor(net, node, 20, rows[19]["hash"])
    sent = {r.msg_id: r for r in await outbox_rows(node, MessageType.AUDIT_ANCHOR.value)}
    assert sent[msg_id].state == "done" and sent[msg_id].failed_code is None, sent[msg_id]
    assert await _anchor_state(net) == before  # anchor unchanged, no alarm
    # The cut-back log is still caught by the held, higher anchor.
    async with node.db.write() as conn:
        await conn.execute(delete(_entries).where(_entries.c.seq > 20))
        await conn.execute(update(_head).values(seq=20, hash=rows[19]["hash"]))
    await _sign(node, net)
    code, out = await verify_cli(cfg)
    assert code == 1 and "broken at entry 21 (behind_anchor)" in out, out
    record("security-audit-anchor-late-older", area="security",
           case="a late, older audit anchor neither moves the hub's anchor back nor counts "
                "as a refusal",
           how="a node sends a validly signed anchor for entry 20 after the hub holds 40, "
               "through the real outbox; then the log is cut back to 20 and re-signed",
           result="accepted and ignored: the stored anchor stays at 40, no alarm; verify "
                  "names behind_anchor at entry 21")


async def test_hub_refuses_a_forged_anchor(net: Network, tmp_path: Path) -> None:
    from nacl.signing import SigningKey

    node, _cfg = await _prepare(net, tmp_path)
    rows = await _rows(node)
    before = await _anchor_state(net)
    forged = [await _send_anchor(net, node, 41, rows[39]["hash"], key=SigningKey.generate()),
              await _send_anchor(net, node, 20, rows[19]["hash"], key=SigningKey.generate())]
    sent = {r.msg_id: r for r in await outbox_rows(node, MessageType.AUDIT_ANCHOR.value)}
    assert [(sent[m].state, sent[m].failed_code) for m in forged] == \
        [("failed", "bad_signature")] * 2
    assert await _anchor_state(net) == before  # nothing stored changed
    # The held seq with another hash: accepted as a message, anchor kept, alarm raised.
    await _send_anchor(net, node, 40, rows[38]["hash"])
    held, n_alarms = await _anchor_state(net)
    assert held == before[0] and n_alarms == before[1] + 1
    async with net.hub.db.read() as conn:
        kinds = [r.kind for r in (await conn.execute(select(alarms))).all()]
    assert CONFLICT_KIND in kinds
    record("security-audit-anchor-refusals", area="security",
           case="the hub never moves an audit anchor back and refuses forged ones",
           how="a node sends anchors signed by another key (higher and lower seq), and one "
               "with a different hash for the anchored entry, through the real outbox",
           result="bad_signature acks, the stored anchor unchanged; the conflict raises an "
                  "audit_anchor_conflict alarm")


async def test_anchor_route_needs_the_nodes_signature(net: Network) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http, \
            http.get(net.hub.url + "/fed/v1/audit-anchor") as resp:
        body = await resp.json()
    assert resp.status == 401 and body["error"]["code"] == "bad_request_signature"
