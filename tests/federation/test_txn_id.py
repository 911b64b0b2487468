"""The `txn_id` grammar of `PUT /fed/v1/send/{txn_id}` (WIRE.md §8): 1..64 characters of
`[A-Za-z0-9_-]` as sent (`%41` is not `A`); anything else is refused as a whole request
(`malformed`, 400) before the body is read, with nothing stored; what senders generate (a
ULID) is accepted. Before, a percent-encoded id was decoded first and then checked."""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from yarl import URL

from protocol import build_batch
from protocol.ids import new_ulid
from protocol.request_auth import sign_request
from tests.federation.helpers import TEST_TYPE, Recorder, counts, envelope
from tests.federation.network import Network

NetworkFactory = Callable[..., Awaitable[Network]]
GRAMMAR = re.compile(r"[A-Za-z0-9_-]{1,64}")


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_txn_id_grammar(network: NetworkFactory, db: str) -> None:
    net = await network(2, db=db)
    a, b = net.nodes
    b.on(TEST_TYPE, Recorder())
    raw = build_batch([envelope(net, a, b)])
    before = await counts(b)

    async def put(txn: str) -> tuple[int, dict[str, object]]:
        path = "/fed/v1/send/" + txn
        auth = sign_request(signing_key=a.keys.signing_key, key_version=a.keys.key_version,
                            method="PUT", path=path, origin=a.node_id, destination=b.node_id,
                            ts=net.clock.now_ms(), body=raw)
        async with aiohttp.ClientSession() as http, http.put(
            URL(b.url + path, encoded=True), data=raw, headers={"Authorization": auth}) as resp:
            return resp.status, await resp.json()

    for bad in ["x" * 65, "a.b", "%41", "t~1", "%C3%BC", "a%2Fb"]:
        assert GRAMMAR.fullmatch(bad) is None
        status, body = await put(bad)
        assert (status, body["error"]["code"]) == (400, "malformed"), bad  # type: ignore[index]
    assert await counts(b) == before
    ulid = new_ulid(net.clock.now_ms(), os.urandom(10))
    assert GRAMMAR.fullmatch(ulid)
    status, body = await put(ulid)
    assert status == 200 and body["results"][0]["status"] == "accepted"  # type: ignore[index]
