"""The pieces of `peernet node audit verify` and of head signing by CLI commands.

`verify_all` runs the local checks (`node.core.audit_verify.verify`) and then, unless offline,
compares the log with the signed head the hub anchored (`node.web.audit_anchor.fetch_anchor`,
`node.core.audit_verify.check_anchor`). A hub that cannot be asked is a failure: without the
anchor, a log cut back to an older (even validly re-signed) head looks intact; `--offline`
checks the local log only and says so.

`sign_moved_head`: CLI commands append entries (users, tokens, purges) while the server may
not be running; they sign the head afterwards when the passphrase is at hand
(`PEERNET_PASSPHRASE`), so an honest command does not leave a stale unsigned tail.
"""

from __future__ import annotations

from dataclasses import dataclass

from federation.clock import Clock
from federation.keystore import KeystoreError, NodeKeys
from node.core import audit
from node.core.audit_verify import AuditReport, check_anchor, verify
from node.core.config import NodeSettings
from node.core.db import Database
from node.ops.restore_point import restore_point
from node.web.audit_anchor import AnchorUnavailable, fetch_anchor

__all__ = ["VerifyOutcome", "sign_moved_head", "verify_all"]


@dataclass(frozen=True)
class VerifyOutcome:
    report: AuditReport
    anchor_note: str
    unavailable: str | None = None  # why the hub's anchor could not be read


async def verify_all(db: Database, settings: NodeSettings, keys: NodeKeys, clock: Clock, *,
                     offline: bool) -> VerifyOutcome:
    async with db.read() as conn:
        report = await verify(conn, keys, settings.node_id, now_ms=clock.now_ms(),
                              sign_interval_ms=settings.audit_sign_interval_s * 1000)
    if offline:
        return VerifyOutcome(report, "offline: the hub's anchor was not checked, so "
                                     "truncation cannot be checked (a log cut back to an "
                                     "older signed head would look intact)")
    try:
        anchor = await fetch_anchor(engine=db.engine, clock=clock, keys=keys,
                                    node_id=settings.node_id, hub_url=settings.hub_url)
    except AnchorUnavailable as exc:
        return VerifyOutcome(report, "", unavailable=str(exc))
    if anchor is None:
        return VerifyOutcome(report, "the hub holds no anchor for this node yet, so "
                                     "truncation cannot be checked")
    async with db.read() as conn:
        checked = await check_anchor(conn, report, anchor.seq, anchor.hash)
        if checked.problem in ("behind_anchor", "anchor_mismatch"):
            # An anchor from before a recorded restore (node.ops.restore_point).
            point = await restore_point(conn, anchor.seq, anchor.signed_at)
            if point is not None:
                return VerifyOutcome(report, point)
    return VerifyOutcome(checked, f"hub anchor at entry {anchor.seq} matches")


async def sign_moved_head(db: Database, settings: NodeSettings, keys: NodeKeys | None,
                          now_ms: int) -> bool:
    """Sign the head if it moved and a key is at hand; True when it signed."""
    async with db.read() as conn:
        if not await audit.head_moved(conn):
            return False
    if keys is None:
        if settings.passphrase is None or not settings.key_path.exists():
            return False
        try:
            keys = NodeKeys.load(settings.key_path, settings.passphrase.get_secret_value())
        except KeystoreError:
            return False  # the command itself did not need the key; verify will tell
    async with db.write() as conn:
        return await audit.sign_head(conn, keys, settings.node_id, now_ms)
