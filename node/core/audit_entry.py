"""One audit entry's row and its place in the hash chain (`node.core.audit` describes the
chain): shared by the single append, the SQLite fast writer, the PostgreSQL group commit
(`node.core.audit_pg`) and the verifier, so all of them hash exactly the same bytes."""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Pool

from node.core.access import Principal
from protocol.canonical import canonical_bytes
from protocol.encoding import sha256_b64u

__all__ = ["LAST_HEADS", "entry_bytes", "entry_row", "link_entry"]

# The head (seq, hash) this process wrote last, per connection pool: the writers that chain
# on it without reading the head row first prove it with a guarded update (SQLite: the
# fast writer and `append`; PostgreSQL: the group commit, which `append` keeps informed).
LAST_HEADS: weakref.WeakKeyDictionary[Pool, tuple[int, str]] = weakref.WeakKeyDictionary()


def entry_bytes(row: Mapping[Any, Any]) -> bytes:
    return canonical_bytes({
        "seq": row["seq"], "ts": row["ts"], "actor": row["actor"], "role": row["role"],
        "action": row["action"], "target_type": row["target_type"],
        "target_id": row["target_id"], "outcome": row["outcome"], "detail": row["detail"],
        "prev": row["prev_hash"],
    })


def entry_row(ts: int, action: str, actor: Principal | None = None,
              target_type: str | None = None, target_id: str | uuid.UUID | None = None,
              outcome: str = "ok", detail: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The entry's row before it is linked (`link_entry` sets seq, prev_hash and hash)."""
    return {
        "seq": 0,
        "ts": ts,
        "actor": actor.actor if actor else None,
        "role": actor.role.value if actor else None,
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id) if target_id is not None else None,
        "outcome": outcome,
        "detail": canonical_bytes(dict(detail)).decode("utf-8") if detail else "{}",
        "prev_hash": "",
    }


def link_entry(row: dict[str, Any], seq: int, prev_hash: str) -> None:
    """Make `row` the entry after (`seq`, `prev_hash`)."""
    row["seq"] = seq + 1
    row["prev_hash"] = prev_hash
    row["hash"] = sha256_b64u(entry_bytes(row))
