"""The node API's stale-signature rule (`GET /api/v1/audit/verify`, `node.core.audit_verify`):
an entry is stale when it is still unsigned although the node's head signer has run since
it was written (`SignerPasses`, app clock, plus `STALE_GRACE_MS`), not merely because the
clock moved on.

Each test starts a real node server (SQLite and PostgreSQL). The signing interval is set
to an hour so the only signer pass inside the test is the one the app runs on start: the
periodic pass would re-sign any tail within seconds and close the window being checked."""

from __future__ import annotations

from sqlalchemy import select

from bench.reliability_report import record
from node.core import audit
from node.core.audit_verify import SIGNER_PASSES, STALE_GRACE_MS
from node.core.db import AuditHead, table_of
from tests.node.conftest import START_MS, MakeNode, Node

_head = table_of(AuditHead)
_DAY_MS = 86_400_000


async def _head_row(node: Node) -> tuple[int, int | None]:
    async with node.ctx.db.read() as conn:
        row = (await conn.execute(select(_head.c.seq, _head.c.signed_seq))).one()
    return int(row.seq), row.signed_seq


async def test_a_tail_unsigned_although_the_signer_ran_since_is_stale(
    make_node: MakeNode,
) -> None:
    """Someone who can write the database appends an entry dated before the signer's last
    pass (a backdated `user.create`) after the head was signed: a working signer would
    have signed it, so it was put there behind the signer's back."""
    node = await make_node(audit_sign_interval_s=3600)
    assert node.client.app[SIGNER_PASSES].last_ms == START_MS  # the pass on start
    async with node.ctx.db.write() as conn:  # as a CLI command with the passphrase does
        assert await audit.sign_head(conn, node.keys, node.settings.node_id, START_MS)
    status, before = await node.get("audit", "/api/v1/audit/verify")
    assert status == 200 and before["ok"], before
    seq, signed = await _head_row(node)
    async with node.ctx.db.write() as conn:
        await audit.append(conn, ts=START_MS - STALE_GRACE_MS - 60_000, action="user.create")
    status, body = await node.get("audit", "/api/v1/audit/verify")
    assert status == 200, body
    assert (body["ok"], body["problem"]) == (False, "stale_signature"), body
    assert body["first_broken"] == (signed or 0) + 1 and body["head_seq"] == seq + 1, body
    assert "never signed" in body["message"]
    record("security-audit-stale-signature-api", area="security",
           case="the node API's audit verify names a tail left unsigned behind the signer",
           how="real node server; an entry appended by SQL, dated before the signer's last "
               "pass, then GET /api/v1/audit/verify as the auditor",
           result="ok false, stale_signature at the first unsigned entry; a fresh "
                  "unsigned tail days later (signer not run since) is not a failure")


async def test_a_fresh_unsigned_tail_is_not_a_failure_days_later(make_node: MakeNode) -> None:
    """The seeded users' entries were written after the signer's last pass: days on the
    (fake) clock do not make them stale, because the signer has not run since."""
    node = await make_node(audit_sign_interval_s=3600)
    seq, signed = await _head_row(node)
    assert signed is not None and signed < seq  # a real unsigned tail
    node.clock.advance(3 * _DAY_MS)
    status, body = await node.get("audit", "/api/v1/audit/verify")
    assert status == 200, body
    assert body["ok"] and body["problem"] is None, body
    assert (body["head_seq"], body["signed_seq"]) == (seq, signed), body
