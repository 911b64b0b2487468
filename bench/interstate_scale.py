"""Interstate scale simulation (issue 19 item 6; not a unit test): 50 networks, 70,000
agencies, bounded to a few minutes.

    python -m bench.interstate_scale [--quick] [--json PATH]

1. Rosters. 50 state rosters listing 70,000 agencies in all (the largest state 2,600, the
   smallest 200, in an even slope between), every entry with its own fresh keys. The
   largest is built and signed with the real board code (`bench.interstate`:
   `federation.board.BoardDir`, 2 of 3 members sign, `combine` checks), the others by
   their boards' threshold of keys.
2. Compact. One compact listing the 50 networks (each board 2 of 3, each hub's keys),
   signed by a threshold of every board; its acceptance checked as a hub does
   (`accept_compact` under one state's pinned board).
3. Fetch and verify. A real hub of the largest state (SQLite, loopback) serves its roster;
   the document is fetched over HTTP (`GET /fed/v1/roster`) and verified as another
   network's hub verifies it (`verify_foreign_roster`: the board keys the compact lists).
   All 50 rosters are then verified the same way (what a hub holding every member's roster
   checks), reported per 1,000 agencies.
4. Delta. The largest state's board rotates one agency's key (version 2); the hub installs
   it; a server holding version 1 asks `?have=1&have_sha256=H` and gets the delta, applies
   it, and the rebuilt document must be version 2's bytes; bytes compared with the whole.
5. National statistics, 50 states x 12 months: `bench.interstate_national` (one hub with its
   releases, 49 peers' signed documents verified and stored, `GET /api/v1/national`).
6. Interstate fan-out: `bench.interstate_fanout.run` (a request to 50 agencies of another
   network through both hubs, until every offer is back); skipped with a note when the
   running code has no interstate runtime.

`--quick` runs fewer repetitions and fan-out rounds, never fewer networks or agencies.
Prints a table; `--json` writes the flat figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from bench.interstate import _PASSPHRASE, T0, build_state_rosters, node_value
from federation.board import BoardDir
from federation.board_keys import load_board_key
from federation.clock import FakeClock
from federation.compact_acceptance import CompactPin, accept_compact
from federation.foreign_rosters import verify_foreign_roster
from federation.keystore import NodeKeys
from federation.roster import NodeEntry, SignedRoster, parse_signed_roster
from federation.roster_acceptance import BoardPin
from federation.roster_delta import apply_delta, is_delta, parse_answer
from federation.roster_fetch import ROSTER_PATH
from protocol.compact import SignedCompact, build_signed_compact, compact_signature
from protocol.encoding import b64u

__all__ = ["NETWORKS", "TOTAL_AGENCIES", "main", "state_sizes"]

NETWORKS = 50
TOTAL_AGENCIES = 70_000
LARGEST = 2_600
SMALLEST = 200
DAY = 86_400_000


def state_sizes(n: int = NETWORKS, total: int = TOTAL_AGENCIES) -> list[int]:
    """Agencies per state: an even slope from LARGEST to SMALLEST summing to `total`."""
    step = (LARGEST - SMALLEST) / (n - 1)
    sizes = [round(LARGEST - i * step) for i in range(n)]
    sizes[n // 2] += total - sum(sizes)
    return sizes


class _State:
    """One state: its id, board (a `BoardDir` for the largest), hub keys, signed roster."""

    def __init__(self, network_id: str, hub_keys: NodeKeys) -> None:
        self.network_id = network_id
        self.hub_keys = hub_keys
        self.board_keys: list[Any] = []  # SigningKeys able to sign (threshold first)
        self.board_value: dict[str, Any] = {}
        self.roster: SignedRoster | None = None

    @property
    def hub_id(self) -> str:
        return f"{self.network_id}-hub"

    def member(self, endpoint: str) -> dict[str, Any]:
        return {"network_id": self.network_id, "name": f"State {self.network_id.upper()}",
                "board": self.board_value,
                "hub": {"hub_id": self.hub_id, "endpoint": endpoint, "keys": [{
                    "kid": self.hub_keys.key_id, "sign": b64u(self.hub_keys.verify_key_bytes),
                    "enc": b64u(self.hub_keys.enc_public_bytes)}]}}


def _hub_entry(st: _State, endpoint: str) -> dict[str, Any]:
    return {"node_id": st.hub_id, "name": f"{st.network_id} hub", "disciplines": [],
            "region": "state", "roles": ["hub"], "endpoint": endpoint,
            "sign_keys": {st.hub_keys.key_id: {"key": b64u(st.hub_keys.verify_key_bytes),
                                               "valid_until": None}},
            "old_sign_keys": {}, "enc_key": b64u(st.hub_keys.enc_public_bytes)}


def _other_state(i: int, size: int) -> _State:
    """A state other than the largest: a 2-of-3 board of raw keys signs its roster."""
    from tests.federation.boards import TestBoard

    st = _State(f"s{i:02d}", NodeKeys.generate())
    board = TestBoard.make(3, 2)
    st.board_keys = board.keys
    st.board_value = board.board().model_dump(mode="json")
    entries = [NodeEntry.model_validate(_hub_entry(st, f"https://{st.hub_id}.example.org"))]
    entries += [NodeEntry.model_validate(node_value(k)) for k in range(size)]
    st.roster = board.sign(board.roster(1, nodes=entries, now=T0, expires_in=30 * DAY))
    return st


def _largest_state(root: Path) -> tuple[_State, BoardDir, SignedRoster, SignedRoster, float]:
    """The largest state through the real board code; (state, board, v1, v2, seconds)."""
    t0 = time.perf_counter()
    board, v1, v2 = build_state_rosters(root, LARGEST)
    seconds = time.perf_counter() - t0
    pin = json.loads(board.board_file.read_text(encoding="utf-8"))
    st = _State("s00", NodeKeys.generate())
    st.board_keys = [load_board_key(board.root / "keys" / f"board-key-{i}.json", _PASSPHRASE)
                     for i in (1, 2)]
    st.board_value = {"keys": pin["keys"], "threshold": pin["threshold"]}
    st.roster = v1
    return st, board, v1, v2, seconds


def _compact(states: list[_State], endpoint_of: dict[str, str]) -> SignedCompact:
    value = {"v": 1, "compact_id": "national-compact", "version": 1, "prev_sha256": None,
             "issued_ts": T0, "expires_ts": T0 + 365 * DAY,
             "networks": sorted((s.member(endpoint_of.get(s.network_id,
                                                          f"https://{s.hub_id}.example.org"))
                                 for s in states), key=lambda m: str(m["network_id"]))}
    unsigned = build_signed_compact(value)
    return build_signed_compact(value, {
        s.network_id: [compact_signature(k, unsigned.compact_bytes) for k in s.board_keys[:2]]
        for s in states})


async def _serve_largest(tmp: Path, board: BoardDir, hub_keys: NodeKeys,
                         v1: SignedRoster, v2: SignedRoster, member: Any,
                         reps: int) -> dict[str, float]:
    """A real hub of the largest state: fetch + verify v1 over HTTP; then v2 as a delta."""
    from aiohttp import web

    from hub.app import create_app
    from hub.appkeys import FEDERATION
    from hub.config import HubSettings

    clock = FakeClock(T0 + 2 * 3_600_000)
    pin = json.loads(board.board_file.read_text(encoding="utf-8"))
    settings = HubSettings(hub_id="s00-hub", name="s00 hub", data_dir=tmp / "s00-hub",
                           db_url=f"sqlite:///{tmp / 's00-hub.db'}", board_keys=pin["keys"],
                           board_threshold=pin["threshold"],
                           operator_token=SecretStr("scale-operator-token"))
    app = create_app(settings, clock=clock, keys=hub_keys)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}{ROSTER_PATH}"
    out: dict[str, float] = {}
    try:
        await app[FEDERATION].roster.accept([v1])
        fetch, verify = [], []
        async with aiohttp.ClientSession() as http:
            for _ in range(reps):
                t0 = time.perf_counter()
                async with http.get(url) as r:
                    r.raise_for_status()
                    data = await r.read()
                t1 = time.perf_counter()
                signed = parse_signed_roster(data)
                verify_foreign_roster(signed, member, clock.now_ms())
                t2 = time.perf_counter()
                fetch.append((t1 - t0) * 1000)
                verify.append((t2 - t1) * 1000)
            if signed.to_bytes() != v1.to_bytes():
                raise SystemExit("the fetched roster is not the board's document")
            out["largest_roster_bytes"] = float(len(data))
            out["largest_roster_fetch_ms"] = round(statistics.median(fetch), 1)
            out["largest_roster_verify_ms"] = round(statistics.median(verify), 1)

            await app[FEDERATION].roster.accept([v2])
            async with http.get(url, params={"have": str(v1.version),
                                             "have_sha256": v1.sha256}) as r:
                r.raise_for_status()
                answer = await r.read()
            doc = parse_answer(answer)
            if not is_delta(doc):
                raise SystemExit("the hub answered the whole document, not a delta")
            rebuilt = apply_delta(v1, doc)
            verify_foreign_roster(rebuilt, member, clock.now_ms())
            if rebuilt.to_bytes() != v2.to_bytes():
                raise SystemExit("the delta did not rebuild version 2 byte for byte")
            out["roster_delta_bytes"] = float(len(answer))
            out["roster_delta_bytes_ratio"] = round(len(answer) / len(v2.to_bytes()), 5)
    finally:
        await runner.cleanup()
    return out


def _table(figures: dict[str, float]) -> None:
    width = max(len(k) for k in figures)
    print(f"{'figure':<{width}}  value")
    for k, v in figures.items():
        print(f"{k:<{width}}  {v}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.interstate_scale")
    parser.add_argument("--quick", action="store_true",
                        help="fewer repetitions and fan-out rounds (same 50 networks)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-fanout", action="store_true", help="skip the fan-out")
    args = parser.parse_args(argv)
    t_start = time.perf_counter()
    figures: dict[str, float] = {}
    sizes = state_sizes()
    with tempfile.TemporaryDirectory(prefix="peernet-interstate-scale-") as d:
        tmp = Path(d)
        print(f"[{time.perf_counter() - t_start:6.1f}s] building {NETWORKS} rosters, "
              f"{sum(sizes):,} agencies (largest {sizes[0]:,}, smallest {sizes[-1]:,})",
              flush=True)
        largest, board, v1, v2, build_s = _largest_state(tmp / "board-s00")
        t0 = time.perf_counter()
        states = [largest] + [_other_state(i, n) for i, n in enumerate(sizes[1:], start=1)]
        figures["networks"] = float(len(states))
        figures["agencies"] = float(sum(
            sum(1 for e in s.roster.roster.nodes if "agency" in e.roles)
            for s in states if s.roster is not None))
        figures["largest_roster_build_sign_s"] = round(build_s, 2)
        figures["other_rosters_build_sign_s"] = round(time.perf_counter() - t0, 2)

        print(f"[{time.perf_counter() - t_start:6.1f}s] compact of {NETWORKS} networks",
              flush=True)
        t0 = time.perf_counter()
        compact = _compact(states, {})
        figures["compact_sign_ms_50"] = round((time.perf_counter() - t0) * 1000, 1)
        pin = CompactPin("s00", BoardPin.from_strings(largest.board_value["keys"],
                                                      largest.board_value["threshold"]))
        t0 = time.perf_counter()
        accept_compact(compact, None, pin, T0 + 1000)
        figures["compact_verify_ms_50"] = round((time.perf_counter() - t0) * 1000, 1)
        figures["compact_bytes_50"] = float(len(compact.to_bytes()))

        print(f"[{time.perf_counter() - t_start:6.1f}s] the largest roster served, fetched, "
              "verified; a one-node change as a delta", flush=True)
        figures.update(asyncio.run(_serve_largest(
            tmp, board, largest.hub_keys, v1, v2, compact.compact.network("s00"),
            3 if args.quick else 9)))

        print(f"[{time.perf_counter() - t_start:6.1f}s] every member roster verified "
              "against the compact", flush=True)
        now = T0 + 1000
        t0 = time.perf_counter()
        for s in states:
            assert s.roster is not None
            verify_foreign_roster(parse_signed_roster(s.roster.to_bytes()),
                                  compact.compact.network(s.network_id), now)
        all_s = time.perf_counter() - t0
        figures["all_rosters_verify_s"] = round(all_s, 2)
        figures["rosters_verify_ms_per_1000_agencies"] = round(
            all_s * 1000 / (figures["agencies"] / 1000), 1)

    print(f"[{time.perf_counter() - t_start:6.1f}s] national statistics, 50 states x 12 "
          "months", flush=True)
    from bench.interstate_national import _run as national_run

    figures.update(asyncio.run(national_run(False)))

    if not args.no_fanout:
        print(f"[{time.perf_counter() - t_start:6.1f}s] interstate fan-out to 50 agencies",
              flush=True)
        from bench.interstate_fanout import LayerMissing
        from bench.interstate_fanout import run as fanout_run

        try:
            figures.update(fanout_run(50, 3 if args.quick else 10))
        except LayerMissing as exc:
            print(f"note: interstate fan-out skipped: {exc}")
    figures["scale_total_s"] = round(time.perf_counter() - t_start, 1)
    print("")
    _table(figures)
    print("goals: roster_delta_bytes_ratio < 0.01, national_query_p95_ms < 200, "
          "interstate_fanout_p95_ms_50 < 1000, largest_roster_verify_ms < 500")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n",
                             encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
