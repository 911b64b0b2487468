"""How long the federation tables keep their rows: the inbox's dedupe rows and the alarms.

Inbox (exactly-once). A delivered message leaves a row keyed (from_node, msg_id) so that a
second copy (a retry, the relay's copy, a replay) is answered `duplicate` instead of being
applied again. The row may go once no copy of that message can pass the receiver's checks
any more. The wire's own freshness check refuses a copy once `now > expires_ts + SKEW_MS`,
but `expires_ts` is the sender's choice and may lie arbitrarily far ahead (up to 2^53 ms):
such a row would never be swept. So the receiver bounds it itself:

    dedupe_expiry(m) = min(m.expires_ts, m.created_ts + INBOX_HORIZON_MS)

- a message is refused as `expired` when `now > dedupe_expiry(m) + SKEW_MS` (`too_old`,
  checked by the inbox after opening, before anything is stored);
- its dedupe row stores `dedupe_expiry(m)` as `expires_ts` and is swept only when
  `expires_ts < now - SKEW_MS` (`federation.inbox.Inbox.sweep`).

Both are functions of `created_ts` and `expires_ts`, which are signed inside the envelope
and identical in every copy of the message. The clock only moves forward, so once the row
is swept (`now > dedupe_expiry(m) + SKEW_MS`) every later copy meets `too_old` and is
refused without being applied; before that, the row is there and the copy is a
`duplicate`. Either way the message is applied at most once; and a message arriving within
its horizon is applied once, as before. The cost: a message delivered more than
`INBOX_HORIZON_MS` after it was created is refused as expired. The horizon (30 days) is far
beyond the outbox's retry window, so only a message held back for a month is affected, and
its sender learns it (`expired`) end to end.

The hub's relay queue (`hub.relay.forwarding`) keeps a relayed envelope until its
destination answers or `dedupe_expiry(m) + SKEW_MS` passes, not the sender's own expiry:
past that point the destination refuses every copy as `expired`, so a longer wait could
never deliver it, and a message to an agency that never returns no longer stays for ever.

Alarms. `fed_alarm` rows stay while active (an operator must see them; an active alarm also
suppresses an identical second one). An acknowledged alarm only records who acknowledged it
and why, and its acknowledgement is in the audit log; it is swept `ALARM_KEEP_MS` (a year)
after its acknowledgement. Sweeping it changes nothing about deduplication, which only
looks at active alarms.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.store import alarms
from protocol.envelope import SKEW_MS

__all__ = ["ALARM_KEEP_MS", "INBOX_HORIZON_MS", "dedupe_expiry", "sweep_alarms", "too_old"]

DAY_MS = 86_400_000
INBOX_HORIZON_MS = 30 * DAY_MS
ALARM_KEEP_MS = 365 * DAY_MS


def dedupe_expiry(created_ts: int, expires_ts: int) -> int:
    """When a message's dedupe row may go (see the module notes)."""
    return min(expires_ts, created_ts + INBOX_HORIZON_MS)


def too_old(created_ts: int, expires_ts: int, now_ms: int) -> bool:
    """True when a copy of this message must be refused as `expired` by the receiver."""
    return now_ms > dedupe_expiry(created_ts, expires_ts) + SKEW_MS


async def sweep_alarms(conn: AsyncConnection, now_ms: int, keep_ms: int = ALARM_KEEP_MS) -> int:
    """Delete alarms acknowledged more than `keep_ms` ago; active alarms are kept."""
    res = await conn.execute(delete(alarms).where(
        alarms.c.acknowledged_ts.is_not(None), alarms.c.acknowledged_ts < now_ms - keep_ms))
    return int(res.rowcount)
