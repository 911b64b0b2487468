"""`peernet node detach`: leave the network, keep everything, keep working alone.

What it does, in one write transaction after writing the leave request file:

1. the leave request (`protocol.leave_request`), signed with the key the stored roster
   lists for this node, goes to `--out` (default `<data_dir>/leave-request.json`): the
   agency hands it to the board, which runs `peernet board accept-leave` (the node removed
   from the next roster and its signing keys revoked, "left the network") and signs the next
   version as for any roster change. A file and not a network message: the roster is
   governed offline by the board's key holders, from files (joining is a public info file
   handed to the board), and the board has no server a message could reach;
2. the node records that it left (settings row `ops.detached`: when, the roster version,
   the request's SHA-256) and an audit entry `node.detach`;
3. messages still queued for peers are marked `failed` with code `detached` (kept, not
   deleted: the outbox shows what never went).

From then on the running node (`node.ops.feature`) starts without the federation: no
outbox worker, no roster fetches, no audit anchors, no monthly releases (the release pass
finds no roster), nothing sent and federation requests refused with `detached`; local pages
and the API work as before and every record stays. A second detach is refused
(`already_detached`) and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from federation.clock import Clock
from federation.keystore import NodeKeys
from federation.roster_sync import RosterStore
from federation.store import OutboxState, outbox
from node.core import audit
from node.core.config import NodeSettings
from node.core.db import Database, Setting, table_of
from node.ops.errors import OpsError
from protocol.leave_request import build_leave_request

__all__ = ["DETACHED_KEY", "DetachResult", "detach_node", "detached_info"]

DETACHED_KEY = "ops.detached"
_settings = table_of(Setting)


@dataclass(frozen=True)
class DetachResult:
    request_path: Path
    roster_version: int
    dropped: int


async def detached_info(db: Database) -> dict[str, Any] | None:
    """What `detach` recorded, or None for a node still in the network."""
    async with db.read() as conn:
        value = (await conn.execute(select(_settings.c.value).where(
            _settings.c.key == DETACHED_KEY))).scalar_one_or_none()
    if value is None:
        return None
    info: dict[str, Any] = json.loads(value)
    return info


def _refuse_existing(path: Path) -> None:
    if os.path.lexists(path):
        raise OpsError("out_exists", f"{path} exists: choose another --out")


def _write_new(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


async def detach_node(db: Database, settings: NodeSettings, keys: NodeKeys, clock: Clock, *,
                      out: Path | None, reason: str) -> DetachResult:
    if await detached_info(db) is not None:
        raise OpsError("already_detached", "this node already left the network (its leave "
                       "request was written then); nothing was changed")
    path = out or settings.data_dir / "leave-request.json"
    _refuse_existing(path)
    roster = RosterStore(db.engine, clock, None)
    await roster.load()
    state = roster.state
    version = state.version if state.current is not None else 0
    listed = state.sign_keys_of(settings.node_id) if state.current is not None else None
    key_version, key = keys.signer(listed)
    now = clock.now_ms()
    doc = build_leave_request(key, key_version, node_id=settings.node_id, name=settings.name,
                              roster_version=version, ts=now, reason=reason)
    data = (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("utf-8")
    _write_new(path, data)
    info = {"ts": now, "roster_version": version,
            "request_sha256": hashlib.sha256(data).hexdigest()}
    try:
        async with db.write() as conn:
            dropped = (await conn.execute(
                update(outbox).where(outbox.c.state == OutboxState.PENDING)
                .values(state=OutboxState.FAILED, failed_code="detached",
                        last_error="the node left the network")
            )).rowcount
            await conn.execute(insert(_settings).values(
                key=DETACHED_KEY, value=json.dumps(info, sort_keys=True), updated_at=now))
            await audit.append(conn, ts=now, action="node.detach", target_type="roster",
                               target_id=str(version), detail={"dropped": int(dropped)})
            await audit.sign_head(conn, keys, settings.node_id, now)
    except BaseException:
        path.unlink(missing_ok=True)  # not detached: no request file left to hand over
        raise
    return DetachResult(path, version, int(dropped))
