"""Inbox handlers per message type: one message at a time, or all of a type at once.

A `Handler` (`async def handler(conn, opened) -> None`) applies one inbound message in the
inbox's transaction and refuses it by raising (`federation.inbox` runs it in a savepoint when
another message of the batch was refused, so only a refused message's changes are dropped).

A `BatchHandler` (`async def handler(conn, [opened, ...]) -> [None | exception, ...]`)
receives every message of its type in one inbox transaction (the batches of several hops
that share it included, `federation.inbox_group`), in arrival order, and answers per
message: None (accepted) or the exception that refuses it (its `code` becomes the wire
code, as a `Handler`'s would). Why: some receivers check and store many messages far
faster together than one by one (the hub's release ingest, `hub.stats.ingest.accept_batch`:
one lookup and one statement per table for the whole batch). A batch handler must itself
leave nothing of a refused message written; raising instead refuses nothing by itself: a
database error fails the whole inbox batch (the sender retries), any other exception makes
the inbox call it again once per message, each in a savepoint of its own.

The inbox applies a batch type's messages after the batch's other messages; a message
repeated within the batch gets the first one's answer (`duplicate`, or its refusal).
A type with a batch handler ignores a one-message handler registered for it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from protocol.envelope import Opened
from protocol.messages import MessageType

__all__ = ["PENDING", "BatchHandler", "Deferred", "Handler", "HandlerRegistry", "Isolate"]

log = logging.getLogger("peernet.federation.inbox")

Handler = Callable[[AsyncConnection, Opened], Awaitable[None]]
BatchHandler = Callable[[AsyncConnection, Sequence[Opened]],
                        Awaitable[Sequence[BaseException | None]]]
class Isolate(Exception):
    """A handler refused during the inbox's optimistic pass: redo the batch with savepoints."""


PENDING = "pending"  # the stored status of a deferred message until its batch handler ran


class HandlerRegistry:
    """Business logic per message type (one handler, or one batch handler, each)."""

    def __init__(self) -> None:
        self._handlers: dict[MessageType, Handler] = {}
        self._batch: dict[MessageType, BatchHandler] = {}

    def register(self, msg_type: MessageType, handler: Handler, *, replace: bool = False) -> None:
        msg_type = MessageType(msg_type)
        if msg_type in self._handlers and not replace:
            raise ValueError(f"a handler for {msg_type.value} is already registered")
        self._handlers[msg_type] = handler

    def register_batch(self, msg_type: MessageType, handler: BatchHandler, *,
                       replace: bool = False) -> None:
        msg_type = MessageType(msg_type)
        if msg_type in self._batch and not replace:
            raise ValueError(f"a batch handler for {msg_type.value} is already registered")
        self._batch[msg_type] = handler

    def get(self, msg_type: MessageType) -> Handler | None:
        return self._handlers.get(msg_type)

    def get_batch(self, msg_type: MessageType) -> BatchHandler | None:
        return self._batch.get(msg_type)

    def __contains__(self, msg_type: object) -> bool:
        return msg_type in self._handlers or msg_type in self._batch


@dataclass
class Deferred:
    """The messages of one inbox transaction left for their batch handlers: (position in
    the results, message), and the in-batch repeats of them."""

    registry: HandlerRegistry
    items: dict[MessageType, list[tuple[int, Opened]]] = field(default_factory=dict)
    repeats: list[tuple[int, Opened]] = field(default_factory=list)

    def take(self, at: int, o: Opened) -> bool:
        """Keep `o` (result position `at`) for its type's batch handler, if there is one."""
        if self.registry.get_batch(o.inner.type) is None:
            return False
        self.items.setdefault(o.inner.type, []).append((at, o))
        return True

    async def run(self, conn: AsyncConnection,
                  isolate: bool) -> list[tuple[int, Opened, BaseException | None]]:
        """Each deferred message's outcome (None: accepted); `isolate`: one message at a
        time, each in a savepoint (after some handler of the batch raised)."""
        out: list[tuple[int, Opened, BaseException | None]] = []
        for msg_type, items in self.items.items():
            handler = self.registry.get_batch(msg_type)
            assert handler is not None
            if isolate:
                outcomes = [await _alone(conn, handler, o) for _, o in items]
            else:
                try:
                    outcomes = list(await handler(conn, [o for _, o in items]))
                except DBAPIError:
                    raise
                except Exception:
                    raise Isolate() from None
            if len(outcomes) != len(items):
                raise RuntimeError(f"batch handler for {msg_type.value}: wrong answer count")
            for (at, o), r in zip(items, outcomes, strict=True):
                if r is not None:  # ids and codes, never contents
                    code = getattr(r, "code", None)
                    log.info("%s %s from %s refused by its batch handler: %s", msg_type.value,
                             o.inner.msg_id, o.inner.from_, getattr(code, "value", code))
                out.append((at, o, r))
        return out


async def _alone(conn: AsyncConnection, handler: BatchHandler, o: Opened) -> BaseException | None:
    savepoint = await conn.begin_nested()
    try:
        (outcome,) = await handler(conn, [o])
    except DBAPIError:
        await savepoint.rollback()
        raise
    except Exception as exc:  # noqa: BLE001 - the refusal of this message alone
        await savepoint.rollback()
        return exc
    if outcome is not None:
        await savepoint.rollback()
    else:
        await savepoint.commit()
    return outcome
