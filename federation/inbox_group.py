"""Group commit for the inbox: batches that arrive while one is being applied share the next
transaction.

Why: on a fan-in (a requester receiving offers from two hundred agencies, a hub or a node
taking many small batches) every inbound batch used to be one write transaction of its
own: a BEGIN, the stored-result lookup, the inbox insert, the ack intents, the backoff
reset and a COMMIT, for one or two messages. The writer (one at a time on SQLite, a hot
path on PostgreSQL) then spent most of its time on transaction overhead.

How: `InboxGroup.submit` queues the batch and waits for its turn (a FIFO lock). The
caller whose turn it is applies everything queued (its own batch and those that arrived
meanwhile, up to `MAX_GROUP_MESSAGES`) in one transaction (`Inbox.apply_parts`) and hands
each caller its own results; a caller whose batch an earlier turn applied just returns.
Nothing waits on a timer: the first batch in line lets the event loop turn once (requests
of a burst already read reach the queue), then its transaction starts; grouping otherwise
happens only because batches queued behind a running transaction.

What a batch sees is unchanged: each message's result is the one it would get alone (a
message twice in the group is a `duplicate`, as twice in one batch or arriving just after);
a handler refusal drops only that message's changes (the group is redone with savepoints,
`Inbox.apply_parts`). If the group's transaction fails for any other reason, every batch of
it is applied again alone, so one batch's database error fails only that batch (its
sender retries), never its neighbours.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from protocol.envelope import Opened
from protocol.messages import BatchResult

__all__ = ["MAX_GROUP_MESSAGES", "InboxGroup", "Part"]

log = logging.getLogger("peernet.federation.inbox")

# Messages per group transaction (a few full batches): a transaction stays short.
MAX_GROUP_MESSAGES = 500

Part = tuple[str, list[Opened | BatchResult]]
ApplyParts = Callable[[list[Part], int], Awaitable[list[list[BatchResult]]]]


@dataclass
class _Waiting:
    part: Part
    now: int
    done: asyncio.Future[list[BatchResult]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class InboxGroup:
    """See the module notes. `apply_parts(parts, now)` applies parts in one transaction."""

    def __init__(self, apply_parts: ApplyParts) -> None:
        self._apply_parts = apply_parts
        self._queue: list[_Waiting] = []
        self._turn = asyncio.Lock()  # FIFO: each caller leads at most once, in arrival order
        self.transactions = 0  # group transactions run (a statistic for tests and benchmarks)

    async def submit(self, origin: str, opened: list[Opened | BatchResult],
                     now: int) -> list[BatchResult]:
        me = _Waiting((origin, opened), now)
        self._queue.append(me)
        if len(self._queue) == 1 and not self._turn.locked():
            # First in line with nobody writing: let the requests already read by this
            # loop (a fan-in's burst) reach the queue before the transaction starts. One
            # turn of the loop, no timer.
            await asyncio.sleep(0)
        async with self._turn:
            while not me.done.done():  # an earlier leader may have applied it already
                await self._run(self._take())
        return me.done.result()

    def _take(self) -> list[_Waiting]:
        group: list[_Waiting] = []
        size = 0
        while self._queue:
            n = len(self._queue[0].part[1])
            if group and size + n > MAX_GROUP_MESSAGES:
                break
            group.append(self._queue.pop(0))
            size += n
        return group

    async def _run(self, group: list[_Waiting]) -> None:
        now = max(w.now for w in group)
        try:
            self.transactions += 1
            results = await self._apply_parts([w.part for w in group], now)
        except asyncio.CancelledError:
            for w in group:  # the leader's request was dropped: the others answer 500
                _settle(w, exc=RuntimeError("the inbox transaction was cancelled"))
            raise
        except Exception as exc:
            if len(group) == 1:
                _settle(group[0], exc=exc)
                return
            log.info("a group of %d inbound batches failed (%s): applying each alone",
                     len(group), type(exc).__name__)
            for w in group:
                try:
                    self.transactions += 1
                    alone = await self._apply_parts([w.part], w.now)
                except asyncio.CancelledError:
                    raise
                except Exception as one:
                    _settle(w, exc=one)
                else:
                    _settle(w, results=alone[0])
            return
        for w, res in zip(group, results, strict=True):
            _settle(w, results=res)


def _settle(w: _Waiting, *, results: list[BatchResult] | None = None,
            exc: BaseException | None = None) -> None:
    if w.done.done():
        return
    if exc is not None:
        w.done.set_exception(exc)
    else:
        assert results is not None
        w.done.set_result(results)
