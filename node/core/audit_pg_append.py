"""The hashing of one audit entry inside PostgreSQL, and the append that uses it at once.

`append_entry` (what `audit.append` runs on PostgreSQL) only stages the entry's parts; the
deferred trigger of `node.core.audit_staged` links it at the transaction's commit with the
same expression as below. `append_entry_now` links it at once, in one statement, as every
append did before that (the head row lock then held to the caller's commit):

An append inside a caller's transaction (an activation, an audited read) must take the
`audit_head` row lock, and holds it until the caller commits. Taking the lock and the
previous hash, then writing the entry and the new head, used to be two statements under
the lock, then the commit: three round trips during which every other writer, and the
encounter group commit (`node.core.audit_pg`), waited. Here the database computes the
entry's hash itself, under the lock, in the statement that takes it:

    WITH old AS (SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE),
         moved AS (UPDATE audit_head SET seq = old.seq + 1,
                          hash = b64url(sha256(A || old.hash || B || (old.seq + 1) || C))
                   FROM old WHERE audit_head.id = 1
                   RETURNING audit_head.seq, audit_head.hash, old.hash AS prev)
    INSERT INTO audit_log (...) SELECT moved.seq, ..., moved.prev, moved.hash FROM moved
    RETURNING seq, prev_hash, hash

`A`, `B` and `C` are the entry's canonical bytes (`audit_entry.entry_bytes`) around its two
unknowns, `prev` and `seq`: canonical JSON sorts keys and escapes every quote inside string
values, so `"prev":""` and `,"seq":0,` occur once, as keys, in the bytes of the entry built
with those two empty. The bytes hashed are therefore exactly `entry_bytes` of the stored
row; the caller checks the returned hash against its own computation, and `verify`
recomputes every one in Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import BigInteger, LargeBinary, String, bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

from node.core.audit_entry import entry_bytes, link_entry

__all__ = ["append_entry", "append_entry_now", "hash_parts"]

_PREV = b'"prev":"'
_SEQ = b',"seq":'

_APPEND = text("""
WITH old AS (SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE),
moved AS (
  UPDATE audit_head SET seq = old.seq + 1,
    hash = rtrim(translate(encode(sha256(
      :a || convert_to(old.hash, 'UTF8') || :b || convert_to((old.seq + 1)::text, 'UTF8')
      || :c), 'base64'), '+/', '-_'), '=')
  FROM old WHERE audit_head.id = 1
  RETURNING audit_head.seq, audit_head.hash, old.hash AS prev)
INSERT INTO audit_log (seq, ts, actor, role, action, target_type, target_id, outcome, detail,
                       prev_hash, hash)
SELECT moved.seq, :ts, :actor, :role, :action, :target_type, :target_id, :outcome, :detail,
       moved.prev, moved.hash FROM moved
RETURNING seq, prev_hash, hash
""").bindparams(
    bindparam("a", type_=LargeBinary), bindparam("b", type_=LargeBinary),
    bindparam("c", type_=LargeBinary), bindparam("ts", type_=BigInteger),
    *(bindparam(k, type_=String) for k in ("actor", "role", "action", "target_type",
                                           "target_id", "outcome", "detail")),
)


def hash_parts(row: Mapping[str, Any]) -> tuple[bytes, bytes, bytes]:
    """(A, B, C): the entry's canonical bytes are A + prev + B + str(seq) + C."""
    blank = entry_bytes({**row, "prev_hash": "", "seq": 0})
    i = blank.index(_PREV + b'"') + len(_PREV)
    j = blank.index(_SEQ + b"0,", i) + len(_SEQ)
    return blank[:i], blank[i:j], blank[j + 1:]


_STAGE = text("""
INSERT INTO audit_staged (ts, actor, role, action, target_type, target_id, outcome, detail,
                          a, b, c)
VALUES (:ts, :actor, :role, :action, :target_type, :target_id, :outcome, :detail, :a, :b, :c)
""").bindparams(*_APPEND._bindparams.values())


async def append_entry(conn: AsyncConnection, row: dict[str, Any]) -> None:
    """Stage the unlinked entry `row` in `conn`'s transaction: the database links it after
    the head when the transaction commits (`node.core.audit_staged`: no head row lock until
    then); its seq and hashes are not known here (`row` keeps seq 0 and empty hashes)."""
    a, b, c = hash_parts(row)
    await conn.execute(_STAGE, {
        "a": a, "b": b, "c": c, **{k: row[k] for k in (
            "ts", "actor", "role", "action", "target_type", "target_id", "outcome", "detail")},
    })
    row["hash"] = ""


async def append_entry_now(conn: AsyncConnection, row: dict[str, Any]) -> None:
    """Link and store the unlinked entry `row` after the current head at once, in `conn`'s
    transaction (holding the head row lock to its commit); fills seq, prev_hash and hash."""
    a, b, c = hash_parts(row)
    stored = (await conn.execute(_APPEND, {
        "a": a, "b": b, "c": c, **{k: row[k] for k in (
            "ts", "actor", "role", "action", "target_type", "target_id", "outcome", "detail")},
    })).one()
    link_entry(row, stored.seq - 1, stored.prev_hash)
    if row["hash"] != stored.hash:  # the database hashed other bytes: refuse to commit it
        raise RuntimeError("audit append: the stored hash does not match the entry")
