"""Started OpenID Connect sign-in flows, kept in the server's own database so that every
process of a server (several behind one address, over one database) can finish a flow
another started, and a restart loses none (`federation.webkit.oidc` uses it).

A row per started flow, and only what finishing it needs:
- `id`: SHA-256 of the flow id (base64url). The flow id itself (32 random bytes) lives only
  in the browser's cookie; a database reader learns no cookie value from the table.
- `sealed`: `state`, `nonce`, PKCE verifier and redirect URI as JSON in a NaCl `SecretBox`
  whose key is HMAC-SHA256(seal root, flow id). The seal root is derived from the server's
  signing key seed (`flow_seal_root`, the way `federation.webkit.csrf.login_secret` derives
  the login form's key): the same in every process of the server, never stored. Why seal:
  the verifier and nonce are the flow's secrets; with them, whoever holds a victim's
  authorization code (a leaky referrer or log at the provider) could redeem it. Sealed,
  a database reader (a backup, a read replica, a reporting account) alone can neither read
  nor use them: opening needs the raw flow id, which is never stored, and the key file. A
  row moved to another id does not open (its key belongs to its own flow id). A key
  rotation voids the flows in progress at the next restart (the user starts again).
- `created` (seconds): for the `FLOW_TTL_S` expiry and for dropping the oldest.

Single use across processes: `take` is one `DELETE ... WHERE id = ? AND created >= ?
RETURNING sealed` (PostgreSQL; SQLite >= 3.35). Two processes taking the same flow at
once: one statement deletes the row and gets it, the other deletes nothing (on PostgreSQL
it waits for the first's row lock, then finds the row gone), so a replayed or doubled
callback is refused (`oidc_state`) whichever process it reaches.

Bounded: every start, in its one write transaction, deletes the expired rows (by the index
on `created`: the work is proportional to what expired) and then, past `cap` rows
(`MAX_PENDING`), the oldest ones (ties in the same second in id order, i.e. at random).
Why drop the oldest rather than refuse new starts: a flood of starts then costs the
attacker's own flows and the oldest pending ones, while a person who starts (again) is
always served; refusing would shut every sign-in for the whole `FLOW_TTL_S`. It is the
behaviour the in-memory store had. Concurrent starts in several processes may each trim,
so the table can briefly hold `cap` plus the starts in flight, never more.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

import nacl.exceptions
import nacl.secret
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
)

from federation.database import Database
from protocol.encoding import sha256_b64u

__all__ = ["FLOW_TTL_S", "MAX_PENDING", "Pending", "PendingFlows", "flow_seal_root",
           "pending_flows_table"]

FLOW_TTL_S = 600
MAX_PENDING = 10_000
FLOW_ID_MAX = 100  # a cookie longer than any flow id we issue is no flow id


@dataclass(frozen=True)
class Pending:
    """One started flow, as `federation.webkit.oidc` needs it back."""

    state: str
    nonce: str
    verifier: str
    redirect_uri: str
    created_s: int


def pending_flows_table(metadata: MetaData, name: str) -> Table:
    """The pending-flow table on a server's metadata (node: `oidc_pending_flows`, hub:
    `hub_oidc_pending_flows`); each server's migration carries the same schema inline."""
    table = Table(
        name, metadata,
        Column("id", String(43), primary_key=True),
        Column("sealed", LargeBinary, nullable=False),
        Column("created", BigInteger, nullable=False),
    )
    Index(f"ix_{name}_created", table.c.created)
    return table


def flow_seal_root(signing_seed: bytes) -> bytes:
    """The root of the flows' sealing keys, from the server's signing key seed: the same in
    every process of the server, changed only by a key rotation."""
    return hmac.new(signing_seed, b"peernet/v1/oidc-flow-seal", hashlib.sha256).digest()


class PendingFlows:
    """Started flows in `table` of `db`, sealed under `seal_root` (module docstring)."""

    def __init__(self, db: Database, table: Table, seal_root: bytes, *,
                 ttl_s: int = FLOW_TTL_S, cap: int = MAX_PENDING) -> None:
        self.db = db
        self.table = table
        self.ttl_s = ttl_s
        self.cap = cap
        self._root = seal_root

    def _box(self, flow_id: str) -> nacl.secret.SecretBox:
        key = hmac.new(self._root, b"flow:" + flow_id.encode("ascii"), hashlib.sha256)
        return nacl.secret.SecretBox(key.digest())

    async def add(self, flow_id: str, pending: Pending) -> None:
        plain = json.dumps({"s": pending.state, "n": pending.nonce, "v": pending.verifier,
                            "r": pending.redirect_uri}, separators=(",", ":")).encode()
        t = self.table
        async with self.db.write() as conn:
            await conn.execute(delete(t).where(t.c.created < pending.created_s - self.ttl_s))
            await conn.execute(insert(t), [{
                "id": sha256_b64u(flow_id.encode("ascii")), "created": pending.created_s,
                "sealed": bytes(self._box(flow_id).encrypt(plain))}])
            beyond = (select(t.c.id).order_by(t.c.created.desc(), t.c.id.desc())
                      .offset(self.cap))
            await conn.execute(delete(t).where(t.c.id.in_(beyond)))

    async def take(self, flow_id: str, now_s: int) -> Pending | None:
        """The flow under `flow_id`, removed (single use); None when there is none, it
        expired, or it does not open (another key)."""
        if not flow_id or len(flow_id) > FLOW_ID_MAX or not flow_id.isascii():
            return None
        t = self.table
        async with self.db.write() as conn:
            row = (await conn.execute(
                delete(t).where(t.c.id == sha256_b64u(flow_id.encode("ascii")),
                                t.c.created >= now_s - self.ttl_s)
                .returning(t.c.sealed, t.c.created))).first()
        if row is None:
            return None
        try:
            data = json.loads(self._box(flow_id).decrypt(bytes(row.sealed)))
        except (nacl.exceptions.CryptoError, ValueError):
            return None
        return Pending(data["s"], data["n"], data["v"], data["r"], int(row.created))
