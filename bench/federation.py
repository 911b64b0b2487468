"""Federation benchmark: inbox ingest over loopback against the envelope open rate, and the
activation fan-out.

    python -m bench.federation [--quick] [--json PATH] [--procs N]

Ingest: a sender posts pre-built envelopes in batches of 50 (`PUT /fed/v1/send/{txn}`, per-hop
signed) to one receiving server over loopback; the receiver verifies the request, opens
every envelope, and in one transaction per batch stores the inbox rows, runs the (no-op)
handler in a savepoint and queues an ack intent. Measured from the first request to the last
response, so everything counted is durable in the receiver's database. Run on SQLite and on
PostgreSQL (a throwaway server unless `PEERNET_PG_URL` is set).

Open: `protocol.envelope_open.open_envelope` over the same envelopes, in the same process, right
before; `ingest_to_open` = ingest (SQLite) / open, the goal is >= 0.5.

Fan-out: `bench.federation_fanout` (one requester, the hub, N responder nodes, time from the
request until every offer is back), N = 10, 50, 200; `--quick` takes fewer rounds. `--procs`
is passed on (worker processes for the responders; default the CPU count).

Keys: `ingest_sqlite_per_s`, `ingest_postgres_per_s`, `open_per_s`, `ingest_to_open`
(`ingest_postgres_to_open` too), `fanout_p95_ms_10`, `fanout_p95_ms_50`, `fanout_p95_ms_200`
(and the p50s, and `fanout_machine_ref_ms`: see `bench.federation_fanout`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from nacl.signing import SigningKey
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.clock import SystemClock
from federation.database import make_engine
from federation.keystore import NodeKeys
from federation.roster import Board, Policy, Roster, build_signed, roster_signature
from federation.roster_acceptance import BoardPin
from federation.service import FederationService
from federation.store import METADATA
from federation.transport import HopClient
from hub.db import Database
from protocol.canonical import canonical_bytes
from protocol.encoding import b64u
from protocol.envelope import MAX_BATCH, Opened, Sender, build_envelope
from protocol.envelope_open import open_envelope
from protocol.ids import new_ulid
from protocol.messages import MessageType

BODY = {"reason": "no_capacity"}
MSG_TYPE = MessageType.ACTIVATION_DECLINE


def _entry(node_id: str, keys: NodeKeys, url: str) -> dict[str, Any]:
    return {
        "node_id": node_id,
        "name": node_id,
        "disciplines": ["fire"],
        "region": "north",
        "roles": ["agency"],
        "endpoint": url,
        "sign_keys": {keys.key_id: {"key": b64u(keys.verify_key_bytes), "valid_until": None}},
        "old_sign_keys": {},
        "enc_key": b64u(keys.enc_public_bytes),
    }


def make_roster(members: list[tuple[str, NodeKeys, str]], now: int) -> tuple[Any, BoardPin]:
    board_key = SigningKey.generate()
    board = Board(keys=[b64u(bytes(board_key.verify_key))], threshold=1)
    roster = Roster(
        version=1,
        prev_sha256=None,
        issued_ts=now,
        expires_ts=now + 30 * 86_400_000,
        board=board,
        nodes=[_entry(*m) for m in members],
        revoked=[],
        policy=Policy(),
    )
    value = roster.model_dump(mode="json")
    signed = build_signed(value, [roster_signature(board_key, canonical_bytes(value))])
    return signed, BoardPin(board.key_bytes(), 1)


class ReceivingServer:
    """A FederationService on its own loopback port and database (no worker)."""

    def __init__(self, node_id: str, keys: NodeKeys, db_url: str) -> None:
        self.node_id, self.keys, self.db_url = node_id, keys, db_url
        self.runner: web.AppRunner | None = None

    async def start(self, signed: Any, pin: BoardPin, port: int) -> None:
        engine = make_engine(self.db_url)
        async with engine.begin() as conn:
            await conn.run_sync(METADATA.create_all)
        self.db = Database(engine)
        self.fed = FederationService(
            me=self.node_id,
            keys=self.keys,
            engine=engine,
            write=self.db.write,
            clock=SystemClock(),
            pin=pin,
            run_worker=False,
        )

        async def noop(conn: AsyncConnection, opened: Opened) -> None:
            return None

        self.fed.register_handler(MSG_TYPE, noop)
        app = web.Application()
        app.add_routes(self.fed.routes())
        app.cleanup_ctx.append(self.fed.cleanup_ctx)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await self.fed.roster.accept([signed])
        await web.TCPSite(self.runner, "127.0.0.1", port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        await self.db.dispose()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def ingest(db_url: str, n: int) -> tuple[float, float]:
    """(ingest messages/s, open messages/s) for n envelopes."""
    clock = SystemClock()
    now = clock.now_ms()
    sk, rk = NodeKeys.generate(), NodeKeys.generate()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    signed, pin = make_roster(
        [("bench-sender", sk, "http://127.0.0.1:9"), ("bench-receiver", rk, url)], now
    )
    sender = Sender("bench-sender", sk.key_version, sk.signing_key)
    from protocol.messages import RosterRef as Ref

    ref = Ref(version=1, sha256=signed.sha256)
    envs = [
        build_envelope(
            sender=sender,
            to="bench-receiver",
            recipient_enc_key=rk.enc_public_bytes,
            msg_type=MSG_TYPE,
            body=BODY,
            msg_id=new_ulid(now, os.urandom(10)),
            created_ts=now,
            expires_ts=now + 3_600_000,
            roster=ref,
        )
        for _ in range(n)
    ]
    server = ReceivingServer("bench-receiver", rk, db_url)
    await server.start(signed, pin, port)
    try:
        state = server.fed.roster.state
        sample = envs[: min(n, 2000)]
        parsed = [json.loads(e) for e in sample]
        t0 = time.perf_counter()
        for item in parsed:
            open_envelope(
                item,
                me="bench-receiver",
                enc_key=rk.enc_key,
                keys=state,
                roster=state,
                now_ms=clock.now_ms(),
            )
        open_rate = len(sample) / (time.perf_counter() - t0)

        async with aiohttp.ClientSession() as http:
            client = HopClient("bench-sender", sk, clock, http)
            batches = [envs[i : i + MAX_BATCH] for i in range(0, n, MAX_BATCH)]
            t0 = time.perf_counter()
            inflight = 2
            sem = asyncio.Semaphore(inflight)

            async def one(batch: list[bytes]) -> None:
                async with sem:
                    results = await client.send_batch(url, "bench-receiver", batch)
                    bad = [r for r in results if r.status.value != "accepted"]
                    if bad:
                        raise RuntimeError(f"refused: {bad[0].code}")

            await asyncio.gather(*(one(b) for b in batches))
            ingest_rate = n / (time.perf_counter() - t0)
    finally:
        await server.stop()
    return ingest_rate, open_rate


async def _pg_url(stack: Any) -> str | None:
    given = os.environ.get("PEERNET_PG_URL")
    from peernet.throwaway_pg import PostgresUnavailable, create_database, start_throwaway

    try:
        if given:
            admin = given
        else:
            server = start_throwaway()
            stack.callback(server.stop)
            admin = server.url()
        return await create_database(admin, "bench_" + uuid.uuid4().hex[:12])
    except PostgresUnavailable as exc:
        print(f"PostgreSQL unavailable: {exc}", file=sys.stderr)
        return None


async def main_async(quick: bool) -> dict[str, float]:
    import contextlib

    n = 1000 if quick else 5000
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        sqlite_rate, open_rate = await ingest(f"sqlite:///{Path(tmp) / 'bench.db'}", n)
        out["ingest_sqlite_per_s"] = round(sqlite_rate, 1)
        out["open_per_s"] = round(open_rate, 1)
        out["ingest_to_open"] = round(sqlite_rate / open_rate, 3)
        pg = await _pg_url(stack)
        if pg is not None:
            pg_rate, _ = await ingest(pg, n)
            out["ingest_postgres_per_s"] = round(pg_rate, 1)
            out["ingest_postgres_to_open"] = round(pg_rate / open_rate, 3)
    return out


FANOUT_SIZES = [10, 50, 200]
FANOUT_ROUNDS = {10: 30, 50: 20, 200: 10}
FANOUT_ROUNDS_QUICK = {10: 6, 50: 6, 200: 3}


def main(argv: list[str] | None = None) -> None:
    from bench import federation_fanout

    parser = argparse.ArgumentParser(prog="python -m bench.federation")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--procs", type=int, default=None,
                        help="worker processes for the fan-out responders (0: one loop)")
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print("ingest")
    figures = asyncio.run(main_async(args.quick))
    width = max(len(k) for k in figures)
    print(f"{'figure':<{width}}  value")
    for k, v in figures.items():
        print(f"{k:<{width}}  {v}", flush=True)
    print()
    rounds = FANOUT_ROUNDS_QUICK if args.quick else FANOUT_ROUNDS
    figures.update(federation_fanout.run(FANOUT_SIZES, rounds, args.procs))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
