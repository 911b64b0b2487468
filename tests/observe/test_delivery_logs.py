"""One log line per delivery failure, refused message and unreachable peer, naming ids,
hops and stable codes only (never a body): over real servers (tests.federation.network)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from federation.errors import FederationError
from protocol.errors import Code
from tests.federation.conftest import network  # noqa: F401 - the fixture factory
from tests.federation.helpers import TEST_BODY, TEST_TYPE, Recorder, outbox_rows, send
from tests.federation.network import Network

NetworkFactory = Callable[..., Awaitable[Network]]
MINUTE = 60_000


def lines(caplog: pytest.LogCaptureFixture, needle: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if needle in r.getMessage()]


async def test_unreachable_peer_and_failed_delivery_each_logged_once_per_event(
        network: NetworkFactory, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    caplog.set_level("INFO", logger="peernet")
    net = await network(2)
    a, b = net.nodes
    await b.stop()
    await net.hub.stop()
    msg_id = await send(a, b.node_id)
    await net.settle()
    net.clock.advance(MINUTE)
    await net.settle()
    down = lines(caplog, "unreachable")
    assert {line.split()[1] for line in down} == {b.node_id, net.hub.node_id}
    assert len(down) == 2  # one per hop going down, not one per pass
    failed = lines(caplog, "failed, will retry")
    assert len(failed) >= 2 and all(f"to {b.node_id}" in f for f in failed)
    await net.hub.start()
    await b.start()
    net.clock.advance(15 * MINUTE)
    await net.settle()
    assert lines(caplog, "reachable again")
    [row] = await outbox_rows(a, TEST_TYPE.value)
    assert row.msg_id == msg_id
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert TEST_BODY["reason"] not in text  # the body's only field


async def test_refusals_logged_with_their_code_and_ids(
        network: NetworkFactory, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    caplog.set_level("INFO", logger="peernet")
    net = await network(2)
    a, b = net.nodes
    b.on(TEST_TYPE, Recorder(refuse_with=FederationError(Code.BAD_BODY, "not in this state")))
    msg_id = await send(a, b.node_id)
    await net.settle()
    [perm] = lines(caplog, "refused permanently")
    assert "bad_body" in perm and msg_id in perm
    assert any(msg_id in m and "refused by its handler" in m
               for m in lines(caplog, "refused by its handler"))
    results = await b.fed.inbox.receive(a.node_id, [{"not": "an envelope"}])
    assert results[0].code is not None
    [env] = lines(caplog, "envelope - via")
    assert a.node_id in env and results[0].code.value in env
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert TEST_BODY["reason"] not in text
