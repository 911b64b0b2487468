"""The node's monthly release pass: due month recorded on the schedule, queued to the hub as
`aggregate_release` in the same transaction, stored bytes only, never twice."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from federation.keystore import NodeKeys
from federation.roster import Policy
from node.privacy.ledger import ledger_entries, record_release
from node.privacy.runtime import run_once
from node.privacy.schema import ReleasePolicy
from protocol.canonical import canonical_bytes
from protocol.messages import MessageType
from tests.privacy.node_records import add_encounters, make_node_db


def _ms(*a: int) -> int:
    return int(datetime(*a, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


@dataclass
class _State:
    policy: Policy = field(default_factory=Policy)

    def nodes(self) -> list[Any]:
        return []

    def sign_keys_of(self, node_id: str) -> dict[str, str] | None:
        return None  # not listed: the key file's newest key signs


@dataclass
class FakeFed:
    hub_id: str | None = "hub-north"
    sent: list[tuple[str, MessageType, bytes]] = field(default_factory=list)
    _state: _State = field(default_factory=_State)

    @property
    def state(self) -> _State:
        return self._state

    async def send(self, conn: Any, to: str, msg_type: MessageType, body: Any,
                   thread_id: str | None = None, in_reply_to: str | None = None) -> str:
        self.sent.append((to, msg_type, canonical_bytes(body)))
        return "01J0000000000000000000000"


async def test_scheduled_release_is_recorded_then_queued_once(db_url: str) -> None:
    db = await make_node_db(db_url)
    keys = NodeKeys.generate()
    fed = FakeFed()
    try:
        await add_encounters(db, "2026-10", 50, 20, seed=3)
        # before the policy's release day (5th): nothing due
        assert await run_once(db, fed, node_id="station-7", keys=keys,
                              now_ms=_ms(2026, 11, 2)) == []
        queued = await run_once(db, fed, node_id="station-7", keys=keys,
                                now_ms=_ms(2026, 11, 6))
        [entry] = await ledger_entries(db)
        assert queued == [entry.release_id] and entry.month == "2026-10"
        assert fed.sent == [("hub-north", MessageType.AGGREGATE_RELEASE, entry.body)]
        # later passes neither redraw nor resend (the outbox owns retries of those bytes)
        assert await run_once(db, fed, node_id="station-7", keys=keys,
                              now_ms=_ms(2026, 11, 9)) == []
        assert len(fed.sent) == 1
        # a release recorded from the command line is queued by the next pass
        cli = await record_release(db, node_id="station-7", month="2026-09",
                                   policy=ReleasePolicy(), signing_key=keys.signing_key,
                                   key_version=keys.key_version, now_ms=_ms(2026, 11, 9))
        assert await run_once(db, fed, node_id="station-7", keys=keys,
                              now_ms=_ms(2026, 11, 10)) == [cli.release_id]
        assert fed.sent[-1][2] == cli.body
    finally:
        await db.dispose()
