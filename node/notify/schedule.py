"""When a notification may go out: quiet hours, the daily digest, retry backoff (pure).

Quiet hours are a user's local window `[start, end)` in minutes after midnight in the
node's time zone (`timezone` setting); a window whose start is after its end spans
midnight (22:00-07:00). A notification falling inside is *held* until the window ends,
then sent. The one exception is an activation request to a user who opted in
(`urgent_in_quiet`): a neighbouring agency asking for help now may not wait for the
morning, but nobody is woken unless they chose it, so the default is to hold. On-duty
endpoints (shared mailboxes, pagers, CAD) have no quiet hours: being on duty is their point.

Follow-up reminders of a user who chose the digest wait for the next digest moment
(`notify_digest_hour`, local) and go out as one message.

Retries: 30 s after the first failure, doubling, at most an hour apart; after
`MAX_ATTEMPTS` failures the delivery is `dead` and shown to admins, who can retry it.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["MAX_ATTEMPTS", "backoff_ms", "in_quiet", "next_local_ms", "quiet_until_ms"]

MAX_ATTEMPTS = 12
_FIRST_RETRY_MS = 30_000
_MAX_RETRY_MS = 3_600_000


def backoff_ms(attempts: int) -> int:
    """The wait after the `attempts`-th failure (1-based)."""
    return int(min(_FIRST_RETRY_MS * 2 ** max(attempts - 1, 0), _MAX_RETRY_MS))


def _local(now_ms: int, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(now_ms / 1000, zone)


def in_quiet(now_ms: int, zone: ZoneInfo, start: int | None, end: int | None) -> bool:
    if start is None or end is None or start == end:
        return False
    t = _local(now_ms, zone)
    m = t.hour * 60 + t.minute
    if start < end:
        return start <= m < end
    return m >= start or m < end


def next_local_ms(now_ms: int, zone: ZoneInfo, minute_of_day: int) -> int:
    """The next moment strictly after now at `minute_of_day` local time."""
    here = _local(now_ms, zone)
    at = time(minute_of_day // 60, minute_of_day % 60)
    for days in (0, 1, 2):  # 2: a day where that wall time does not exist (DST gap)
        day = here.date() + timedelta(days=days)
        cand = datetime.combine(day, at, tzinfo=zone)
        ms = int(cand.timestamp() * 1000)
        if ms > now_ms:
            return ms
    raise AssertionError("unreachable")  # pragma: no cover


def quiet_until_ms(now_ms: int, zone: ZoneInfo, end: int) -> int:
    return next_local_ms(now_ms, zone, end)
