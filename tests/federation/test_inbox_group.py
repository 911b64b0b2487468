"""Group commit in the inbox (`federation.inbox_group`): batches that arrive while one is
being applied share the next transaction; each gets the results it would get alone; a
handler refusal drops only its message; a database error in one batch fails only that
batch. On SQLite and PostgreSQL, through real servers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.errors import FedCode, FederationError
from federation.store import inbox
from protocol.envelope import Opened
from tests.federation.helpers import TEST_TYPE as _TYPE
from tests.federation.helpers import envelope, put_batch
from tests.federation.network import Network

NetworkFactory = Callable[..., Awaitable[Network]]


class _Gate:
    """A handler that holds the first transaction open until every batch has arrived, so
    the others queue behind it; it refuses or fails the messages it is told to."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.first = True
        self.refuse: set[str] = set()
        self.fail: set[str] = set()
        self.applied: list[str] = []

    async def __call__(self, conn: AsyncConnection, opened: Opened) -> None:
        if self.first:
            self.first = False
            await self.release.wait()
        msg_id = opened.inner.msg_id
        if msg_id in self.refuse:
            raise FederationError(FedCode.BAD_BODY, "refused by the test")
        if msg_id in self.fail:
            raise OperationalError("SELECT 1", {}, Exception("the database went away"))
        self.applied.append(msg_id)


async def _put(src: Any, b: Any, envs: list[bytes]) -> tuple[int, Any]:
    try:
        return await put_batch(src, b.url, b.node_id, envs)
    except aiohttp.ContentTypeError as exc:  # a 500 answers in plain text
        return exc.status, None


async def _inbox_count(server: Any) -> int:
    async with server.fed.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(inbox))).scalar_one())


async def _run(net: Network, gate: _Gate, batches: list[tuple[Any, list[bytes]]]
               ) -> tuple[list[tuple[int, Any]], int]:
    """PUT every batch at once to node 0, the first one alone first; (answers, commits)."""
    b = net.nodes[0]
    commits = 0

    def count(_conn: Any) -> None:
        nonlocal commits
        commits += 1

    engine = b.db.write_engine.sync_engine
    event.listen(engine, "commit", count)
    try:
        first = asyncio.create_task(_put(batches[0][0], b, batches[0][1]))
        while gate.first:  # the first transaction is open and waiting
            await asyncio.sleep(0.01)
        rest = [asyncio.create_task(_put(src, b, envs))
                for src, envs in batches[1:]]
        await asyncio.sleep(0.3)  # every other batch is opened and queued behind it
        gate.release.set()
        answers = [await first, *[await t for t in rest]]
    finally:
        event.remove(engine, "commit", count)
    return answers, commits


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_batches_queued_behind_a_transaction_share_the_next(
    network: NetworkFactory, db: str
) -> None:
    net = await network(4, db=db)
    b, senders = net.nodes[0], net.nodes[1:]
    gate = _Gate()
    b.on(_TYPE, gate)
    batches = [(src, [envelope(net, src, b), envelope(net, src, b)])
               for src in senders for _ in range(2)]
    answers, commits = await _run(net, gate, batches)
    assert [status for status, _ in answers] == [200] * len(batches)
    assert all(r["status"] == "accepted" for _, body in answers for r in body["results"])
    # The first batch alone, the five queued behind it in one transaction (the old code:
    # one per batch, six).
    assert commits == 2
    assert await _inbox_count(b) == 2 * len(batches)
    # Sent again, every message is a duplicate (each batch gets its own results).
    again = await asyncio.gather(*(put_batch(src, b.url, b.node_id, envs)
                                   for src, envs in batches))
    assert all(r["status"] == "duplicate" for _, body in again for r in body["results"])
    assert await _inbox_count(b) == 2 * len(batches)


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_a_refusal_in_a_group_drops_only_its_message(
    network: NetworkFactory, db: str
) -> None:
    net = await network(3, db=db)
    b, senders = net.nodes[0], net.nodes[1:]
    gate = _Gate()
    b.on(_TYPE, gate)
    batches = [(src, [envelope(net, src, b), envelope(net, src, b)])
               for src in senders for _ in range(2)]
    refused = _msg_id(batches[2][1][1])
    gate.refuse.add(refused)
    answers, _ = await _run(net, gate, batches)
    assert [status for status, _ in answers] == [200] * len(batches)
    results = {r["msg_id"]: r for _, body in answers for r in body["results"]}
    assert results[refused]["status"] == "refused"
    assert results[refused]["code"] == "bad_body"
    assert sum(r["status"] == "accepted" for r in results.values()) == 2 * len(batches) - 1
    assert refused not in gate.applied
    assert await _inbox_count(b) == 2 * len(batches)  # the refusal is stored (its dedupe row)


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_a_database_error_fails_only_its_batch(
    network: NetworkFactory, db: str
) -> None:
    net = await network(3, db=db)
    b, senders = net.nodes[0], net.nodes[1:]
    gate = _Gate()
    b.on(_TYPE, gate)
    batches = [(src, [envelope(net, src, b)]) for src in senders for _ in range(2)]
    failing = _msg_id(batches[3][1][0])
    gate.fail.add(failing)
    answers, _ = await _run(net, gate, batches)
    statuses = [status for status, _ in answers]
    assert statuses[3] == 500  # its sender retries later
    assert statuses[:3] + statuses[4:] == [200] * (len(batches) - 1)
    assert await _inbox_count(b) == len(batches) - 1  # nothing stored for the failed one
    async with b.fed.engine.connect() as conn:
        ids = set((await conn.execute(select(inbox.c.msg_id))).scalars().all())
    assert failing not in ids


def _msg_id(env: bytes) -> str:
    import json

    return str(json.loads(env)["msg_id"])

