"""Verifying the node's audit log (`node.core.audit`): the chain, the signed head, the hub anchor.

`verify` walks the chain in `seq` order and names the first problem with a stable code and
the entry it concerns:

- `missing`: a gap in `seq` (a deleted entry), or a signed head naming an entry past the
  end of the log (entries cut from the end, the head row rewritten to match);
- `altered`: a row whose bytes no longer hash to its stored `hash` (an edited or moved row);
- `broken_link`: a row whose `prev_hash` is not the previous row's `hash` (an edited row
  whose `hash` was recomputed, or rows swapped wholesale);
- `head_mismatch`: the head row does not name the last entry;
- `unsigned_head`: the head carries no signature (someone cleared it: the node signs on
  start, so a log with entries always has one);
- `signed_entry_changed`: the entry the signed head names has another hash now (the chain
  was recomputed after an edit, a deletion or a reordering);
- `bad_signature`: the signature does not verify under the node's keys;
- `stale_signature`: entries past the signed one are older than the signing interval plus
  `STALE_GRACE_MS` (the node signs as the head moves, so an old unsigned tail means the
  signer was bypassed; cutting a tail that young is what the hub anchor is for).

What an attacker who can write the database but lacks the key can do is thus limited to
the last few seconds of unsigned entries. Someone holding the key (an admin with the
passphrase) can re-sign any head they like, so `check_anchor` compares the log with the
signed head the hub holds for this node (`node.web.audit_anchor`): `behind_anchor` (the log
ends before the anchored entry: it was cut back) and `anchor_mismatch` (the anchored entry
has another hash: history was rewritten).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import nacl.signing
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.keystore import NodeKeys
from node.core.audit import entry_bytes
from node.core.db import GENESIS_HASH, AuditEntry, AuditHead, table_of
from protocol.audit_head import verify_head
from protocol.encoding import sha256_b64u, unb64u
from protocol.errors import ProtocolError

__all__ = ["SIGNER_PASSES", "STALE_GRACE_MS", "AuditReport", "SignerPasses", "check_anchor",
           "verify"]

STALE_GRACE_MS = 60_000
_BATCH = 1000
_entries = table_of(AuditEntry)
_head = table_of(AuditHead)


@dataclass
class SignerPasses:
    """When the running node's head signer last ran (app clock), for the API's verify: an
    entry written well before a signing pass that is still unsigned is stale, whatever
    the wall clock says (tests move a fake clock by days between passes)."""

    last_ms: int | None = None


SIGNER_PASSES = web.AppKey("peernet_audit_signer_passes", SignerPasses)


@dataclass(frozen=True)
class AuditReport:
    ok: bool
    entries: int
    head_seq: int
    signed_seq: int | None
    first_broken: int | None = None
    problem: str | None = None
    message: str = "audit log intact"

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "entries": self.entries, "head_seq": self.head_seq,
            "signed_seq": self.signed_seq, "first_broken": self.first_broken,
            "problem": self.problem, "message": self.message,
        }


def _verify_key_for(keys: NodeKeys, key_id: str | None) -> nacl.signing.VerifyKey | None:
    for version, sk in keys.signing_keys().items():
        if key_id == f"ed25519:{version}":
            return sk.verify_key
    return None


async def verify(conn: AsyncConnection, keys: NodeKeys | None, node_id: str, *,
                 now_ms: int, sign_interval_ms: int) -> AuditReport:
    """Walk the whole chain and check the signed head; the first problem (module docstring)."""
    head = (await conn.execute(select(_head).where(_head.c.id == 1))).one()
    signed_hash_at: str | None = None
    first_unsigned: tuple[int, int] | None = None  # (seq, ts) of the first entry past it
    prev_seq, prev_hash, count, last = 0, GENESIS_HASH, 0, 0

    def broken(seq: int, problem: str, message: str) -> AuditReport:
        return AuditReport(False, count, head.seq, head.signed_seq, seq, problem, message)

    while True:
        rows = (await conn.execute(
            select(_entries).where(_entries.c.seq > last).order_by(_entries.c.seq).limit(_BATCH)
        )).mappings().all()
        if not rows:
            break
        for row in rows:
            seq = row["seq"]
            if seq != prev_seq + 1:
                return broken(prev_seq + 1, "missing", f"entry {prev_seq + 1} is missing")
            if sha256_b64u(entry_bytes(row)) != row["hash"]:
                return broken(seq, "altered", f"entry {seq} was altered")
            if row["prev_hash"] != prev_hash:
                return broken(seq, "broken_link",
                              f"entry {seq} does not follow entry {seq - 1}")
            if seq == head.signed_seq:
                signed_hash_at = row["hash"]
            elif first_unsigned is None and head.signed_seq is not None and seq > head.signed_seq:
                first_unsigned = (seq, row["ts"])
            prev_seq, prev_hash, last = seq, row["hash"], seq
            count += 1
    if head.seq != prev_seq or head.hash != prev_hash:
        first = min(head.seq, prev_seq) + 1
        return broken(first, "head_mismatch",
                      f"the head names entry {head.seq} but the log ends at entry {prev_seq}")
    signed = head.signed_seq
    if signed is None or head.signature is None or head.signed_hash is None:
        return broken(head.seq, "unsigned_head", "the audit head carries no signature")
    if signed > prev_seq:
        return broken(prev_seq + 1, "missing", f"the signed head names entry {signed} but "
                      f"the log ends at entry {prev_seq}: entries were cut from the end")
    if (signed_hash_at if signed else GENESIS_HASH) != head.signed_hash:
        return broken(signed, "signed_entry_changed",
                      f"the signed head names entry {signed}, which changed")
    vk = _verify_key_for(keys, head.key_id) if keys is not None else None
    valid = False
    if vk is not None:
        try:
            verify_head(bytes(vk), node_id, signed, head.signed_hash, head.signed_at or 0,
                        unb64u(head.signature))
            valid = True
        except ProtocolError:
            pass
    if not valid:
        return broken(signed, "bad_signature",
                      "the signed audit head does not verify under the node key")
    if first_unsigned is not None and first_unsigned[1] < now_ms - sign_interval_ms \
            - STALE_GRACE_MS:
        return broken(first_unsigned[0], "stale_signature",
                      f"entries from {first_unsigned[0]} on were never signed although "
                      "they are older than the signing interval")
    return AuditReport(True, count, head.seq, signed)


async def check_anchor(conn: AsyncConnection, report: AuditReport, anchor_seq: int,
                       anchor_hash: str) -> AuditReport:
    """Compare a locally intact log with the signed head the hub anchored for this node."""
    if not report.ok:
        return report
    if report.head_seq < anchor_seq:
        return replace(report, ok=False, first_broken=report.head_seq + 1,
                       problem="behind_anchor",
                       message=f"the hub holds a signed head at entry {anchor_seq} but the "
                               f"log ends at entry {report.head_seq}: entries were cut")
    held = (await conn.execute(
        select(_entries.c.hash).where(_entries.c.seq == anchor_seq)
    )).scalar_one_or_none()
    if held != anchor_hash:
        return replace(report, ok=False, first_broken=anchor_seq, problem="anchor_mismatch",
                       message=f"entry {anchor_seq} differs from the head the hub anchored: "
                               "the log was rewritten")
    return report
