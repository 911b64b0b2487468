"""The federation send route over HTTP, against a real node and the hub (`make_network`):
batches of random JSON and of mutated valid envelopes, each request properly signed per hop
by a roster member (so they reach the inbox and the relay), plus unsigned junk. Every answer
is a batch result or a 4xx refusal with a stable code, never a 5xx; nothing is stored for an
envelope the receiver's checks refuse (inbox, relay queue and business tables keep their counts).

The one exception is the real envelope itself, which a mutation may leave intact (a no-op
flip, a value replaced by an equal one; hypothesis draws constants from the loaded modules,
so whether it does depends on what else the run imported). It passes the checks, and the
node's activation handler refuses it (a decline of an activation it never saw): WIRE section 8
stores that refusal as the dedupe row and acks it, and acks every resend again. So a batch
holding k copies of it may add exactly one `fed_inbox` row (the first time) and k `fed_outbox`
acks on the node, and nothing else; both batches are also run explicitly."""

from __future__ import annotations

import asyncio
import json
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bench.reliability_report import record
from federation.store import outbox
from federation.transport import SEND_PATH
from protocol.canonical import parse_json
from protocol.messages import MessageType
from protocol.request_auth import sign_request
from tests.federation.network import make_network
from tests.fuzz.test_parsers import json_value, mutated, spliced
from tests.security.conftest import snapshot


async def test_send_route_never_5xx_and_stores_nothing_refused(tmp_path: Path) -> None:
    net = await make_network(2, tmp_path=tmp_path)
    loop = asyncio.get_running_loop()
    try:
        a, b = net.nodes
        async with a.db.write() as conn:
            await a.fed.send(conn, b.node_id, MessageType.ACTIVATION_DECLINE,
                             {"reason": "no_capacity"})
        # a real envelope from agency-1 to agency-2 (not delivered), as the mutation seed
        async with a.db.read() as conn:
            rows = (await conn.execute(select(outbox.c.envelope))).all()
        valid = bytes(rows[0][0])
        seeds = [parse_json(valid)]
        stats: Counter[str] = Counter()
        problems: list[str] = []
        delivered: set[str] = set()  # targets whose inbox already holds the real message
        real = json.dumps(seeds[0], sort_keys=True)

        def real_copies(body: bytes) -> int:
            """Copies of the real envelope in a batch (type-strict: `true` is not `1`)."""
            try:
                doc = json.loads(body)
            except ValueError:
                return 0
            items = doc.get("envelopes") if isinstance(doc, dict) else None
            return sum(json.dumps(e, sort_keys=True) == real
                       for e in items) if isinstance(items, list) else 0
        http = aiohttp.ClientSession()

        async def put(target: Any, body: bytes, signed: bool) -> tuple[int, bytes]:
            path = SEND_PATH.format(txn_id="fuzz1")
            headers = {"Content-Type": "application/json"}
            if signed:
                headers["Authorization"] = sign_request(
                    signing_key=a.keys.signing_key, key_version=a.keys.key_version,
                    method="PUT", path=path, origin=a.node_id, destination=target.node_id,
                    ts=net.clock.now_ms(), body=body)
            async with http.put(target.url + path, data=body, headers=headers) as r:
                return r.status, await r.read()

        async def one(body: bytes, signed: bool) -> None:
            for target in (b, net.hub):
                before = await snapshot(target.db.engine)
                status, data = await put(target, body, signed)
                stats[f"{target.node_id}:{status}"] += 1
                if status >= 500:
                    problems.append(f"{target.node_id} {status} {data[:200]!r}")
                    continue
                if status == 200:
                    results = json.loads(data)["results"]
                    if any(r["status"] == "accepted" for r in results):
                        stats["accepted"] += 1
                        continue  # a verbatim valid envelope may be accepted once
                expected: dict[str, int] = {}
                copies = real_copies(body) if status == 200 and target is b else 0
                if copies:  # the real message, refused by its handler: stored and acked
                    stats["real_copies"] += copies
                    expected = {"fed_outbox": copies}
                    if target.node_id not in delivered:
                        expected["fed_inbox"] = 1
                        delivered.add(target.node_id)
                after = await snapshot(target.db.engine)
                changed = {k: after[k] - before[k] for k in after if after[k] != before[k]}
                if changed != expected:
                    problems.append(f"{target.node_id} {status}: {changed} (expected {expected})")

        def no_floats(v: Any) -> bool:
            return "." not in json.dumps(v) and "e+" not in json.dumps(v) \
                and "Infinity" not in json.dumps(v) and "NaN" not in json.dumps(v)

        envelope_docs = st.one_of(st.sampled_from(seeds).flatmap(mutated), json_value)
        batch = st.lists(envelope_docs.filter(no_floats), min_size=1, max_size=5).map(
            lambda v: json.dumps({"envelopes": v}).encode())
        bodies = st.one_of(
            batch, batch, batch,
            json_value.map(lambda v: json.dumps(v).encode()),
            st.sampled_from([valid]).flatmap(spliced).map(
                lambda e: b'{"envelopes":[' + e + b"]}"),
        )

        @settings(max_examples=60, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @example(body=b'{"envelopes":[' + valid + b"]}", signed=True)
        @example(body=b'{"envelopes":[' + valid + b',{"v":1},' + valid + b"]}", signed=True)
        @given(body=bodies, signed=st.sampled_from([True, True, True, False]))
        def check(body: bytes, signed: bool) -> None:
            asyncio.run_coroutine_threadsafe(one(body, signed), loop).result()

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            await asyncio.to_thread(check)
        await http.close()
        record("fuzz-fed-route", area="bad-input",
               case="federation send route over HTTP (node inbox and hub relay)",
               how="60 derandomized bodies x 2 servers: batches of random JSON and of mutated "
                   "real envelopes, byte-damaged envelopes, non-batch JSON; signed per hop by "
                   "a roster member or unsigned; table counts compared around each request",
               result="no 5xx; refused envelopes store nothing" if not problems
               else f"FAILED: {problems[:3]}",
               figures=dict(stats), passed=not problems)
        assert problems == [], problems[:5]
    finally:
        await net.close()
